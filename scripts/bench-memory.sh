#!/usr/bin/env bash
# Memory of streaming (issue 4 acceptance), 127.0.0.1 only, bounded (~40 s):
#  1. 64 concurrent `curl --limit-rate 1M` streaming /v1/primes?from=0&to=1e10 for 20 s; VmRSS of
#     primed sampled every second: peak <= 64 MiB, and no growth from the 5th to the 20th second
#     (allowance 5% for allocator noise).
#  2. then 1,000 requests disconnected mid-stream (curl -m 0.1, 50 at a time): RSS afterwards
#     within 5% of RSS before, every worker idle and no stream buffer left (/metrics).
# primed runs with the default workers (WORKERS=n to override): a stream whose reader is slower
# than the sieve parks its producer and gives the worker back, so 64 concurrent streams need no
# more workers than one. --queue-capacity 64 only lets all 64 be admitted in the same instant.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build}
PRIMED_BIN=$PWD/$B/primed
. scripts/lib.sh
STREAMS=${STREAMS:-64}
DURATION=${DURATION:-20}
DISCONNECTS=${DISCONNECTS:-1000}
curls=()
stop_curls() { [ ${#curls[@]} -eq 0 ] || kill "${curls[@]}" 2>/dev/null || true; }
lib_at_exit stop_curls
lib_load_check

# shellcheck disable=SC2086 # EXTRA_FLAGS is a list of flags
LIB_LOG_DISCARD=1 primed_start P --debug-listen off ${WORKERS:+--workers "$WORKERS"} \
  --queue-capacity "$STREAMS" --max-connections-per-ip 0 ${EXTRA_FLAGS:-}
pid=$P_PID port=$P_PORT
url="http://127.0.0.1:$port/v1/primes?from=0&to=1e10"
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; } # KiB
metric() { lib_metric "$port" "$1"; }

echo "idle RSS: $(( $(rss) / 1024 )) MiB"
for _ in $(seq "$STREAMS"); do
  curl -s --limit-rate 1M -o /dev/null "$url" & curls+=($!)
done
peak=0; rss5=0
for s in $(seq "$DURATION"); do
  sleep 1
  primed_check P
  r=$(rss); [ "$r" -gt "$peak" ] && peak=$r
  [ "$s" -eq 5 ] && rss5=$r
  printf 'second %2d: RSS %6d KiB, streams %s, producers parked %s, workers busy %s\n' "$s" "$r" \
    "$(metric primed_streams_active)" "$(metric primed_stream_producers_parked)" \
    "$(metric primed_workers_busy)"
done
rss20=$(rss)
kill "${curls[@]}" 2>/dev/null || true
wait "${curls[@]}" 2>/dev/null || true
curls=()
echo "peak RSS $((peak / 1024)) MiB (target <= 64); RSS at 5 s $rss5 KiB, at ${DURATION} s $rss20 KiB"
fail=0
[ "$peak" -le $((64 * 1024)) ] || { echo "FAIL: peak RSS above 64 MiB"; fail=1; }
[ "$rss20" -le $((rss5 * 105 / 100)) ] || { echo "FAIL: RSS grew from 5 s to ${DURATION} s"; fail=1; }

for _ in $(seq 100); do [ "$(metric primed_streams_active)" = 0 ] && break; sleep 0.1; done
before=$(rss)
seq "$DISCONNECTS" | xargs -P 50 -I{} curl -s -m 0.1 -o /dev/null "$url" || true
for _ in $(seq 100); do
  [ "$(metric primed_workers_busy)" = 0 ] && [ "$(metric primed_streams_active)" = 0 ] && break
  sleep 0.1
done
after=$(rss)
echo "after $DISCONNECTS mid-stream disconnects: RSS $before -> $after KiB;" \
     "workers_busy $(metric primed_workers_busy), streams_active $(metric primed_streams_active)," \
     "stream_buffer_bytes $(metric primed_stream_buffer_bytes)," \
     "jobs cancelled $(curl -s "http://127.0.0.1:$port/metrics" | awk -F' ' '/outcome="cancelled"/ {print $2}')"
[ "$after" -le $((before * 105 / 100)) ] || { echo "FAIL: RSS did not return within 5%"; fail=1; }
# A second round tells a leak (grows again) from the allocator keeping its high-water mark.
seq "$DISCONNECTS" | xargs -P 50 -I{} curl -s -m 0.1 -o /dev/null "$url" || true
for _ in $(seq 100); do [ "$(metric primed_workers_busy)" = 0 ] && break; sleep 0.1; done
after2=$(rss)
echo "after a second round of $DISCONNECTS: RSS $after2 KiB ($(( (after2 - after) * 100 / after ))% vs the first round)"
[ "$(metric primed_workers_busy)" = 0 ] || { echo "FAIL: workers still busy"; fail=1; }
[ "$(metric primed_stream_buffer_bytes)" = 0 ] || { echo "FAIL: stream buffers not freed"; fail=1; }
primed_check P
rc=0; primed_stop P || rc=$P_RC
echo "primed exit status $rc"
[ $fail -eq 0 ] && [ $rc -eq 0 ] && echo PASS
