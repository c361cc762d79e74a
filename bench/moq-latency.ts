/**
 * `<moq-watch>` against pushcast's own Warp player, side by side on one `pushcast serve`:
 *   npm run build && node build/bench/moq-latency.js
 * MOQ_BENCH_S seconds of samples (60), MOQ_BENCH_WARP_LATENCY the Warp player's target, ms (its default:
 * serve's --target-latency, 3 s; `<moq-watch>` plays as early as it can), MOQ_BENCH_LADDER (640x360@1M).
 * Two pages in one headless Chromium, both over WebTransport: the Warp player page (`warp player:`, its
 * default latency target) and a page of another origin with `<moq-watch>` (npm, pinned) at `/moq`. Four
 * times a second each page's picture age is sampled: now − (availabilityStartTime + the presentation time
 * of the frame on screen), on the broadcast's timeline (the MPD's availabilityStartTime; the test pattern's
 * clock is encoded in real time, so this is capture to screen less the encoder's own delay). Prints the
 * distribution of each and writes build/bench/moq-latency.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from '../test/support/browser.js';
import { moqWatchPage, watchBundle, type WatchState } from '../test/support/moq-watch.js';
import { startServe } from '../test/support/pushcast-process.js';
import { until } from '../test/support/wait.js';
import { machine } from './machine.js';

const SECONDS = Number(process.env.MOQ_BENCH_S ?? 60);
const LADDER = process.env.MOQ_BENCH_LADDER ?? '640x360@1M';
/** The Warp player's latency target (`?latency=`, ms); unset: the page's default, serve's --target-latency. */
const WARP_LATENCY = process.env.MOQ_BENCH_WARP_LATENCY;
const OUT = fileURLToPath(new URL('./moq-latency.json', import.meta.url));

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function summary(samples: number[]) {
  const s = [...samples].sort((a, b) => a - b);
  return {
    samples: s.length,
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    min: s[0]!,
    max: s.at(-1)!,
  };
}

const state = mkdtempSync(join(os.tmpdir(), 'pushcast-moq-latency-'));
const serve = await startServe(['--ladder', LADDER, '--no-multicast', '--state-dir', state, '--host', '0.0.0.0']);
const pages: http.Server[] = [];
const browser = await launchChromium();
try {
  const moqUrl = /^moq: (\S+) /.exec(await serve.waitForLine(/^moq: /))![1]!;
  const warpPage = (await serve.waitForLine(/^warp player: /)).replace(/^warp player: /, '');
  const info = (await (await fetch(new URL('/.well-known/pushcast/webtransport.json', serve.player))).json()) as {
    serverCertificateHashes: { value: string }[];
  };
  const mpd = await (await fetch(serve.manifest)).text();
  const ast = Date.parse(/availabilityStartTime="([^"]+)"/.exec(mpd)![1]!);
  const bundle = await watchBundle();
  const server = http.createServer((req, res) => {
    if (req.url === '/watch.js') return void res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
    res
      .writeHead(200, { 'content-type': 'text/html' })
      .end(moqWatchPage({ url: moqUrl, hash: info.serverCertificateHashes[0]!.value }));
  });
  pages.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));

  const warp = await browser.newPage();
  const moq = await browser.newPage();
  await warp.goto(WARP_LATENCY === undefined ? warpPage : `${warpPage}?latency=${WARP_LATENCY}`);
  await moq.goto(`http://localhost:${(server.address() as AddressInfo).port}/`);
  const warpAge = () =>
    warp.evaluate(
      () =>
        (
          window as unknown as { pushcastStats: () => { warp: { latencyMs: number | null } | null } | null }
        ).pushcastStats()?.warp?.latencyMs ?? null,
    );
  const moqAge = () =>
    moq.evaluate((ast) => {
      const s = (window as unknown as { watchState?: () => WatchState }).watchState?.();
      return s?.shownTimestamp == null ? null : Date.now() - (ast + s.shownTimestamp);
    }, ast);
  await until('both pages to play', async () => (await warpAge()) !== null && (await moqAge()) !== null, {
    timeoutMs: 30_000,
    intervalMs: 250,
  });
  // A few seconds of steady playback before sampling.
  const settle = Date.now() + 5000;
  await until('the pages to settle', () => Date.now() >= settle, { timeoutMs: 10_000, intervalMs: 250 });
  const samples = { warp: [] as number[], moq: [] as number[] };
  const end = Date.now() + SECONDS * 1000;
  while (Date.now() < end) {
    const [w, m] = await Promise.all([warpAge(), moqAge()]);
    if (w !== null) samples.warp.push(w);
    if (m !== null) samples.moq.push(m);
    await new Promise((r) => setTimeout(r, 250));
  }
  const result = {
    seconds: SECONDS,
    ladder: LADDER,
    warpLatencyTarget: WARP_LATENCY === undefined ? 'default' : Number(WARP_LATENCY),
    machine: machine(),
    warpPlayer: summary(samples.warp),
    moqWatch: summary(samples.moq),
  };
  mkdirSync(join(OUT, '..'), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify(result, null, 2)}\n`);
  console.log(
    `picture age, ms, over ${SECONDS} s (${LADDER}; Warp player target ${WARP_LATENCY ?? 'default'}), sampled 4×/s:`,
  );
  for (const [name, s] of [
    ['Warp player (pushcast)', result.warpPlayer],
    ['<moq-watch> (MoQ)', result.moqWatch],
  ] as const)
    console.log(
      `${name.padEnd(24)} p50 ${s.p50}  p90 ${s.p90}  p99 ${s.p99}  min ${s.min}  max ${s.max}  (${s.samples} samples)`,
    );
  console.log(`machine: ${result.machine}`);
} finally {
  await browser.close();
  for (const p of pages) await new Promise((r) => p.close(r));
  await serve.stop();
  rmSync(state, { recursive: true, force: true });
}
