# shellcheck shell=bash
# lib.sh — the one way shell scripts and shell tests start, watch and stop primed, plus the helpers
# they all need (median, curl wrappers, a load check for benchmarks). Sourced, never run:
#   . scripts/lib.sh        (from the repository root; it finds its own directory otherwise)
# It must never listen on anything but 127.0.0.1, wait without a bound, or leave a process behind:
# every server it starts is stopped (SIGTERM, bounded wait, SIGKILL) and reaped at exit.
#
# The launch contract, shared with tests/rawhttp.py (Server) and tests/harness.c (primed_start),
# is written down once, in docs/testing.md ("Starting primed"): binary $PRIMED_BIN, flags
# --listen 127.0.0.1:0 --debug-listen 127.0.0.1:0 --port-file F, ready when F holds both ports
# and GET /readyz answers 200, one start timeout (PRIMED_TEST_START_TIMEOUT, default 10 s × the
# sanitizer factor), a process that exits while starting or later fails the run with its log tail.
#
# API (NAME is a shell identifier; it names the variables a start sets):
#   primed_start NAME [flags…]      start and wait until ready; sets NAME_PID NAME_PORT NAME_DPORT
#                                   (0 when the debug listener is off) NAME_URL NAME_LOG. Exits the
#                                   script (status 1) with the log tail if it does not get ready.
#   primed_try_start NAME [flags…]  the same, but returns 1 instead of exiting.
#   lib_spawn_server NAME PORTFILE CMD…  any server that writes "PORT …" to PORTFILE and answers
#                                   /readyz (or any path) with 200 (tests/tools/baseline_server);
#                                   exits the script if it does not get ready. Its two halves,
#                                   lib_spawn NAME CMD… and lib_wait_ready NAME PORTFILE (returns
#                                   1), serve a script that can do without that server.
#   primed_alive NAME               0 while it runs.
#   primed_check NAME               exits the script with the log tail if it has died.
#   primed_signal NAME SIG          send a signal (a drain test's SIGTERM); primed_wait reaps it.
#   primed_wait NAME [SECS]         wait ≤ SECS for it to exit without signalling; NAME_RC = exit
#                                   status, 128+N if killed by signal N, 124 if still running
#                                   (then it is SIGKILLed). Returns 0 only for exit 0.
#   primed_stop NAME [SECS]         SIGTERM, then primed_wait (default PRIMED_TEST_STOP_TIMEOUT). A
#                                   non-zero status (a sanitizer report at exit is one) prints the
#                                   log tail.
#   lib_at_exit CMD                 run CMD (a function name) at exit, before the servers stop.
#   lib_fail MSG / lib_ok MSG       "FAIL: MSG" on stderr and exit 1 / "ok: MSG".
#   lib_median                      median of the numbers on stdin.
#   lib_time CMD…                   runs CMD; prints "SECONDS OUTPUT" (wall time, its stdout;
#                                   OUTPUT is FAILED if it exits non-zero).
#   lib_get URL / lib_code URL      body / status code of a GET (bounded by LIB_CURL_TIMEOUT).
#   lib_metric PORT SERIES          value of one exact series from http://127.0.0.1:PORT/metrics.
#   lib_load_check                  prints cores and load average; warns when the machine is busy.
# Environment: PRIMED_BIN (default build/primed), PRIMED_VARIANT (release|asan|tsan, else
# guessed from the binary's path), PRIMED_TEST_START_TIMEOUT, PRIMED_TEST_STOP_TIMEOUT (seconds;
# PRIMED_TEST_* is tooling the server ignores), LIB_WRAP (an array: a command prefix such as
# valgrind or setpriv), LIB_LOG_DISCARD=1 (the server's log goes to /dev/null: benchmarks whose
# access log would fill /tmp), LIB_TMP (scratch directory, removed at exit).

[ -z "${LIB_LOADED:-}" ] || return 0 # sourced once per shell (obs_lib.sh sources it too)
LIB_LOADED=1
LIB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PRIMED_BIN=${PRIMED_BIN:-$LIB_ROOT/build/primed}
if [ -z "${PRIMED_VARIANT:-}" ]; then
  case $PRIMED_BIN in
    */asan/*) PRIMED_VARIANT=asan ;;
    */tsan/*) PRIMED_VARIANT=tsan ;;
    *) PRIMED_VARIANT=release ;;
  esac
fi
# Sanitizer builds run several times slower: scale waits (never the limits under test) like
# scripts/run-tests.sh scales the Check timeouts.
case $PRIMED_VARIANT in
  asan) LIB_SLOW=3 ;;
  tsan) LIB_SLOW=5 ;;
  *) LIB_SLOW=1 ;;
esac
PRIMED_TEST_START_TIMEOUT=${PRIMED_TEST_START_TIMEOUT:-$((10 * LIB_SLOW))}
PRIMED_TEST_STOP_TIMEOUT=${PRIMED_TEST_STOP_TIMEOUT:-$((20 * LIB_SLOW))}
LIB_CURL_TIMEOUT=${LIB_CURL_TIMEOUT:-10}
LIB_TMP=$(mktemp -d /tmp/primed-lib.XXXXXX)

declare -gA LIB_SRV_PID=() LIB_SRV_LOG=() LIB_SRV_DONE=()
LIB_SRV_NAMES=()
LIB_EXIT_HOOKS=()

lib_fail() {
  echo "FAIL: $*" >&2
  exit 1
}
lib_ok() { echo "ok: $*"; }

# Microseconds since the epoch (bash 5's EPOCHREALTIME: no process per poll).
lib_now_us() { echo "${EPOCHREALTIME/./}"; }

# lib_log_tail NAME [LINES] — the last lines of a server's log on stderr, marked as such.
lib_log_tail() {
  local log=${LIB_SRV_LOG[$1]:-}
  if [ "$log" = /dev/null ]; then
    echo "--- $1's log was discarded (LIB_LOG_DISCARD=1); start it without that to see why" >&2
    return 0
  fi
  [ -n "$log" ] && [ -f "$log" ] || return 0
  echo "--- last ${2:-20} lines of $1's log ($log):" >&2
  tail -n "${2:-20}" "$log" >&2
  echo "---" >&2
}

# lib_reap NAME — wait for a process that has exited; sets NAME_RC and marks it done.
lib_reap() {
  local name=$1 rc=0
  wait "${LIB_SRV_PID[$name]}" 2>/dev/null || rc=$?
  LIB_SRV_DONE[$name]=1
  printf -v "${name}_RC" %s "$rc"
}

lib_spawn() { # NAME CMD… (stdout and stderr to NAME.log, or /dev/null with LIB_LOG_DISCARD=1)
  local name=$1
  shift
  [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || lib_fail "lib_spawn: bad server name '$name'"
  [ -z "${LIB_SRV_PID[$name]:-}" ] || [ -n "${LIB_SRV_DONE[$name]:-}" ] ||
    lib_fail "lib_spawn: a server named $name is already running"
  local log="$LIB_TMP/$name.log"
  [ "${LIB_LOG_DISCARD:-0}" = 1 ] && log=/dev/null
  "$@" </dev/null >"$log" 2>&1 &
  LIB_SRV_PID[$name]=$!
  LIB_SRV_LOG[$name]=$log
  LIB_SRV_DONE[$name]=""
  LIB_SRV_NAMES+=("$name")
  printf -v "${name}_PID" %s "$!"
  printf -v "${name}_LOG" %s "$log"
}

# lib_wait_ready NAME PORTFILE — until PORTFILE names the ports and /readyz on the first one
# answers 200, within PRIMED_TEST_START_TIMEOUT. Returns 1 (after printing why and the log tail, and
# killing a server that hangs) when that does not happen.
lib_wait_ready() {
  local name=$1 pf=$2 pid=${LIB_SRV_PID[$1]} mp="" dp="" code
  local deadline=$(($(lib_now_us) + PRIMED_TEST_START_TIMEOUT * 1000000))
  while [ "$(lib_now_us)" -lt "$deadline" ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      lib_reap "$name"
      local rcv="${name}_RC"
      echo "FAIL: $name (pid $pid) exited with status ${!rcv} while starting" >&2
      lib_log_tail "$name"
      return 1
    fi
    if [ -z "$mp" ] && [ -s "$pf" ]; then # written by rename: complete when present
      read -r mp dp <"$pf" || true
    fi
    if [ -n "$mp" ]; then
      code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -H 'Connection: close' \
        "http://127.0.0.1:$mp/readyz" 2>/dev/null) || true
      if [ "$code" = 200 ]; then
        printf -v "${name}_PORT" %s "$mp"
        printf -v "${name}_DPORT" %s "${dp:-0}"
        printf -v "${name}_URL" %s "http://127.0.0.1:$mp"
        return 0
      fi
    fi
    sleep 0.05
  done
  echo "FAIL: $name (pid $pid) not ready within ${PRIMED_TEST_START_TIMEOUT} s" \
    "(port file: '${mp:-none}', /readyz: ${code:-not asked})" >&2
  lib_log_tail "$name"
  kill -KILL "$pid" 2>/dev/null
  lib_reap "$name"
  return 1
}

lib_spawn_server() { # NAME PORTFILE CMD…
  local name=$1 pf=$2
  shift 2
  lib_spawn "$name" "$@"
  lib_wait_ready "$name" "$pf" || lib_fail "$name did not start"
}

primed_try_start() { # NAME [flags…]
  local name=$1 a has_listen=0 has_debug=0
  shift
  for a in "$@"; do
    case $a in
      --listen | --listen=*) has_listen=1 ;;
      --debug-listen | --debug-listen=*) has_debug=1 ;;
    esac
  done
  local pf="$LIB_TMP/$name.ports" args=()
  rm -f "$pf"
  [ $has_listen = 1 ] || args+=(--listen 127.0.0.1:0)
  [ $has_debug = 1 ] || args+=(--debug-listen 127.0.0.1:0)
  args+=(--port-file "$pf")
  [ -x "$PRIMED_BIN" ] || { echo "FAIL: no primed binary at $PRIMED_BIN (make first)" >&2; return 1; }
  lib_spawn "$name" ${LIB_WRAP[@]+"${LIB_WRAP[@]}"} "$PRIMED_BIN" "$@" "${args[@]}"
  lib_wait_ready "$name" "$pf"
}

primed_start() {
  primed_try_start "$@" || lib_fail "primed ($1) did not start: $PRIMED_BIN ${*:2}"
}

primed_alive() {
  [ -z "${LIB_SRV_DONE[$1]:-}" ] && kill -0 "${LIB_SRV_PID[$1]}" 2>/dev/null
}

primed_check() {
  primed_alive "$1" && return 0
  [ -n "${LIB_SRV_DONE[$1]:-}" ] || lib_reap "$1"
  local rcv="${1}_RC"
  echo "FAIL: $1 (pid ${LIB_SRV_PID[$1]}) died (status ${!rcv})" >&2
  lib_log_tail "$1"
  exit 1
}

primed_signal() { # NAME SIG
  kill -"$2" "${LIB_SRV_PID[$1]}" 2>/dev/null
}

primed_wait() { # NAME [SECS]
  local name=$1 secs=${2:-$PRIMED_TEST_STOP_TIMEOUT} pid=${LIB_SRV_PID[$1]}
  if [ -z "${LIB_SRV_DONE[$name]:-}" ]; then
    local deadline=$(($(lib_now_us) + secs * 1000000))
    while kill -0 "$pid" 2>/dev/null && [ "$(lib_now_us)" -lt "$deadline" ]; do sleep 0.05; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "FAIL: $name (pid $pid) still running ${secs} s after being asked to stop; SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
      LIB_SRV_DONE[$name]=1
      printf -v "${name}_RC" %s 124
      lib_log_tail "$name"
      return 1
    fi
    lib_reap "$name"
  fi
  local rcv="${name}_RC"
  [ "${!rcv}" = 0 ]
}

primed_stop() { # NAME [SECS]
  local name=$1 rcv="${1}_RC"
  if [ -n "${LIB_SRV_DONE[$name]:-}" ]; then
    echo "FAIL: $name had already exited (status ${!rcv}) before it was stopped" >&2
    lib_log_tail "$name"
    return 1
  fi
  if ! kill -0 "${LIB_SRV_PID[$name]}" 2>/dev/null; then
    lib_reap "$name"
    echo "FAIL: $name (pid ${LIB_SRV_PID[$name]}) died before it was stopped (status ${!rcv})" >&2
    lib_log_tail "$name"
    return 1
  fi
  primed_signal "$name" TERM
  primed_wait "$name" "${2:-$PRIMED_TEST_STOP_TIMEOUT}" && return 0
  [ "${!rcv}" = 124 ] && return 1 # primed_wait has said why
  echo "FAIL: $name exited with status ${!rcv} after SIGTERM" >&2
  lib_log_tail "$name"
  return 1
}

lib_at_exit() { LIB_EXIT_HOOKS+=("$1"); }

# At exit: the script's own hooks, then every server still registered. One that died on its own
# (nobody waited for it) turns a passing run into a failing one, loudly.
lib_cleanup() {
  local rc=$? h name pid died=0
  set +e
  for h in ${LIB_EXIT_HOOKS[@]+"${LIB_EXIT_HOOKS[@]}"}; do "$h"; done
  for name in ${LIB_SRV_NAMES[@]+"${LIB_SRV_NAMES[@]}"}; do
    [ -z "${LIB_SRV_DONE[$name]}" ] || continue
    pid=${LIB_SRV_PID[$name]}
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null
    else
      lib_reap "$name"
      local rcv="${name}_RC"
      echo "FAIL: $name (pid $pid) died during the run (status ${!rcv})" >&2
      lib_log_tail "$name"
      died=1
    fi
  done
  for name in ${LIB_SRV_NAMES[@]+"${LIB_SRV_NAMES[@]}"}; do
    [ -z "${LIB_SRV_DONE[$name]}" ] || continue
    primed_wait "$name" 5 >/dev/null 2>&1
  done
  rm -rf "$LIB_TMP"
  [ $died = 1 ] && [ $rc = 0 ] && rc=1
  exit $rc
}
trap lib_cleanup EXIT
# A signal must not skip the cleanup: exit through the EXIT trap.
trap 'exit 130' INT
trap 'exit 143' TERM

lib_median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

lib_time() {
  local t0 t1 o
  t0=$(lib_now_us); o=$("$@" 2>/dev/null) || o=FAILED; t1=$(lib_now_us)
  echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e6 }') $o"
}

# lib_wrk_cpu PID URL SECONDS [CONNS=8] → "req/s server-CPU-µs-per-request" of one wrk run
# (-t1); the CPU is the server's utime + stime over the run, so it includes whatever else it did
# meanwhile. Non-2xx answers are reported on stderr. LIB_WRK_PREFIX (an array, e.g. taskset -c 1)
# runs wrk under a command.
lib_server_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
lib_wrk_cpu() {
  local t0 t1 out
  t0=$(lib_server_ticks "$1")
  out=$(${LIB_WRK_PREFIX[@]+"${LIB_WRK_PREFIX[@]}"} wrk -t1 -c"${4:-8}" -d"${3}s" "$2")
  t1=$(lib_server_ticks "$1")
  awk -v t="$((t1 - t0))" -v tck="$(getconf CLK_TCK)" '/requests in/{n=$1} /^Requests\/sec:/{r=$2}
    /Non-2xx/{print "non-2xx answers: " $0 > "/dev/stderr"}
    END{printf "%s %.1f\n", r, t / tck * 1e6 / n}' <<<"$out"
}

lib_get() { curl -s --max-time "$LIB_CURL_TIMEOUT" "$@"; }
lib_code() { curl -s -o /dev/null -w '%{http_code}' --max-time "$LIB_CURL_TIMEOUT" "$@"; }
lib_metric() { # PORT SERIES
  lib_get "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2}'
}

# Benchmarks compare numbers of one run; a busy machine widens them. Prints the load and warns
# (never fails) when the 1-minute load average exceeds half the cores.
lib_load_check() {
  local cores load
  cores=$(nproc)
  load=$(cut -d' ' -f1 /proc/loadavg)
  echo "machine: $cores cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  if awk -v l="$load" -v c="$cores" 'BEGIN { exit !(l > c / 2) }'; then
    echo "warning: load average $load on $cores cores: other jobs share the CPUs," \
      "expect noisy numbers" >&2
  fi
}
