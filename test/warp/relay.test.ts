/**
 * The Warp relay (draft-lcurley-warp-00 §2.3, §4.5) in Node over WebTransport on the loopback, on a live
 * window built by hand: origin → relay → relay → viewers byte-identical and cut-through; a late joiner
 * starts at the newest GoP; a stalled subscriber is reset alone; tokens; malformed upstream streams are
 * dropped alone; the delivery order is rewritten hop after hop; GOAWAY and upstream loss are followed
 * without the viewers noticing; every bound of the relay is hit.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { H3_ALPN } from '../../src/http3/index.js';
import { developmentCertificate } from '../../src/origin/index.js';
import { WarpLive, chunk } from '../support/warp-live.js';
import { QuicEndpoint } from '../../src/quic/index.js';
import {
  INIT_ORDER,
  WarpClient,
  WarpProducer,
  WarpRelay,
  WarpSender,
  WarpServer,
  ptsFromOrder,
  segmentOrder,
  type SegmentRef,
  type WarpCatalog,
  type WarpConsumerSink,
  type WarpRelayOptions,
} from '../../src/warp/index.js';
import {
  SessionRefusedError,
  SessionRouter,
  connectWebTransport,
  serveHttp3Sessions,
  type Session,
  type SessionRoute,
} from '../../src/webtransport/index.js';
import { encodeWarpMessage } from '../../src/wire/index.js';
import { Registry } from 'prom-client';
import { registerWarpRelayMetrics } from '../../src/metrics/index.js';
import { until } from '../support/wait.js';

const dir = mkdtempSync(join(os.tmpdir(), 'pushcast-warp-relay-'));
const certificate = developmentCertificate(dir);
test.after(() => rmSync(dir, { recursive: true, force: true }));

const verbose = process.env.PUSHCAST_TEST_VERBOSE ? (line: string) => console.error(line) : undefined;

async function listen(route: SessionRoute) {
  const router = new SessionRouter().route('/warp', route);
  const endpoint = await QuicEndpoint.listen({
    alpn: [H3_ALPN],
    key: certificate.key,
    cert: certificate.cert,
    host: '127.0.0.1',
    port: 0,
  });
  endpoint.on('connection', (conn) => serveHttp3Sessions(conn, { router }));
  return { endpoint, url: `https://localhost:${endpoint.address.port}/warp/live` };
}

/** The origin: a WarpServer on the live window; `inject` runs on each session it accepts. */
async function origin(
  t: test.TestContext,
  live: WarpLive,
  o: { tokens?: string[]; inject?: (session: Session) => void } = {},
) {
  const producer = new WarpProducer({
    broadcast: 'live',
    window: live.window,
    timeline: live.timeline,
    policy: 'newest-first',
  });
  const warp = new WarpServer({ tokens: o.tokens });
  warp.add(producer);
  const route: SessionRoute = {
    authorize: (r) => warp.authorize(r),
    session: (s, r) => {
      warp.session(s, r);
      o.inject?.(s);
    },
  };
  const { endpoint, url } = await listen(route);
  t.after(async () => (warp.close(), producer.close(), await endpoint.close()));
  return { warp, url };
}

async function relayOf(t: test.TestContext, upstream: string, o: Partial<WarpRelayOptions> = {}) {
  const relay = new WarpRelay({ upstream, ca: certificate.cert, reconnectMinMs: 100, log: verbose, ...o });
  const { endpoint, url } = await listen(relay);
  relay.start();
  t.after(async () => (await relay.close(), await endpoint.close()));
  return { relay, url };
}

interface Viewer {
  client: WarpClient;
  inits: Map<string, Uint8Array>;
  parts: Map<string, Uint8Array[]>;
  /** When the first bytes of each path arrived. */
  firstData: Map<string, number>;
  completed: SegmentRef[];
  skipped: string[];
  catalog?: WarpCatalog;
  bytesOf(path: string): Uint8Array;
}

async function viewer(t: test.TestContext, url: string): Promise<Viewer> {
  const v = {
    inits: new Map(),
    parts: new Map(),
    firstData: new Map(),
    completed: [],
    skipped: [],
  } as unknown as Viewer;
  const sink: WarpConsumerSink = {
    catalog: (c) => (v.catalog = c),
    init: (track, bytes) => v.inits.set(track.id, bytes),
    data: (segment, bytes) => {
      if (!v.parts.has(segment.path!)) v.firstData.set(segment.path!, Date.now());
      v.parts.set(segment.path!, [...(v.parts.get(segment.path!) ?? []), bytes]);
    },
    end: (segment, complete) => complete && v.completed.push(segment),
    skip: (track, time, why) => v.skipped.push(`${track}@${time}: ${why}`),
  };
  v.bytesOf = (path) => new Uint8Array(Buffer.concat(v.parts.get(path) ?? []));
  v.client = await WarpClient.connect(url, { sink, bufferMs: 3000, ca: certificate.cert });
  t.after(() => v.client.close());
  return v;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every segment `numbers` of both tracks reached `v` whole, byte-identical to the live window's. */
function assertSegments(live: WarpLive, v: Viewer, numbers: number[], who: string): void {
  for (const n of numbers) {
    for (const track of live.tracks) {
      const path = `/live/${track.id}/${n}.m4s`;
      assert.ok(
        v.completed.some((s) => s.path === path),
        `${who}: ${path} completed`,
      );
      assert.deepEqual(v.bytesOf(path), track.get(n)!.bytes(), `${who}: ${path}`);
    }
  }
  assert.deepEqual(v.skipped, [], `${who}: nothing skipped`);
}

const media = (v: Viewer, track: string) => v.completed.filter((s) => s.track === track);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

test('origin → relay → relay → three viewers: byte-identical, cut-through, one upstream subscription per relay', async (t) => {
  const live = new WarpLive({ timeShiftBufferDepth: 40 });
  live.publish(1);
  const o = await origin(t, live);
  const r1 = await relayOf(t, o.url);
  const r2 = await relayOf(t, r1.url);
  const direct = await viewer(t, o.url);
  const viewers = [await viewer(t, r2.url), await viewer(t, r2.url), await viewer(t, r2.url)];
  await until('inits and segment 1 everywhere', () =>
    [direct, ...viewers].every((v) => v.inits.size === 2 && v.completed.length >= 2),
  );
  for (const v of viewers) {
    assert.deepEqual(v.inits.get('video'), live.video.init);
    assert.deepEqual(v.inits.get('audio'), live.audio.init);
    assert.equal(v.catalog?.broadcast, 'live');
  }
  // Cut-through: each segment's first chunk reaches the viewers behind two relays while the origin
  // is still producing that segment; the time it takes is measured against the direct viewer.
  const delays = { direct: [] as number[], twoRelays: [] as number[] };
  for (let n = 2; n <= 6; n++) {
    const segments = live.tracks.map((track) => {
      const s = live.start(track, n);
      live.add(track, s);
      return s;
    });
    const path = `/live/video/${n}.m4s`;
    const sent = Date.now();
    await until(`the first chunk of ${path} at every viewer`, () =>
      [direct, ...viewers].every((v) => v.bytesOf(path).length === segments[0]!.size),
    );
    assert.ok(!segments[0]!.complete, 'the origin has not completed the segment');
    delays.direct.push(direct.firstData.get(path)! - sent);
    for (const v of viewers) delays.twoRelays.push(v.firstData.get(path)! - sent);
    live.tracks.forEach((track, i) => {
      for (let k = 0; k < 3; k++) live.add(track, segments[i]!);
      track.completeSegment(segments[i]!);
    });
  }
  await until('segments 1–6 of both tracks everywhere', () =>
    [direct, ...viewers].every((v) => v.completed.length >= 12),
  );
  for (const [i, v] of viewers.entries()) assertSegments(live, v, [1, 2, 3, 4, 5, 6], `viewer ${i + 1}`);
  for (const v of viewers) {
    for (const track of ['video', 'audio']) {
      const times = media(v, track).map((s) => s.decodeTime);
      assert.deepEqual(
        times,
        [...times].sort((a, b) => a - b),
        'decode order',
      );
    }
  }
  t.diagnostic(
    `first chunk of a segment, publish → viewer (median of 5, ms): direct ${median(delays.direct)}, behind two relays ${median(delays.twoRelays)}`,
  );
  // One subscription upstream per relay, however many viewers.
  assert.equal(o.warp.stats().sessions, 2, 'the origin serves r1 and the direct viewer');
  const s1 = r1.relay.stats();
  const s2 = r2.relay.stats();
  assert.equal(s1.sessions, 1);
  assert.equal(s2.sessions, 3);
  assert.equal(s1.upstreamConnects, 1);
  assert.equal(s2.upstreamConnects, 1);
  assert.equal(s1.streamsForwarded, 1 + 2 + 12, 'catalog, 2 inits, 12 segments');
  assert.equal(s2.streamsForwarded, 1 + 2 + 12);
  assert.equal(s2.malformed + s2.aborted + s2.streamsCancelled, 0);
  assert.ok(s2.bytesWritten >= 3 * s2.bytesReceived * 0.99, 'every byte fanned out three times');
});

test('a late joiner starts at the newest GoP; the per-track cache keeps the newest N segments', async (t) => {
  const live = new WarpLive({ timeShiftBufferDepth: 40 });
  live.publish(1);
  const o = await origin(t, live);
  const r1 = await relayOf(t, o.url);
  // Starting further back than the newest GoP goes with oldest-first: the older segment is sent first.
  const r2 = await relayOf(t, r1.url, { cacheSegmentsPerTrack: 2, reorder: 'oldest-first' });
  const early = await viewer(t, r2.url);
  await until('segment 1', () => early.completed.length >= 2);
  for (let n = 2; n <= 5; n++) {
    live.publish(n);
    await sleep(20);
  }
  await until('segments 1–5 at the early viewer', () => early.completed.length >= 10);
  await until('r2 saw them', () => r2.relay.stats().streamsForwarded >= 3 + 10);
  assert.equal(r1.relay.stats().cachedSegments, 2, 'one per track');
  assert.equal(r2.relay.stats().cachedSegments, 4, 'two per track');
  const lateAtR1 = await viewer(t, r1.url);
  const lateAtR2 = await viewer(t, r2.url);
  await until(
    'the late joiners have what the relays cache',
    () => lateAtR1.completed.length >= 2 && lateAtR2.completed.length >= 4,
  );
  for (const track of ['video', 'audio']) {
    assert.equal(media(lateAtR1, track)[0]!.path, `/live/${track}/5.m4s`, 'r1: the newest GoP first');
    assert.deepEqual(
      media(lateAtR2, track).map((s) => s.path),
      [`/live/${track}/4.m4s`, `/live/${track}/5.m4s`],
      'r2: the newest two',
    );
  }
  live.publish(6);
  await until('segment 6 at the late joiners', () => lateAtR1.completed.length >= 4 && lateAtR2.completed.length >= 6);
  assertSegments(live, lateAtR1, [5, 6], 'late joiner at r1');
  assertSegments(live, lateAtR2, [4, 5, 6], 'late joiner at r2');
  assertSegments(live, early, [1, 2, 3, 4, 5, 6], 'early viewer');
});

test('a stalled subscriber has its lowest-priority streams reset by the relay; the other viewers miss nothing', async (t) => {
  const live = new WarpLive({ timeShiftBufferDepth: 40 });
  live.publish(1);
  const o = await origin(t, live);
  // Room for a few segments (88 kB each) while QUIC ramps up; the stalled subscriber takes ~30 kB and stops.
  const r = await relayOf(t, o.url, { maxBacklogBytes: 400_000 });
  const a = await viewer(t, r.url);
  const b = await viewer(t, r.url);
  // A session that never reads its streams, with small receive windows: QUIC flow control fills.
  const stalled = await connectWebTransport(r.url, {
    ca: certificate.cert,
    initialMaxData: 16 * 1024,
    initialMaxStreamData: 8 * 1024,
    maxStreamBuffer: 1024,
  });
  t.after(() => stalled.close());
  await until(
    'three subscribers, segment 1 at the viewers',
    () => r.relay.stats().sessions === 3 && a.completed.length >= 2 && b.completed.length >= 2,
  );
  for (let n = 2; n <= 12; n++) {
    live.publish(n);
    await sleep(30);
  }
  await until('segments 1–12 at both viewers', () => a.completed.length >= 24 && b.completed.length >= 24, {
    detail: () =>
      JSON.stringify({
        a: a.completed.map((s) => s.path),
        b: b.completed.map((s) => s.path),
        senders: r.relay.stats().senders,
        relay: { ...r.relay.stats(), senders: undefined },
      }),
  });
  await until('the stalled subscriber reset', () => r.relay.stats().senders.some((s) => s.streamsCancelled > 0));
  const senders = r.relay.stats().senders;
  const cancelled = senders.filter((s) => s.streamsCancelled > 0);
  assert.equal(cancelled.length, 1, 'only the stalled subscriber');
  assert.ok(cancelled[0]!.backlogBytes <= 400_000, `its backlog stays bounded (${cancelled[0]!.backlogBytes})`);
  const all = Array.from({ length: 12 }, (_, i) => i + 1);
  assertSegments(live, a, all, 'viewer a');
  assertSegments(live, b, all, 'viewer b');
  t.diagnostic(
    `stalled subscriber: ${cancelled[0]!.streamsCancelled} streams reset, ${cancelled[0]!.bytesWritten} bytes taken`,
  );
});

test('the relay has its own tokens (401, 403), serves one broadcast (404), bounds its subscribers (503), and presents its upstream token', async (t) => {
  const live = new WarpLive({ timeShiftBufferDepth: 40 });
  live.publish(1);
  const o = await origin(t, live, { tokens: ['origin-secret'] });
  const r = await relayOf(t, `${o.url}?token=origin-secret`, { tokens: ['relay-secret'], maxSessions: 1 });
  const sink = {};
  const refused = (status: number) => (e: unknown) => e instanceof SessionRefusedError && e.status === status;
  await assert.rejects(WarpClient.connect(r.url, { sink, bufferMs: 1000, ca: certificate.cert }), refused(401));
  await assert.rejects(
    WarpClient.connect(`${r.url}?token=nope`, { sink, bufferMs: 1000, ca: certificate.cert }),
    refused(403),
  );
  await assert.rejects(
    WarpClient.connect(`${r.url}?token=origin-secret`, { sink, bufferMs: 1000, ca: certificate.cert }),
    refused(403),
  );
  await assert.rejects(
    WarpClient.connect(`${r.url.replace('/live', '/other')}?token=relay-secret`, {
      sink,
      bufferMs: 1000,
      ca: certificate.cert,
    }),
    refused(404),
  );
  const v = await viewer(t, `${r.url}?token=relay-secret`);
  await until('segment 1 through the relay', () => v.completed.length >= 2);
  assertSegments(live, v, [1], 'viewer');
  await assert.rejects(
    WarpClient.connect(`${r.url}?token=relay-secret`, { sink, bufferMs: 1000, ca: certificate.cert }),
    refused(503),
  );
  const stats = r.relay.stats();
  assert.equal(stats.sessionsRefused, 5);
  assert.deepEqual(stats.sessionsRefusedByStatus, { 400: 0, 401: 1, 403: 2, 404: 1, 503: 1 });
  assert.equal(stats.sessionsAccepted, 1);
  assert.deepEqual(stats.sessionsAcceptedByTransport, { webtransport: 1, websocket: 0 });
  assert.throws(() => new WarpRelay({ upstream: 'https://localhost:1/not-warp' }), /\/warp\/<broadcast>/);
});

test('malformed, oversized and unwanted upstream streams are dropped alone; the broadcast goes on', async (t) => {
  const live = new WarpLive({ timeShiftBufferDepth: 40 });
  live.publish(1);
  const write = async (session: Session, ...pieces: Uint8Array[]) => {
    const stream = session.openStream({ bidirectional: false });
    for (const [i, piece] of pieces.entries()) {
      if (i > 0) await sleep(100);
      await stream.write(piece).catch(() => undefined);
    }
    await stream.end().catch(() => undefined);
  };
  const segment = (data: Uint8Array) => encodeWarpMessage({ kind: 'segment', data });
  const o = await origin(t, live, {
    inject: (session) => {
      // 1. A second HEADERS right after the first (§4.2), in one write: never forwarded.
      void write(
        session,
        Buffer.concat([
          encodeWarpMessage({ kind: 'headers', id: 1_000_001, depends: [1], path: '/bad/1' }),
          encodeWarpMessage({ kind: 'headers' }),
        ]),
      );
      // 2. A valid first fragment, then a SEGMENT that ends early: forwarded, then aborted downstream.
      void write(
        session,
        Buffer.concat([
          encodeWarpMessage({ kind: 'headers', id: 1_000_002, depends: [60], path: '/bad/2' }),
          segment(chunk(0, 100, 1)),
        ]),
        new Uint8Array([0x01, 0x40, 0xff, 1, 2, 3]),
      );
      // 3. Past the relay's per-stream bound.
      void write(
        session,
        encodeWarpMessage({ kind: 'headers', id: 1_000_003, depends: [60], path: '/bad/3' }),
        segment(new Uint8Array(150_000)),
        segment(new Uint8Array(150_000)),
      );
      // 4. A control stream (no ID) past its bound.
      void write(
        session,
        Buffer.concat([
          encodeWarpMessage({ kind: 'headers' }),
          encodeWarpMessage({ kind: 'app', data: new Uint8Array(70_000) }),
        ]),
      );
      // 5. A stream whose type is not HEADERS first.
      void write(session, segment(new Uint8Array(10)));
    },
  });
  const r = await relayOf(t, o.url, { maxStreamBytes: 200_000 });
  const v = await viewer(t, r.url);
  await until('segment 1', () => v.completed.length >= 2);
  for (let n = 2; n <= 4; n++) {
    live.publish(n);
    await sleep(30);
  }
  await until('segments 1–4', () => v.completed.length >= 8);
  await until('every injected stream handled', () => {
    const s = r.relay.stats();
    return s.malformed >= 3 && s.oversize >= 2;
  });
  assertSegments(live, v, [1, 2, 3, 4], 'viewer');
  const s = r.relay.stats();
  assert.equal(s.malformed, 3, 'second HEADERS, truncated SEGMENT, no HEADERS first');
  assert.equal(s.oversize, 2, 'the big segment and the big control stream');
  assert.equal(s.aborted, 2, 'the two relayed streams that were forwarded and failed');
  assert.ok(!v.parts.has('/bad/1'));
  assert.equal(s.cachedSegments, 2, 'no bad stream stays in the cache');
});

test('reorder: each relay writes its own delivery order on the wire, and the next hop reorders from it', async (t) => {
  const live = new WarpLive({ timeShiftBufferDepth: 40 });
  live.publish(1);
  const o = await origin(t, live);
  const rA = await relayOf(t, o.url, { reorder: 'oldest-first' });
  const rB = await relayOf(t, rA.url, { reorder: 'audio-first' });
  const rC = await relayOf(t, rA.url);
  const direct = await viewer(t, o.url);
  const [vA, vB, vC] = [await viewer(t, rA.url), await viewer(t, rB.url), await viewer(t, rC.url)];
  await until('segment 1 everywhere', () => [direct, vA, vB, vC].every((v) => v.completed.length >= 2));
  for (let n = 2; n <= 3; n++) {
    live.publish(n);
    await sleep(30);
  }
  await until('segments 1–3 everywhere', () => [direct, vA, vB, vC].every((v) => v.completed.length >= 6));
  const pts = (s: SegmentRef) => (s.decodeTime / 1000) * 1e6;
  const expect = (v: Viewer, order: (s: SegmentRef, kind: 'video' | 'audio') => number, who: string) => {
    for (const s of v.completed)
      assert.equal(s.order, order(s, s.track as 'video' | 'audio') || 0, `${who}: ${s.path}`); // -0 is 0 on the wire
  };
  expect(direct, (s, kind) => segmentOrder('newest-first', kind, pts(s), [INIT_ORDER]), 'direct');
  expect(vA, (s, kind) => segmentOrder('oldest-first', kind, pts(s), [INIT_ORDER]), 'relay A');
  expect(vB, (s, kind) => segmentOrder('audio-first', kind, pts(s), [INIT_ORDER]), 'relay B');
  expect(vC, (s, kind) => segmentOrder('oldest-first', kind, pts(s), [INIT_ORDER]), "relay C (passes A's order on)");
  assert.equal(vA.catalog?.orderPolicy, 'oldest-first');
  assert.equal(vB.catalog?.orderPolicy, 'audio-first');
  assert.equal(vC.catalog?.orderPolicy, 'oldest-first');
  assert.equal(direct.catalog?.orderPolicy, 'newest-first');
  for (const [v, who] of [
    [vA, 'A'],
    [vB, 'B'],
    [vC, 'C'],
  ] as const)
    assertSegments(live, v, [1, 2, 3], `relay ${who}`);
  assert.equal(ptsFromOrder('video-first', 'audio', segmentOrder('video-first', 'audio', 4e6)), 4e6);
});

test('upstream GOAWAY: the relay moves to the new origin; its viewers stay and miss nothing', async (t) => {
  const live = new WarpLive({ timeShiftBufferDepth: 40 });
  live.publish(1);
  const a = await origin(t, live);
  const b = await origin(t, live);
  const r = await relayOf(t, a.url);
  const v = await viewer(t, r.url);
  await until('segment 1', () => v.completed.length >= 2);
  live.publish(2);
  // Segment 3 is under way when the GOAWAY comes; it completes during the grace period.
  const s3 = live.tracks.map((track) => {
    const s = live.start(track, 3);
    live.add(track, s);
    return s;
  });
  const moving = a.warp.goaway(b.url, 400);
  await until('the relay subscribed to b', () => b.warp.stats().sessions === 1);
  live.tracks.forEach((track, i) => {
    live.add(track, s3[i]!);
    track.completeSegment(s3[i]!);
  });
  await moving;
  await until('the old upstream session closed', () => r.relay.stats().upstreamSessions === 1);
  live.publish(4);
  live.publish(5);
  await until('segments 1–5', () => v.completed.length >= 10);
  assertSegments(live, v, [1, 2, 3, 4, 5], 'viewer');
  assert.equal(v.client.sessionsOpened, 1, 'the viewer never saw the GOAWAY');
  const s = r.relay.stats();
  assert.equal(s.goaways, 1);
  assert.equal(s.upstreamUrl, b.url);
  assert.equal(s.upstreamReconnects, 0);
  assert.equal(s.aborted, 0);
  assert.ok(s.duplicates >= 3, 'b offered copies of what a had sent (catalog, inits, segments)');
});

test('upstream loss: the relay reconnects, a segment under way continues from the new copy, the viewers stay', async (t) => {
  const live = new WarpLive({ timeShiftBufferDepth: 40 });
  live.publish(1);
  const o = await origin(t, live);
  const registry = new Registry();
  const r = await relayOf(t, o.url, { resumeMs: 5000 });
  registerWarpRelayMetrics(registry, () => r.relay.stats());
  const v = await viewer(t, r.url);
  await until('segment 1', () => v.completed.length >= 2);
  live.publish(2);
  const s3 = live.tracks.map((track) => {
    const s = live.start(track, 3);
    live.add(track, s);
    return s;
  });
  await until('the first chunk of segment 3', () => v.bytesOf('/live/video/3.m4s').length === s3[0]!.size);
  o.warp.close(); // every upstream session ends (code 0), the server stays
  await until(
    'the relay reconnected and took segment 3 over',
    () => r.relay.stats().upstreamReconnects === 1 && r.relay.stats().takeovers === 2,
  );
  live.tracks.forEach((track, i) => {
    live.add(track, s3[i]!);
    live.add(track, s3[i]!);
    track.completeSegment(s3[i]!);
  });
  live.publish(4);
  await until('segments 1–4', () => v.completed.length >= 8);
  assertSegments(live, v, [1, 2, 3, 4], 'viewer');
  assert.equal(v.client.sessionsOpened, 1);
  const s = r.relay.stats();
  assert.equal(s.aborted, 0);
  assert.ok(s.lost >= 2, 'the copies of segment 3 were lost with the session');
  const text = await registry.metrics();
  assert.match(text, /^pushcast_relay_upstream_reconnects_total 1$/m);
  assert.match(text, /^pushcast_relay_subscribers 1$/m);
  assert.match(text, /^pushcast_relay_upstream_takeovers_total 2$/m);
  assert.match(text, /^pushcast_relay_streams_forwarded_total \d+$/m);
});

test('bounds: cache bytes, cached tracks, remembered IDs, upstream streams at once', async (t) => {
  const live = new WarpLive({ timeShiftBufferDepth: 40 });
  live.publish(1);
  const o = await origin(t, live);
  const bytes = await relayOf(t, o.url, { maxCacheBytes: 120_000, cacheSegmentsPerTrack: 3 });
  const tracks = await relayOf(t, o.url, { maxTracks: 1 });
  const ids = await relayOf(t, o.url, { maxRememberedIds: 8 });
  const streams = await relayOf(t, o.url, { maxUpstreamStreams: 2 });
  await until('every relay has segment 1', () =>
    [bytes, tracks, ids].every((r) => r.relay.stats().streamsForwarded >= 5),
  );
  let maxCache = 0;
  for (let n = 2; n <= 8; n++) {
    live.publish(n);
    await sleep(30);
    maxCache = Math.max(maxCache, bytes.relay.stats().cacheBytes);
  }
  await until(
    'segments 1–8 at the relays, whole',
    () =>
      [bytes, tracks, ids].every(
        (r) => r.relay.stats().streamsForwarded >= 3 + 16 && r.relay.stats().upstreamStreamsActive === 0,
      ),
    { detail: () => JSON.stringify([bytes, tracks, ids].map((r) => ({ ...r.relay.stats(), senders: undefined }))) },
  );
  const b = bytes.relay.stats();
  assert.ok(maxCache <= 120_000 && b.cacheBytes <= 120_000, `cache ${maxCache} bytes at most`);
  assert.ok(b.cacheEvictions > 0);
  assert.ok(
    b.cachedSegments >= 1 && b.cachedSegments < 6,
    `${b.cachedSegments} cached: ${JSON.stringify({ ...b, senders: undefined })}`,
  );
  assert.equal(tracks.relay.stats().cachedTracks, 1);
  assert.ok(ids.relay.stats().rememberedIds <= 8, `${ids.relay.stats().rememberedIds} IDs remembered`);
  // Four growing segments upstream at once; the relay carries two, the most important (§4.4).
  const limitedBefore = streams.relay.stats().limited;
  const growing = [9, 10].flatMap((n) =>
    live.tracks.map((track) => {
      const s = live.start(track, n);
      live.add(track, s);
      return s;
    }),
  );
  await until('the relay stopped two', () => streams.relay.stats().limited >= limitedBefore + 2);
  const st = streams.relay.stats();
  assert.ok(st.upstreamStreamsActive <= 2, `${st.upstreamStreamsActive} upstream streams at once`);
  const late = await viewer(t, streams.url);
  await until('the kept segments', () => late.parts.has('/live/video/10.m4s') && late.parts.has('/live/audio/10.m4s'));
  assert.ok(!late.parts.has('/live/video/9.m4s'), 'the older segment was the one stopped');
  for (const s of growing) live.window.track(s.trackId)!.completeSegment(s);
});

test('an upstream session that brings no catalog or inits in time is replaced by a new one', async (t) => {
  let sessions = 0;
  // An upstream that accepts sessions and sends nothing (as if its first streams were lost).
  const silent = await listen({ session: () => void sessions++ });
  t.after(() => silent.endpoint.close());
  const r = await relayOf(t, silent.url, { startupTimeoutMs: 200, reconnectMinMs: 20, reconnectMaxMs: 50 });
  await until(
    'two replacements',
    () => r.relay.stats().upstreamIncomplete >= 2 && r.relay.stats().upstreamReconnects >= 2,
  );
  assert.ok(sessions >= 3);
  assert.ok(r.relay.stats().upstreamSessions <= 1, 'one upstream session at a time');
});

test('bounds: upstream streams being read at once (control streams that never end)', async (t) => {
  const live = new WarpLive({ timeShiftBufferDepth: 40 });
  live.publish(1);
  const held: Promise<void>[] = [];
  const o = await origin(t, live, {
    inject: (session) => {
      // 80 streams without an ID, HEADERS only, left open.
      for (let i = 0; i < 80; i++)
        held.push(
          session
            .openStream({ bidirectional: false })
            .write(encodeWarpMessage({ kind: 'headers' }))
            .catch(() => undefined),
        );
    },
  });
  const r = await relayOf(t, o.url, { maxUpstreamStreams: 4 });
  // Read at once: at most maxUpstreamStreams + 64 (68); past it, streams are stopped as they come. The
  // five streams of the broadcast came first (the origin sends them at higher urgencies) and finished.
  await until('the relay stopped the streams past its bound', () => r.relay.stats().limited >= 80 + 5 - 68);
  const v = await viewer(t, r.url);
  await until('segment 1', () => v.completed.length >= 2);
  live.publish(2);
  await until('segments 1–2', () => v.completed.length >= 4);
  assertSegments(live, v, [1, 2], 'viewer');
});

test('reorder: media that comes before the catalog is held for it (bounded), then goes out with the new order', async (t) => {
  const live = new WarpLive({ timeShiftBufferDepth: 40 });
  live.publish(1);
  live.publish(2);
  const producer = new WarpProducer({
    broadcast: 'live',
    window: live.window,
    timeline: live.timeline,
    policy: 'newest-first',
  });
  t.after(() => producer.close());
  // An upstream that sends the newest GoP first and the catalog and inits 300 ms later.
  const upstream = await listen({
    session: (session) => {
      const sender = new WarpSender(session, { maxBacklogBytes: 16 * 1024 * 1024 });
      for (const source of producer.current()) sender.send(source);
      setTimeout(() => {
        sender.send(producer.catalogSource()!);
        for (const track of live.tracks) sender.send(producer.init(track.id)!);
      }, 300);
    },
  });
  t.after(() => upstream.endpoint.close());
  const r = await relayOf(t, upstream.url, { reorder: 'oldest-first', maxHeldForCatalog: 1 });
  await until('both segments at the relay', () => r.relay.stats().streamsForwarded >= 2);
  assert.equal(r.relay.stats().heldForCatalog, 1, 'one held, the other went on (the bound)');
  const v = await viewer(t, r.url); // before the catalog: it gets nothing of the media yet
  await until('segment 2 at the viewer', () => v.completed.length >= 2);
  assert.equal(r.relay.stats().heldForCatalog, 0);
  assertSegments(live, v, [2], 'viewer');
  for (const s of v.completed)
    assert.equal(s.order, 2_000_000, `${s.path}: oldest-first order (PTS 2 s), not the upstream's −2 s`);
});

test('renditions through a relay: it subscribes to every track, each viewer gets its own and switches with SELECT at the next GoP', async (t) => {
  const live = new WarpLive({ timeShiftBufferDepth: 40, chunkBytes: 3000, renditions: true });
  live.publish(1);
  const o = await origin(t, live);
  const r = await relayOf(t, o.url);
  const a = await viewer(t, r.url);
  const b = await viewer(t, r.url);
  await until('segment 1 at both viewers', () => [a, b].every((v) => media(v, 'audio').length === 1));
  assert.deepEqual(
    [a, b].map((v) => media(v, 'video-hi').length + media(v, 'video').length),
    [1, 1],
  );
  assert.equal(media(a, 'video-hi').length, 1, 'the best rendition by default');
  a.client.select('video');
  await until('the relay read the SELECT', () => r.relay.stats().selectsReceived === 1);
  for (let n = 2; n <= 3; n++) live.publish(n);
  await until('segments 2 and 3', () => [a, b].every((v) => media(v, 'audio').length === 3));
  await until('video 2 and 3', () => [a, b].every((v) => media(v, 'video').length + media(v, 'video-hi').length === 3));
  // a switched at segment 2, b did not; each got exactly one rendition per GoP, byte-identical.
  assert.deepEqual(
    media(a, 'video').map((s) => s.path),
    ['/live/video/2.m4s', '/live/video/3.m4s'],
  );
  assert.deepEqual(
    media(b, 'video-hi').map((s) => s.path),
    ['/live/video-hi/1.m4s', '/live/video-hi/2.m4s', '/live/video-hi/3.m4s'],
  );
  assert.deepEqual(a.bytesOf('/live/video/2.m4s'), live.video.get(2)!.bytes());
  assert.ok(a.inits.has('video') && !b.inits.has('video'));
  assert.deepEqual(a.skipped, []);
  assert.equal(a.client.consumer.stats().switches, 1);
  // One subscription upstream carries every rendition.
  assert.equal(o.warp.stats().sessions, 1);
});
