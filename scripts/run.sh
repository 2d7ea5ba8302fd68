#!/usr/bin/env bash
# Sets everything up (packages + build) and runs wsgated in the foreground with its default
# configuration: gRPC on the unix socket /run/wsgate/wsgated.sock (root) or
# $XDG_RUNTIME_DIR/wsgate/wsgated.sock (others), mode 0660, no TCP listener.
# Extra arguments go to wsgated, e.g.  scripts/run.sh --config deploy/config/wsgated.example.toml
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec build/service/daemon/wsgated "$@"
