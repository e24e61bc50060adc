#!/usr/bin/env bash
# leakcheck.sh — fail when primed's memory grows with its traffic (`make leakcheck`).
#
#   scripts/leakcheck.sh [--expect-leak FUNCTION] [BUILD_DIR]     (default build)
#
# Starts BUILD_DIR/primed (a tcmalloc build) sampling the heap every 4 KiB on average, runs one
# fixed round of traffic (scripts/leakcheck-workload.py: every endpoint and every allocating
# path, bad input, abandoned streams, cancels, timeouts, 503s, profiles) to warm up, then takes
# heap profiles from /debug/pprof/heap: A, one more round, B, the same round again, C.
# scripts/heap-diff.sh (go tool pprof -diff_base) compares A→B and B→C per allocation site.
# Fails when a site grows in BOTH intervals by more than LEAK_THRESHOLD_KIB (default 32) KiB
# per 1,000 requests, or when RSS grows in both by more than LEAK_RSS_MIB (default 2) MiB per
# round. Growth in one interval only is a cache filling or a profile's sampling noise, not a
# leak: a leak grows every time. The planted 1 KiB-per-API-request leak shows ~1,050 KiB per
# 1,000 requests here.
# --expect-leak F inverts the verdict (the LEAK_PLANT=1 build): exit 0 only when the check
# fails AND names F among the growing sites.
# Prints a table: site, growth in KiB per 1,000 requests A→B and B→C, and the stack.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
expect=""
[ "${1:-}" = --expect-leak ] && { expect=$2; shift 2; }
B=${1:-build}
export PRIMED_BIN="$PWD/$B/primed"
THR=${LEAK_THRESHOLD_KIB:-32}
RSS_MIB=${LEAK_RSS_MIB:-2}
. tests/obs_lib.sh
GO=$(command -v go || echo /usr/lib/go/bin/go)
[ -x "$GO" ] || obs_fail "go not installed (golang-go)"
[ -x "$PRIMED_BIN" ] || obs_fail "$PRIMED_BIN not built"
export HOME="$OBS_TMP/home" PPROF_TMPDIR="$OBS_TMP/pprof"
mkdir -p "$HOME" "$PPROF_TMPDIR"
t0=$SECONDS

obs_start L --workers 2 --queue-capacity 2 --request-timeout-ms 2000 --refuse-hopeless false --heap-sample-bytes 4096 \
  --log-level warn
D="http://127.0.0.1:$L_DPORT"
head -1 <(curl -s "$D/debug/pprof/heap") | grep -q '@ heap_v2/4096$' ||
  obs_fail "$B/primed does not sample its heap (a sanitizer build? leakcheck needs tcmalloc)"

round() { # -> number of requests on stdout
  python3 scripts/leakcheck-workload.py "$L_PORT" "$L_DPORT" || obs_fail "the workload round failed"
}
snapshot() { # NAME: symbolized profile NAME.pb.gz and RSS (KiB) in NAME.rss
  "$GO" tool pprof -proto -symbolize=remote "$D/debug/pprof/heap" >"$OBS_TMP/$1.pb.gz" 2>"$OBS_TMP/$1.err" ||
    { cat "$OBS_TMP/$1.err" >&2; obs_fail "pprof could not fetch heap profile $1"; }
  awk '/^VmRSS:/ {print $2}' "/proc/$L_PID/status" >"$OBS_TMP/$1.rss"
}

round >/dev/null
snapshot A
nB=$(round) || obs_fail "the workload round before B failed"
snapshot B
nC=$(round) || obs_fail "the workload round before C failed"
snapshot C
kill -0 "$L_PID" || obs_fail "primed died during the workload"

bash scripts/heap-diff.sh --requests "$nB" --threshold-kib "$THR" --tsv "$OBS_TMP/ab.tsv" \
  "$OBS_TMP/A.pb.gz" "$OBS_TMP/B.pb.gz" >"$OBS_TMP/ab.txt"
[ $? -le 1 ] || obs_fail "heap-diff A→B failed"
bash scripts/heap-diff.sh --requests "$nC" --threshold-kib "$THR" --tsv "$OBS_TMP/bc.tsv" \
  "$OBS_TMP/B.pb.gz" "$OBS_TMP/C.pb.gz" >"$OBS_TMP/bc.txt"
[ $? -le 1 ] || obs_fail "heap-diff B→C failed"
rA=$(cat "$OBS_TMP/A.rss") rB=$(cat "$OBS_TMP/B.rss") rC=$(cat "$OBS_TMP/C.rss")

python3 - "$OBS_TMP/ab.tsv" "$OBS_TMP/bc.tsv" "$nB" "$nC" "$THR" "$rA" "$rB" "$rC" "$RSS_MIB" \
  >"$OBS_TMP/verdict" <<'EOF'
import sys
ab_f, bc_f, nb, nc, thr, ra, rb, rc, rss_mib = sys.argv[1:]
nb, nc, thr, ra, rb, rc, rss_mib = int(nb), int(nc), float(thr), int(ra), int(rb), int(rc), float(rss_mib)
def load(p):
    d = {}
    for line in open(p):
        site, v, stack = line.rstrip("\n").split("\t")
        d[site] = (int(v), stack)
    return d
ab, bc = load(ab_f), load(bc_f)
per = lambda v, n: v / 1024.0 * 1000.0 / n
print("leakcheck: %d + %d requests; threshold %.0f KiB per 1,000 requests in both A→B and B→C"
      % (nb, nc, thr))
print("%-34s %14s %14s  %s" % ("site", "A→B KiB/1k", "B→C KiB/1k", "stack"))
failing = []
for site in sorted(set(ab) | set(bc), key=lambda s: -(ab.get(s, (0,))[0] + bc.get(s, (0,))[0])):
    x, y = per(ab.get(site, (0, ""))[0], nb), per(bc.get(site, (0, ""))[0], nc)
    bad = x > thr and y > thr
    if bad:
        failing.append(site)
    stack = (bc.get(site) or ab.get(site))[1]
    print("%-34s %+14.1f %+14.1f  %s%s" % (site, x, y, stack, "   LEAK" if bad else ""))
if not ab and not bc:
    print("(no allocation site grew in either interval)")
drss1, drss2 = (rb - ra) / 1024.0, (rc - rb) / 1024.0
rss_bad = drss1 > rss_mib and drss2 > rss_mib
print("RSS: A %d KiB, B %d KiB (%+.1f MiB), C %d KiB (%+.1f MiB); limit %.0f MiB per round%s"
      % (ra, rb, drss1, rc, drss2, rss_mib, "   GROWS" if rss_bad else ""))
print("FAILING_SITES " + " ".join(failing))
print("RSS_BAD %d" % rss_bad)
EOF
grep -v '^FAILING_SITES\|^RSS_BAD' "$OBS_TMP/verdict"
failing=$(sed -n 's/^FAILING_SITES *//p' "$OBS_TMP/verdict")
rss_bad=$(sed -n 's/^RSS_BAD //p' "$OBS_TMP/verdict")
obs_stop L
echo "leakcheck: $((SECONDS - t0)) s"

if [ -n "$expect" ]; then
  [ -n "$failing" ] || obs_fail "the planted leak was NOT detected (no site grew in both intervals)"
  grep -qw -- "$expect" <<<"$failing" || obs_fail "leak detected in [$failing], but not in $expect"
  obs_ok "planted leak detected and named: $expect"
  exit 0
fi
[ -z "$failing" ] || obs_fail "memory grows with traffic at: $failing"
[ "$rss_bad" = 0 ] || obs_fail "RSS grows with traffic"
obs_ok "no allocation site and no RSS growth over two rounds"
