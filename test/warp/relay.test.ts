/**
 * The Warp relay (draft-lcurley-warp-00 §2.3, §4.5) in Node over WebTransport on the loopback, on a live
 * window built by hand: origin → relay → relay → viewers byte-identical and cut-through; a late joiner
 * starts at the newest GoP; a stalled subscriber is reset alone; tokens; malformed upstream streams are
 * dropped alone; the delivery order is rewritten hop after hop; GOAWAY and upstream loss are followed
 * without the viewers noticing; the end of the broadcast (close code 0) and catalog changes are passed on;
 * every bound of the relay is hit.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { H3_ALPN } from '../../src/http3/index.js';
import { developmentCertificate } from '../../src/origin/index.js';
import { WarpLive, chunk } from '../support/warp-live.js';
import { QuicEndpoint, type QuicConnection } from '../../src/quic/index.js';
import {
  INIT_ORDER,
  GrowingSource,
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
  catalogSource,
  initId,
  segmentId,
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
  const connections = new Set<QuicConnection>();
  endpoint.on('connection', (conn) => {
    connections.add(conn);
    conn.once('close', () => connections.delete(conn));
    serveHttp3Sessions(conn, { router });
  });
  /** Every connection closed at the QUIC level: a loss, with no session close from the server. */
  const drop = () => Promise.all([...connections].map((c) => c.close(0x100, 'gone')));
  return { endpoint, url: `https://localhost:${endpoint.address.port}/warp/live`, drop };
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
  const { endpoint, url, drop } = await listen(route);
  t.after(async () => (await warp.close(), producer.close(), await endpoint.close()));
  return { warp, url, drop };
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
  await o.drop(); // the upstream connection is lost (no session close), the server stays
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

test("end of broadcast: the origin's close with code 0 goes through two relays to the viewers; other closes and losses are reconnected", async (t) => {
  const live = new WarpLive({ timeShiftBufferDepth: 40 });
  live.publish(1);
  const upstreamSessions: Session[] = [];
  const o = await origin(t, live, { inject: (s) => upstreamSessions.push(s) });
  const r1 = await relayOf(t, o.url);
  const r2 = await relayOf(t, r1.url);
  const v = await viewer(t, r2.url);
  await until('segment 1', () => v.completed.length >= 2);

  // A close with another code (here: the upstream server stopping, not the broadcast) is a loss: r1 reconnects.
  await upstreamSessions[0]!.close(2, 'server stopped');
  await until(
    'r1 reconnected',
    () => r1.relay.stats().upstreamReconnects === 1 && r1.relay.stats().upstreamSessions === 1,
  );
  live.publish(2);
  await until('segments 1–2', () => v.completed.length >= 4);
  assertSegments(live, v, [1, 2], 'viewer');

  // §4.7: the broadcast ends at the origin; each relay passes code 0 on and reconnects no more.
  await o.warp.close();
  const [e1, e2] = await Promise.all([r1.relay.ended, r2.relay.ended]);
  assert.deepEqual([e1.code, e1.by, e1.reason], [0, 'peer', 'broadcast terminated']);
  assert.deepEqual([e2.code, e2.by, e2.reason], [0, 'peer', 'broadcast terminated']);
  await until('the viewer heard of it', () => v.client.lastClose !== undefined);
  assert.deepEqual(v.client.lastClose, { code: 0, reason: 'broadcast terminated', by: 'peer' });
  for (const r of [r1, r2]) {
    const st = r.relay.stats();
    assert.equal(st.upstreamSessions, 0, 'no upstream session');
    assert.equal(st.sessions, 0, 'no viewer session');
  }
  assert.equal(r1.relay.stats().upstreamReconnects, 1, 'the end was not taken for a loss');
  assert.equal(r2.relay.stats().upstreamReconnects, 0);
  // New sessions are refused: the broadcast is over here too.
  await assert.rejects(
    connectWebTransport(r1.url, { ca: certificate.cert }),
    (e: unknown) => e instanceof SessionRefusedError && e.status === 404 && /has ended/.test(e.message),
  );
});

test('a catalog change upstream (a rendition added, then removed) reaches the viewers through the relay', async (t) => {
  const live = new WarpLive({ timeShiftBufferDepth: 40 });
  live.publish(1);
  const producer = new WarpProducer({
    broadcast: 'live',
    window: live.window,
    timeline: live.timeline,
    policy: 'newest-first',
  });
  t.after(() => producer.close());
  const senders: WarpSender[] = [];
  producer.on('segment', (source) => {
    for (const sender of senders) sender.send(source);
  });
  const upstream = await listen({
    session: (session) => {
      const sender = new WarpSender(session, { maxBacklogBytes: 16 * 1024 * 1024 });
      senders.push(sender);
      sender.send(producer.catalogSource()!);
      for (const track of live.tracks) sender.send(producer.init(track.id)!);
      for (const source of producer.current()) sender.send(source);
    },
  });
  t.after(() => upstream.endpoint.close());
  const r = await relayOf(t, upstream.url);
  const v = await viewer(t, r.url);
  await until('segment 1', () => v.completed.length >= 2);
  const base = producer.catalog()!;
  assert.deepEqual(
    v.catalog?.tracks.map((x) => x.id),
    ['video', 'audio'],
  );

  // A 540p rendition is added (track index 2): the new catalog reaches the viewer; asked for by SELECT,
  // its init comes at once and its segment from the next number on.
  const added = {
    ...base.tracks[0]!,
    id: 'video-540p',
    bandwidth: 1_600_000,
    width: 960,
    height: 540,
    initId: initId(2),
  };
  const withAdded = { ...base, tracks: [...base.tracks, added] };
  const init = new GrowingSource(
    { kind: 'headers', id: initId(2), order: INIT_ORDER, path: '/live/video-540p/init.mp4' },
    'video-540p',
    true,
  );
  init.append(new Uint8Array(800).fill(3));
  init.end();
  for (const sender of senders) {
    sender.send(catalogSource(withAdded), { again: true });
    sender.send(init);
  }
  await until('the new catalog at the viewer', () => v.catalog?.tracks.length === 3);
  assert.deepEqual(
    v.catalog?.tracks.map((x) => x.id),
    ['video', 'audio', 'video-540p'],
  );
  v.client.select('video-540p');
  await until('the SELECT at the relay', () => r.relay.stats().selectsReceived === 1);
  const segment = new GrowingSource(
    { kind: 'headers', id: segmentId(2, 2), order: 0, depends: [initId(2)], path: '/live/video-540p/2.m4s' },
    'video-540p',
    false,
  );
  segment.append(chunk(2000, 5000, 99));
  segment.end();
  for (const sender of senders) sender.send(segment);
  await until('the 540p segment at the viewer', () => v.completed.some((s) => s.path === '/live/video-540p/2.m4s'));
  // The consumer hands a rendition's init over at its switch point, right before its first segment.
  assert.deepEqual(v.inits.get('video-540p'), new Uint8Array(800).fill(3));

  // It is removed again: the viewers hear of it and go on with the remaining rendition, and a viewer
  // joining now is not sent its init or segments.
  for (const sender of senders) sender.send(catalogSource(base), { again: true });
  await until('the catalog without it at the viewer', () => v.catalog?.tracks.length === 2);
  live.publish(2);
  live.publish(3);
  await until('segment 3 of both tracks', () =>
    ['/live/video/3.m4s', '/live/audio/3.m4s'].every((p) => v.completed.some((s) => s.path === p)),
  );
  // Segment 2's time was played from 540p: the remaining rendition's copy of it is the only one passed over.
  assert.deepEqual(v.skipped.splice(0), ['video@2000: old']);
  assertSegments(live, v, [1, 3], 'viewer');
  const late = await viewer(t, r.url);
  await until('segment 2 at the late viewer', () => late.completed.length >= 2);
  assert.deepEqual(
    late.catalog?.tracks.map((x) => x.id),
    ['video', 'audio'],
  );
  assert.ok(!late.inits.has('video-540p'));
  assert.equal(late.client.consumer.stats().malformed, 0, 'nothing of the removed track reached the late viewer');
});

test('a relay session picks its own delivery order (?order=) among those allowed; the relay rewrites for it', async (t) => {
  const live = new WarpLive({ timeShiftBufferDepth: 40 });
  live.publish(1);
  const o = await origin(t, live); // newest-first
  const r = await relayOf(t, o.url, { reorder: 'oldest-first', ordersAllowed: ['oldest-first', 'audio-first'] });
  await assert.rejects(
    connectWebTransport(`${r.url}?order=newest-first`, { ca: certificate.cert }),
    (e: unknown) => e instanceof SessionRefusedError && e.status === 400 && /not allowed here/.test(e.message),
  );
  const own = await viewer(t, `${r.url}?order=audio-first`);
  const relays = await viewer(t, r.url);
  for (let n = 1; n <= 3; n++) {
    if (n > 1) live.publish(n);
    await until(`segment ${n} at both viewers`, () =>
      [own, relays].every((v) => v.completed.filter((c) => c.path?.endsWith(`/${n}.m4s`)).length === 2),
    );
  }
  for (const [v, order] of [
    [own, 'audio-first'],
    [relays, 'oldest-first'],
  ] as const) {
    assert.equal(v.catalog?.orderPolicy, order);
    for (const s of v.completed)
      assert.equal(
        s.order,
        segmentOrder(order, s.track === 'video' ? 'video' : 'audio', s.decodeTime * 1000, [INIT_ORDER]) + 0,
        `${order}: ${s.path}`,
      );
    assertSegments(live, v, [1, 2, 3], order);
  }
});

test('drain: a relay with 50 viewers is drained to a second relay while the broadcast runs; every viewer moves, no segment missing', {
  timeout: 60_000,
}, async (t) => {
  const live = new WarpLive({ timeShiftBufferDepth: 120 });
  live.publish(1);
  const o = await origin(t, live);
  const a = await relayOf(t, o.url);
  const b = await relayOf(t, o.url);
  const viewers: Viewer[] = [];
  // In groups of ten: the handshakes share two cores with everything else.
  for (let i = 0; i < 50; i += 10)
    viewers.push(...(await Promise.all(Array.from({ length: 10 }, () => viewer(t, a.url)))));
  await until('segment 1 at every viewer', () => viewers.every((v) => v.completed.length >= 2), { timeoutMs: 20_000 });

  // The broadcast runs: a chunk of each track every 50 ms, four to a segment; the drain begins with a
  // segment under way (its second chunk sent) and the broadcast goes on through it.
  let n = 1;
  let current: ReturnType<WarpLive['start']>[] = [];
  let draining: ReturnType<WarpRelay['drain']> | undefined;
  let stopAt = Number.POSITIVE_INFINITY;
  const tick = setInterval(() => {
    if (current.length === 0) {
      if (n >= stopAt) return;
      n++;
      current = live.tracks.map((track) => live.start(track, n));
    }
    for (const [i, track] of live.tracks.entries()) live.add(track, current[i]!);
    if (current[0]!.chunks.length === 2 && n === 4 && !draining)
      draining = a.relay.drain(new URL(b.url).origin, 20_000);
    if (current[0]!.chunks.length === 4) {
      for (const [i, track] of live.tracks.entries()) track.completeSegment(current[i]!);
      current = [];
    }
  }, 50);
  t.after(() => clearInterval(tick));
  await until('the drain begun', () => draining !== undefined);
  const report = await draining!;
  stopAt = n + 4;
  await until('the broadcast over', () => n === stopAt && current.length === 0, { timeoutMs: 10_000 });
  clearInterval(tick);
  assert.deepEqual(
    { sessions: report.sessions, moved: report.moved, cut: report.cut },
    { sessions: 50, moved: 50, cut: 0 },
    'every session moved, none cut',
  );
  const last = n;
  for (const [i, v] of viewers.entries()) {
    await until(`viewer ${i}: segments 1–${last}`, () => v.completed.length >= 2 * last, {
      timeoutMs: 10_000,
      detail: () =>
        live.tracks
          .map((track) => {
            const got = new Set(media(v, track.id).map((s) => Number(/\/(\d+)\.m4s$/.exec(s.path!)![1])));
            const missing = Array.from({ length: last }, (_, k) => k + 1).filter((k) => !got.has(k));
            return `${track.id} missing ${missing.join(',') || 'none'}`;
          })
          .join('; ') +
        `; skipped ${v.skipped.join(', ') || 'none'}; consumer ${JSON.stringify(v.client.consumer.stats())}; sessions ${v.client.sessionsOpened}`,
    });
    for (const track of live.tracks) {
      const order = media(v, track.id).map((s) => Number(/\/(\d+)\.m4s$/.exec(s.path!)![1]));
      assert.deepEqual(
        order,
        Array.from({ length: last }, (_, k) => k + 1),
        `viewer ${i}, ${track.id}: every segment, in decode order`,
      );
    }
    assertSegments(live, v, [1, 3, 4, last], `viewer ${i}`);
    assert.equal(v.client.sessionsOpened, 2, `viewer ${i} followed the GOAWAY once`);
    assert.equal(v.client.openSessions, 1);
    assert.equal(v.client.lastClose?.code, 1, 'the old session closed with the GOAWAY code');
  }
  const sa = a.relay.stats();
  assert.deepEqual(
    [sa.draining, sa.sessions, sa.drainRemaining, sa.goawaySessionsMoved, sa.goawaySessionsCut],
    [true, 0, 0, 50, 0],
  );
  assert.equal(b.relay.stats().sessions, 50);
  await assert.rejects(
    viewer(t, a.url),
    (e: unknown) => e instanceof SessionRefusedError && e.status === 503 && e.retryAfterSeconds !== undefined,
  );
  verbose?.(`drain of 50 sessions: ${report.durationMs} ms`);
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
