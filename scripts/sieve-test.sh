#!/usr/bin/env bash
# `make sieve-test`: the prime engine as a library of its own. Checks that build/libprimedsieve.a
# and the engine's test binaries reference no libmicrohttpd, jansson or curl symbol and load none
# of those libraries, then runs the tests. Usage: sieve-test.sh BUILD_DIR TEST_NAME...
set -uo pipefail
B=$1; shift
cd "$(dirname "$0")/.."
bad=0
foreign='MHD_|json_|curl_'
if nm -A "$B/libprimedsieve.a" | grep -E " [UTDBR] ($foreign)" ; then
  echo "sieve-test: libprimedsieve.a references a service library (above)"; bad=1
fi
for t in "$@"; do
  bin="$B/tests/$t"
  if nm "$bin" | grep -E " [UTDBR] ($foreign)"; then echo "sieve-test: $t references a service library"; bad=1; fi
  if ldd "$bin" | grep -E 'libmicrohttpd|libjansson|libcurl'; then echo "sieve-test: $t loads a service library"; bad=1; fi
done
[ $bad -eq 0 ] && echo "sieve-test: libprimedsieve.a and ${#} test binaries link no libmicrohttpd, jansson or curl"
pass=0; fail=0
for t in "$@"; do
  if "$B/tests/$t"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "== FAIL $t"; fi
done
echo "sieve: $pass passed, $fail failed"
[ $bad -eq 0 ] && [ $fail -eq 0 ]
