#!/usr/bin/env bash
# test_faults.sh — primed under faults it cannot prevent:
#   1. ENOMEM: tests/faults/alloc_faults.c, linked here against $PRIMED_BUILD/libprimed.a with
#      -Wl,--wrap=malloc,calloc,realloc, fails every allocation point of the handler-level
#      functions in turn (the product carries no fault-injection flag).
#   2. SIGTERM under load: 50 requests of varying size in flight; every one is answered: work
#      that had started completes with a full, valid response (counts checked against the
#      primecount CLI), jobs still queued get 503 unavailable at once; the exit code is 0.
#   3. Out of file descriptors: primed under RLIMIT_NOFILE=64 and 120 client connections; it
#      must stay up, refuse while full and answer /healthz again once the clients go away.
# Under the asan build every exit also proves "no leak" (LSan exit code 23 otherwise).
set -uo pipefail
cd "$(dirname "$0")/.."
B=${PRIMED_BUILD:-$PWD/build}
VARIANT=${PRIMED_VARIANT:-release}
[ "$VARIANT" = tsan ] && exit 77   # nothing here is about data races; tsan has its own suite
[ -f "$B/libprimed.a" ] || { echo "test_faults: no $B/libprimed.a"; exit 1; }

# ---- 1. allocation failures -----------------------------------------------------------------
PKGS="libmicrohttpd jansson check"
CFLAGS="-std=c11 -pthread -D_GNU_SOURCE -Iinclude -Itests -Wall -Wextra -Werror -Wno-unused-parameter"
LIBS="$(pkg-config --libs $PKGS) -lm -pthread"
case "$VARIANT" in
  asan) CFLAGS="$CFLAGS -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
        LIBS="-fsanitize=address,undefined $LIBS" ;;
  *)    CFLAGS="$CFLAGS -O2 -g"
        # the product library may carry the tcmalloc/profiler glue (src/*.cc) in release builds
        LIBS="$LIBS -Wl,--no-as-needed $(pkg-config --libs libprofiler libtcmalloc) -Wl,--as-needed -lstdc++" ;;
esac
mkdir -p "$B/faults"
bin="$B/faults/alloc_faults"
# shellcheck disable=SC2086
gcc $CFLAGS $(pkg-config --cflags $PKGS) -o "$bin" tests/faults/alloc_faults.c \
    -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc "$B/libprimed.a" "$B/libprimedsieve.a" $LIBS ||
  { echo "test_faults: cannot build $bin"; exit 1; }
"$bin" || { echo "test_faults: allocation-failure tests failed"; exit 1; }

# ---- 2 and 3 need the server ----------------------------------------------------------------
[ -x "${PRIMED_BIN:-$B/primed}" ] || { echo "test_faults: no primed binary"; exit 1; }
command -v primecount >/dev/null || { echo "test_faults: primecount CLI is required"; exit 1; }
exec python3 - <<'PY'
import json, os, random, resource, signal, socket, subprocess, sys, threading, time
sys.dont_write_bytecode = True
sys.path.insert(0, "tests")
from rawhttp import Server, Closed, Reader, connect, healthz_ok, SLOW, get

failures = 0
def report(name, ok, detail):
    global failures
    print("%-34s %-6s %s" % (name, "ok" if ok else "FAIL", detail))
    failures += not ok

# ---- SIGTERM with 50 requests in flight ----
random.seed(int(os.environ.get("PRIMED_TEST_SEED", "12345")))
srv = Server(["--workers", "2", "--queue-capacity", "128", "--shutdown-timeout", str(int(60 * SLOW)),
              "--request-timeout-ms", str(int(120000 * SLOW)), "--log-level", "warn"])
reqs = []
for i in range(50):
    kind = i % 5
    lo = random.randrange(0, 10**12)
    if kind in (0, 1):   # counts of 1-4 × 10^9 numbers (1-10 × 10^8 under sanitizers): seconds of work in all
        width = random.randint(1, 4) * 10 ** 9 if SLOW == 1 else random.randint(1, 10) * 10 ** 8
        reqs.append(("count", "/v1/count?from=%d&to=%d" % (lo, lo + width), (lo, lo + width)))
    elif kind == 2:      # streamed lists of 10^4 … 10^7 numbers (up to ~4 MB of JSON)
        width = 10 ** random.randint(4, 7 if SLOW == 1 else 6)
        reqs.append(("primes", "/v1/primes?from=%d&to=%d" % (lo, lo + width), (lo, lo + width)))
    elif kind == 3:
        reqs.append(("isprime", "/v1/isprime?n=%d" % random.randrange(2**63, 2**64), None))
    else:
        reqs.append(("nth", "/v1/nth?n=%d" % random.randint(1, 10**6), None))

results = [None] * len(reqs)
sent = threading.Barrier(len(reqs) + 1)
def worker(i):
    kind, path, arg = reqs[i]
    try:
        s = connect(srv.port, timeout=180 * SLOW)
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
    except OSError as e:
        results[i] = Closed("connect %s" % e)
        sent.wait()
        return
    sent.wait()
    try:
        results[i] = Reader(s).response()
    except Closed as c:
        results[i] = c
    s.close()
threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(reqs))]
for t in threads: t.start()
sent.wait()
# Signal as soon as the server has received every request (its in-flight gauge, read on the
# debug listener so that the probe is not one of them), at most 3 s after the last write.
def server_inflight():
    try:
        m = get(srv.debug_port, "/metrics", timeout=2).body.decode()
    except (Closed, OSError):
        return -1
    for line in m.splitlines():
        if line.startswith("primed_inflight_requests "):
            return int(float(line.split()[1]))
    return -1
# "Received" = still in flight at the server + already answered; signal once that is all 50.
t_wait = time.time()
gauge = server_inflight()
while gauge + sum(1 for r in results if r is not None) < len(reqs) and time.time() - t_wait < 3:
    time.sleep(0.01)
    gauge = server_inflight()
t_sig = time.time()
srv.proc.send_signal(signal.SIGTERM)
for t in threads: t.join(timeout=200 * SLOW)
rc = srv.stop(sig=None, timeout=60)
drain = time.time() - t_sig   # signal → exit

def pc(lo, hi):  # primes in [lo, hi] by the primecount CLI
    a = int(subprocess.check_output(["primecount", str(hi)]).split()[0])
    b = int(subprocess.check_output(["primecount", str(lo - 1)]).split()[0]) if lo > 0 else 0
    return a - b

complete, bad = 0, []
checked = 0
refused = 0  # queued (no work started) at SIGTERM: answered 503 unavailable at once (issue 20)
for (kind, path, arg), r in zip(reqs, results):
    if hasattr(r, "status") and r.status == 503:
        j = r.json() or {}
        if (j.get("error") or {}).get("code") == "unavailable" and r.header("connection") == "close":
            refused += 1
            continue
    if not hasattr(r, "status") or r.status != 200:
        bad.append("%s -> %s" % (path, getattr(r, "how", getattr(r, "status", r))))
        continue
    body = r.json()
    if body is None and kind == "primes":
        bad.append("%s -> truncated/invalid JSON (%d bytes)" % (path, len(r.body)))
        continue
    if kind == "count":
        cnt = body.get("count") if isinstance(body, dict) else None
        if checked < 6:   # primecount is the oracle; a few suffice to prove "complete and right"
            checked += 1
            if cnt != pc(*arg):
                bad.append("%s -> count %r, primecount says %d" % (path, cnt, pc(*arg)))
                continue
    elif kind == "primes":
        lst = body.get("primes") if isinstance(body, dict) else body
        if not isinstance(lst, list) or (checked < 10 and len(lst) != pc(*arg)):
            bad.append("%s -> %s primes" % (path, len(lst) if isinstance(lst, list) else "no"))
            continue
        checked += 1
    complete += 1
# The test means something only if most requests were still running when the signal came.
# Work that had started is drained (complete and valid); requests still queued are answered
# 503 unavailable + Connection: close at once; none is lost.
report("sigterm_drains_running_work_and_answers_the_rest",
       complete + refused == len(reqs) and complete >= 2 and rc == 0 and gauge >= 25,
       "%d in flight at SIGTERM (server gauge), %d complete and valid, %d queued ones answered "
       "503 unavailable, of %d; exit %s %.1f s after it%s"
       % (gauge, complete, refused, len(reqs), rc, drain,
          ("; " + "; ".join(bad[:5])) if bad else ""))
if rc != 0:
    print(srv.log_text(2000))

# ---- out of file descriptors ----
# Finding 3 (docs/reliability.md): once accept() failed with EMFILE, one of libmicrohttpd's pool
# threads could spin on epoll_wait/accept4 (~32k EMFILE/s, 40-75 % of a core). server.c now caps
# the connection limit below RLIMIT_NOFILE, so the server must stay idle while full (CPU < 10 %).
# Closed clients used to be reclaimed only by the idle timeout (libmicrohttpd's epoll mode missed
# a FIN that came with data; the main listener polls now): /healthz must be back within 2 s.
IDLE = 5
def limit_fds():
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
srv = Server(["--workers", "2", "--connection-timeout", str(IDLE), "--log-level", "error"], preexec=limit_fds)
def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        st = f.read().rsplit(")", 1)[1].split()
    return (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")
held = []
for i in range(120):
    try:
        s = connect(srv.port, timeout=2)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished: holds the fd
        held.append(s)
    except OSError:
        break
time.sleep(0.5)
fds_server = len(os.listdir("/proc/%d/fd" % srv.proc.pid))
c0 = cpu_seconds(srv.proc.pid); t0 = time.time()
time.sleep(2.0)
cpu_share = (cpu_seconds(srv.proc.pid) - c0) / (time.time() - t0)
starved = not healthz_ok(srv.port, timeout=1)
for s in held: s.close()
recovered, t_rec = False, time.time()
while time.time() - t_rec < 2 * IDLE + 3 * SLOW:
    if healthz_ok(srv.port, timeout=1):
        recovered = True
        break
    time.sleep(0.2)
rec_s = time.time() - t_rec
alive = srv.alive()
rc = srv.stop(timeout=30)
# Two idle timeouts: the held connections are reaped by the first; the clients that waited in the
# listen backlog (the connection limit is capped below the fd limit) are accepted only then, and
# the ones that already hung up are reaped within the second (measured: 5.0-8.4 s with IDLE 5).
bound = 2.0 * SLOW
ok = alive and starved and recovered and rec_s <= bound and rc == 0 and cpu_share < 0.10
report("fd_exhaustion_recovers", ok,
       "%d clients connected, server at %d/64 fds, healthz %s while full, CPU %.0f%% while full, "
       "healthz back %.1f s after the clients closed (bound %.0f s), exit %s"
       % (len(held), fds_server, "refused" if starved else "still served", 100 * cpu_share,
          rec_s, bound, rc))

# ---- a half-sent request does not hold up shutdown (it used to wait shutdown_timeout) ----
if True:
    srv = Server(["--workers", "2", "--shutdown-timeout", "10", "--connection-timeout", "30"])
    s = connect(srv.port)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    time.sleep(0.3)
    t = time.time()
    rc = srv.stop(timeout=30)
    took = time.time() - t
    report("sigterm_not_delayed_by_partial_headers", rc == 0 and took < 2 * SLOW,
           "exit %s %.1f s after SIGTERM with one client mid-headers (--shutdown-timeout 10)" % (rc, took))
sys.exit(1 if failures else 0)
PY
