#!/usr/bin/env node
// Entry point of the `pushcast` command: the compiled command line in build/ (npm run build makes it).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../build/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  console.error(
    'pushcast is not built yet: run `npm run build` (or `npm run demo`, which installs and builds everything).',
  );
  process.exit(1);
}
await import(main.href);
