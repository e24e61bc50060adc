#!/usr/bin/env bash
# test_compare_instances.sh — scripts/compare-instances.sh on two local instances driven with the
# same traffic: one with a planted leak of 1 KiB per response must be flagged (exit 1, and the
# per-site heap diff shows the growth), two identical builds must pass (exit 0).
# The leak: build/leak/primed when it exists (make LEAK_PLANT=1, the leak-check issue's switch);
# otherwise tests/leak_preload.c through LD_PRELOAD (test-only, outside src/). Release builds only
# (the heap comparison needs tcmalloc): 77 elsewhere.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
[ "${PRIMED_VARIANT:-release}" = release ] || { echo "N/A: heap profiles need tcmalloc"; exit 77; }
. tests/obs_lib.sh
SECS=${PRIMED_TEST_COMPARE_SECONDS:-10}
export HOME="$OBS_TMP/home"; mkdir -p "$HOME"

LEAKY_BIN="" PRELOAD=""
if [ -x build/leak/primed ]; then
  LEAKY_BIN=$PWD/build/leak/primed
  echo "planted leak: build/leak/primed (make LEAK_PLANT=1)"
else
  # shellcheck disable=SC2046 # the cflags are several words
  cc -shared -fPIC -O2 -Wall -Werror -o "$OBS_TMP/leak.so" tests/leak_preload.c \
    $(pkg-config --cflags libmicrohttpd) -ldl || obs_fail "cannot build tests/leak_preload.c"
  PRELOAD="$OBS_TMP/leak.so"
  echo "planted leak: tests/leak_preload.c via LD_PRELOAD (build/leak/primed not built)"
fi

obs_start S --workers 1
obs_start S2 --workers 1
if [ -n "$LEAKY_BIN" ]; then
  PRIMED_BIN=$LEAKY_BIN obs_start C --workers 1 # primed_start runs $PRIMED_BIN
else
  LD_PRELOAD=$PRELOAD obs_start C --workers 1
fi
grep -q leak.so "/proc/$C_PID/maps" || [ -n "$LEAKY_BIN" ] || obs_fail "the shim is not loaded into C"

sp=$S_DPORT s2=$S2_DPORT cp=$C_DPORT

scripts/compare-instances.sh "http://127.0.0.1:$sp" "http://127.0.0.1:$cp" --seconds "$SECS" --warmup 10 \
  --drive "http://127.0.0.1:$S_PORT" "http://127.0.0.1:$C_PORT" >"$OBS_TMP/leak.out" 2>&1
rc=$?
cat "$OBS_TMP/leak.out"
[ $rc = 1 ] || obs_fail "leaky canary: exit $rc, want 1"
grep -q '^RESULT: canary FAILS' "$OBS_TMP/leak.out" || obs_fail "no FAILS verdict"
# the canary-minus-stable heap diff's top site grew by at least 1 MB (the leak: ~1 KiB × requests)
top=$(awk '/canary at end minus stable at end/ {on=1; next} on && /^ *[0-9.]+[kMG]B/ {print $1; exit}' \
  "$OBS_TMP/leak.out")
awk -v t="$top" 'BEGIN { v = t + 0; u = substr(t, length(t) - 1);
  b = (u == "kB") ? v * 1e3 : (u == "MB") ? v * 1e6 : (u == "GB") ? v * 1e9 : 0; exit !(b >= 1e6) }' ||
  obs_fail "heap diff's top site grew by '$top', want >= 1MB"
obs_ok "leaky canary flagged (exit 1), top heap diff site +$top"

scripts/compare-instances.sh "http://127.0.0.1:$sp" "http://127.0.0.1:$s2" --seconds "$SECS" --warmup 10 \
  --drive "http://127.0.0.1:$S_PORT" "http://127.0.0.1:$S2_PORT" >"$OBS_TMP/same.out" 2>&1
rc=$?
cat "$OBS_TMP/same.out"
[ $rc = 0 ] || obs_fail "two identical builds: exit $rc, want 0"
obs_ok "identical builds pass (exit 0)"

scripts/compare-instances.sh "http://127.0.0.1:$sp" >/dev/null 2>&1; [ $? = 2 ] || obs_fail "usage: exit != 2"
scripts/compare-instances.sh "http://127.0.0.1:$sp" "http://127.0.0.1:1" --seconds 1 >/dev/null 2>&1
[ $? = 2 ] || obs_fail "unreachable canary: exit != 2"
obs_ok "usage and unreachable instance: exit 2"
obs_stop S; obs_stop S2; obs_stop C
echo "PASS test_compare_instances"
