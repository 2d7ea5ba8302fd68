# Sourced by the container checks (run.sh, fresh-machine.sh, deb.sh): a container engine and the
# base image debian:bookworm, made without any registry.
#
#   engine_up     installs the packages of deps.txt that are missing, starts dockerd when none
#                 answers (its log in $ENGINE_LOG); the caller's EXIT trap calls engine_down
#   engine_down   stops that dockerd, by its pid, only if engine_up started it
#   base_image    makes debian:bookworm once (kept by the engine; skipped when it exists):
#                 debootstrap --variant=minbase bookworm with this machine's Debian mirror, then
#                 docker import; and debian:bookworm-slim from it, as Debian's official slim
#                 image is made: no documentation, man pages or translations, and dpkg told to
#                 leave them out of packages installed later
#   build_dir_option "$@"
#                 the options of a check that uses a host build: [--build-dir DIR] (default
#                 $src/build) sets $build; anything else prints the usage and exits 2
#   $DOCKER       the client: docker.io's own /usr/bin/docker when there (its BuildKit is built in;
#                 a newer client elsewhere on PATH may want the buildx plugin for DOCKER_BUILDKIT)
# Needs root (apt-get, dockerd, debootstrap).

ENGINE_STARTED_PID=""
ENGINE_LOG=""
DOCKER=docker
BASE_IMAGE=${WSGATE_BASE_IMAGE:-debian:bookworm}
SLIM_IMAGE=${WSGATE_SLIM_IMAGE:-debian:bookworm-slim}

engine_log() { echo "container: $*" >&2; }

engine_install_missing() {
  local here missing=() p
  here=$(dirname "${BASH_SOURCE[0]}")
  for p in $(grep -v -e '^#' -e '^[[:space:]]*$' "$here/deps.txt"); do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    engine_log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
      --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

engine_up() {
  engine_install_missing
  [ -x /usr/bin/docker ] && DOCKER=/usr/bin/docker
  if $DOCKER info >/dev/null 2>&1; then
    return 0
  fi
  ENGINE_LOG=$(mktemp /tmp/wsgate-dockerd.XXXXXX.log)
  engine_log "starting dockerd (log: $ENGINE_LOG)"
  dockerd >"$ENGINE_LOG" 2>&1 &
  ENGINE_STARTED_PID=$!
  local deadline=$((SECONDS + 60))
  until $DOCKER info >/dev/null 2>&1; do
    if ! kill -0 "$ENGINE_STARTED_PID" 2>/dev/null || ((SECONDS > deadline)); then
      engine_log "dockerd did not come up:"; tail -20 "$ENGINE_LOG" >&2
      return 1
    fi
    sleep 0.5
  done
}

engine_down() {
  [ -n "$ENGINE_STARTED_PID" ] || return 0
  engine_log "stopping dockerd (pid $ENGINE_STARTED_PID)"
  kill -TERM "$ENGINE_STARTED_PID" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while kill -0 "$ENGINE_STARTED_PID" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.5; done
  kill -KILL "$ENGINE_STARTED_PID" 2>/dev/null || true
  wait "$ENGINE_STARTED_PID" 2>/dev/null || true
  ENGINE_STARTED_PID=""
  rm -f "$ENGINE_LOG"
}

# "deb URI SUITE COMPONENTS" lines for every stanza of the machine's apt sources (deb822 or the
# one-line format), so that the image sees the same archives (updates and security included).
engine_apt_sources() {
  if [ -r /etc/apt/sources.list.d/debian.sources ]; then
    awk '
      /^[[:space:]]*$/ { flush(); next }
      $1 == "Types:" { types = $0 } $1 == "URIs:" { uris = $2 }
      $1 == "Suites:" { $1 = ""; suites = $0 } $1 == "Components:" { $1 = ""; comps = $0 }
      function flush(  n, s, i) {
        if (uris != "" && types ~ /deb([^-]|$)/) {
          n = split(suites, s, " "); for (i = 1; i <= n; i++) print "deb " uris " " s[i] comps
        }
        types = uris = suites = comps = ""
      }
      END { flush() }' /etc/apt/sources.list.d/debian.sources
  elif [ -r /etc/apt/sources.list ]; then
    grep -E '^deb[[:space:]]' /etc/apt/sources.list
  fi
}

base_image() {
  if ! $DOCKER image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    debootstrap_image
  fi
  if ! $DOCKER image inspect "$SLIM_IMAGE" >/dev/null 2>&1; then
    slim_image
  fi
}

debootstrap_image() {
  local sources mirror root start=$SECONDS
  sources=$(engine_apt_sources)
  [ -n "$sources" ] || sources="deb http://deb.debian.org/debian bookworm main"
  mirror=$(awk '$3 == "bookworm" { print $2; exit }' <<<"$sources")
  mirror=${WSGATE_DEBIAN_MIRROR:-${mirror:-http://deb.debian.org/debian}}
  root=$(mktemp -d /tmp/wsgate-rootfs.XXXXXX)
  engine_log "making $BASE_IMAGE: debootstrap --variant=minbase bookworm from $mirror"
  if ! debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1; then
    tail -20 "$root.log" >&2; rm -rf "$root" "$root.log"; return 1
  fi
  printf '%s\n' "$sources" >"$root/etc/apt/sources.list"
  # What debootstrap leaves behind: the downloaded packages and the package lists.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/debootstrap
  tar -C "$root" -c . | $DOCKER import - "$BASE_IMAGE" >/dev/null
  rm -rf "$root" "$root.log"
  engine_log "$BASE_IMAGE made in $((SECONDS - start)) s"
}

slim_image() {
  local root cid
  root=$(mktemp -d /tmp/wsgate-rootfs.XXXXXX)
  cid=$($DOCKER create "$BASE_IMAGE" /bin/true)
  $DOCKER export "$cid" | tar -C "$root" -x
  $DOCKER rm "$cid" >/dev/null
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
CFG
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root"/usr/share/man/* "$root"/usr/share/groff/* "$root"/usr/share/info/* \
    "$root"/usr/share/lintian/* "$root"/usr/share/linda/* "$root"/usr/share/locale/* \
    "$root"/var/cache/man/*
  rm -f "$root/.dockerenv"
  tar -C "$root" -c . | $DOCKER import - "$SLIM_IMAGE" >/dev/null
  rm -rf "$root"
  engine_log "$SLIM_IMAGE made from $BASE_IMAGE"
}

build_dir_option() {
  build=$src/build
  while (($#)); do
    case "$1" in
      --build-dir) build=$(cd "$2" && pwd); shift 2 ;;
      *) echo "usage: $0 [--build-dir DIR]" >&2; exit 2 ;;
    esac
  done
}
