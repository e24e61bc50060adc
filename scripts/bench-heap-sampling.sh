#!/usr/bin/env bash
# bench-heap-sampling.sh — cost of tcmalloc heap sampling (the default, for /debug/heap):
# requests/s under wrk against two primed processes started in the same run, one with
# --heap-sampling true (TCMALLOC_SAMPLE_PARAMETER=524288) and one with --heap-sampling false,
# alternating short runs so both see the same machine noise. Prints per-run numbers, the medians
# and the ratio. Target: sampling costs ≤ 5 % of requests/s.
# Usage: scripts/bench-heap-sampling.sh [RUNS=5] [SECONDS=3]   (env: PRIMED_BIN, URL_PATH)
# A benchmark, not a test: it asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/obs_lib.sh
RUNS=${1:-5}
DUR=${2:-3}
# /v1/primes allocates its stream buffers per request: the allocation-heavy path, where
# sampling would show first.
URL_PATH=${URL_PATH:-/v1/primes?from=1000000000&to=1000050000}
command -v wrk >/dev/null || obs_fail "wrk not installed"
[ "$(tr -d ' ' <VERSION 2>/dev/null)" ] || true

obs_start ON --heap-sampling true
obs_start OFF --heap-sampling false
grep -q heap_v2/524288 <(curl -s "http://127.0.0.1:$ON_DPORT/debug/pprof/heap" | head -1) ||
  echo "warning: sampling instance is not sampling (no tcmalloc?)" >&2

rps() { # port → requests/s of one wrk run
  wrk -t1 -c8 -d"${DUR}s" "http://127.0.0.1:$1$URL_PATH" | awk '/^Requests\/sec:/{print $2}'
}
median() { sort -g | awk '{a[NR]=$1} END{print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# warm-up (sieving-prime tables, tcmalloc caches)
rps "$ON_PORT" >/dev/null; rps "$OFF_PORT" >/dev/null
on=(); off=()
for r in $(seq "$RUNS"); do
  if [ $((r % 2)) = 1 ]; then a=$(rps "$ON_PORT"); b=$(rps "$OFF_PORT")
  else b=$(rps "$OFF_PORT"); a=$(rps "$ON_PORT"); fi
  on+=("$a"); off+=("$b")
  printf 'run %d: sampling on %10s req/s   off %10s req/s\n' "$r" "$a" "$b"
done
mon=$(printf '%s\n' "${on[@]}" | median)
moff=$(printf '%s\n' "${off[@]}" | median)
awk -v a="$mon" -v b="$moff" -v p="$URL_PATH" -v n="$RUNS" -v d="$DUR" 'BEGIN{
  printf "GET %s, wrk -t1 -c8, %d runs of %d s each\n", p, n, d;
  printf "median: sampling on %.0f req/s, off %.0f req/s, on/off = %.3f (overhead %.1f %%)\n",
         a, b, a / b, (1 - a / b) * 100 }'
