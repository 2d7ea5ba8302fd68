#!/bin/sh
# Installs the SDK from BUILD_DIR into a temporary prefix, builds client-sdk/examples against it
# as a separate CMake project, and runs the echo example against $WSGATE_ECHO_URL through the
# wsgated at $WSGATE_ADDRESS (both started by tests/sdk/with_daemon.py).
#   install_test.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" --component sdk >/dev/null
cmake -S "$src/client-sdk/examples" -B "$tmp/build" -G Ninja -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  -DCMAKE_BUILD_RPATH="$(dirname "$(find "$tmp/prefix" -name "libwsgate-client.so" | head -1)")" >/dev/null
cmake --build "$tmp/build"
# pkg-config file sanity

PKG_CONFIG_PATH="$(dirname "$(find "$tmp/prefix" -name wsgate-client.pc)")" pkg-config --cflags wsgate-client | grep -q "$tmp/prefix"
out=$("$tmp/build/echo" "$WSGATE_ECHO_URL" alpha beta)
echo "$out"
echo "$out" | grep -q "echo: beta"
echo "$out" | grep -q "closed 1000 done"

# The installed websocket.h backend, from C, with pkg-config only.
pcdir=$(dirname "$(find "$tmp/prefix" -name websocket-remote.pc)")
libdir=$(dirname "$(find "$tmp/prefix" -name "libwebsocket-remote.so" | head -1)")
cat > "$tmp/remote.c" <<'C'
#include <stdio.h>
#include <websocket.h>
int main(void) {
  ULONG value = 0, size = sizeof value;
  HRESULT hr = WebSocketGetGlobalProperty(WEB_SOCKET_KEEPALIVE_INTERVAL_PROPERTY_TYPE, &value, &size);
  printf("remote keepalive %lu (hr 0x%08lX)\n", (unsigned long)value, (unsigned long)hr);
  return hr == S_OK && value > 0 ? 0 : 1;
}
C
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror "$tmp/remote.c" -o "$tmp/remote" \
  $(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs websocket-remote) -Wl,-rpath,"$libdir"
"$tmp/remote"
