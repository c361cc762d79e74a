/**
 * The Warp player page (`/warp/`, src/web/warp) in headless Chromium, end to end with real ffmpeg:
 * - from `pushcast serve`: over WebTransport (certificate trusted by the published hashes), over the
 *   WebSocket fallback (`?transport=websocket`), and a wrong token told in plain words;
 * - from a server the test drives (the same layers `serve` wires, in this process), for what `serve`
 *   cannot be made to do: a video segment that never comes (skipped after the latency target, the hole
 *   jumped, playback goes on) and a GOAWAY (a second session in parallel, the old one closes).
 * Behaviour is asserted, not timing precision: latency is checked against the target plus seconds.
 * Also: the page's playhead rule (src/web/warp/latency.ts), which is pure.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import test, { after, before, describe } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { LiveStream } from '../../src/cli/live-stream.js';
import { WEB_ROOT } from '../../src/cli/serve.js';
import { Origin, developmentCertificate } from '../../src/origin/index.js';
import { DEFAULT_AUDIO, parseLadder } from '../../src/source/index.js';
import { WARP_PATH, WarpProducer, WarpServer, type WarpSource } from '../../src/warp/index.js';
import { SessionRouter } from '../../src/webtransport/index.js';
import { planPlayhead } from '../../src/web/warp/latency.js';
import type { WarpPlayerStats } from '../../src/web/warp/stats.js';
import { launchChromium } from '../support/browser.js';
import { startServe, type RunningServe } from '../support/pushcast-process.js';
import { until } from '../support/wait.js';

/** The Warp part of the player's stats (src/web/player/stats.ts), once the mode runs. */
const stats = (page: Page) =>
  until('the Warp mode on the page', () =>
    page.evaluate(
      () =>
        (window as unknown as { pushcastStats: () => { warp: WarpPlayerStats | null } | null }).pushcastStats()?.warp ??
        null,
    ),
  );
/** Polls the page's stats until `ok` holds; fails with the last snapshot after `ms`. */
async function untilStats(
  page: Page,
  what: string,
  ok: (s: WarpPlayerStats) => boolean,
  ms = 20_000,
): Promise<WarpPlayerStats> {
  let last: WarpPlayerStats | undefined;
  return until(
    what,
    async () => {
      last = await stats(page);
      return ok(last) && last;
    },
    { timeoutMs: ms, intervalMs: 250, detail: () => `the page says ${JSON.stringify({ ...last, recent: undefined })}` },
  );
}

const playing = (s: WarpPlayerStats) =>
  s.transport !== null && s.segmentsReceived >= 3 && s.framesShown > 0 && s.latencyMs !== null;

/** Plays, then checks that frames keep coming and the latency is near the target. */
async function assertPlays(page: Page, transport: 'webtransport' | 'websocket'): Promise<WarpPlayerStats> {
  const first = await untilStats(page, `playback over ${transport}`, playing);
  // Two seconds of frames more: playback goes on after it started.
  const s = await untilStats(page, 'frames to keep coming', (x) => x.framesShown >= first.framesShown + 50, 10_000);
  assert.equal(s.transport, transport);
  assert.ok(s.framesShown > first.framesShown, `frames keep coming (${first.framesShown} → ${s.framesShown})`);
  assert.ok(s.segmentsReceived >= 3, `${s.segmentsReceived} segments received`);
  assert.equal(s.segmentsSkipped, 0, 'nothing skipped');
  assert.ok(
    s.latencyMs !== null && s.latencyMs > 0 && s.latencyMs < s.targetLatencyMs + 3000,
    `latency ${s.latencyMs} ms for a target of ${s.targetLatencyMs} ms`,
  );
  return s;
}

test('the playhead rule: start at live − target, catch up, jump holes, speed up a little, hold for a raised target', () => {
  const r = (start: number, end: number) => ({ start, end });
  const base = { target: 2, started: true, stuck: false };
  // Not started: waits until the position live − target is buffered, then starts there (not earlier: media
  // buffered ahead of it is not due yet).
  assert.deepEqual(
    planPlayhead({ ranges: [r(10, 11)], currentTime: 0, target: 2, live: 11.5, started: false, stuck: false }),
    { rate: 1 },
  );
  assert.deepEqual(
    planPlayhead({ ranges: [r(10, 11.8)], currentTime: 0, target: 2, live: 12, started: false, stuck: false }),
    { seek: 10, why: 'start', rate: 1 },
  );
  assert.deepEqual(
    planPlayhead({ ranges: [r(10, 13)], currentTime: 0, target: 2, live: 13.3, started: false, stuck: false }),
    { seek: 11.3, why: 'start', rate: 1 },
  );
  // Taking over from another mode: at the first media once 0.3 s of it is there, though newer than live − target.
  assert.deepEqual(
    planPlayhead({
      ranges: [r(10, 10.2)],
      currentTime: 0,
      target: 3,
      live: 11.5,
      started: false,
      stuck: false,
      startEarly: true,
    }),
    { rate: 1 },
  );
  assert.deepEqual(
    planPlayhead({
      ranges: [r(10, 10.5)],
      currentTime: 0,
      target: 3,
      live: 11.5,
      started: false,
      stuck: false,
      startEarly: true,
    }),
    { seek: 10.01, why: 'start', rate: 1 },
  );
  // Without a live point, the buffered edge stands in for it: waits until the buffer spans the target.
  assert.deepEqual(planPlayhead({ ranges: [r(10, 11)], currentTime: 0, target: 2, started: false, stuck: false }), {
    rate: 1,
  });
  assert.deepEqual(planPlayhead({ ranges: [r(10, 13)], currentTime: 0, target: 2, started: false, stuck: false }), {
    seek: 11,
    why: 'start',
    rate: 1,
  });
  // Behind live − target by more than the slack: seek there.
  assert.deepEqual(planPlayhead({ ...base, ranges: [r(0, 20)], currentTime: 15, live: 20.2 }), {
    seek: 18.2,
    why: 'behind',
    rate: 1,
  });
  // A hole (the cut end of a segment): the playhead stuck before it, or in it, jumps to where media continues…
  assert.deepEqual(
    planPlayhead({ ...base, ranges: [r(0, 10), r(10.5, 11.5)], currentTime: 9.8, live: 11.9, stuck: true }),
    { seek: 10.51, why: 'gap', rate: 1 },
  );
  assert.deepEqual(
    planPlayhead({ ...base, ranges: [r(0, 10), r(12, 13.5)], currentTime: 11, live: 13.2, stuck: true }),
    { seek: 12.01, why: 'gap', rate: 1 },
  );
  // …or, reaching its end while playing, jumps without waiting to be stuck, to live − target where that is buffered.
  assert.deepEqual(planPlayhead({ ...base, ranges: [r(0, 10), r(10.5, 12.5)], currentTime: 9.97, live: 12.2 }), {
    seek: 10.51,
    why: 'gap',
    rate: 1,
  });
  assert.deepEqual(
    planPlayhead({ ...base, ranges: [r(0, 10), r(10.4, 12.5)], currentTime: 10.3, live: 12.55, stuck: true }),
    { seek: 10.55, why: 'gap', rate: 1 },
  );
  // Not stuck, short of the end of a range followed by another: on the way, not yet.
  assert.deepEqual(planPlayhead({ ...base, ranges: [r(0, 10), r(10.5, 11.5)], currentTime: 9.8, live: 11.8 }), {
    rate: 1,
  });
  // Far behind with a hole in the way: the catch-up seek lands where media continues.
  assert.deepEqual(
    planPlayhead({ ...base, ranges: [r(0, 10), r(12, 13.5)], currentTime: 9.8, live: 13.5, stuck: true }),
    { seek: 12.01, why: 'behind', rate: 1 },
  );
  // Behind by a little: a little faster, at most 1.1x; at the target: 1.0x.
  const faster = planPlayhead({ ...base, ranges: [r(0, 20)], currentTime: 17.9, live: 20.1 });
  assert.ok(faster.seek === undefined && faster.rate > 1 && faster.rate <= 1.1, JSON.stringify(faster));
  assert.deepEqual(planPlayhead({ ...base, ranges: [r(0, 20)], currentTime: 18, live: 20 }), { rate: 1 });
  // Ahead of a raised target: hold until the playhead is that far behind. Ahead without a raise (a playback
  // that started early): no hold, a little slower until the target's margin is back.
  assert.deepEqual(
    planPlayhead({ ...base, ranges: [r(0, 20)], currentTime: 19, target: 5, live: 20.1, targetRaised: true }),
    { rate: 1, hold: true },
  );
  assert.deepEqual(planPlayhead({ ...base, ranges: [r(0, 20)], currentTime: 19, target: 5, live: 20.1 }), {
    rate: 0.96,
  });
  assert.deepEqual(planPlayhead({ ...base, ranges: [r(0, 20)], currentTime: 18.05, target: 2, live: 20 }), { rate: 1 });
});

describe('the Warp player page, from pushcast serve', () => {
  let state: string;
  let serve: RunningServe;
  let browser: Browser;
  let playerUrl: string;

  before(async () => {
    state = mkdtempSync(join(os.tmpdir(), 'pushcast-warp-player-'));
    // Any address (dual stack): Chromium tries ::1 for localhost and, over QUIC, does not fall back to 127.0.0.1.
    serve = await startServe([
      '--ladder',
      '320x180@300k',
      '--no-multicast',
      '--warp-token',
      'letmein',
      '--state-dir',
      state,
      '--host',
      '0.0.0.0',
    ]);
    playerUrl = (await serve.waitForLine(/^warp player: /)).replace(/^warp player: /, '');
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await serve?.stop();
    rmSync(state, { recursive: true, force: true });
  });

  test('plays over WebTransport: frames, segments, nothing skipped, latency near the target', {
    timeout: 40_000,
  }, async () => {
    assert.match(playerUrl, /^http:\/\/localhost:\d+\/warp\/$/, 'serve prints the page, on a secure-context origin');
    const page = await browser.newPage();
    await page.goto(`${playerUrl}?token=letmein`);
    const s = await assertPlays(page, 'webtransport');
    assert.match(s.sessionUrl!, /^https:\/\/localhost:\d+\/warp\/live\?/);
    assert.equal(await page.textContent('pushcast-player .message'), '', 'no problem shown');
    await page.close();
  });

  test('plays over the WebSocket fallback with ?transport=websocket', { timeout: 40_000 }, async () => {
    const page = await browser.newPage();
    await page.goto(`${playerUrl}?token=letmein&transport=websocket&latency=3000`);
    const s = await assertPlays(page, 'websocket');
    assert.equal(s.targetLatencyMs, 3000);
    assert.match(s.sessionUrl!, /^ws:\/\/localhost:\d+\/warp\/live\?/, 'the fallback on the page’s own origin');
    await page.close();
  });

  test('a wrong token: the page says so in plain words, and plays nothing', { timeout: 40_000 }, async () => {
    const page = await browser.newPage();
    await page.goto(`${playerUrl}?token=wrong`);
    const s = await untilStats(page, 'the failure shown', (x) => x.state === 'failed' && x.errors.length > 0, 15_000);
    assert.equal(s.transport, null);
    assert.equal(s.framesShown, 0);
    const message = (await page.textContent('pushcast-player .message')) ?? '';
    assert.match(message, /turned the Warp session .* away/);
    assert.match(message, /token/);
    await page.close();
  });
});

/**
 * What `pushcast serve` wires (live encoder → window → origin with HTTP/3 → Warp), in this process, with
 * a hand on the broadcast: the Warp server gets the producer's segments through a filter that can drop one.
 */
async function startDrivenServer() {
  const dir = mkdtempSync(join(os.tmpdir(), 'pushcast-warp-driven-'));
  const certificate = developmentCertificate(join(dir, 'tls'));
  const stream = new LiveStream({
    source: {
      input: { kind: 'test-pattern' },
      video: parseLadder('320x180@300k'),
      audio: DEFAULT_AUDIO,
      frameRate: 25,
      passthrough: false,
    },
    segmentDuration: 2,
    chunkDuration: 0.2,
    timeShiftBufferDepth: 30,
    log: () => {},
  });
  const router = new SessionRouter();
  const warp = new WarpServer();
  router.route(WARP_PATH, warp);
  const origin = new Origin({
    window: stream.window,
    timeline: stream.timeline,
    webRoot: WEB_ROOT,
    lowLatency: true,
    chunkDuration: 0.2,
    targetLatency: 3,
    webTransport: router,
    delivery: (webTransport) => ({
      version: 1,
      broadcast: 'live',
      targetLatencyMs: 3000,
      order: ['warp-webtransport', 'warp-websocket'],
      dash: { manifest: 'manifest.mpd' },
      warp: { path: '/warp/live', webTransport },
    }),
  });
  const addresses = await origin.listen({ host: '0.0.0.0', port: 0, tlsPort: 0, certificate, http3: true });
  await stream.start();
  await stream.whenLive();
  const producer = new WarpProducer({
    broadcast: 'live',
    window: stream.window,
    timeline: stream.timeline,
    policy: 'newest-first',
  });
  let dropVideo = 0;
  const dropped: string[] = [];
  const filtered = Object.assign(new EventEmitter(), {
    o: producer.o,
    catalog: () => producer.catalog(),
    init: (id: string) => producer.init(id),
    current: () => producer.current(),
  });
  producer.on('segment', (source: WarpSource) => {
    if (dropVideo > 0 && source.track.startsWith('video')) {
      dropVideo--;
      dropped.push(source.headers.path ?? '?');
      return;
    }
    filtered.emit('segment', source);
  });
  warp.add(filtered as unknown as WarpProducer);
  return {
    player: `${addresses.http!}/warp/`,
    warpUrl: `${addresses.https!}/warp/live`,
    warp,
    dropped,
    /** The next video segment never reaches any viewer. */
    dropNextVideoSegment: () => void dropVideo++,
    async close() {
      await warp.close();
      producer.close();
      await Promise.all([stream.stop(), origin.close()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('the Warp player page, against a server the test drives', () => {
  let server: Awaited<ReturnType<typeof startDrivenServer>>;
  let browser: Browser;

  before(async () => {
    server = await startDrivenServer();
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('a video segment that never comes: skipped after the target, the hole passed, playback goes on', {
    timeout: 40_000,
  }, async () => {
    const page = await browser.newPage();
    await page.goto(server.player);
    await untilStats(page, 'playback', playing);
    server.dropNextVideoSegment();
    // The playhead passes the hole by a gap jump, or, when it had to wait at the hole, by the catch-up seek.
    const skipped = await untilStats(
      page,
      'the skip and the hole passed',
      (s) => s.segmentsSkipped >= 1 && s.gapJumps + s.catchUpSeeks >= 1 && s.state === 'playing',
      20_000,
    );
    assert.equal(server.dropped.length, 1);
    assert.ok(
      skipped.recent.some((r) => r.state === 'skipped' && r.track.startsWith('video')),
      'the panel lists the skipped segment',
    );
    const s = await untilStats(page, 'frames after the hole', (x) => x.framesShown > skipped.framesShown + 25, 10_000);
    assert.equal(s.segmentsSkipped, 1, 'only the dropped segment');
    assert.ok(
      s.latencyMs !== null && s.latencyMs < s.targetLatencyMs + 3000,
      `latency ${s.latencyMs} ms after the hole`,
    );
    await page.close();
  });

  test('GOAWAY: a second session in parallel, the old one closes, playback goes on', { timeout: 40_000 }, async () => {
    const page = await browser.newPage();
    await page.goto(server.player);
    const first = await untilStats(page, 'playback', playing);
    assert.equal(first.sessionsOpened, 1);
    // The page before this one said goodbye when it closed (pagehide): only this page's session is left.
    await until('one session at the server', () => server.warp.stats().sessions === 1, { timeoutMs: 5000 });
    await server.warp.goaway(server.warpUrl, 1500); // tells the session to move, waits the grace period, closes it with code 1
    const moved = await untilStats(
      page,
      'the GOAWAY followed',
      // The server ends the old session with code 1; Chromium sometimes reports its connection lost first.
      (s) => s.goaways === 1 && s.errors.some((e) => /closed after GOAWAY \((code 1|error: Connection lost)/.test(e)),
      10_000,
    );
    assert.equal(moved.sessionsOpened, 2);
    assert.equal(moved.transport, 'webtransport');
    await until('the old session gone, the new one staying', () => server.warp.stats().sessions === 1, {
      timeoutMs: 5000,
    });
    // The segment under way on the old session when it closed is cut short (the consumer dropped the new
    // session's copy as a duplicate): a hole of up to a segment, which the playhead jumps.
    const s = await untilStats(
      page,
      'playback on the new session',
      (x) => x.framesShown > moved.framesShown + 25 && x.state === 'playing',
      15_000,
    );
    assert.equal(s.segmentsSkipped, 0, 'nothing skipped in the move');
    assert.ok(!s.errors.some((e) => /reconnecting|could not be followed/.test(e)), s.errors.join('\n'));
    assert.ok(
      s.latencyMs !== null && s.latencyMs < s.targetLatencyMs + 3000,
      `latency ${s.latencyMs} ms after the move`,
    );
    await page.close();
  });
});
