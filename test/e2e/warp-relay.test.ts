/**
 * Warp through two relays, as users run them: `pushcast serve` (real ffmpeg, real packager) →
 * `pushcast relay` → `pushcast relay` → a Node viewer over WebTransport. Every init and segment the
 * viewer receives is byte-identical to what the origin serves at the same path over HTTPS; each relay
 * serves its metrics and certificate hashes on its TCP port, refuses a wrong token, and exits cleanly
 * on SIGTERM. And the operator's drain as a browser viewer lives it: the player page plays Warp from a
 * relay (`?warp=`), the relay is drained to another (POST /admin/drain), and the page moves without a stall;
 * drained to a successor not up yet, the page reconnects to the successor once the drained relay is gone.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { createNodeFetch } from '../../src/client/index.js';
import { WarpClient, type SegmentRef } from '../../src/warp/index.js';
import { SessionRefusedError } from '../../src/webtransport/index.js';
import { launchChromium } from '../support/browser.js';
import { playerStats, untilPlayerStats } from '../support/player-page.js';
import { runPushcast, startServe } from '../support/pushcast-process.js';
import { until } from '../support/wait.js';

/** `pushcast relay …` on a free port; resolves with its printed `relay:` and `metrics:` URLs. */
async function startRelay(args: string[], host = '127.0.0.1') {
  const relay = runPushcast('relay', ['--port', '0', '--host', host, ...args], { timeoutMs: 20_000 });
  // The development certificate is checked by name: localhost (as test/e2e/warp-live.test.ts does).
  const url = async (name: string) =>
    (await relay.waitForLine(new RegExp(`^${name}: \\S+$`)))
      .replace(`${name}: `, '')
      .replace('//127.0.0.1:', '//localhost:');
  try {
    return {
      relay: await url('relay'),
      metrics: await url('metrics'),
      lines: relay.lines,
      exited: relay.exited,
      stop: () => relay.stop(),
    };
  } catch (error) {
    await relay.stop('SIGKILL');
    throw error;
  }
}

test('pushcast serve → pushcast relay → pushcast relay → a Node viewer: byte-identical to HTTP', async (t) => {
  const state = mkdtempSync(join(os.tmpdir(), 'pushcast-warp-relay-'));
  const serve = await startServe([
    '--ladder',
    '320x180@300k',
    '--no-multicast',
    '--warp-token',
    'origin-token',
    '--state-dir',
    state,
  ]);
  const stops: (() => Promise<unknown>)[] = [() => serve.stop()];
  t.after(async () => {
    for (const stop of stops.reverse()) await stop();
    rmSync(state, { recursive: true, force: true });
  });
  const https = (await serve.waitForLine(/^https player: /)).replace(/^https player: /, '').replace(/\/$/, '');
  const ca = join(state, 'tls', 'dev-cert.pem');
  const caText = readFileSync(ca, 'utf8');

  const r1 = await startRelay([
    '--upstream',
    `https://localhost:${new URL(https).port}/warp/live?token=origin-token`,
    '--ca',
    ca,
    '--state-dir',
    state,
    '--token',
    'edge-token',
  ]);
  stops.push(r1.stop);
  const r2 = await startRelay([
    '--upstream',
    `${r1.relay}?token=edge-token`,
    '--ca',
    ca,
    '--state-dir',
    state,
    '--reorder',
    'oldest-first',
  ]);
  stops.push(r2.stop);
  assert.match(r2.relay, /^https:\/\/localhost:\d+\/warp\/live$/, 'printed as https://127.0.0.1:<port>/warp/live');

  await assert.rejects(
    WarpClient.connect(`${r1.relay}?token=wrong`, { sink: {}, bufferMs: 2000, ca: caText }),
    (e: unknown) => e instanceof SessionRefusedError && e.status === 403,
  );

  const inits = new Map<string, Uint8Array>();
  const parts = new Map<string, Uint8Array[]>();
  const completed: SegmentRef[] = [];
  const skipped: string[] = [];
  const client = await WarpClient.connect(r2.relay, {
    bufferMs: 3000,
    ca: caText,
    sink: {
      init: (track, bytes) => inits.set(track.id, bytes),
      data: (segment, bytes) => parts.set(segment.path!, [...(parts.get(segment.path!) ?? []), bytes]),
      end: (segment, complete) => complete && completed.push(segment),
      skip: (track, time, why) => skipped.push(`${track}@${time}: ${why}`),
    },
  });
  stops.push(() => client.close());
  await until(
    '3 whole video segments through two relays',
    () => completed.filter((s) => s.track.startsWith('video')).length >= 3,
    {
      timeoutMs: 40_000,
      intervalMs: 200,
      detail: () => `${completed.length} segments, skipped: ${skipped.join('; ')}`,
    },
  );
  const fetch = createNodeFetch({ ca: caText });
  const relayMetrics = async () =>
    (
      await Promise.all(
        [r1, r2].map(async (r) =>
          (
            await (await fetch(r.metrics)).text()
          )
            .split('\n')
            .filter((l) => l.startsWith('pushcast_relay_'))
            .join('\n'),
        ),
      )
    ).join('\n---\n');
  const catalog = client.consumer.catalog;
  assert.ok(
    catalog,
    `a catalog within 40 s; the relays' metrics:\n${await relayMetrics()}\nviewer: ${JSON.stringify(client.consumer.stats())}`,
  );
  assert.deepEqual(catalog.tracks.map((t) => t.kind).sort(), ['audio', 'video']);
  assert.equal(catalog.orderPolicy, 'oldest-first', 'the second relay rewrote the order and says so');
  for (const track of catalog.tracks) {
    const init = new Uint8Array(await (await fetch(`${https}/live/${track.id}/init.mp4`)).arrayBuffer());
    assert.deepEqual(inits.get(track.id), init, `${track.id} init`);
  }
  const video = completed.filter((s) => s.track.startsWith('video'));
  assert.ok(video.length >= 3, `3 video segments within 40 s (got ${video.length})`);
  for (const segment of completed) {
    const response = await fetch(`${https}${segment.path}`);
    assert.equal(response.status, 200, segment.path);
    assert.deepEqual(
      new Uint8Array(Buffer.concat(parts.get(segment.path!)!)),
      new Uint8Array(await response.arrayBuffer()),
      segment.path,
    );
    assert.ok(segment.order >= 0, `${segment.path}: oldest-first order (PTS) on the wire, got ${segment.order}`);
  }
  for (const track of catalog.tracks) {
    const times = completed.filter((s) => s.track === track.id).map((s) => s.decodeTime);
    assert.deepEqual(
      times,
      [...times].sort((a, b) => a - b),
    );
  }
  assert.deepEqual(
    skipped,
    [],
    `nothing skipped; the relays' metrics:\n${await relayMetrics()}\nviewer: ${JSON.stringify(client.consumer.stats())}`,
  );

  // Each relay's TCP port: Prometheus metrics and the certificate hashes, in the origin's shape.
  const m1 = await (await fetch(r1.metrics)).text();
  assert.match(m1, /^pushcast_relay_subscribers 1$/m);
  assert.match(m1, /^pushcast_relay_upstream_sessions 1$/m);
  assert.match(m1, /^pushcast_relay_sessions_refused_total 1$/m);
  const forwarded = Number(/^pushcast_relay_streams_forwarded_total (\d+)$/m.exec(m1)?.[1]);
  assert.ok(forwarded >= 3 + 6, `r1 forwarded ${forwarded} streams`);
  const infoUrl = new URL('/.well-known/pushcast/webtransport.json', r2.relay).href;
  const info = (await (await fetch(infoUrl)).json()) as {
    port: number;
    serverCertificateHashes: { algorithm: string; value: string }[];
  };
  assert.equal(info.port, Number(new URL(r2.relay).port));
  assert.equal(info.serverCertificateHashes[0]?.algorithm, 'sha-256');
  assert.match(info.serverCertificateHashes[0]!.value, /^[0-9a-f]{64}$/);

  // A clean exit on SIGTERM.
  await client.close();
  assert.equal(await r2.stop(), 0);
  assert.equal(await r1.stop(), 0);
  assert.ok(r1.lines.some((l) => /SIGTERM: stopping/.test(l)) && r1.lines.some((l) => / stopped$/.test(l)));
});

/** POST `body` (JSON) to `url` with a bearer token, trusting `ca`; resolves with the status and body. */
function postJson(url: string, token: string, body: unknown, ca: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      { method: 'POST', ca, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

test('a browser viewer on a relay drained to another moves without a stall; drained to one not up yet, it reconnects to it', {
  timeout: 90_000,
}, async (t) => {
  const state = mkdtempSync(join(os.tmpdir(), 'pushcast-warp-drain-'));
  // Any address (dual stack): Chromium tries ::1 for localhost and, over QUIC, does not fall back to 127.0.0.1.
  const serve = await startServe([
    '--ladder',
    '320x180@300k',
    '--no-multicast',
    '--state-dir',
    state,
    '--host',
    '0.0.0.0',
  ]);
  const stops: (() => Promise<unknown>)[] = [() => serve.stop()];
  t.after(async () => {
    for (const stop of stops.reverse()) await stop();
    rmSync(state, { recursive: true, force: true });
  });
  const playerUrl = (await serve.waitForLine(/^warp player: /)).replace(/^warp player: /, '');
  const httpsPlayer = (await serve.waitForLine(/^https player: /)).replace(/^https player: /, '');
  const ca = join(state, 'tls', 'dev-cert.pem');
  const relayArgs = [
    '--upstream',
    `https://localhost:${new URL(httpsPlayer).port}/warp/live`,
    '--ca',
    ca,
    '--state-dir',
    state,
  ];
  const a = await startRelay([...relayArgs, '--admin-token', 'sesame', '--drain-timeout', '20'], '0.0.0.0');
  stops.push(a.stop);
  const b = await startRelay([...relayArgs, '--admin-token', 'sesame', '--drain-timeout', '4'], '0.0.0.0');
  stops.push(b.stop);

  const browser = await launchChromium();
  stops.push(() => browser.close());
  // The relays' HTTPS (clock, certificate hashes) has the development certificate; its QUIC side is vouched for by those hashes.
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${playerUrl}?transport=webtransport&warp=${encodeURIComponent(a.relay)}`);
  const before = await untilPlayerStats(
    page,
    'playing from relay A over WebTransport',
    (s) => s.warp?.transport === 'webtransport' && (s.warp.segmentsReceived ?? 0) >= 3 && s.framesShown > 0,
    { timeoutMs: 40_000 },
  );
  assert.equal(new URL(before.warp!.sessionUrl!).port, new URL(a.relay).port, 'the session is on relay A');
  assert.equal(before.warp!.sessionsOpened, 1);

  const drain = await postJson(
    new URL('/admin/drain', a.relay).href,
    'sesame',
    { successor: `https://localhost:${new URL(b.relay).port}` },
    readFileSync(ca, 'utf8'),
  );
  assert.equal(drain.status, 202, drain.text);

  const moved = await untilPlayerStats(
    page,
    'the page moved to relay B',
    (s) => s.warp?.goaways === 1 && new URL(s.warp.sessionUrl ?? 'https://x').port === new URL(b.relay).port,
    { timeoutMs: 20_000 },
  );
  assert.equal(moved.warp!.transport, 'webtransport');
  assert.equal(moved.warp!.sessionsOpened, 2, 'one new session, at the successor');
  // Relay A has no viewer left: it exits by itself.
  assert.equal(await a.exited, 0);
  // Playback goes on from relay B: three more segments, and no stall through the move.
  const received = moved.warp!.segmentsReceived;
  const after = await untilPlayerStats(
    page,
    'three more segments from relay B',
    (s) => (s.warp?.segmentsReceived ?? 0) >= received + 3,
    { timeoutMs: 20_000 },
  );
  assert.equal(after.warp!.stalls, before.warp!.stalls, 'no stall through the move');
  assert.equal(after.warp!.segmentsSkipped, before.warp!.segmentsSkipped, 'no segment skipped through the move');
  assert.ok(after.framesShown > moved.framesShown, 'frames advance');
  assert.ok((await playerStats(page))?.errors.every((e) => !/GOAWAY .* could not be followed/.test(e)));

  // Relay B is drained to a successor that is not up yet: the page stays on B; when B has gone (after its
  // drain timeout) it reconnects to the successor, not to the server that sent it away.
  const port = await freePort();
  const drainB = await postJson(
    new URL('/admin/drain', b.relay).href,
    'sesame',
    { successor: `https://localhost:${port}` },
    readFileSync(ca, 'utf8'),
  );
  assert.equal(drainB.status, 202, drainB.text);
  await untilPlayerStats(page, 'the GOAWAY to a server not up yet could not be followed', (s) =>
    s.errors.some((e) => /GOAWAY to https:\/\/localhost:\d+\S* could not be followed/.test(e)),
  );
  const c = await startRelay([...relayArgs, '--port', String(port)], '0.0.0.0');
  stops.push(c.stop);
  assert.equal(await b.exited, 0, 'relay B exits at its drain timeout');
  const onC = await untilPlayerStats(
    page,
    'the page reconnected to the successor and plays from it',
    (s) =>
      new URL(s.warp?.sessionUrl ?? 'https://x').port === String(port) &&
      (s.warp?.segmentsReceived ?? 0) >= after.warp!.segmentsReceived + 3,
    { timeoutMs: 30_000 },
  );
  assert.equal(onC.warp!.transport, 'webtransport');
  assert.deepEqual(pageErrors, []);
});

/** A port free for TCP and UDP now (both: a relay listens on both with one number). */
async function freePort(): Promise<number> {
  for (;;) {
    const tcp = net.createServer();
    await new Promise<void>((resolve) => tcp.listen(0, '0.0.0.0', resolve));
    const port = (tcp.address() as net.AddressInfo).port;
    const udp = dgram.createSocket('udp4');
    const free = await new Promise<boolean>((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind(port, '0.0.0.0', () => resolve(true));
    });
    udp.close();
    await new Promise((resolve) => tcp.close(resolve));
    if (free) return port;
  }
}
