#!/usr/bin/env bash
# test_debug_requests.sh — /debug/requests against the running service:
#  - a slow count appears as "running" on a worker, with its request id, route, parameters, a
#    growing age and growing chunk progress, and disappears once it ends (its deadline);
#  - a slow stream whose client stops reading appears as "streaming" with producer "parked", a
#    growing age, and disappears when the client leaves;
#  - the worker table names the count's request; queue depth and limit/truncation are reported;
#  - format=text; bad limit/format/unknown parameters are JSON 400s; HEAD sends no body.
# Runs on every build (it needs no tcmalloc). Every wait is bounded.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. tests/obs_lib.sh

# 2 workers; a sieved count of [1e18, 1e18+1e10] cannot finish before the 10 s deadline (ASan: 3x slower, so
# it is still running when we look, and the deadline ends it all the same).
obs_start R --workers 2 --request-timeout-ms 10000
M="http://127.0.0.1:$R_PORT" D="http://127.0.0.1:$R_DPORT"

snap() { curl -s -m 5 "$D/debug/requests$1"; }
# field ID KEY — the value of KEY in the row of request ID (empty when the row is absent)
field() {
  snap "" | python3 -c '
import json, sys
d = json.load(sys.stdin)
for r in d["requests"]:
    if r["request_id"] == sys.argv[1]:
        v = r.get(sys.argv[2])
        print("null" if v is None else v)
' "$1" "$2"
}
# wait_for ID KEY VALUE TRIES — poll every 0.1 s until the row's KEY is VALUE
wait_for() {
  local i
  for i in $(seq "$4"); do
    [ "$(field "$1" "$2")" = "$3" ] && return 0
    sleep 0.1
  done
  return 1
}

# ---- a slow count -----------------------------------------------------------------------------
# 2e10 numbers near 1e18: ~30 s of sieving (estimate 16 s on 2 workers: admitted), so it is still
# running past the 10 s deadline (1e10 finished inside it once the sieve got faster).
curl -s -m 30 -H 'X-Request-Id: slow-count-1' -o "$OBS_TMP/count.json" -w '%{http_code}' \
  "$M/v1/count?from=1e18&to=1000000020000000000" >"$OBS_TMP/count.code" &
cpid=$!
OBS_PIDS+=("$cpid")
wait_for slow-count-1 state running 50 || obs_fail "slow count not shown running: $(snap "")"
snap "" >"$OBS_TMP/s1.json"
sleep 1
snap "" >"$OBS_TMP/s2.json"
python3 - "$OBS_TMP/s1.json" "$OBS_TMP/s2.json" <<'EOF' || obs_fail "slow count rows are wrong"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
def row(d):
    rs = [r for r in d["requests"] if r["request_id"] == "slow-count-1"]
    assert len(rs) == 1, d
    return rs[0]
ra, rb = row(a), row(b)
for r in (ra, rb):
    assert r["state"] == "running" and r["route"] == "/v1/count", r
    assert r["params"] == "from=1e18&to=1000000020000000000" and r["method"] == "GET", r
    assert r["client"] == "127.0.0.1" and r["listener"] == "main", r
    assert isinstance(r["worker"], int) and 0 <= r["worker"] < 2, r
    assert r["chunks_total"] > 1, r
assert rb["age_ms"] >= ra["age_ms"] + 900, (ra, rb)
assert rb["chunks_done"] >= ra["chunks_done"], (ra, rb)
w = b["workers"]
assert len(w) == 2, w
assert w[rb["worker"]]["state"] == "running" and w[rb["worker"]]["request_id"] == "slow-count-1", w
assert b["queue_depth"] == 0 and b["queue_capacity"] > 0, b
print("ok: count running on worker %d, age %d -> %d ms, chunks %d/%d -> %d/%d" % (
    rb["worker"], ra["age_ms"], rb["age_ms"], ra["chunks_done"], ra["chunks_total"],
    rb["chunks_done"], rb["chunks_total"]))
EOF
snap "?format=text" | grep -Eq '^ +[0-9]+ ms +running on worker [01] +GET +/v1/count\?from=1e18&to=1000000020000000000 +slow-count-1 ' ||
  obs_fail "text format lacks the count: $(snap '?format=text')"
obs_ok "format=text shows the count running on its worker"

# ---- limit, truncation, parameters, HEAD ------------------------------------------------------
python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["shown"] == 1 and d["truncated"] is True and d["total"] >= 2, d
assert d["requests"][0]["request_id"] == "slow-count-1", d   # oldest first
' <<<"$(snap '?limit=1')" || obs_fail "limit=1: $(snap '?limit=1')"
for q in 'limit=0' 'limit=10001' 'limit=abc' 'limit=' 'limit=-1' 'limit=1&limit=2' 'format=xml' 'foo=1'; do
  code=$(curl -s -o "$OBS_TMP/bad.json" -w '%{http_code}' "$D/debug/requests?$q")
  [ "$code" = 400 ] || obs_fail "?$q answered $code"
  python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["error"]; assert e["code"] in ("bad_parameter","unknown_parameter")' \
    "$OBS_TMP/bad.json" || obs_fail "?$q: not a JSON error: $(cat "$OBS_TMP/bad.json")"
done
# HEAD over a raw socket: the headers, then the server closes with not one body byte
python3 - "$R_DPORT" <<'EOF' || obs_fail "HEAD /debug/requests sent a body"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"HEAD /debug/requests HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
head, sep, body = data.partition(b"\r\n\r\n")
assert sep and head.startswith(b"HTTP/1.1 200") and b"application/json" in head, data[:300]
assert body == b"", body[:100]
EOF
code=$(curl -s -o /dev/null -w '%{http_code}' "$M/debug/requests")
[ "$code" = 404 ] || obs_fail "/debug/requests on the main listener answered $code"
obs_ok "limit=1 truncates to the oldest; bad parameters → JSON 400; HEAD no body; 404 on main"

# ---- a parked slow stream ---------------------------------------------------------------------
# The client reads the first bytes and then nothing (for at most 40 s), through a 4 KiB receive
# buffer: the socket buffers fill at once and the producer parks for good. (curl --limit-rate 2k
# read on, and the loopback buffers, several MB, kept taking data for a while: on a loaded machine
# the producer was seen parked, then resumed, then parked again.)
python3 - "$R_PORT" <<'EOF' &
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /v1/primes?from=1000000000000&to=1000100000000 HTTP/1.1\r\nHost: x\r\n"
          b"X-Request-Id: slow-stream-1\r\n\r\n")
s.recv(1024)
time.sleep(40)
EOF
spid=$!
OBS_PIDS+=("$spid")
wait_for slow-stream-1 producer parked 100 || obs_fail "slow stream not shown parked: $(snap "")"
a=$(field slow-stream-1 age_ms)
[ "$(field slow-stream-1 state)" = streaming ] || obs_fail "parked stream state: $(field slow-stream-1 state)"
[ "$(field slow-stream-1 worker)" = null ] || obs_fail "a parked stream holds no worker"
sleep 1
b=$(field slow-stream-1 age_ms)
[ "$b" -ge $((a + 900)) ] || obs_fail "stream age did not grow: $a -> $b"
[ "$(field slow-stream-1 producer)" = parked ] || obs_fail "stream no longer parked"
obs_ok "stream shown streaming/parked, no worker, age $a -> $b ms"

# ---- they disappear ---------------------------------------------------------------------------
kill "$spid" 2>/dev/null
wait "$spid" 2>/dev/null
for _ in $(seq 150); do [ -z "$(field slow-stream-1 state)" ] && break; sleep 0.1; done
[ -z "$(field slow-stream-1 state)" ] || obs_fail "stream still listed 15 s after its client left"
obs_ok "stream gone once its client left"
wait "$cpid"
[ "$(cat "$OBS_TMP/count.code")" = 504 ] || obs_fail "slow count ended with $(cat "$OBS_TMP/count.code")"
for _ in $(seq 50); do [ -z "$(field slow-count-1 state)" ] && break; sleep 0.1; done
[ -z "$(field slow-count-1 state)" ] || obs_fail "count still listed after its 504"
python3 -c '
import json, sys
d = json.load(sys.stdin)
assert all(r["route"] == "/debug/requests" for r in d["requests"]), d
assert all(w["state"] == "idle" for w in d["workers"]), d
' <<<"$(snap "")" || obs_fail "not idle at the end: $(snap "")"
obs_ok "count gone after its deadline; workers idle"
obs_stop R
exit 0
