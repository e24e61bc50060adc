#!/usr/bin/env bash
# bench-trace.sh — what a /debug/pprof/trace capture costs the cheapest requests (issue 27): one
# primed, wrk -t1 -c64 -d${SECONDS_PER_RUN}s on /v1/isprime?n=1000003 (answered on the I/O thread:
# every request is a dispatch span and a request record), alternating runs without and with a
# capture covering the whole run, ROUNDS times in the same process. Prints the median req/s of
# each and their ratio (target: with ≥ 95 % of without), and the server's CPU per request, which
# a shared machine disturbs far less. Also the events and drops of the last
# capture. 127.0.0.1 only; bounded: 2 × ROUNDS × (SECONDS_PER_RUN + 2) seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build}
PRIMED_BIN=$PWD/$B/primed
. scripts/lib.sh
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
ROUNDS=${ROUNDS:-3}
URL_PATH='/v1/isprime?n=1000003'
command -v wrk >/dev/null || { echo "wrk not installed (scripts/install-deps.sh)" >&2; exit 2; }
lib_load_check
LIB_LOG_DISCARD=1 primed_start P
lib_get -f "$P_URL$URL_PATH" | grep -q '"prime":true'

cpu_ticks() { awk '{print $14 + $15}' "/proc/$P_PID/stat"; }
# One wrk run: appends its req/s to FILE and the server's CPU per request (µs, utime+stime from
# /proc: steadier than req/s on a shared machine, as it does not count waiting for a core) to
# FILE.cpu.
rps() { # FILE
  local c0 c1 out
  c0=$(cpu_ticks)
  out=$(wrk -t1 -c64 -d"${SECONDS_PER_RUN}s" "$P_URL$URL_PATH")
  c1=$(cpu_ticks)
  grep -q 'Non-2xx' <<<"$out" && echo "non-2xx answers: $out" >&2
  awk '/^Requests\/sec:/ {print $2}' <<<"$out" >> "$1"
  awk -v c=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" '/requests in/ {printf "%.2f\n", c / hz * 1e6 / $1}' \
    <<<"$out" >> "$1.cpu"
}

: > "$LIB_TMP/off"; : > "$LIB_TMP/on"; : > "$LIB_TMP/off.cpu"; : > "$LIB_TMP/on.cpu"
for r in $(seq "$ROUNDS"); do
  rps "$LIB_TMP/off"
  curl -s --max-time $((SECONDS_PER_RUN * 4 + 10)) -o "$LIB_TMP/trace.json" \
    "http://127.0.0.1:$P_DPORT/debug/pprof/trace?seconds=$((SECONDS_PER_RUN + 1))" &
  cap=$!
  sleep 0.3 # the capture is recording before wrk starts, and outlasts it
  rps "$LIB_TMP/on"
  wait "$cap"
  primed_check P
  echo "round $r: off $(tail -1 "$LIB_TMP/off") req/s, $(tail -1 "$LIB_TMP/off.cpu") us CPU/req;" \
    "on $(tail -1 "$LIB_TMP/on") req/s, $(tail -1 "$LIB_TMP/on.cpu") us CPU/req"
done
python3 - "$LIB_TMP/trace.json" <<'PY'
import json, os, sys
d = json.load(open(sys.argv[1]))
print("last capture: %d events, %d dropped, %.1f MB of JSON" % (
    len(d["traceEvents"]), d["otherData"]["dropped_events"], os.path.getsize(sys.argv[1]) / 1e6))
PY
off=$(lib_median < "$LIB_TMP/off"); on=$(lib_median < "$LIB_TMP/on")
offc=$(lib_median < "$LIB_TMP/off.cpu"); onc=$(lib_median < "$LIB_TMP/on.cpu")
uptime
awk -v a="$off" -v b="$on" -v ac="$offc" -v bc="$onc" 'BEGIN {
  printf "median CPU/request: capture off %s us, on %s us: +%.1f%%\n", ac, bc, 100*(bc-ac)/ac
  printf "median req/s: capture off %s, on %s: on/off = %.1f%% (target >= 95%%)\n", a, b, 100*b/a
  exit (b >= 0.95*a) ? 0 : 1 }'
