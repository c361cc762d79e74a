#!/usr/bin/env bash
# Runs every test (unit, integration and the Chromium end-to-end test) with node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s globstar nullglob
files=(build/test/**/*.test.js)
[ ${#files[@]} -gt 0 ] || { echo "no tests found in build/test (was the build run?)" >&2; exit 1; }
# One file at a time: the end-to-end tests each run a live encoder and a browser, and 2 cores are shared.
exec node --test --test-concurrency=1 --test-reporter=spec "$@" "${files[@]}"
