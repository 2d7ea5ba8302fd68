#!/usr/bin/env bash
# README's test command on a fresh Debian bookworm machine: `.ci/run` runs this (root).
#
#   tests/deploy/container/fresh-machine.sh [-- ARGS FOR scripts/test.sh]
#
# A clean container of the base image (engine.sh: debootstrap --variant=minbase, nothing else
# installed) gets a copy of the checkout (the files git tracks or would track: no build trees,
# node_modules or .git) and runs scripts/test.sh there as root, as a new user would: every package
# it needs must come from scripts/setup.sh, so a missing install step fails here even when the
# machine running CI has the package. The host's ccache directory is mounted (the compilers come
# from the same Debian packages, so the build is mostly cache hits; ccache hashes the locale
# variables, so they are passed in); --network host for the
# Debian and npm registries; a host directory keeps the downloaded .debs between runs. The
# container is removed afterwards.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../.." && pwd)
[ "${1:-}" = -- ] && shift
# shellcheck source=engine.sh
. "$here/engine.sh"
name=wsgate-fresh-$$
cleanup() {
  set +e
  $DOCKER rm -f "$name" >/dev/null 2>&1
  engine_down
}
trap cleanup EXIT

engine_up
base_image
ccache_dir=${WSGATE_CCACHE_DIR:-}
if [ -z "$ccache_dir" ] && command -v ccache >/dev/null; then
  ccache_dir=$(ccache -k cache_dir)
fi
ccache_dir=${ccache_dir:-$HOME/.cache/ccache}
mkdir -p "$ccache_dir"
# Downloaded .debs, kept between runs (a download cache only: setup.sh still has to install them).
apt_cache=${WSGATE_APT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wsgate-ci/apt-archives}
mkdir -p "$apt_cache/partial"

# The machine's trust store for npm (Node): where a TLS-intercepting proxy stands between this
# machine and the npm registry, its CA is in the host's store but not in Debian's
# ca-certificates. Not an install step of the project, so it is passed in rather than installed.
extra_ca=() host_ca=${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}
if [ -r "$host_ca" ]; then
  extra_ca=(-v "$(readlink -f "$host_ca"):/usr/local/share/wsgate-ci/host-ca.crt:ro"
            -e NODE_EXTRA_CA_CERTS=/usr/local/share/wsgate-ci/host-ca.crt
            -e npm_config_cafile=/usr/local/share/wsgate-ci/host-ca.crt)
fi

# The checkout as a fresh clone has it (plus uncommitted files not ignored), streamed in.
$DOCKER create --name "$name" --network host -i -w /src \
  -v "$ccache_dir:/root/.cache/ccache" -e CCACHE_DIR=/root/.cache/ccache -e CI \
  -e LANG -e LC_ALL -e LC_CTYPE -e LC_MESSAGES \
  -v "$apt_cache:/var/cache/apt/archives" "${extra_ca[@]}" \
  "$BASE_IMAGE" bash -c 'mkdir -p /src && tar -x -C /src && exec scripts/test.sh "$@"' test.sh "$@" \
  >/dev/null
start=$SECONDS
(cd "$src" && git ls-files -z --cached --others --exclude-standard \
  | tar --null -T - -c --ignore-failed-read 2>/dev/null) \
  | $DOCKER start -a -i "$name"
echo "fresh-machine: scripts/test.sh $* passed in a clean container in $((SECONDS - start)) s"
