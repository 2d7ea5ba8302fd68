#!/usr/bin/env bash
# Sets everything up (packages + build) and runs the whole test suite with CTest.
#   scripts/test.sh               # normal build
#   scripts/test.sh --sanitize    # the same tests under ASan+UBSan
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build
[ "${1:-}" = --sanitize ] && dir=build-asan
scripts/setup.sh "$@"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir "$dir" --output-on-failure -j2 --timeout 300
