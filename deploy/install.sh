#!/usr/bin/env bash
# Installs a built wsgated: `cmake --install` of the components daemon and capi (install rules in
# deploy/CMakeLists.txt and client-sdk/cli). Honours DESTDIR (staged installs); never starts
# anything. For a Debian package: `cpack -G DEB` in the build directory (docs/operations.md).
#
#   deploy/install.sh [--build-dir build] [--prefix /usr/local]
#   DESTDIR=/tmp/stage deploy/install.sh --prefix /usr
#
# Layout (PREFIX=/usr/local by default):
#   PREFIX/bin/wsgated, PREFIX/bin/wsgate-health, PREFIX/bin/wsgate (the client)
#   PREFIX/lib/libwsgate-client.so.0 (the client's), PREFIX/lib/libwebsocket.so.0 (the C ABI)
#   PREFIX/lib/systemd/system/wsgated.{service,socket}   configured with PREFIX's paths
#   PREFIX/lib/sysusers.d/wsgate.conf
#   /etc/wsgate/wsgated.toml    the example with every default; an existing file is kept (the
#                               new default goes next to it as wsgated.toml.dist)
#   PREFIX/share/doc/wsgate/    operations.md, configuration.md, wsgated.example.toml
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$src/build
prefix=/usr/local
while (($#)); do
  case "$1" in
    --build-dir) build=$(cd "$2" && pwd); shift 2 ;;
    --prefix) prefix=${2%/}; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$prefix" in /*) ;; *) echo "install.sh: --prefix must be absolute" >&2; exit 2 ;; esac
for f in service/daemon/wsgated service/daemon/wsgate-health client-sdk/cli/wsgate; do
  [ -x "$build/$f" ] || { echo "install.sh: $build/$f not built (scripts/setup.sh)" >&2; exit 1; }
done
for component in daemon capi; do
  cmake --install "$build" --prefix "$prefix" --component "$component"
done
dest=${DESTDIR:-}
echo "install.sh: installed into ${dest:-/} (prefix $prefix)"
if [ -z "$dest" ]; then
  cat <<MSG
next steps:
  systemd-sysusers $prefix/lib/sysusers.d/wsgate.conf
  systemctl daemon-reload
  systemctl enable --now wsgated.service     # or: systemctl enable --now wsgated.socket
MSG
fi
