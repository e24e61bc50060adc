#!/usr/bin/env bash
# test_soak.sh — a short soak (SOAK_SECONDS, default 45 s) of the release build: a mixed workload
# with client disconnects must leave RSS, threads, fds and queue depth flat (scripts/soak.sh
# states the slope limits). Release only: sanitizer builds are too slow and their allocators
# grow by design, so a slope there would say nothing about primed.
set -uo pipefail
cd "$(dirname "$0")/.."
[ "${PRIMED_VARIANT:-release}" = release ] || exit 77
SOAK_CONNECTIONS=${SOAK_CONNECTIONS:-8} exec bash scripts/soak.sh "${SOAK_SECONDS:-45}" build/soak-test
