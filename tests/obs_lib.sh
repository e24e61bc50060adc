# shellcheck shell=bash
# obs_lib.sh — shared helpers of the observability scripts (tests/test_observability.sh,
# tests/test_pprof.sh, scripts/bench-*.sh). Sourced, never run. Everything listens on 127.0.0.1
# with ephemeral ports; every wait and every load loop is bounded in count and time.

# Servers are started, watched and stopped by scripts/lib.sh (the one launcher); this file adds
# the observability checks' names for it, their scratch directory and a light load generator.
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
OBS_BIN=$PRIMED_BIN
OBS_TMP=$LIB_TMP
OBS_PIDS=() # helper processes (load loops, prometheus, pprof clients): killed at exit

obs_cleanup() {
  local p
  for p in ${OBS_PIDS[@]+"${OBS_PIDS[@]}"}; do kill "$p" 2>/dev/null; done
  for p in ${OBS_PIDS[@]+"${OBS_PIDS[@]}"}; do wait "$p" 2>/dev/null; done
}
lib_at_exit obs_cleanup

obs_fail() { lib_fail "$@"; }
obs_ok() { lib_ok "$@"; }

# obs_start NAME [flags…] — primed_start: sets NAME_PID, NAME_PORT, NAME_DPORT; fails the script
# with the server's log tail if it does not get ready.
obs_start() { primed_start "$@"; }

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
  local rcv="${1}_RC"
  primed_stop "$1" 20 || obs_fail "primed ($1) did not exit 0 within 20 s of SIGTERM (status ${!rcv})"
}

# obs_stream_burst PORT N DIR — N slow streamed lists (/v1/primes, read at 2 KiB/s, each ≤ 120 s)
# opened at once on 127.0.0.1; stream I's response headers go to DIR/h.I. An admitted stream holds
# its buffer until obs_burst_stop. Pids in OBS_BURST_PIDS (and OBS_PIDS, for cleanup).
OBS_BURST_PIDS=()
obs_stream_burst() {
  local port=$1 n=$2 dir=$3 i
  mkdir -p "$dir"
  for i in $(seq "$n"); do
    curl -s -m 120 --limit-rate 2k -D "$dir/h.$i" -o /dev/null \
      "http://127.0.0.1:$port/v1/primes?from=$((i * 10000000000))&to=$((i * 10000000000 + 1000000000))" &
    OBS_BURST_PIDS+=($!)
    OBS_PIDS+=($!)
  done
}

# obs_burst_count DIR N SECS — wait ≤ SECS until all N streams of a burst have a status line;
# prints "ADMITTED REFUSED OTHER": 200s, 503s, and anything else (or no answer yet).
obs_burst_count() {
  local dir=$1 n=$2 end=$((SECONDS + $3)) i s ok rf ot
  while :; do
    ok=0 rf=0 ot=0
    for i in $(seq "$n"); do
      s=$(head -1 "$dir/h.$i" 2>/dev/null | awk '{print $2}')
      case $s in 200) ok=$((ok + 1)) ;; 503) rf=$((rf + 1)) ;; *) ot=$((ot + 1)) ;; esac
    done
    [ $ot = 0 ] || [ $SECONDS -ge $end ] && break
    sleep 0.2
  done
  echo "$ok $rf $ot"
}

# obs_burst_stop — the clients of every burst leave.
obs_burst_stop() {
  local p
  for p in ${OBS_BURST_PIDS[@]+"${OBS_BURST_PIDS[@]}"}; do kill "$p" 2>/dev/null; done
  for p in ${OBS_BURST_PIDS[@]+"${OBS_BURST_PIDS[@]}"}; do wait "$p" 2>/dev/null; done
  OBS_BURST_PIDS=()
}
