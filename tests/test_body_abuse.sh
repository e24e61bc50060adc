#!/usr/bin/env bash
# test_body_abuse.sh — request bodies are a shared budget: one client must not be able to hold
# it, bodies nobody asked for must cost nothing, and a body that stops arriving must be ended.
# (Issue 20, finding 2, and its class: a shared budget without per-client fairness.)
#   A. the audit's attack: 143 connections from 127.0.0.1 declaring a 1 MiB or 16 KiB body and
#      sending one byte every 0.25 s, while a polite client on 127.0.0.2 posts a 38-byte batch
#      32 times: every batch succeeds, and the memory held stays far below the budget.
#   B. one client with many real bodies in flight is held to its share (request_memory_per_client,
#      503 overloaded beyond it) while another client's body is taken.
#   C. bodies on requests that take none (GET/HEAD with a Content-Length or chunked, POST to a
#      GET route, an unknown path) are answered before a byte is read: nothing is charged.
#   D. a trickled body and a silent one are answered 408 request_timeout past body_timeout_ms.
#   E. a held 429 holds no body.
# Bounded: about 25 s. 127.0.0.x only.
set -uo pipefail
cd "$(dirname "$0")/.."
[ "${PRIMED_VARIANT:-release}" = tsan ] && exit 77  # hundreds of sockets on 40 ms ticks: TSan's 5-15x
[ -x "${PRIMED_BIN:-build/primed}" ] || { echo "test_body_abuse: no primed binary"; exit 1; }
exec python3 - <<'PY'
import json, resource, socket, sys, time
sys.dont_write_bytecode = True
sys.path.insert(0, "tests")
from rawhttp import Report, metric, Server, Closed, Reader, connect, exchange, error_shape, SLOW

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft < 2048:
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
report = Report("test_body_abuse", 44)


BATCH = b'{"queries":[{"op":"isprime","n":97}]}'  # 38 bytes
def post(port, body, src=None, path=b"/v1/batch", timeout=5.0):
    req = (b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
           b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() +
           b"\r\n\r\n" + body)
    return exchange(port, req, src=src, timeout=timeout)

# ---- A: the audit's attack --------------------------------------------------------------------
srv = Server(["--workers", "2", "--max-connections", "1000", "--log-level", "error"])
P = srv.port
slow = []
for i in range(143):
    try:
        s = connect(P, src="127.0.0.1", timeout=2)
        size = 1 << 20 if i % 2 == 0 else 16 << 10
        s.sendall(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: " + str(size).encode() + b"\r\n\r\n")
        s.setblocking(False)
        slow.append(s)
    except OSError:
        pass
ok_batches, peak_mem, statuses = 0, 0.0, {}
t_end = time.time() + 6.0
tick = 0
while time.time() < t_end:
    for s in slow:          # one byte each, every 0.25 s
        try:
            s.send(b" ")
        except OSError:
            pass
    if tick % 1 == 0 and sum(statuses.values()) < 32:
        try:
            r = post(P, BATCH, src="127.0.0.2")
            statuses[r.status] = statuses.get(r.status, 0) + 1
            ok_batches += r.status == 200 and r.json() == {"results": [{"n": 97, "prime": True}]}
        except (Closed, OSError) as e:
            statuses[str(e)] = statuses.get(str(e), 0) + 1
    m = metric(srv.port, "primed_request_memory_bytes") or 0
    peak_mem = max(peak_mem, m)
    tick += 1
    time.sleep(0.25)
while sum(statuses.values()) < 32:
    r = post(P, BATCH, src="127.0.0.2")
    statuses[r.status] = statuses.get(r.status, 0) + 1
    ok_batches += r.status == 200
budget = metric(srv.port, "primed_request_memory_budget_bytes")
report("A polite batches under the attack", ok_batches >= 32, "%d/32 ok %s" % (ok_batches, statuses))
report("A memory held under the attack", peak_mem <= 4 << 20,
       "peak primed_request_memory_bytes %.0f (budget %.0f; 143 x 4 KiB = 585728)" % (peak_mem, budget))
for s in slow:
    s.close()
report("A server alive", srv.alive(), "")
srv.stop()

# ---- B: one client's share --------------------------------------------------------------------
# Budget 4 MiB, share 1 MiB (auto: max(budget/8, max_body+1) with max_body 256 KiB = 512 KiB;
# set explicitly here). Client 127.0.0.3 opens 8 bodies of 200 KiB and sends all but the last
# byte: 5 fit its share, the others are refused when their bytes arrive; 127.0.0.4 is served.
srv = Server(["--workers", "2", "--request-memory-budget", "4MiB", "--request-memory-per-client",
              "1MiB", "--max-body-bytes", "256KiB", "--log-level", "error"])
P = srv.port
held = []
body = b'{"queries":[' + b" " * (200 * 1024 - 24) + b'{"op":"isprime","n":7}]}'
for i in range(8):
    s = connect(P, src="127.0.0.3", timeout=5)
    s.sendall(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:-1])
    held.append(s)
time.sleep(0.5 * SLOW)
mem = metric(srv.port, "primed_request_memory_bytes")
share_rej = metric(srv.port, "primed_request_memory_share_rejections_total")
r = post(P, body, src="127.0.0.4")
report("B other client's body taken", r.status == 200, "status %d" % r.status)
report("B one client held to its share", mem is not None and mem <= 1 << 20 and share_rej >= 1,
       "held %s bytes, share rejections %s" % (mem, share_rej))
codes = []
for s in held:
    s.sendall(body[-1:])
    try:
        codes.append(Reader(s).response().status)
    except Closed as e:
        codes.append(e.how)
    s.close()
report("B the client's bodies: 200s then 503s", codes.count(200) >= 4 and codes.count(503) >= 1
       and set(codes) <= {200, 503}, "%s" % codes)
srv.stop()

# ---- C, D, E ----------------------------------------------------------------------------------
srv = Server(["--workers", "2", "--body-timeout-ms", "1000", "--rate-limit", "1",
              "--rate-limit-burst", "2", "--rate-limit-delay-ms", "1500", "--log-level", "error"])
P = srv.port
cases = [
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", 413),
    (b"HEAD /v1/isprime?n=7 HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", 413),
    (b"GET /v1/count?from=0&to=9 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 413),
    (b"POST /v1/isprime?n=7 HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", 405),
    (b"POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", 404),
]
for req, want in cases:
    try:
        r = exchange(P, req, head=req.startswith(b"HEAD"))
        shape = None if req.startswith(b"HEAD") else error_shape(r)
        report("C body refused unread: " + req.split(b"\r\n")[0].decode()[:30], r.status == want
               and shape is None and r.header("connection") == "close",
               "status %d (want %d) %s" % (r.status, want, shape or ""))
    except Closed as e:
        report("C body refused unread", False, "closed: %s" % e.how)
report("C nothing charged", metric(srv.port, "primed_request_memory_bytes") == 0, "")

def trickle(silent):
    s = connect(P, src="127.0.0.5", timeout=5)
    s.sendall(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 1000\r\n\r\n{")
    t0 = time.time()
    s.setblocking(False)
    rd = Reader(s)
    while time.time() - t0 < 5 * SLOW:
        try:
            d = s.recv(65536)
            if not d:
                break
            rd.buf += d
            if b"\r\n\r\n" in rd.buf and len(rd.buf) > 200:
                break
        except BlockingIOError:
            pass
        except ConnectionResetError:
            break
        if not silent:
            try:
                s.send(b" ")
            except OSError:
                pass
        time.sleep(0.25)
    s.settimeout(1)
    try:
        r = rd.response()
        return r, time.time() - t0
    except Closed as e:
        return e.how, time.time() - t0
for silent in (False, True):
    r, dt = trickle(silent)
    name = "D %s body: 408 past the deadline" % ("silent" if silent else "trickled")
    ok = not isinstance(r, str) and r.status == 408 and error_shape(r) is None and 0.9 <= dt <= 3 * SLOW
    report(name, ok, "%s after %.2f s" % (r if isinstance(r, str) else r.status, dt))

# E: spend the bucket (burst 2), then a batch is held as a 429 for 1.5 s: its body is not kept.
big = b'{"queries":[' + b" " * 60000 + b'{"op":"isprime","n":7}]}'
for _ in range(3):
    post(P, BATCH, src="127.0.0.6")
s = connect(P, src="127.0.0.6", timeout=5)
s.sendall(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
          b"Content-Length: " + str(len(big)).encode() + b"\r\n\r\n" + big)
time.sleep(0.5)
held = metric(srv.port, "primed_ratelimit_delayed_answers")
mem = metric(srv.port, "primed_request_memory_bytes")
r = Reader(s).response()
report("E held 429 holds no body", held == 1 and mem == 0 and r.status == 429,
       "held %s, request memory %s, status %d" % (held, mem, r.status))
s.close()
report("server alive", srv.alive(), "")
rc = srv.stop()
report("clean exit", rc == 0, "rc %s" % rc)
report.finish()
PY
