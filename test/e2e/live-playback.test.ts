import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../support/browser.js';
import { startServe, type RunningServe } from '../support/pushcast-process.js';
import { validateMpd } from '../support/xmllint.js';

/** The DASH part of the player page's stats (src/web/dash/stats.ts), as far as the test reads it. */
interface Stats {
  playing: boolean;
  currentTime: number;
  latency: number | null;
  targetLatency: number | null;
  buffer: number | null;
  stalls: number;
  framesDecoded: number;
  rendition: { id: string } | null;
  segments: { total: number; byRoute: Record<string, number> };
  errors: string[];
}

const PLAY_SECONDS = 24;
const TARGET_LATENCY = 3;

let serve: RunningServe;
let browser: Browser;

before(async () => {
  serve = await startServe(['--target-latency', String(TARGET_LATENCY)]);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  const code = await serve?.stop('SIGTERM');
  assert.equal(code, 0, 'pushcast serve exits cleanly on SIGTERM');
});

test('the live MPD served by the origin validates against the ISO/IEC 23009-1 schema', async () => {
  const res = await fetch(serve.manifest);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/dash+xml');
  const mpd = await res.text();
  const { valid, output } = validateMpd(mpd);
  assert.ok(valid, `xmllint: ${output}\n${mpd}`);
  assert.match(mpd, /type="dynamic"/);
  assert.match(mpd, /codecs="avc1\.[0-9a-f]{6}"/);
  assert.match(mpd, /codecs="mp4a\.40\.2"/);
});

test(`Chromium plays the live stream for ${PLAY_SECONDS} s: advancing, no stalls or errors, a real picture, latency under twice the target`, async (t) => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const consoleErrors: string[] = [];
  page.on('pageerror', (e) => consoleErrors.push(e.message));
  await page.goto(`${serve.player}?mode=dash`);

  // Wait for playback to begin (the player buffers up to its latency target first).
  await page.waitForFunction(
    () =>
      ((window as unknown as { pushcastStats: () => { dash: Stats | null } | null }).pushcastStats()?.dash
        ?.framesDecoded ?? 0) > 0,
    null,
    { timeout: 30_000 },
  );
  const stats = () =>
    page.evaluate(() => (window as unknown as { pushcastStats: () => { dash: Stats } }).pushcastStats().dash);
  const first = await stats();

  const latencies: number[] = [];
  for (let i = 0; i < PLAY_SECONDS; i++) {
    await page.waitForTimeout(1000);
    const s = await stats();
    if (s.latency !== null) latencies.push(s.latency);
  }
  const last = await stats();

  // Is the picture real? Draw the current frame and measure how much its pixels vary.
  const spread = await page.evaluate(() => {
    // The element on screen: the player's, inside <pushcast-player>'s shadow root.
    const video = (document.querySelector('pushcast-player') as unknown as { player: { video: HTMLVideoElement } })
      .player.video;
    const canvas = document.createElement('canvas');
    canvas.width = 160;
    canvas.height = 90;
    const ctx = canvas.getContext('2d')!;
    ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
    const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
    let sum = 0;
    let sumSq = 0;
    const n = data.length / 4;
    for (let i = 0; i < data.length; i += 4) {
      const y = 0.299 * data[i]! + 0.587 * data[i + 1]! + 0.114 * data[i + 2]!;
      sum += y;
      sumSq += y * y;
    }
    const mean = sum / n;
    return { mean, stddev: Math.sqrt(sumSq / n - mean * mean) };
  });
  await page.close();

  const maxLatency = Math.max(...latencies);
  const meanLatency = latencies.reduce((a, b) => a + b, 0) / latencies.length;
  t.diagnostic(
    `latency: mean ${meanLatency.toFixed(2)} s, max ${maxLatency.toFixed(2)} s (target ${TARGET_LATENCY} s); frames ${last.framesDecoded}; segments ${JSON.stringify(last.segments.byRoute)}; rendition ${last.rendition?.id}; picture luma stddev ${spread.stddev.toFixed(1)}`,
  );

  assert.deepEqual(consoleErrors, [], 'no script errors on the page');
  assert.deepEqual(last.errors, [], 'the player reported no errors');
  assert.ok(last.playing, 'still playing at the end');
  assert.ok(
    last.currentTime - first.currentTime > PLAY_SECONDS * 0.9,
    `playback advanced ${last.currentTime - first.currentTime} s in ${PLAY_SECONDS} s`,
  );
  assert.ok(
    last.framesDecoded - first.framesDecoded > PLAY_SECONDS * 25 * 0.9,
    `frames decoded: ${last.framesDecoded - first.framesDecoded}`,
  );
  assert.equal(last.stalls, 0, 'no stalls');
  assert.ok(spread.stddev > 20, `the picture is not blank (luma stddev ${spread.stddev})`);
  assert.ok(latencies.length > PLAY_SECONDS * 0.9, 'the player reported its live latency');
  assert.ok(maxLatency < 2 * TARGET_LATENCY, `live latency stays under ${2 * TARGET_LATENCY} s (max ${maxLatency})`);
  assert.ok(
    last.segments.total > 10 && last.segments.byRoute.unicast === last.segments.total,
    'segments were delivered and counted by route',
  );
});

test('with ?mode=prefetch the player loads segments the prefetcher already fetched, and plays on without stalls', async (t) => {
  const page = await browser.newPage();
  await page.goto(`${serve.player}?mode=prefetch`);
  await page.waitForFunction(
    () =>
      ((window as unknown as { pushcastStats: () => { dash: Stats | null } | null }).pushcastStats()?.dash
        ?.framesDecoded ?? 0) > 0,
    null,
    { timeout: 30_000 },
  );
  await page.waitForTimeout(12_000);
  const s = await page.evaluate(
    () =>
      (
        window as unknown as {
          pushcastStats: () => {
            dash: Stats & { mode: string; prefetch: { started: number; completed: number; failed: number } };
          };
        }
      ).pushcastStats().dash,
  );
  await page.close();
  t.diagnostic(
    `prefetch: ${JSON.stringify(s.prefetch)}; segments ${JSON.stringify(s.segments.byRoute)}; latency ${s.latency}`,
  );
  assert.equal(s.mode, 'prefetch');
  assert.deepEqual(s.errors, []);
  assert.ok(s.prefetch.completed > 4, 'the prefetcher fetched segments');
  assert.ok((s.segments.byRoute.prefetch ?? 0) > 4, 'the player loaded prefetched segments');
  assert.equal(s.stalls, 0);
});
