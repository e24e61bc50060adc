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
WRK=(wrk)
if [ "${BENCH_PIN:-0}" = 1 ]; then
  taskset -cp 0 $$ >/dev/null # the servers started below inherit CPU 0
  WRK=(taskset -c 1 wrk)
fi

obs_start ON --rate-limit 1e9 --rate-limit-burst 1e9 --max-inflight-per-client 64 --log-level warn
obs_start OFF --log-level warn
curl -sfi "http://127.0.0.1:$ON_PORT$URL_PATH" | grep -qi '^RateLimit-Limit: 1000000000' ||
  obs_fail "the ON instance does not rate-limit"

TCK=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime, clock ticks
rps() { # port pid → "req/s CPU-µs-per-request"
  local t0 t1 out
  t0=$(ticks "$2")
  out=$("${WRK[@]}" -t1 -c32 -d"${DUR}s" "http://127.0.0.1:$1$URL_PATH")
  t1=$(ticks "$2")
  awk -v t="$((t1 - t0))" -v tck="$TCK" '/requests in/{n=$1} /^Requests\/sec:/{r=$2}
    /Non-2xx/{print "non-2xx answers: " $0 > "/dev/stderr"}
    END{printf "%s %.1f\n", r, t / tck * 1e6 / n}' <<<"$out"
}
median() { sort -g | awk '{a[NR]=$1} END{print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

rps "$ON_PORT" "$ON_PID" >/dev/null; rps "$OFF_PORT" "$OFF_PID" >/dev/null # warm-up
on=(); off=(); con=(); coff=()
for r in $(seq "$RUNS"); do
  if [ $((r % 2)) = 1 ]; then a=$(rps "$ON_PORT" "$ON_PID"); b=$(rps "$OFF_PORT" "$OFF_PID")
  else b=$(rps "$OFF_PORT" "$OFF_PID"); a=$(rps "$ON_PORT" "$ON_PID"); fi
  on+=("${a% *}"); off+=("${b% *}"); con+=("${a#* }"); coff+=("${b#* }")
  printf 'run %d: rate limit on %10s req/s %7s µs CPU/req   off %10s req/s %7s µs CPU/req\n' \
    "$r" "${a% *}" "${a#* }" "${b% *}" "${b#* }"
done
awk -v a="$(printf '%s\n' "${on[@]}" | median)" -v b="$(printf '%s\n' "${off[@]}" | median)" \
    -v c="$(printf '%s\n' "${con[@]}" | median)" -v e="$(printf '%s\n' "${coff[@]}" | median)" \
    -v p="$URL_PATH" -v n="$RUNS" -v d="$DUR" 'BEGIN{
  printf "GET %s, wrk -t1 -c32, %d runs of %d s each\n", p, n, d;
  printf "median req/s: on %.0f, off %.0f, on/off = %.3f\n", a, b, a / b;
  printf "median server CPU per request: on %.1f µs, off %.1f µs (overhead %.1f %%)\n",
         c, e, (c / e - 1) * 100 }'
