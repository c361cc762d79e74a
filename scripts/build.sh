#!/usr/bin/env bash
# Compiles the Node side with tsc and bundles the browser side with esbuild into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
npx --no-install tsc -p tsconfig.json
npx --no-install tsc -p tsconfig.browser-tests.json
npx --no-install tsc -p src/web/tsconfig.json
npx --no-install tsc -p src/web/sw/tsconfig.json
mkdir -p build/web
npx --no-install esbuild src/web/player/main.ts --bundle --format=esm --target=chrome110 --sourcemap \
  --outfile=build/web/player.js --log-level=warning
cp src/web/player/index.html src/web/player/player.css build/web/
# The multicast Service Worker (served at /multicast/sw.js, and at /player/sw.js for scope /; it acts only
# on requests marked delivery=multicast).
npx --no-install esbuild src/web/sw/main.ts --bundle --format=esm --target=chrome110 --sourcemap \
  --outfile=build/web/sw.js --log-level=warning
# The on-demand playlist page (served at /vod by src/origin/vod/route.ts).
npx --no-install esbuild src/web/playlist/main.ts --bundle --format=esm --target=chrome110 --sourcemap \
  --outfile=build/web/playlist.js --log-level=warning
cp src/web/playlist/index.html build/web/playlist.html
# The Warp player page (served at /warp/; its script at /warp/player.js). Browser platform: a Node module
# pulled in by mistake (e.g. through src/warp/index.ts) fails the build instead of reaching the page.
npx --no-install esbuild src/web/warp/main.ts --bundle --format=esm --platform=browser --target=chrome110 --sourcemap \
  --outfile=build/web/warp-player.js --log-level=warning
cp src/web/warp/index.html build/web/warp.html
