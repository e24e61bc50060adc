#!/usr/bin/env bash
# HTTP overhead of primed against a minimal libmicrohttpd server (tests/tools/baseline_server.c,
# same daemon flags and I/O threads, constant JSON body), measured in the same run with
#   wrk -t1 -c64 -d${SECONDS_PER_RUN}s http://127.0.0.1:PORT/v1/isprime?n=1000003
# Runs (alternating, ROUNDS times): baseline, primed (isprime answered inline on the I/O thread,
# the default), primed with --inline-small-answers false (isprime handed to the worker pool:
# suspend + resume). Prints the median req/s of each and the ratios. Target: primed >= 80% of
# baseline. 127.0.0.1 only; bounded: ROUNDS × 3 × SECONDS_PER_RUN seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build}
PRIMED_BIN=$PWD/$B/primed
. scripts/lib.sh
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
ROUNDS=${ROUNDS:-3}
URL_PATH='/v1/isprime?n=1000003'

[ -x "$B/primed" ] && [ -x "$B/tools/baseline_server" ] || { echo "build first: make" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk not installed (scripts/install-deps.sh)" >&2; exit 2; }
lib_load_check

LIB_LOG_DISCARD=1 lib_spawn_server BASE "$LIB_TMP/base.port" "$B/tools/baseline_server" "$LIB_TMP/base.port"
LIB_LOG_DISCARD=1 primed_start INLINE --debug-listen off
LIB_LOG_DISCARD=1 primed_start HANDOFF --debug-listen off --inline-small-answers false
base_port=$BASE_PORT inline_port=$INLINE_PORT handoff_port=$HANDOFF_PORT

lib_get -f "http://127.0.0.1:$inline_port$URL_PATH" | grep -q '"prime":true'
lib_get -f "http://127.0.0.1:$handoff_port$URL_PATH" | grep -q '"prime":true'

rps() { # port → req/s
  wrk -t1 -c64 -d"${SECONDS_PER_RUN}s" "http://127.0.0.1:$1$URL_PATH" |
    awk '/^Requests\/sec:/ {print $2} /Non-2xx/ {print "non2xx " $0 > "/dev/stderr"}'
}

: > "$LIB_TMP/base"; : > "$LIB_TMP/inline"; : > "$LIB_TMP/handoff"
for r in $(seq "$ROUNDS"); do
  rps "$base_port" >> "$LIB_TMP/base"
  rps "$inline_port" >> "$LIB_TMP/inline"
  rps "$handoff_port" >> "$LIB_TMP/handoff"
  primed_check INLINE; primed_check HANDOFF
  echo "round $r: baseline $(tail -1 "$LIB_TMP/base")  primed $(tail -1 "$LIB_TMP/inline")  primed-handoff $(tail -1 "$LIB_TMP/handoff")"
done
b=$(lib_median < "$LIB_TMP/base"); i=$(lib_median < "$LIB_TMP/inline"); h=$(lib_median < "$LIB_TMP/handoff")
echo "median req/s: baseline $b  primed(inline) $i  primed(hand-off) $h"
awk -v b="$b" -v i="$i" -v h="$h" 'BEGIN {
  printf "primed/baseline = %.1f%% (target >= 80%%)\n", 100*i/b
  printf "hand-off/baseline = %.1f%%, inline/hand-off = %.2fx\n", 100*h/b, i/h
  exit (i >= 0.8*b) ? 0 : 1 }'
