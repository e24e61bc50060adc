#!/usr/bin/env bash
# `make slow-test`: the slow half of tests/test_pi.c — π(10^k) for k <= 19, π(2^64 − 1) and
# primecount near 2^63 and 2^64 — with PRIMED_PI_SLOW=1. Hours on one core of the shared VM;
# prints the wall time and peak RSS of the run. Usage: pi-slow-test.sh [BUILD_DIR]
set -uo pipefail
B=${1:-build}
cd "$(dirname "$0")/.."
export PRIMED_PI_SLOW=1 PRIMED_VARIANT=release CK_DEFAULT_TIMEOUT=36000
/usr/bin/time -f "pi-slow-test: %e s wall, %M KB peak RSS" "$B/tests/test_pi"
