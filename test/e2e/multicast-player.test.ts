/**
 * Multicast to the browser, end to end: `pushcast serve --multicast` (sender and gateway on the host's
 * loopback), Debian's Chromium playing the multicast player page, whose Service Worker receives the
 * segments through the gateway's WebSocket.
 * - Healthy: after joining, at least 95% of the media segments the player asks for are served from pushed
 *   responses, with no stall.
 * - 5% packet loss (nftables on the multicast ports; this kernel has no netem): no stall; segments that
 *   were repaired are byte-identical to the origin's; unicast repair bytes at most 1.5 × the bytes lost.
 * - An origin that advertises no multicast: the same page plays by unicast, with no stall.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import test, { type TestContext } from 'node:test';
import type { Page } from 'playwright-core';
import type { DashPlayerStats } from '../../src/web/dash/stats.js';
import type { PlayerStats } from '../../src/web/player/stats.js';
import { until } from '../support/wait.js';
import { launchChromium } from '../support/browser.js';
import { NetworkLab } from '../support/netns.js';
import { runPushcast, startServe, type RunningServe } from '../support/pushcast-process.js';

/** The multicast sessions' datagrams on their way into this host's sockets, of which a share is dropped. */
const SESSION_DATAGRAMS = ['ip', 'daddr', '232.112.96.0/24', 'udp', 'dport', '5700-5710'];

/** `pushcast serve` with `args`, Chromium, and a page on the multicast player; all cleaned up after the test. */
async function openPlayer(
  t: TestContext,
  args: string[],
): Promise<{ serve: RunningServe; page: Page; lab: NetworkLab }> {
  const state = mkdtempSync(join(os.tmpdir(), 'pushcast-mcplayer-'));
  const serve = await startServe([...args, '--state-dir', state]);
  const browser = await launchChromium();
  const lab = NetworkLab.create();
  t.after(async () => {
    lab.close();
    await browser.close();
    await serve.stop();
    rmSync(state, { recursive: true, force: true });
  });
  const page = await browser.newPage();
  await page.goto(`${serve.player.replace(/\/$/, '')}/multicast/`);
  return { serve, page, lab };
}

/** The DASH part of the player's stats (src/web/player/stats.ts), once the mode runs. */
const stats = (page: Page) =>
  until('the multicast mode on the page', () =>
    page.evaluate(
      () =>
        (window as unknown as { pushcastStats: () => { dash: DashPlayerStats | null } | null }).pushcastStats()?.dash ??
        null,
    ),
  );

async function play(page: Page, seconds: number, onTick?: (s: DashPlayerStats) => void): Promise<DashPlayerStats> {
  let s = await stats(page);
  for (let t = 0; t < seconds; t += 5) {
    await new Promise((r) => setTimeout(r, 5000));
    s = await stats(page);
    onTick?.(s);
  }
  return s;
}

test('the multicast player: pushed segments with no stall; 5% loss repaired by ranges, byte-identical', {
  timeout: 300_000,
}, async (t) => {
  // A long time-shift window: the repaired segments are compared with the origin's after the run.
  const { page, lab } = await openPlayer(t, [
    '--multicast',
    '--multicast-group',
    '232.112.96.1',
    '--multicast-port',
    '5700',
    '--ladder',
    '640x360@800k',
    '--time-shift',
    '300',
  ]);

  // 1. Healthy, 60 s. The first segments may come by unicast while the WebSockets open.
  let joinedAt: number | undefined;
  const healthy = await play(page, 60, (s) => {
    if (joinedAt === undefined && (s.multicast?.segments.push ?? 0) > 0) joinedAt = s.multicast!.segments.unicast;
  });
  const m1 = healthy.multicast!;
  assert.ok(m1, 'the Service Worker reports');
  assert.deepEqual(m1.advertised.sort(), ['audio-128k', 'video-360p']);
  const afterJoin = m1.segments.push + m1.segments.repaired + m1.segments.unicast - (joinedAt ?? 0);
  const pushed = m1.segments.push + m1.segments.repaired;
  assert.ok(afterJoin >= 50, `${afterJoin} segments requested after joining`);
  assert.ok(pushed / afterJoin >= 0.95, `after joining, ${pushed} of ${afterJoin} segments came from pushed responses`);
  assert.equal(healthy.stalls, 0, 'no stall');
  assert.ok(healthy.playing);
  assert.ok(m1.sessions.every((s) => s.state === 'open' && s.forged === 0));

  // 2. 5% loss, 40 s.
  const loss = lab.loss(undefined, 5, SESSION_DATAGRAMS);
  const before = m1.segments;
  const beforeRepairBytes = m1.repairBytes;
  const lossy = await play(page, 40);
  const lost = loss.dropped();
  const m2 = lossy.multicast!;
  assert.equal(lossy.stalls, 0, 'no stall under 5% loss');
  assert.ok(lost.packets > 0, 'nftables dropped datagrams');
  assert.ok(m2.segments.repaired > before.repaired, `segments repaired (${m2.segments.repaired - before.repaired})`);
  const repairBytes = m2.repairBytes - beforeRepairBytes;
  assert.ok(
    repairBytes <= 1.5 * lost.bytes,
    `repair fetched ${repairBytes} bytes by unicast for ${lost.bytes} bytes lost`,
  );
  const repaired = m2.recent.filter((r) => r.route === 'repaired');
  assert.ok(repaired.length > 0);
  let compared = 0;
  for (const r of repaired) {
    // SHA-256 of what the Service Worker holds, computed in the page, against the origin's bytes.
    const cached = await page.evaluate(async (url) => {
      const res = await (await caches.open('pushcast-multicast-v1')).match(url);
      if (!res) return null;
      const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', await res.arrayBuffer()));
      return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
    }, r.url);
    if (cached === null) continue; // evicted from the bounded cache meanwhile
    const response = await fetch(r.url);
    assert.equal(response.status, 200, `${r.url} is still at the origin`);
    const origin = createHash('sha256')
      .update(Buffer.from(await response.arrayBuffer()))
      .digest('hex');
    assert.equal(cached, origin, `${r.url}: the repaired segment equals the origin's`);
    compared++;
  }
  assert.ok(compared > 0, 'repaired segments were compared');
  t.diagnostic(
    `healthy: ${m1.segments.push} push, ${m1.segments.repaired} repaired, ${m1.segments.unicast} unicast (${joinedAt ?? 0} before joining), latency ${healthy.latency} s; ` +
      `5% loss: ${lost.packets} datagrams (${(lost.bytes / 1e3).toFixed(0)} kB) dropped, ${m2.segments.repaired - before.repaired} segments repaired with ${(repairBytes / 1e3).toFixed(0)} kB, ` +
      `${m2.segments.push - before.push} push, ${m2.segments.unicast - before.unicast} unicast, stalls ${lossy.stalls}`,
  );
});

test('the multicast page against an origin without multicast says so in one sentence; the default page plays', {
  timeout: 120_000,
}, async (t) => {
  const { page, serve } = await openPlayer(t, ['--no-multicast', '--ladder', '640x360@800k']);
  const failed = await until('the forced mode refused', () =>
    page.evaluate(() => {
      const s = (window as unknown as { pushcastStats: () => PlayerStats | null }).pushcastStats();
      return s?.state === 'failed' ? s : null;
    }),
  );
  assert.equal(failed.unavailable.multicast, 'the origin does not offer it');
  assert.match((await page.textContent('pushcast-player .message')) ?? '', /multicast: the origin does not offer it/);
  await page.goto(serve.player);
  const playing = await until('the default page playing another mode', () =>
    page.evaluate(() => {
      const s = (window as unknown as { pushcastStats: () => PlayerStats | null }).pushcastStats();
      return s?.state === 'playing' && s.framesShown > 25 ? s : null;
    }),
  );
  assert.notEqual(playing.mode, 'multicast');
});

test('a separate gateway killed mid-play and restarted: no stall, unicast meanwhile, push resumes', {
  timeout: 180_000,
}, async (t) => {
  const state = mkdtempSync(join(os.tmpdir(), 'pushcast-mcplayer-'));
  const gatewayPort = 18544;
  const serve = await startServe([
    '--multicast',
    '--multicast-group',
    '232.112.96.21',
    '--multicast-port',
    '5720',
    '--ladder',
    '640x360@800k',
    '--state-dir',
    state,
    '--gateway-url',
    `ws://127.0.0.1:${gatewayPort}/multicast/gateway`,
  ]);
  const pageOrigin = new URL(serve.player).origin;
  const startGateway = async () => {
    const gateway = runPushcast('gateway', [
      '--origin',
      serve.manifest,
      '--host',
      '127.0.0.1',
      '--port',
      String(gatewayPort),
      '--allow-origin',
      pageOrigin,
    ]);
    assert.equal(await gateway.waitForLine(/^gateway: ws:/, 10_000), 'gateway: ws://127.0.0.1:18544/multicast/gateway');
    return gateway;
  };
  let gateway = await startGateway();
  const browser = await launchChromium();
  t.after(async () => {
    await gateway.stop('SIGKILL');
    await browser.close();
    await serve.stop();
    rmSync(state, { recursive: true, force: true });
  });
  const page = await browser.newPage();
  await page.goto(`${serve.player.replace(/\/$/, '')}/multicast/`);
  const first = (await play(page, 20)).multicast!.segments;
  assert.ok(first.push > 5, `pushed through the gateway: ${first.push}`);

  await gateway.stop('SIGKILL');
  const down = await play(page, 15);
  const during = down.multicast!.segments;
  assert.ok(during.unicast > first.unicast, 'unicast while the gateway is down');
  assert.ok(
    down.multicast!.sessions.some((s) => s.state !== 'open'),
    'the WebSocket is down',
  );

  gateway = await startGateway();
  const after = await play(page, 25);
  const resumed = after.multicast!.segments;
  assert.ok(
    resumed.push > during.push + 4,
    `push resumed: ${resumed.push - during.push} pushed segments after the restart`,
  );
  assert.equal(after.stalls, 0, 'no stall through it all');
  t.diagnostic(
    `before: ${first.push} push; gateway down 15 s: ${during.unicast - first.unicast} unicast; after restart: ${resumed.push - during.push} push; stalls ${after.stalls}`,
  );
});

test("the viewer's switch turns multicast off (unicast, WebSockets closed) and on again (push resumes), without a stall", {
  timeout: 150_000,
}, async (t) => {
  const { page } = await openPlayer(t, [
    '--multicast-group',
    '232.112.96.31',
    '--multicast-port',
    '5730',
    '--ladder',
    '640x360@800k',
  ]);
  const on = (await play(page, 20)).multicast!;
  assert.ok(on.segments.push > 4);
  await page.uncheck('#multicast-switch input'); // the expert view's switch, shown in multicast mode
  const off = (await play(page, 15)).multicast!;
  assert.equal(off.enabled, false);
  assert.equal(off.sessions.length, 0, 'no WebSocket while multicast is off');
  assert.ok(
    off.segments.unicast >= on.segments.unicast + 5,
    `unicast while off: ${off.segments.unicast - on.segments.unicast}`,
  );
  assert.ok(
    off.segments.push <= on.segments.push + 4,
    `no push while off, but for the segments of each track received ahead of the switch: ${on.segments.push} → ${off.segments.push}, unicast ${on.segments.unicast} → ${off.segments.unicast}`,
  );
  await page.check('#multicast-switch input');
  const again = await play(page, 20);
  assert.ok(
    again.multicast!.segments.push >= off.segments.push + 4,
    `push resumed: ${again.multicast!.segments.push - off.segments.push}`,
  );
  assert.equal(again.stalls, 0);
});

test('the WebSocket pool follows a rendition switch: the new rendition is joined, the old one dropped once idle', {
  timeout: 150_000,
}, async (t) => {
  const { page } = await openPlayer(t, [
    '--multicast-group',
    '232.112.96.41',
    '--multicast-port',
    '5740',
    '--ladder',
    '320x180@300k,640x360@800k',
  ]);
  await page.waitForFunction(() => document.querySelectorAll('#rendition option').length === 3, null, {
    timeout: 30_000,
  });
  await page.selectOption('#rendition', 'video-180p');
  const low = (await play(page, 20)).multicast!;
  const videoSessions = (m: typeof low) =>
    m.sessions
      .map((s) => s.representation)
      .filter((r) => r.startsWith('video'))
      .sort();
  assert.deepEqual(videoSessions(low), ['video-180p'], 'only the pinned rendition is joined');
  await page.selectOption('#rendition', 'video-360p');
  const high = await play(page, 25);
  assert.deepEqual(videoSessions(high.multicast!), ['video-360p'], 'the new rendition joined, the old one dropped');
  const recent360 = high.multicast!.recent.filter((r) => r.representation === 'video-360p');
  assert.ok(
    recent360.some((r) => r.route === 'push'),
    'segments of the new rendition come by push',
  );
  assert.equal(high.stalls, 0);
});
