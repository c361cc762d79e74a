#!/usr/bin/env bash
# Compiles the Node side with tsc and bundles the browser side with esbuild into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
npx --no-install tsc -p tsconfig.json
npx --no-install tsc -p tsconfig.browser-tests.json
# The pages' type check, and the player's types for `import { PushcastPlayer } from 'pushcast/player'`
# (package.json exports).
npx --no-install tsc -p src/web/tsconfig.json --noEmit false --declaration --emitDeclarationOnly --rootDir src \
  --outDir build/types
npx --no-install tsc -p src/web/sw/tsconfig.json
mkdir -p build/web
rm -rf build/web/player
# The player (src/web/player): `<pushcast-player>` / PushcastPlayer at /player/pushcast-player.js and the
# page at /, minified and split, so that each mode's code (dash.js; the Warp consumer) is a chunk loaded
# when that mode first runs.
npx --no-install esbuild pushcast-player=src/web/player/index.ts page=src/web/player/page.ts \
  --bundle --splitting --format=esm --platform=browser --target=chrome110 --minify --sourcemap \
  --outdir=build/web/player --chunk-names=chunk-[hash] --log-level=warning
cp src/web/player/index.html src/web/player/player.css build/web/
# The multicast Service Worker (served at /multicast/sw.js, and at /player/sw.js for scope /; it acts only
# on requests marked delivery=multicast).
npx --no-install esbuild src/web/sw/main.ts --bundle --format=esm --target=chrome110 --sourcemap \
  --outfile=build/web/sw.js --log-level=warning
# The LL-HLS page (served at /hls/): hls.js on the multivariant playlist.
npx --no-install esbuild src/web/hls/page.ts --bundle --format=esm --target=chrome110 --minify --sourcemap \
  --outfile=build/web/hls-page.js --log-level=warning
cp src/web/hls/index.html build/web/hls.html
# The on-demand playlist page (served at /vod by src/origin/vod/route.ts).
npx --no-install esbuild src/web/playlist/main.ts --bundle --format=esm --target=chrome110 --sourcemap \
  --outfile=build/web/playlist.js --log-level=warning
cp src/web/playlist/index.html build/web/playlist.html
