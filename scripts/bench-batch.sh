#!/usr/bin/env bash
# bench-batch.sh — what batch bodies cost the server (issue 11, defects 1 and 2), 127.0.0.1 only,
# bounded (~15 s + DURATION):
#  1. Peak RSS growth while 20 batches of 1 MiB wait for the only worker (busy with a count until
#     its request deadline): VmHWM at the moment the queue holds all 20, minus VmRSS before.
#     The body is the audit's: one query carrying ~350k empty objects (~65 MiB of jansson tree
#     when it was parsed on arrival). Target: ≤ 160 MiB.
#  2. /healthz latency (one new connection per probe, every 20 ms) while 8 clients post such
#     1 MiB batches back to back for DURATION seconds (default 10) with the default workers.
#     Target: max < 100 ms.
# Prints the figures and one verdict line per target; exits 1 when a target is missed.
# B=build/asan etc. picks another build; PRIMED_BIN overrides the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
export PRIMED_BIN=${PRIMED_BIN:-$PWD/${B:-build}/primed}
export DURATION=${DURATION:-10}
[ -x "$PRIMED_BIN" ] || { echo "bench-batch: no primed binary at $PRIMED_BIN"; exit 1; }
exec python3 - <<'PY'
import os, socket, sys, threading, time
sys.dont_write_bytecode = True
sys.path.insert(0, "tests")
from rawhttp import Server, Closed, Reader, connect, exchange, percentile

MIB = 1024 * 1024
DURATION = float(os.environ["DURATION"])
head, tail = '{"queries":[{"op":"isprime","n":7,"x":[', "{}]}]}"
BODY = (head + "{}," * ((MIB - 64 - len(head) - len(tail)) // 3) + tail).encode()

def post(port, body, timeout=60):
    """One POST /v1/batch on its own connection; the status, or None."""
    req = (b"POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
           b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
    try:
        return exchange(port, req, timeout=timeout).status
    except (Closed, OSError):
        return None

def metric(port, name):
    try:
        r = exchange(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    except (Closed, OSError):
        return None
    for line in r.body.decode().split("\n"):
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None

def status_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1

fails = 0

# ---- 1. 20 queued 1 MiB batches ----------------------------------------------------------------
srv = Server(["--workers", "1", "--request-timeout-ms", "10000", "--log-level", "error"],
             debug=False)
try:
    time.sleep(0.2)
    rss0 = status_kib(srv.proc.pid, "VmRSS")
    busy = threading.Thread(target=lambda: exchange(
        srv.port, b"GET /v1/count?from=0&to=1e15 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        timeout=30))
    busy.start()
    for _ in range(500):
        if metric(srv.port, "primed_workers_busy") == 1:
            break
        time.sleep(0.01)
    posters = [threading.Thread(target=post, args=(srv.port, BODY)) for _ in range(20)]
    t0 = time.time()
    for t in posters:
        t.start()
    depth = None
    while time.time() - t0 < 8:
        depth = metric(srv.port, "primed_queue_depth")
        if depth == 20:
            break
        time.sleep(0.02)
    hwm = status_kib(srv.proc.pid, "VmHWM")
    held = metric(srv.port, "primed_request_memory_bytes")
    growth = (hwm - rss0) / 1024.0
    print("20 queued 1 MiB batches (1 worker busy): queue depth %s after %.2f s; VmRSS before "
          "%.1f MiB, VmHWM %.1f MiB: peak RSS growth %.1f MiB; request memory held %.1f MiB"
          % (depth, time.time() - t0, rss0 / 1024.0, hwm / 1024.0, growth,
             (held or 0) / MIB))
    ok = depth == 20 and growth <= 160
    print("  target: peak RSS growth <= 160 MiB with all 20 queued: %s" % ("PASS" if ok else "FAIL"))
    fails += not ok
    for t in posters + [busy]:
        t.join(timeout=40)
finally:
    srv.stop()

# ---- 2. /healthz while 8 clients post 1 MiB batches ---------------------------------------------
# The posters are 8 curl loops in their own processes, so the probe (this process, one thread)
# measures the server, not a client-side GIL shared with them.
import subprocess, tempfile
srv = Server(["--log-level", "error", "--max-connections-per-ip", "0"], debug=False)
tmp = tempfile.mkdtemp(prefix="bench-batch-")
try:
    body_path = os.path.join(tmp, "body.json")
    with open(body_path, "wb") as f:
        f.write(BODY)
    url = "http://127.0.0.1:%d/v1/batch" % srv.port
    loop = ('end=$((SECONDS + %d)); n=0; while [ $SECONDS -lt $end ]; do '
            'curl -s -o /dev/null -w "%%{http_code}\\n" -H "Content-Type: application/json" '
            '-H "Expect:" --data-binary @%s %s; done') % (int(DURATION), body_path, url)
    clients = [subprocess.Popen(["bash", "-c", loop], stdout=subprocess.PIPE) for _ in range(8)]
    stop = time.time() + DURATION
    lat = []
    while time.time() < stop:
        t1 = time.time()
        try:
            r = exchange(srv.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                         timeout=10)
            lat.append((time.time() - t1) * 1000 if r.status == 200 else 1e9)
        except (Closed, OSError):
            lat.append(1e9)
        time.sleep(0.02)
    answers = {}
    for c in clients:
        out, _ = c.communicate(timeout=70)
        for st in out.decode().split():
            answers[st] = answers.get(st, 0) + 1
    print("/healthz while 8 clients post 1 MiB batches for %.0f s (%d posts, answers %s): "
          "%d probes, p50 %.1f ms, p99 %.1f ms, max %.1f ms"
          % (DURATION, sum(answers.values()), ", ".join("%s×%d" % kv for kv in sorted(answers.items())),
             len(lat), percentile(lat, 50), percentile(lat, 99), max(lat)))
    ok = max(lat) < 100
    print("  target: /healthz max < 100 ms: %s" % ("PASS" if ok else "FAIL"))
    fails += not ok
finally:
    srv.stop()
    for name in os.listdir(tmp):
        os.unlink(os.path.join(tmp, name))
    os.rmdir(tmp)
sys.exit(1 if fails else 0)
PY
