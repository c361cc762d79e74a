#!/usr/bin/env bash
# Runs the tests with node's test runner. The full lane runs one file at a time (end-to-end tests each run
# a live encoder and a browser, and 2 cores are shared); the unit lane runs four files side by side.
#   scripts/test.sh [full|unit] [node --test options…]
#   full  every test: unit, HTTP, and real ffmpeg + Chromium + network namespaces end to end (default)
#   unit  what needs no browser, ffmpeg, nginx or network namespace: everything but test/e2e/, test/cdn/
#         and the files whose first line says `// needs: …`
set -euo pipefail
cd "$(dirname "$0")/.."
lane=full
case "${1:-}" in full|unit) lane=$1; shift ;; esac
shopt -s globstar nullglob
files=()
for source in test/**/*.test.ts; do
  if [ "$lane" = unit ]; then
    case "$source" in test/e2e/*|test/cdn/*) continue ;; esac
    head -n 1 "$source" | grep -q '^// needs:' && continue
  fi
  built="build/${source%.ts}.js"
  [ -f "$built" ] || { echo "test.sh: $built is missing (was the build run?)" >&2; exit 1; }
  files+=("$built")
done
[ ${#files[@]} -gt 0 ] || { echo "test.sh: no tests found in test/" >&2; exit 1; }
echo "test.sh: $lane lane, ${#files[@]} files"
concurrency=1
# The unit lane is mostly waiting on timers and sockets: files run side by side.
[ "$lane" = unit ] && concurrency=4
exec node --test --test-concurrency=$concurrency --test-reporter=spec "$@" "${files[@]}"
