#!/usr/bin/env bash
# test_fuzz_smoke.sh — every libFuzzer harness (tests/fuzz/*.c, built with ASan+UBSan by
# `make fuzz`) replays its seed corpus — which holds every crash found so far as a regression
# input — and then fuzzes for a bounded time. Total budget FUZZ_SMOKE_TOTAL seconds (default 75),
# split evenly, at most 20 s per harness. Release suite only: the harnesses carry their own
# sanitizers, so running them again for the asan/tsan variants would only repeat the work.
set -uo pipefail
cd "$(dirname "$0")/.."
case "${PRIMED_VARIANT:-release}" in release) ;; *) exit 77 ;; esac
command -v clang >/dev/null || { echo "test_fuzz_smoke: clang is required (scripts/install-deps.sh)"; exit 1; }

n=$(ls tests/fuzz/*.c | wc -l)
[ "$n" -gt 0 ] || { echo "test_fuzz_smoke: no harnesses"; exit 1; }
total=${FUZZ_SMOKE_TOTAL:-75}
each=$(( total / n )); [ $each -gt 20 ] && each=20; [ $each -lt 2 ] && each=2

# A fresh work corpus each run, so the test result does not depend on earlier runs.
rm -rf build/fuzz/corpus build/fuzz/artifacts
bash scripts/fuzz.sh "$each"
rc=$?
[ $rc -eq 0 ] || echo "test_fuzz_smoke: a harness failed; reproduce with build/fuzz/<harness> <artifact>"
exit $rc
