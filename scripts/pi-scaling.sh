#!/usr/bin/env bash
# pi-scaling.sh X — how π(X)'s parallel plan would scale on machines with more cores than this.
# Runs the plan built for PLAN_T (64) workers on ONE thread (bench_sieve, BENCH_PI_SCHEDULE=2),
# recording the plan's build and every chunk's CPU time, then replays the pool's schedule (each
# free worker claims the next chunk in index order, as pool_parallel and pi_flight do) for
# T = 2, 4, 8, 16, 32, 64: predicted wall = plan build (serial) + makespan, efficiency =
# (one-thread time) / (T × predicted wall). With CHECK=1 it also runs the plan for real on 1 and 2
# threads here (the plan built for those T, as the service builds it) and prints the model's error.
# A model, printed not asserted; its last line is exactly "pi-scaling: x=X T=16 efficiency E".
# Usage: scripts/pi-scaling.sh 1e17   (env: BENCH_BIN=build/tools/bench_sieve, PLAN_T=64, CHECK=0)
set -euo pipefail
cd "$(dirname "$0")/.."
X=${1:?usage: pi-scaling.sh X}
BIN=${BENCH_BIN:-build/tools/bench_sieve}
PLAN_T=${PLAN_T:-64}
[ -x "$BIN" ] || { echo "pi-scaling: $BIN missing (make all)" >&2; exit 1; }
xi=$(python3 -c "import sys; from decimal import Decimal; print(int(Decimal(sys.argv[1])))" "$X")
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "pi-scaling: uptime: $(uptime)"
BENCH_PI_SCHEDULE=2 "$BIN" pi "$xi" "$PLAN_T" >/dev/null 2>"$log"
awk -v x="$X" '
  /^plan_cpu/ { plan = $2 }
  /^chunk / { n++; t[n] = $4; total += $4; kind[$3] += $4 }
  END {
    one = plan + total
    printf "pi-scaling: x=%s plan %.3f s + %d chunks %.3f s CPU on one thread (", x, plan, n, total
    sep = ""; for (k in kind) { printf "%s%s %.3f", sep, k, kind[k]; sep = ", " } print ")"
    split("2 4 8 16 32 64", Ts, " ")
    for (j = 1; j <= 6; j++) {
      T = Ts[j]; for (w = 1; w <= T; w++) busy[w] = 0
      for (i = 1; i <= n; i++) { m = 1; for (w = 2; w <= T; w++) if (busy[w] < busy[m]) m = w; busy[m] += t[i] }
      span = 0; for (w = 1; w <= T; w++) if (busy[w] > span) span = busy[w]
      wall = plan + span; eff[T] = one / (T * wall)
      printf "pi-scaling: T=%d predicted wall %.3f s, speed-up %.2f, efficiency %.3f\n", T, wall, one / wall, eff[T]
    }
    printf "%.6f %.6f\n", one, plan + 0 > "/dev/stderr"
    last = sprintf("pi-scaling: x=%s T=16 efficiency %.3f", x, eff[16])
    print last > "/dev/fd/3"
  }' "$log" 3>"$log.last" 2>"$log.one"
if [ "${CHECK:-0}" = 1 ]; then
  read -r one _ <"$log.one"
  # the real runs: the plan the service would build for 1 and 2 workers, wall time by bench_sieve
  w1=$("$BIN" pi "$xi" 1 2>&1 >/dev/null | awk '/^seconds/{print $2}')
  pred2=$(BENCH_PI_SCHEDULE=1 "$BIN" pi "$xi" 2 2>&1 >/dev/null | awk '/makespan_2/{print $6}')
  w2=$("$BIN" pi "$xi" 2 2>&1 >/dev/null | awk '/^seconds/{print $2}')
  awk -v w1="$w1" -v w2="$w2" -v one="$one" -v p2="$pred2" 'BEGIN {
    printf "pi-scaling: measured 1 thread %.3f s (model %.3f s, error %+.1f %%)\n", w1, one, 100 * (one - w1) / w1
    printf "pi-scaling: measured 2 threads %.3f s; model of the 2-worker plan (chunks replayed) %.3f s + plan, error vs measured %+.1f %%\n", w2, p2, 100 * (p2 - w2) / w2 }'
fi
rm -f "$log.one"
cat "$log.last"; rm -f "$log.last"
