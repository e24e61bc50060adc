#!/usr/bin/env bash
# valgrind memcheck over a short end-to-end run (issue 6): builds primed without tcmalloc and
# without sanitizers (both replace malloc, valgrind must see the real one) into build/plain,
# serves a bounded mix of requests on 127.0.0.1 (lists, counts, nth, batch, errors, a stream cut
# mid-way), then SIGTERM. Fails on any memcheck error or definite/indirect leak, or a non-zero exit.
set -euo pipefail
cd "$(dirname "$0")/.."
B=build/plain
make -s B="$B" TCMALLOC=0 "$B/primed" >/dev/null
PRIMED_BIN=$PWD/$B/primed
# valgrind runs primed 20-50x slower: a longer start timeout (and stop timeout, below).
PRIMED_TEST_START_TIMEOUT=${PRIMED_TEST_START_TIMEOUT:-60}
. scripts/lib.sh
tmp=$LIB_TMP
LIB_WRAP=(valgrind --tool=memcheck --error-exitcode=99 --leak-check=full
  --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect
  --log-file="$tmp/vg.log")
primed_start VG --debug-listen off --workers 2 --log-level warn --heap-sampling false
port=$VG_PORT
u="http://127.0.0.1:$port"
for q in '/v1/count?from=0&to=1e8' '/v1/primes?from=0&to=1e5' '/v1/primes?from=0&to=1e5&format=text' \
         '/v1/isprime?n=18446744073709551557' '/v1/nth?n=1e5' '/v1/next?n=1e18' '/v1/prev?n=3' \
         '/v1/count?from=5&to=1' '/v1/isprime?n=1e20' '/nope' '/metrics' '/healthz'; do
  curl -s -m 60 -o /dev/null -w "%{http_code} $q\n" "$u$q"
done
curl -s -m 60 -o /dev/null -w "%{http_code} batch\n" -H 'Content-Type: application/json' \
  -d '{"queries":[{"op":"isprime","n":97},{"op":"count","from":0,"to":1000},{"op":"nth","n":0}]}' "$u/v1/batch"
curl -s -m 2 --limit-rate 200k -o /dev/null "$u/v1/primes?from=0&to=1e10" || true  # cut mid-stream
sleep 1
rc=0; primed_stop VG 60 || rc=$VG_RC
grep -E "ERROR SUMMARY|definitely lost|indirectly lost" "$tmp/vg.log" || true
[ "$rc" -eq 0 ] || { echo "valgrind-e2e: exit $rc"; tail -60 "$tmp/vg.log"; exit 1; }
echo "valgrind-e2e: clean"
