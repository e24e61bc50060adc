#!/usr/bin/env bash
# bench-pi-huge.sh — the two largest π(x) of issue 13 through the service, with their memory:
# GET /v1/pi?x=1e19 and /v1/pi?x=18446744073709551615 (2^64 − 1) on one primed (default workers,
# 1 h deadline, hopeless-request refusal off) run under /usr/bin/time. Checks both answers against
# the published values (π(10^19) = 234057667276344607, Deléglise & Rivat / OEIS A006880;
# π(2^64 − 1) = 425656284035217743, OEIS A185192 via Tomás Oliveira e Silva's tables) and prints
# per request: wall time, primed_pi_memory_peak_bytes (the engine's accounted tables) and the
# process's VmHWM; at the end /usr/bin/time's peak RSS of the whole process. Target: ≤ 128 MB.
# Tens of minutes of both cores: a benchmark (`make bench-pi-huge`), never part of `make test`.
# Usage: scripts/bench-pi-huge.sh [X…]   (default: 1e19 18446744073709551615)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
lib_load_check
XS=("$@")
[ ${#XS[@]} -gt 0 ] || XS=(1e19 18446744073709551615)
declare -A PUBLISHED=([1e19]=234057667276344607 [10000000000000000000]=234057667276344607
  [18446744073709551615]=425656284035217743)
TIMEF=$LIB_TMP/time.txt
LIB_WRAP=(/usr/bin/time -f 'primed process: %e s wall, %U s user, %S s sys, %M KB peak RSS (/usr/bin/time)' -o "$TIMEF")
primed_start H --debug-listen off --log-level warn --request-timeout-ms 3600000 --refuse-hopeless false
PID=$(pgrep -P "$H_PID" -x primed) || lib_fail "no primed under /usr/bin/time"
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$PID/status"; }

for x in "${XS[@]}"; do
  out=$LIB_TMP/answer
  s0=$(lib_now_us)
  curl -s --max-time 3700 -o "$out" "$H_URL/v1/pi?x=$x" &
  cpid=$!
  maxb=0
  while kill -0 "$cpid" 2>/dev/null; do # the accounted bytes while it runs, every 2 s
    b=$(lib_metric "$H_PORT" primed_pi_memory_bytes || true)
    [ -n "$b" ] && awk -v b="$b" -v m="$maxb" 'BEGIN{exit !(b > m)}' && maxb=$b
    sleep 2
  done
  wait "$cpid" || lib_fail "GET /v1/pi?x=$x: curl failed"
  s1=$(lib_now_us)
  body=$(cat "$out")
  want=${PUBLISHED[$x]:-}
  case $body in *"\"pi\":$want}"*) verdict="matches the published value" ;;
    *) [ -z "$want" ] && verdict="(no published value here)" || lib_fail "π($x): $body, published $want" ;;
  esac
  awk -v x="$x" -v b="$body" -v t="$(((s1 - s0) / 1000))" -v m="$maxb" \
    -v p="$(lib_metric "$H_PORT" primed_pi_memory_peak_bytes)" -v h="$(hwm)" -v v="$verdict" 'BEGIN{
    printf "pi(%s): %s, %s\n  %.1f s wall; accounted tables: %.1f MB seen while running, primed_pi_memory_peak_bytes %.1f MB; VmHWM %.1f MB\n",
      x, b, v, t / 1000, m / 1e6, p / 1e6, h * 1024 / 1e6 }'
done
kill -TERM "$PID"
primed_wait H 60 || lib_fail "primed did not exit 0"
cat "$TIMEF"
awk '/peak RSS/ {for (i = 1; i <= NF; i++) if ($i == "KB") kb = $(i - 1)}
  END {printf "peak RSS %.1f MB (target <= 128 MB)\n", kb * 1024 / 1e6}' "$TIMEF"
