#!/usr/bin/env bash
# Sets everything up (packages + build) and runs wsgate.
# Until the daemon lands, this runs the engine's self-test: a client handle and a server handle
# exchanging a handshake, messages, a ping and a close in memory.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec build/service/ws/demo/wsgate-selftest "$@"
