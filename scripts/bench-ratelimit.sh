#!/usr/bin/env bash
# bench-ratelimit.sh — cost of per-client rate limiting when the limit is never reached: two
# primed processes in the same run, ON with --rate-limit 1e9 --rate-limit-burst 1e9
# --max-inflight-per-client 64 (every /v1 request keyed, priced, charged and given RateLimit-*
# headers) and OFF (the default), alternating short wrk runs so both see the same machine noise.
# Prints req/s and server CPU µs per request (the steadier number on a shared machine), their
# medians and ratios. Target: within 5 % of off.
# Usage: scripts/bench-ratelimit.sh [RUNS=7] [SECONDS=3]   (env: PRIMED_BIN, URL_PATH, BENCH_PIN)
# BENCH_PIN=1 (needs 2 cores) runs both servers on CPU 0 and wrk on CPU 1: on a 2-core machine
# where the scheduler otherwise moves them about, CPU/request splits into two modes ~40 % apart.
# A benchmark, not a test: it asserts nothing. 127.0.0.1 only; bounded by RUNS × 2 × SECONDS.
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/obs_lib.sh
RUNS=${1:-7}
DUR=${2:-3}
URL_PATH=${URL_PATH:-/v1/isprime?n=1000003}
command -v wrk >/dev/null || obs_fail "wrk not installed"
if [ "${BENCH_PIN:-0}" = 1 ]; then
  taskset -cp 0 $$ >/dev/null # the servers started below inherit CPU 0
  LIB_WRK_PREFIX=(taskset -c 1)
fi

obs_start ON --rate-limit 1e9 --rate-limit-burst 1e9 --max-inflight-per-client 64 --log-level warn
obs_start OFF --log-level warn
curl -sfi "http://127.0.0.1:$ON_PORT$URL_PATH" | grep -qi '^RateLimit-Limit: 1000000000' ||
  obs_fail "the ON instance does not rate-limit"

rps() { lib_wrk_cpu "$2" "http://127.0.0.1:$1$URL_PATH" "$DUR" 32; } # port pid → "req/s µs/req"

rps "$ON_PORT" "$ON_PID" >/dev/null; rps "$OFF_PORT" "$OFF_PID" >/dev/null # warm-up
on=(); off=(); con=(); coff=()
for r in $(seq "$RUNS"); do
  if [ $((r % 2)) = 1 ]; then a=$(rps "$ON_PORT" "$ON_PID"); b=$(rps "$OFF_PORT" "$OFF_PID")
  else b=$(rps "$OFF_PORT" "$OFF_PID"); a=$(rps "$ON_PORT" "$ON_PID"); fi
  on+=("${a% *}"); off+=("${b% *}"); con+=("${a#* }"); coff+=("${b#* }")
  printf 'run %d: rate limit on %10s req/s %7s µs CPU/req   off %10s req/s %7s µs CPU/req\n' \
    "$r" "${a% *}" "${a#* }" "${b% *}" "${b#* }"
done
awk -v a="$(printf '%s\n' "${on[@]}" | lib_median)" -v b="$(printf '%s\n' "${off[@]}" | lib_median)" \
    -v c="$(printf '%s\n' "${con[@]}" | lib_median)" -v e="$(printf '%s\n' "${coff[@]}" | lib_median)" \
    -v p="$URL_PATH" -v n="$RUNS" -v d="$DUR" 'BEGIN{
  printf "GET %s, wrk -t1 -c32, %d runs of %d s each\n", p, n, d;
  printf "median req/s: on %.0f, off %.0f, on/off = %.3f\n", a, b, a / b;
  printf "median server CPU per request: on %.1f µs, off %.1f µs (overhead %.1f %%)\n",
         c, e, (c / e - 1) * 100 }'
