#!/usr/bin/env bash
# Installs a built wsgated: binaries, systemd units, sysusers entry, default configuration and
# the operator docs. Honours DESTDIR (staged installs, packaging); never starts anything.
#
#   deploy/install.sh [--build-dir build] [--prefix /usr/local]
#   DESTDIR=/tmp/stage deploy/install.sh --prefix /usr
#
# Layout (PREFIX=/usr/local by default):
#   PREFIX/bin/wsgated, PREFIX/bin/wsgate-health
#   PREFIX/bin/wsgate, PREFIX/lib/libwsgate-client.so.0   the command-line client and the SDK
#                               library it links (`cmake --install --component daemon`)
#   UNITDIR/wsgated.service, UNITDIR/wsgated.socket   (/usr/lib/systemd/system for PREFIX=/usr,
#                                                       else /etc/systemd/system)
#   SYSUSERSDIR/wsgate.conf                             (/usr/lib/sysusers.d or /etc/sysusers.d)
#   /etc/wsgate/wsgated.toml    from deploy/config/wsgated.example.toml; an existing file is
#                               kept (the new default goes next to it as wsgated.toml.dist)
#   PREFIX/share/doc/wsgate/    operations.md, configuration.md, wsgated.example.toml
# ExecStart= and Documentation= in the units are rewritten to PREFIX.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$src/build
prefix=/usr/local
while (($#)); do
  case "$1" in
    --build-dir) build=$(cd "$2" && pwd); shift 2 ;;
    --prefix) prefix=${2%/}; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
case "$prefix" in /*) ;; *) echo "install.sh: --prefix must be absolute" >&2; exit 2 ;; esac
dest=${DESTDIR:-}
dest=${dest%/}

bin=$build/service/daemon/wsgated
health=$build/service/daemon/wsgate-health
for f in "$bin" "$health" "$build/client-sdk/cli/wsgate"; do
  [ -x "$f" ] || { echo "install.sh: $f not built (scripts/setup.sh)" >&2; exit 1; }
done

if [ "$prefix" = /usr ]; then
  unitdir=/usr/lib/systemd/system sysusersdir=/usr/lib/sysusers.d
else
  unitdir=/etc/systemd/system sysusersdir=/etc/sysusers.d
fi
docdir=$prefix/share/doc/wsgate

install -d -m 0755 "$dest$prefix/bin" "$dest$unitdir" "$dest$sysusersdir" "$dest$docdir"
install -d -m 0755 "$dest/etc/wsgate"
install -m 0755 "$bin" "$health" "$dest$prefix/bin/"
# wsgate: installed by CMake, which gives it the RPATH that finds the library beside it.
DESTDIR="$dest" cmake --install "$build" --component daemon --prefix "$prefix" >/dev/null

for unit in wsgated.service wsgated.socket; do
  sed -e "s|/usr/local/bin/wsgated|$prefix/bin/wsgated|g" \
      -e "s|/usr/local/share/doc/wsgate|$docdir|g" \
      "$src/deploy/systemd/$unit" > "$dest$unitdir/$unit.tmp"
  chmod 0644 "$dest$unitdir/$unit.tmp"
  mv "$dest$unitdir/$unit.tmp" "$dest$unitdir/$unit"
done
install -m 0644 "$src/deploy/systemd/wsgate.sysusers.conf" "$dest$sysusersdir/wsgate.conf"

example=$src/deploy/config/wsgated.example.toml
if [ -e "$dest/etc/wsgate/wsgated.toml" ]; then
  install -m 0644 "$example" "$dest/etc/wsgate/wsgated.toml.dist"
  echo "install.sh: kept the existing /etc/wsgate/wsgated.toml (new default: wsgated.toml.dist)"
else
  install -m 0644 "$example" "$dest/etc/wsgate/wsgated.toml"
fi
install -m 0644 "$src/docs/operations.md" "$src/docs/configuration.md" "$example" "$dest$docdir/"

echo "install.sh: installed into ${dest:-/} (prefix $prefix)"
if [ -z "$dest" ]; then
  cat <<MSG
next steps:
  systemd-sysusers $sysusersdir/wsgate.conf
  systemctl daemon-reload
  systemctl enable --now wsgated.service     # or: systemctl enable --now wsgated.socket
MSG
fi
