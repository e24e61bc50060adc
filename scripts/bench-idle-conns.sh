#!/usr/bin/env bash
# bench-idle-conns.sh BIN_A BIN_B [ROUNDS] [IDLE] — server CPU per request of two primed builds,
# interleaved, while IDLE idle keep-alive connections are held open.
#
# For each round and build: start it on 127.0.0.1 (ephemeral port), open IDLE connections that
# send nothing, run `wrk -t2 -c8 -d5s /v1/isprime?n=97`, and print requests, req/s and the
# server's CPU time (utime+stime from /proc/PID/stat) per request. CPU per request is robust
# against other load on a shared machine; req/s is not. Used to price poll against epoll on the
# main listener (docs/reliability.md, audit defect 5). Every wait is bounded; each server is
# stopped by its PID.
set -uo pipefail
A=${1:?usage: bench-idle-conns.sh BIN_A BIN_B [ROUNDS] [IDLE]}
B=${2:?usage: bench-idle-conns.sh BIN_A BIN_B [ROUNDS] [IDLE]}
R=${3:-2}
IDLE=${4:-500}
command -v wrk >/dev/null || { echo "wrk not installed (scripts/install-deps.sh)"; exit 1; }
tck=$(getconf CLK_TCK)
for r in $(seq "$R"); do
  for bin in "$A" "$B"; do
    d=$(mktemp -d)
    "$bin" --listen 127.0.0.1:0 --debug-listen off --port-file "$d/p" --log-level error \
      --max-connections-per-ip $((IDLE + 100)) 2>/dev/null &
    pid=$!
    for _ in $(seq 100); do [ -s "$d/p" ] && break; sleep 0.05; done
    if [ ! -s "$d/p" ]; then echo "$bin did not start"; kill -KILL "$pid"; rm -rf "$d"; exit 1; fi
    P=$(cut -d' ' -f1 "$d/p")
    python3 -c "
import socket, time
held = [socket.create_connection(('127.0.0.1', $P)) for _ in range($IDLE)]
time.sleep(8)" &
    holder=$!
    sleep 0.5
    c0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    out=$(timeout 20 wrk -t2 -c8 -d5s "http://127.0.0.1:$P/v1/isprime?n=97")
    c1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    echo "$bin idle=$IDLE round=$r requests=$n req/s=$rps cpu_us_per_req=$(awk -v a="$c0" -v b="$c1" \
      -v n="$n" -v t="$tck" 'BEGIN { printf "%.2f", (b - a) / t * 1e6 / (n > 0 ? n : 1) }')"
    kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
    kill -TERM "$pid"; wait "$pid"
    rm -rf "$d"
  done
done
