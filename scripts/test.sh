#!/usr/bin/env bash
# Sets everything up (packages + build) and runs the whole test suite with CTest.
#   scripts/test.sh               # normal build: every test
#   scripts/test.sh --sanitize    # every test under ASan+UBSan
#   scripts/test.sh --tsan        # the daemon's threaded tests under ThreadSanitizer
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh "$@"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
case "${1:-}" in
  --sanitize)
    # LSan: suppressions for uninstrumented Debian libraries only (tests/lsan.supp). The daemon
    # tests' wsgated inherits these variables.
    export LSAN_OPTIONS="${LSAN_OPTIONS:-} suppressions=$PWD/tests/lsan.supp print_suppressions=0"
    # Label "packaging": checks of the binaries as they ship, meaningless for a sanitizer build.
    ctest --test-dir build-asan --output-on-failure -j2 --timeout 600 -LE packaging ;;
  --tsan)
    export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1 second_deadlock_stack=1} suppressions=$PWD/tests/tsan.supp"
    ctest --test-dir build-tsan --output-on-failure -j2 --timeout 600 -L threads ;;
  *) ctest --test-dir build --output-on-failure -j2 --timeout 300 ;;
esac
