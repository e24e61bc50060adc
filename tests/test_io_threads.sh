#!/usr/bin/env bash
# test_io_threads.sh — the main listener's I/O threads follow io_threads: auto is the CPUs the
# process may run on (its affinity mask, set here with taskset), an explicit count wins. Counted
# from the running process's threads (libmicrohttpd names a pool's threads MHD-worker and a lone
# daemon thread MHD-single); each server must also answer. The cgroup cpu.max half of auto is
# not exercised here (it needs a cgroup of our own).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. scripts/lib.sh
command -v taskset >/dev/null || { echo "skip: no taskset"; exit 77; }
fail=0
bad() { echo "FAIL $*"; fail=1; }
REAL_BIN=$PRIMED_BIN

threads() { # PID NAME → how many of its threads are called NAME
  cat "/proc/$1/task/"*/comm 2>/dev/null | grep -cx "$2"
}

# start NAME CPUS [flags…]: primed pinned to CPUS (a wrapper that execs it, so the PID is primed's)
start() {
  local name=$1 cpus=$2
  shift 2
  printf '#!/bin/sh\nexec taskset -c %s "%s" "$@"\n' "$cpus" "$REAL_BIN" > "$LIB_TMP/pin-$name"
  chmod +x "$LIB_TMP/pin-$name"
  PRIMED_BIN=$LIB_TMP/pin-$name primed_start "$name" --debug-listen off "$@"
}

cpus=$(python3 -c 'import os; print(",".join(map(str, sorted(os.sched_getaffinity(0)))))')
first=${cpus%%,*}
start ONE "$first"
[ "$(lib_code "$ONE_URL/v1/isprime?n=97")" = 200 ] || bad "pinned to one CPU: isprime not 200"
w=$(threads "$ONE_PID" MHD-worker) s=$(threads "$ONE_PID" MHD-single)
[ "$w" = 0 ] && [ "$s" = 1 ] && lib_ok "auto on 1 allowed CPU: 1 I/O thread" ||
  bad "auto on 1 allowed CPU: $w MHD-worker, $s MHD-single (want 0 and 1)"
primed_stop ONE

if [ "$cpus" != "$first" ]; then
  two="$first,$(cut -d, -f2 <<<"$cpus")"
  start TWO "$two"
  w=$(threads "$TWO_PID" MHD-worker)
  [ "$w" = 2 ] && lib_ok "auto on 2 allowed CPUs ($two): 2 I/O threads" ||
    bad "auto on 2 allowed CPUs: $w MHD-worker (want 2)"
  primed_stop TWO
fi

start THREE "$first" --io-threads 3
[ "$(lib_code "$THREE_URL/healthz")" = 200 ] || bad "--io-threads 3: /healthz not 200"
w=$(threads "$THREE_PID" MHD-worker)
[ "$w" = 3 ] && lib_ok "--io-threads 3 on 1 CPU: 3 I/O threads (explicit wins)" ||
  bad "--io-threads 3: $w MHD-worker (want 3)"
primed_stop THREE
exit $fail
