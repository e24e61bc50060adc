#!/usr/bin/env bash
# test_cgroup_limit.sh — primed in a real memory cgroup with a small limit (128 MiB):
#  1. pushed by slow streams (curl --limit-rate) added 4 at a time, with the high-water mark (50 %)
#     below what the stream budget (--memory-budget 1GiB, clamped to half the limit) allows, so
#     the mark is what stops them:
#     - primed is never OOM-killed (the group's oom_kill count stays 0, the process stays alive);
#     - it sheds (new stream 503 overloaded, /readyz 503) while isprime and /healthz answer 200;
#     - once the slow clients go away it recovers (/readyz 200, streams 200);
#     - heap profiles were written on the way up and `go tool pprof` reads them;
#  2. a burst of 200 slow streams as fast as curl starts (1–2 s), default marks: so many arrive
#     between two samples that only the budget charged at admission stands between primed and
#     the OOM killer: 64 admitted (64 MiB), the rest 503, alive, oom_kill 0 (before the clamp:
#     all admitted, OOM-killed).
# The sequence is printed with timestamps. Needs root and a writable memory controller (v1, or v2
# with memory delegable to a child); otherwise it says why and exits 77. Sanitizer builds: 77
# (ASan's quarantine and shadow memory make RSS say nothing about primed's own use).
# The cgroup it creates is removed on exit.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
VARIANT=${PRIMED_VARIANT:-release}
na() { echo "N/A: $*"; exit 77; }
[ "$VARIANT" = release ] || na "sanitizer build ($VARIANT): RSS is dominated by the sanitizer"
[ "$(id -u)" = 0 ] || na "not root: cannot create a cgroup"

# ---- find a writable memory hierarchy -------------------------------------------------------
CG="" VER=""
mline=$(grep -E '^[0-9]+:([^:]*,)?memory(,[^:]*)?:' /proc/self/cgroup | head -1)
if [ -n "$mline" ]; then
  path=${mline#*:*:}
  mnt=$(awk '$0 ~ / - cgroup / && $NF ~ /(^|,)memory(,|$)/ {print $4" "$5; exit}' /proc/self/mountinfo)
  [ -n "$mnt" ] || na "a v1 memory line in /proc/self/cgroup but no v1 memory mount"
  mroot=${mnt%% *} mpoint=${mnt#* }
  rel=${path#"$mroot"}; [ "$mroot" = / ] && rel=$path
  base="$mpoint$rel"; [ -d "$base" ] || base=$mpoint
  CG="$base/primed-test-$$" VER=1
else
  path=$(sed -n 's/^0:://p' /proc/self/cgroup)
  mpoint=$(awk '$0 ~ / - cgroup2 / {print $5; exit}' /proc/self/mountinfo)
  [ -n "$path" ] && [ -n "$mpoint" ] || na "no cgroup v1 memory hierarchy and no cgroup v2 mount"
  grep -qw memory "$mpoint/cgroup.controllers" 2>/dev/null || na "cgroup v2 without the memory controller"
  base="$mpoint${path%/}"
  grep -qw memory "$base/cgroup.subtree_control" 2>/dev/null ||
    echo +memory >"$base/cgroup.subtree_control" 2>/dev/null ||
    na "cannot enable memory for children of $base (processes in an inner cgroup, or no delegation)"
  CG="$base/primed-test-$$" VER=2
fi
mkdir "$CG" 2>/dev/null || na "cannot create $CG (read-only cgroup filesystem?)"

. tests/obs_lib.sh
# An exit hook of lib.sh's (a trap of our own would replace its cleanup and leave primed running
# in the group): the servers still in the group are stopped first, or it could not be removed.
cleanup_cg() {
  local name
  for name in ${LIB_SRV_NAMES[@]+"${LIB_SRV_NAMES[@]}"}; do
    primed_alive "$name" && { primed_signal "$name" TERM; primed_wait "$name" 5 >/dev/null 2>&1; }
  done
  for _ in $(seq 50); do rmdir "$CG" 2>/dev/null && return; sleep 0.1; done
  echo "warning: could not remove $CG" >&2
}
lib_at_exit cleanup_cg

LIMIT_MIB=${PRIMED_TEST_CGROUP_LIMIT_MIB:-128}
LIMIT=$((LIMIT_MIB * 1048576))
if [ $VER = 1 ]; then
  echo $LIMIT >"$CG/memory.limit_in_bytes" || obs_fail "cannot set memory.limit_in_bytes"
  echo $LIMIT >"$CG/memory.memsw.limit_in_bytes" 2>/dev/null # no swap either, where accounted
  kills() { awk '$1=="oom_kill"{print $2}' "$CG/memory.oom_control"; }
  usage() { cat "$CG/memory.usage_in_bytes"; }
else
  echo $LIMIT >"$CG/memory.max" || obs_fail "cannot set memory.max"
  echo 0 >"$CG/memory.swap.max" 2>/dev/null
  kills() { awk '$1=="oom_kill"{print $2}' "$CG/memory.events"; }
  usage() { cat "$CG/memory.current"; }
fi
echo "cgroup v$VER $CG, limit $LIMIT_MIB MiB"

# primed moves itself into the group before exec, so every page it ever touches is charged there
T0=$(date +%s.%N)
stamp() { awk -v t0="$T0" -v now="$(date +%s.%N)" -v d="$(date -u +%T.%3N)" -v m="$*" \
  'BEGIN { printf "%s UTC  T+%6.2f s  %s\n", d, now - t0, m }' | tee -a "$OBS_TMP/timeline"; }
mkdir -p "$OBS_TMP/dumps"
REAL_BIN=$OBS_BIN
WRAP="$OBS_TMP/in-cgroup.sh"
printf '#!/bin/sh\necho $$ > "%s/cgroup.procs" || exit 97\nexec "%s" "$@"\n' "$CG" "$OBS_BIN" >"$WRAP"
chmod +x "$WRAP"
PRIMED_BIN=$WRAP obs_start P --workers 2 --memory-budget 1GiB --stream-buffer-bytes 1MiB \
  --memory-high-water 50 --memory-low-water 40 \
  --heap-dump-dir "$OBS_TMP/dumps" --heap-dump-threshold 30 --heap-dump-keep 10 \
  --max-connections 2048 --connection-timeout 120
grep -q "primed-test-$$" "/proc/$P_PID/cgroup" || obs_fail "primed is not in $CG"
B="http://127.0.0.1:$P_PORT"
code() { curl -s -o /dev/null -m 10 -w '%{http_code}' "$@"; }
metric() { curl -s -m 5 "$B/metrics" | awk -v n="$1" '$1 == n {print $2}'; }
[ "$(metric primed_cgroup_memory_limit_bytes)" = $LIMIT ] ||
  obs_fail "primed_cgroup_memory_limit_bytes $(metric primed_cgroup_memory_limit_bytes), want $LIMIT"
# the metrics against the group's own files, read by hand around the scrape
u1=$(usage); mu=$(metric primed_cgroup_memory_usage_bytes); u2=$(usage)
awk -v a="$u1" -v b="$u2" -v m="$mu" 'BEGIN { lo = (a < b ? a : b) - 4194304; hi = (a > b ? a : b) + 4194304
  exit !(m != "" && m >= lo && m <= hi) }' ||
  obs_fail "primed_cgroup_memory_usage_bytes $mu, the file said $u1 then $u2"
[ "$(metric primed_cgroup_oom_kills_total)" = "$(kills)" ] ||
  obs_fail "primed_cgroup_oom_kills_total $(metric primed_cgroup_oom_kills_total), the file $(kills)"
stamp "primed up in the cgroup: usage $(($(usage) / 1048576)) MiB (metric $((mu / 1048576)) MiB), /readyz $(code "$B/readyz")"

# ---- push: slow streams, 4 more every 0.25 s, until primed sheds (≤ 400 streams, ≤ 60 s) -----
SLOW=()
shed_at=""
for i in $(seq 100); do
  for j in 1 2 3 4; do
    n=$((i * 4 + j))
    curl -s -m 120 --limit-rate 2k -o /dev/null \
      "$B/v1/primes?from=$((n * 10000000000))&to=$((n * 10000000000 + 1000000000))" &
    SLOW+=($!); OBS_PIDS+=($!)
  done
  sleep 0.25
  if [ "$(code "$B/readyz")" = 503 ]; then shed_at=$n; break; fi
  kill -0 "$P_PID" 2>/dev/null || obs_fail "primed died while streams were added (oom_kill $(kills))"
done
[ -n "$shed_at" ] || obs_fail "no shedding after ${#SLOW[@]} slow streams (usage $(($(usage) / 1048576)) MiB)"
stamp "shedding after ${#SLOW[@]} slow streams: /readyz 503 at usage $(($(usage) / 1048576)) MiB, working set $(($(metric primed_memory_used_bytes) / 1048576)) MiB"

h="$OBS_TMP/h"
body=$(curl -s -m 10 -D "$h" "$B/v1/primes?from=0&to=1000")
grep -q '"code":"overloaded"' <<<"$body" && grep -qi '^Retry-After:' "$h" ||
  obs_fail "a new stream while shedding: $(head -1 "$h") $body"
[ "$(code "$B/v1/isprime?n=1000003")" = 200 ] || obs_fail "isprime refused while shedding"
[ "$(code "$B/healthz")" = 200 ] || obs_fail "healthz refused while shedding"
[ "$(code "$B/metrics")" = 200 ] || obs_fail "metrics refused while shedding"
stamp "new stream 503 overloaded + Retry-After; isprime, /healthz, /metrics 200"

# hold the pressure for 5 s: still alive, never killed
for _ in $(seq 10); do
  curl -s -m 5 -o /dev/null "$B/v1/primes?from=0&to=100000" # refused, keeps knocking
  sleep 0.5
done
kill -0 "$P_PID" 2>/dev/null || obs_fail "primed died under pressure (oom_kill $(kills))"
[ "$(kills)" = 0 ] || obs_fail "OOM kills in the group: $(kills)"
stamp "5 s at the mark: alive, oom_kill 0, usage $(($(usage) / 1048576)) MiB of $LIMIT_MIB"

# ---- release: the slow clients go away ------------------------------------------------------
for p in "${SLOW[@]}"; do kill "$p" 2>/dev/null; done
for p in "${SLOW[@]}"; do wait "$p" 2>/dev/null; done
stamp "slow clients gone"
ok=0
for _ in $(seq 100); do
  [ "$(code "$B/readyz")" = 200 ] && { ok=1; break; }
  sleep 0.1
done
[ $ok = 1 ] || obs_fail "no recovery within 10 s (usage $(($(usage) / 1048576)) MiB, working set $(($(metric primed_memory_used_bytes) / 1048576)) MiB)"
stamp "recovered: /readyz 200 at usage $(($(usage) / 1048576)) MiB"
[ "$(code "$B/v1/primes?from=0&to=1000000")" = 200 ] || obs_fail "stream refused after recovery"
stamp "new stream 200"

grep -E '"event":"(memory_high_water|memory_recovered|heap_dump)"' "$OBS_TMP/P.log" | cut -c1-200
[ "$(grep -c '"event":"memory_high_water"' "$OBS_TMP/P.log")" -ge 1 ] || obs_fail "no high-water log line"
ndumps=$(ls "$OBS_TMP/dumps" | wc -l)
[ "$ndumps" -ge 1 ] || obs_fail "no heap profile written on the way up"
export HOME="$OBS_TMP/home" PPROF_TMPDIR="$OBS_TMP/pprof" GOCACHE="$OBS_TMP/gocache"
mkdir -p "$HOME" "$PPROF_TMPDIR"
GO=$(command -v go || echo /usr/lib/go/bin/go)
last=$(ls "$OBS_TMP/dumps" | tail -1)
"$GO" tool pprof -top "$REAL_BIN" "$OBS_TMP/dumps/$last" >"$OBS_TMP/top" 2>&1 ||
  { cat "$OBS_TMP/top" >&2; obs_fail "go tool pprof cannot read $last"; }
grep -Eq 'stream_|api_' "$OBS_TMP/top" || { head -20 "$OBS_TMP/top"; obs_fail "the dump does not show the stream buffers"; }
stamp "$ndumps heap profile(s); go tool pprof -top $last: $(grep -Eo '\b(stream_[a-z_]+|api_[a-z_]+)' "$OBS_TMP/top" | sort -u | head -3 | tr '\n' ' ')"
[ "$(kills)" = 0 ] || obs_fail "OOM kills in the group: $(kills)"
obs_stop P
stamp "stopped cleanly, oom_kill $(kills)"

# ---- a burst: 200 slow streams at once, --memory-budget 1GiB ---------------------------------
# Before its budget was clamped to the limit, primed admitted all 200 (200 MiB of buffers in a
# 128 MiB group) and the kernel killed it before the sampling thread's next look. Now the budget
# is half the limit (64 buffers of 1 MiB): the rest get 503 at admission, whatever was sampled.
PRIMED_BIN=$WRAP obs_start R --workers 2 --memory-budget 1GiB --stream-buffer-bytes 1MiB \
  --max-connections 2048 --connection-timeout 120
RB="http://127.0.0.1:$R_PORT"
grep -q '"level":"warn","event":"memory_budget_clamped".*"bytes":"'$((LIMIT / 2))'"' "$OBS_TMP/R.log" ||
  obs_fail "no memory_budget_clamped warning: $(grep memory_budget "$OBS_TMP/R.log")"
stamp "primed restarted with --memory-budget 1GiB: clamped to $((LIMIT / 2 / 1048576)) MiB"
obs_stream_burst "$R_PORT" 200 "$OBS_TMP/burst"
stamp "200 slow streams opened"
read -r ok refused other < <(obs_burst_count "$OBS_TMP/burst" 200 30)
stamp "answered: $ok admitted, $refused refused (503), $other other; usage $(($(usage) / 1048576)) MiB, oom_kill $(kills)"
kill -0 "$R_PID" 2>/dev/null || obs_fail "primed died under the burst (oom_kill $(kills))"
[ "$ok" = $((LIMIT / 2 / 1048576)) ] && [ "$refused" = $((200 - ok)) ] ||
  obs_fail "burst of 200: $ok admitted, $refused refused, $other other; want $((LIMIT / 2 / 1048576)) admitted, the rest 503"
sleep 2 # the admitted producers have filled their buffers
[ "$(code "$RB/healthz")" = 200 ] || obs_fail "healthz under the burst"
[ "$(kills)" = 0 ] || obs_fail "OOM kills in the group: $(kills)"
stamp "2 s later: alive, /healthz 200, oom_kill 0, usage $(($(usage) / 1048576)) MiB of $LIMIT_MIB"
obs_burst_stop
obs_stop R
stamp "stopped cleanly, oom_kill $(kills)"
echo "PASS test_cgroup_limit"
