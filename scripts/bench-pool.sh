#!/usr/bin/env bash
# Worker-pool measurements (issue 4 acceptance), 127.0.0.1 only, bounded:
#  overload: 200 concurrent count [0,1e11] against --workers 2 --queue-capacity 8: the excess get
#            503 in < 50 ms each; /healthz p99 < 100 ms during the storm.
#  parallel: count [0,1e10] with --workers 2 vs --workers 1, alternating, ROUNDS times: median
#            speed-up >= 1.7x.
set -uo pipefail
cd "$(dirname "$0")/.."
B=${B:-build}
ROUNDS=${ROUNDS:-3}
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT
start() { # name, flags... → port in $tmp/name.port
  local name=$1; shift
  "$B/primed" --listen 127.0.0.1:0 --debug-listen off --port-file "$tmp/$name.port" \
    --max-connections-per-ip 0 "$@" 2>/dev/null & pids+=($!)
  for _ in $(seq 200); do [ -s "$tmp/$name.port" ] && break; sleep 0.05; done
  cut -d' ' -f1 "$tmp/$name.port"
}
p99() { sort -g | awk '{a[NR]=$1} END {i=int(NR*0.99); if (i<1) i=1; printf "%.1f", a[i]*1000}'; }

echo "== overload"
port=$(start overload --workers 2 --queue-capacity 8 --shutdown-timeout 1)
( for _ in $(seq 300); do curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$port/healthz"; sleep 0.01; done ) > "$tmp/health" &
hp=$!
seq 200 | xargs -P 200 -I{} curl -s -o /dev/null -m 60 -w '%{http_code} %{time_total}\n' \
  "http://127.0.0.1:$port/v1/count?from=0&to=1e11" > "$tmp/storm" &
sp=$!
wait $hp
kill -TERM "${pids[-1]}"; wait $sp
n503=$(awk '$1 == 503' "$tmp/storm" | wc -l)
n200=$(awk '$1 == 200' "$tmp/storm" | wc -l)
echo "storm: $n503 × 503, $n200 × 200, others $(awk '$1 != 503 && $1 != 200' "$tmp/storm" | wc -l) (cancelled at shutdown)"
echo "503 latency: p99 $(awk '$1 == 503 {print $2}' "$tmp/storm" | p99) ms, max $(awk '$1 == 503 {print $2}' "$tmp/storm" | sort -g | tail -1 | awk '{printf "%.1f", $1*1000}') ms (target < 50)"
echo "/healthz during the storm: p99 $(p99 < "$tmp/health") ms over $(wc -l < "$tmp/health") requests (target < 100)"

echo "== parallel count [0,1e10]"
p1=$(start w1 --workers 1)
p2=$(start w2 --workers 2)
q='/v1/count?from=0&to=1e10'
for r in $(seq "$ROUNDS"); do
  t1=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$p1$q")
  t2=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$p2$q")
  echo "round $r: 1 worker ${t1}s, 2 workers ${t2}s" | tee -a "$tmp/par"
done
awk '{gsub("s,","",$5); gsub("s","",$8); print $5/$8}' "$tmp/par" | sort -g |
  awk '{a[NR]=$1} END {printf "median speed-up %.2fx (target >= 1.7)\n", a[int((NR+1)/2)]}'
