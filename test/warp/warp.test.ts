/**
 * Warp end to end in Node over WebTransport on the loopback, on a live window built by hand: every
 * segment and init reaches a Node viewer byte-identical, in decode order; tokens are checked; GOAWAY
 * moves the viewer to another server without a missing segment; each session has the delivery order it
 * asked for, within what the operator allows.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { H3_ALPN } from '../../src/http3/index.js';
import { developmentCertificate } from '../../src/origin/index.js';
import { WarpLive } from '../support/warp-live.js';
import { QuicEndpoint } from '../../src/quic/index.js';
import {
  INIT_ORDER,
  WarpClient,
  WarpProducer,
  WarpSender,
  WarpServer,
  segmentOrder,
  type SegmentRef,
  type WarpConsumerSink,
  type WarpServerOptions,
  type WarpSource,
} from '../../src/warp/index.js';
import { backlogLimit } from '../../src/warp/fanout.js';
import {
  SessionRefusedError,
  SessionRouter,
  connectWebTransport,
  serveHttp3Sessions,
} from '../../src/webtransport/index.js';
import { until } from '../support/wait.js';

const dir = mkdtempSync(join(os.tmpdir(), 'pushcast-warp-'));
const certificate = developmentCertificate(dir);
test.after(() => rmSync(dir, { recursive: true, force: true }));

async function warpServer(live: WarpLive, tokens?: string[], options: WarpServerOptions = {}) {
  const producer = new WarpProducer({
    broadcast: 'live',
    window: live.window,
    timeline: live.timeline,
    policy: 'newest-first',
  });
  const warp = new WarpServer({ tokens, ...options });
  warp.add(producer);
  const router = new SessionRouter().route('/warp', warp);
  const endpoint = await QuicEndpoint.listen({
    alpn: [H3_ALPN],
    key: certificate.key,
    cert: certificate.cert,
    host: '127.0.0.1',
    port: 0,
  });
  endpoint.on('connection', (conn) => serveHttp3Sessions(conn, { router }));
  return {
    warp,
    producer,
    endpoint,
    url: `https://localhost:${endpoint.address.port}/warp/live`,
    close: async () => (await warp.close(), producer.close(), await endpoint.close()),
  };
}

interface Received {
  inits: Map<string, Uint8Array>;
  segments: Map<string, Uint8Array[]>;
  completed: SegmentRef[];
  skipped: { track: string; decodeTime: number; why: string }[];
}

function collector(): Received & { sink: WarpConsumerSink } {
  const r: Received = { inits: new Map(), segments: new Map(), completed: [], skipped: [] };
  return {
    ...r,
    sink: {
      init: (track, bytes) => r.inits.set(track.id, bytes),
      data: (segment, bytes) => {
        const parts = r.segments.get(segment.path!) ?? [];
        parts.push(bytes);
        r.segments.set(segment.path!, parts);
      },
      end: (segment, complete) => complete && r.completed.push(segment),
      skip: (track, decodeTime, why) => r.skipped.push({ track, decodeTime, why }),
    },
  };
}

const joined = (parts: Uint8Array[] | undefined) => new Uint8Array(Buffer.concat(parts ?? []));

test('every init and segment arrives byte-identical, in decode order per track, growing segments included', async (t) => {
  const live = new WarpLive({ timeShiftBufferDepth: 20, chunkBytes: 3000 });
  live.publish(1);
  const server = await warpServer(live);
  t.after(server.close);
  const got = collector();
  const client = await WarpClient.connect(server.url, { sink: got.sink, bufferMs: 2000, ca: certificate.cert });
  t.after(() => client.close());
  await until('inits', () => got.inits.size === 2);
  assert.deepEqual(got.inits.get('video'), live.video.init);
  assert.deepEqual(got.inits.get('audio'), live.audio.init);
  // A segment that grows chunk by chunk while the viewer watches.
  for (let n = 2; n <= 5; n++) {
    for (const track of [live.video, live.audio]) {
      const s = live.start(track, n);
      live.add(track, s);
      await new Promise((r) => setTimeout(r, 30));
      live.add(track, s);
      live.add(track, s);
      track.completeSegment(s);
    }
  }
  await until('segments 1–5 of both tracks', () => got.completed.length >= 10);
  for (let n = 1; n <= 5; n++) {
    for (const track of [live.video, live.audio]) {
      const path = `/live/${track.id}/${n}.m4s`;
      assert.deepEqual(joined(got.segments.get(path)), track.get(n)!.bytes(), path);
    }
  }
  for (const id of ['video', 'audio']) {
    const times = got.completed.filter((s) => s.track === id).map((s) => s.decodeTime);
    assert.deepEqual(
      times,
      [...times].sort((a, b) => a - b),
      `${id} in decode order`,
    );
  }
  assert.equal(got.skipped.length, 0);
  const stats = server.warp.stats();
  assert.equal(stats.sessions, 1);
  assert.ok(stats.senders[0]!.streamsFinished >= 13, 'catalog, 2 inits, 10 segments');
  assert.deepEqual(stats.sessionsAcceptedByTransport, { webtransport: 1, websocket: 0 });
  // The totals outlive the session: a closed session's streams and bytes stay counted.
  await client.close();
  await until('the session closed on the server', () => server.warp.stats().sessions === 0);
  const after = server.warp.stats();
  assert.ok(
    after.streamsFinished >= stats.streamsFinished,
    `${after.streamsFinished} streams finished after the close, ${stats.streamsFinished} before`,
  );
  assert.ok(after.bytesWritten >= stats.bytesWritten && stats.bytesWritten > 0);
  assert.ok(after.streamsOpened >= after.streamsFinished + after.streamsCancelled + after.streamsStopped);
  assert.equal(after.backlogBytes, 0);
});

test('a broadcast with tokens refuses a missing (401) or wrong (403) token, and an unknown broadcast (404)', async (t) => {
  const live = new WarpLive({ timeShiftBufferDepth: 20, chunkBytes: 3000 });
  live.publish(1);
  const server = await warpServer(live, ['s3cret']);
  t.after(server.close);
  const sink = collector().sink;
  await assert.rejects(
    WarpClient.connect(server.url, { sink, bufferMs: 1000, ca: certificate.cert }),
    (e: unknown) => e instanceof SessionRefusedError && e.status === 401 && /needs a token/.test(e.reason),
  );
  await assert.rejects(
    WarpClient.connect(`${server.url}?token=nope`, { sink, bufferMs: 1000, ca: certificate.cert }),
    (e: unknown) => e instanceof SessionRefusedError && e.status === 403 && e.reason === 'wrong token',
  );
  await assert.rejects(
    WarpClient.connect(`${server.url.replace('/live', '/other')}?token=s3cret`, {
      sink,
      bufferMs: 1000,
      ca: certificate.cert,
    }),
    (e: unknown) => e instanceof SessionRefusedError && e.status === 404,
  );
  const ok = await WarpClient.connect(`${server.url}?token=s3cret`, { sink, bufferMs: 1000, ca: certificate.cert });
  await ok.close();
  const stats = server.warp.stats();
  assert.deepEqual(stats.sessionsRefusedByStatus, { 400: 0, 401: 1, 403: 1, 404: 1, 503: 0 });
  assert.equal(stats.sessionsRefused, 3);
  assert.equal(stats.sessionsAccepted, 1);
});

test('GOAWAY: the viewer moves to the new server, takes segments from both for a while, and misses none', async (t) => {
  const live = new WarpLive({ timeShiftBufferDepth: 20, chunkBytes: 3000 });
  live.publish(1);
  const a = await warpServer(live);
  const b = await warpServer(live);
  t.after(async () => (await a.close(), await b.close()));
  const got = collector();
  const client = await WarpClient.connect(a.url, { sink: got.sink, bufferMs: 2000, ca: certificate.cert });
  t.after(() => client.close());
  await until('segment 1', () => got.completed.length >= 2);
  live.publish(2);
  // Segment 3 is under way when the GOAWAY comes; it completes during the grace period.
  const s3 = [live.video, live.audio].map((track) => {
    const s = live.start(track, 3);
    live.add(track, s);
    return s;
  });
  const moving = a.warp.goaway(b.url, 400);
  await new Promise((r) => setTimeout(r, 100));
  [live.video, live.audio].forEach((track, i) => {
    live.add(track, s3[i]!);
    track.completeSegment(s3[i]!);
  });
  await moving;
  live.publish(4);
  live.publish(5);
  await until('segments 1–5 of both tracks', () => got.completed.length >= 10);
  assert.equal(client.sessionsOpened, 2);
  await until('the old session closed', () => client.openSessions === 1);
  assert.equal(client.lastClose?.code, 1, 'closed with the GOAWAY code (§4.7)');
  for (let n = 1; n <= 5; n++) {
    for (const track of [live.video, live.audio])
      assert.deepEqual(
        joined(got.segments.get(`/live/${track.id}/${n}.m4s`)),
        track.get(n)!.bytes(),
        `${track.id} ${n}`,
      );
  }
  assert.equal(got.skipped.length, 0);
  assert.ok(client.consumer.stats().duplicates >= 1, 'the new session offered copies of what the old one had');
});

test('GOAWAY to a server that refuses at first: the viewer tries again and moves; the old session stays meanwhile', async (t) => {
  const live = new WarpLive({ timeShiftBufferDepth: 20, chunkBytes: 3000 });
  live.publish(1);
  const a = await warpServer(live);
  const b = await warpServer(live);
  t.after(async () => (await a.close(), await b.close()));
  const got = collector();
  const attempts: string[] = [];
  const logs: string[] = [];
  const client = await WarpClient.connect(a.url, {
    sink: got.sink,
    bufferMs: 2000,
    log: (line) => logs.push(line),
    // The successor's first two handshakes fail, as a server not up yet would.
    connect: (url) => {
      attempts.push(url);
      if (url === b.url && attempts.filter((u) => u === b.url).length <= 2)
        return Promise.reject(new Error('connection refused'));
      return connectWebTransport(url, { ca: certificate.cert });
    },
  });
  t.after(() => client.close());
  await until('segment 1', () => got.completed.length >= 2);
  const moving = a.warp.goaway(b.url, 3000);
  await until('the viewer moved to b after two failed attempts', () => client.sessionsOpened === 2, {
    detail: () => logs.join('; '),
  });
  await moving;
  live.publish(2);
  live.publish(3);
  await until('segments 2 and 3 through b', () => got.completed.length >= 6);
  assert.deepEqual(attempts.filter((u) => u === b.url).length, 3, 'two refused, the third opened');
  assert.equal(logs.filter((l) => /GOAWAY to .* failed .*trying again/.test(l)).length, 2, logs.join('\n'));
  assert.equal(got.skipped.length, 0);
});

test('a session picks its tracks (?tracks=); its catalog lists every track (renditions to switch to); an unknown track is refused 400', async (t) => {
  const live = new WarpLive({ timeShiftBufferDepth: 20, chunkBytes: 3000 });
  live.publish(1);
  const server = await warpServer(live);
  t.after(server.close);
  await assert.rejects(
    WarpClient.connect(`${server.url}?tracks=video,nope`, { sink: {}, bufferMs: 1000, ca: certificate.cert }),
    (e: unknown) => e instanceof SessionRefusedError && e.status === 400 && /no track named nope/.test(e.reason),
  );
  const got = collector();
  const client = await WarpClient.connect(`${server.url}?tracks=audio`, {
    sink: got.sink,
    bufferMs: 1000,
    ca: certificate.cert,
  });
  t.after(() => client.close());
  live.publish(2);
  await until('audio segments 1 and 2', () => got.completed.length >= 2);
  assert.deepEqual(client.consumer.catalog!.tracks.map((t) => t.id).sort(), live.tracks.map((t) => t.id).sort());
  assert.deepEqual([...got.inits.keys()], ['audio']);
  assert.ok(got.completed.every((s) => s.track === 'audio'));
});

test('each session has the delivery order it asked for (?order=), within what the operator allows; others are refused 400', async (t) => {
  const live = new WarpLive({ timeShiftBufferDepth: 20, chunkBytes: 3000 });
  live.publish(1);
  // The producer orders newest-first; viewers may ask for oldest-first or audio-first, not video-first.
  const server = await warpServer(live, undefined, { ordersAllowed: ['newest-first', 'oldest-first', 'audio-first'] });
  t.after(server.close);
  for (const [order, why] of [
    ['sideways', /no delivery order named "sideways" \(known: newest-first, oldest-first, video-first, audio-first\)/],
    [
      'video-first',
      /delivery order video-first is not allowed here \(allowed: newest-first, oldest-first, audio-first\)/,
    ],
  ] as const) {
    await assert.rejects(
      WarpClient.connect(`${server.url}?order=${order}`, { sink: {}, bufferMs: 1000, ca: certificate.cert }),
      (e: unknown) => e instanceof SessionRefusedError && e.status === 400 && why.test(e.reason),
      order,
    );
  }
  const sessions = await Promise.all(
    (['oldest-first', 'audio-first', undefined] as const).map(async (order) => {
      const got = collector();
      const client = await WarpClient.connect(order ? `${server.url}?order=${order}` : server.url, {
        sink: got.sink,
        bufferMs: 2000,
        ca: certificate.cert,
      });
      t.after(() => client.close());
      return { order: order ?? ('newest-first' as const), got, client };
    }),
  );
  // One GoP at a time, so that every session gets each (in a burst newest-first would skip the older ones).
  for (let n = 1; n <= 3; n++) {
    if (n > 1) live.publish(n);
    await until(`segment ${n} of both tracks in every session`, () =>
      sessions.every((s) => s.got.completed.filter((c) => c.path?.endsWith(`/${n}.m4s`)).length === 2),
    );
  }
  for (const { order, got, client } of sessions) {
    assert.equal(client.consumer.catalog!.orderPolicy, order, `${order}: the session's catalog names its order`);
    for (const s of got.completed) {
      const kind = s.track === 'video' ? 'video' : 'audio';
      // + 0: the formula gives −0 for PTS 0, the wire's zigzag has no −0.
      assert.equal(s.order, segmentOrder(order, kind, s.decodeTime * 1000, [INIT_ORDER]) + 0, `${order}: ${s.path}`);
    }
    for (let n = 1; n <= 3; n++)
      for (const track of [live.video, live.audio])
        assert.deepEqual(joined(got.segments.get(`/live/${track.id}/${n}.m4s`)), track.get(n)!.bytes());
  }
  const refused = server.warp.stats().sessionsRefusedByStatus[400];
  assert.equal(refused, 2);
});

test("the latency a session's resource limit follows is bounded by the operator (maxLatencyMs), not a constant", () => {
  const bps = 3_000_000;
  assert.equal(backlogLimit(bps, 30_000), backlogLimit(bps, 10_000), 'default bound: 10 s');
  assert.equal(backlogLimit(bps, 30_000, 4000), backlogLimit(bps, 4000));
  assert.ok(backlogLimit(bps, 4000, 4000) < backlogLimit(bps, 30_000, 30_000));
  assert.equal(backlogLimit(bps, 30_000, 30_000), Math.ceil((bps / 8) * 30 * 1.5) + 256 * 1024);
  assert.equal(backlogLimit(bps, 100, 4000), backlogLimit(bps, 500), 'the lower bound stays 0.5 s');
});

test('drain: every session goes to the successor (its own path and query kept), finishes what is under way; new ones are refused 503 with Retry-After', async (t) => {
  const live = new WarpLive({ timeShiftBufferDepth: 20, chunkBytes: 3000 });
  live.publish(1);
  const a = await warpServer(live, ['t']);
  const b = await warpServer(live, ['t']);
  t.after(async () => (await a.close(), await b.close()));
  const viewers = await Promise.all(
    [0, 1].map(async () => {
      const got = collector();
      const client = await WarpClient.connect(`${a.url}?token=t`, {
        sink: got.sink,
        bufferMs: 2000,
        ca: certificate.cert,
      });
      t.after(() => client.close());
      return { got, client };
    }),
  );
  await until('segment 1 at both viewers', () => viewers.every((v) => v.got.completed.length >= 2));
  // Segment 2 is under way when the drain begins; the old sessions finish it.
  const s2 = [live.video, live.audio].map((track) => {
    const s = live.start(track, 2);
    live.add(track, s);
    return s;
  });
  const successor = new URL(b.url).origin; // no path: each session keeps its own
  const draining = a.warp.drain(successor, 5000);
  assert.equal(a.warp.stats().draining, true);
  await assert.rejects(
    WarpClient.connect(`${a.url}?token=t`, { sink: {}, bufferMs: 1000, ca: certificate.cert }),
    (e: unknown) =>
      e instanceof SessionRefusedError &&
      e.status === 503 &&
      e.reason === `this server is draining: connect to ${b.url}` &&
      e.retryAfterSeconds !== undefined &&
      e.retryAfterSeconds >= 1 &&
      e.retryAfterSeconds <= 5,
  );
  await until('both viewers at the successor (with their token)', () => b.warp.stats().sessions === 2);
  [live.video, live.audio].forEach((track, i) => {
    live.add(track, s2[i]!);
    track.completeSegment(s2[i]!);
  });
  const report = await draining;
  assert.deepEqual(
    { sessions: report.sessions, moved: report.moved, cut: report.cut, byTransport: report.byTransport },
    { sessions: 2, moved: 2, cut: 0, byTransport: { webtransport: 2, websocket: 0 } },
  );
  live.publish(3);
  for (const [i, v] of viewers.entries()) {
    await until(`viewer ${i}: segments 1–3 of both tracks`, () => v.got.completed.length >= 6);
    for (let n = 1; n <= 3; n++)
      for (const track of [live.video, live.audio])
        assert.deepEqual(joined(v.got.segments.get(`/live/${track.id}/${n}.m4s`)), track.get(n)!.bytes());
    assert.deepEqual(v.got.skipped, []);
    assert.equal(v.client.sessionsOpened, 2);
    await until('the old session closed with code 1', () => v.client.openSessions === 1);
    assert.equal(v.client.lastClose?.code, 1);
  }
  const s = a.warp.stats();
  assert.deepEqual(
    [
      s.draining,
      s.sessions,
      s.drainRemaining,
      s.goawaySessionsMoved,
      s.goawaySessionsCut,
      s.sessionsRefusedByStatus[503],
    ],
    [true, 0, 0, 2, 0, 1],
  );
  assert.equal(await a.warp.drain('https://elsewhere.example', 1000), report, 'a second drain gets the first one');
});

test('drain bound: a session whose segment under way never ends is cut at the bound', async (t) => {
  const live = new WarpLive({ timeShiftBufferDepth: 20, chunkBytes: 3000 });
  live.publish(1);
  const a = await warpServer(live);
  const b = await warpServer(live);
  t.after(async () => (await a.close(), await b.close()));
  const got = collector();
  const client = await WarpClient.connect(a.url, { sink: got.sink, bufferMs: 2000, ca: certificate.cert });
  t.after(() => client.close());
  await until('segment 1', () => got.completed.length >= 2);
  const s2 = live.start(live.video, 2);
  live.add(live.video, s2);
  await until('segment 2 under way', () => got.segments.has('/live/video/2.m4s'));
  const started = Date.now();
  const report = await a.warp.drain(b.url, 300);
  assert.ok(Date.now() - started < 2000, `ended at the bound (${Date.now() - started} ms)`);
  assert.deepEqual([report.sessions, report.moved, report.cut], [1, 0, 1]);
  assert.equal(a.warp.stats().goawaySessionsCut, 1);
  await until('the viewer at the successor, the old session closed', () => client.openSessions === 1);
  assert.equal(client.sessionsOpened, 2);
});

test('rendition switch (SELECT): at the next GoP, the new init sent ahead and appended at the switch point, decode order and A/V sync kept', async (t) => {
  const live = new WarpLive({ timeShiftBufferDepth: 20, chunkBytes: 3000, renditions: true });
  const sent: { track: string; init: boolean; segment: number | undefined }[] = [];
  const send = WarpSender.prototype.send;
  WarpSender.prototype.send = function (this: WarpSender, source: WarpSource) {
    sent.push({ track: source.track, init: source.init, segment: source.segment });
    send.call(this, source);
  };
  t.after(() => (WarpSender.prototype.send = send));
  live.publish(1);
  const server = await warpServer(live);
  t.after(server.close);
  const log: string[] = [];
  const video: SegmentRef[] = [];
  const audio: SegmentRef[] = [];
  const skipped: string[] = [];
  const client = await WarpClient.connect(server.url, {
    sink: {
      init: (track) => track.kind === 'video' && log.push(`init ${track.id}`),
      end: (s, complete) => {
        if (!complete) return;
        if (s.track === 'audio') audio.push(s);
        else video.push(s), log.push(`segment ${s.path}`);
      },
      skip: (track, time, why) => skipped.push(`${track} ${time} ${why}`),
    },
    bufferMs: 4000,
    ca: certificate.cert,
  });
  t.after(() => client.close());
  await until('segment 1 of the top rendition and of audio', () => video.length === 1 && audio.length === 1);
  assert.equal(video[0]!.track, 'video-hi', 'the session starts on the best rendition');
  client.select('video');
  await until('the server read the SELECT', () => server.warp.stats().selectsReceived === 1);
  for (let n = 2; n <= 4; n++) live.publish(n);
  await until('segments 2–4', () => video.length === 4 && audio.length === 4);
  // The consumer hands the new init over right before the new rendition's first segment.
  assert.deepEqual(log, [
    'init video-hi',
    'segment /live/video-hi/1.m4s',
    'init video',
    'segment /live/video/2.m4s',
    'segment /live/video/3.m4s',
    'segment /live/video/4.m4s',
  ]);
  // One timeline across the switch, in step with audio's.
  assert.deepEqual(
    video.map((s) => s.decodeTime),
    [0, 2000, 4000, 6000],
  );
  assert.deepEqual(
    audio.map((s) => s.decodeTime),
    video.map((s) => s.decodeTime),
  );
  assert.deepEqual(skipped, []);
  assert.equal(client.consumer.stats().switches, 1);
  // The sender: the new init before the new rendition's first segment; the old rendition stops at the boundary.
  const initAt = sent.findIndex((x) => x.track === 'video' && x.init);
  const firstAt = sent.findIndex((x) => x.track === 'video' && !x.init);
  assert.ok(initAt >= 0 && initAt < firstAt, JSON.stringify(sent));
  assert.deepEqual(
    sent.filter((x) => x.track === 'video' && !x.init).map((x) => x.segment),
    [2, 3, 4],
  );
  assert.deepEqual(
    sent.filter((x) => x.track === 'video-hi' && !x.init).map((x) => x.segment),
    [1],
  );
  assert.equal(server.warp.stats().selectsRefused, 0);
});
