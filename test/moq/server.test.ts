/**
 * MoQ sessions (src/moq/server.ts) driven by a client written here with pushcast's own codecs over the
 * WebSocket fallback: the compatibility SETUP, announce, the hang catalog, a track's group under way then
 * each new one, chunk by chunk; refusals and bounds (no common version, no SETUP in time, before SETUP,
 * unknown track, too many subscriptions, tokens, sessions); WebTransport protocol negotiation; through a relay;
 * congestion (the oldest groups reset first). `<moq-watch>` itself: test/e2e/moq-watch.test.ts.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import test, { type TestContext } from 'node:test';
import { HANG_CATALOG_TRACK, MOQ_PATH, MoqErrorCode, MoqServer, type MoqServerOptions } from '../../src/moq/index.js';
import { WarpProducer, WarpRelay, WarpServer, type BroadcastFeed } from '../../src/warp/index.js';
import { H3_ALPN } from '../../src/http3/index.js';
import { developmentCertificate } from '../../src/origin/index.js';
import { QuicEndpoint } from '../../src/quic/index.js';
import {
  SessionRouter,
  WebSocketSessionServer,
  connectWebTransport,
  serveHttp3Sessions,
  connectWebSocketSession,
  selectWebTransportProtocol,
  type Session,
  type SessionStream,
} from '../../src/webtransport/index.js';
import {
  MOQT_DRAFT_14,
  MoqLiteStream,
  MoqLiteVersion,
  MoqStreamReader,
  decodeMoqAnnounce,
  decodeMoqAnnounceInit,
  decodeMoqGroup,
  decodeMoqServerSetup,
  decodeMoqSubscribeOk,
  encodeMoqAnnouncePlease,
  encodeMoqClientSetup,
  encodeMoqStreamStart,
  encodeMoqSubscribe,
  encodeMoqSubscribeUpdate,
  frameMoqMessage,
  frameMoqtMessage,
  toBase64,
} from '../../src/wire/index.js';
import { until } from '../support/wait.js';
import { WarpLive } from '../support/warp-live.js';

async function serve(t: TestContext, o: MoqServerOptions = {}) {
  const live = new WarpLive({ timeShiftBufferDepth: 5 });
  live.publish(1);
  const producer = new WarpProducer({
    broadcast: 'live',
    window: live.window,
    timeline: live.timeline,
    policy: 'newest-first',
  });
  return { live, producer, ...(await moqOver(t, producer.feed(), o)) };
}

/** A MoqServer for `feed` on the WebSocket fallback, and a client's `connect`. */
async function moqOver(t: TestContext, feed: BroadcastFeed, o: MoqServerOptions = {}) {
  const moq = new MoqServer(o);
  moq.add(feed);
  // The WebSocket fallback as pushcast's own client speaks it: `webtransport.moq-lite-03` names the protocol.
  const server = new WebSocketSessionServer(new SessionRouter().route(MOQ_PATH, moq), { protocols: moq.protocols });
  const http = createServer((_req, res) => res.writeHead(404).end());
  http.on('upgrade', (req, socket, head) => void server.handleUpgrade(req, socket, head));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const clients: Session[] = [];
  t.after(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await moq.close();
    await server.close();
    http.closeAllConnections();
    await new Promise((resolve) => http.close(resolve));
  });
  const connect = async (path = MOQ_PATH, protocols: string[] = []) => {
    const session = await connectWebSocketSession(`${base}${path}`, { protocols });
    clients.push(session);
    return session;
  };
  return { moq, connect, base };
}

/** A bidirectional control stream of the client: its messages as they come. */
class Control {
  private readonly reader = new MoqStreamReader();
  private readonly chunks: AsyncIterator<Uint8Array>;
  constructor(readonly stream: SessionStream) {
    this.chunks = stream[Symbol.asyncIterator]();
  }
  static async open(session: Session, type: number, first: Uint8Array): Promise<Control> {
    const stream = session.openStream({ bidirectional: true });
    await stream.write(encodeMoqStreamStart(type, first));
    return new Control(stream);
  }
  async varint(): Promise<number | undefined> {
    for (;;) {
      const v = this.reader.varint();
      if (v !== undefined) return v;
      if (!(await this.more())) return undefined;
    }
  }
  async message(framing: 'varint' | 'u16' = 'varint'): Promise<Uint8Array | undefined> {
    for (;;) {
      const m = this.reader.message(framing);
      if (m !== undefined) return m;
      if (!(await this.more())) return undefined;
    }
  }
  private async more(): Promise<boolean> {
    const { value, done } = await this.chunks.next();
    if (done) return false;
    this.reader.push(value);
    return true;
  }
}

const setupMessage = (versions: number[]) =>
  frameMoqtMessage(encodeMoqClientSetup({ versions, parameters: new Map([[2n, 42069n]]) }));

async function setUp(session: Session): Promise<Control> {
  const c = await Control.open(
    session,
    MoqLiteStream.CLIENT_COMPAT,
    setupMessage([MoqLiteVersion.LITE_02, MoqLiteVersion.LITE_01, MOQT_DRAFT_14]),
  );
  assert.equal(await c.varint(), MoqLiteStream.SERVER_COMPAT);
  assert.equal(decodeMoqServerSetup((await c.message('u16'))!).version, MoqLiteVersion.LITE_02);
  return c;
}

/** A group stream the server opened: its GROUP header and frames. */
async function readGroup(stream: SessionStream) {
  const bytes = await stream.readAll();
  const r = new MoqStreamReader({ maxMessage: 1 << 20 });
  r.push(bytes);
  assert.equal(r.varint(), 0, 'a group stream');
  const group = decodeMoqGroup(r.message()!);
  const frames: Uint8Array[] = [];
  for (let f = r.message(); f !== undefined; f = r.message()) frames.push(f);
  assert.equal(r.buffered, 0);
  return { ...group, frames };
}

function groups(session: Session) {
  const got: Awaited<ReturnType<typeof readGroup>>[] = [];
  session.on('stream', (s) => void readGroup(s).then((g) => got.push(g)));
  return got;
}

test('a session: compatibility SETUP → moq-lite-02, the broadcast announced, the hang catalog, a track from its group under way', async (t) => {
  const { live, connect, moq } = await serve(t);
  const session = await connect();
  const got = groups(session);
  await setUp(session);

  const announce = await Control.open(session, MoqLiteStream.ANNOUNCE, frameMoqMessage(encodeMoqAnnouncePlease('')));
  assert.deepEqual(decodeMoqAnnounceInit((await announce.message())!), ['live']);

  const subscribe = (id: number, track: string, priority: number) =>
    Control.open(
      session,
      MoqLiteStream.SUBSCRIBE,
      frameMoqMessage(encodeMoqSubscribe({ id, broadcast: 'live', track, priority })),
    );
  const catalogSub = await subscribe(0, HANG_CATALOG_TRACK, 100);
  assert.equal((await catalogSub.message())?.length, 0, 'SUBSCRIBE_OK');
  const catalogGroup = await until('the catalog group', () => got.find((g) => g.subscribe === 0));
  assert.equal(catalogGroup.sequence, 0);
  assert.equal(catalogGroup.frames.length, 1);
  const catalog = JSON.parse(new TextDecoder().decode(catalogGroup.frames[0]));
  assert.deepEqual(catalog.video.renditions.video, {
    codec: 'avc1.42c01e',
    container: { kind: 'cmaf', init: toBase64(live.video.init!) },
    codedWidth: 640,
    codedHeight: 360,
    bitrate: 800_000,
  });
  assert.deepEqual(catalog.audio.renditions.audio, {
    codec: 'mp4a.40.2',
    container: { kind: 'cmaf', init: toBase64(live.audio.init!) },
    sampleRate: 48000,
    numberOfChannels: 2,
    bitrate: 128_000,
  });

  // The video track: segment 1 (the newest) at once, whole, then segment 2 chunk by chunk as it is made.
  const videoSub = await subscribe(1, 'video', 60);
  assert.equal((await videoSub.message())?.length, 0);
  const first = await until('group 1', () => got.find((g) => g.subscribe === 1 && g.sequence === 1));
  assert.deepEqual(
    first.frames.map((f) => Buffer.from(f).toString('hex')),
    live.video.get(1)!.chunks.map((c) => Buffer.from(c.bytes).toString('hex')),
  );
  live.publish(2);
  const second = await until('group 2', () => got.find((g) => g.subscribe === 1 && g.sequence === 2));
  assert.equal(second.frames.length, 4);

  // The subscription ends with its stream: no group 3 for it.
  const audioSub = await subscribe(2, 'audio', 80);
  assert.equal((await audioSub.message())?.length, 0);
  assert.equal(moq.stats().subscriptions, 3);
  await videoSub.stream.end();
  await until('the subscription to end', () => moq.stats().subscriptions === 2);
  live.publish(3);
  await until('audio group 3', () => got.find((g) => g.subscribe === 2 && g.sequence === 3));
  assert.ok(!got.some((g) => g.subscribe === 1 && g.sequence === 3));
  const s = moq.stats();
  assert.equal(s.sessionsAccepted, 1);
  assert.ok(s.groupsSent >= 5 && s.streamsFinished >= 5, JSON.stringify(s));
});

test('refusals: no common version, no SETUP in time, a stream before SETUP, an unknown track, past maxSubscriptions, tokens, past maxSessions', async (t) => {
  const { connect } = await serve(t, { setupTimeoutMs: 300, maxSubscriptions: 1 });
  // Only draft-14 offered.
  const old = await connect();
  await Control.open(old, MoqLiteStream.CLIENT_COMPAT, setupMessage([MOQT_DRAFT_14]));
  assert.equal((await old.closed).code, MoqErrorCode.VERSION);
  // No SETUP.
  const silent = await connect();
  assert.equal((await silent.closed).code, MoqErrorCode.TIMEOUT);
  // A subscription before SETUP: that stream is reset, the session goes on.
  const early = await connect();
  const before = await Control.open(
    early,
    MoqLiteStream.SUBSCRIBE,
    frameMoqMessage(encodeMoqSubscribe({ id: 0, broadcast: 'live', track: 'video', priority: 0 })),
  );
  await assert.rejects(before.message());
  await setUp(early);
  const unknown = await Control.open(
    early,
    MoqLiteStream.SUBSCRIBE,
    frameMoqMessage(encodeMoqSubscribe({ id: 1, broadcast: 'live', track: 'nope', priority: 0 })),
  );
  await assert.rejects(unknown.message());
  const one = await Control.open(
    early,
    MoqLiteStream.SUBSCRIBE,
    frameMoqMessage(encodeMoqSubscribe({ id: 2, broadcast: 'live', track: 'video', priority: 0 })),
  );
  assert.equal((await one.message())?.length, 0);
  const two = await Control.open(
    early,
    MoqLiteStream.SUBSCRIBE,
    frameMoqMessage(encodeMoqSubscribe({ id: 3, broadcast: 'live', track: 'audio', priority: 0 })),
  );
  await assert.rejects(two.message());

  const tokened = await serve(t, { tokens: ['s3cret'], maxSessions: 1 });
  await assert.rejects(connectWebSocketSession(`${tokened.base}/moq`), /401/);
  await assert.rejects(connectWebSocketSession(`${tokened.base}/moq?token=x`), /403/);
  await assert.rejects(connectWebSocketSession(`${tokened.base}/moq/other?token=s3cret`), /404/);
  await tokened.connect('/moq?token=s3cret');
  await assert.rejects(connectWebSocketSession(`${tokened.base}/moq?token=s3cret`), /503/);
  assert.equal(tokened.moq.stats().sessionsRefused, 4);
});

test('WebTransport protocol negotiation: the server answers moq-lite-03, else moql, which every @moq/net offers; nothing for an offer without either or a malformed one', () => {
  const { protocols } = new MoqServer();
  const chromium = '"moq-lite-05", "moq-lite-04", "moq-lite-03", "moql", "moqt-19", "moqt-18"';
  assert.equal(selectWebTransportProtocol(chromium, protocols), 'moq-lite-03');
  assert.equal(selectWebTransportProtocol('"moq-lite-05", "moql"', protocols), 'moql');
  assert.equal(selectWebTransportProtocol('"moqt-19"', protocols), undefined);
  assert.equal(selectWebTransportProtocol('"moql", (', protocols), undefined);
  assert.equal(selectWebTransportProtocol(undefined, protocols), undefined);
});

test('through a relay: origin (Warp over WebTransport) → WarpRelay → MoQ, the same catalog and the same chunks', async (t) => {
  const dir = mkdtempSync(join(os.tmpdir(), 'pushcast-moq-relay-'));
  const certificate = developmentCertificate(dir);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const live = new WarpLive({ timeShiftBufferDepth: 5 });
  live.publish(1);
  const producer = new WarpProducer({
    broadcast: 'live',
    window: live.window,
    timeline: live.timeline,
    policy: 'newest-first',
  });
  const warp = new WarpServer();
  warp.add(producer);
  const endpoint = await QuicEndpoint.listen({
    alpn: [H3_ALPN],
    key: certificate.key,
    cert: certificate.cert,
    host: '127.0.0.1',
    port: 0,
  });
  const router = new SessionRouter().route('/warp', warp);
  endpoint.on('connection', (conn) => serveHttp3Sessions(conn, { router }));
  const relay = new WarpRelay({
    upstream: `https://localhost:${endpoint.address.port}/warp/live`,
    ca: certificate.cert,
    reconnectMinMs: 100,
  });
  relay.start();
  t.after(async () => {
    await relay.close();
    await warp.close();
    producer.close();
    await endpoint.close();
  });
  const feed = relay.feed();
  await until('the relay to have the catalog, the inits and segment 1', () =>
    Boolean(feed.catalog() && feed.init('video') && feed.init('audio') && feed.current().length === 2),
  );
  assert.deepEqual([...feed.init('video')!], [...live.video.init!]);
  const { connect } = await moqOver(t, feed);
  const session = await connect();
  const got = groups(session);
  await setUp(session);
  const subscribe = (id: number, track: string) =>
    Control.open(
      session,
      MoqLiteStream.SUBSCRIBE,
      frameMoqMessage(encodeMoqSubscribe({ id, broadcast: 'live', track, priority: 60 })),
    );
  await subscribe(0, HANG_CATALOG_TRACK);
  await subscribe(1, 'video');
  const catalogGroup = await until('the catalog', () => got.find((g) => g.subscribe === 0));
  const catalog = JSON.parse(new TextDecoder().decode(catalogGroup.frames[0]));
  assert.equal(catalog.video.renditions.video.container.init, toBase64(live.video.init!));
  assert.equal(catalog.audio.renditions.audio.container.init, toBase64(live.audio.init!));
  const hex = (frames: readonly Uint8Array[]) => frames.map((f) => Buffer.from(f).toString('hex'));
  const first = await until('group 1', () => got.find((g) => g.subscribe === 1 && g.sequence === 1));
  assert.deepEqual(hex(first.frames), hex(live.video.get(1)!.chunks.map((c) => c.bytes)));
  live.publish(2);
  const second = await until('group 2 through the relay', () => got.find((g) => g.subscribe === 1 && g.sequence === 2));
  assert.deepEqual(hex(second.frames), hex(live.video.get(2)!.chunks.map((c) => c.bytes)));
});

test('congestion: the newest groups go first and the oldest are reset at the backlog bound (a viewer with small windows, over WebTransport)', async (t) => {
  const dir = mkdtempSync(join(os.tmpdir(), 'pushcast-moq-congestion-'));
  const certificate = developmentCertificate(dir);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const live = new WarpLive({ timeShiftBufferDepth: 10 });
  live.publish(1);
  const producer = new WarpProducer({
    broadcast: 'live',
    window: live.window,
    timeline: live.timeline,
    policy: 'newest-first',
  });
  const moq = new MoqServer({ maxBacklogBytes: 1_000_000 });
  moq.add(producer.feed());
  const endpoint = await QuicEndpoint.listen({
    alpn: [H3_ALPN],
    key: certificate.key,
    cert: certificate.cert,
    host: '127.0.0.1',
    port: 0,
  });
  const router = new SessionRouter().route(MOQ_PATH, moq);
  endpoint.on('connection', (conn) => serveHttp3Sessions(conn, { router }));
  const session = await connectWebTransport(`https://localhost:${endpoint.address.port}${MOQ_PATH}`, {
    ca: certificate.cert,
    initialMaxData: 256 * 1024,
    initialMaxStreamData: 128 * 1024,
    maxStreamBuffer: 64 * 1024,
  });
  t.after(async () => {
    await session.close().catch(() => undefined);
    await moq.close();
    producer.close();
    await endpoint.close();
  });
  const completed: number[] = [];
  let resets = 0;
  session.on('stream', (stream) => {
    void readGroup(stream).then(
      (g) => completed.push(g.sequence),
      () => resets++,
    );
  });
  await setUp(session);
  const sub = await Control.open(
    session,
    MoqLiteStream.SUBSCRIBE,
    frameMoqMessage(encodeMoqSubscribe({ id: 1, broadcast: 'live', track: 'video', priority: 60 })),
  );
  assert.equal((await sub.message())?.length, 0);
  // Seven more GoPs of 400 kB at once, for a backlog bound of 1 MB.
  for (let n = 2; n <= 8; n++) {
    const segment = live.start(live.video, n);
    for (let i = 0; i < 4; i++) live.add(live.video, segment, 100_000);
    live.video.completeSegment(segment);
  }
  // A group reset before its stream opened never reaches the viewer: the server's counts say when all are settled.
  const s = await until(
    'every group sent whole or reset',
    () => {
      const st = moq.stats();
      return st.streamsFinished + st.streamsCancelled >= 8 && completed.length >= st.streamsFinished && st;
    },
    { timeoutMs: 20_000, detail: () => `${JSON.stringify(moq.stats())}; whole: ${completed}; reset: ${resets}` },
  );
  assert.ok(s.streamsCancelled >= 3, JSON.stringify(s));
  assert.ok(completed.includes(8), `the newest group arrives whole: ${completed}`);
  // What arrived whole is the newest groups: every group newer than one that arrived, arrived too.
  const whole = new Set(completed);
  for (const n of completed)
    for (let m = n; m <= 8; m++) assert.ok(whole.has(m), `group ${m} reset, ${n} whole: ${completed}`);
});

test('the catalog: a subscription before it comes is served when it does; a changed catalog is a new group', async (t) => {
  const live = new WarpLive({ timeShiftBufferDepth: 5, renditions: true });
  live.publish(1);
  const producer = new WarpProducer({
    broadcast: 'live',
    window: live.window,
    timeline: live.timeline,
    policy: 'newest-first',
  });
  const real = producer.feed();
  // A relay's feed, as it were: no catalog at first, then one with the first rendition only, then both.
  let tracks: string[] | undefined;
  const listeners = new Set<() => void>();
  const feed: BroadcastFeed = {
    ...real,
    catalog: () => {
      const c = real.catalog()!;
      return tracks && { ...c, tracks: c.tracks.filter((x) => tracks!.includes(x.id)) };
    },
    onCatalog: (l) => (listeners.add(l), () => listeners.delete(l)),
  };
  const { connect } = await moqOver(t, feed);
  const session = await connect();
  const got = groups(session);
  await setUp(session);
  const sub = await Control.open(
    session,
    MoqLiteStream.SUBSCRIBE,
    frameMoqMessage(encodeMoqSubscribe({ id: 5, broadcast: 'live', track: HANG_CATALOG_TRACK, priority: 100 })),
  );
  assert.equal((await sub.message())?.length, 0, 'accepted before the catalog is known');
  const renditions = (sequence: number) => {
    const g = got.find((x) => x.subscribe === 5 && x.sequence === sequence);
    return g && Object.keys(JSON.parse(new TextDecoder().decode(g.frames[0])).video.renditions);
  };
  tracks = ['video', 'audio'];
  for (const l of listeners) l();
  assert.deepEqual(await until('catalog group 0', () => renditions(0)), ['video']);
  for (const l of listeners) l(); // the same catalog again: nothing new
  tracks = ['video', 'video-hi', 'audio'];
  for (const l of listeners) l();
  assert.deepEqual(await until('catalog group 1', () => renditions(1)), ['video', 'video-hi']);
  assert.equal(got.filter((g) => g.subscribe === 5).length, 2);
  producer.close();
});

test('moq-lite-03 (the protocol named, no SETUP): announces without ANNOUNCE_INIT, a typed SUBSCRIBE_OK granting what was asked, SUBSCRIBE_UPDATE taken', async (t) => {
  const { live, connect, moq } = await serve(t);
  const session = await connect(MOQ_PATH, ['moq-lite-03']);
  const got = groups(session);
  const announce = await Control.open(session, MoqLiteStream.ANNOUNCE, frameMoqMessage(encodeMoqAnnouncePlease('')));
  assert.deepEqual(decodeMoqAnnounce((await announce.message())!, 3), { active: true, suffix: 'live', hops: 0 });
  const sub = await Control.open(
    session,
    MoqLiteStream.SUBSCRIBE,
    frameMoqMessage(
      encodeMoqSubscribe(
        { id: 4, broadcast: 'live', track: 'video', priority: 60, ordered: true, maxLatency: 1500 },
        3,
      ),
    ),
  );
  assert.equal(await sub.varint(), 0, 'SUBSCRIBE_OK');
  assert.deepEqual(decodeMoqSubscribeOk((await sub.message())!, 3), {
    priority: 60,
    ordered: false,
    maxLatency: 1500,
  });
  await sub.stream.write(frameMoqMessage(encodeMoqSubscribeUpdate({ priority: 90, ordered: false, maxLatency: 0 })));
  const first = await until('group 1', () => got.find((g) => g.subscribe === 4 && g.sequence === 1));
  assert.equal(first.frames.length, 4);
  live.publish(2);
  await until('group 2', () => got.find((g) => g.subscribe === 4 && g.sequence === 2));
  assert.equal(moq.stats().sessionsFailed, 0, 'no SETUP expected, none missed');
});
