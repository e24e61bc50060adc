#!/usr/bin/env bash
# test_docs_sync.sh — the docs that copy a list cannot drift from what they describe:
#  - every source file under src/ (src/engine/ included: .c, .cc, .h) is named by its path in
#    docs/architecture.md's module map; the list is read from the tree when the test runs, so a
#    file added anywhere under src/ fails the test until the map names it;
#  - every metric family the running server exposes on /metrics (main listener, after a few
#    requests, rate limiting on so its families exist) is named in docs/observability.md;
#  - the same server logged one "setting" line at start for every setting --help lists.
# Neither list is copied here: the tree and the running service are the sources of truth.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. scripts/lib.sh
fail=0
bad() { echo "FAIL $*"; fail=1; }

# named DOC TEXT: TEXT occurs in DOC not followed by a word character or a dot-suffix that makes
# it another name (src/foo.c must not be satisfied by src/foo.cc or src/foo.c_bar).
named() {
  local re
  re=${2//./\.} # names hold only [A-Za-z0-9_./]
  grep -qE "(^|[^A-Za-z0-9_/.])$re([^A-Za-z0-9_]|\$)" "$1" && return 0
  grep -qE "(^|[^A-Za-z0-9_/.])$re\.([^A-Za-z0-9_]|\$)" "$1" # a sentence ending in the name
}

# ---- module map -------------------------------------------------------------------------------
n=0
while IFS= read -r f; do
  n=$((n + 1))
  named docs/architecture.md "$f" || bad "$f is not named in docs/architecture.md (module map)"
done < <(find src -type f \( -name '*.c' -o -name '*.cc' -o -name '*.h' \) | LC_ALL=C sort)
[ "$n" -gt 0 ] || bad "no source files found under src/"
[ $fail = 0 ] && lib_ok "all $n files under src/ are named in docs/architecture.md"

# ---- metric families --------------------------------------------------------------------------
primed_start P --workers 2 --rate-limit 1000 --rate-limit-burst 1000
for q in "/v1/count?from=1&to=1000" "/v1/primes?from=1&to=100" "/v1/isprime?n=97" "/nope" \
  "/healthz" "/readyz"; do
  lib_get -o /dev/null "$P_URL$q"
done
scrape="$LIB_TMP/metrics"
lib_get -o "$scrape" "$P_URL/metrics" || bad "scrape of /metrics failed"
fams=$(awk '$1 == "#" && $2 == "TYPE" { print $3 }' "$scrape" | LC_ALL=C sort -u)
nf=0
for fam in $fams; do
  nf=$((nf + 1))
  named docs/observability.md "$fam" || bad "metric family $fam is not named in docs/observability.md"
done
[ "$nf" -gt 20 ] || bad "only $nf families in the scrape (expected the full registry)"
primed_stop P || bad "primed did not stop cleanly"
ns=0
for key in $("$PRIMED_BIN" --help | sed -n 's/^  --\([a-z0-9-]*\) .*/\1/p' | tr - _); do
  case $key in config | help | version) continue ;; esac
  ns=$((ns + 1))
  grep -q '"event":"setting","key":"'"$key"'","value":' "$P_LOG" ||
    bad "no startup log line for setting $key"
done
[ "$ns" -gt 20 ] || bad "only $ns settings in --help"
[ $fail = 0 ] && lib_ok "the startup log has a line for each of the $ns settings"
[ $fail = 0 ] && lib_ok "all $nf metric families on /metrics are named in docs/observability.md"
exit $fail
