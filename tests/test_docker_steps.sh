#!/usr/bin/env bash
# test_docker_steps.sh — the Dockerfile's steps work, without a Docker engine.
#
# 1. Lints the Dockerfile: multi-stage bookworm → bookworm-slim, every RUN line is exactly a call
#    of scripts/docker-steps.sh (so the steps cannot drift from what this test runs), non-root
#    USER with the uid the script creates, EXPOSE matching PRIMED_LISTEN, curl HEALTHCHECK on
#    /healthz, STOPSIGNAL SIGTERM. The lint is also run on broken copies, which must fail.
# 2. Runs `docker-steps.sh build` into a temporary DESTDIR and `docker-steps.sh runtime` on that
#    tree in check mode (no user is created, nothing outside the temp dir changes): the binary is
#    built and installed, its libraries all come from the runtime package list, and it starts
#    with the image's ENV, answers /healthz and drains on SIGTERM.
# The image is a release build, so this applies to the release variant only (77 elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
if [ "${PRIMED_VARIANT:-release}" != release ]; then
  echo "the image is the release build; nothing here depends on $PRIMED_VARIANT"
  exit 77
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0
ok()  { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }

# lint_dockerfile FILE: prints problems, returns 1 if any.
lint_dockerfile() {
  local f=$1 errs=() uid
  # Join continuation lines so a RUN cannot hide a second command on the next line.
  local joined
  joined=$(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$f" | grep -v '^[[:space:]]*#')
  local runs
  runs=$(grep -E '^[[:space:]]*RUN' <<<"$joined" || true)
  [ "$(grep -c . <<<"$runs")" -ge 2 ] || errs+=("expected a RUN per stage")
  while IFS= read -r line; do
    [ -z "$line" ] && continue
    if ! grep -Eq '^RUN (scripts|/opt/primed/scripts)/docker-steps\.sh (build|runtime)$' <<<"$line"; then
      errs+=("RUN line does more than call docker-steps.sh: $line")
    fi
  done <<<"$runs"
  # Each stage runs its own step: build after FROM debian:bookworm, runtime after the slim FROM.
  local order
  order=$(grep -Eo '^(FROM [^ ]+ AS [a-z]+|RUN .*docker-steps\.sh [a-z]+)' <<<"$joined" |
          sed -E 's/^FROM ([^ ]+) AS ([a-z]+)/\1:\2/; s/^RUN .*docker-steps\.sh /run:/' | tr '\n' ' ')
  [ "$order" = "debian:bookworm:build run:build debian:bookworm-slim:runtime run:runtime " ] ||
    errs+=("stages/steps are not [bookworm build → run build, bookworm-slim runtime → run runtime]: $order")
  uid=$(sed -n 's/^primed_uid=\([0-9]*\)$/\1/p' scripts/docker-steps.sh)
  grep -Eq "^USER ${uid}(:${uid})?$" <<<"$joined" || errs+=("USER must be the image user's uid $uid")
  grep -Eq '^USER (0|root)' <<<"$joined" && errs+=("USER root")
  local lport
  lport=$(grep -Eo 'PRIMED_LISTEN=[^ ]+' <<<"$joined" | head -n 1 | sed 's/.*://')
  [ -n "$lport" ] || errs+=("no ENV PRIMED_LISTEN")
  grep -Eq "^EXPOSE ${lport:-none}$" <<<"$joined" || errs+=("EXPOSE does not match PRIMED_LISTEN port ${lport:-?}")
  grep -Eq '^HEALTHCHECK .*CMD curl .*/healthz' <<<"$joined" || errs+=("HEALTHCHECK must curl /healthz")
  grep -Eq '^STOPSIGNAL SIGTERM$' <<<"$joined" || errs+=("STOPSIGNAL SIGTERM missing")
  grep -Eq '^ARG DOCKER_STEPS_MODE=apply$' <<<"$joined" || errs+=("ARG DOCKER_STEPS_MODE=apply missing")
  grep -Eq '^ENTRYPOINT \["/usr/local/bin/primed"\]$' <<<"$joined" || errs+=("ENTRYPOINT must be the installed primed")
  if [ ${#errs[@]} -gt 0 ]; then printf '  %s\n' "${errs[@]}"; return 1; fi
}

if out=$(lint_dockerfile Dockerfile); then ok "Dockerfile lint"; else bad "Dockerfile lint:"; echo "$out"; fi

# The lint must catch drift: each broken copy has to fail.
lint_must_reject() { # name, sed expression
  sed "$2" Dockerfile > "$TMP/Dockerfile.bad"
  if cmp -s Dockerfile "$TMP/Dockerfile.bad"; then bad "mutation $1 changed nothing"; return; fi
  if lint_dockerfile "$TMP/Dockerfile.bad" >/dev/null; then bad "lint accepted: $1"; else ok "lint rejects: $1"; fi
}
lint_must_reject extra_apt_get_in_run   's#^RUN scripts/docker-steps.sh build#RUN apt-get update \&\& scripts/docker-steps.sh build#'
lint_must_reject hidden_continuation    's#^RUN scripts/docker-steps.sh build#RUN scripts/docker-steps.sh build \\\n  \&\& rm -rf /tmp#'
lint_must_reject runs_as_root           's#^USER .*#USER root#'
lint_must_reject wrong_stage_step       's#docker-steps.sh runtime#docker-steps.sh build#'
lint_must_reject exposes_other_port     's#^EXPOSE 8080#EXPOSE 9090#'

# Host state that check mode must not touch.
before_user=$(getent passwd primed || true)

# 2a. build stage: same make as the image, reusing this suite's object dir (up to date after
#     `make`), installing into a temp DESTDIR.
bdir=${PRIMED_BUILD:-$ROOT/build}; bdir=${bdir#"$ROOT"/}
if DOCKER_STEPS_MODE=check DOCKER_STEPS_DESTDIR="$TMP/out" DOCKER_STEPS_BUILD_DIR="$bdir" \
     bash scripts/docker-steps.sh build >"$TMP/build.log" 2>&1; then
  ok "docker-steps.sh build"
else
  bad "docker-steps.sh build:"; tail -n 20 "$TMP/build.log"
fi
[ -x "$TMP/out/usr/local/bin/primed" ] && ok "staged /usr/local/bin/primed" || bad "no staged binary"
[ -f "$TMP/out/usr/local/share/doc/primed/deployment.md" ] && ok "staged deployment.md" || bad "no staged docs"
leftover=$(find "$TMP/out" -type f | sed "s#^$TMP/out##" | grep -Ev '^/usr/local/(bin/primed|share/doc/primed/)|^/etc/primed/' || true)
[ -z "$leftover" ] && ok "staging tree holds only the product" || bad "unexpected staged files: $leftover"

# 2b. runtime stage on the staged tree, with the image's ENV.
mapfile -t img_env < <(sed -n 's/^ENV //p' Dockerfile | tr ' ' '\n' | grep '^PRIMED_')
if env "${img_env[@]}" DOCKER_STEPS_MODE=check DOCKER_STEPS_ROOT="$TMP/out" \
     bash scripts/docker-steps.sh runtime >"$TMP/runtime.log" 2>&1; then
  ok "docker-steps.sh runtime (libs in runtime package closure, smoke test with image ENV)"
else
  bad "docker-steps.sh runtime:"; tail -n 20 "$TMP/runtime.log"
fi

# 2c. The runtime check must notice a library the runtime packages do not provide: give it a
#     binary linked against libprimesieve (a test-only package, the oracle of the sieve tests).
lib=$(ls /usr/lib/*/libprimesieve.so.* 2>/dev/null | head -n 1 || true)
if [ -z "$lib" ]; then
  bad "libprimesieve not installed (primesieve, scripts/install-deps.sh): cannot probe the closure check"
else
  mkdir -p "$TMP/bad/usr/local/bin"
  printf 'extern unsigned long primesieve_count_primes(unsigned long, unsigned long);\nint main(void) { return (int)primesieve_count_primes(0, 10) - 4; }\n' >"$TMP/bad.c"
  if gcc -o "$TMP/bad/usr/local/bin/primed" "$TMP/bad.c" -Wl,--no-as-needed "$lib" 2>"$TMP/cc.log"; then
    if DOCKER_STEPS_MODE=check DOCKER_STEPS_ROOT="$TMP/bad" bash scripts/docker-steps.sh runtime \
         >"$TMP/bad.log" 2>&1; then
      bad "runtime stage accepted a binary needing libprimesieve"
    elif grep -q 'PRIMED_DEPS=runtime does not install' "$TMP/bad.log"; then
      ok "runtime stage rejects a library outside the runtime packages"
    else
      bad "runtime stage failed on the libprimesieve probe for another reason:"; tail -n 5 "$TMP/bad.log"
    fi
  else
    bad "could not compile the libprimesieve probe: $(cat "$TMP/cc.log")"
  fi
fi

after_user=$(getent passwd primed || true)
[ "$before_user" = "$after_user" ] && ok "check mode left the host's users alone" || bad "check mode changed user primed"

exit $fail
