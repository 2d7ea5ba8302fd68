#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each one for a bounded time.
#   scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 30)
# Seeds live in tests/fuzz/corpus/<target>/; new inputs go to a scratch copy, never the tree.
# The targets, their invariants and the record of the 10 M-execution long runs: tests/fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
scripts/setup.sh --fuzz
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
status=0
for fuzzer in build-fuzz/tests/fuzz/*_fuzz; do
  [ -x "$fuzzer" ] || continue
  name=$(basename "$fuzzer")
  mkdir -p "$scratch/$name"
  [ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name/." "$scratch/$name/"
  echo "fuzz: $name for ${seconds}s"
  if ! "$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
       -artifact_prefix="$scratch/" -print_final_stats=1 "$scratch/$name" 2>"$scratch/$name.log"; then
    echo "fuzz: $name FAILED"; tail -50 "$scratch/$name.log"; status=1
  else
    grep -E '^stat::number_of_executed_units' "$scratch/$name.log" || true
  fi
done
exit $status
