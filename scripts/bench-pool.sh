#!/usr/bin/env bash
# Worker-pool measurements (issue 4 acceptance), 127.0.0.1 only, bounded:
#  overload: 200 concurrent count [0,1e11] against --workers 2 --queue-capacity 8: the excess get
#            503 in < 50 ms each; /healthz p99 < 100 ms during the storm.
#  parallel: count [0,1e10] with --workers 2 vs --workers 1, alternating, ROUNDS times: median
#            speed-up >= 1.7x.
set -uo pipefail
cd "$(dirname "$0")/.."
B=${B:-build}
PRIMED_BIN=$PWD/$B/primed
. scripts/lib.sh
ROUNDS=${ROUNDS:-3}
tmp=$LIB_TMP
lib_load_check
start() { # NAME flags... → $port
  LIB_LOG_DISCARD=1 primed_start "$1" --debug-listen off --max-connections-per-ip 0 "${@:2}"
  local pv="${1}_PORT"
  port=${!pv}
}
p99() { sort -g | awk '{a[NR]=$1} END {i=int(NR*0.99); if (i<1) i=1; printf "%.1f", a[i]*1000}'; }

echo "== overload"
start OVERLOAD --workers 2 --queue-capacity 8 --shutdown-timeout 1
( for _ in $(seq 300); do curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$port/healthz"; sleep 0.01; done ) > "$tmp/health" &
hp=$!
# One line per request "i code seconds"; its body in $tmp/body.i.
seq 200 | xargs -P 200 -I{} curl -s -m 60 -o "$tmp/body.{}" -w '{} %{http_code} %{time_total}\n' \
  "http://127.0.0.1:$port/v1/count?from=0&to=1e11" > "$tmp/storm" &
sp=$!
wait $hp
primed_signal OVERLOAD TERM; wait $sp
primed_wait OVERLOAD || echo "overload server: exit status $OVERLOAD_RC after SIGTERM"
over="$tmp/over"; : > "$over"; other=0
while read -r i code secs; do
  if grep -q '"code":"overloaded"' "$tmp/body.$i"; then echo "$secs" >> "$over"; else other=$((other + 1)); fi
done < "$tmp/storm"
echo "storm: $(wc -l < "$over") × 503 overloaded at admission; $other accepted (running or queued," \
     "cancelled with 503 unavailable by the shutdown after the /healthz sampling)"
echo "503 overloaded latency: p99 $(p99 < "$over") ms, max $(sort -g "$over" | tail -1 | awk '{printf "%.1f", $1*1000}') ms (target < 50)"
echo "/healthz during the storm: p99 $(p99 < "$tmp/health") ms over $(wc -l < "$tmp/health") requests (target < 100)"

echo "== parallel count [0,1e10]"
start W1 --workers 1; p1=$port
start W2 --workers 2; p2=$port; w2pid=$W2_PID
q='/v1/count?from=0&to=1e10'
for r in $(seq "$ROUNDS"); do
  t1=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$p1$q")
  c0=$(awk '{print $14 + $15}' "/proc/$w2pid/stat")
  t2=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$p2$q")
  c1=$(awk '{print $14 + $15}' "/proc/$w2pid/stat")
  cpus=$(awk -v c=$((c1 - c0)) -v t="$t2" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", c/hz/t}')
  echo "round $r: 1 worker ${t1}s, 2 workers ${t2}s (using $cpus CPUs on average)" | tee -a "$tmp/par"
done
primed_check W1; primed_check W2
lib_load_check
grep '^round' "$tmp/par" | awk '{gsub("s,","",$5); gsub("s","",$8); print $5/$8}' | lib_median |
  awk '{printf "median speed-up %.2fx (target >= 1.7)\n", $1}'
