/**
 * `<moq-watch>` (the npm package, pinned: @moq/watch 0.4.6 with its @moq/net 0.2.8) plays `pushcast serve`'s
 * broadcast from MoQ (`/moq`, moq-lite-02, docs/moq.md), in headless Chromium, on a page of another origin
 * (a static server on another port) that loads the element bundled with esbuild from node_modules:
 * over WebTransport (the certificate trusted by the hashes pushcast publishes) and over the WebSocket
 * fallback (a page without WebTransport); and through `pushcast relay` in front of `pushcast serve`.
 * Asserted: the broadcast goes live, decoded video frames and their timestamps advance for seconds
 * (PUSHCAST_MOQ_WATCH_MS, default 30 s), audio with them, the protocol negotiated, and the page throws nothing.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import test, { after, before, describe } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../support/browser.js';
import { moqWatchPage, watchBundle, type WatchState } from '../support/moq-watch.js';
import { runPushcast, startServe, type RunningServe } from '../support/pushcast-process.js';
import { until } from '../support/wait.js';

/** How long playback is watched once it runs. */
const WATCH_MS = Number(process.env.PUSHCAST_MOQ_WATCH_MS ?? 30_000);

async function watch(
  page: Page,
  url: string,
  transport: 'webtransport' | 'websocket',
  protocol = transport === 'webtransport' ? 'moq-lite-03' : '(none)',
): Promise<WatchState> {
  const errors: string[] = [];
  const warnings: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  const negotiated: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') warnings.push(m.text());
    const alpn = /negotiated ALPN: (\S+)/.exec(m.text());
    if (alpn) negotiated.push(alpn[1]!);
  });
  await page.goto(url);
  const read = () =>
    page.evaluate(() => (window as unknown as { watchState?: () => WatchState }).watchState?.() ?? null);
  let last: WatchState | null = null;
  const detail = () => `the page says ${JSON.stringify(last)}; ${[...errors, ...warnings].join('; ')}`;
  const first = await until(
    `<moq-watch> to play over ${transport}`,
    async () => {
      last = await read();
      // Audio may start a little after the picture: both are running before the watch begins.
      return (
        last &&
        last.status === 'live' &&
        last.videoFrames > 0 &&
        last.videoTimestamp !== null &&
        last.audioTimestamp !== null &&
        last
      );
    },
    { timeoutMs: 20_000, intervalMs: 250, detail },
  );
  assert.equal(first.transport, transport);
  // @moq/net logs the protocol the server chose: `moq-lite-03` over WebTransport (WT-Protocol) unless the server
  // prefers `moqt-16`; the WebSocket fallback's bare `webtransport` subprotocol carries none.
  assert.deepEqual(negotiated, [protocol]);
  const started = Date.now();
  const end = await until(
    `video to keep advancing for ${WATCH_MS} ms`,
    async () => {
      last = await read();
      return Date.now() - started >= WATCH_MS && last;
    },
    { timeoutMs: WATCH_MS + 10_000, intervalMs: 500, detail },
  );
  const seconds = WATCH_MS / 1000;
  assert.ok(
    end.videoFrames - first.videoFrames >= seconds * 20,
    `frames decoded: ${first.videoFrames} → ${end.videoFrames}`,
  );
  assert.ok(
    end.videoTimestamp! - first.videoTimestamp! >= WATCH_MS * 0.7,
    `video time advanced ${end.videoTimestamp! - first.videoTimestamp!} ms in ${WATCH_MS} ms`,
  );
  // The audio decoder keeps no frame count; its timestamp is the audio decoded so far.
  assert.ok(
    first.audioTimestamp !== null && end.audioTimestamp! - first.audioTimestamp >= WATCH_MS * 0.7,
    `audio time advanced ${first.audioTimestamp} → ${end.audioTimestamp}; ${detail()}`,
  );
  assert.ok(Math.abs(end.audioTimestamp! - end.videoTimestamp!) < 1000, `audio and video together: ${detail()}`);
  assert.equal(end.status, 'live');
  assert.deepEqual(errors, [], 'no page errors');
  return end;
}

describe('<moq-watch> plays pushcast serve', () => {
  let state: string;
  let serve: RunningServe;
  let browser: Browser;
  let pages: http.Server;
  let pagesBase: string;
  let moqUrl: string;
  let hash: string;
  let bundle: string;

  before(async () => {
    state = mkdtempSync(join(os.tmpdir(), 'pushcast-moq-watch-'));
    // Any address (dual stack): Chromium tries ::1 for localhost and, over QUIC, does not fall back to 127.0.0.1.
    serve = await startServe(['--ladder', '320x180@300k', '--no-multicast', '--state-dir', state, '--host', '0.0.0.0']);
    const line = await serve.waitForLine(/^moq: /);
    const m = /^moq: (\S+) broadcast (\S+)$/.exec(line);
    assert.ok(m, line);
    moqUrl = m[1]!;
    assert.equal(m[2], 'live');
    assert.match(moqUrl, /^https:\/\/localhost:\d+\/moq$/);
    const info = (await (await fetch(new URL('/.well-known/pushcast/webtransport.json', serve.player))).json()) as {
      serverCertificateHashes: { value: string }[];
    };
    hash = info.serverCertificateHashes[0]!.value;
    bundle = await watchBundle();
    // The page's own origin: another port than pushcast's.
    pages = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/watch.js')
        return void res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
      const websocket = url.searchParams.get('websocket') ?? undefined;
      const moq = url.searchParams.get('moq') ?? moqUrl;
      res.writeHead(200, { 'content-type': 'text/html' }).end(moqWatchPage({ url: moq, hash, websocket }));
    });
    await new Promise<void>((r) => pages.listen(0, '127.0.0.1', () => r()));
    pagesBase = `http://localhost:${(pages.address() as AddressInfo).port}`;
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await new Promise((r) => (pages ? pages.close(r) : r(undefined)));
    await serve?.stop();
    rmSync(state, { recursive: true, force: true });
  });

  test('over WebTransport, from a page of another origin', { timeout: 90_000 }, async () => {
    const page = await browser.newPage();
    await watch(page, `${pagesBase}/`, 'webtransport');
    await page.close();
  });

  test('over the WebSocket fallback, on a page without WebTransport', { timeout: 90_000 }, async () => {
    const page = await browser.newPage();
    const ws = new URL('/moq', serve.player).href;
    await watch(page, `${pagesBase}/?websocket=${encodeURIComponent(ws)}`, 'websocket');
    await page.close();
  });
});

describe('<moq-watch> plays through pushcast relay', () => {
  // The relay chain: pushcast serve → pushcast relay (Warp upstream) → <moq-watch> (MoQ at the relay's /moq).
  test('over WebTransport, the relay in front of serve', { timeout: 120_000 }, async (t) => {
    const state = mkdtempSync(join(os.tmpdir(), 'pushcast-moq-relay-'));
    const serve = await startServe([
      '--ladder',
      '320x180@300k',
      '--no-multicast',
      '--state-dir',
      state,
      '--host',
      '0.0.0.0',
    ]);
    t.after(async () => {
      await serve.stop();
      rmSync(state, { recursive: true, force: true });
    });
    const origin = /^moq: (\S+) /.exec(await serve.waitForLine(/^moq: /))![1]!;
    // The same state directory: the relay's development certificate is the origin's, so is its hash.
    const relay = runPushcast(
      'relay',
      [
        '--port',
        '0',
        '--host',
        '0.0.0.0',
        '--upstream',
        `https://localhost:${new URL(origin).port}/warp/live`,
        '--ca',
        join(state, 'tls', 'dev-cert.pem'),
        '--state-dir',
        state,
      ],
      { timeoutMs: 20_000 },
    );
    t.after(() => relay.stop());
    const line = await relay.waitForLine(/^moq: /);
    const m = /^moq: (\S+) broadcast live$/.exec(line);
    assert.ok(m, line);
    const info = (await (await fetch(new URL('/.well-known/pushcast/webtransport.json', serve.player))).json()) as {
      serverCertificateHashes: { value: string }[];
    };
    const hash = info.serverCertificateHashes[0]!.value;
    const bundle = await watchBundle();
    const pages = http.createServer((req, res) => {
      if (req.url === '/watch.js') return void res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
      res.writeHead(200, { 'content-type': 'text/html' }).end(moqWatchPage({ url: m[1]!, hash }));
    });
    await new Promise<void>((r) => pages.listen(0, '127.0.0.1', () => r()));
    t.after(() => new Promise((r) => pages.close(r)));
    const browser = await launchChromium();
    t.after(() => browser.close());
    const page = await browser.newPage();
    const state2 = await watch(page, `http://localhost:${(pages.address() as AddressInfo).port}/`, 'webtransport');
    assert.equal(state2.status, 'live');
  });
});

describe('<moq-watch> plays pushcast serve in draft-ietf-moq-transport-16', () => {
  // `--moq-protocols moqt-16,…`: the server answers the IETF draft first among what the element offers.
  test('over WebTransport, moqt-16 negotiated', { timeout: 120_000 }, async (t) => {
    const state = mkdtempSync(join(os.tmpdir(), 'pushcast-moq-ietf-'));
    const serve = await startServe([
      '--ladder',
      '320x180@300k',
      '--no-multicast',
      '--state-dir',
      state,
      '--host',
      '0.0.0.0',
      '--moq-protocols',
      'moqt-16,moq-lite-03,moql',
    ]);
    t.after(async () => {
      await serve.stop();
      rmSync(state, { recursive: true, force: true });
    });
    const url = /^moq: (\S+) /.exec(await serve.waitForLine(/^moq: /))![1]!;
    const info = (await (await fetch(new URL('/.well-known/pushcast/webtransport.json', serve.player))).json()) as {
      serverCertificateHashes: { value: string }[];
    };
    const bundle = await watchBundle();
    const pages = http.createServer((req, res) => {
      if (new URL(req.url ?? '/', 'http://x').pathname === '/watch.js')
        return void res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
      res
        .writeHead(200, { 'content-type': 'text/html' })
        .end(moqWatchPage({ url, hash: info.serverCertificateHashes[0]!.value }));
    });
    await new Promise<void>((r) => pages.listen(0, '127.0.0.1', () => r()));
    const browser = await launchChromium();
    t.after(async () => {
      await browser.close();
      await new Promise((r) => pages.close(r));
    });
    const page = await browser.newPage();
    await watch(page, `http://localhost:${(pages.address() as AddressInfo).port}/`, 'webtransport', 'moqt-16');
  });
});
