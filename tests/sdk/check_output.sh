#!/bin/sh
# check_output.sh PATTERN... -- COMMAND ARGS...: runs COMMAND (an argument "@ECHO@" is replaced
# by $WSGATE_ECHO_URL), prints its output, and fails unless it exits 0 and its output contains
# every PATTERN (fixed strings).
set -u
patterns=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  patterns="$patterns
$1"
  shift
done
shift
n=$#
i=0
while [ $i -lt $n ]; do
  a=$1
  shift
  [ "$a" = "@ECHO@" ] && a=${WSGATE_ECHO_URL:?}
  set -- "$@" "$a"
  i=$((i + 1))
done
out=$("$@" 2>&1)
rc=$?
printf '%s\n' "$out"
[ $rc -eq 0 ] || { echo "check_output.sh: exit status $rc"; exit 1; }
printf '%s\n' "$patterns" | while IFS= read -r p; do
  [ -z "$p" ] && continue
  printf '%s\n' "$out" | grep -qF -- "$p" || { echo "check_output.sh: missing \"$p\""; exit 1; }
done
