#!/usr/bin/env bash
# Sieve benchmark: primed's engine (build/tools/bench_sieve, one job per process, 1 thread)
# against the primesieve CLI (-t1) on the same machine in the same run. Prints median wall
# times of REPS runs each, the ratio primed/primesieve and the target, then the peak RSS of a
# count near 2^64. Both answers are compared, a mismatch fails the run.
# Usage: scripts/bench.sh [REPS]   (default 3; the machine is shared, keep it short)
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${1:-${REPS:-3}}
make -s -j2 build/tools/bench_sieve >/dev/null
BIN=build/tools/bench_sieve

now() { date +%s.%N; }
# median of the numbers on stdin
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# time_cmd OUTVAR cmd...: runs cmd REPS times, prints the median seconds, checks stable output
run_median() {
  local times=() out="" o t0 t1
  for ((i = 0; i < REPS; i++)); do
    t0=$(now); o=$("$@" 2>/dev/null); t1=$(now)
    [ -n "$out" ] && [ "$o" != "$out" ] && { echo "unstable output from $*" >&2; exit 1; }
    out=$o
    times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')")
  done
  printf '%s %s\n' "$(printf '%s\n' "${times[@]}" | median)" "$out"
}

printf '%-34s %12s %12s %8s %8s  %s\n' "case (1 thread)" "primed s" "primesieve s" "ratio" "target" "result"
fail=0
bench() { # name target lo hi
  local name=$1 target=$2 lo=$3 hi=$4
  read -r ts ours < <(run_median "$BIN" count "$lo" "$hi")
  read -r tp theirs < <(run_median primesieve "$lo" "$hi" -t1 -c -q)
  [ "$ours" = "$theirs" ] || { echo "MISMATCH $name: primed $ours, primesieve $theirs"; fail=1; }
  printf '%-34s %12.3f %12.3f %8.2f %8s  %s\n' "$name" "$ts" "$tp" "$(awk -v a="$ts" -v b="$tp" 'BEGIN { print a / b }')" "<= $target" "$ours"
}
bench "count [0, 1e10]"               1.5 0 10000000000
bench "count [1e18, 1e18+1e9]"        2.0 1000000000000000000 1000000001000000000
bench "count [2^64-1e9, 2^64-1]"      -   18446744072709551615 18446744073709551615

# nth prime: primed's single-threaded sieve_nth against primesieve -n (both sieve from 0).
read -r ts ours < <(run_median "$BIN" nth 1000000000)
read -r tp theirs < <(run_median primesieve 1000000000 -n -t1 -q)
[ "$ours" = "$theirs" ] || { echo "MISMATCH nth(1e9): primed $ours, primesieve $theirs"; fail=1; }
printf '%-34s %12.3f %12.3f %8.2f %8s  %s\n' "nth(1e9)" "$ts" "$tp" "$(awk -v a="$ts" -v b="$tp" 'BEGIN { print a / b }')" "-" "$ours"

echo
echo "peak RSS, count [2^64-1e9, 2^64-1] (shared prime table to 2^32 + one sieve_ctx):"
rss=$(mktemp); trap 'rm -f "$rss"' EXIT
/usr/bin/time -o "$rss" -f "  primed     %M KB max RSS, %e s" "$BIN" count 18446744072709551615 18446744073709551615 >/dev/null 2>&1; cat "$rss"
/usr/bin/time -o "$rss" -f "  primesieve %M KB max RSS, %e s" primesieve 18446744072709551615 18446744073709551615 -t1 -c -q >/dev/null 2>&1; cat "$rss"
exit $fail
