#!/usr/bin/env bash
# bench-metrics-overhead.sh — what a /metrics scrape every 100 ms (150× more often than a
# 15 s Prometheus interval) costs the request rate: wrk against one primed, alternating runs
# without and with a background scraper, medians of RUNS runs. Also prints the scrape time and
# size. A benchmark, not a test: it asserts nothing.
# Usage: scripts/bench-metrics-overhead.sh [RUNS=5] [SECONDS=3]   (env: PRIMED_BIN, URL_PATH)
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/obs_lib.sh
RUNS=${1:-5}
DUR=${2:-3}
URL_PATH=${URL_PATH:-/v1/count?from=1000000&to=2000000}
command -v wrk >/dev/null || obs_fail "wrk not installed"
lib_load_check

obs_start P
# one wrk run → "req/s server-CPU-µs-per-request" (the CPU includes the scrapes, when running)
rps() { lib_wrk_cpu "$P_PID" "http://127.0.0.1:$P_PORT$URL_PATH" "$DUR"; }
scraper() { # every 100 ms for DUR+1 s over one keep-alive connection, like Prometheus does
  # (a curl process per scrape would cost the shared CPUs more than the scrape itself)
  python3 - "$P_PORT" "$DUR" <<'PY'
import http.client, sys, time
port, dur = int(sys.argv[1]), float(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
end = time.monotonic() + dur + 1
while time.monotonic() < end:
    c.request("GET", "/metrics")
    c.getresponse().read()
    time.sleep(0.1)
PY
}

rps >/dev/null # warm-up
plain=(); scraped=(); cp=(); cs=()
for r in $(seq "$RUNS"); do
  if [ $((r % 2)) = 1 ]; then
    a=$(rps); scraper & sp=$!; b=$(rps); wait $sp
  else
    scraper & sp=$!; b=$(rps); wait $sp; a=$(rps)
  fi
  plain+=("${a% *}"); scraped+=("${b% *}"); cp+=("${a#* }"); cs+=("${b#* }")
  printf 'run %d: no scrapes %10s req/s %6s µs CPU/req   scrape every 100 ms %10s req/s %6s µs CPU/req\n' \
    "$r" "${a% *}" "${a#* }" "${b% *}" "${b#* }"
done
mp=$(printf '%s\n' "${plain[@]}" | lib_median)
ms=$(printf '%s\n' "${scraped[@]}" | lib_median)
mcp=$(printf '%s\n' "${cp[@]}" | lib_median)
mcs=$(printf '%s\n' "${cs[@]}" | lib_median)
read -r t sz < <(curl -s -o /dev/null -w '%{time_total} %{size_download}\n' "http://127.0.0.1:$P_PORT/metrics")
awk -v a="$mp" -v b="$ms" -v c="$mcp" -v e="$mcs" -v p="$URL_PATH" -v t="$t" -v s="$sz" 'BEGIN{
  printf "GET %s, wrk -t1 -c8\n", p;
  printf "median req/s: no scrapes %.0f, scraped %.0f, ratio %.3f (overhead %.1f %%)\n",
         a, b, b / a, (1 - b / a) * 100;
  printf "median server CPU per request: no scrapes %.1f µs, scraped %.1f µs (overhead %.1f %%)\n",
         c, e, (e / c - 1) * 100;
  printf "one scrape: %d bytes in %.2f ms (curl time_total, idle server)\n", s, t * 1000 }'
