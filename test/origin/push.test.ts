import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Http2PushClient } from '../../src/client/index.js';
import type { OriginMetrics } from '../../src/metrics/index.js';
import { DEFAULT_PUSH_POLICY, developmentCertificate, type PushPolicy } from '../../src/origin/index.js';
import { RESOURCE_PUSH, type ResourcePushEvent } from '../../src/push/index.js';
import { Fixture, VIDEO, payload, startOrigin } from '../support/live-fixture.js';
import { until } from '../support/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'pushcast-push-'));
const cert = developmentCertificate(dir);
after(() => rmSync(dir, { recursive: true, force: true }));

const HIGHER = { ...VIDEO, id: 'video-720p', bandwidth: 3_000_000, width: 1280, height: 720 };

/** A live fixture with two video renditions and audio, segments 1–3 complete, served over HTTPS + HTTP/2. */
async function setup(policy: Partial<PushPolicy> = {}, extra = {}) {
  const f = new Fixture();
  const higher = f.window.addTrack(HIGHER);
  higher.setInit(payload(9, 800), HIGHER);
  for (let n = 1; n <= 3; n++) for (const t of [f.video, higher, f.audio]) f.publish(t, n);
  const o = await startOrigin(f, { push: { ...DEFAULT_PUSH_POLICY, ...policy }, earlyHints: true, ...extra }, cert);
  return { f, higher, ...o };
}

/** Collects every ResourcePushEvent of a client. */
function collect(client: Http2PushClient): ResourcePushEvent[] {
  const events: ResourcePushEvent[] = [];
  client.addEventListener(RESOURCE_PUSH, (e) => events.push(e as ResourcePushEvent));
  return events;
}

const paths = (events: ResourcePushEvent[]) => events.map((e) => new URL(e.request.url).pathname).sort();

async function outcomes(metrics: OriginMetrics): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await metrics.pushes.get()).values) out[`${v.labels.kind}:${v.labels.outcome}`] = v.value;
  return out;
}

describe('HTTP/2 server push', () => {
  test("an MPD request pushes the default renditions' init and newest segments, as a real request would get them", async () => {
    const { origin, tls, f } = await setup();
    const client = new Http2PushClient(tls!, { ca: cert.cert });
    const events = collect(client);
    try {
      const order: string[] = [];
      client.addEventListener(
        RESOURCE_PUSH,
        (e) => void (e as ResourcePushEvent).response.then(() => order.push('push')),
      );
      const mpd = await client.get('/live/manifest.mpd');
      order.push('mpd');
      assert.equal(mpd.status, 200);
      await Promise.all(events.map((e) => e.response));
      assert.equal(
        order[0],
        'mpd',
        'the MPD is complete before any pushed body: the client is not kept waiting for it',
      );
      assert.deepEqual(paths(events), [
        '/live/audio-128k/3.m4s',
        '/live/audio-128k/init.mp4',
        '/live/video-360p/3.m4s',
        '/live/video-360p/init.mp4',
      ]);
      const bodies = new Map<string, Uint8Array>();
      for (const e of events) {
        const pushed = await e.response;
        const path = new URL(e.request.url).pathname;
        const fetched = await client.get(path);
        assert.equal(pushed.status, 200);
        bodies.set(path, new Uint8Array(await pushed.arrayBuffer()));
        assert.deepEqual(bodies.get(path), new Uint8Array(fetched.body), `${path}: same bytes`);
        for (const h of ['content-type', 'etag', 'cache-control', 'content-length']) {
          assert.equal(pushed.headers.get(h), fetched.headers[h], `${path}: same ${h}`);
        }
        assert.equal(e.request.method, 'GET');
      }
      assert.deepEqual(bodies.get('/live/video-360p/3.m4s'), f.video.get(3)!.bytes(), 'the newest complete segment');
    } finally {
      await client.close();
      await origin.close();
    }
  });

  test('a segment request pushes the next segment once; never twice, never what the client says it holds', async () => {
    const { origin, tls, metrics } = await setup({ onManifest: false });
    const client = new Http2PushClient(tls!, { ca: cert.cert });
    const events = collect(client);
    try {
      await client.get('/live/video-360p/1.m4s');
      await client.get('/live/video-360p/1.m4s');
      await Promise.all(events.map((e) => e.response));
      assert.deepEqual(paths(events), ['/live/video-360p/2.m4s'], 'pushed once on this connection');
      await client.get('/live/video-360p/2.m4s', {
        'pushcast-cached': '/live/video-360p/3.m4s, /live/audio-128k/3.m4s',
      });
      assert.deepEqual(paths(events), ['/live/video-360p/2.m4s'], 'segment 3 is held by the client: not pushed');
      const o = await outcomes(metrics);
      assert.equal(o['next-segment:sent'], 1);
      assert.equal(o['next-segment:duplicate'], 1);
      assert.equal(o['next-segment:client-has'], 1);
    } finally {
      await client.close();
      await origin.close();
    }
  });

  test('nothing is pushed to a client that sent SETTINGS_ENABLE_PUSH = 0, and its push channel is refused', async () => {
    const { origin, tls, metrics } = await setup();
    const session = http2.connect(tls!, { ca: cert.cert, settings: { enablePush: false } });
    let promises = 0;
    session.on('stream', () => promises++);
    const get = (path: string) =>
      new Promise<number>((resolve, reject) => {
        const req = session.request({ ':path': path });
        let status = 0;
        req.on('response', (h) => (status = Number(h[':status'])));
        req
          .on('end', () => resolve(status))
          .on('error', reject)
          .resume();
        req.end();
      });
    try {
      assert.equal(await get('/live/manifest.mpd'), 200);
      assert.equal(await get('/live/video-360p/1.m4s'), 200);
      assert.equal(await get('/live/video-360p/push'), 400);
      assert.equal(promises, 0);
      const o = await outcomes(metrics);
      assert.ok(o['manifest:disabled']! >= 1 || o['manifest:disabled'] === undefined);
      assert.equal(o['manifest:sent'], undefined);
    } finally {
      session.close();
      await origin.close();
    }
  });

  test('pushes are bounded per connection: beyond the limit they are skipped, not queued', async () => {
    const { origin, tls, metrics } = await setup({ maxConcurrentPushes: 1 });
    const client = new Http2PushClient(tls!, { ca: cert.cert });
    const events = collect(client);
    try {
      await client.get('/live/manifest.mpd');
      await Promise.all(events.map((e) => e.response));
      assert.equal(events.length, 1, 'one push at a time');
      const o = await outcomes(metrics);
      assert.equal(o['manifest:sent'], 1);
      assert.equal(o['manifest:limit'], 3);
    } finally {
      await client.close();
      await origin.close();
    }
    const small = await setup({ maxBytesInFlight: 1500 });
    const c2 = new Http2PushClient(small.tls!, { ca: cert.cert });
    const e2 = collect(c2);
    try {
      await c2.get('/live/manifest.mpd');
      await Promise.all(e2.map((e) => e.response));
      // Init segments are 700 and 600 bytes, segments 2000: only what fits in 1500 bytes at once.
      assert.ok(
        e2.every((e) => e.request.url.endsWith('init.mp4')),
        paths(e2).join(),
      );
      assert.ok((await outcomes(small.metrics))['manifest:limit']! >= 2);
    } finally {
      await c2.close();
      await small.origin.close();
    }
  });

  test('the live push channel pushes every new segment chunk by chunk; a client reset cancels that push', async () => {
    const { origin, tls, f, metrics } = await setup();
    const client = new Http2PushClient(tls!, { ca: cert.cert });
    const events = collect(client);
    try {
      const channel = await client.request('/live/video-360p/push');
      assert.equal(channel.status, 200);
      const log: string[] = [];
      channel.stream.setEncoding('utf8').on('data', (d: string) => log.push(...d.trim().split('\n')));
      await until('the first push', () => events.length === 1);
      assert.equal(new URL(events[0]!.request.url).pathname, '/live/video-360p/init.mp4');

      // Segment 4 starts: its push begins with the first chunk, before the segment is complete.
      const s4 = f.publish(f.video, 4, 1, 500, true);
      await until('the second push', () => events.length === 2);
      f.chunk(f.video, s4, 700);
      f.video.completeSegment(s4);
      const pushed = await events[1]!.response;
      assert.equal(new URL(events[1]!.request.url).pathname, '/live/video-360p/4.m4s');
      assert.deepEqual(new Uint8Array(await pushed.arrayBuffer()), s4.bytes());

      // Segment 5 starts; the client cancels it mid-way; segment 6 still comes.
      const s5 = f.publish(f.video, 5, 1, 500, true);
      await until('the third push', () => events.length === 3);
      client.cancel(events[2]!.request);
      await assert.rejects(events[2]!.response, /reset/);
      f.chunk(f.video, s5, 500);
      f.video.completeSegment(s5);
      f.publish(f.video, 6, 2, 400);
      await until('the fourth push', () => events.length === 4);
      assert.equal((await events[3]!.response).status, 200);
      await until('a cancelled channel push counted', async () => (await outcomes(metrics))['channel:cancelled'] === 1);
      await until('four lines in the channel log', () => log.length >= 4);
      assert.deepEqual(JSON.parse(log[1]!), { path: '/live/video-360p/4.m4s', number: 4, outcome: 'sent' });
      channel.stream.close();
    } finally {
      await client.close();
      await origin.close();
    }
  });

  test('103 Early Hints over HTTP/2 list the MPD, init and newest segments; HTTP/1.1 gets none (caches before it would take it as final)', async () => {
    const { origin, base, tls } = await setup();
    const session = http2.connect(tls!, { ca: cert.cert });
    try {
      const hints: string[] = [];
      const status = await new Promise<number>((resolve, reject) => {
        const req = session.request({ ':path': '/live/manifest.mpd' });
        req.on('headers', (h) => {
          if (h[':status'] === 103) hints.push(String(h.link));
        });
        let final = 0;
        req.on('response', (h) => (final = Number(h[':status'])));
        req
          .on('end', () => resolve(final))
          .on('error', reject)
          .resume();
        req.end();
      });
      assert.equal(status, 200);
      assert.equal(hints.length, 1, 'one 103 before the 200');
      assert.deepEqual(hints[0]!.split(', '), [
        '</live/manifest.mpd>; rel=preload; as=fetch; crossorigin',
        '</live/video-360p/init.mp4>; rel=preload; as=fetch; crossorigin',
        '</live/video-360p/3.m4s>; rel=preload; as=fetch; crossorigin',
        '</live/audio-128k/init.mp4>; rel=preload; as=fetch; crossorigin',
        '</live/audio-128k/3.m4s>; rel=preload; as=fetch; crossorigin',
      ]);
      let informational = 0;
      await new Promise<void>((resolve) => {
        const req = http.get(`${base}/live/manifest.mpd`, (res) => res.resume().on('end', resolve));
        req.on('information', () => informational++);
      });
      assert.equal(informational, 0, 'no 103 to HTTP/1.1');
    } finally {
      session.close();
      await origin.close();
    }
    const off = await setup({}, { earlyHints: false });
    const s2 = http2.connect(off.tls!, { ca: cert.cert });
    try {
      let informational = 0;
      await new Promise<void>((resolve) => {
        const req = s2.request({ ':path': '/live/manifest.mpd' });
        req.on('headers', () => informational++);
        req.on('end', resolve).resume();
        req.end();
      });
      assert.equal(informational, 0, 'switched off: no 103');
    } finally {
      s2.close();
      await off.origin.close();
    }
  });
});
