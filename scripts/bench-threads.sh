#!/usr/bin/env bash
# bench-threads.sh — what a thread dump every 100 ms costs the service: wrk on /v1/isprime
# against one primed, alternating runs with a background client that asks every 100 ms for a
# thread dump or — the baseline — for /debug/pprof/cmdline (a few hundred bytes, no work), medians
# of RUNS runs (request rate and server CPU per request). The baseline has the same background
# client because on this (virtualised, shared) machine any process waking every 100 ms raises
# wrk's rate by up to 3x (a bare `while sleep 0.1` loop does it), which would otherwise pass for
# a gain from dumping. The dumper takes the pprof profile (/debug/pprof/threads, the heaviest
# form: capture + gzip) over one keep-alive connection. Also prints the capture time the dump
# reports and the server CPU of one dump. A benchmark, not a test: it asserts nothing.
# Usage: scripts/bench-threads.sh [RUNS=5] [SECONDS=3]
#        (env: PRIMED_BIN, URL_PATH, DUMP_PATH, BASE_PATH)
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/obs_lib.sh
RUNS=${1:-5}
DUR=${2:-3}
URL_PATH=${URL_PATH:-/v1/isprime?n=1000000007}
DUMP_PATH=${DUMP_PATH:-/debug/pprof/threads}
BASE_PATH=${BASE_PATH:-/debug/pprof/cmdline}
command -v wrk >/dev/null || obs_fail "wrk not installed"

obs_start P
TCK=$(getconf CLK_TCK)
ticks() { lib_server_ticks "$P_PID"; }
# one wrk run → "req/s server-CPU-µs-per-request" (the CPU includes the dumps, when running)
rps() { lib_wrk_cpu "$P_PID" "http://127.0.0.1:$P_PORT$URL_PATH" "$DUR"; }
dumper() { # GET $1 every 100 ms for DUR+1 s; prints how many it took and how many were 200
  python3 - "$P_DPORT" "$DUR" "$1" <<'PY'
import http.client, sys, time
port, dur, path = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
end = time.monotonic() + dur + 1
n = ok = 0
while time.monotonic() < end:
    c.request("GET", path)
    r = c.getresponse()
    r.read()
    n += 1
    ok += r.status == 200
    time.sleep(0.1)
print(n, ok, file=sys.stderr)
PY
}

rps >/dev/null # warm-up
plain=(); dumped=(); cp=(); cd=()
for r in $(seq "$RUNS"); do
  if [ $((r % 2)) = 1 ]; then
    dumper "$BASE_PATH" 2>/dev/null & dp=$!; a=$(rps); wait $dp
    dumper "$DUMP_PATH" 2>"$OBS_TMP/d.$r" & dp=$!; b=$(rps); wait $dp
  else
    dumper "$DUMP_PATH" 2>"$OBS_TMP/d.$r" & dp=$!; b=$(rps); wait $dp
    dumper "$BASE_PATH" 2>/dev/null & dp=$!; a=$(rps); wait $dp
  fi
  plain+=("${a% *}"); dumped+=("${b% *}"); cp+=("${a#* }"); cd+=("${b#* }")
  read -r nd okd <"$OBS_TMP/d.$r"
  printf 'run %d: baseline %10s req/s %6s µs CPU/req   dump every 100 ms %10s req/s %6s µs CPU/req (%s dumps, %s ok)\n' \
    "$r" "${a% *}" "${a#* }" "${b% *}" "${b#* }" "$nd" "$okd"
done
mp=$(printf '%s\n' "${plain[@]}" | lib_median)
md=$(printf '%s\n' "${dumped[@]}" | lib_median)
mcp=$(printf '%s\n' "${cp[@]}" | lib_median)
mcd=$(printf '%s\n' "${cd[@]}" | lib_median)
# the server CPU one dump costs, from its utime+stime over 300 back-to-back dumps (no load):
# load-independent, unlike the request rates on a shared machine
t0=$(ticks)
python3 - "$P_DPORT" "$DUMP_PATH" <<'PY'
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=5)
for _ in range(300):
    c.request("GET", sys.argv[2])
    c.getresponse().read()
PY
t1=$(ticks)
cpu_per_dump=$(awk -v t="$((t1 - t0))" -v tck="$TCK" 'BEGIN{printf "%.3f", t / tck * 1000 / 300}')
took=$(curl -s "http://127.0.0.1:$P_DPORT/debug/pprof/threads?debug=1" | sed -n 's/.*took \([0-9.]*\) ms.*/\1/p')
read -r t sz < <(curl -s -o /dev/null -w '%{time_total} %{size_download}\n' "http://127.0.0.1:$P_DPORT$DUMP_PATH")
awk -v a="$mp" -v b="$md" -v c="$mcp" -v e="$mcd" -v p="$URL_PATH" -v d="$DUMP_PATH" -v t="$t" \
    -v s="$sz" -v k="$took" -v q="$cpu_per_dump" -v bp="$BASE_PATH" 'BEGIN{
  printf "GET %s, wrk -t1 -c8; background: GET %s (baseline: %s) every 100 ms\n", p, d, bp;
  printf "median req/s: baseline %.0f, dumping %.0f, ratio %.3f (loss %.1f %%)\n",
         a, b, b / a, (1 - b / a) * 100;
  printf "median server CPU per request: baseline %.1f µs, dumping %.1f µs (%+.1f %%)\n",
         c, e, (e / c - 1) * 100;
  printf "one dump: %d bytes in %.2f ms (curl time_total, idle server); capture itself %s ms\n",
         s, t * 1000, k;
  printf "server CPU per dump: %.3f ms (300 back to back): every 100 ms = %.2f %% of one core\n",
         q, q / 100 * 100 }'
obs_stop P
