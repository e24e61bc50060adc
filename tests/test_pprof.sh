#!/usr/bin/env bash
# test_pprof.sh — the profiles of the debug listener as the real pprof clients see them, without
# being given the binary (symbol names come from primed's /debug/pprof/symbol and /symbolz):
#  - google-pprof --text …/debug/pprof/heap and go tool pprof -top …/debug/heap name primed's
#    own functions while slow streams hold sampled buffers;
#  - a 2 s CPU profile taken while counts run names the sieve's functions;
#  - heap sampling is switched on by the config (re-exec) and off with --heap-sampling false;
#  - cmdline, index, symbol GET, one CPU profile at a time (409), seconds bounds (400).
# Needs tcmalloc: exits 77 on the sanitizer builds (their 501s are checked by
# tests/test_observability.sh).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
[ "${PRIMED_VARIANT:-release}" = release ] || exit 77
. tests/obs_lib.sh
command -v google-pprof >/dev/null || obs_fail "google-pprof not installed (google-perftools)"
GO=$(command -v go || echo /usr/lib/go/bin/go)
[ -x "$GO" ] || obs_fail "go not installed (golang-go)"

# pprof clients keep caches and fetched profiles under HOME / PPROF_TMPDIR: keep them here.
export HOME="$OBS_TMP/home" PPROF_TMPDIR="$OBS_TMP/pprof" GOCACHE="$OBS_TMP/gocache" GOFLAGS=-mod=mod
unset PPROF_BINARY_PATH
mkdir -p "$HOME" "$PPROF_TMPDIR"

obs_start P --workers 2 --heap-sample-bytes 262144
D="http://127.0.0.1:$P_DPORT"

# ---- small endpoints --------------------------------------------------------------------------
[ "$(curl -s "$D/debug/pprof/symbol")" = "num_symbols: 1" ] || obs_fail "symbol GET"
[ "$(curl -s "$D/symbolz")" = "num_symbols: 1" ] || obs_fail "symbolz GET"
curl -s "$D/debug/pprof/cmdline" | tr '\0' '\n' >"$OBS_TMP/cmdline"
[ "$(head -1 "$OBS_TMP/cmdline")" = "$OBS_BIN" ] || obs_fail "cmdline: $(head -1 "$OBS_TMP/cmdline")"
grep -qx -- "--heap-sample-bytes" "$OBS_TMP/cmdline" || obs_fail "cmdline lost the flags after re-exec"
idx=$(curl -s "$D/debug/pprof/")
for l in heap profile symbol cmdline; do grep -q "/debug/pprof/$l" <<<"$idx" || obs_fail "index lacks $l"; done
grep -q '^MALLOC:' <(curl -s "$D/debug/stats") || obs_fail "/debug/stats is not tcmalloc's report"
code=$(curl -s -o /dev/null -w '%{http_code}' "$D/debug/pprof/profile?seconds=0")
[ "$code" = 400 ] || obs_fail "seconds=0 answered $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$D/debug/pprof/profile?seconds=100000")
[ "$code" = 400 ] || obs_fail "seconds=100000 answered $code"
obs_ok "symbol, symbolz, cmdline, index, stats, seconds bounds"

# the re-exec turned sampling on at the configured period
head -1 <(curl -s "$D/debug/pprof/heap") | grep -q '@ heap_v2/262144$' ||
  obs_fail "heap profile is not sampled every 262144 bytes: $(curl -s "$D/debug/pprof/heap" | head -3)"
grep -q '^MAPPED_LIBRARIES:' <(curl -s "$D/debug/pprof/heap") || obs_fail "heap profile lacks MAPPED_LIBRARIES"
[ "$(cat /proc/$P_PID/environ | tr '\0' '\n' | grep -c '^TCMALLOC_SAMPLE_PARAMETER=262144$')" = 1 ] ||
  obs_fail "TCMALLOC_SAMPLE_PARAMETER not in the environment of the running server"
obs_ok "heap sampling on after the re-exec, same pid"

# ---- heap profile of a workload that holds memory -----------------------------------------
# 24 slow clients of a long /v1/primes stream: each stream holds its buffer blocks while the
# client reads at 16 KiB/s. Bounded: curl -m 40.
SLOW=()
for i in $(seq 24); do
  curl -s -m 40 --limit-rate 16k -o /dev/null \
    "http://127.0.0.1:$P_PORT/v1/primes?from=$((i * 1000000000))&to=$((i * 1000000000 + 100000000000))" &
  OBS_PIDS+=($!)
  SLOW+=($!)
done
sleep 3
# names we accept as "primed's own": functions of src/*.c that allocate stream/sieve memory
OWN='\b(stream_[a-z_]+|api_[a-z_]+|pool_[a-z_]+|server_[a-z_]+|sieve_[a-z_]+|router_[a-z_]+|http_response_[a-z_]+|jsonw_[a-z_]+|handle_[a-z_]+)\b'

google-pprof --text "$D/debug/pprof/heap" >"$OBS_TMP/gp.txt" 2>"$OBS_TMP/gp.err"
grep -Eq "$OWN" "$OBS_TMP/gp.txt" ||
  { head -30 "$OBS_TMP/gp.txt" "$OBS_TMP/gp.err" >&2; obs_fail "google-pprof heap: no primed function names"; }
obs_ok "google-pprof --text heap names: $(grep -Eo "$OWN" "$OBS_TMP/gp.txt" | sort -u | head -4 | tr '\n' ' ')"

# -symbolize=remote: names must come from /symbolz, not from reading the binary
"$GO" tool pprof -symbolize=remote -top "$D/debug/heap" >"$OBS_TMP/go.txt" 2>"$OBS_TMP/go.err"
grep -Eq "$OWN" "$OBS_TMP/go.txt" ||
  { head -30 "$OBS_TMP/go.txt" "$OBS_TMP/go.err" >&2; obs_fail "go tool pprof heap: no primed function names"; }
obs_ok "go tool pprof -top heap names: $(grep -Eo "$OWN" "$OBS_TMP/go.txt" | sort -u | head -4 | tr '\n' ' ')"

# ---- CPU profile under counting load ------------------------------------------------------
# the slow streams keep workers busy waiting on their clients: end them first
kill "${SLOW[@]}" 2>/dev/null
wait "${SLOW[@]}" 2>/dev/null
for _ in 1 2; do
  (
    end=$((SECONDS + 15)); n=0
    while [ $SECONDS -lt $end ] && [ $n -lt 200 ]; do
      n=$((n + 1))
      # windows near 1e18 are sieved (π(1e18) would cost more), so the profile shows the sieve
      lo=$((1000000000000000000 + n * 1000000000))
      curl -s -o /dev/null "http://127.0.0.1:$P_PORT/v1/count?from=$lo&to=$((lo + 300000000))"
    done
  ) >/dev/null 2>&1 &
  OBS_PIDS+=($!)
done
sleep 0.5
# a second profile while this one runs is refused
"$GO" tool pprof -symbolize=remote -top "$D/debug/pprof/profile?seconds=2" >"$OBS_TMP/cpu.txt" 2>"$OBS_TMP/cpu.err" &
gopid=$!
sleep 0.7
code=$(curl -s -o /dev/null -w '%{http_code}' "$D/debug/pprof/profile?seconds=1")
wait $gopid || { cat "$OBS_TMP/cpu.err" >&2; obs_fail "go tool pprof CPU profile failed"; }
[ "$code" = 409 ] || obs_fail "a second CPU profile during the first answered $code (want 409)"
grep -Eq '\bsieve_[a-z_]+|\bpresieve_[a-z_]+|\bwheel_[a-z_]+' "$OBS_TMP/cpu.txt" ||
  { head -30 "$OBS_TMP/cpu.txt" "$OBS_TMP/cpu.err" >&2; obs_fail "CPU profile does not name the sieve"; }
obs_ok "CPU profile names: $(grep -Eo '\b(pre)?sieve_[a-z_]+' "$OBS_TMP/cpu.txt" | sort -u | head -4 | tr '\n' ' '); concurrent profile → 409"
# the perl client asks with its own ?seconds= (its URL parser wants the bare profile URL)
google-pprof --seconds=1 --text "$D/debug/pprof/profile" >"$OBS_TMP/gcpu.txt" 2>"$OBS_TMP/gcpu.err"
grep -Eq '\b(pre)?sieve_[a-z_]+|\bcross_[a-z_]+' "$OBS_TMP/gcpu.txt" ||
  { head -20 "$OBS_TMP/gcpu.txt" "$OBS_TMP/gcpu.err" >&2; obs_fail "google-pprof CPU profile does not name the sieve"; }
obs_ok "google-pprof --seconds=1 CPU profile names: $(grep -Eo '\b((pre)?sieve|cross)_[a-z_]+' "$OBS_TMP/gcpu.txt" | sort -u | head -4 | tr '\n' ' ')"
grep -q '"/debug/pprof/profile"' "$OBS_TMP/P.log" || obs_fail "profile requests are not logged"

# ---- sampling off ---------------------------------------------------------------------------
obs_start Q --workers 1 --heap-sampling false
head -1 <(curl -s "http://127.0.0.1:$Q_DPORT/debug/pprof/heap") | grep -q '^%warn' ||
  obs_fail "with --heap-sampling false the heap profile should carry tcmalloc's %warn"
tr '\0' '\n' </proc/$Q_PID/environ | grep -q '^TCMALLOC_SAMPLE_PARAMETER=' &&
  obs_fail "--heap-sampling false still set TCMALLOC_SAMPLE_PARAMETER"
obs_ok "--heap-sampling false: no re-exec, unsampled heap"
obs_stop Q
obs_stop P
obs_ok "both exit 0 on SIGTERM"

# ---- SIGTERM during a long CPU profile: the profile ends with what it has, no 30 s drain ----
obs_start R --workers 1 --heap-sampling false
curl -s -o "$OBS_TMP/cut.prof" -w '%{http_code}' "http://127.0.0.1:$R_DPORT/debug/pprof/profile?seconds=30" \
  >"$OBS_TMP/cut.code" &
cpid=$!
OBS_PIDS+=("$cpid")
sleep 1
t0=$SECONDS
obs_stop R
wait $cpid
[ $((SECONDS - t0)) -le 5 ] || obs_fail "SIGTERM during a CPU profile took $((SECONDS - t0)) s"
[ "$(cat "$OBS_TMP/cut.code")" = 200 ] && [ -s "$OBS_TMP/cut.prof" ] ||
  obs_fail "the cut-short profile was not delivered ($(cat "$OBS_TMP/cut.code"))"
obs_ok "SIGTERM ends a running CPU profile at once; the client gets it"
exit 0
