#!/usr/bin/env bash
# fuzz.sh — build the libFuzzer harnesses (make fuzz) and run each for SECONDS.
#
#   scripts/fuzz.sh [SECONDS] [HARNESS...]      default: 60 s, every tests/fuzz/*.c
#   FUZZ_JOBS=N    parallel libFuzzer workers per harness (default 1: the machine is shared)
#   FUZZ_MERGE=1   afterwards, merge the inputs that add coverage into tests/fuzz/corpus/<h>/
#
# The seed corpus tests/fuzz/corpus/<h>/ is replayed first (every crash ever found is kept there
# as a regression input) and is never written to unless FUZZ_MERGE=1; new inputs go to
# build/fuzz/corpus/<h>/, crash/leak/timeout artifacts to build/fuzz/artifacts/<h>/.
# Prints one line per harness: executions, exec/s, corpus size, new units, peak RSS; exits 1 if
# any harness found a crash (its reproducer path is printed).
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
shift || true
if [ $# -gt 0 ]; then harnesses=("$@"); else
  harnesses=(); for f in tests/fuzz/*.c; do harnesses+=("$(basename "$f" .c)"); done
fi

make -s fuzz -j2 >/dev/null || { echo "fuzz.sh: make fuzz failed" >&2; exit 2; }

status=0
printf '%-16s %12s %10s %8s %6s %8s  %s\n' harness executions exec/s corpus new rss_mb result
for h in "${harnesses[@]}"; do
  bin=build/fuzz/$h seeds=tests/fuzz/corpus/$h work=build/fuzz/corpus/$h art=build/fuzz/artifacts/$h
  [ -x "$bin" ] || { echo "fuzz.sh: no $bin" >&2; status=1; continue; }
  mkdir -p "$work" "$art" "$seeds"
  log=build/fuzz/$h.log
  # -use_value_profile helps the numeric comparisons in numparse; stdin is /dev/null so that no
  # input can make a harness block on it.
  jobs=()
  [ "${FUZZ_JOBS:-1}" -gt 1 ] && jobs=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS")
  "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
         -use_value_profile=1 "${jobs[@]}" -artifact_prefix="$art/" "$work" "$seeds" \
         </dev/null >"$log" 2>&1
  rc=$?
  [ "${FUZZ_JOBS:-1}" -gt 1 ] && cat fuzz-*.log >>"$log" 2>/dev/null && rm -f fuzz-*.log
  execs=$(grep -h 'stat::number_of_executed_units' "$log" | awk '{s+=$2} END {print s+0}')
  rate=$(grep -h 'stat::average_exec_per_sec' "$log" | awk '{s+=$2} END {print s+0}')
  newu=$(grep -h 'stat::new_units_added' "$log" | awk '{s+=$2} END {print s+0}')
  rss=$(grep -h 'stat::peak_rss_mb' "$log" | awk '{if ($2>m) m=$2} END {print m+0}')
  corpus=$(( $(ls "$work" | wc -l) + $(ls "$seeds" | wc -l) ))
  crash=$(ls "$art" 2>/dev/null | head -1)
  if [ $rc -ne 0 ] || [ -n "$crash" ]; then
    result="CRASH (exit $rc) ${crash:+$art/$crash} — log: $log"; status=1
  else result=ok; fi
  printf '%-16s %12s %10s %8s %6s %8s  %s\n' "$h" "$execs" "$rate" "$corpus" "$newu" "$rss" "$result"
  if [ "${FUZZ_MERGE:-0}" = 1 ] && [ $rc -eq 0 ]; then
    "$bin" -merge=1 -artifact_prefix="$art/" "$seeds" "$work" </dev/null >>"$log" 2>&1
  fi
done
exit $status
