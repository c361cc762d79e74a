import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../support/browser.js';
import { startServe, type RunningServe } from '../support/pushcast-process.js';
import { VOD_CLIPS, makeVodFolder } from '../support/vod-media.js';

/** The snapshot the playlist page exposes (src/web/playlist/stats.ts), as far as the test reads it. */
interface PlaylistStats {
  mode: string;
  current: { id: string } | null;
  itemsPlayed: number;
  items: { id: string; state: string; prefetched: boolean; timeToFirstFrameMs: number | null }[];
  errors: string[];
}

const root = mkdtempSync(join(tmpdir(), 'pushcast-vod-e2e-'));
let serve: RunningServe;
let browser: Browser;

before(async () => {
  const media = makeVodFolder(join(root, 'media'));
  serve = await startServe([
    '--tls-port',
    'off',
    '--ladder',
    '320x180@300k',
    '--vod',
    media,
    '--state-dir',
    join(root, 'state'),
  ]);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  const code = await serve?.stop('SIGTERM');
  rmSync(root, { recursive: true, force: true });
  assert.equal(code, 0, 'pushcast serve exits cleanly on SIGTERM');
});

test('the playlist page plays item 1, then item 2 from the data prefetched while item 1 played', async () => {
  const page = await browser.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(new URL('/vod', serve.player).href);
  const stats = () =>
    page.evaluate(() => (window as unknown as { pushcastStats: () => PlaylistStats }).pushcastStats());

  // Two clips of 4 s and 3 s, packaged on first use: both are played to their end well within 30 s.
  await page.waitForFunction(
    () => (window as unknown as { pushcastStats: () => PlaylistStats }).pushcastStats().itemsPlayed >= 2,
    null,
    {
      timeout: 30_000,
    },
  );
  const s = await stats();
  assert.equal(s.mode, 'vod');
  assert.deepEqual(s.errors, []);
  assert.deepEqual(pageErrors, []);
  const [first, second] = s.items;
  assert.equal(first!.id, VOD_CLIPS.withAudio.id);
  assert.equal(second!.id, VOD_CLIPS.silent.id);
  assert.deepEqual([first!.state, second!.state], ['ended', 'ended']);
  assert.equal(first!.prefetched, false, 'the first item has nothing before it to prefetch it');
  assert.equal(second!.prefetched, true, 'the second item started from prefetched metadata and first ranges');
  assert.ok(first!.timeToFirstFrameMs !== null && first!.timeToFirstFrameMs > 0);
  assert.ok(second!.timeToFirstFrameMs !== null && second!.timeToFirstFrameMs > 0);
  assert.equal(s.current, null, 'the playlist is done');
  assert.ok(serve.lines.some((l) => l.includes(`packaged ${VOD_CLIPS.silent.id}`)));
  await page.close();
});
