#!/usr/bin/env bash
# timed.sh LABEL COMMAND...: runs COMMAND, saying when it starts, every 30 s
# while it runs, and how long it took, so that `make run` on a bare machine
# (minutes of compiling) shows progress. Its output goes to a log that is
# printed only when it fails.
set -uo pipefail
label=$1; shift
log=$(mktemp "${TMPDIR:-/tmp}/timed.XXXXXX")
start=$(date +%s)
echo "→ ${label}: building"
"$@" >"$log" 2>&1 &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
  for _ in $(seq 1 30); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "  … ${label}: still building ($(( $(date +%s) - start ))s)"
  fi
done
wait "$pid"
rc=$?
took=$(( $(date +%s) - start ))
if [ "$rc" -ne 0 ]; then
  echo "✗ ${label}: failed after ${took}s:" >&2
  cat "$log" >&2
  rm -f "$log"
  exit "$rc"
fi
rm -f "$log"
echo "✓ ${label}: done in ${took}s"
