#!/usr/bin/env bash
# The .deb, built and installed on a clean machine: `.ci/run` runs this (root).
#
#   tests/deploy/container/deb.sh [--build-dir build]
#
# 1. cpack -G DEB from the build directory (scripts/setup.sh's build/: no compiling here);
# 2. a clean container of the base image (engine.sh) installs it with apt-get, which fetches the
#    Depends: dpkg-shlibdeps computed;
# 3. there: postinst made the user and group wsgate (sysusers); the units are in
#    /usr/lib/systemd/system, name /usr/bin/wsgated, and are neither enabled nor started;
#    /etc/wsgate/wsgated.toml is a conffile and `wsgated --check-config` accepts it;
# 4. wsgated from the package, run as wsgate, and an echo session through it with the packaged
#    client `wsgate cat` against scripts/echo-server.py on the host's 127.0.0.1 (--network host);
# 5. apt-get remove leaves no binary behind.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../.." && pwd)
# shellcheck source=engine.sh
. "$here/engine.sh"
build_dir_option "$@"
[ -f "$build/CPackConfig.cmake" ] || { echo "deb.sh: $build is not configured (scripts/setup.sh)" >&2; exit 1; }

name=wsgate-deb-$$
tmp=$(mktemp -d /tmp/wsgate-deb.XXXXXX)
echo_pid=""
cleanup() {
  set +e
  [ -n "$echo_pid" ] && kill "$echo_pid" 2>/dev/null
  $DOCKER rm -f "$name" >/dev/null 2>&1
  engine_down
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "deb.sh: FAIL: $*" >&2; exit 1; }

start=$SECONDS
(cd "$tmp" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/out" >"$tmp/cpack.log" 2>&1) \
  || { tail -30 "$tmp/cpack.log" >&2; fail "cpack"; }
deb=$(ls "$tmp"/out/wsgate_*.deb)
echo "deb: $(basename "$deb"), $(($(stat -c %s "$deb") / 1000)) kB, built in $((SECONDS - start)) s"
dpkg-deb -f "$deb" Depends

engine_up
base_image
/usr/bin/python3 "$src/scripts/echo-server.py" --port 0 >"$tmp/echo.out" 2>"$tmp/echo.err" &
echo_pid=$!
deadline=$((SECONDS + 20))
until url=$(grep -o 'ws://[^ ]*' "$tmp/echo.out"); do
  ((SECONDS < deadline)) && kill -0 "$echo_pid" 2>/dev/null || fail "echo server: $(cat "$tmp/echo.err")"
  sleep 0.1
done

cp "$deb" "$tmp/wsgate.deb"
$DOCKER run --rm --name "$name" --network host -v "$tmp/wsgate.deb:/tmp/wsgate.deb:ro" \
  -e URL="$url" "$BASE_IMAGE" bash -euo pipefail -c '
fail() { echo "deb.sh (container): FAIL: $*" >&2; exit 1; }
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends /tmp/wsgate.deb \
  >/tmp/apt.log 2>&1 || { tail -30 /tmp/apt.log; fail "apt-get install"; }
getent passwd wsgate >/dev/null || fail "no user wsgate (postinst, sysusers)"
getent group wsgate >/dev/null || fail "no group wsgate"
unit=/usr/lib/systemd/system/wsgated.service
grep -qx "ExecStart=/usr/bin/wsgated --config /etc/wsgate/wsgated.toml" $unit || fail "$unit: ExecStart"
grep -q "^Documentation=file:/usr/share/doc/wsgate/operations.md" $unit || fail "$unit: Documentation"
[ -f /usr/lib/systemd/system/wsgated.socket ] || fail "no wsgated.socket"
[ -f /usr/lib/sysusers.d/wsgate.conf ] || fail "no sysusers entry"
enabled=$(find /etc/systemd/system -name "wsgated.*" 2>/dev/null)
[ -z "$enabled" ] || fail "units enabled: $enabled"
dpkg-query --showformat="\${Conffiles}\n" -W wsgate | grep -q /etc/wsgate/wsgated.toml || fail "not a conffile"
for b in wsgated wsgate-health wsgate; do command -v $b >/dev/null || fail "$b not on PATH"; done
[ -e /usr/lib/libwebsocket.so.0 ] || ls /usr/lib/*/libwebsocket.so.0 >/dev/null || fail "no libwebsocket.so.0"
wsgated --config /etc/wsgate/wsgated.toml --check-config
install -d -o wsgate -g wsgate -m 0750 /run/wsgate
setpriv --reuid wsgate --regid wsgate --init-groups \
  wsgated --config /etc/wsgate/wsgated.toml --socket /run/wsgate/wsgated.sock 2>/tmp/wsgated.log &
daemon=$!
for i in $(seq 100); do
  wsgate --address unix:/run/wsgate/wsgated.sock health --timeout-ms 500 >/dev/null 2>&1 && break
  kill -0 $daemon 2>/dev/null || { cat /tmp/wsgated.log; fail "wsgated exited"; }
  sleep 0.1
done
out=$(echo "hello from the package" | timeout 30 wsgate --address unix:/run/wsgate/wsgated.sock cat --linger 1 "$URL")
grep -q "hello from the package" <<<"$out" || { cat /tmp/wsgated.log; fail "no echo: $out"; }
kill -TERM $daemon; wait $daemon || fail "wsgated exited $? on SIGTERM"
DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq wsgate >/dev/null 2>&1
[ ! -e /usr/bin/wsgated ] || fail "wsgated left after apt-get remove"
echo "deb: installed, user created, units not enabled, --check-config and echo ok, removed"
'
echo "deb: all checks passed in $((SECONDS - start)) s"
