#!/usr/bin/env bash
# test_memory_watch.sh — the high-water mark, its hysteresis and the heap dumps, driven through a
# fake cgroup v2 tree (--cgroup-root) whose memory.current the test writes, so every crossing is
# exact and the test needs no privileges:
#  - `memory_budget auto` is 1/4 of the fake limit, logged with its reason;
#  - the cgroup metrics are the fake files' values;
#  - above 90 %: /readyz 503, new streams, batches and large counts 503 overloaded + Retry-After;
#    isprime, small counts, /healthz and /metrics still 200; one log line per crossing;
#  - between the marks nothing changes (hysteresis); below 80 % everything is back;
#  - release builds: each crossing writes DIR/heap-<time>-<rss MiB>.prof atomically, only
#    heap_dump_keep are kept, and `go tool pprof` reads them back;
#  - release builds: in a directory others can write (a warning at start), files planted under
#    names that sort newest and oldest, at the old temporary names and (symlinks) at the coming
#    profiles' names cost no profile and are never touched; a dump into a vanished directory is
#    counted failed and logged with its path and errno;
#  - a burst of 40 streams against --memory-budget 1GiB in a 32 MiB limit: the budget is clamped
#    to 16 MiB at start (a warning), so 16 are admitted and 24 get 503 at once; the budget follows
#    the limit when it shrinks (held streams keep theirs, new ones wait) and when it grows.
# Real cgroups are tests/test_cgroup_limit.sh.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. tests/obs_lib.sh
VARIANT=${PRIMED_VARIANT:-release}

T="$OBS_TMP/tree"
G="$T/cg/primed"
mkdir -p "$T/proc/self" "$G" "$OBS_TMP/dumps"
echo "0::/primed" >"$T/proc/self/cgroup"
echo "30 22 0:26 / /cg rw,relatime shared:4 - cgroup2 cgroup2 rw" >"$T/proc/self/mountinfo"
echo "cpu memory pids" >"$T/cg/cgroup.controllers"
MIB=1048576
echo $((100 * MIB)) >"$G/memory.max"
setmem() { # MiB — the working set the server will see (no inactive page cache in this tree)
  echo $(($1 * MIB)) >"$G/memory.current.tmp" && mv "$G/memory.current.tmp" "$G/memory.current"
}
setmem 10
printf 'low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n' >"$G/memory.events"
printf 'anon 10485760\ninactive_file 0\n' >"$G/memory.stat"

obs_start P --workers 2 --cgroup-root "$T" --heap-dump-dir "$OBS_TMP/dumps" --heap-dump-keep 2 \
  --memory-high-water 90 --memory-low-water 80
B="http://127.0.0.1:$P_PORT"
LOG="$OBS_TMP/P.log"

code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
metric() { curl -s "$B/metrics" | awk -v n="$1" '$1 == n {print $2}'; }
wait_ready() { # 200|503 — wait ≤ 5 s for /readyz to answer it
  for _ in $(seq 50); do [ "$(code "$B/readyz")" = "$1" ] && return 0; sleep 0.1; done
  obs_fail "/readyz did not turn $1 in 5 s"
}

# ---- auto budget and metrics ----------------------------------------------------------------
grep -q '"event":"memory_budget".*"bytes":"26214400".*"why":"1/4 of 100 MiB' "$LOG" ||
  obs_fail "auto budget not 1/4 of the 100 MiB limit: $(grep memory_budget "$LOG")"
[ "$(metric primed_memory_budget_bytes)" = 26214400 ] || obs_fail "budget metric"
[ "$(metric primed_cgroup_memory_limit_bytes)" = $((100 * MIB)) ] || obs_fail "limit metric"
[ "$(metric primed_cgroup_memory_usage_bytes)" = $((10 * MIB)) ] || obs_fail "usage metric"
[ "$(metric primed_cgroup_oom_kills_total)" = 1 ] || obs_fail "oom kills metric"
[ "$(metric primed_cgroup_memory_limit_hits_total)" = 2 ] || obs_fail "limit hits metric"
[ "$(metric primed_memory_high_water_bytes)" = $((90 * MIB)) ] || obs_fail "high water metric"
wait_ready 200
obs_ok "auto budget 25 MiB of a 100 MiB limit; cgroup metrics are the tree's values"

# ---- above the high-water mark ---------------------------------------------------------------
shed_checks() {
  local h="$OBS_TMP/h" body
  body=$(curl -s -D "$h" "$B/v1/primes?from=0&to=1000000")
  grep -q '"code":"overloaded"' <<<"$body" || obs_fail "stream while shedding: $body"
  grep -q '^HTTP/1.1 503' "$h" || obs_fail "stream while shedding: $(head -1 "$h")"
  grep -qi '^Retry-After: 1' "$h" || obs_fail "no Retry-After on the shed stream"
  [ "$(code -X POST -H 'Content-Type: application/json' \
        --data '{"queries":[{"op":"isprime","n":7}]}' "$B/v1/batch")" = 503 ] ||
    obs_fail "batch not shed"
  [ "$(code "$B/v1/count?from=0&to=1e10")" = 503 ] || obs_fail "large count not shed"
  [ "$(code "$B/v1/nth?n=1e9")" = 503 ] || obs_fail "large nth not shed"
  [ "$(code "$B/v1/count?from=0&to=1000000")" = 200 ] || obs_fail "small count shed"
  [ "$(code "$B/v1/isprime?n=97")" = 200 ] || obs_fail "isprime shed"
  [ "$(code "$B/v1/nth?n=1000")" = 200 ] || obs_fail "small nth shed"
  [ "$(code "$B/healthz")" = 200 ] || obs_fail "healthz shed"
  [ "$(code "$B/metrics")" = 200 ] || obs_fail "metrics shed"
  grep -q 'memory above the high-water mark' <(curl -s "$B/readyz") || obs_fail "readyz reason"
}
normal_checks() {
  [ "$(code "$B/v1/primes?from=0&to=1000000")" = 200 ] || obs_fail "stream refused after recovery"
  [ "$(code "$B/v1/nth?n=1e9")" = 200 ] || obs_fail "large nth refused"
}
normal_checks
setmem 95
wait_ready 503
shed_checks
[ "$(metric primed_memory_shedding)" = 1 ] || obs_fail "shedding gauge"
[ "$(metric primed_memory_high_water_crossings_total)" = 1 ] || obs_fail "crossings counter"
[ "$(metric primed_memory_shed_requests_total)" = 4 ] ||
  obs_fail "shed requests counted $(metric primed_memory_shed_requests_total), want 4"
obs_ok "at 95 % of the limit: readyz 503, streams/batches/large counts 503 overloaded, cheap work 200"

# ---- hysteresis -------------------------------------------------------------------------------
setmem 85
sleep 1 # five samples between the marks
[ "$(code "$B/readyz")" = 503 ] || obs_fail "recovered between the marks (no hysteresis)"
[ "$(code "$B/v1/primes?from=0&to=1000")" = 503 ] || obs_fail "stream admitted between the marks"
setmem 79
wait_ready 200
normal_checks
[ "$(metric primed_memory_shedding)" = 0 ] || obs_fail "shedding gauge after recovery"
obs_ok "85 % keeps shedding, 79 % recovers (hysteresis)"

# two more episodes: three crossings, one log line each way per crossing
for _ in 1 2; do # a second apart, so the dumps' names (unix time, RSS MiB) differ
  sleep 1.1; setmem 92; wait_ready 503; setmem 50; wait_ready 200
done
[ "$(grep -c '"event":"memory_high_water"' "$LOG")" = 3 ] ||
  obs_fail "$(grep -c '"event":"memory_high_water"' "$LOG") high-water log lines for 3 crossings"
[ "$(grep -c '"event":"memory_recovered"' "$LOG")" = 3 ] || obs_fail "recovered log lines"
[ "$(metric primed_memory_high_water_crossings_total)" = 3 ] || obs_fail "crossings counter != 3"
obs_ok "3 crossings: 3 high-water and 3 recovered log lines, counter 3"

# ---- heap dumps -------------------------------------------------------------------------------
if [ "$VARIANT" = release ]; then
  [ "$(metric 'primed_heap_dumps_total{result="written"}')" = 3 ] ||
    obs_fail "heap dumps written: $(metric 'primed_heap_dumps_total{result="written"}'), want 3"
  mapfile -t dumps < <(ls "$OBS_TMP/dumps")
  [ ${#dumps[@]} = 2 ] || obs_fail "heap_dump_keep 2 but the directory holds: ${dumps[*]}"
  for f in "${dumps[@]}"; do
    [[ $f =~ ^heap-[0-9]{10}-[0-9]+\.prof$ ]] || obs_fail "dump name $f"
  done
  [ "$(grep -c '"event":"heap_dump"' "$LOG")" = 3 ] || obs_fail "heap_dump log lines"
  export HOME="$OBS_TMP/home" PPROF_TMPDIR="$OBS_TMP/pprof" GOCACHE="$OBS_TMP/gocache"
  mkdir -p "$HOME" "$PPROF_TMPDIR"
  GO=$(command -v go || echo /usr/lib/go/bin/go)
  "$GO" tool pprof -top "$OBS_BIN" "$OBS_TMP/dumps/${dumps[1]}" >"$OBS_TMP/top" 2>"$OBS_TMP/top.err" ||
    { cat "$OBS_TMP/top.err" >&2; obs_fail "go tool pprof could not read ${dumps[1]}"; }
  grep -q 'flat%' "$OBS_TMP/top" || obs_fail "go tool pprof -top printed no table"
  # one more crossing past the next step (90 % + 10 % = 100 %) in the same episode: one dump
  sleep 1.1; setmem 91; wait_ready 503
  sleep 1.1
  setmem 101
  sleep 1
  [ "$(metric 'primed_heap_dumps_total{result="written"}')" = 5 ] ||
    obs_fail "crossing 90 % and then 100 %: $(metric 'primed_heap_dumps_total{result="written"}') dumps, want 5"
  setmem 10; wait_ready 200
  obs_ok "heap dumps: one per crossing and per +10 % step, 2 kept, read back by go tool pprof ($(head -1 "$OBS_TMP/top"))"
else
  grep -q '"event":"heap_dump_unavailable"' "$LOG" || obs_fail "no heap_dump_unavailable warning"
  [ -z "$(ls "$OBS_TMP/dumps")" ] || obs_fail "heap dumps in a build without tcmalloc"
  obs_ok "no tcmalloc in the $VARIANT build: heap dumps off with a warning"
fi

obs_stop P
if [ "$VARIANT" = release ]; then # a dump directory that cannot be written is reported at start
  obs_start Q --cgroup-root "$T" --heap-dump-dir "$OBS_TMP/no/such/dir"
  grep -q '"event":"heap_dump_dir_unusable".*"dir":"'"$OBS_TMP"'/no/such/dir"' "$OBS_TMP/Q.log" ||
    obs_fail "no heap_dump_dir_unusable warning at startup"
  obs_stop Q
  obs_ok "an unusable heap_dump_dir is reported at startup"
fi
grep -q '"event":"heap_dump_dir_unsafe"' "$LOG" && obs_fail "a dump directory of ours (0755) reported unsafe"

# ---- a heap_dump_dir others can write: nothing planted there costs a profile ------------------
# Planted: empty files whose names sort as the newest profiles and a file that sorts as the
# oldest (pruning must only ever delete profiles this process wrote), empty files at the
# temporary names the dump used to use, and symlinks at the names of the coming profiles
# (unix time, RSS MiB: predictable). Every failure is counted and logged with path and errno.
setmax() { echo $(($1 * MIB)) >"$G/memory.max.tmp" && mv "$G/memory.max.tmp" "$G/memory.max"; }
wait_code() { # URL CODE — wait ≤ 5 s for URL to answer CODE
  for _ in $(seq 50); do [ "$(code "$1")" = "$2" ] && return 0; sleep 0.1; done
  obs_fail "$1 did not answer $2 in 5 s"
}
if [ "$VARIANT" = release ]; then
  setmax 100; setmem 10
  D="$OBS_TMP/shared-dumps"
  mkdir -p "$D" && chmod 0777 "$D"
  : >"$D/heap-99999999991-1.prof"
  : >"$D/heap-99999999992-1.prof"
  echo planted >"$D/heap-1-1.prof"
  echo victim >"$OBS_TMP/victim"
  obs_start S --workers 2 --cgroup-root "$T" --heap-dump-dir "$D" --heap-dump-keep 1
  SB="http://127.0.0.1:$S_PORT"
  SLOG="$OBS_TMP/S.log"
  smetric() { curl -s "$SB/metrics" | awk -v n="primed_heap_dumps_total{result=\"$1\"}" '$1 == n {print $2}'; }
  grep -q '"level":"warn","event":"heap_dump_dir_unsafe".*"dir":"'"$D"'"' "$SLOG" ||
    obs_fail "no heap_dump_dir_unsafe warning for a 0777 directory: $(grep heap_dump_dir "$SLOG")"
  for k in $(seq 0 63); do : >"$D/.heap-$S_PID-$k.tmp"; done
  rss=$(($(awk '{print $24}' "/proc/$S_PID/stat") * $(getconf PAGESIZE) / MIB))
  now=$(date +%s)
  for t in $(seq "$now" $((now + 5))); do
    for m in $(seq $((rss > 4 ? rss - 4 : 0)) $((rss + 8))); do ln -s "$OBS_TMP/victim" "$D/heap-$t-$m.prof"; done
  done
  planted=$(ls -A "$D" | wc -l)
  episode() { # one crossing of the high-water mark, which writes one profile
    setmem 95; wait_code "$SB/readyz" 503
    for _ in $(seq 50); do [ "$(smetric written)$(smetric failed)" != "$1$2" ] || break; sleep 0.1; done
    setmem 50; wait_code "$SB/readyz" 200
  }
  last_dump() { grep '"event":"heap_dump"' "$SLOG" | tail -1 | sed 's/.*"path":"\([^"]*\)".*/\1/'; }
  planted_intact() {
    [ ! -s "$D/heap-99999999991-1.prof" ] && [ -f "$D/heap-99999999991-1.prof" ] &&
      [ -f "$D/heap-99999999992-1.prof" ] && [ "$(cat "$D/heap-1-1.prof")" = planted ] &&
      [ "$(cat "$OBS_TMP/victim")" = victim ] && [ "$(ls -A "$D" | wc -l)" = $((planted + 1)) ]
  }
  episode 1 0
  [ "$(smetric written)/$(smetric failed)/$(smetric duplicate)" = 1/0/0 ] ||
    obs_fail "first dump: written/failed/duplicate $(smetric written)/$(smetric failed)/$(smetric duplicate), want 1/0/0 ($(grep heap_dump "$SLOG" | tail -2))"
  first=$(last_dump)
  [ -f "$first" ] && [ ! -L "$first" ] && head -c 13 "$first" | grep -q '^heap profile:' ||
    obs_fail "the profile $first is not there, or not a heap profile"
  planted_intact || obs_fail "the first dump changed what was planted: $(ls -lA "$D" | head -20)"
  grep -q '"level":"warn","event":"heap_dump_name_taken".*"path":"'"$D"'/heap-' "$SLOG" ||
    obs_fail "the symlinks at the coming names were not met (RSS $rss MiB predicted): $first"
  sleep 1.1 # another name
  episode 2 0
  [ "$(smetric written)/$(smetric failed)" = 2/0 ] || obs_fail "second dump: $(smetric written)/$(smetric failed)"
  second=$(last_dump)
  [ "$second" != "$first" ] && [ -s "$second" ] && [ ! -e "$first" ] ||
    obs_fail "heap_dump_keep 1: want $second kept and $first pruned: $(ls -A "$D" | grep -v '^\.heap' | tr '\n' ' ')"
  planted_intact || obs_fail "pruning deleted or changed what was planted: $(ls -lA "$D" | head -20)"
  obs_ok "planted profiles (newest, oldest), temporary names and symlinks at the coming names: both profiles written, the older one pruned, nothing planted touched"

  rm -rf "$D" # the directory goes away: the next dump fails, counted and logged
  episode 2 1
  [ "$(smetric failed)" = 1 ] || obs_fail "a dump into a missing directory: failed=$(smetric failed)"
  grep -q '"level":"warn","event":"heap_dump_failed".*"path":"'"$D"'.*"errno":"2"' "$SLOG" ||
    obs_fail "no heap_dump_failed warning with the path and errno 2: $(grep heap_dump_failed "$SLOG")"
  obs_stop S
  obs_ok "a dump that cannot be written: failed=1 and a warning with its path and errno"
fi

# ---- a burst of streams against a memory_budget above the limit -------------------------------
# --memory-budget 1GiB in a 32 MiB limit: the budget is clamped to half the limit (16 MiB, 16
# buffers of 1 MiB) at start with a warning, so 40 streams opened at once get 16 admissions and 24
# 503s whatever the sampling thread has seen; when the limit changes the budget follows.
setmax 32; setmem 10
obs_start R --workers 2 --cgroup-root "$T" --memory-budget 1GiB --stream-buffer-bytes 1MiB
RB="http://127.0.0.1:$R_PORT"
rmetric() { curl -s "$RB/metrics" | awk -v n="$1" '$1 == n {print $2}'; }
obs_stream_burst "$R_PORT" 40 "$OBS_TMP/burst"
read -r ok refused other < <(obs_burst_count "$OBS_TMP/burst" 40 $((15 * LIB_SLOW)))
primed_check R
[ "$ok/$refused/$other" = 16/24/0 ] ||
  obs_fail "40 streams at once, 1GiB budget, 32 MiB limit: $ok admitted, $refused refused, $other other; want 16/24/0"
[ "$(code "$RB/healthz")" = 200 ] || obs_fail "healthz during the burst"
[ "$(rmetric primed_streams_active)" = 16 ] || obs_fail "streams active $(rmetric primed_streams_active), want 16"
grep -q '"level":"warn","event":"memory_budget_clamped".*"bytes":"16777216"' "$OBS_TMP/R.log" ||
  obs_fail "no memory_budget_clamped warning for 16 MiB: $(grep memory_budget "$OBS_TMP/R.log")"
[ "$(rmetric primed_memory_budget_bytes)" = $((16 * MIB)) ] || obs_fail "budget gauge $(rmetric primed_memory_budget_bytes)"
[ "$(rmetric primed_memory_budget_configured_bytes)" = $((1024 * MIB)) ] || obs_fail "configured budget gauge"
obs_ok "40 streams at once against --memory-budget 1GiB in a 32 MiB limit: 16 admitted (clamped to 16 MiB, warned), 24 503"

wait_metric() { # NAME VALUE — wait ≤ 5 s for R's gauge
  for _ in $(seq 50); do [ "$(rmetric "$1")" = "$2" ] && return 0; sleep 0.1; done
  obs_fail "$1 is $(rmetric "$1"), want $2"
}
setmax 16 # while the 16 streams hold their buffers
wait_metric primed_memory_budget_bytes $((8 * MIB))
body=$(curl -s "$RB/v1/primes?from=0&to=1000")
grep -q 'stream memory budget exhausted' <<<"$body" || obs_fail "a new stream over the shrunk budget: $body"
obs_burst_stop
wait_metric primed_streams_active 0
[ "$(code "$RB/v1/primes?from=0&to=1000")" = 200 ] || obs_fail "a stream once the burst left"
setmax 64
wait_metric primed_memory_budget_bytes $((32 * MIB))
[ "$(grep -c '"event":"memory_budget_clamped"' "$OBS_TMP/R.log")" = 3 ] ||
  obs_fail "want one memory_budget_clamped warning per limit: $(grep memory_budget "$OBS_TMP/R.log")"
obs_stop R
obs_ok "the limit shrinks to 16 MiB: budget 8 MiB at the next sample, new streams refused until the held ones leave; grows to 64 MiB: 32 MiB"
echo "PASS test_memory_watch"
