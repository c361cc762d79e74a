// needs: ffmpeg, chromium
/**
 * `@moq/publish` (the npm package, pinned: 0.2.17 with its @moq/net 0.1.9) publishes Chromium's fake camera
 * and microphone to `pushcast serve --input moq://camera?token=…` from a page of another origin (the element
 * bundled with esbuild from node_modules, the certificate trusted by the hashes pushcast publishes); pushcast
 * transcodes it to the ladder and the page's LL-DASH player plays it. Also: a wrong token is refused, and a
 * second publisher of the broadcast while one publishes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { after, before, describe } from 'node:test';
import { build } from 'esbuild';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../support/browser.js';
import { moqWatchPage, watchBundle, type WatchState } from '../support/moq-watch.js';
import { runPushcast, type RunningPushcast } from '../support/pushcast-process.js';
import { until } from '../support/wait.js';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));
const TOKEN = 'pub-s3cret';

async function publishBundle(): Promise<string> {
  const out = await build({
    stdin: { contents: "import '@moq/publish/element';", resolveDir: REPO, loader: 'js' },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'chrome120',
    write: false,
    logLevel: 'silent',
  });
  return out.outputFiles[0]!.text;
}

/** `<moq-publish>` with the fake camera, pointed at pushcast with the certificate hash; `window.publishState()`. */
function publishPage(o: { url: string; hash: string; name: string }): string {
  return `<!doctype html><meta charset="utf-8"><title>moq-publish</title>
<moq-publish name=${JSON.stringify(o.name)} source="camera"></moq-publish>
<script type="module">
import './publish.js';
const el = document.querySelector('moq-publish');
el.connection.webtransport = { serverCertificateHashes: [{ algorithm: 'sha-256', value: ${JSON.stringify(o.hash)} }] };
el.connection.websocket = { enabled: false };
// The fake camera is 720p: at most 640x360, so that the two shared cores encode and transcode in real time.
el.broadcast.video.hd.config.set({ maxPixels: 640 * 360, frameRate: 25 });
el.setAttribute('url', ${JSON.stringify(o.url)});
</script>`;
}

interface DashStats {
  playing: boolean;
  currentTime: number;
  framesDecoded: number;
  errors: string[];
}

describe('@moq/publish contributes to pushcast serve', () => {
  let state: string;
  let serve: RunningPushcast;
  let browser: Browser;
  let pages: http.Server;
  let pagesBase: string;
  let moqUrl: string;
  let hash: string;
  let httpBase: string;
  const publishers: Page[] = [];

  before(async () => {
    state = mkdtempSync(join(os.tmpdir(), 'pushcast-moq-publish-'));
    // The HTTP port is chosen here: serve prints it once live, and the page needs the certificate hash before.
    const port = await freeTcpPort();
    httpBase = `http://127.0.0.1:${port}`;
    serve = runPushcast(
      'serve',
      [
        ...['--port', String(port), '--tls-port', '0', '--host', '0.0.0.0', '--no-multicast', '--state-dir', state],
        ...['--ladder', '320x180@300k', '--segment-duration', '1', '--input', `moq://camera?token=${TOKEN}`],
      ],
      { timeoutMs: 60_000 },
    );
    const line = await serve.waitForLine(/^moq publish: /);
    const m = /^moq publish: (\S+)\?token=… broadcast (\S+)$/.exec(line);
    assert.ok(m, line);
    moqUrl = m[1]!;
    assert.equal(m[2], 'camera');
    const info = (await (await fetch(`${httpBase}/.well-known/pushcast/webtransport.json`)).json()) as {
      serverCertificateHashes: { value: string }[];
    };
    hash = info.serverCertificateHashes[0]!.value;
    const bundle = await publishBundle();
    const watch = await watchBundle();
    pages = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/publish.js')
        return void res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
      if (url.pathname === '/watch.js')
        return void res.writeHead(200, { 'content-type': 'text/javascript' }).end(watch);
      // What pushcast made of the publisher, as <moq-watch> plays it: its own broadcast, live.
      if (url.pathname === '/watch')
        return void res.writeHead(200, { 'content-type': 'text/html' }).end(moqWatchPage({ url: moqUrl, hash }));
      const token = url.searchParams.get('token') ?? TOKEN;
      res
        .writeHead(200, { 'content-type': 'text/html' })
        .end(publishPage({ url: `${moqUrl}?token=${encodeURIComponent(token)}`, hash, name: 'camera' }));
    });
    await new Promise<void>((r) => pages.listen(0, '127.0.0.1', () => r()));
    pagesBase = `http://localhost:${(pages.address() as AddressInfo).port}`;
    browser = await launchChromium(['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream']);
  });
  after(async () => {
    await browser?.close();
    await new Promise((r) => (pages ? pages.close(r) : r(undefined)));
    await serve?.stop();
    rmSync(state, { recursive: true, force: true });
  });

  test('a wrong token is refused', { timeout: 30_000 }, async () => {
    const page = await browser.newPage();
    const refused: string[] = [];
    page.on('console', (m) => refused.push(m.text()));
    await page.goto(`${pagesBase}/?token=wrong`);
    // Chromium reports a refused extended CONNECT as ERR_METHOD_NOT_SUPPORTED, whatever its status.
    await until('the refusal', () => refused.some((t) => /Failed to establish a connection/.test(t)), {
      timeoutMs: 15_000,
      detail: () => refused.join('\n'),
    });
    await serve.waitForLine(/moq: session refused \(403\)/);
    assert.ok(!serve.lines.some((l) => /moq: publisher connected/.test(l)));
    await page.close();
  });

  test('the fake camera, published, plays in the LL-DASH player', { timeout: 90_000 }, async (t) => {
    const page = await browser.newPage();
    publishers.push(page);
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${pagesBase}/`);
    await serve.waitForLine(/moq: publisher connected: .* broadcast camera/, 20_000);
    const tracks = await serve.waitForLine(/moq: publisher \d+ .* sends video/, 20_000);
    t.diagnostic(tracks);
    await serve.waitForLine(/^manifest: /, 30_000);

    const player = await browser.newPage();
    const pageErrors: string[] = [];
    player.on('pageerror', (e) => pageErrors.push(e.message));
    await player.goto(`${httpBase}/?mode=dash`);
    const stats = () =>
      player.evaluate(
        () => (window as unknown as { pushcastStats: () => { dash: DashStats | null } }).pushcastStats()?.dash,
      );
    const first = await until('playback', async () => ((await stats())?.framesDecoded ?? 0) > 0 && stats(), {
      timeoutMs: 30_000,
    });
    const last = await until(
      'five seconds of picture',
      async () => {
        const s = (await stats())!;
        return s.playing && s.currentTime > first!.currentTime + 5 && s;
      },
      { timeoutMs: 30_000, intervalMs: 250, detail: () => JSON.stringify(first) },
    );
    t.diagnostic(
      `played ${first!.currentTime.toFixed(2)} → ${last.currentTime.toFixed(2)} s, ${last.framesDecoded} frames`,
    );
    assert.ok(last.framesDecoded > first!.framesDecoded + 50, 'frames decoded');
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(errors, []);
    // The MPD has the ladder's video and the transcoded audio.
    const mpd = await (await fetch(`${httpBase}/live/manifest.mpd`)).text();
    assert.match(mpd, /mimeType="video\/mp4"/);
    assert.match(mpd, /mimeType="audio\/mp4"/);
    await player.close();
  });

  test('and <moq-watch> plays what pushcast made of it, over MoQ', { timeout: 60_000 }, async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${pagesBase}/watch`);
    const read = () =>
      page.evaluate(() => (window as unknown as { watchState?: () => WatchState }).watchState?.() ?? null);
    const first = await until(
      '<moq-watch> to play',
      async () => {
        const s = await read();
        return s && s.videoFrames > 0 && s.videoTimestamp !== null && s;
      },
      { timeoutMs: 20_000, intervalMs: 250 },
    );
    const last = await until(
      'three seconds of video and audio',
      async () => {
        const s = await read();
        return s && s.videoTimestamp! - first.videoTimestamp! >= 3000 && s.audioTimestamp !== null && s;
      },
      { timeoutMs: 20_000, intervalMs: 250 },
    );
    assert.ok(last.videoFrames > first.videoFrames + 50, `frames ${first.videoFrames} → ${last.videoFrames}`);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('a second publisher of the broadcast is refused while one publishes', { timeout: 30_000 }, async () => {
    const page = await browser.newPage();
    await page.goto(`${pagesBase}/`);
    await serve.waitForLine(/moq: publisher refused: .*already has a publisher/, 20_000);
    await page.close();
  });

  test('the publisher leaving is told; the next one publishes, its media continuing the timeline', {
    timeout: 60_000,
  }, async () => {
    for (const p of publishers.splice(0)) await p.close();
    await serve.waitForLine(/moq: publisher left: /, 20_000);
    // Segments published, summed over the tracks (the MPD, a SegmentTemplate, does not change with them).
    const segments = async () => {
      const text = await (await fetch(`${httpBase}/metrics`)).text();
      return [...text.matchAll(/^pushcast_segments_published_total\{[^}]*\} (\d+)/gm)].reduce(
        (n, m) => n + Number(m[1]),
        0,
      );
    };
    const published = await segments();
    const page = await browser.newPage();
    await page.goto(`${pagesBase}/`);
    await serve.waitForLine(/moq: publisher connected: publisher \d+ .*broadcast camera/, 20_000);
    await serve.waitForLine(/encoder run 2 started/, 20_000);
    // New segments are published after the pause, from the second run.
    await until('new segments from the second publisher', async () => (await segments()) >= published + 4, {
      timeoutMs: 20_000,
      intervalMs: 500,
    });
    assert.ok(!serve.lines.some((l) => /packager .*restarting|ffmpeg said/.test(l)), serve.lines.join('\n'));
    await page.close();
  });
});

async function freeTcpPort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
