#!/usr/bin/env bash
# test_ratelimit_abuse.sh — one abusive client (32 keep-alive connections from 127.0.0.2, flat
# out) and one polite client (127.0.0.3, 1 connection, 100 requests/s of isprime and small
# counts) at once, against primed with --rate-limit 200 --rate-limit-burst 400
# --max-inflight-per-client 1 on 2 workers:
#   A. the polite client alone: its unloaded p99;
#   B. the abuser sends small requests (isprime);
#   C. the abuser sends heavy counts ([1e18, 1e18+1e9]: sieved, ~1.5 s of a worker, price ~1700
#      tokens each; [0, 1e10] is now π(1e10), milliseconds, so no longer heavy).
# In B and C the polite client must get >= 99 % successes and a p99 within 2x its unloaded p99
# (+ SLACK_MS, default 20, for the scheduling noise of a shared 2-core machine; x3 under
# sanitizers), and the abuser 429s that all carry Retry-After and RateLimit-*. A phase that
# misses only the latency bound is measured once more (noise from other processes comes in
# bursts); success rate and headers are never retried. D repeats C without limits, for contrast
# (printed, not asserted). The abuser runs at nice 19: its own CPU is not the server's.
# Bounded: about 25 s. Uses build/tools/loadgen (wrk cannot bind a source address).
set -uo pipefail
cd "$(dirname "$0")/.."
[ "${PRIMED_VARIANT:-release}" = tsan ] && exit 77 # latency bounds mean nothing under TSan
BIN=${PRIMED_BIN:-build/primed}
LOADGEN=${PRIMED_BUILD:-$(dirname "$BIN")}/tools/loadgen
[ -x "$BIN" ] && [ -x "$LOADGEN" ] || { echo "test_ratelimit_abuse: build $BIN and $LOADGEN first"; exit 1; }
SECS=${ABUSE_SECONDS:-5}
SLACK_MS=${SLACK_MS:-20}
[ "${PRIMED_VARIANT:-release}" = asan ] && SLACK_MS=$((SLACK_MS * 3))
TMP=$(mktemp -d /tmp/primed-abuse.XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
fail=0

start() { # flags...
  rm -f "$TMP/port"
  "$BIN" --listen 127.0.0.1:0 --debug-listen off --port-file "$TMP/port" --workers 2 \
    --log-level error "$@" 2>"$TMP/log" &
  PID=$!
  for _ in $(seq 100); do [ -s "$TMP/port" ] && break; sleep 0.1; done
  [ -s "$TMP/port" ] || { echo "primed did not start"; cat "$TMP/log"; exit 1; }
  PORT=$(cut -d' ' -f1 "$TMP/port")
}
stop() { kill "$PID"; wait "$PID"; PID=; }

POLITE=("/v1/isprime?n=1000000007" "/v1/count?from=0&to=100000")
polite() { "$LOADGEN" --port "$PORT" --src 127.0.0.3 --conns 1 --rate 100 --seconds "$SECS" --latency "${POLITE[@]}"; }
abuse() { nice -n 19 "$LOADGEN" --port "$PORT" --src 127.0.0.2 --conns 32 --seconds $((SECS + 1)) "$1"; }
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$2"; }

# Runs the polite client alongside an abuser sending $2; checks and prints phase $1.
# Returns 2 when only the latency bound was missed.
loaded_once() { # name path unloaded_p99 assert
  abuse "$2" >"$TMP/abuser" &
  local A=$!
  sleep 0.5
  local pol abu
  pol=$(polite)
  wait $A
  abu=$(cat "$TMP/abuser")
  echo "$1 polite: $pol"
  echo "$1 abuser: $abu"
  [ "$4" = assert ] || return 0
  awk -v r="$(field requests "$pol")" -v ok="$(field ok "$pol")" -v p99="$(field p99_ms "$pol")" \
      -v base="$3" -v slack="$SLACK_MS" -v lim="$(field limited "$abu")" \
      -v bad="$(field bad429 "$abu")" -v name="$1" 'BEGIN {
        bound = 2 * base + slack; rc = 0
        if (r == 0 || ok / r < 0.99) { printf "FAIL %s: polite success %d/%d < 99 %%\n", name, ok, r; rc = 1 }
        if (p99 > bound) { printf "FAIL %s: polite p99 %.3f ms > 2 x %.3f + %d ms\n", name, p99, base, slack; rc = 2 }
        if (r == 0 || ok / r < 0.99) rc = 1
        if (lim == 0) { printf "FAIL %s: the abuser was never limited\n", name; rc = 1 }
        if (bad != 0) { printf "FAIL %s: %d 429s lacked Retry-After or RateLimit-*\n", name, bad; rc = 1 }
        if (!rc) printf "ok   %s: polite %d/%d ok, p99 %.3f ms (unloaded %.3f ms, bound %.3f ms); abuser %d limited, all with headers\n", name, ok, r, p99, base, bound, lim
        exit rc }'
}
loaded() {
  loaded_once "$@"
  local rc=$?
  if [ $rc = 2 ]; then echo "   $1: latency bound missed, measuring once more"; sleep 2.5; loaded_once "$@"; rc=$?; fi
  [ $rc = 0 ] || fail=1
}

start --rate-limit 200 --rate-limit-burst 400 --max-inflight-per-client 1
"$LOADGEN" --port "$PORT" --src 127.0.0.3 --conns 1 --rate 100 --seconds 1 "${POLITE[@]}" >/dev/null # warm-up
base=$(polite)
echo "A unloaded polite: $base"
p99=$(field p99_ms "$base")
[ "$(field ok "$base")" = "$(field requests "$base")" ] || { echo "FAIL A: unloaded polite client saw failures"; fail=1; }
loaded "B small-flood" "/v1/isprime?n=1000000007" "$p99" assert
sleep 2.5 # the abuser's bucket refills (400 tokens at 200/s): its first heavy count is admitted
HEAVY="/v1/count?from=1e18&to=1000000001000000000"
loaded "C heavy-flood" "$HEAVY" "$p99" assert
metrics=$(curl -s "http://127.0.0.1:$PORT/metrics")
for h in isprime count; do
  n=$(sed -n "s/^primed_ratelimit_limited_total{handler=\"$h\"} //p" <<<"$metrics")
  [ "${n:-0}" -gt 0 ] || { echo "FAIL: primed_ratelimit_limited_total{handler=\"$h\"} is ${n:-absent}"; fail=1; }
done
grep -E '^primed_ratelimit_clients |^primed_pool_fair_skips_total ' <<<"$metrics"
stop

start # no limits: the same heavy flood, for contrast
loaded "D heavy-flood, no limits" "$HEAVY" "$p99" show
stop
exit $fail
