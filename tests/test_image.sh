#!/usr/bin/env bash
# test_image.sh — the real container image, built and run with podman (`make test-image`).
#
# Builds the image (scripts/image.sh: local mmdebstrap bases when missing, then `podman build
# --format docker` of the unchanged Dockerfile) and runs it the hardened way: host network on a
# free loopback port, --read-only, --cap-drop ALL, --memory 256m. Checks:
#   /healthz 200; a count equal to primesieve's; `id` inside is uid=10001(primed)
#   gid=10001(primed); `podman healthcheck run` (the Dockerfile's HEALTHCHECK; no systemd runs it
#   here) says healthy; primed logs and exports the 256 MiB cgroup limit and derives its stream
#   budget from it (at most half); `podman stop -t 30` during a long streamed answer lets that
#   answer finish whole (200, the complete body) and the container exits 0.
# Not in `make test` (it needs podman, root and ~1-2 min, more on the first run that makes the
# bases): run-tests.sh sees it as not applicable unless PRIMED_TEST_IMAGE=1 (make test-image).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${PRIMED_TEST_IMAGE:-0}" != 1 ]; then
  echo "the container image test runs under make test-image (PRIMED_TEST_IMAGE=1)"
  exit 77
fi
IMAGE=${PRIMED_IMAGE:-localhost/primed:latest}
NAME=primed-test-$$
TMP=$(mktemp -d)
fail=0
ok()  { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] || [ "$hard" -gt 65536 ] && hard=65536
# runc, not crun (hybrid cgroups); limits this VM allows (podman's defaults ask for more).
PODMAN=(podman --runtime runc)
LIMITS=(--ulimit "nofile=$hard:$hard" --ulimit nproc=4096:4096)
cleanup() {
  "${PODMAN[@]}" rm -f -t 0 "$NAME" >/dev/null 2>&1
  rm -rf "$TMP"
}
trap cleanup EXIT

t0=$SECONDS
PRIMED_IMAGE=$IMAGE bash scripts/image.sh || { echo "FAIL make image"; exit 1; }
size=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE")
ok "image $IMAGE: $((size / 1000000)) MB ($size bytes), ready in $((SECONDS - t0)) s"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$port
"${PODMAN[@]}" run -d --name "$NAME" --network host "${LIMITS[@]}" --read-only --cap-drop ALL \
  --memory 256m -e PRIMED_LISTEN="127.0.0.1:$port" -e PRIMED_DEBUG_LISTEN=off \
  "$IMAGE" >/dev/null 2>"$TMP/run.err" || { cat "$TMP/run.err"; echo "FAIL podman run"; exit 1; }
# (podman's complaint that no systemd can schedule the HEALTHCHECK is expected here: run.err)
up=0
for _ in $(seq 1 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$URL/healthz")" = 200 ] && { up=1; break; }
  [ "$("${PODMAN[@]}" inspect --format '{{.State.Running}}' "$NAME")" = true ] || break
  sleep 0.2
done
if [ $up -ne 1 ]; then
  "${PODMAN[@]}" logs "$NAME" 2>&1 | tail -20
  echo "FAIL the container did not answer /healthz"
  exit 1
fi
ok "/healthz 200 from the container (--read-only --cap-drop ALL --memory 256m, port $port)"

# a count against primesieve
got=$(curl -s --max-time 30 "$URL/v1/count?from=1000000000&to=1100000000" |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["count"])')
want=$(primesieve 1000000000 1100000000 -c -q)
[ -n "$got" ] && [ "$got" = "$want" ] && ok "count [1e9, 1.1e9] = $got, as primesieve" ||
  bad "count [1e9, 1.1e9]: primed $got, primesieve $want"

# the user and group
id=$("${PODMAN[@]}" exec "$NAME" id 2>&1)
case $id in
  "uid=10001(primed) gid=10001(primed)"*) ok "id inside: $id" ;;
  *) bad "id inside: $id (want uid=10001(primed) gid=10001(primed))" ;;
esac

# the Dockerfile's HEALTHCHECK, run by hand
if "${PODMAN[@]}" healthcheck run "$NAME" >"$TMP/hc" 2>&1; then
  st=$("${PODMAN[@]}" inspect --format '{{.State.Health.Status}}' "$NAME" 2>/dev/null ||
       "${PODMAN[@]}" inspect --format '{{.State.Healthcheck.Status}}' "$NAME")
  [ "$st" = healthy ] && ok "podman healthcheck run: $st" || bad "health status '$st' after a passing check"
else
  bad "podman healthcheck run: $(cat "$TMP/hc")"
fi

# the memory limit: logged, exported, and the budget taken from it
limit=$((256 * 1024 * 1024))
"${PODMAN[@]}" logs "$NAME" >"$TMP/log" 2>&1
grep '"event":"memory_limit"' "$TMP/log" | grep -q "\"limit_bytes\":\"\?$limit\"\?" &&
  grep '"event":"memory_limit"' "$TMP/log" | grep -q '"source":"cgroup"' &&
  ok "log: memory_limit $limit bytes from the cgroup" ||
  bad "no memory_limit log line with $limit from the cgroup: $(grep memory_ "$TMP/log" | head -3)"
curl -s --max-time 10 "$URL/metrics" >"$TMP/metrics"
metric() { awk -v n="$1" '$1 == n { print $2 }' "$TMP/metrics"; }
cg=$(metric primed_cgroup_memory_limit_bytes)
ml=$(metric primed_memory_limit_bytes)
budget=$(metric primed_memory_budget_bytes)
python3 -c "import sys; cg, ml, b, l = (float(x) for x in sys.argv[1:]); sys.exit(not (cg == ml == l and 0 < b <= l / 2))" \
  "${cg:-0}" "${ml:-0}" "${budget:-0}" "$limit" &&
  ok "metrics: primed_cgroup_memory_limit_bytes = primed_memory_limit_bytes = $cg, primed_memory_budget_bytes = $budget (at most half)" ||
  bad "metrics: cgroup limit ${cg:-none}, memory limit ${ml:-none}, budget ${budget:-none} (limit $limit)"
grep '"event":"memory_budget' "$TMP/log" | head -1 | grep -q "\"bytes\":\"\?${budget%.*}\"\?" &&
  ok "log: the memory budget line names the exported budget" ||
  bad "no memory_budget log line with ${budget:-?} bytes: $(grep memory_budget "$TMP/log" | head -2)"

# podman stop during a long answer: the answer finishes, the container exits 0
# A reader at 25 MB/s takes ~4 s over the ~100 MB of primes to 2e8, whatever the CPU: the answer
# is surely in flight when the stop comes 1 s in.
curl -s --max-time 60 --limit-rate 25M -o "$TMP/primes" -w '%{http_code}' \
  "$URL/v1/primes?from=0&to=200000000&format=text" >"$TMP/code" 2>/dev/null &
cpid=$!
sleep 1
kill -0 $cpid 2>/dev/null && ok "the answer is in flight when podman stop is sent" ||
  bad "the answer finished before the stop: nothing was drained"
stop_t0=$SECONDS
"${PODMAN[@]}" stop -t 30 "$NAME" >/dev/null 2>&1
wait $cpid
code=$(cat "$TMP/code")
lines=$(wc -l <"$TMP/primes")
last=$(tail -n 1 "$TMP/primes")
rc=$("${PODMAN[@]}" inspect --format '{{.State.ExitCode}}' "$NAME")
want_n=$(primesieve 200000000 -c -q)
want_last=$(primesieve 199999000 200000000 -p | tail -n 1)
[ "$code" = 200 ] && [ "$lines" = "$want_n" ] && [ "$last" = "$want_last" ] &&
  ok "podman stop -t 30 during /v1/primes to 2e8: 200, all $lines primes, last $last (as primesieve)" ||
  bad "the answer in flight during stop: $code, $lines lines (want $want_n), last '$last' (want $want_last)"
[ "$rc" = 0 ] && ok "the container exited 0, $((SECONDS - stop_t0)) s after podman stop" ||
  bad "the container exited $rc after podman stop"

echo "test_image: $((SECONDS - t0)) s"
[ $fail -eq 0 ] && echo "test_image: all checks passed"
exit $fail
