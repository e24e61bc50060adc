#!/usr/bin/env bash
# Installs every Debian 12 package primed needs to build, test, run and benchmark.
# Idempotent: when everything is present it prints nothing and returns in well under a second.
# Used by `make run`, `make test` and the Dockerfile (with PRIMED_DEPS=runtime for the slim stage).
# `install-deps.sh --image` installs only what `make image` and `make test-image` need (podman and
# the tools that make its local base images); `make test` never pulls those.
set -euo pipefail

build_pkgs=(gcc g++ make pkg-config libmicrohttpd-dev libjansson-dev libgoogle-perftools-dev
            check libcurl4-openssl-dev clang libclang-rt-14-dev clang-format zlib1g-dev libunwind-dev)
runtime_pkgs=(libmicrohttpd12 libjansson4 libgoogle-perftools4 libtcmalloc-minimal4 zlib1g libunwind8 curl)
image_pkgs=(podman buildah runc mmdebstrap uidmap)
test_pkgs=(curl primesieve primecount wrk hyperfine prometheus golang-go google-perftools
           nginx-light python3 gnuplot-nox valgrind procps time python3-yaml systemd)

[ "${1:-}" = --image ] && PRIMED_DEPS=image
case "${PRIMED_DEPS:-all}" in
  image)   want=("${image_pkgs[@]}") ;;
  runtime) want=("${runtime_pkgs[@]}") ;;
  build)   want=("${build_pkgs[@]}" "${runtime_pkgs[@]}") ;;
  all)     want=("${build_pkgs[@]}" "${runtime_pkgs[@]}" "${test_pkgs[@]}") ;;
  *) echo "install-deps: PRIMED_DEPS must be runtime, build, image or all" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  # dpkg-query reports "install ok installed" only for a fully installed package.
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
