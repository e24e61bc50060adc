#!/usr/bin/env bash
# test_pi_cache.sh — the π cache through the service (issue 25).
#  1. Exactness, cache on and off: the same π suite (pi at every magnitude, neighbours of cached
#     values on both sides — the gap path —, wide counts by π, nth at random and walking up and
#     down from earlier answers, repeats, a batch) against a server with the default cache and
#     one with --pi-cache-bytes 0: identical answers, each equal to primecount's; the cached
#     server took the gap and walk paths and hit its cache (its arrays charged to the request
#     memory budget), the other holds nothing.
#  2. nth walking: nth?n=1e15, then nth?n=1000000000001000 on 2 workers: the second answers in
#     < 50 ms (sieved from the first answer, π(p_k) = k); the first equals `primecount 1e15 -n`,
#     the second is prime with exactly 1000 primes after the first (primesieve) (1e12 and
#     1e12+1000 under the sanitizers, whose π(3.7e16) would take minutes).
#  3. The bound: 100,000 distinct random pi?x below 1e9 on 4 keep-alive connections, /metrics
#     and VmRSS sampled every 100 ms: primed_pi_cache_bytes never above
#     primed_pi_cache_bound_bytes, the cache full and evicting, RSS flat after warm-up (the second
#     half adds < 2 MiB, the leakcheck budget), a sample of answers equal to primecount. Under the
#     sanitizers 20,000 into a 128 KiB cache, RSS not checked (ASan's quarantine keeps freed
#     memory).
# Bounded: about a minute in a release build. 127.0.0.1 only.
set -uo pipefail
cd "$(dirname "$0")/.."
[ -x "${PRIMED_BIN:-build/primed}" ] || { echo "test_pi_cache: no primed binary"; exit 1; }
command -v primecount >/dev/null || { echo "FAIL primecount not installed (scripts/install-deps.sh)"; exit 1; }
exec python3 - <<'PY'
import json, os, random, socket, subprocess, sys, threading, time
sys.dont_write_bytecode = True
sys.path.insert(0, "tests")
from rawhttp import Report, Server, Closed, Reader, connect, exchange, metrics, VARIANT, SLOW

report = Report("test_pi_cache", 46)
stops = []  # exit codes of the servers (a sanitizer report at exit is a non-zero one)
def stop_server(srv):
    stops.append(srv.stop())
SAN = VARIANT != "release"
rng = random.Random(2025)

def primecount(*args):
    return int(subprocess.check_output(["primecount"] + [str(a) for a in args]).split()[0])

class Conn:
    """One keep-alive connection."""
    def __init__(self, port):
        self.port, self.s, self.rd = port, None, None
    def get(self, path, body=None):
        for attempt in range(2):
            if self.s is None:
                self.s = connect(self.port, timeout=600)
                self.rd = Reader(self.s)
            if body is None:
                req = "GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path
            else:
                req = ("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Content-Length: %d\r\n\r\n%s" % (path, len(body), body))
            try:
                self.s.sendall(req.encode())
                r = self.rd.response()
            except (Closed, OSError):
                self.s.close(); self.s = None
                if attempt: raise
                continue
            if (r.header("connection") or "").lower() == "close":
                self.s.close(); self.s = None
            return r

def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1

# ---- 1. exactness, cache on and off -----------------------------------------------------------
TOP = 10**11 if SAN else 10**13
queries = []  # (path, oracle)
xs = []
for e in range(2, 14):
    if 10**e > TOP: break
    for _ in range(2):
        xs.append(rng.randrange(10**(e - 1), 10**e))
xs += [0, 1, 2, 3, 10**6, 10**9, TOP]
base = [rng.randrange(TOP // 10, TOP) for _ in range(3)]
for x0 in base:  # the neighbours of a value computed first: the gap path, both sides
    xs.append(x0)
    for d in (1, 2, 997, 10**5, 10**7, 10**9):
        xs += [x0 + d, x0 - d]
xs += xs[:5]  # repeats
for x in xs:
    queries.append(("/v1/pi?x=%d" % x, ("pi", x)))
for _ in range(6):  # wide counts go through π(b) − π(a−1)
    a = rng.randrange(0, TOP // 2); b = a + rng.randrange(TOP // 4, TOP // 2)
    queries.append(("/v1/count?from=%d&to=%d" % (a, b), ("count", a, b)))
x0 = base[0]
queries.append(("/v1/count?from=%d&to=%d" % (x0 - 10**9, x0 + 10**9), ("count", x0 - 10**9, x0 + 10**9)))
NTOP = 10**9 if SAN else 10**11
ns = [rng.randrange(1, NTOP) for _ in range(5)] + [1, 2, 10**6]
for n0 in list(ns[:3]):  # walking up and down from earlier answers
    ns += [n0 + 1, n0 + 2, n0 + 1000, n0 - 1, n0 - 1000, n0 + 10**5, n0 - 10**5, n0]
for n in ns:
    queries.append(("/v1/nth?n=%d" % n, ("nth", n)))

def oracle(o):
    if o[0] == "pi": return primecount(o[1])
    if o[0] == "count": return primecount(o[2]) - (primecount(o[1] - 1) if o[1] > 0 else 0)
    return primecount(o[1], "-n")

def value(r):
    j = r.json() or {}
    return j.get("pi", j.get("count", j.get("prime")))

on = Server(["--workers", "2", "--request-timeout-ms", "600000", "--log-level", "warn"])
off = Server(["--workers", "2", "--request-timeout-ms", "600000", "--log-level", "warn",
              "--pi-cache-bytes", "0"])
c_on, c_off = Conn(on.port), Conn(off.port)
bad = []
t0 = time.time()
for path, o in queries:
    r1, r2 = c_on.get(path), c_off.get(path)
    want = oracle(o)
    if r1.status != 200 or r2.status != 200 or value(r1) != want or value(r2) != want:
        bad.append((path, r1.status, value(r1), r2.status, value(r2), want))
# the same π through a batch
batch = json.dumps({"queries": [{"op": "pi", "x": str(x)} for x in xs[:20]]})
b1, b2 = c_on.get("/v1/batch", batch), c_off.get("/v1/batch", batch)
if b1.status != 200 or b1.body != b2.body:
    bad.append(("batch", b1.status, b1.body[:80], b2.status, b2.body[:80], None))
elif [q["pi"] for q in b1.json()["results"]] != [primecount(x) for x in xs[:20]]:
    bad.append(("batch values", b1.body[:80]))
report("cache on = cache off = primecount", not bad,
       "%d queries + a batch of 20, %.1f s%s" % (len(queries), time.time() - t0,
                                                  ("; first: %s" % (bad[0],)) if bad else ""))
m_on, m_off = metrics(on.port), metrics(off.port)
gap = m_on.get('primed_pi_computations_total{method="gap"}', 0)
walks = m_on.get("primed_nth_walks_total", 0)
hits = m_on.get("primed_pi_cache_hits_total", 0)
report("cache on: gap, walks and hits taken", gap >= 20 and walks >= 10 and hits >= 5,
       "gap %d, engine %d, walks %d, hits %d, entries %d" % (
           gap, m_on.get('primed_pi_computations_total{method="engine"}', 0), walks, hits,
           m_on.get("primed_pi_cache_entries", -1)))
report("cache off: nothing held or reused",
       m_off.get("primed_pi_cache_bound_bytes", -1) == 0 and m_off.get("primed_pi_cache_entries", -1) == 0
       and m_off.get('primed_pi_computations_total{method="gap"}', -1) == 0
       and m_off.get("primed_nth_walks_total", -1) == 0,
       "bound %d, entries %d" % (m_off.get("primed_pi_cache_bound_bytes", -1),
                                  m_off.get("primed_pi_cache_entries", -1)))
held, charged = m_on.get("primed_pi_cache_bytes", -1), m_on.get("primed_request_memory_bytes", -1)
report("the cache's arrays are charged to request memory",
       charged > 0 and 0 < held - charged < 4096 and m_off.get("primed_request_memory_bytes", -1) == 0,
       "cache holds %d bytes, request memory %d (the rest: its shard table); off: %d" % (
           held, charged, m_off.get("primed_request_memory_bytes", -1)))
stop_server(off)
stop_server(on)

# ---- 2. nth walking ---------------------------------------------------------------------------
# Oracles: `primecount N1 -n` (run while the server computes: ~13 s of one core at 1e15 here),
# and for the second answer the primes of (P1, P2] counted by primesieve (N2 − N1 of them, P2
# itself prime).
N1 = 10**12 if SAN else 10**15
N2 = N1 + 1000
oracle1 = subprocess.Popen(["primecount", str(N1), "-n"], stdout=subprocess.PIPE)
srv = Server(["--workers", "2", "--request-timeout-ms", "900000", "--log-level", "warn"])
c = Conn(srv.port)
c.get("/v1/isprime?n=7")  # the connection is up
t0 = time.time(); r1 = c.get("/v1/nth?n=%d" % N1); t1 = time.time() - t0
t0 = time.time(); r2 = c.get("/v1/nth?n=%d" % N2); t2 = time.time() - t0
P1, P2 = value(r1) or 0, value(r2) or 0
want1 = int(oracle1.communicate()[0].split()[0])
def primesieve_count(lo, hi):
    out = subprocess.check_output(["primesieve", str(lo), str(hi), "--count", "-q"])
    return int(out.split()[0])
between = primesieve_count(P1 + 1, P2) if P2 > P1 else -1
report("nth(%d) = primecount's" % N1, r1.status == 200 and P1 == want1,
       "%s in %.1f s (primecount %d)" % (P1, t1, want1))
report("nth(%d): %d primes on, < 50 ms" % (N2, N2 - N1),
       r2.status == 200 and between == N2 - N1 and primesieve_count(P2, P2) == 1 and t2 < 0.05,
       "%s in %.1f ms, primes in (P1, P2]: %d" % (P2, t2 * 1000, between))
stop_server(srv)

# ---- 3. the bound under 100,000 distinct π ----------------------------------------------------
TOTAL = 20000 if SAN else 100000
CONNS = 4
# The default bound in a release build; a smaller one under the sanitizers, so that their 20,000
# also fill it and evict.
srv = Server(["--workers", "2", "--log-level", "warn"] + (["--pi-cache-bytes", "128KiB"] if SAN else []))
xs = rng.sample(range(10**9), TOTAL)
done = [0] * CONNS
answers = {}
errors = []
def client(i):
    cn = Conn(srv.port)
    for k, x in enumerate(xs[i::CONNS]):
        r = cn.get("/v1/pi?x=%d" % x)
        if r.status != 200:
            errors.append((x, r.status))
        elif k % 500 == 0:
            answers[x] = value(r)
        done[i] += 1
samples = []  # (requests done, cache bytes, bound, rss KiB)
stop = threading.Event()
def sampler():
    while not stop.is_set():
        m = metrics(srv.port)
        samples.append((sum(done), m.get("primed_pi_cache_bytes", -1),
                        m.get("primed_pi_cache_bound_bytes", -1), rss_kib(srv.proc.pid)))
        stop.wait(0.1)
st = threading.Thread(target=sampler); st.start()
t0 = time.time()
ts = [threading.Thread(target=client, args=(i,)) for i in range(CONNS)]
for t in ts: t.start()
for t in ts: t.join(300)
secs = time.time() - t0
time.sleep(0.25)
stop.set(); st.join()
m = metrics(srv.port)
over = [s for s in samples if s[1] > s[2] or s[1] < 0]
report("%d distinct pi?x < 1e9 answered" % TOTAL, sum(done) == TOTAL and not errors,
       "%d in %.1f s (%.0f/s), %d errors" % (sum(done), secs, sum(done) / secs, len(errors)))
report("cache bytes never above the bound", not over and len(samples) > 20,
       "%d samples, max %d of %d bytes; %d entries, %d evictions" % (
           len(samples), max(s[1] for s in samples), m.get("primed_pi_cache_bound_bytes", -1),
           m.get("primed_pi_cache_entries", -1), m.get("primed_pi_cache_evictions_total", -1)))
half = [s for s in samples if s[0] >= TOTAL // 2]
grow = (samples[-1][3] - half[0][3]) if half else 1 << 30
rss_note = "RSS %d KiB at %d requests, %d KiB at the end (+%d KiB)" % (
    half[0][3] if half else -1, half[0][0] if half else -1, samples[-1][3], grow)
if SAN:  # ASan keeps freed blocks in its quarantine (256 MiB): RSS grows with any traffic
    report("the cache filled and evicted", m.get("primed_pi_cache_evictions_total", 0) > 0,
           rss_note + " (RSS not checked under %s)" % VARIANT)
else:
    report("RSS flat after warm-up", m.get("primed_pi_cache_evictions_total", 0) > 0 and grow < 2048,
           rss_note)
wrong = [(x, v) for x, v in sorted(answers.items()) if primecount(x) != v]
report("sampled answers equal primecount", answers and not wrong,
       "%d checked%s" % (len(answers), ("; %s" % (wrong[0],)) if wrong else ""))
stop_server(srv)
report("every server exited 0", all(rc == 0 for rc in stops), str(stops))
report.finish()
PY
