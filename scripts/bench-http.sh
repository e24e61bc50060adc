#!/usr/bin/env bash
# HTTP overhead of primed against a minimal libmicrohttpd server (tests/tools/baseline_server.c,
# same daemon flags and I/O threads, constant JSON body), measured in the same run with
#   wrk -t${WRK_THREADS:-1} -cC -d${SECONDS_PER_RUN}s http://127.0.0.1:PORT/v1/isprime?n=1000003
# for each C in CONNS (default "64 256"; on 16 cores: WRK_THREADS=8). wrk's p99 is listed too. Runs alternate, ROUNDS times: baseline, primed
# (isprime answered inline on the I/O thread, the default), primed with --inline-small-answers
# false (isprime handed to the worker pool: suspend + resume) and, with BENCH_RATELIMIT=1,
# primed with per-client rate limiting on but never reached (--rate-limit 1e9 --rate-limit-burst
# 1e9 --max-inflight-per-client 1). Prints for each the median req/s and the median server CPU
# per request (utime+stime from /proc/PID/stat over the run: robust against other load on a
# shared machine, which req/s is not). Targets (issue 24): primed >= 90% of baseline, rate
# limiting on >= 90% of baseline. IO_THREADS (default: primed's auto) is passed to both servers.
# 127.0.0.1 only; bounded: ROUNDS × |CONNS| × 4 × SECONDS_PER_RUN seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build}
PRIMED_BIN=$PWD/$B/primed
. scripts/lib.sh
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64 256}
URL_PATH='/v1/isprime?n=1000003'
IO_THREADS=${IO_THREADS:-0}
WRK_THREADS=${WRK_THREADS:-1}

[ -x "$B/primed" ] && [ -x "$B/tools/baseline_server" ] || { echo "build first: make" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk not installed (scripts/install-deps.sh)" >&2; exit 2; }
lib_load_check
uptime

# Both servers get the same I/O threads: primed's auto count, read from its start-up log.
common=(--debug-listen off --io-threads "$IO_THREADS" --max-connections-per-ip 1000)
LIB_LOG_DISCARD=1 primed_start INLINE "${common[@]}"
if [ "$IO_THREADS" = 0 ]; then
  IO_THREADS=$(python3 -c 'import os; print(min(len(os.sched_getaffinity(0)), 32))')
fi
LIB_LOG_DISCARD=1 lib_spawn_server BASE "$LIB_TMP/base.port" "$B/tools/baseline_server" \
  "$LIB_TMP/base.port" "$IO_THREADS"
LIB_LOG_DISCARD=1 primed_start HANDOFF "${common[@]}" --inline-small-answers false
sides="BASE INLINE HANDOFF"
if [ "${BENCH_RATELIMIT:-0}" = 1 ]; then
  LIB_LOG_DISCARD=1 primed_start RL "${common[@]}" --rate-limit 1e9 --rate-limit-burst 1e9 \
    --max-inflight-per-client 1
  lib_get -fi "http://127.0.0.1:$RL_PORT$URL_PATH" | grep -qi '^RateLimit-Limit: 1000000000'
  sides="$sides RL"
fi
echo "I/O threads: $IO_THREADS each"
lib_get -f "http://127.0.0.1:$INLINE_PORT$URL_PATH" | grep -q '"prime":true'
lib_get -f "http://127.0.0.1:$HANDOFF_PORT$URL_PATH" | grep -q '"prime":true'

tck=$(getconf CLK_TCK)
run() { # NAME CONNS → "req/s cpu_us_per_req"
  local port_var=$1_PORT pid=${LIB_SRV_PID[$1]} c0 c1 out n rps
  c0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  out=$(wrk -t"$WRK_THREADS" -c"$2" -d"${SECONDS_PER_RUN}s" --latency \
    "http://127.0.0.1:${!port_var}$URL_PATH")
  echo "$1 $2 conns p99 $(awk '$1 == "99%" {print $2}' <<<"$out")" >> "$LIB_TMP/p99"
  c1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  grep -q Non-2xx <<<"$out" && echo "$1: non-2xx answers" >&2
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  awk -v r="$rps" -v a="$c0" -v b="$c1" -v n="$n" -v t="$tck" \
    'BEGIN { printf "%s %.2f\n", r, (b - a) / t * 1e6 / (n > 0 ? n : 1) }'
}

for c in $CONNS; do
  for s in $sides; do : > "$LIB_TMP/$s.$c.rps"; : > "$LIB_TMP/$s.$c.cpu"; done
done
for r in $(seq "$ROUNDS"); do
  for c in $CONNS; do
    line="round $r, $c connections:"
    for s in $sides; do
      read -r rps cpu < <(run "$s" "$c")
      echo "$rps" >> "$LIB_TMP/$s.$c.rps"; echo "$cpu" >> "$LIB_TMP/$s.$c.cpu"
      line="$line $s $rps req/s ${cpu} us/req;"
      [ "$s" = BASE ] || primed_check "$s"
    done
    echo "$line"
  done
done
uptime
fail=0
for c in $CONNS; do
  b=$(lib_median < "$LIB_TMP/BASE.$c.rps"); bc=$(lib_median < "$LIB_TMP/BASE.$c.cpu")
  for s in $sides; do
    [ "$s" = BASE ] && continue
    m=$(lib_median < "$LIB_TMP/$s.$c.rps"); mc=$(lib_median < "$LIB_TMP/$s.$c.cpu")
    awk -v s="$s" -v c="$c" -v b="$b" -v m="$m" -v bc="$bc" -v mc="$mc" 'BEGIN {
      printf "%3s conns %-7s median %9.0f req/s = %5.1f%% of baseline (%.0f); CPU/req %.2f us = %.2fx baseline (%.2f)\n",
        c, s, m, 100*m/b, b, mc, mc/bc, bc }'
    if [ "$s" != HANDOFF ]; then
      awk -v b="$b" -v m="$m" 'BEGIN { exit (m >= 0.9*b) ? 0 : 1 }' || fail=1
    fi
  done
done
echo "p99 per run:"; sort "$LIB_TMP/p99" | sed 's/^/  /'
echo "target: primed (and rate limiting on) >= 90% of baseline req/s: $([ $fail = 0 ] && echo met || echo NOT met)"
exit $fail
