#!/usr/bin/env bash
# Runs the whole test suite of one build directory: every Check binary in $B/tests/, then every
# script tests/test_*.sh (end-to-end checks that drive curl, promtool, pprof, …) with PRIMED_BIN
# pointing at $B/primed. Prints one closing line "N passed, N failed" and exits non-zero on any
# failure. A script exits 77 when it does not apply to this build (e.g. pprof on a sanitizer build,
# which has no tcmalloc); that is reported by name, never counted as passed.
# With --unit first, only the unit tests run: the Check binaries that start no server
# (everything but test_e2e_*), no scripts — `make check`.
set -uo pipefail
unit_only=0
[ "${1:-}" = "--unit" ] && { unit_only=1; shift; }
B=${1:-build}
cd "$(dirname "$0")/.."
export PRIMED_BIN="$PWD/$B/primed" PRIMED_BUILD="$PWD/$B"
export CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-120}
case "$B" in
  *asan*) export PRIMED_VARIANT=asan
          export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=23:strict_string_checks=1"
          export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=24"
          export CK_DEFAULT_TIMEOUT=$((CK_DEFAULT_TIMEOUT * 3)) ;;
  *tsan*) export PRIMED_VARIANT=tsan
          export TSAN_OPTIONS="halt_on_error=1:exitcode=25:second_deadlock_stack=1"
          export CK_DEFAULT_TIMEOUT=$((CK_DEFAULT_TIMEOUT * 5)) ;;
  *)      export PRIMED_VARIANT=release ;;
esac

pass=0; fail=0; failed=(); notapplicable=()
run() { # name, command...
  local name=$1; shift
  local t0=$SECONDS
  "$@"
  local rc=$?
  if [ $rc -eq 0 ]; then pass=$((pass + 1)); echo "== PASS $name ($((SECONDS - t0)) s)"
  elif [ $rc -eq 77 ]; then notapplicable+=("$name"); echo "== N/A  $name (does not apply to $PRIMED_VARIANT)"
  else fail=$((fail + 1)); failed+=("$name"); echo "== FAIL $name (exit $rc)"; fi
}

echo "=== $PRIMED_VARIANT suite ($B)"
for t in "$B"/tests/test_*; do
  [ -f "$t" ] && [ -x "$t" ] || continue
  [ $unit_only -eq 1 ] && [[ $(basename "$t") == test_e2e_* ]] && continue
  run "$(basename "$t")" "$t"
done
[ $unit_only -eq 1 ] || for s in tests/test_*.sh; do
  [ -f "$s" ] || continue
  run "$(basename "$s")" bash "$s"
done

[ ${#notapplicable[@]} -gt 0 ] && echo "not applicable to $PRIMED_VARIANT: ${notapplicable[*]}"
[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]}"
echo "$PRIMED_VARIANT: $pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
