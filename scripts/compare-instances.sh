#!/usr/bin/env bash
# compare-instances.sh — is the canary's memory behaving like the stable build's?
#
#   scripts/compare-instances.sh STABLE_URL CANARY_URL [--seconds N] [--drive STABLE_API CANARY_API]
#                                [--max-slope-diff BYTES_PER_S] [--max-heap-ratio R]
#                                [--heap-slack BYTES] [--top K] [--warmup S]
#
# STABLE_URL and CANARY_URL are the two instances' debug listeners (they serve /metrics and
# /debug/pprof/heap; in Kubernetes: kubectl port-forward POD 6060, one local port per pod). Over
# N seconds (default 30) of the same traffic — the production traffic both already receive, or
# with --drive an identical request mix sent to both API listeners in lockstep — it samples both
# /metrics once a second and takes a heap profile at the start and the end, then prints side by
# side: RSS and its least-squares slope, tcmalloc bytes in use, heap growth per allocation site
# (`go tool pprof -diff_base`, canary's end against stable's end), p99 latency and the 5xx ratio
# of the window (from the histogram and request counters). --warmup S runs the traffic for S
# seconds before the window opens: a fresh process grows for its first seconds (allocator caches,
# connection pools), which is not a slope to hold against it.
#
# Exit status: 0 both alike; 1 the canary fails a threshold — its RSS slope exceeds the stable one's
# by more than --max-slope-diff (default 16384 B/s, 1 MiB/min as PrimedCanaryMemoryGrowth), or its
# tcmalloc in-use exceeds stable × --max-heap-ratio (1.25) + --heap-slack (8 MiB); 2 usage or an
# instance unreachable. Builds without tcmalloc (sanitizers) have no heap numbers: only RSS counts.
# Every loop is bounded by N seconds; nothing is sent anywhere but the four given URLs.
set -uo pipefail
usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 2 ] || usage
GO=$(command -v go || echo /usr/lib/go/bin/go)
export CMP_GO=$GO
exec python3 - "$@" <<'PY'
import atexit, json, os, re, shutil, subprocess, sys, tempfile, threading, time, urllib.request, http.client
from urllib.parse import urlsplit

def die(msg, code=2):
    print(f"compare-instances: {msg}", file=sys.stderr)
    sys.exit(code)

args = sys.argv[1:]
stable, canary = args[0].rstrip("/"), args[1].rstrip("/")
opt = {"seconds": 30.0, "warmup": 0.0, "max-slope-diff": 16384.0, "max-heap-ratio": 1.25,
       "heap-slack": 8 * 2**20, "top": 5}
drive = None
i = 2
while i < len(args):
    a = args[i]
    if a == "--drive" and i + 2 < len(args):
        drive = (args[i + 1].rstrip("/"), args[i + 2].rstrip("/")); i += 3; continue
    k = a[2:] if a.startswith("--") else None
    if k in opt and i + 1 < len(args):
        try:
            opt[k] = float(args[i + 1])
        except ValueError:
            die(f"{a} needs a number, got {args[i + 1]!r}")
        i += 2; continue
    die(f"unknown argument {a!r} (see the header of this script)")
secs = opt["seconds"]
if not 1 <= secs <= 3600 or not 0 <= opt["warmup"] <= 3600:
    die("--seconds must be 1 … 3600, --warmup 0 … 3600")

def get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode("utf-8", "replace")

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)')
def scrape(base):
    out = {}
    for line in get(base + "/metrics").splitlines():
        m = LINE.match(line)
        if m:
            out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out

def one(s, name):
    return s.get((name, ""))

for name, base in (("stable", stable), ("canary", canary)):
    try:
        if one(scrape(base), "process_resident_memory_bytes") is None:
            die(f"{name} {base}/metrics has no process_resident_memory_bytes: not primed?")
    except Exception as e:  # noqa: BLE001 - any failure to reach it is a usage error
        die(f"{name} {base}/metrics: {e}")

tmp = tempfile.mkdtemp(prefix="compare-instances.")
atexit.register(shutil.rmtree, tmp, True)
env = dict(os.environ, HOME=tmp, PPROF_TMPDIR=tmp, GOCACHE=os.path.join(tmp, "gocache"))
GO = os.environ.get("CMP_GO", "go")

def heap(base, path):
    """The heap profile as a symbolized .pb.gz (names via the instance's /symbolz)."""
    try:
        r = subprocess.run([GO, "tool", "pprof", "-symbolize=remote", "-proto",
                            "-output", path, base + "/debug/pprof/heap"],
                           capture_output=True, text=True, env=env, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:  # no go toolchain, or pprof hung
        print(f"compare-instances: heap profile of {base}: {e}", file=sys.stderr)
        return False
    return r.returncode == 0 and os.path.exists(path) and os.path.getsize(path) > 0

def has_heap(base):
    try:
        urllib.request.urlopen(base + "/debug/pprof/heap", timeout=10).read(64)
        return True
    except Exception:  # 501 in builds without tcmalloc, 404 when not a debug listener
        return False

heap_ok = has_heap(stable) and has_heap(canary)
# ---- the window ------------------------------------------------------------------------------
stop = threading.Event()
sent = {"n": 0, "err": 0}
MIX = ["/v1/isprime?n={n}", "/v1/next?n={n}", "/v1/prev?n={m}", "/v1/count?from={n}&to={k}",
       "/v1/primes?from={n}&to={k}"]
def driver(seed):
    conns = [http.client.HTTPConnection(urlsplit(u).netloc, timeout=10) for u in drive]
    x = seed
    while not stop.is_set():
        x = (x * 6364136223846793005 + 1442695040888963407) % 2**64
        n = x % 10**12 + 3
        path = MIX[x % len(MIX)].format(n=n, m=n + 10, k=n + 20000)
        for c in conns:  # the same request to both, one after the other
            try:
                c.request("GET", path)
                c.getresponse().read()
            except Exception:
                sent["err"] += 1
                c.close()
        sent["n"] += 1
threads = [threading.Thread(target=driver, args=(s,), daemon=True) for s in (1, 2)] if drive else []

for t in threads:
    t.start()
time.sleep(opt["warmup"])
prof = {}
if heap_ok:
    for name, base in (("stable", stable), ("canary", canary)):
        p = os.path.join(tmp, f"{name}-start.pb.gz")
        heap_ok = heap_ok and heap(base, p)
        prof[name + "-start"] = p
first = {"stable": scrape(stable), "canary": scrape(canary)}
t0 = time.monotonic()
series = {"stable": [], "canary": []}
last = dict(first)
while True:
    now = time.monotonic() - t0
    for name, base in (("stable", stable), ("canary", canary)):
        try:
            s = scrape(base)
        except Exception as e:  # noqa: BLE001
            die(f"{name} stopped answering during the window: {e}")
        last[name] = s
        series[name].append((now, one(s, "process_resident_memory_bytes"),
                             one(s, "primed_tcmalloc_allocated_bytes")))
    if now >= secs:
        break
    time.sleep(max(0.0, min(1.0, secs - now)))
stop.set()
for t in threads:
    t.join(15)

if heap_ok:
    for name, base in (("stable", stable), ("canary", canary)):
        p = os.path.join(tmp, f"{name}-end.pb.gz")
        heap_ok = heap_ok and heap(base, p)
        prof[name + "-end"] = p

# ---- numbers ---------------------------------------------------------------------------------
def slope(pts):
    pts = [(t, v) for t, v, _ in pts if v is not None]
    if len(pts) < 2:
        return 0.0
    mt = sum(t for t, _ in pts) / len(pts)
    mv = sum(v for _, v in pts) / len(pts)
    den = sum((t - mt) ** 2 for t, _ in pts)
    return sum((t - mt) * (v - mv) for t, v in pts) / den if den else 0.0

def delta(name, metric, pred):
    a, b = first[name], last[name]
    return sum(v - a.get(k, 0.0) for k, v in b.items() if k[0] == metric and pred(k[1]))

def p99(name):
    buckets = {}
    for (m, labels), v in last[name].items():
        if m != "primed_http_request_duration_seconds_bucket":
            continue
        if re.search(r'handler="(metrics|debug)"', labels):
            continue
        le = re.search(r'le="([^"]+)"', labels).group(1)
        buckets[le] = buckets.get(le, 0.0) + v - first[name].get((m, labels), 0.0)
    if not buckets:
        return None
    ordered = sorted(buckets.items(), key=lambda kv: float("inf") if kv[0] == "+Inf" else float(kv[0]))
    total = ordered[-1][1]
    if total <= 0:
        return None
    want, prev_le, prev_c = 0.99 * total, 0.0, 0.0
    for le, c in ordered:
        if c >= want:
            if le == "+Inf":
                return prev_le
            hi = float(le)
            return prev_le + (hi - prev_le) * ((want - prev_c) / (c - prev_c) if c > prev_c else 1)
        prev_le, prev_c = (float(le) if le != "+Inf" else prev_le), c
    return prev_le

res = {}
for name in ("stable", "canary"):
    pts = series[name]
    reqs = delta(name, "primed_http_requests_total", lambda l: 'handler="metrics"' not in l)
    errs = delta(name, "primed_http_requests_total",
                 lambda l: 'handler="metrics"' not in l and re.search(r'code="5', l) is not None)
    res[name] = {
        "rss0": pts[0][1], "rss1": pts[-1][1], "slope": slope(pts),
        "heap0": pts[0][2], "heap1": pts[-1][2],
        "p99": p99(name), "reqs": reqs, "ratio5xx": errs / reqs if reqs else 0.0,
    }

MiB = 2**20
def fmt(v, scale=MiB, unit="MiB", nd=1):
    return "n/a" if v is None else f"{v / scale:.{nd}f} {unit}"
rows = [
    ("RSS at start", lambda r: fmt(r["rss0"])),
    ("RSS at end", lambda r: fmt(r["rss1"])),
    ("RSS slope", lambda r: fmt(r["slope"], 1024, "KiB/s", 1)),
    ("tcmalloc in use at start", lambda r: fmt(r["heap0"])),
    ("tcmalloc in use at end", lambda r: fmt(r["heap1"])),
    ("p99 latency (window)", lambda r: "n/a" if r["p99"] is None else f"{r['p99'] * 1000:.2f} ms"),
    ("5xx ratio (window)", lambda r: f"{r['ratio5xx'] * 100:.2f} %"),
    ("requests (window)", lambda r: f"{r['reqs']:.0f}"),
]
print(f"compare-instances: {secs:.0f} s window after {opt['warmup']:.0f} s warm-up, stable {stable}, canary {canary}"
      + (f", driving the same mix to {drive[0]} and {drive[1]} ({sent['n']} requests each, "
         f"{sent['err']} transport errors)" if drive else ", production traffic"))
print(f"{'':28}{'stable':>16}{'canary':>16}")
for label, f in rows:
    print(f"{label:28}{f(res['stable']):>16}{f(res['canary']):>16}")

def top_diff(base, prof_path, k):
    r = subprocess.run([GO, "tool", "pprof", "-top", "-sample_index=inuse_space",
                        "-nodecount", str(k), "-diff_base", base, prof_path],
                       capture_output=True, text=True, env=env, timeout=120)
    lines = r.stdout.splitlines()
    start = next((i for i, l in enumerate(lines) if l.strip().startswith("flat")), None)
    return lines[start:start + k + 1] if start is not None else [r.stderr.strip()[:200]]

if heap_ok:
    k = int(opt["top"])
    print(f"\nheap in use, canary at end minus stable at end, by allocation site "
          f"(go tool pprof -diff_base, top {k}):")
    for l in top_diff(prof["stable-end"], prof["canary-end"], k):
        print("  " + l)
    for name in ("stable", "canary"):
        print(f"\n{name}: heap growth during the window (end minus start, top {k}):")
        for l in top_diff(prof[name + "-start"], prof[name + "-end"], k):
            print("  " + l)
else:
    print("\nheap profiles: n/a (a build without tcmalloc, or no /debug/pprof/heap)")

fails = []
sd = res["canary"]["slope"] - res["stable"]["slope"]
if sd > opt["max-slope-diff"]:
    fails.append(f"RSS slope {res['canary']['slope'] / 1024:.1f} KiB/s exceeds stable's "
                 f"{res['stable']['slope'] / 1024:.1f} KiB/s by {sd / 1024:.1f} KiB/s "
                 f"(limit {opt['max-slope-diff'] / 1024:.1f})")
h_s, h_c = res["stable"]["heap1"], res["canary"]["heap1"]
if h_s is not None and h_c is not None:
    lim = h_s * opt["max-heap-ratio"] + opt["heap-slack"]
    if h_c > lim:
        fails.append(f"tcmalloc in use {h_c / MiB:.1f} MiB above stable's {h_s / MiB:.1f} MiB × "
                     f"{opt['max-heap-ratio']} + {opt['heap-slack'] / MiB:.0f} MiB = {lim / MiB:.1f} MiB")
print()
if fails:
    print("RESULT: canary FAILS: " + "; ".join(fails))
    sys.exit(1)
print(f"RESULT: canary OK (RSS slope difference {sd / 1024:.1f} KiB/s, limit "
      f"{opt['max-slope-diff'] / 1024:.1f}; heap within × {opt['max-heap-ratio']} + "
      f"{opt['heap-slack'] / MiB:.0f} MiB)")
sys.exit(0)
PY
