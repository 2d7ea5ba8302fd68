#!/usr/bin/env bash
# Installs every build/test dependency from Debian (only the missing ones), then configures
# and builds wsgate. Idempotent: a second run only rebuilds what changed.
#
#   scripts/setup.sh                  # everything, RelWithDebInfo, in build/
#   scripts/setup.sh --sanitize       # the engine, wsgated and their tests under ASan+UBSan, in build-asan/
#   scripts/setup.sh --tsan           # the daemon and its threaded tests under TSan, in build-tsan/
#   scripts/setup.sh --fuzz           # clang + libFuzzer fuzz targets, in build-fuzz/
#   scripts/setup.sh --daemon-only    # only the shipped binaries (wsgated, wsgate-health, wsgate,
#                                     # the SDK, libwebsocket.so) from scripts/deps-daemon.txt: no
#                                     # tests, benchmarks or Node (the container image), in
#                                     # build-daemon/
#   scripts/setup.sh --deps-only      # install packages, do not build (with --daemon-only: only
#                                     # the packages of scripts/deps-daemon.txt)
set -euo pipefail
cd "$(dirname "$0")/.."

mode=default deps_only=0
for arg in "$@"; do
  case "$arg" in
    --sanitize) mode=sanitize ;;
    --tsan) mode=tsan ;;
    --fuzz) mode=fuzz ;;
    --daemon-only) mode=daemon ;;
    --deps-only) deps_only=1 ;;
    *) echo "usage: $0 [--sanitize|--tsan|--fuzz|--daemon-only] [--deps-only]" >&2; exit 2 ;;
  esac
done

install_missing_packages() {
  local wanted missing=() lists=(scripts/deps-daemon.txt)
  [ "$mode" = daemon ] || lists+=(scripts/deps.txt)
  wanted=$(cat "${lists[@]}" | grep -v -e '^#' -e '^[[:space:]]*$')
  for p in $wanted; do
    # nodesource's nodejs package bundles npm and conflicts with Debian's.
    [ "$p" = npm ] && command -v npm >/dev/null && continue
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

install_missing_packages
[ "$deps_only" = 1 ] && exit 0

jobs=${WSGATE_JOBS:-2}
# Paths relative to the checkout, so that a clone in another folder (a CI runner) hits the cache.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

# Node `ws`, a permessage-deflate peer of the daemon tests, which the test builds (default,
# sanitize, tsan) run (pinned by its package-lock.json); the fuzz and daemon-only builds do not
# (the container image's build stage has neither the tests nor npm).
case "$mode" in
  fuzz | daemon) ;;
  *) [ -d tests/daemon/node/node_modules ] || tests/daemon/node/setup.sh ;;
esac

case "$mode" in
  default)
    # npm packages of the Node client package (pinned by its package-lock.json).
    [ -d client-sdk/node/node_modules ] || client-sdk/scripts/setup-node.sh
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" >/dev/null
    cmake --build build -j"$jobs"
    ;;
  daemon)
    cmake -S . -B build-daemon -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWSGATE_BUILD_TESTS=OFF \
      -DWSGATE_BUILD_BENCH=OFF "${launcher[@]}" >/dev/null
    cmake --build build-daemon -j"$jobs" --target wsgated wsgate-health wsgate_cli wsgate_client \
      wsgate_websocket_remote wsgate_websocket
    ;;
  sanitize)
    # Everything but the benchmarks, under ASan+UBSan (scripts/test.sh --sanitize runs every
    # test against it). Debug: asserts on, and the quickest build. Building all of it, rather than
    # a list of targets, means no test is left unbuilt when a new one is added.
    cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DWSGATE_SANITIZE=ON \
      -DWSGATE_BUILD_BENCH=OFF "${launcher[@]}" >/dev/null
    cmake --build build-asan -j"$jobs"
    ;;
  tsan)
    # The daemon and the tests that exercise its threads (gRPC threads + Asio threads).
    cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWSGATE_TSAN=ON \
      -DWSGATE_BUILD_BENCH=OFF "${launcher[@]}" >/dev/null
    # Which tests those are is declared beside each test (label threads, tests/CMakeLists.txt).
    cmake --build build-tsan -j"$jobs" --target threaded_tests
    ;;
  fuzz)
    CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DWSGATE_FUZZ=ON -DWSGATE_BUILD_BENCH=OFF -DWSGATE_BUILD_TESTS=OFF -DWSGATE_BUILD_DAEMON=ON \
      "${launcher[@]}" >/dev/null
    # The daemon's libraries are configured (client_message_fuzz needs the gRPC API), but only
    # the fuzz targets and what they link are built (Ninja's per-directory target).
    cmake --build build-fuzz -j"$jobs" --target tests/fuzz/all
    ;;
esac
