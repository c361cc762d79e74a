// needs: ffmpeg, chromium
/**
 * An encoder passed through (`--passthrough`, key frames every 1.7 s against 1 s segments) that disconnects
 * and comes back 3 s later, played by the page's LL-DASH player: the SegmentTimeline has a gap there, past
 * which dash.js finds no segment on its own; the player goes on after it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { launchChromium } from '../support/browser.js';
import { runPushcast } from '../support/pushcast-process.js';
import { until } from '../support/wait.js';

interface Stats {
  playing: boolean;
  currentTime: number;
  framesDecoded: number;
  errors: string[];
}

async function freeTcpPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function push(url: string, seconds: number) {
  const child = spawn(
    'ffmpeg',
    [
      ...['-hide_banner', '-loglevel', 'error', '-nostdin'],
      ...['-re', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25'],
      ...['-re', '-f', 'lavfi', '-i', 'sine=sample_rate=48000', '-t', String(seconds)],
      ...['-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-bf', '0', '-pix_fmt', 'yuv420p'],
      ...['-g', '1000', '-sc_threshold', '0', '-force_key_frames', 'expr:eq(n,0)+gte(t,n_forced*1.7)'],
      ...['-c:a', 'aac', '-ar', '48000', '-f', 'flv', url],
    ],
    { stdio: 'ignore' },
  );
  return once(child, 'exit');
}

test('LL-DASH plays a passed-through encoder across its reconnection (a gap in the SegmentTimeline)', async (t) => {
  const http = await freeTcpPort();
  const serve = runPushcast(
    'serve',
    [
      ...['--tls-port', 'off', '--host', '127.0.0.1', '--port', String(http), '--no-multicast'],
      ...['--segment-duration', '1', '--passthrough', '--input', 'rtmp://127.0.0.1:0/live/k'],
    ],
    { timeoutMs: 30_000 },
  );
  t.after(() => serve.stop());
  const listening = await serve.waitForLine(/ingest: listening on rtmp:/);
  const url = `rtmp://127.0.0.1:${/:(\d+)\/live/.exec(listening)![1]}/live/k`;
  const pushes = push(url, 6).then(async () => {
    await new Promise((resolve) => setTimeout(resolve, 3000));
    return push(url, 12);
  });
  await serve.waitForLine(/^manifest: /);

  const browser = await launchChromium();
  t.after(() => browser.close());
  const page = await browser.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`http://127.0.0.1:${http}/?mode=dash`);
  const stats = () =>
    page.evaluate(() => (window as unknown as { pushcastStats: () => { dash: Stats | null } }).pushcastStats()?.dash);
  await until('playback', async () => ((await stats())?.framesDecoded ?? 0) > 0, { timeoutMs: 20_000 });

  await until('the reconnection', () => serve.lines.filter((l) => /ingest: encoder connected/.test(l)).length === 2, {
    timeoutMs: 20_000,
  });
  const before = (await stats())!;
  const after = await until(
    'two seconds of picture after the reconnection',
    async () => {
      const s = (await stats())!;
      return s.playing && s.currentTime > before.currentTime + 5 && s;
    },
    { timeoutMs: 20_000, intervalMs: 250, detail: () => JSON.stringify(before) },
  );
  t.diagnostic(
    `before ${before.currentTime.toFixed(2)} s, after ${after.currentTime.toFixed(2)} s, frames ${after.framesDecoded}; ${after.errors.join('; ')}`,
  );
  assert.ok(after.framesDecoded > before.framesDecoded + 25, 'new frames decoded after the gap');
  assert.deepEqual(pageErrors, []);
  await pushes;
});
