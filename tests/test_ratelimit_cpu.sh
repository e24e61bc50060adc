#!/usr/bin/env bash
# test_ratelimit_cpu.sh — a rate-limited client cannot make the workers spend more CPU than it
# pays for, whatever it sends. (Issue 20, finding 1, and its class: cost paid after the fact.)
# One client (127.0.0.7) at --rate-limit 10 --rate-limit-burst 10 --request-timeout-ms 2000
# sends, for 20 s from six connections at once: the audit's batches of 20 × π(1e15), batches
# of cheap-looking sieved counts near 1e18, sieved GETs near 1e18, GETs it can afford, GETs it
# abandons after 50 ms, streams it reads slowly, and small requests. The workers' CPU (from
# /proc/PID/task/*/schedstat, threads primed-wrk-*) over the run must stay within 2 × what the
# client earned: 2 × (burst + rate × seconds) ms. A polite client (127.0.0.8) is served
# throughout. Bounded: about 25 s. 127.0.0.x only.
set -uo pipefail
cd "$(dirname "$0")/.."
[ "${PRIMED_VARIANT:-release}" = tsan ] && exit 77  # TSan's 5-15x makes the CPU figures meaningless
[ -x "${PRIMED_BIN:-build/primed}" ] || { echo "test_ratelimit_cpu: no primed binary"; exit 1; }
exec python3 - <<'PY'
import glob, json, os, socket, sys, threading, time
sys.dont_write_bytecode = True
sys.path.insert(0, "tests")
from rawhttp import Report, Server, Closed, Reader, connect, exchange, SLOW

RATE, BURST, SECONDS = 10, 10, 20.0
srv = Server(["--workers", "2", "--rate-limit", str(RATE), "--rate-limit-burst", str(BURST),
              "--request-timeout-ms", "2000", "--rate-limit-delay-ms", "0", "--log-level", "warn"])
P = srv.port
report = Report("test_ratelimit_cpu", 44)

def worker_cpu_ns():
    total = 0
    for task in glob.glob("/proc/%d/task/*" % srv.proc.pid):
        try:
            if not open(task + "/comm").read().startswith("primed-wrk"):
                continue
            total += int(open(task + "/schedstat").read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total

SRC = "127.0.0.7"
stop_at = [0.0]
counts = {}
lock = threading.Lock()
def note(kind, status):
    with lock:
        counts.setdefault(kind, {}).setdefault(status, 0)
        counts[kind][status] += 1

def request(kind, raw, abandon_after=None, slow_read=False):
    try:
        s = connect(P, src=SRC, timeout=5 * SLOW)
        s.sendall(raw)
        if abandon_after is not None:
            time.sleep(abandon_after)
            s.close()
            note(kind, "left")
            return
        if slow_read:
            s.settimeout(3)
            for _ in range(20):
                if not s.recv(4096):
                    break
                time.sleep(0.1)
            s.close()
            note(kind, "read")
            return
        r = Reader(s).response()
        s.close()
        note(kind, r.status)
        if r.status == 429 and not (r.header("retry-after") or "").isdigit():
            note("429 without Retry-After", r.body[:80])
    except (Closed, OSError) as e:
        note(kind, type(e).__name__)

def get(path):
    return ("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode()

def post(queries):
    body = json.dumps({"queries": queries}).encode()
    return (b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() +
            b"\r\n\r\n" + body)

E18 = 10**18
def loop(fn):
    i = 0
    while time.time() < stop_at[0]:
        fn(i)
        i += 1
        time.sleep(0.01)

def audit_batches(i):      # the audit's: 20 × π(1e15), and one that disconnects
    request("batch_pi", post([{"op": "pi", "x": "1000000000000000"}] * 20),
            abandon_after=0.2 if i % 2 else None)
def cheap_looking_batches(i):   # small sieved windows, a few tokens each; 1 to 40 of them
    n = [1, 3, 10, 40][i % 4]
    q = [{"op": "count", "from": str(E18 + 10**7 * (i * 40 + k)), "to": str(E18 + 10**7 * (i * 40 + k) + 10**6)}
         for k in range(n)]
    request("batch_counts", post(q))
def deadline_gets(i):      # priced within the limit, sieved, near 1e18; some run to the deadline
    lo = E18 + 10**9 * (i + 1)
    widths = [2 * 10**6, 5 * 10**6, 10**7, 2 * 10**7, 5 * 10**7, 10**8]  # priced ~5 to ~300
    request("count_1e18", get("/v1/count?from=%d&to=%d" % (lo, lo + widths[i % len(widths)])))
def admitted_gets(i):      # priced within what the bucket can pay: these do run
    lo = 10**13 + 10**9 * i
    path = ["/v1/count?from=%d&to=%d" % (lo, lo + [10**7, 3 * 10**7, 10**8][i % 3]),
            "/v1/pi?x=%d" % (10**11 + i), "/v1/nth?n=%d" % (10**7 + i)][i % 3]
    request("admitted", get(path))
def abandoned_gets(i):     # a π, an nth and a count, left after 50 ms
    path = ["/v1/pi?x=%d" % (10**12 + i), "/v1/nth?n=%d" % (10**9 + i),
            "/v1/count?from=%d&to=%d" % (E18 + i, E18 + i + 5 * 10**7)][i % 3]
    request("abandoned", get(path), abandon_after=0.05)
def slow_streams(i):
    lo = E18 + 10**8 * i
    request("stream", get("/v1/primes?from=%d&to=%d" % (lo, lo + 10**7)), slow_read=True)

polite = {"ok": 0}
def polite_client():   # a tiny count through a worker, twice a second: well within its bucket
    while time.time() < stop_at[0]:
        try:
            r = exchange(P, get("/v1/count?from=0&to=1000"), src="127.0.0.8")
            key = "ok" if r.status == 200 else "%d %s" % (r.status, r.body[:60])
        except (Closed, OSError) as e:
            key = type(e).__name__
        polite[key] = polite.get(key, 0) + 1
        time.sleep(0.5)

cpu0, t0 = worker_cpu_ns(), time.time()
stop_at[0] = t0 + SECONDS
threads = [threading.Thread(target=loop, args=(f,)) for f in
           (audit_batches, cheap_looking_batches, deadline_gets, admitted_gets, abandoned_gets,
            slow_streams)]
threads.append(threading.Thread(target=polite_client))
for t in threads:
    t.start()
for t in threads:
    t.join(60)
# work still running when the client stopped counts too: wait until the workers are idle
time.sleep(1.0)
end = time.time() + 10
while time.time() < end:
    a = worker_cpu_ns(); time.sleep(0.3); b = worker_cpu_ns()
    if b - a < 3e6:
        break
elapsed = time.time() - t0
cpu_ms = (worker_cpu_ns() - cpu0) / 1e6
allowance = BURST + RATE * elapsed
print("requests:", {k: {str(s): n for s, n in v.items()} for k, v in counts.items()})
report("worker CPU within 2x the allowance", cpu_ms <= 2 * allowance,
       "%.0f ms of worker CPU in %.1f s; allowance %.0f ms (%.2fx)" % (cpu_ms, elapsed, allowance, cpu_ms / allowance))
served = sum(v for k in counts for s, v in counts[k].items() if s == 200)
report("the client was refused", sum(v for k in counts for s, v in counts[k].items()
                                     if s in (429, 400)) > 0, "(%d of its answers were 200)" % served)
report("every 429 says when to come back", "429 without Retry-After" not in counts,
       str(counts.get("429 without Retry-After", "")))
report("polite client served", len(polite) == 1 and polite["ok"] > 10, "%s" % polite)
report("server alive", srv.alive(), "")
rc = srv.stop()
report("clean exit", rc == 0, "rc %s" % rc)
report.finish()
PY
