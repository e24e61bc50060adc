#!/usr/bin/env bash
# HTTP overhead of primed against a minimal libmicrohttpd server (tests/tools/baseline_server.c,
# same daemon flags and I/O threads, constant JSON body), measured in the same run with
#   wrk -t1 -c64 -d${SECONDS_PER_RUN}s http://127.0.0.1:PORT/v1/isprime?n=1000003
# Runs (alternating, ROUNDS times): baseline, primed (isprime answered inline on the I/O thread,
# the default), primed with BENCH_HANDOFF_ALL=1 (isprime handed to the worker pool: suspend +
# resume). Prints the median req/s of each and the ratios. Target: primed >= 80% of baseline.
# BENCH_RATELIMIT=1 adds primed with per-client rate limiting on but never reached
# (--rate-limit 1e9 --rate-limit-burst 1e9 --max-inflight-per-client 1): target >= 95% of primed.
# 127.0.0.1 only; bounded: ROUNDS × 3 × SECONDS_PER_RUN seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
ROUNDS=${ROUNDS:-3}
URL_PATH='/v1/isprime?n=1000003'
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

[ -x "$B/primed" ] && [ -x "$B/tools/baseline_server" ] || { echo "build first: make" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk not installed (scripts/install-deps.sh)" >&2; exit 2; }

wait_file() { for _ in $(seq 200); do [ -s "$1" ] && return 0; sleep 0.05; done; return 1; }

"$B/tools/baseline_server" "$tmp/base.port" & pids+=($!)
wait_file "$tmp/base.port"; base_port=$(cat "$tmp/base.port")
"$B/primed" --listen 127.0.0.1:0 --debug-listen off --port-file "$tmp/inline.port" \
  2>/dev/null & pids+=($!)
wait_file "$tmp/inline.port"; inline_port=$(cut -d' ' -f1 "$tmp/inline.port")
BENCH_HANDOFF_ALL=1 "$B/primed" --listen 127.0.0.1:0 --debug-listen off \
  --port-file "$tmp/handoff.port" 2>/dev/null & pids+=($!)
wait_file "$tmp/handoff.port"; handoff_port=$(cut -d' ' -f1 "$tmp/handoff.port")

if [ "${BENCH_RATELIMIT:-0}" = 1 ]; then
  "$B/primed" --listen 127.0.0.1:0 --debug-listen off --port-file "$tmp/rl.port" --rate-limit 1e9 \
    --rate-limit-burst 1e9 --max-inflight-per-client 1 2>/dev/null & pids+=($!)
  wait_file "$tmp/rl.port"; rl_port=$(cut -d' ' -f1 "$tmp/rl.port")
  curl -sfi "http://127.0.0.1:$rl_port$URL_PATH" | grep -qi '^RateLimit-Limit: 1000000000'
fi
curl -sf "http://127.0.0.1:$inline_port$URL_PATH" | grep -q '"prime":true'
curl -sf "http://127.0.0.1:$handoff_port$URL_PATH" | grep -q '"prime":true'

rps() { # port → req/s
  wrk -t1 -c64 -d"${SECONDS_PER_RUN}s" "http://127.0.0.1:$1$URL_PATH" |
    awk '/^Requests\/sec:/ {print $2} /Non-2xx/ {print "non2xx " $0 > "/dev/stderr"}'
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

: > "$tmp/base"; : > "$tmp/inline"; : > "$tmp/handoff"; : > "$tmp/rl"
for r in $(seq "$ROUNDS"); do
  rps "$base_port" >> "$tmp/base"
  rps "$inline_port" >> "$tmp/inline"
  rps "$handoff_port" >> "$tmp/handoff"
  [ "${BENCH_RATELIMIT:-0}" = 1 ] && rps "$rl_port" >> "$tmp/rl" && echo "round $r: primed-ratelimited $(tail -1 "$tmp/rl")"
  echo "round $r: baseline $(tail -1 "$tmp/base")  primed $(tail -1 "$tmp/inline")  primed-handoff $(tail -1 "$tmp/handoff")"
done
b=$(median < "$tmp/base"); i=$(median < "$tmp/inline"); h=$(median < "$tmp/handoff")
echo "median req/s: baseline $b  primed(inline) $i  primed(hand-off) $h"
if [ "${BENCH_RATELIMIT:-0}" = 1 ]; then
  l=$(median < "$tmp/rl")
  awk -v i="$i" -v l="$l" 'BEGIN { printf "rate limiting on (never reached): %s req/s = %.1f%% of off (target >= 95%%)\n", l, 100*l/i }'
fi
awk -v b="$b" -v i="$i" -v h="$h" 'BEGIN {
  printf "primed/baseline = %.1f%% (target >= 80%%)\n", 100*i/b
  printf "hand-off/baseline = %.1f%%, inline/hand-off = %.2fx\n", 100*h/b, i/h
  exit (i >= 0.8*b) ? 0 : 1 }'
