#!/usr/bin/env bash
# bench-heap-sampling.sh — cost of tcmalloc heap sampling (the default, for /debug/heap):
# requests/s under wrk against two primed processes started in the same run, one with
# --heap-sampling true (TCMALLOC_SAMPLE_PARAMETER=524288) and one with --heap-sampling false,
# alternating short runs so both see the same machine noise. Prints per-run numbers, the medians
# and the ratio. Target: sampling costs ≤ 5 % of requests/s.
# Usage: scripts/bench-heap-sampling.sh [RUNS=5] [SECONDS=3]
#        (env: PRIMED_BIN, URL_PATH, HEAP_SAMPLE_BYTES=524288 for the sampling instance)
# A benchmark, not a test: it asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/obs_lib.sh
RUNS=${1:-5}
DUR=${2:-3}
# /v1/primes allocates its stream buffers per request: the allocation-heavy path, where
# sampling would show first.
URL_PATH=${URL_PATH:-/v1/primes?from=1000000000&to=1000050000}
command -v wrk >/dev/null || obs_fail "wrk not installed"
lib_load_check
[ "$(tr -d ' ' <VERSION 2>/dev/null)" ] || true

SAMPLE_BYTES=${HEAP_SAMPLE_BYTES:-524288}
obs_start ON --heap-sampling true --heap-sample-bytes "$SAMPLE_BYTES"
obs_start OFF --heap-sampling false
grep -q "heap_v2/$SAMPLE_BYTES" <(curl -s "http://127.0.0.1:$ON_DPORT/debug/pprof/heap" | head -1) ||
  echo "warning: sampling instance is not sampling (no tcmalloc?)" >&2

TCK=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime of a pid, in clock ticks
# one wrk run against port $1 (server pid $2) → "req/s server-CPU-µs-per-request"
# CPU per request is the steadier number on a shared machine: it does not count time the
# server spent waiting for a core.
rps() {
  local t0 t1 out
  t0=$(ticks "$2")
  out=$(wrk -t1 -c8 -d"${DUR}s" "http://127.0.0.1:$1$URL_PATH")
  t1=$(ticks "$2")
  awk -v t="$((t1 - t0))" -v tck="$TCK" '/requests in/{n=$1} /^Requests\/sec:/{r=$2}
    END{printf "%s %.1f\n", r, t / tck * 1e6 / n}' <<<"$out"
}

# warm-up (sieving-prime tables, tcmalloc caches)
rps "$ON_PORT" "$ON_PID" >/dev/null; rps "$OFF_PORT" "$OFF_PID" >/dev/null
on=(); off=(); con=(); coff=()
for r in $(seq "$RUNS"); do
  if [ $((r % 2)) = 1 ]; then a=$(rps "$ON_PORT" "$ON_PID"); b=$(rps "$OFF_PORT" "$OFF_PID")
  else b=$(rps "$OFF_PORT" "$OFF_PID"); a=$(rps "$ON_PORT" "$ON_PID"); fi
  on+=("${a% *}"); off+=("${b% *}"); con+=("${a#* }"); coff+=("${b#* }")
  printf 'run %d: sampling on %10s req/s %7s µs CPU/req   off %10s req/s %7s µs CPU/req\n' \
    "$r" "${a% *}" "${a#* }" "${b% *}" "${b#* }"
done
mon=$(printf '%s\n' "${on[@]}" | lib_median)
moff=$(printf '%s\n' "${off[@]}" | lib_median)
cpon=$(printf '%s\n' "${con[@]}" | lib_median)
cpoff=$(printf '%s\n' "${coff[@]}" | lib_median)
awk -v a="$mon" -v b="$moff" -v c="$cpon" -v e="$cpoff" -v p="$URL_PATH" -v n="$RUNS" -v d="$DUR" -v sb="$SAMPLE_BYTES" 'BEGIN{
  printf "GET %s, wrk -t1 -c8, %d runs of %d s each, sampling every %s bytes\n", p, n, d, sb;
  printf "median req/s: sampling on %.0f, off %.0f, on/off = %.3f (overhead %.1f %%)\n",
         a, b, a / b, (1 - a / b) * 100;
  printf "median server CPU per request: on %.1f µs, off %.1f µs (overhead %.1f %%)\n",
         c, e, (c / e - 1) * 100 }'
