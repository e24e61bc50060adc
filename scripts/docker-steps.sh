#!/usr/bin/env bash
# docker-steps.sh — every RUN step of the Dockerfile, as one script the test suite can run here.
#
# There is no Docker engine on the build machines, so the Dockerfile's RUN lines do nothing but
# call this script (`RUN scripts/docker-steps.sh build`, `RUN …/docker-steps.sh runtime`) and
# tests/test_docker_steps.sh runs the same stages outside a container and greps the Dockerfile so
# the two cannot drift. The script must never change the host outside its staging directory
# unless DOCKER_STEPS_MODE=apply, which only the Dockerfile sets (as root, inside a build).
#
# Usage: docker-steps.sh build|runtime
#   DOCKER_STEPS_MODE      check (default) | apply: apply also creates the primed user and drops
#                          the apt lists; check only proves those steps could run.
#   DOCKER_STEPS_DESTDIR   build: staging root the runtime stage copies to / (default /out)
#   DOCKER_STEPS_ROOT      runtime: root the staging tree was copied to (default /)
#   DOCKER_STEPS_BUILD_DIR build: make's object dir (default build/image: never a host build/
#                          that slipped into the build context)
#   DOCKER_STEPS_PREFIX          install prefix (default /usr/local)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
mode=${DOCKER_STEPS_MODE:-check}
prefix=${DOCKER_STEPS_PREFIX:-/usr/local}
# The image's user. configs/k8s/deployment.yaml runs as this uid (checked by
# tests/test_deploy_configs.sh): a fixed uid lets runAsNonRoot verify it without /etc/passwd.
primed_uid=10001
primed_user=primed

say() { echo "docker-steps: $*" >&2; }
die() { say "error: $*"; exit 1; }

case "$mode" in
  apply) [ "$(id -u)" -eq 0 ] || die "DOCKER_STEPS_MODE=apply needs root (it runs in a docker build)" ;;
  check) ;;
  *) die "DOCKER_STEPS_MODE must be check or apply" ;;
esac

# The shared library every ELF dependency of $1 resolves to must exist ("not found" means the
# stage lacks a runtime package).
check_libs_resolve() {
  local bin=$1 out
  out=$(ldd "$bin") || die "ldd $bin failed"
  if grep -q 'not found' <<<"$out"; then
    say "$bin has unresolved libraries:"; grep 'not found' <<<"$out" >&2
    exit 1
  fi
}

# Every library the binary loads must come from a package that PRIMED_DEPS=runtime installs or
# pulls in (or an Essential package, present in every Debian image). On a full development host
# ldd finds everything, so this is what proves — without Docker — that the slim stage's package
# list is enough.
check_libs_in_runtime_closure() {
  local bin=$1 pkgs closure lib owner missing=0
  pkgs=$(sed -n 's/^runtime_pkgs=(\(.*\))$/\1/p' "$here/install-deps.sh")
  [ -n "$pkgs" ] || die "cannot read runtime_pkgs from install-deps.sh"
  # shellcheck disable=SC2086 # word splitting of the package list is intended
  closure=$( { apt-cache depends --recurse --installed --no-recommends --no-suggests \
                 --no-conflicts --no-breaks --no-replaces --no-enhances $pkgs | grep -v '^ ';
               dpkg-query -W -f='${Package} ${Essential}\n' | awk '$2 == "yes" { print $1 }'; } |
             sed 's/:.*//' | sort -u)
  for lib in $(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
    owner=""
    for cand in "$lib" "${lib/#\/usr\/lib\//\/lib\/}" "${lib/#\/lib\//\/usr\/lib\/}" \
                "$(readlink -f "$lib")"; do
      owner=$(dpkg-query -S "$cand" 2>/dev/null | head -n 1 | cut -d: -f1) && [ -n "$owner" ] && break
    done
    if [ -z "$owner" ]; then
      say "no package owns $lib"; missing=1
    elif ! grep -qx "$owner" <<<"$closure"; then
      say "$lib comes from $owner, which PRIMED_DEPS=runtime does not install"; missing=1
    fi
  done
  [ $missing -eq 0 ] || die "the runtime stage would miss libraries (add them to runtime_pkgs)"
}

# Start the installed binary with the current PRIMED_* environment, but on an ephemeral loopback
# port with the debug listener off (scripts/lib.sh's flags override the environment); require
# /healthz 200 and exit 0 after SIGTERM (drain).
# $1: binary, $2…: command prefix to run it as another user (may be empty).
smoke_test() {
  local bin=$1 code
  shift
  . "$here/lib.sh"
  chmod 0777 "$LIB_TMP" # the primed user writes its port file here in apply mode
  PRIMED_BIN=$bin LIB_WRAP=("$@")
  primed_try_start SMOKE --debug-listen off || die "primed did not start (its log is above)"
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$SMOKE_URL/healthz" || true)
  primed_stop SMOKE 15 || true
  if [ "$code" != 200 ] || [ "$SMOKE_RC" -ne 0 ]; then
    say "smoke test failed: /healthz $code, exit $SMOKE_RC"; cat "$SMOKE_LOG" >&2; exit 1
  fi
  say "smoke test ok: /healthz 200, SIGTERM → exit 0"
}

stage_build() {
  local src destdir bdir jobs
  src=$(cd "$here/.." && pwd)
  destdir=${DOCKER_STEPS_DESTDIR:-/out}
  bdir=${DOCKER_STEPS_BUILD_DIR:-build/image}
  jobs=$(nproc 2>/dev/null || echo 2)
  cd "$src"
  PRIMED_DEPS=build bash "$here/install-deps.sh"
  # The product build (release, tcmalloc) — only the binary: tests run in CI, not in the image.
  make -j"$jobs" B="$bdir" "$bdir/primed"
  check_libs_resolve "$bdir/primed"
  # Not stripped: the pprof symbol endpoint and crash backtraces need the symbols.
  install -D -m 0755 "$bdir/primed" "$destdir$prefix/bin/primed"
  if [ -f configs/primed.json ]; then
    install -D -m 0644 configs/primed.json "$destdir/etc/primed/primed.json"
  fi
  install -D -m 0644 docs/deployment.md "$destdir$prefix/share/doc/primed/deployment.md"
  smoke_test "$destdir$prefix/bin/primed"
  say "build stage done: $destdir$prefix/bin/primed"
}

stage_runtime() {
  local root bin
  root=${DOCKER_STEPS_ROOT:-/}
  bin="${root%/}$prefix/bin/primed"
  [ -x "$bin" ] || die "$bin missing: COPY the build stage's staging tree first"
  PRIMED_DEPS=runtime bash "$here/install-deps.sh"
  check_libs_resolve "$bin"
  check_libs_in_runtime_closure "$bin"
  command -v useradd >/dev/null || die "useradd missing (package passwd)"
  command -v setpriv >/dev/null || die "setpriv missing (package util-linux)"
  if [ "$mode" = apply ]; then
    # The group first, with the same fixed id: `useradd --system --user-group` picks the next
    # free system gid (999 on a fresh image), so USER 10001:10001 ran under a nameless group.
    getent group "$primed_user" >/dev/null || groupadd --system --gid "$primed_uid" "$primed_user"
    if ! getent passwd "$primed_user" >/dev/null; then
      # System user: no home, no login shell, no password; fixed uid (see primed_uid).
      useradd --system --uid "$primed_uid" --gid "$primed_uid" --no-create-home \
              --home-dir /nonexistent --shell /usr/sbin/nologin "$primed_user"
    fi
    [ "$(id -u "$primed_user")" -eq "$primed_uid" ] || die "user $primed_user has the wrong uid"
    [ "$(id -g "$primed_user")" -eq "$primed_uid" ] || die "user $primed_user has the wrong gid"
    [ "$(getent group "$primed_uid" | cut -d: -f1)" = "$primed_user" ] ||
      die "gid $primed_uid is not the group $primed_user"
    # The image carries no package index: it is stale at once and 20 MB.
    apt-get clean
    rm -rf /var/lib/apt/lists/*
    smoke_test "$bin" setpriv --reuid="$primed_uid" --regid="$primed_uid" --clear-groups
  else
    say "check mode: would create group and system user $primed_user (uid = gid = $primed_uid) and drop apt lists"
    if getent passwd "$primed_uid" >/dev/null &&
       [ "$(getent passwd "$primed_uid" | cut -d: -f1)" != "$primed_user" ]; then
      say "note: uid $primed_uid is taken by another user on this host (irrelevant in the image)"
    fi
    smoke_test "$bin"
  fi
  say "runtime stage done"
}

case "${1:-}" in
  build) stage_build ;;
  runtime) stage_runtime ;;
  *) echo "usage: $0 build|runtime" >&2; exit 2 ;;
esac
