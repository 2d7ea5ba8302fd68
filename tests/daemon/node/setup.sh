#!/bin/sh
# Installs the Node `ws` package the daemon tests run as a server (test_gateway_compression.py),
# exactly as pinned by package-lock.json. Needs node and npm. Called by scripts/setup.sh; safe to
# run again.
set -eu
cd "$(dirname "$0")"
if ! command -v npm >/dev/null 2>&1; then
  echo "tests/daemon/node/setup.sh: npm not found (apt-get install nodejs npm)" >&2
  exit 1
fi
npm ci --no-audit --no-fund --loglevel=error
