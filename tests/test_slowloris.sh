#!/usr/bin/env bash
# test_slowloris.sh — hundreds of connections dribbling a request one byte a second must neither
# starve normal clients nor hold their slots forever.
#   A. per-IP limit: 250 slow connections from 127.0.0.1 against --max-connections-per-ip 200:
#      the server holds at most 200 of them and closes the rest; a client on 127.0.0.2 is served.
#   B. 300 slow connections spread over 127.0.0.3-5 (under the per-IP limit), one byte a second
#      each, while a normal client on 127.0.0.2 sends sequential requests: their p99 latency must
#      stay under P99_BOUND_MS (release; x3 under sanitizers) and none may fail.
#   C. the slow clients go quiet: the idle timeout (--connection-timeout 3) must close every one
#      of them within timeout + 3 s.
# Bounded: about 20 s in all. Prints the figures.
set -uo pipefail
cd "$(dirname "$0")/.."
[ "${PRIMED_VARIANT:-release}" = tsan ] && exit 77  # a latency bound says nothing under TSan's 5-15x
[ -x "${PRIMED_BIN:-build/primed}" ] || { echo "test_slowloris: no primed binary"; exit 1; }
exec python3 - <<'PY'
import os, random, resource, selectors, signal, socket, sys, threading, time
sys.dont_write_bytecode = True
sys.path.insert(0, "tests")
from rawhttp import Server, Closed, Reader, connect, get, healthz_ok, percentile, SLOW

P99_BOUND_MS = float(os.environ.get("P99_BOUND_MS", "200")) * SLOW
IDLE = 3
PER_IP = 200
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft < 2048:
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))

srv = Server(["--workers", "2", "--max-connections", "1000", "--max-connections-per-ip", str(PER_IP),
              "--connection-timeout", str(IDLE), "--log-level", "error"])
P = srv.port
failures = 0
def report(name, ok, detail):
    global failures
    print("%-38s %-5s %s" % (name, "ok" if ok else "FAIL", detail))
    failures += not ok

PREFIX = b"GET /v1/isprime?n=7 HTTP/1.1\r\nHost: x\r\nX-Slow: "
def open_slow(n, srcs):
    socks = []
    for i in range(n):
        try:
            s = connect(P, src=srcs[i % len(srcs)], timeout=2)
            s.setblocking(False)
            s.send(PREFIX)
            socks.append(s)
        except OSError:
            pass
    return socks

def still_open(socks):
    """Sockets the server has not closed (a recv that would block = still open)."""
    n = 0
    for s in socks:
        try:
            data = s.recv(4096)
            if data:   # the server answered (e.g. an error page) before closing: not held
                continue
        except BlockingIOError:
            n += 1
        except OSError:
            pass
    return n

def dribble(socks):
    for s in socks:
        try:
            s.send(b"a")
        except OSError:
            pass

# ---- A. per-IP limit ----
a = open_slow(250, ["127.0.0.1"])
for _ in range(2):          # keep dribbling: a quiet second would count against --connection-timeout
    time.sleep(0.75)
    dribble(a)
time.sleep(0.25)
held_a = still_open(a)
served_other_ip = healthz_ok(P, src="127.0.0.2")
report("per_ip_limit_rejects_beyond_it", held_a <= PER_IP and held_a >= PER_IP - 5 and served_other_ip,
       "%d of %d connections from 127.0.0.1 held (limit %d); 127.0.0.2 %s"
       % (held_a, len(a), PER_IP, "served" if served_other_ip else "NOT served"))
for s in a: s.close()
time.sleep(0.5)

# ---- B. 300 slow connections vs. a normal client ----
slow = open_slow(300, ["127.0.0.3", "127.0.0.4", "127.0.0.5"])
lat, errors = [], []
stop = threading.Event()
def normal_client():
    rnd = random.Random(7)
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            r = get(P, "/v1/isprime?n=%d" % rnd.randrange(1, 2**64), src="127.0.0.2", timeout=5)
            if r.status != 200:
                errors.append(r.status)
        except (Closed, OSError) as e:
            errors.append(str(e))
        lat.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.01)
t = threading.Thread(target=normal_client)
t.start()
held_during = []
for sec in range(8):
    time.sleep(1.0)
    dribble(slow)
    held_during.append(still_open(slow))
stop.set()
t.join()
p50, p99 = percentile(lat, 50), percentile(lat, 99)
held_min = min(held_during)
report("normal_clients_served_during_slowloris",
       not errors and len(lat) > 50 and p99 < P99_BOUND_MS and held_min >= 290,
       "%d slow connections held (min over 8 s), %d normal requests, p50 %.1f ms, p99 %.1f ms "
       "(bound %.0f ms), %d errors" % (held_min, len(lat), p50, p99, P99_BOUND_MS, len(errors)))

# ---- C. idle timeout reclaims them ----
t0 = time.time()
left = held_min
while time.time() - t0 < IDLE + 3 * SLOW:
    time.sleep(0.25)
    left = still_open(slow)
    if left == 0:
        break
reclaim = time.time() - t0
report("idle_timeout_reclaims_slow_connections", left == 0,
       "%d still open %.1f s after the slow clients went quiet (--connection-timeout %d)"
       % (left, reclaim, IDLE))
for s in slow: s.close()
ok = healthz_ok(P)
rc = srv.stop(timeout=15)
report("healthz_and_clean_exit_after", ok and rc == 0, "healthz %s, exit %s" % ("200" if ok else "down", rc))
if failures:
    print(srv.log_text(2000))
sys.exit(1 if failures else 0)
PY
