#!/usr/bin/env bash
# test_launcher.sh — the launch contract of docs/testing.md holds for scripts/lib.sh (and, for a
# server that dies while starting, for tests/rawhttp.py): ready means /readyz answered 200 on the
# ports the port file names; a server that exits while starting, hangs, or dies later fails the
# script loudly with its log tail; stop and the exit clean-up leave no process behind.
# Each case runs a small script in its own bash (the launcher's exit trap is part of what is
# tested). Bounded: a few seconds; everything on 127.0.0.1.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
export PRIMED_BIN=${PRIMED_BIN:-$PWD/build/primed}
[ -x "$PRIMED_BIN" ] || { echo "FAIL no primed binary at $PRIMED_BIN"; exit 1; }
T=$(mktemp -d /tmp/primed-launcher.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }

# case NAME SCRIPT: runs SCRIPT after sourcing the launcher; sets rc, $T/NAME.out and .err.
run_case() {
  local name=$1
  bash -c "set -euo pipefail; . scripts/lib.sh; $2" >"$T/$name.out" 2>"$T/$name.err"
  rc=$?
}
gone() { ! kill -0 "$1" 2>/dev/null; }

# 1. start → ready → stop: ports from the port file, /readyz 200, exit 0, process reaped.
run_case start_stop 'primed_start A --workers 1
  echo "$A_PID $A_PORT $A_DPORT $(lib_code "$A_URL/readyz") $(lib_code "http://127.0.0.1:$A_DPORT/healthz")"
  primed_stop A; echo "rc=$A_RC"'
read -r pid port dport code dcode <"$T/start_stop.out"
if [ $rc = 0 ] && [ "$code" = 200 ] && [ "$dcode" = 200 ] && [ "$port" -gt 0 ] && [ "$dport" -gt 0 ] &&
  grep -qx 'rc=0' "$T/start_stop.out" && gone "$pid"; then
  ok "start: ports $port/$dport, /readyz 200; stop: exit 0, pid $pid gone"
else
  bad "start/stop: rc $rc, $(tr '\n' ' ' <"$T/start_stop.out") $(cat "$T/start_stop.err")"
fi

# 2. a bad flag: the server exits 2 at once; the script fails with the status and the log tail,
#    well before the start timeout.
t0=$SECONDS
run_case bad_flag 'primed_start A --no-such-flag; echo reached'
if [ $rc = 1 ] && [ $((SECONDS - t0)) -lt 5 ] && ! grep -q reached "$T/bad_flag.out" &&
  grep -q 'exited with status 2 while starting' "$T/bad_flag.err" &&
  grep -q 'unknown flag' "$T/bad_flag.err"; then
  ok "bad flag: script exit 1 in $((SECONDS - t0)) s, says: $(grep -m1 'exited' "$T/bad_flag.err")"
else
  bad "bad flag: rc $rc; stderr: $(cat "$T/bad_flag.err")"
fi

# 3. not ready in time (a command that never writes the port file): killed, script fails.
t0=$SECONDS
run_case hang 'PRIMED_TEST_START_TIMEOUT=1; LIB_WRAP=(bash -c "echo stuck; exec sleep 30" x)
  primed_start A; echo reached'
if [ $rc = 1 ] && [ $((SECONDS - t0)) -lt 5 ] && grep -q 'not ready within 1 s' "$T/hang.err" &&
  grep -q '^stuck$' "$T/hang.err"; then
  ok "hang: script exit 1 after the 1 s start timeout, log tail shown"
else
  bad "hang: rc $rc; stderr: $(cat "$T/hang.err")"
fi

# 4. dies during the run: primed_check fails at once; unnoticed, the exit trap fails the script.
run_case check 'primed_start A; kill -KILL "$A_PID"; sleep 0.3; primed_check A; echo reached'
if [ $rc = 1 ] && ! grep -q reached "$T/check.out" && grep -q 'died (status 137)' "$T/check.err" &&
  grep -q '"event":"listening"' "$T/check.err"; then
  ok "primed_check: a SIGKILLed server fails the script with its log tail"
else
  bad "primed_check: rc $rc; stderr: $(cat "$T/check.err")"
fi
run_case died_later 'primed_start A; kill -KILL "$A_PID"; sleep 0.3; echo "script body done"'
if [ $rc = 1 ] && grep -q 'script body done' "$T/died_later.out" &&
  grep -q 'died during the run (status 137)' "$T/died_later.err"; then
  ok "exit trap: a server that died unnoticed turns exit 0 into exit 1"
else
  bad "died later: rc $rc; stderr: $(cat "$T/died_later.err")"
fi

# 5. the exit clean-up stops a server still running (SIGTERM) and the script keeps its status.
run_case cleanup 'primed_start A --debug-listen off; echo "$A_PID $A_DPORT"; exit 3'
read -r pid dport <"$T/cleanup.out"
if [ $rc = 3 ] && [ "$dport" = 0 ] && gone "$pid"; then
  ok "exit clean-up: running server stopped, script's exit status 3 kept, debug listener off"
else
  bad "clean-up: rc $rc, pid $pid $(gone "$pid" && echo gone || echo ALIVE); $(cat "$T/cleanup.err")"
  kill -KILL "$pid" 2>/dev/null
fi

# 6. helpers.
run_case median 'printf "3\n1\n2\n" | lib_median; printf "4\n1\n3\n2\n" | lib_median'
[ "$(tr '\n' ' ' <"$T/median.out")" = "2 2.5 " ] && ok "lib_median: 2, 2.5" ||
  bad "lib_median: $(cat "$T/median.out")"

# 7. the Python launcher reports a server that exits while starting, with its log.
out=$(python3 - <<'PY' 2>&1
import sys, time
sys.path.insert(0, "tests")
from rawhttp import Server
t0 = time.time()
try:
    Server(["--no-such-flag"])
    print("started")
except RuntimeError as e:
    print("raised after %.1f s: %s" % (time.time() - t0, str(e).replace("\n", " | ")))
PY
)
if [[ $out == "raised after "*"exited with 2 while starting"*"--no-such-flag"* ]]; then
  ok "rawhttp.Server: $out"
else
  bad "rawhttp.Server with a bad flag: $out"
fi

exit $fail
