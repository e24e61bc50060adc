#!/usr/bin/env bash
# bench-report.sh — `make bench-report`: one reproducible benchmark run written to
# docs/benchmarks.md with PNG plots (docs/bench-*.png).
#
#  1. the machine (CPU model, cores, memory, kernel, package versions, primed revision);
#  2. the sieve benchmark, scripts/bench.sh (primed's sieve vs primesieve, same run), verbatim;
#  3. HTTP, with scripts/loadtest.sh (wrk) on loopback:
#     - latency vs concurrency: one fixed cheap request to primed and to the constant-JSON
#       libmicrohttpd server build/tools/baseline_server (the floor any MHD server pays);
#     - throughput vs --workers for the CPU-bound count scenario and the realistic mix;
#     - every scenario (small, count, stream, mix, errors) at one concurrency;
#     - RSS over time while streaming lists;
#  4. π(x) for x = 10^8 … 10^PI_MAX_EXP (default 16): build/tools/bench_sieve pi X 1 against
#     primecount X -t1, alternating, PI_REPS (default 3) runs each, answers compared; a table
#     and a log-log plot of time vs x (docs/bench-pi.png).
# Short by design (about 4 minutes; BENCH_DURATION per point, default 3s): the machine is shared,
# so numbers are medians of nothing — compare rows of the same run, not across runs.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
DUR=${BENCH_DURATION:-3s}
BIN=${PRIMED_BIN:-$ROOT/build/primed}
BASELINE=${BASELINE_BIN:-$ROOT/build/tools/baseline_server}
OUT=docs/benchmarks.md
PRIMED_BIN=$BIN
. scripts/lib.sh # starts, watches and stops the servers below
TMP=$LIB_TMP
log() { echo "bench-report: $*" >&2; }

[ -x "$BIN" ] || { log "build/primed missing: run make"; exit 1; }
command -v wrk >/dev/null || { log "wrk missing: make deps"; exit 1; }
command -v gnuplot >/dev/null || { log "gnuplot missing: make deps"; exit 1; }
mkdir -p docs

# ---- 1. machine -------------------------------------------------------------------------------
pkgver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "not installed"; }
machine() {
  echo "| | |"
  echo "|---|---|"
  echo "| CPU | $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1) |"
  echo "| cores (nproc) | $(nproc) (shared with other jobs during the run) |"
  echo "| memory | $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) |"
  echo "| kernel | $(uname -sr) |"
  echo "| OS | $(. /etc/os-release && echo "$PRETTY_NAME") |"
  echo "| gcc | $(gcc -dumpfullversion 2>/dev/null || echo ?) |"
  local p
  for p in libmicrohttpd12 libjansson4 libgoogle-perftools4 wrk primesieve nginx-light; do
    echo "| $p | $(pkgver "$p") |"
  done
  echo "| primed | $(cat VERSION 2>/dev/null || echo ?) ($(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ', uncommitted changes')) |"
  echo "| load average at start | $(cut -d' ' -f1-3 /proc/loadavg) |"
}
machine >"$TMP/machine.md"
log "machine described"

# ---- 2. sieve benchmark -----------------------------------------------------------------------
if [ -f scripts/bench.sh ]; then
  log "running scripts/bench.sh"
  # its one-thread π rows are section 4's points: timed once, there
  if BENCH_PI_ONE_THREAD=0 timeout 900 bash scripts/bench.sh >"$TMP/sieve.txt" 2>&1; then sieve_status="completed"
  else sieve_status="FAILED (exit $?); output as far as it got"; fi
else
  sieve_status="not run: scripts/bench.sh is not on this branch yet"
  : >"$TMP/sieve.txt"
fi

# ---- 3. HTTP ----------------------------------------------------------------------------------
CSV=$TMP/http.csv
LT() { bash scripts/loadtest.sh -d "$DUR" -o "$CSV" "$@" >>"$TMP/loadtest.txt" 2>&1 || true; }

# 3a. latency vs concurrency: primed's cheapest request vs the constant-JSON MHD server.
fixed_path="/v1/isprime?n=1000003"
primed_start LAT --debug-listen off --log-level warn
ppid=$LAT_PID pport=$LAT_PORT
have_baseline=0
if [ -x "$BASELINE" ] && { lib_spawn BASE "$BASELINE" "$TMP/base.port" && lib_wait_ready BASE "$TMP/base.port"; }; then
  have_baseline=1 bpid=$BASE_PID bport=$BASE_PORT
fi
for c in 1 4 16 64; do
  t=2; [ "$c" -lt 2 ] && t=1
  log "latency at $c connections"
  LOADTEST_PATH=$fixed_path LOADTEST_NAME=fixed LT -u "http://127.0.0.1:$pport" -p "$ppid" -c "$c" -t "$t" -l primed baseline
  if [ $have_baseline -eq 1 ]; then
    LOADTEST_PATH=/ LOADTEST_NAME=fixed LT -u "http://127.0.0.1:$bport" -p "$bpid" -c "$c" -t "$t" -l mhd_baseline baseline
  fi
done
primed_stop LAT || log "primed (latency runs) exited with status $LAT_RC"
[ $have_baseline -eq 1 ] && { primed_stop BASE || true; }

# 3b. throughput vs workers (the loadtest starts its own primed per run).
for w in 1 2 4; do
  log "workers $w"
  LT -b "$BIN" -w "$w" -c 32 -t 2 -l "workers=$w" count mix -- --log-level warn
done

# 3c. every scenario at 16 connections, default workers.
log "all scenarios"
LT -b "$BIN" -c 16 -t 2 -l scenarios small count stream mix errors -- --log-level warn

# 3d. RSS over time while streaming (sampled every 0.2 s from /proc), twice the usual duration.
log "RSS while streaming"
bash scripts/loadtest.sh -b "$BIN" -d "$(( ${DUR%s} * 3 ))s" -c 32 -t 2 -r "$TMP/rss.dat" -o "$CSV" \
  -l rss stream -- --log-level warn >>"$TMP/loadtest.txt" 2>&1 || true

# ---- 4. π(x) vs primecount --------------------------------------------------------------------
pi_status=completed
: >"$TMP/pi.dat"
if command -v primecount >/dev/null && make -s -j2 build/tools/bench_sieve >/dev/null; then
  log "pi(1e8 … 1e${PI_MAX_EXP:-16}): scripts/bench-pi.sh"
  PI_MAX_EXP=${PI_MAX_EXP:-16} bash scripts/bench-pi.sh --table-only --dat "$TMP/pi.dat" \
    --plot docs/bench-pi.png >>"$TMP/pi.log" 2>&1 || pi_status="FAILED: answers differ"
else
  pi_status="not run: primecount or build/tools/bench_sieve missing"
fi

# ---- plots -----------------------------------------------------------------------------------
col() { # label scenario → "connections p50_ms p99_ms rps" rows
  awk -F, -v l="$1" -v s="$2" 'NR > 1 && $1 == l && $2 == s {
    printf "%s %.3f %.3f %.3f %.1f\n", $3, $10 / 1000, $12 / 1000, $13 / 1000, $8 }' "$CSV"
}
col primed baseline >"$TMP/lat_primed.dat"
col mhd_baseline baseline >"$TMP/lat_base.dat"
for s in count mix; do
  for w in 1 2 4; do
    awk -F, -v l="workers=$w" -v s="$s" -v w="$w" 'NR > 1 && $1 == l && $2 == s { print w, $8 }' "$CSV"
  done >"$TMP/thr_$s.dat"
done

gp_common='set terminal pngcairo size 900,520 font "DejaVu Sans,11"; set grid; set key top left'
{
  echo "$gp_common"
  echo "set output 'docs/bench-latency.png'"
  echo "set title 'Latency vs concurrency (GET $fixed_path vs constant-JSON MHD server)'"
  echo "set xlabel 'concurrent connections (wrk -c)'; set ylabel 'latency (ms)'; set logscale x 2; set logscale y"
  plot="plot '$TMP/lat_primed.dat' using 1:2 with linespoints title 'primed p50', '' using 1:3 with linespoints title 'primed p99'"
  if [ -s "$TMP/lat_base.dat" ]; then
    plot="$plot, '$TMP/lat_base.dat' using 1:2 with linespoints dt 2 title 'MHD baseline p50', '' using 1:3 with linespoints dt 2 title 'MHD baseline p99'"
  fi
  echo "$plot"
} | gnuplot || log "a plot failed (see above)"
{
  echo "$gp_common"
  echo "set output 'docs/bench-throughput.png'"
  echo "set title 'Throughput vs --workers (wrk -c 32, $(nproc) cores)'"
  # count is ~20x slower per request than the mix: its own axis on the right keeps it readable.
  echo "set xlabel 'primed --workers'; set ylabel 'mix requests/s'; set y2label 'count requests/s'"
  echo "set xtics (1, 2, 4); set yrange [0:*]; set y2range [0:*]; set ytics nomirror; set y2tics"
  echo "plot '$TMP/thr_mix.dat' using 1:2 with linespoints title 'realistic mix (left axis)', '$TMP/thr_count.dat' using 1:2 axes x1y2 with linespoints title 'count, 10^4..10^7 ranges (right axis)'"
} | gnuplot || log "a plot failed (see above)"
{
  echo "$gp_common"
  echo "set output 'docs/bench-rss.png'"
  echo "set title 'primed RSS while streaming /v1/primes (wrk -c 32)'"
  echo "set xlabel 'seconds since start'; set ylabel 'RSS (MiB)'; set yrange [0:*]"
  echo "plot '$TMP/rss.dat' using 1:(\$2/1048576) with lines lw 2 title 'RSS'"
} | gnuplot || log "a plot failed (see above)"
log "plots written"

# ---- report ----------------------------------------------------------------------------------
table() { # label filter → markdown rows
  awk -F, -v l="$1" 'NR > 1 && $1 ~ l {
    printf "| %s | %s | %s | %s | %.0f | %.2f | %.2f | %.2f | %.2f | %s | %s | %s | %s | %.1f → %.1f |\n",
      $1, $2, $3, $5, $8, $10 / 1000, $11 / 1000, $12 / 1000, $13 / 1000, $15, $16 + 0, $17,
      $18 + $19, $20 / 1048576, $21 / 1048576 }' "$CSV"
}
# "unexpected": replies the scenario does not allow (see scripts/wrk/*.lua) + socket errors.
hdr="| run | scenario | conns | workers | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | 2xx | 4xx | 5xx | unexpected | RSS MiB before → after |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
rss_peak=$(awk 'BEGIN { m = 0 } $2 > m { m = $2 } END { printf "%.1f", m / 1048576 }' "$TMP/rss.dat" 2>/dev/null || echo "?")
rss_first=$(awk 'NR == 1 { printf "%.1f", $2 / 1048576 }' "$TMP/rss.dat" 2>/dev/null || echo "?")
rss_last=$(awk 'END { printf "%.1f", $2 / 1048576 }' "$TMP/rss.dat" 2>/dev/null || echo "?")

[ -f "$OUT" ] && cp "$OUT" "$TMP/old.md"
{
  cat <<EOF
# primed benchmarks

Generated by \`make bench-report\` (scripts/bench-report.sh) on $(date -u '+%Y-%m-%d %H:%M UTC').
Do not edit by hand: re-run the target. Every HTTP number comes from wrk on loopback
(scripts/loadtest.sh, scenarios in scripts/wrk/*.lua), $DUR per point, server and load generator
on the same $(nproc) cores, so the load generator takes CPU from the server; compare rows of this
run with each other, not with other machines.

## Machine

$(cat "$TMP/machine.md")

## Sieve: primed vs primesieve (\`bash scripts/bench.sh\`, $sieve_status)

\`\`\`
$(cat "$TMP/sieve.txt")
\`\`\`

## HTTP latency vs concurrency

GET \`$fixed_path\` (Miller–Rabin on a 7-digit number: almost pure request overhead) on primed,
against the constant-JSON libmicrohttpd server \`build/tools/baseline_server\`, which does no work
at all: the gap is what primed's routing, worker pool, JSON and metrics cost per request.
$([ $have_baseline -eq 1 ] || echo "
**The baseline server was not available in this run** (build/tools/baseline_server missing or
failed to start), so only primed is shown.")

![latency vs concurrency](bench-latency.png)

$hdr
$(table '^(primed|mhd_baseline)$')

## Throughput vs workers

Each run starts a fresh primed with \`--workers N\`, 32 connections. On $(nproc) cores more
workers than cores cannot add throughput; the point of the curve is that it does not collapse.

![throughput vs workers](bench-throughput.png)

$hdr
$(table '^workers=')

## Every scenario (16 connections, default workers)

small = isprime/next/prev of random 1–19 digit numbers; count = /v1/count over 10^4–10^7
numbers; stream = /v1/primes over 10^5–10^6 numbers (JSON and text); mix = 60 % small, 15 %
count, 12 % short lists, 5 % nth, 5 % batch, 3 % probes; errors = malformed requests only
(every reply must be 4xx).

$hdr
$(table '^scenarios$')

## RSS over time while streaming

$(( ${DUR%s} * 3 )) s of \`stream\` at 32 connections; RSS sampled every 0.2 s from /proc:
$rss_first MiB at start, peak $rss_peak MiB, $rss_last MiB at the end.

![RSS over time](bench-rss.png)

$hdr
$(table '^rss$')

Load average when the HTTP runs ended: $(cut -d' ' -f1-3 /proc/loadavg) (other jobs share the
cores; a high value explains long tails).

## π(x): primed vs primecount (one thread, $pi_status)

(scripts/bench-pi.sh writes this section from the run's table.)

## Raw loadtest output

<details><summary>scripts/loadtest.sh output of this run</summary>

\`\`\`
$(cat "$TMP/loadtest.txt")
\`\`\`
</details>
EOF
} >"$OUT"
# Sections other scripts wrote into the old file (bench-http.sh's HTTP front table, …) are carried
# over, before the raw output: this run does not measure them, and dropping them would lose them.
if [ -f "$TMP/old.md" ]; then
  python3 - "$TMP/old.md" "$OUT" <<'PY'
import re, sys
old, new = open(sys.argv[1]).read(), open(sys.argv[2]).read()
ours = {m.group(1) for m in re.finditer(r"^## (.*)$", new, re.M)}
sections = re.split(r"(?m)^(?=## )", old)[1:]
keep = [sec for sec in sections if sec.splitlines()[0][3:] not in ours
        and not sec.startswith("## Sieve: primed vs primesieve")
        and not sec.startswith("## π(x): primed vs primecount")]
if keep:
    at = new.index("## Raw loadtest output")
    new = new[:at] + "".join(s.rstrip("\n") + "\n\n" for s in keep) + new[at:]
    open(sys.argv[2], "w").write(new)
PY
fi
[ "$pi_status" = completed ] && bash scripts/bench-pi.sh --no-run --dat "$TMP/pi.dat" --docs
log "wrote $OUT and docs/bench-{latency,throughput,rss,pi}.png"
