#!/usr/bin/env bash
# loadtest.sh — short wrk load tests of primed on loopback, one line of numbers per scenario.
#
# Starts its own build/primed on 127.0.0.1 with an ephemeral port (or uses a running server given
# with -u, which must be on loopback), runs each scenario (scripts/wrk/<name>.lua) for a bounded
# time and prints requests/s, latency p50/p90/p99/p99.9, replies by status (counted by the wrk
# script's response() hook, reported in done()) and the server's RSS before/after (from /metrics
# process_resident_memory_bytes, else /proc/PID/status).
#
# Usage: scripts/loadtest.sh [options] [scenario ...]
#   scenarios: small count stream mix errors (default: all five), baseline (one fixed path)
#   -d DUR     duration per scenario, wrk syntax (default 5s; at most 60s)
#   -c N       connections (default 16)          -t N   wrk threads (default 2)
#   -w N       --workers of the primed started here (default: primed's own default)
#   -b BIN     primed binary (default build/primed)
#   -u URL     use the server at URL (http://127.0.0.1:PORT) instead of starting one
#   -p PID     with -u: the server's pid, for RSS from /proc when it has no /metrics
#   -o FILE    append one CSV row per scenario (header written when FILE is new)
#   -r FILE    sample RSS every 0.2 s into FILE ("seconds rss_bytes") for the whole run
#   -l LABEL   a label for the CSV rows (default: the scenario's target)
#   -- ARGS    extra flags for the primed started here
# Exit status: 0 when every scenario ran and no reply was unexpected for it (see the lua files)
# and wrk saw no socket errors; 1 otherwise; 2 on bad usage.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WRKDIR=$ROOT/scripts/wrk

dur=5s conns=16 threads=2 workers="" bin=$ROOT/build/primed url="" pid="" csv="" rsslog="" label=""
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
# Everything after the first "--" is for primed; getopts would swallow the "--" itself.
own=() extra=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then shift; extra=("$@"); break; fi
  own+=("$1"); shift
done
set -- ${own[@]+"${own[@]}"}
while getopts "d:c:t:w:b:u:p:o:r:l:h" opt; do
  case $opt in
    d) dur=$OPTARG ;; c) conns=$OPTARG ;; t) threads=$OPTARG ;; w) workers=$OPTARG ;;
    b) bin=$OPTARG ;; u) url=${OPTARG%/} ;; p) pid=$OPTARG ;; o) csv=$OPTARG ;;
    r) rsslog=$OPTARG ;; l) label=$OPTARG ;; *) usage ;;
  esac
done
shift $((OPTIND - 1))
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(small count stream mix errors)

# Bounded: a duration is N[s|m] and at most 60 s; this is a smoke-scale tool on a shared machine.
secs=""
if [[ $dur =~ ^([0-9]+)s?$ ]]; then secs=${BASH_REMATCH[1]}
elif [[ $dur =~ ^([0-9]+)m$ ]]; then secs=$((BASH_REMATCH[1] * 60)); fi
[ -n "$secs" ] && [ "$secs" -ge 1 ] && [ "$secs" -le 60 ] || { echo "loadtest: -d must be 1s…60s" >&2; exit 2; }
for s in "${scenarios[@]}"; do
  [ -f "$WRKDIR/$s.lua" ] && [ "$s" != common ] || { echo "loadtest: no scenario $s" >&2; exit 2; }
done
command -v wrk >/dev/null || { echo "loadtest: wrk not installed (scripts/install-deps.sh)" >&2; exit 2; }

PRIMED_BIN=$bin
. "$ROOT/scripts/lib.sh" # stops the server it starts at exit, and says so if it died
TMP=$LIB_TMP
started="" sampler_pid=""
stop_sampler() { [ -z "$sampler_pid" ] || kill "$sampler_pid" 2>/dev/null || true; }
lib_at_exit stop_sampler

if [ -n "$url" ]; then
  # Loopback only: this tool must never load anything but this machine.
  host=$(sed -nE 's#^http://(127\.0\.0\.1|localhost|\[::1\]):([0-9]+)$#\1#p' <<<"$url")
  [ -n "$host" ] || { echo "loadtest: -u must be http://127.0.0.1:PORT (loopback only)" >&2; exit 2; }
else
  [ -x "$bin" ] || { echo "loadtest: $bin not built (make)" >&2; exit 2; }
  args=(--debug-listen off)
  [ -n "$workers" ] && args+=(--workers "$workers")
  primed_start LT "${args[@]}" ${extra[@]+"${extra[@]}"}
  started=1 pid=$LT_PID url=$LT_URL
fi

# RSS in bytes: the server's own metric when it has /metrics, else /proc (needs the pid).
rss_bytes() {
  local v
  v=$(curl -s --max-time 2 "$url/metrics" 2>/dev/null |
      awk '$1 == "process_resident_memory_bytes" { printf "%.0f\n", $2; exit }')
  if [ -n "$v" ]; then echo "$v"; return; fi
  if [ -n "$pid" ] && [ -r "/proc/$pid/status" ]; then
    awk '/^VmRSS:/ { printf "%.0f\n", $2 * 1024 }' "/proc/$pid/status"; return
  fi
  echo 0
}
rss_from_proc() { awk '/^VmRSS:/ { printf "%.0f\n", $2 * 1024 }' "/proc/$1/status" 2>/dev/null || echo 0; }
mib() { if [ "${1:-0}" = 0 ]; then echo "n/a"; else awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; fi; }

if [ -n "$rsslog" ]; then
  : >"$rsslog"
  (
    t0=$(date +%s.%N)
    while true; do
      # /proc is cheaper than a scrape and does not add requests to the measurement.
      if [ -n "$pid" ]; then r=$(rss_from_proc "$pid"); else r=$(rss_bytes); fi
      echo "$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.2f", a - b }') $r" >>"$rsslog"
      sleep 0.2
    done
  ) &
  sampler_pid=$!
fi

if [ -n "$csv" ] && [ ! -s "$csv" ]; then
  echo "label,scenario,connections,threads,workers,duration_s,requests,rps,mbps,p50_us,p90_us,p99_us,p999_us,max_us,s2xx,s4xx,s5xx,unexpected,sock_errors,rss_before,rss_after" >"$csv"
fi

echo "target $url  duration $dur  connections $conns  threads $threads${workers:+  workers $workers}"
status=0
for s in "${scenarios[@]}"; do
  before=$(rss_bytes)
  set +e
  LUA_PATH="$WRKDIR/?.lua;;" timeout $((secs + 30)) \
    wrk -t "$threads" -c "$conns" -d "$dur" --timeout 10s -s "$WRKDIR/$s.lua" "$url" >"$TMP/wrk.out" 2>&1
  rc=$?
  set -e
  after=$(rss_bytes)
  if [ $rc -ne 0 ] || ! grep -q '^RESULT ' "$TMP/wrk.out"; then
    echo "scenario $s: wrk failed (exit $rc):"; cat "$TMP/wrk.out"; status=1; continue
  fi
  sed -n '/^scenario /,$p' "$TMP/wrk.out" | grep -v '^RESULT '
  echo "  server RSS: before $(mib "$before"), after $(mib "$after")"
  res=$(grep '^RESULT ' "$TMP/wrk.out")
  get() { sed -nE "s/.* $1=([^ ]+).*/\1/p" <<<"$res"; }
  if [ "$(get unexpected)" != 0 ] || [ "$(get sock_errors)" != 0 ]; then status=1; fi
  if [ -n "$csv" ]; then
    echo "${label:-$url},$s,$conns,$threads,${workers:-default},$(get seconds),$(get requests),$(get rps),$(get mbps),$(get p50_us),$(get p90_us),$(get p99_us),$(get p999_us),$(get max_us),$(get s2xx),$(get s4xx),$(get s5xx),$(get unexpected),$(get sock_errors),$before,$after" >>"$csv"
  fi
  [ -z "$started" ] || primed_check LT
done
exit $status
