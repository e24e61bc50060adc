#!/usr/bin/env bash
# trace-view.sh — open a /debug/pprof/trace capture in a real viewer: speedscope (npm) in headless
# Chromium (Debian's `chromium`), check that it imports without an error, and take a screenshot.
#   scripts/trace-view.sh [TRACE.json] [SHOT.png]
# Without TRACE.json it makes one: primed with 2 workers, a 2 s capture during which both workers
# are busy with π(1e13)s and a cheap count (X-Request-Id: slow-count) queues behind them — the
# runbook's "a request was slow" (docs/observability.md) — and prints that request's phases.
# TRACE_KEEP=FILE keeps the capture it made. Not part of `make test` (it needs npm and Chromium): run by hand. speedscope is installed once
# under $SPEEDSCOPE_PREFIX (default ~/.cache/primed-speedscope, outside the repository). The
# capture is served on 127.0.0.1 only; every process started here is stopped at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build}
PRIMED_BIN=$PWD/$B/primed
. scripts/lib.sh
TRACE=${1:-}
SHOT=${2:-$LIB_TMP/trace.png}
PREFIX=${SPEEDSCOPE_PREFIX:-$HOME/.cache/primed-speedscope}
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || lib_fail "no chromium (apt-get install chromium)"
if [ ! -f "$PREFIX/node_modules/speedscope/dist/release/index.html" ]; then
  command -v npm >/dev/null || lib_fail "no npm (apt-get install npm)"
  npm install --prefix "$PREFIX" --no-audit --no-fund speedscope >/dev/null
fi

if [ -z "$TRACE" ]; then
  TRACE=$LIB_TMP/trace.json
  primed_start P --workers 2 --log-level warn --request-timeout-ms 60000
  curl -s --max-time 60 -o "$TRACE" "http://127.0.0.1:$P_DPORT/debug/pprof/trace?seconds=2" &
  cap=$!
  sleep 0.2
  pis=()
  for i in 1 2 3 4; do # π(1e13): a few hundred ms of both workers each
    curl -s --max-time 60 -o /dev/null -H "X-Request-Id: pi-$i" \
      "$P_URL/v1/pi?x=$((10000000000000 + i))" &
    pis+=($!)
  done
  sleep 0.1
  curl -s --max-time 60 -o /dev/null -w "slow-count: %{http_code} in %{time_total} s\n" \
    -H "X-Request-Id: slow-count" "$P_URL/v1/count?from=1&to=1000000"
  wait "$cap" "${pis[@]}" # not bare `wait`: primed is a child of this shell too
  primed_stop P
  python3 - "$TRACE" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
evs = d["traceEvents"]
names = {e["tid"]: e["args"]["name"] for e in evs if e["ph"] == "M" and e["name"] == "thread_name"}
req = [e for e in evs if e["ph"] == "b" and e["name"] == "request"
       and e.get("args", {}).get("request_id") == "slow-count"][0]
mine = [e for e in evs if e["ph"] in "ben" and e.get("id") == req["id"]]
opened = {}
print("slow-count (%s):" % json.dumps(req["args"]))
for e in mine:
    if e["ph"] == "b":
        opened[e["name"]] = e["ts"]
    elif e["ph"] == "e" and e["name"] != "request":
        print("  %-10s %9.3f ms" % (e["name"], (e["ts"] - opened[e["name"]]) / 1000))
print("  %-10s %9.3f ms" % ("total", ([e["ts"] for e in mine if e["ph"] == "e"][-1] - req["ts"]) / 1000))
run = [e for e in evs if e["ph"] == "X" and e.get("args", {}).get("request_id") == "slow-count"
       and e["name"].startswith("running")]
for e in run:
    print("  ran on %s for %.3f ms" % (names.get(e["tid"], e["tid"]), e["dur"] / 1000))
q = [e for e in mine if e["name"] == "queued"]
if len(q) == 2:
    for c in ("queue depth", "busy workers"):
        v = [e["args"]["value"] for e in evs if e["ph"] == "C" and e["name"] == c
             and q[0]["ts"] <= e["ts"] <= q[1]["ts"]]
        print("  while queued: %s %s..%s (%d samples)" % (c, min(v), max(v), len(v)))
PY
  [ -z "${TRACE_KEEP:-}" ] || cp "$TRACE" "$TRACE_KEEP"
fi

# Serve speedscope and the capture from one origin (speedscope fetches #profileURL=).
WEB=$LIB_TMP/web
mkdir -p "$WEB"
cp -r "$PREFIX/node_modules/speedscope/dist/release/." "$WEB/"
cp "$TRACE" "$WEB/trace.json"
lib_spawn WEB python3 -c '
import http.server, os, socketserver, sys
os.chdir(sys.argv[1])
class Q(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
s = socketserver.TCPServer(("127.0.0.1", 0), Q)
open(sys.argv[2] + ".tmp", "w").write("%d\n" % s.server_address[1])
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
s.serve_forever()' "$WEB" "$LIB_TMP/web.port"
for _ in $(seq 100); do [ -s "$LIB_TMP/web.port" ] && break; sleep 0.05; done
port=$(cat "$LIB_TMP/web.port")
URL="http://127.0.0.1:$port/index.html#profileURL=http://127.0.0.1:$port/trace.json&title=primed-trace"
chrome() { timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --virtual-time-budget=15000 --enable-logging=stderr --log-level=0 "$@" "$URL"; }

chrome --dump-dom > "$LIB_TMP/dom.html" 2> "$LIB_TMP/console.log" || true
grep -o 'CONSOLE[^"]*"[^"]*"' "$LIB_TMP/console.log" | sed 's/^[^"]*//' > "$LIB_TMP/console.txt" || true
grep -q '"Importing as Trace Event Format profile"' "$LIB_TMP/console.txt" ||
  lib_fail "speedscope did not import it as a trace: $(head -c 600 "$LIB_TMP/console.txt")"
if grep -Eiq 'error|failed|exception|could not' "$LIB_TMP/console.txt"; then
  lib_fail "speedscope reported: $(grep -Ei 'error|failed|exception|could not' "$LIB_TMP/console.txt" | head -3)"
fi
grep -q 'Time Order' "$LIB_TMP/dom.html" || lib_fail "speedscope shows no profile (an import error)"
profiles=$(grep -o '([0-9]*/[0-9]*)' "$LIB_TMP/dom.html" | head -1)
lib_ok "speedscope imported $(basename "$TRACE") without an error: $profiles thread profiles"

chrome --window-size=1400,420 --screenshot="$SHOT" 2>/dev/null || true
[ -s "$SHOT" ] || lib_fail "no screenshot"
lib_ok "screenshot: $SHOT ($(stat -c %s "$SHOT") bytes)"
