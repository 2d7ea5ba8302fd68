#!/usr/bin/env bash
# The container image, built and run: `.ci/run` runs this (root: apt-get, dockerd).
#
#   tests/deploy/container/run.sh [--build-dir build]
#
# 1. a container engine (engine.sh: installs docker.io/debootstrap when missing, starts dockerd
#    if none runs and stops it after) and the base image debian:bookworm (made once, cached);
# 2. docker build of the Dockerfile (BuildKit, ccache in a cache mount), the image size;
# 3. the container with a host directory on /run/wsgate (the socket volume) and --network host,
#    until its HEALTHCHECK says healthy (deadline 90 s): the start-to-healthy time;
# 4. an echo session from the host through the mounted socket: the client `wsgate cat` of the
#    host build (--build-dir, default build/) against scripts/echo-server.py on 127.0.0.1;
# 5. the daemon runs as uid/gid 10001, and the runtime image has no compiler (cc, gcc, g++, c++
#    on PATH) and no build-essential package;
# 6. docker stop during an open session: the drain line in the log, exit code 0, within the drain
#    time (timeouts.drain_ms, 10 s by default, + 2 s for gRPC).
# Prints the measured figures (docs/operations.md quotes them). Exit status 0: every check held.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../../.." && pwd)
# shellcheck source=engine.sh
. "$here/engine.sh"
build_dir_option "$@"
cli=$build/client-sdk/cli/wsgate
[ -x "$cli" ] || { echo "run.sh: $cli not built (scripts/setup.sh)" >&2; exit 1; }

image=wsgated:ci-$$
name=wsgated-ci-$$
tmp=$(mktemp -d /tmp/wsgate-container.XXXXXX)
echo_pid="" cat_pid=""
cleanup() {
  set +e
  [ -n "$cat_pid" ] && kill "$cat_pid" 2>/dev/null
  [ -n "$echo_pid" ] && kill "$echo_pid" 2>/dev/null
  $DOCKER rm -f "$name" >/dev/null 2>&1
  $DOCKER image rm "$image" >/dev/null 2>&1
  engine_down
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "run.sh: FAIL: $*" >&2; $DOCKER logs "$name" 2>&1 | tail -20 >&2; exit 1; }

engine_up
base_image

t0=$SECONDS
DOCKER_BUILDKIT=1 $DOCKER build --network host -t "$image" "$src" >"$tmp/build.log" 2>&1 \
  || { tail -40 "$tmp/build.log" >&2; fail "docker build"; }
build_s=$((SECONDS - t0))
# The build cache grows by a few layers per source change: drop what no build used for a week
# (the ccache mount is in use by every build, so it stays).
$DOCKER builder prune -f --filter until=168h >/dev/null 2>&1 || true
size=$($DOCKER image inspect -f '{{.Size}}' "$image")
echo "container: image built in $build_s s, $((size / 1000000)) MB"

# 5 (static part): no compiler in the runtime image.
compilers=$($DOCKER run --rm --network none --entrypoint /bin/sh "$image" -c \
  'for c in cc gcc g++ c++ clang; do command -v $c; done; dpkg-query -W -f="\${Package}\n" build-essential 2>/dev/null; true')
[ -z "$compilers" ] || fail "the runtime image has a compiler: $compilers"

# 3. The socket volume: a host directory the container's user owns, as the image's /run/wsgate.
install -d -o 10001 -g 10001 -m 0750 "$tmp/run"
start_ns=$(date +%s%N)
$DOCKER run -d --name "$name" --network host -v "$tmp/run:/run/wsgate" "$image" >/dev/null
deadline=$((SECONDS + 90)) serving_ms="" healthy_ms=""
while :; do
  now_ms=$((($(date +%s%N) - start_ns) / 1000000))
  if [ -z "$serving_ms" ] && [ -S "$tmp/run/wsgated.sock" ] \
      && "$cli" --address "unix:$tmp/run/wsgated.sock" health --timeout-ms 1000 >/dev/null 2>&1; then
    serving_ms=$now_ms
  fi
  state=$($DOCKER inspect -f '{{.State.Status}} {{.State.Health.Status}}' "$name")
  case "$state" in
    "running healthy") healthy_ms=$now_ms; break ;;
    running\ *) ;;
    *) fail "container state: $state" ;;
  esac
  ((SECONDS < deadline)) || fail "not healthy within 90 s (state: $state)"
  sleep 0.2
done
echo "container: serving after ${serving_ms:-?} ms, HEALTHCHECK healthy after $healthy_ms ms"

# 5 (running part): the daemon's uid/gid, from the host's view of the container's process.
pid=$($DOCKER inspect -f '{{.State.Pid}}' "$name")
ids=$(awk '/^Uid:/ { u = $2 } /^Gid:/ { g = $2 } END { print u ":" g }' "/proc/$pid/status")
[ "$ids" = 10001:10001 ] || fail "wsgated runs as uid:gid $ids, not 10001:10001"
sock_owner=$(stat -c %u:%g "$tmp/run/wsgated.sock")
[ "$sock_owner" = 10001:10001 ] || fail "socket owned by $sock_owner"

# 4. An echo session from the host through the mounted socket.
/usr/bin/python3 "$src/scripts/echo-server.py" --port 0 >"$tmp/echo.out" 2>"$tmp/echo.err" &
echo_pid=$!
deadline=$((SECONDS + 20))
until url=$(grep -o 'ws://[^ ]*' "$tmp/echo.out"); do
  ((SECONDS < deadline)) && kill -0 "$echo_pid" 2>/dev/null || fail "echo server: $(cat "$tmp/echo.err")"
  sleep 0.1
done
out=$(printf 'hello from the host\n' | timeout 30 "$cli" --address "unix:$tmp/run/wsgated.sock" \
  cat --linger 1 "$url") || fail "wsgate cat exited $?: $out"
grep -q 'hello from the host' <<<"$out" || fail "no echo: $out"
echo "container: echo through the mounted socket: ok"

# 6. docker stop with a session open: drain, exit 0, within drain_ms + 2 s (+ margin).
mkfifo "$tmp/in"
"$cli" --address "unix:$tmp/run/wsgated.sock" cat "$url" <"$tmp/in" >"$tmp/cat.out" 2>&1 &
cat_pid=$!
exec 3>"$tmp/in"
echo ping >&3
deadline=$((SECONDS + 20))
until grep -q ping "$tmp/cat.out"; do
  ((SECONDS < deadline)) || fail "the open session did not echo: $(cat "$tmp/cat.out")"
  sleep 0.1
done
t0=$(date +%s%N)
$DOCKER stop -t 30 "$name" >/dev/null
stop_ms=$((($(date +%s%N) - t0) / 1000000))
exec 3>&-
code=$($DOCKER inspect -f '{{.State.ExitCode}}' "$name")
logs=$($DOCKER logs "$name" 2>&1)
[ "$code" = 0 ] || fail "exit code $code after docker stop"
grep -q 'draining' <<<"$logs" || fail "no drain line in the log"
grep -q 'drained 1 session' <<<"$logs" || fail "the open session was not drained"
((stop_ms < 12000)) || fail "docker stop took $stop_ms ms (drain_ms 10 s + 2 s)"
[ ! -e "$tmp/run/wsgated.sock" ] || fail "the socket file was left behind"
echo "container: docker stop drained 1 session in $stop_ms ms, exit code 0"
echo "container: all checks passed (build $build_s s, image $((size / 1000000)) MB, healthy after $healthy_ms ms)"
