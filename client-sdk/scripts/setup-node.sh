#!/bin/sh
# Installs the Node client package's dependencies (@grpc/grpc-js, @grpc/proto-loader, protobufjs)
# from the npm registry, exactly as pinned by client-sdk/node/package-lock.json.
# Needs node and npm (Debian: nodejs, npm). Called by scripts/setup.sh; safe to run again.
set -eu
dir=$(cd "$(dirname "$0")/../node" && pwd)
if ! command -v npm >/dev/null 2>&1; then
  echo "setup-node.sh: npm not found (apt-get install nodejs npm)" >&2
  exit 1
fi
cd "$dir"
npm ci --no-audit --no-fund --loglevel=error
