#!/usr/bin/env bash
# test_nginx_lb.sh — configs/nginx-lb.conf really balances primed and survives a drained instance.
#
# Starts three build/primed instances (127.0.0.1, ephemeral ports) and nginx in the foreground
# with the checked-in config (only the ports rewritten; prefix, pid and logs in a temp dir), then:
#  1. 90 sequential keep-alive requests through nginx all succeed and every instance serves a
#     share (nginx's $upstream_addr in the access log, and each instance's own
#     primed_http_requests_total when it exports it);
#  2. /instances/N/metrics reaches instance N; 400 HEAD /v1/primes + GET pairs on keep-alive
#     client connections all answer 200 (no HEAD answer leaves bytes on an upstream connection);
#  3. under steady wrk traffic, instance 2 gets SIGTERM: it drains and exits 0, the client sees
#     no error at all (in-flight requests finish, new ones are retried elsewhere by
#     proxy_next_upstream), and afterwards only instances 1 and 3 answer.
# Every wait is bounded; everything started is killed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${PRIMED_BIN:-$ROOT/build/primed}
[ -x "$BIN" ] || { echo "FAIL no primed binary at $BIN"; exit 1; }
PRIMED_BIN=$BIN
. scripts/lib.sh # starts, watches and stops the primed instances
command -v nginx >/dev/null || { echo "FAIL nginx not installed (nginx-light, scripts/install-deps.sh)"; exit 1; }
command -v wrk >/dev/null || { echo "FAIL wrk not installed (scripts/install-deps.sh)"; exit 1; }

TMP=$LIB_TMP
chmod 0755 "$TMP"   # nginx workers run as nobody when the test runs as root
pids=()             # nginx and wrk; the primed instances are the launcher's
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 30); do
    local alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive -eq 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
}
lib_at_exit cleanup
fail=0
ok()  { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }

# --- three primed instances ---
declare -a iport ipid
for i in 1 2 3; do
  primed_start "I$i" --debug-listen off --shutdown-timeout 5
  pv="I${i}_PORT" pidv="I${i}_PID"
  iport[$i]=${!pv} ipid[$i]=${!pidv}
done
echo "instances on ports ${iport[1]} ${iport[2]} ${iport[3]}"

# --- nginx with the checked-in config, ports rewritten ---
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# start_nginx DIR [SED_EXPR]: configs/nginx-lb.conf on a free loopback port with the three
# instances as upstreams (and SED_EXPR applied), under DIR; sets NG_PORT and NG_PID (empty when
# it did not come up: the free port can be taken between probe and bind, so it tries 3 ports).
start_nginx() {
  local dir=$1 extra=${2:-} up
  mkdir -p "$dir/logs" "$dir/tmp"
  NG_PORT="" NG_PID=""
  for _ in 1 2 3; do
    NG_PORT=$(free_port)
    sed -e "s/^\(\s*\)listen 80;/\1listen 127.0.0.1:$NG_PORT;/" \
        -e "s/127\.0\.0\.1:8081/127.0.0.1:${iport[1]}/g" \
        -e "s/127\.0\.0\.1:8082/127.0.0.1:${iport[2]}/g" \
        -e "s/127\.0\.0\.1:8083/127.0.0.1:${iport[3]}/g" \
        ${extra:+-e "$extra"} configs/nginx-lb.conf >"$dir/nginx.conf"
    grep -q "listen 127.0.0.1:$NG_PORT;" "$dir/nginx.conf" || { echo "FAIL could not rewrite listen"; exit 1; }
    nginx -p "$dir/" -e logs/error.log -c "$dir/nginx.conf" &
    NG_PID=$!
    up=0
    for _ in $(seq 50); do
      if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$NG_PORT/lb-healthz")" = 200 ]; then up=1; break; fi
      kill -0 "$NG_PID" 2>/dev/null || break
      sleep 0.1
    done
    if [ $up -eq 1 ]; then pids+=("$NG_PID"); return 0; fi
    kill -KILL "$NG_PID" 2>/dev/null || true; wait "$NG_PID" 2>/dev/null || true; NG_PID=""
  done
  return 1
}

start_nginx "$TMP/nginx" || true
nport=$NG_PORT ngpid=$NG_PID
[ -n "$ngpid" ] || { echo "FAIL nginx did not start:"; tail -n 5 "$TMP/nginx/logs/error.log"; exit 1; }
LB=http://127.0.0.1:$nport
ACCESS=$TMP/nginx/logs/access.log
ok "nginx up on $nport with configs/nginx-lb.conf"

# Sum of primed_http_requests_total over all label sets, straight from one instance (0 before
# the first request); empty when the instance does not export the family.
requests_total() {
  curl -s --max-time 2 "http://127.0.0.1:$1/metrics" |
    awk '/^# TYPE primed_http_requests_total / { n++ }
         $1 ~ /^primed_http_requests_total(\{|$)/ { s += $NF; n++ } END { if (n) printf "%.0f\n", s }'
}
# Requests in the access log (from line $1 on) whose final upstream was instance $2.
served_by() {
  tail -n +"$1" "$ACCESS" | grep -c -E "upstream=([^ ]+, )*127\.0\.0\.1:$2 " || true
}

# --- 1. spread ---
declare -a m0 m1
for i in 1 2 3; do m0[$i]=$(requests_total "${iport[$i]}"); done
mark=$(( $(wc -l <"$ACCESS") + 1 ))
# One curl, many URLs: one keep-alive client connection, one "-o /dev/null" per URL.
urls=()
for k in $(seq 90); do urls+=(-o /dev/null "$LB/v1/isprime?n=$((1000000 + k))"); done
codes=$(curl -s --max-time 30 -w '%{http_code}\n' "${urls[@]}" | sort | uniq -c | tr -s ' ')
if [ "$codes" = " 90 200" ]; then ok "90 requests through nginx: all 200"; else bad "90 requests through nginx: $codes"; fi
sleep 0.2   # nginx writes the log line after the response
for i in 1 2 3; do
  n=$(served_by "$mark" "${iport[$i]}")
  if [ "$n" -ge 15 ]; then ok "instance $i served $n of 90 (access log)"; else bad "instance $i served only $n of 90"; fi
  m1[$i]=$(requests_total "${iport[$i]}")
  if [ -n "${m0[$i]}" ] && [ -n "${m1[$i]}" ]; then
    d=$(( m1[$i] - m0[$i] ))
    if [ "$d" -ge "$n" ] && [ "$n" -gt 0 ]; then ok "instance $i primed_http_requests_total grew by $d"
    else bad "instance $i primed_http_requests_total grew by $d, access log says $n"; fi
  else
    echo "note instance $i exports no primed_http_requests_total; spread checked by access log only"
  fi
done

# --- 2. per-instance metrics locations ---
for i in 1 2 3; do
  mark=$(( $(wc -l <"$ACCESS") + 1 ))
  code=$(curl -s -o "$TMP/m$i" -w '%{http_code}' --max-time 5 "$LB/instances/$i/metrics")
  sleep 0.1
  if [ "$code" = 200 ] && [ "$(served_by "$mark" "${iport[$i]}")" = 1 ] && grep -q '^# TYPE ' "$TMP/m$i"; then
    ok "/instances/$i/metrics is instance $i's exposition"
  else
    bad "/instances/$i/metrics: status $code, upstream $(tail -n 1 "$ACCESS")"
  fi
done
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$LB/metrics")
[ "$code" = 404 ] && ok "balanced /metrics refused (404)" || bad "balanced /metrics gave $code"

# --- 2b. HEAD + GET through the balancer ---
# 400 HEAD /v1/primes (a streamed list), each followed by a GET on the same client connection,
# 4 clients at once; nginx keeps upstream connections alive (keepalive 32). A HEAD answer that
# carries body bytes (primed used to send the chunked terminator "0\r\n\r\n", issue 11 defect 3)
# poisons the upstream connection: nginx reads those bytes as the next answer's status line
# (clients saw status "009") or waits for more. Every answer must be a clean 200.
headget=$(timeout 120 python3 - "$nport" <<'PY'
import sys, threading
sys.dont_write_bytecode = True
sys.path.insert(0, "tests")
from rawhttp import Reader, Closed, connect
port, N, CLIENTS = int(sys.argv[1]), 400, 4
bad, done = [], [0]
lock = threading.Lock()
def client(k):
    s = rd = None
    for i in range(k, N, CLIENTS):
        try:
            if s is None:
                s = connect(port, timeout=5)
                rd = Reader(s)
            s.sendall(b"HEAD /v1/primes?from=0&to=%d HTTP/1.1\r\nHost: lb\r\n\r\n" % (1000 + i))
            h = rd.response(head=True)
            s.sendall(b"GET /v1/isprime?n=97 HTTP/1.1\r\nHost: lb\r\n\r\n")
            g = rd.response()
            ok = h.status == 200 and g.status == 200 and b'"prime":true' in g.body
            with lock:
                done[0] += 1
                if not ok:
                    bad.append("HEAD %d GET %d" % (h.status, g.status))
        except (Closed, OSError) as e:
            with lock:
                bad.append("%s: %s" % (type(e).__name__, getattr(e, "how", e)))
            if s is not None:
                s.close()
            s = None
    if s is not None:
        s.close()
ts = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
for t in ts: t.start()
for t in ts: t.join(timeout=100)
print("%d %d %s" % (done[0], len(bad), "; ".join(sorted(set(bad))[:4])))
PY
) || true
read -r hg_done hg_bad hg_how <<<"$headget"
if [ "${hg_done:-0}" = 400 ] && [ "${hg_bad:-1}" = 0 ]; then ok "400 HEAD + GET pairs through nginx: 0 bad statuses"
else bad "HEAD + GET through nginx: ${hg_done:-0} of 400 pairs done, ${hg_bad:-?} bad: ${hg_how:-no output}"; fi

# --- 2c. the '#hash: ' option: π queries balanced by their arguments, so the caches add up ---
# A second nginx runs the same file with the option uncommented. 24 distinct pi?x, each asked
# twice: both asks of an x reach the same instance, more than one instance serves, and the
# instances' π caches together gain exactly 24 values and 24 hits (each value computed and cached
# once; with least_conn the second ask would usually find another instance's empty cache).
cache_sum() { # $1: metric; sum over the three instances
  local t=0 i v
  for i in 1 2 3; do
    v=$(curl -s --max-time 2 "http://127.0.0.1:${iport[$i]}/metrics" | awk -v m="$1" '$1 == m { printf "%.0f", $2 }')
    t=$((t + ${v:-0}))
  done
  echo "$t"
}
start_nginx "$TMP/nginx2" 's/^\(\s*\)#hash: /\1/' || true
hport=$NG_PORT hpid=$NG_PID
if [ -z "$hpid" ]; then
  bad "nginx with the hash option did not start: $(tail -n 3 "$TMP/nginx2/logs/error.log" 2>/dev/null)"
else
  e0=$(cache_sum primed_pi_cache_entries) h0=$(cache_sum primed_pi_cache_hits_total)
  hurls=() # its own list: step 3 reuses step 1's urls
  for k in $(seq 24); do
    x=$((1000000007 * k + 12345))
    hurls+=(-o /dev/null "http://127.0.0.1:$hport/v1/pi?x=$x" -o /dev/null "http://127.0.0.1:$hport/v1/pi?x=$x")
  done
  codes=$(curl -s --max-time 60 -w '%{http_code}\n' "${hurls[@]}" | sort | uniq -c | tr -s ' ')
  sleep 0.2
  e1=$(cache_sum primed_pi_cache_entries) h1=$(cache_sum primed_pi_cache_hits_total)
  # upstream of each request, in order: pairs must agree
  ups=$(grep -o 'GET /v1/pi?x=[0-9]* [^"]*" 200 .* upstream=[^ ]*' "$TMP/nginx2/logs/access.log" |
    sed -E 's/.*x=([0-9]+) .*upstream=([^ ]+)/\1 \2/')
  split=$(sort -u <<<"$ups" | awk '{ n[$1]++ } END { for (x in n) if (n[x] > 1) c++; print c + 0 }')
  used=$(awk '{ print $2 }' <<<"$ups" | sort -u | wc -l)
  if [ "$codes" = " 48 200" ] && [ "$split" = 0 ] && [ "$used" -ge 2 ] &&
    [ $((e1 - e0)) = 24 ] && [ $((h1 - h0)) = 24 ]; then
    ok "hash option: 24 x asked twice, each x on one instance ($used instances used), caches +24 values, +24 hits"
  else
    bad "hash option: codes '$codes', x split over instances: $split, instances used: $used, entries +$((e1 - e0)), hits +$((h1 - h0))"
  fi
  kill -TERM "$hpid" 2>/dev/null || true
fi

# --- 3. drain one instance under traffic ---
mark=$(( $(wc -l <"$ACCESS") + 1 ))
# ~6 connections × 1 request per 5 ms: steady, light traffic that is in flight when TERM lands.
LOADTEST_DELAY_MS=5 LOADTEST_NAME=lb_failover LOADTEST_PATH="/v1/isprime?n=1000003" \
  LUA_PATH="$ROOT/scripts/wrk/?.lua;;" \
  timeout 30 wrk -t 1 -c 6 -d 4s --timeout 5s -s scripts/wrk/baseline.lua "$LB" >"$TMP/wrk.out" 2>&1 &
wrkpid=$!; pids+=("$wrkpid")
sleep 1.5
primed_signal I2 TERM
rc=""
primed_wait I2 10 2>/dev/null || true
[ "$I2_RC" = 124 ] || rc=$I2_RC
stopped_at=$(( $(wc -l <"$ACCESS") + 1 ))
[ "$rc" = 0 ] && ok "instance 2 drained and exited 0 on SIGTERM" || bad "instance 2 after SIGTERM: exit ${rc:-still running after 10 s}"
wait "$wrkpid" || true
res=$(grep '^RESULT ' "$TMP/wrk.out" || true)
get() { sed -nE "s/.* $1=([^ ]+).*/\1/p" <<<"$res"; }
if [ -z "$res" ]; then
  bad "wrk through nginx gave no result:"; cat "$TMP/wrk.out"
elif [ "$(get requests)" -ge 100 ] && [ "$(get unexpected)" = 0 ] && [ "$(get sock_errors)" = 0 ]; then
  ok "$(get requests) requests during the drain, statuses $(get statuses), no client errors"
else
  bad "during the drain: $(grep -E '^(scenario|  )' "$TMP/wrk.out" | tr '\n' ' ')"
fi
sleep 0.2
# After instance 2 exited only 1 and 3 may serve. A response instance 2 sent just before exiting
# can be logged a moment later, so allow as many late lines as there were connections.
late=$(served_by "$stopped_at" "${iport[2]}")
after1=$(served_by "$stopped_at" "${iport[1]}"); after3=$(served_by "$stopped_at" "${iport[3]}")
if [ "$late" -le 6 ] && [ "$after1" -gt 0 ] && [ "$after3" -gt 0 ]; then
  ok "after the drain: instance 1 served $after1, instance 3 served $after3, instance 2 $late (late log lines)"
else
  bad "after the drain: instance 1 $after1, instance 3 $after3, instance 2 $late"
fi
during=$(served_by "$mark" "${iport[2]}")
[ "$during" -gt 0 ] && ok "instance 2 took $during requests before it was stopped" || bad "instance 2 took no traffic before the stop"

# And fresh requests keep working with one instance gone.
mark=$(( $(wc -l <"$ACCESS") + 1 ))
codes=$(curl -s --max-time 30 -w '%{http_code}\n' "${urls[@]:0:90}" | sort | uniq -c | tr -s ' ')
sleep 0.2
n2=$(served_by "$mark" "${iport[2]}")
if [ "$codes" = " 30 200" ] && [ "$n2" = 0 ]; then ok "30 more requests: all 200, none to the stopped instance"
else bad "30 more requests: $codes, $n2 to the stopped instance"; fi

if [ $fail -ne 0 ]; then
  echo "--- nginx error log"; tail -n 20 "$TMP/nginx/logs/error.log" || true
fi
exit $fail
