// needs: root, chromium, ffmpeg, nftables
/**
 * The player (`/`, `<pushcast-player>`, src/web/player) in Chromium, choosing and moving between delivery
 * modes under real failures: a separate multicast gateway killed and restarted, UDP to the origin's QUIC
 * port dropped by nftables and let through again. Each test asserts the sequence of modes and that
 * playback kept advancing; the frozen time of each move is printed (the benchmark keeps the figures).
 * Also: an origin without multicast → Warp; a page of another origin embeds the element and plays; bad
 * sources give one clear sentence; destroy() leaves no session open at the origin.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { PlayerStats } from '../../src/web/player/stats.js';
import { launchChromium } from '../support/browser.js';
import { NetworkLab } from '../support/netns.js';
import { runPushcast, startServe, type RunningPushcast, type RunningServe } from '../support/pushcast-process.js';
import { playerStats, untilPlayerStats } from '../support/player-page.js';
import { until } from '../support/wait.js';

const HOLD_DOWN_MS = 8000;

const stats = playerStats;
const untilStats = (page: Page, what: string, ok: (s: PlayerStats) => boolean, ms?: number) =>
  untilPlayerStats(page, what, ok, { timeoutMs: ms, intervalMs: 200 });

const sequence = (s: PlayerStats) => s.moves.map((m) => m.to).join(' → ');
const describeMoves = (s: PlayerStats) =>
  `attempts: ${s.attempts.map((a) => `${a.mode} ${a.result} in ${a.ms} ms`).join(', ')}; moves: ` +
  s.moves
    .map(
      (m) =>
        `${m.from ?? '–'} → ${m.to} (${m.cause}): picture frozen ${m.frozenMs} ms, sound ${m.audioFrozenMs} ms, latency 2 s after ${m.latencyAfterMs} ms`,
    )
    .join('; ');

/** Waits until the page shows `frames` more frames than now: playback advances. */
async function advances(page: Page, what: string, frames = 50): Promise<PlayerStats> {
  const from = (await stats(page))?.framesShown ?? 0;
  return untilStats(page, `${what}: ${frames} more frames`, (s) => s.framesShown >= from + frames, 20_000);
}

describe('the player over every mode, from pushcast serve with a separate gateway', () => {
  let state: string;
  let serve: RunningServe;
  let gateway: RunningPushcast | undefined;
  let browser: Browser;
  let lab: NetworkLab;
  const gatewayPort = 18644;

  const startGateway = async () => {
    gateway = runPushcast('gateway', [
      '--origin',
      serve.manifest,
      '--host',
      '127.0.0.1',
      '--port',
      String(gatewayPort),
      '--allow-origin',
      new URL(serve.player).origin,
    ]);
    await gateway.waitForLine(/^gateway: ws:/, 10_000);
  };

  before(async () => {
    state = mkdtempSync(join(os.tmpdir(), 'pushcast-player-modes-'));
    serve = await startServe([
      '--multicast-group',
      '232.112.96.51',
      '--multicast-port',
      '5750',
      '--ladder',
      '640x360@800k',
      '--state-dir',
      state,
      '--gateway-url',
      `ws://127.0.0.1:${gatewayPort}/multicast/gateway`,
      // Dual stack: Chromium tries ::1 for localhost and, over QUIC, does not fall back to 127.0.0.1.
      '--host',
      '0.0.0.0',
    ]);
    await startGateway();
    browser = await launchChromium();
    lab = NetworkLab.create();
  });
  after(async () => {
    lab?.close();
    await gateway?.stop('SIGKILL');
    await browser?.close();
    await serve?.stop();
    rmSync(state, { recursive: true, force: true });
  });

  test('multicast first when advertised; the gateway killed → Warp; the gateway back → multicast after the hold-down', {
    timeout: 150_000,
  }, async (t) => {
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${serve.player}?holddown=${HOLD_DOWN_MS}`);
    await untilStats(page, 'multicast playing', (s) => s.mode === 'multicast' && s.state === 'playing', 40_000);
    await advances(page, 'multicast');
    await gateway!.stop('SIGKILL');
    const moved = await untilStats(page, 'the move off multicast', (s) => s.moves.length >= 2, 40_000);
    assert.equal(moved.moves[1]!.from, 'multicast');
    assert.equal(moved.moves[1]!.to, 'warp-webtransport', sequence(moved));
    assert.match(moved.moves[1]!.cause, /multicast pushes stopped/);
    await advances(page, 'after the move');
    await startGateway();
    const back = await untilStats(page, 'back on multicast', (s) => s.moves.length >= 3, 60_000);
    assert.deepEqual(
      back.moves.map((m) => m.to),
      ['multicast', 'warp-webtransport', 'multicast'],
      sequence(back),
    );
    assert.match(back.moves[2]!.cause, /better/);
    const end = await advances(page, 'back on multicast');
    t.diagnostic(describeMoves(end));
    assert.ok(end.bytesByRoute.push > 0 && end.bytesByRoute.warp > 0, JSON.stringify(end.bytesByRoute));
    assert.deepEqual(pageErrors, []);
    await page.close();
  });

  test('UDP to the QUIC port dropped → the WebSocket fallback; let through again → WebTransport', {
    timeout: 150_000,
  }, async (t) => {
    const page = await browser.newPage();
    await page.goto(`${serve.player}?order=warp-webtransport,warp-websocket,dash&holddown=${HOLD_DOWN_MS}`);
    const first = await untilStats(
      page,
      'WebTransport playing',
      (s) => s.mode === 'warp-webtransport' && s.state === 'playing',
    );
    await advances(page, 'WebTransport');
    const quicPort = new URL((await serve.waitForLine(/^https player: /)).replace(/^https player: /, '')).port;
    const blocked = lab.loss(undefined, 100, ['udp', 'dport', quicPort]);
    const moved = await untilStats(page, 'the move to the fallback', (s) => s.moves.length >= 2, 30_000);
    assert.equal(moved.moves[1]!.to, 'warp-websocket', sequence(moved));
    // Chromium's QUIC notices the silence first (Connection lost), or the player's own silence check.
    assert.match(moved.moves[1]!.cause, /no Warp data|session closed/);
    await advances(page, 'on the fallback');
    assert.ok(blocked.dropped().packets > 0, 'UDP was dropped');
    blocked.remove();
    const back = await untilStats(page, 'back on WebTransport', (s) => s.moves.length >= 3, 60_000);
    assert.deepEqual(
      back.moves.map((m) => m.to),
      ['warp-webtransport', 'warp-websocket', 'warp-webtransport'],
    );
    const end = await advances(page, 'back on WebTransport');
    assert.ok(end.framesShown > first.framesShown);
    t.diagnostic(describeMoves(end));
    await page.close();
  });

  test('destroy() closes every Warp session and WebSocket at the origin', { timeout: 60_000 }, async () => {
    const gauge = async (name: string) => {
      const text = await (await fetch(serve.metrics)).text();
      return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN);
    };
    const base = { warp: await gauge('pushcast_warp_sessions'), ws: await gauge('pushcast_websocket_sessions') };
    const page = await browser.newPage();
    await page.goto(`${serve.player}?order=warp-websocket`);
    await untilStats(page, 'the fallback playing', (s) => s.mode === 'warp-websocket' && s.state === 'playing');
    assert.equal(await gauge('pushcast_websocket_sessions'), base.ws + 1);
    await page.evaluate(() => document.querySelector('pushcast-player')!.remove());
    await until('no session left at the origin', async () => {
      const now = { warp: await gauge('pushcast_warp_sessions'), ws: await gauge('pushcast_websocket_sessions') };
      return now.warp === base.warp && now.ws === base.ws;
    });
    await page.close();
  });
});

describe('the player: an origin without multicast, another origin embedding it, bad sources', () => {
  let state: string;
  let serve: RunningServe;
  let browser: Browser;
  let other: Server;
  let otherOrigin: string;

  before(async () => {
    state = mkdtempSync(join(os.tmpdir(), 'pushcast-player-embed-'));
    serve = await startServe(['--no-multicast', '--ladder', '320x180@300k', '--state-dir', state, '--host', '0.0.0.0']);
    browser = await launchChromium();
    // A page of another origin (127.0.0.1 vs localhost, another port): a site that embeds the player.
    const origin = new URL(serve.player).origin;
    other = createServer((req, res) => {
      const src = new URL(req.url ?? '/', 'http://x').searchParams.get('src') ?? `${origin}/live/manifest.mpd`;
      if (req.url?.startsWith('/bad/delivery.json')) {
        res.writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': '*' });
        return void res.end('{"version":1,"broadcast":"b","targetLatencyMs":1000,"order":"everything"}');
      }
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><script type="module" src="${origin}/player/pushcast-player.js"></script>
<pushcast-player src="${src}" style="width: 640px"></pushcast-player>`);
    });
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    otherOrigin = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
  });
  after(async () => {
    await browser?.close();
    await serve?.stop();
    await new Promise((resolve) => other?.close(resolve));
    rmSync(state, { recursive: true, force: true });
  });

  const elementStats = (page: Page) =>
    page.evaluate(
      () =>
        (
          document.querySelector('pushcast-player') as unknown as { player?: { stats(): PlayerStats } }
        ).player?.stats() ?? null,
    );
  const message = (page: Page) => page.textContent('pushcast-player .message');

  test('without multicast, the default page plays Warp over WebTransport', { timeout: 60_000 }, async () => {
    const page = await browser.newPage();
    await page.goto(serve.player);
    const s = await untilStats(page, 'Warp playing', (x) => x.mode === 'warp-webtransport' && x.state === 'playing');
    assert.equal(s.unavailable.multicast, 'the origin does not offer it');
    assert.deepEqual(s.order, ['warp-webtransport', 'warp-websocket', 'dash']);
    await advances(page, 'Warp');
    await page.close();
  });

  test('a page of another origin embeds <pushcast-player> and plays (CORS)', {
    timeout: 60_000,
  }, async (t: TestContext) => {
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${otherOrigin}/`);
    const s = await until(
      'the embedded player playing',
      async () => {
        const x = await elementStats(page);
        return x !== null && x.state === 'playing' && x.framesShown > 25 && x;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    t.diagnostic(`embedded: ${s.mode}, ${s.modeReason}`);
    assert.equal(s.mode, 'warp-webtransport');
    assert.deepEqual(pageErrors, []);
    await page.close();
  });

  test('a browser without WebTransport: left out with the reason, the WebSocket fallback plays', {
    timeout: 60_000,
  }, async () => {
    const page = await browser.newPage();
    await page.addInitScript(() => {
      delete (window as unknown as { WebTransport?: unknown }).WebTransport;
    });
    await page.goto(`${otherOrigin}/`);
    const s = await until('the fallback playing', async () => {
      const x = await elementStats(page);
      return x !== null && x.state === 'playing' && x.framesShown > 25 && x;
    });
    assert.equal(s.mode, 'warp-websocket');
    assert.equal(s.unavailable['warp-webtransport'], 'this browser has no WebTransport');
    await page.close();
  });

  test('bad sources: one clear sentence in the element, the reason in the stats, no unhandled error', {
    timeout: 60_000,
  }, async () => {
    const origin = new URL(serve.player).origin;
    const cases: [string, RegExp, string][] = [
      ['http://127.0.0.1:9/live/manifest.mpd', /does not answer/, 'ORIGIN_UNREACHABLE'],
      [`${origin}/nothing/manifest.mpd`, /There is no broadcast at/, 'NO_BROADCAST'],
      [
        `${otherOrigin}/bad/manifest.mpd`,
        /delivery description at .* is malformed: order is not a list/,
        'DESCRIPTION_MALFORMED',
      ],
    ];
    for (const [src, sentence, code] of cases) {
      const page = await browser.newPage();
      const pageErrors: string[] = [];
      page.on('pageerror', (e) => pageErrors.push(e.message));
      await page.addInitScript(() => {
        (window as unknown as { errorCodes: string[] }).errorCodes = [];
        document.addEventListener(
          'error',
          (e) =>
            (window as unknown as { errorCodes: string[] }).errorCodes.push((e as unknown as CustomEvent).detail?.code),
          true,
        );
      });
      await page.goto(`${otherOrigin}/?src=${encodeURIComponent(src)}`);
      const s = await until(
        `the failure for ${src}`,
        async () => {
          const x = await elementStats(page);
          return x !== null && x.state === 'failed' && x;
        },
        { timeoutMs: 15_000 },
      );
      assert.match(s.message, sentence);
      assert.match((await message(page)) ?? '', sentence, 'the element shows it');
      assert.deepEqual(pageErrors, [], 'no unhandled exception');
      const codes = await page.evaluate(() => (window as unknown as { errorCodes: string[] }).errorCodes);
      assert.deepEqual(codes, [code], 'one error event, with its code');
      await page.close();
    }
    // A browser without Media Source Extensions: nothing to try, and it says why.
    const page = await browser.newPage();
    await page.addInitScript(() => {
      delete (window as unknown as { MediaSource?: unknown }).MediaSource;
    });
    await page.goto(`${otherOrigin}/`);
    const s = await until('the capability failure', async () => {
      const x = await elementStats(page);
      return x !== null && x.state === 'failed' && x;
    });
    assert.match(s.message, /This browser cannot play the broadcast: .*Media Source Extensions/);
    await page.close();
  });
});
