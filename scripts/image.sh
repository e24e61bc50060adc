#!/usr/bin/env bash
# image.sh — `make image`: the container image from the unchanged Dockerfile, built with podman.
#
# No registry is reachable from these machines, so `FROM debian:bookworm` and
# `FROM debian:bookworm-slim` must exist locally first: when missing, they are made with
# mmdebstrap from the Debian archive this machine's apt already uses (read from
# /etc/apt/sources.list* at run time; no host name lives in the repository) and imported. When
# they exist this step is silent. Then `podman build --format docker` (the OCI format drops
# HEALTHCHECK). Elsewhere, `docker build -t primed .` builds the same Dockerfile from Docker Hub's
# bases (docs/deployment.md).
#
# Usage: scripts/image.sh [bases|build]   (default: both)
# Environment: PRIMED_IMAGE (default localhost/primed:latest), PRIMED_IMAGE_NOFILE (the open-file
# limit given to build and run containers, default: this shell's hard limit, at most 65536).
# Quirks of these machines, handled here and in tests/test_image.sh through podman_cmd:
#   - crun refuses the hybrid cgroup layout: --runtime runc;
#   - rootful podman asks for 1,048,576 open files and the VM allows fewer: --ulimit nofile=N.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${PRIMED_IMAGE:-localhost/primed:latest}
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] || [ "$hard" -gt 65536 ] && hard=65536
NOFILE=${PRIMED_IMAGE_NOFILE:-$hard}
PODMAN=(podman --runtime runc)

say() { echo "image: $*" >&2; }
die() { say "error: $*"; exit 1; }

command -v podman >/dev/null && command -v mmdebstrap >/dev/null ||
  die "podman and mmdebstrap are missing: run scripts/install-deps.sh --image"

# The first URL of a `deb` source for the suite bookworm (not -security/-updates), from the
# one-line .list files or the deb822 .sources files.
archive_url() {
  local f url
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    url=$(awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) while ($i !~ /\]$/) i++;
                            if ($2 ~ /^\[/) i++; if ($(i + 1) == "bookworm") { print $i; exit } }' "$f")
    [ -n "$url" ] && { echo "$url"; return; }
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    url=$(awk 'BEGIN { RS = ""; FS = "\n" }
               { types = uris = suites = ""
                 for (i = 1; i <= NF; i++) {
                   if ($i ~ /^Types:/) types = $i
                   if ($i ~ /^URIs:/) { uris = $i; sub(/^URIs:[ \t]*/, "", uris); sub(/[ \t].*/, "", uris) }
                   if ($i ~ /^Suites:/) suites = " " $i " "
                 }
                 if (types ~ /[ \t]deb([ \t]|$)/ && suites ~ /[ \t]bookworm[ \t]/) { print uris; exit } }' "$f")
    [ -n "$url" ] && { echo "$url"; return; }
  done
  return 1
}

# make_base TAG [mmdebstrap options…]: a minbase bookworm tree imported as TAG, unless TAG exists.
make_base() {
  local tag=$1 mirror tar
  shift
  "${PODMAN[@]}" image exists "$tag" && return 0
  mirror=$(archive_url) || die "no 'deb … bookworm' source in /etc/apt/sources.list*"
  tar=$(mktemp /tmp/primed-base.XXXXXX.tar)
  say "making $tag with mmdebstrap from the apt source's archive"
  # The merged-usr hook makes /bin → usr/bin itself; without it mmdebstrap installs the usrmerge
  # package, which pulls in perl and its modules (~50 MB that the slim runtime never runs).
  if ! mmdebstrap --quiet --variant=minbase --format=tar \
      --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr "$@" bookworm "$tar" "$mirror" \
      >"$tar.log" 2>&1; then
    tail -30 "$tar.log" >&2
    rm -f "$tar" "$tar.log"
    die "mmdebstrap failed for $tag"
  fi
  rm -f "$tar.log"
  "${PODMAN[@]}" import --quiet --change 'CMD ["bash"]' "$tar" "$tag" >/dev/null
  rm -f "$tar"
  say "$tag: $("${PODMAN[@]}" image inspect --format '{{.Size}}' "$tag") bytes"
}

bases() {
  make_base debian:bookworm
  # Slim as Docker Hub's: no manuals, docs (but copyrights), locales or info pages, and no
  # package lists. perl-base stays: it is Essential (debconf needs it); perl itself is not there.
  make_base debian:bookworm-slim \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin'
}

build() {
  local t0=$SECONDS
  # --pull=never: the bases are local; --network host: the build's apt-get reaches the archive
  # the way this machine does.
  "${PODMAN[@]}" build --quiet --format docker --pull=never --network host \
    --ulimit "nofile=$NOFILE:$NOFILE" -t "$IMAGE" -f Dockerfile . >/dev/null
  say "$IMAGE built in $((SECONDS - t0)) s, $("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE") bytes"
}

case "${1:-all}" in
  bases) bases ;;
  build) build ;;
  all) bases; build ;;
  *) echo "usage: $0 [bases|build]" >&2; exit 2 ;;
esac
