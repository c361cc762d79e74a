/**
 * `import { PushcastPlayer } from 'pushcast/player'` in an application: package.json's `exports` lead a
 * bundler (esbuild) to the built player and TypeScript to its types; and the player's bundle is split so
 * that a page that never runs a mode does not download that mode's code.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'node:test';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

test('an application bundles and type-checks `pushcast/player` by its package name', async (t) => {
  const app = mkdtempSync(join(os.tmpdir(), 'pushcast-app-'));
  t.after(() => rmSync(app, { recursive: true, force: true }));
  mkdirSync(join(app, 'node_modules'));
  symlinkSync(ROOT, join(app, 'node_modules', 'pushcast'), 'dir');
  writeFileSync(
    join(app, 'main.ts'),
    `import { PlayerEvents, PushcastPlayer, type PlayerStats } from 'pushcast/player';
const player = new PushcastPlayer({ src: '/live/manifest.mpd', container: document.body });
player.addEventListener(PlayerEvents.MODE_CHANGE, () => undefined);
const stats: PlayerStats = player.stats();
console.log(stats.mode);
`,
  );
  const result = await build({
    entryPoints: [join(app, 'main.ts')],
    bundle: true,
    format: 'esm',
    splitting: true,
    outdir: join(app, 'out'),
    write: true,
    logLevel: 'silent',
  });
  assert.deepEqual(result.errors, []);
  assert.ok(readFileSync(join(app, 'out', 'main.js'), 'utf8').length > 1000, 'the player is in the bundle');
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'ESNext',
        moduleResolution: 'Bundler',
        lib: ['ES2022', 'DOM', 'DOM.Iterable'],
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        types: [],
      },
      files: ['main.ts'],
    }),
  );
  // tsc resolves 'pushcast/player' through exports → build/types; a type error would fail here.
  execFileSync(join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', app], { stdio: 'pipe' });
});

test('the served bundle: a small entry, each mode a chunk of its own', () => {
  const dir = join(ROOT, 'build', 'web', 'player');
  const files = readdirSync(dir).filter((f) => f.endsWith('.js'));
  const entry = readFileSync(join(dir, 'pushcast-player.js'), 'utf8');
  const chunks = files.filter((f) => f.startsWith('chunk-'));
  const containing = (needle: string) => chunks.filter((f) => readFileSync(join(dir, f), 'utf8').includes(needle));
  // dash.js and the Warp consumer are not in the entry, and not in the same chunk.
  assert.ok(!entry.includes('MediaPlayer') && !entry.includes('WarpConsumer'), 'no mode code in the entry');
  const dash = containing('dashjs');
  const warp = containing('closed after GOAWAY');
  assert.ok(dash.length > 0 && warp.length > 0, `chunks: ${chunks.join(', ')}`);
  assert.ok(!dash.some((f) => warp.includes(f)), 'dash.js and Warp in different chunks');
  assert.ok(statSync(join(dir, 'pushcast-player.js')).size < 60_000, 'the entry is small');
  assert.ok(
    files.every((f) => readdirSync(dir).includes(`${f}.map`)),
    'every file has its source map',
  );
});
