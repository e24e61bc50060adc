#!/usr/bin/env bash
# bench-pi.sh — the π engine against primecount, one run, alternating, medians (issue 22):
#   1. targets: π(1e14) and π(1e16) on one thread vs `primecount X -t1` (target ≤ 1.2×, stretch
#      ≤ 1.0×); π(1e16) on 2 threads vs 1 (target ≥ 1.8×);
#   2. the table 10^8 … 10^PI_MAX_EXP (default 17): Gourdon (the default), Deléglise–Rivat
#      (BENCH_PI_ALGO=dr) and primecount -t1, PI_REPS (3) runs each, answers compared, and the
#      log-log plot of time vs x.
# `make bench-pi` runs this, then scripts/bench-pi-service.sh (the same through HTTP).
# Usage: scripts/bench-pi.sh [--dat FILE] [--plot PNG] [--docs]
#   --dat FILE   write the table's rows (k gourdon_s primecount_s pi dr_s) to FILE (bench-report)
#   --plot PNG   draw the plot there;  --docs  rewrite docs/benchmarks.md's π section and its plot
#   --table-only skip part 1;  --no-run  measure nothing: use --dat's rows (bench-report.sh).
#   A benchmark: the timings are printed, not asserted (exit 1 only
#   when an answer differs from primecount's).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
BIN=${BENCH_BIN:-build/tools/bench_sieve}
REPS=${PI_REPS:-3}
MAXK=${PI_MAX_EXP:-17}
DAT="" PNG="" DOCS=0 TARGETS=1 RUN=1
while [ $# -gt 0 ]; do
  case $1 in
    --dat) DAT=$2; shift 2 ;;
    --plot) PNG=$2; shift 2 ;;
    --docs) DOCS=1; PNG=docs/bench-pi.png; shift ;;
    --table-only) TARGETS=0; shift ;;
    --no-run) RUN=0; TARGETS=0; shift ;;
    *) lib_fail "unknown argument $1" ;;
  esac
done
command -v primecount >/dev/null || lib_fail "primecount not installed (scripts/install-deps.sh)"
[ -x "$BIN" ] || lib_fail "$BIN missing (make all)"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
[ -n "$DAT" ] || DAT=$TMP/pi.dat
[ "$RUN" = 0 ] || lib_load_check
bad=0
med() { printf '%s\n' "$@" | lib_median; }
# run3 NAME CMD… -- CMD… : REPS alternating runs of two commands → "median_a median_b answer"
pair() {
  local -a A=() B=()
  while [ "$1" != -- ]; do A+=("$1"); shift; done
  shift; B=("$@")
  local ta=() tb=() a b
  for r in $(seq "$REPS"); do
    if [ $((r % 2)) = 1 ]; then a=$(lib_time "${A[@]}"); b=$(lib_time "${B[@]}")
    else b=$(lib_time "${B[@]}"); a=$(lib_time "${A[@]}"); fi
    [ "${a#* }" = "${b#* }" ] || { echo "MISMATCH: ${A[*]} → ${a#* }, ${B[*]} → ${b#* }" >&2; bad=1; }
    ta+=("${a%% *}"); tb+=("${b%% *}")
  done
  echo "$(med "${ta[@]}") $(med "${tb[@]}") ${a#* } (runs: ${ta[*]} / ${tb[*]})"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a / b}'; }

if [ "$TARGETS" = 1 ]; then
  for x in 1e14 1e16; do
    xi=$(python3 -c "print(int($x))")
    read -r a b v rest <<<"$(pair "$BIN" pi "$xi" 1 -- primecount "$x" -t1)"
    echo "pi($x) one thread: primed $a s, primecount -t1 $b s, ratio $(ratio "$a" "$b") (target <= 1.2, stretch <= 1.0) $rest"
  done
  read -r a b v rest <<<"$(pair "$BIN" pi 10000000000000000 1 -- "$BIN" pi 10000000000000000 2)"
  echo "pi(1e16) 1 thread $a s, 2 threads $b s, speed-up $(ratio "$a" "$b") (target >= 1.8) $rest"
  echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
fi

[ "$RUN" = 0 ] || : >"$DAT"
for ((k = 8; RUN && k <= MAXK; k++)); do
  x=1$(printf '%0*d' "$k" 0)
  read -r a b v _ <<<"$(pair "$BIN" pi "$x" 1 -- primecount "$x" -t1)"
  dr=()
  for _ in $(seq "$REPS"); do
    d=$(BENCH_PI_ALGO=dr lib_time "$BIN" pi "$x" 1)
    [ "${d#* }" = "$v" ] || { echo "MISMATCH: DR pi($x) → ${d#* }, primecount $v" >&2; bad=1; }
    dr+=("${d%% *}")
  done
  echo "$k $a $b $v $(med "${dr[@]}")" | tee -a "$DAT"
done
[ "$RUN" = 0 ] || echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ -n "$PNG" ] && command -v gnuplot >/dev/null; then
  gnuplot <<GP || echo "the plot failed" >&2
set terminal pngcairo size 900,500; set output '$PNG'; set termoption noenhanced; set key left top
set title 'pi(x), one thread, same run: primed (Gourdon; Deleglise-Rivat) vs primecount -t1'
set xlabel 'x'; set ylabel 'wall time per process (s)'; set logscale x 10; set logscale y
set format x '10^%L'; set grid
plot '$DAT' using (10**\$1):2 with linespoints lw 2 title 'primed, Gourdon (bench_sieve pi X 1)', \
  '' using (10**\$1):5 with linespoints lw 1 dt 3 title 'primed, DR (BENCH_PI_ALGO=dr)', \
  '' using (10**\$1):3 with linespoints lw 2 dt 2 title 'primecount X -t1'
GP
fi

if [ "$DOCS" = 1 ]; then
  python3 - "$DAT" "$(cut -d' ' -f1-3 /proc/loadavg)" "$(date -u '+%Y-%m-%d %H:%M UTC')" <<'PY'
import re, sys
dat, load, when = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [l.split() for l in open(dat) if l.strip()]
tab = "| x | primed (Gourdon) s | primecount s | ratio | primed (DR) s | π(x) |\n|---|---|---|---|---|---|\n"
tab += "".join(f"| 10^{k} | {float(a):.3f} | {float(b):.3f} | {float(a)/float(b):.2f} | {float(d):.3f} | {v} |\n"
               for k, a, b, v, d in rows)
sec = f"""## π(x): primed vs primecount (one thread, completed)

`build/tools/bench_sieve pi X 1` (the engine of `/v1/pi`: Gourdon's algorithm, src/engine/pi*.c;
the DR column is the same binary with `BENCH_PI_ALGO=dr`) against `primecount X -t1`
(primecount's default, Gourdon's algorithm), alternating, median of 3 runs each, whole-process
wall time (so the smallest x measure process start-up); the answers are compared. Written by
`scripts/bench-pi.sh --docs` on {when}, load average at the end {load} (2 shared cores).
Through the service, `scripts/bench-pi-service.sh` measures the same over HTTP plus the
2-worker speed-up, count/nth at the default deadline and cancellation.

![pi(x) vs primecount](bench-pi.png)

{tab}
"""
doc = open("docs/benchmarks.md").read()
new = re.sub(r"## π\(x\): primed vs primecount.*?(?=\n## )", sec.rstrip("\n") + "\n", doc, flags=re.S)
open("docs/benchmarks.md", "w").write(new)
PY
  echo "rewrote docs/benchmarks.md's π section and docs/bench-pi.png"
fi
exit "$bad"
