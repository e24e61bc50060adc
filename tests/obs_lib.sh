# shellcheck shell=bash
# obs_lib.sh — shared helpers of the observability scripts (tests/test_observability.sh,
# tests/test_pprof.sh, scripts/bench-*.sh). Sourced, never run. Everything listens on 127.0.0.1
# with ephemeral ports; every wait and every load loop is bounded in count and time.

OBS_BIN=${PRIMED_BIN:-build/primed}
OBS_TMP=$(mktemp -d /tmp/primed-obs.XXXXXX)
OBS_PIDS=()

obs_cleanup() {
  local p
  for p in "${OBS_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${OBS_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$OBS_TMP"
}
trap obs_cleanup EXIT

obs_fail() { echo "FAIL: $*" >&2; exit 1; }
obs_ok() { echo "ok: $*"; }

# obs_start NAME [flags…] — start primed on ephemeral ports; sets NAME_PID, NAME_PORT,
# NAME_DPORT. Waits ≤ 15 s for the port file.
obs_start() {
  local name=$1; shift
  local pf="$OBS_TMP/$name.ports"
  "$OBS_BIN" --listen 127.0.0.1:0 --debug-listen 127.0.0.1:0 --port-file "$pf" "$@" \
    2>"$OBS_TMP/$name.log" &
  local pid=$!
  OBS_PIDS+=("$pid")
  for _ in $(seq 150); do
    if [ -s "$pf" ]; then
      read -r mp dp <"$pf"
      if [ -n "${mp:-}" ] && [ -n "${dp:-}" ]; then
        printf -v "${name}_PID" %s "$pid"
        printf -v "${name}_PORT" %s "$mp"
        printf -v "${name}_DPORT" %s "$dp"
        return 0
      fi
    fi
    kill -0 "$pid" 2>/dev/null || { tail -5 "$OBS_TMP/$name.log" >&2; obs_fail "primed ($name) exited at start"; }
    sleep 0.1
  done
  obs_fail "primed ($name) did not write its port file in 15 s"
}

# A free TCP port on 127.0.0.1 (for tools that cannot report an ephemeral one).
obs_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# obs_load PORT SECONDS — light mixed traffic in 3 background loops, each bounded by a request
# count and by SECONDS. Their pids are appended to OBS_LOAD_PIDS (and OBS_PIDS, for cleanup).
OBS_LOAD_PIDS=()
obs_load() {
  local port=$1 secs=$2
  for _ in 1 2 3; do
    (
      end=$((SECONDS + secs)); n=0
      while [ $SECONDS -lt $end ] && [ $n -lt 4000 ]; do
        n=$((n + 1))
        case $((n % 5)) in
          0) curl -s -o /dev/null "http://127.0.0.1:$port/v1/count?from=0&to=$((1000000 + n * 1000))" ;;
          1) curl -s -o /dev/null "http://127.0.0.1:$port/v1/isprime?n=$((n * 7919 + 1))" ;;
          2) curl -s -o /dev/null "http://127.0.0.1:$port/v1/primes?from=$((n * 1000))&to=$((n * 1000 + 5000))" ;;
          3) curl -s -o /dev/null "http://127.0.0.1:$port/no/such/path" ;;
          4) curl -s -o /dev/null "http://127.0.0.1:$port/v1/count?from=10&to=1" ;;
        esac
      done
    ) >/dev/null 2>&1 &
    OBS_LOAD_PIDS+=($!)
    OBS_PIDS+=($!)
  done
}

# obs_stop NAME — SIGTERM, wait ≤ 20 s; fails unless primed exits 0 (a sanitizer report at exit
# makes the exit code non-zero).
obs_stop() {
  local name=$1 pidvar="${1}_PID" rc
  local pid=${!pidvar}
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { kill -KILL "$pid"; obs_fail "primed ($name) did not exit in 20 s after SIGTERM"; }
  wait "$pid"; rc=$?
  [ $rc = 0 ] || { tail -20 "$OBS_TMP/$name.log" >&2; obs_fail "primed ($name) exited with $rc"; }
}
