#!/usr/bin/env bash
# The static checks CI runs: Biome (formatting and lint rules, biome.json) and tsc for every tsconfig
# (Node, the end-to-end tests that drive Chromium, browser pages, Service Worker), without emitting anything.
set -euo pipefail
cd "$(dirname "$0")/.."
npx --no-install biome check --error-on-warnings .
npx --no-install tsc -p tsconfig.json --noEmit
npx --no-install tsc -p tsconfig.browser-tests.json --noEmit
npx --no-install tsc -p src/web/tsconfig.json --noEmit
npx --no-install tsc -p src/web/sw/tsconfig.json --noEmit
echo "check: biome and tsc (node, browser tests, web, sw) clean"
