#!/usr/bin/env bash
# test_port_file.sh — --port-file never follows a planted symlink and is never world-writable.
#
# The port file is written by the service at startup, often into a shared directory. It used to
# be written to PATH.tmp with fopen("w") (issue 11, defect 6): a symlink planted at PATH.tmp made
# the service overwrite the link's target with its own privileges, and under umask 000 the file
# was world-writable. Here, under umask 000, with symlinks planted at PATH.tmp and at PATH itself:
# both targets keep their content, PATH becomes a regular file of mode 0644 holding
# "main_port debug_port", no temporary file is left behind, and SIGTERM still exits 0.
# Bounded: startup ≤ 10 s (30 s for sanitizer builds), stop ≤ 15 s.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${PRIMED_BIN:-$PWD/build/primed}
[ -x "$BIN" ] || { echo "FAIL no primed binary at $BIN"; exit 1; }
slow=1
case "${PRIMED_VARIANT:-release}" in asan|tsan) slow=3 ;; esac

TMP=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
fail=0
ok()  { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }

echo precious-1 >"$TMP/victim1"
echo precious-2 >"$TMP/victim2"
chmod 0600 "$TMP/victim1" "$TMP/victim2"
ln -s "$TMP/victim1" "$TMP/ports.tmp"
ln -s "$TMP/victim2" "$TMP/ports"

(umask 000; exec "$BIN" --listen 127.0.0.1:0 --debug-listen 127.0.0.1:0 --port-file "$TMP/ports" \
   --log-level warn) 2>"$TMP/stderr.log" &
pid=$!
for _ in $(seq $((100 * slow))); do
  [ -f "$TMP/ports" ] && [ ! -L "$TMP/ports" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done

[ "$(cat "$TMP/victim1")" = precious-1 ] && ok "symlink at PATH.tmp not followed" \
  || bad "the target of the symlink at PATH.tmp was overwritten: $(head -c 40 "$TMP/victim1")"
[ "$(cat "$TMP/victim2")" = precious-2 ] && ok "symlink at PATH not followed" \
  || bad "the target of the symlink at PATH was overwritten: $(head -c 40 "$TMP/victim2")"
if [ -f "$TMP/ports" ] && [ ! -L "$TMP/ports" ]; then
  mode=$(stat -c %a "$TMP/ports")
  [ "$mode" = 644 ] && ok "port file is a regular file, mode 0644 under umask 000" \
    || bad "port file mode $mode under umask 000 (want 644)"
  if read -r mp dp <"$TMP/ports" && [ "${mp:-0}" -gt 0 ] && [ "${dp:-0}" -gt 0 ]; then
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$mp/healthz")
    [ "$code" = 200 ] && ok "port file names the main port ($mp): /healthz 200" \
      || bad "port file says $mp, /healthz there: $code"
  else
    bad "port file content: $(head -c 40 "$TMP/ports")"
  fi
else
  bad "no regular port file written within $((10 * slow)) s:"; tail -n 5 "$TMP/stderr.log"
fi
left=$(find "$TMP" -maxdepth 1 -name 'ports.*' ! -name ports.tmp | wc -l)
[ "$left" = 0 ] && ok "no temporary file left" || bad "$left temporary files left: $(ls "$TMP")"

kill -TERM "$pid" 2>/dev/null
rc=""
for _ in $(seq $((150 * slow))); do
  kill -0 "$pid" 2>/dev/null || { wait "$pid"; rc=$?; break; }
  sleep 0.1
done
[ "$rc" = 0 ] && ok "SIGTERM: exit 0" || bad "after SIGTERM: exit ${rc:-still running}"
[ -z "$rc" ] || pid=""
exit $fail
