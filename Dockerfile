# wsgated container image. No container engine is needed to check this file:
# tests/deploy/check_runtime_libs.py compares the runtime packages with ldd of the built binaries
# and the build step with the README's. Usage: docs/operations.md ("Containers").
#
#   DOCKER_BUILDKIT=1 docker build -t wsgated .     # BuildKit (the default from Docker 23 on)
#   docker run -d --name wsgated -v wsgate-run:/run/wsgate wsgated
#   docker run -d -v wsgate-run:/run/wsgate -e WSGATE_TCP=0.0.0.0:9000 -p 127.0.0.1:9000:9000 wsgated
#   docker run -d -v wsgate-run:/run/wsgate -v /etc/wsgate/wsgated.toml:/etc/wsgate/wsgated.toml:ro wsgated

# --- build: the project's own set-up script, as on a developer machine (README), limited to the
# shipped binaries (--daemon-only: no tests, benchmarks or Node) ------------------------------
# debian:bookworm: the official image, or one made without a registry (debootstrap --variant=minbase
# bookworm + docker import: tests/deploy/container/engine.sh).
FROM debian:bookworm AS build
WORKDIR /src
# The packages first, in a layer of their own: a source change does not download them again.
COPY scripts/setup.sh scripts/deps-daemon.txt scripts/
RUN scripts/setup.sh --daemon-only --deps-only && rm -rf /var/lib/apt/lists/*
# Sources only (not the host's build trees, whose CMake caches name host paths; .dockerignore),
# and not the docs: a change there does not rebuild.
COPY CMakeLists.txt ./
COPY cmake cmake
COPY proto proto
COPY service service
COPY client-sdk client-sdk
COPY scripts scripts
COPY deploy deploy
# ccache in a BuildKit cache mount: a rebuild after a source change compiles only what changed.
RUN --mount=type=cache,target=/root/.cache/ccache \
    scripts/setup.sh --daemon-only \
 && strip --strip-unneeded build-daemon/service/daemon/wsgated \
      build-daemon/service/daemon/wsgate-health build-daemon/client-sdk/cli/wsgate \
      build-daemon/client-sdk/libwsgate-client.so.0.*

# --- runtime: only the shared libraries the binaries load --------------------------------------
# bookworm-slim: the official image, or one made from the debootstrap image as Debian makes it
# (tests/deploy/container/engine.sh). Its dpkg leaves out documentation and translations.
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates \
      libabsl20220623 \
      libc-ares2 \
      libc6 \
      libcap2 \
      libfmt9 \
      libgcc-s1 \
      libgcrypt20 \
      libgpg-error0 \
      libgrpc++1.51 \
      libgrpc29 \
      liblz4-1 \
      liblzma5 \
      libprotobuf32 \
      libre2-9 \
      libsimdjson14 \
      libspdlog1.10 \
      libssl3 \
      libstdc++6 \
      libsystemd0 \
      libtomlplusplus3 \
      libzstd1 \
      zlib1g \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
RUN groupadd --system --gid 10001 wsgate \
 && useradd --system --uid 10001 --gid wsgate --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin wsgate \
 && install -d -o wsgate -g wsgate -m 0750 /run/wsgate
COPY --from=build /src/build-daemon/service/daemon/wsgated /src/build-daemon/service/daemon/wsgate-health /usr/local/bin/
# wsgate, the command-line client (`docker exec CONTAINER wsgate sessions`; it finds the daemon
# through WSGATE_ADDRESS below), and the SDK library it links.
COPY --from=build /src/build-daemon/client-sdk/cli/wsgate /usr/local/bin/
COPY --from=build /src/build-daemon/client-sdk/libwsgate-client.so.0 /usr/local/lib/
RUN ldconfig
COPY --from=build /src/deploy/config/wsgated.example.toml /etc/wsgate/wsgated.toml
# Configuration: the file (mount another at /etc/wsgate/wsgated.toml, or set WSGATE_CONFIG),
# and the environment: WSGATE_ADDRESS (unix:PATH: the socket, read by the daemon and every
# client), WSGATE_TCP (e.g. 0.0.0.0:9000; empty: no TCP listener),
# WSGATE_LOG_LEVEL, WSGATE_LOG_FORMAT override the file. Logs go to stderr.
ENV WSGATE_CONFIG=/etc/wsgate/wsgated.toml \
    WSGATE_ADDRESS=unix:/run/wsgate/wsgated.sock \
    WSGATE_LOG_FORMAT=json
VOLUME /run/wsgate
EXPOSE 9000
USER wsgate:wsgate
STOPSIGNAL SIGTERM
# The standard gRPC health service over the unix socket ($WSGATE_ADDRESS).
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["wsgate-health", "--timeout-ms", "4000"]
ENTRYPOINT ["wsgated"]
