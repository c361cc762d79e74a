/**
 * draft-ietf-moq-transport-16 at /moq (src/moq/ietf.ts) with the pinned `@moq/net` 0.3.4 itself as the
 * client, forced to the IETF draft: its transport (the `@moq/web-transport-ws` polyfill over pushcast's
 * WebSocket fallback) offers only `moqt-16`. It discovers the broadcast (SUBSCRIBE_NAMESPACE), reads the
 * hang catalog and a video track whose frames are pushcast's CMAF chunks byte for byte, group by group.
 * Then a client written here with pushcast's codecs: refusals, filters, UNSUBSCRIBE and the request grant.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import test, { type TestContext } from 'node:test';
import WebTransportWs from '@moq/web-transport-ws';
import { WebSocket } from 'ws';
import { MOQ_PATH, MoqServer, type MoqServerOptions } from '../../src/moq/index.js';
import { WarpProducer } from '../../src/warp/index.js';
import {
  SessionRouter,
  WebSocketSessionServer,
  connectWebSocketSession,
  type Session,
  type SessionStream,
} from '../../src/webtransport/index.js';
import {
  MOQT_16_PROTOCOL,
  MoqStreamReader,
  MoqtMessage,
  decodeMoqtRequestError,
  decodeMoqtRequestId,
  decodeMoqtSetup,
  decodeMoqtSubgroupStream,
  decodeMoqtSubscribeOk,
  encodeMoqtRequestId,
  encodeMoqtSetup,
  encodeMoqtSubscribe,
  frameMoqtControl,
  toBase64,
  type MoqtFilter,
} from '../../src/wire/index.js';
import { until } from '../support/wait.js';
import { WarpLive } from '../support/warp-live.js';

// @moq/net is written for browsers: Node 20 lacks a global WebSocket and Promise.withResolvers.
const g = globalThis as Record<string, unknown>;
g.WebSocket ??= WebSocket;
(Promise as unknown as Record<string, unknown>).withResolvers ??= () => {
  let resolve!: (v: unknown) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise((a, b) => ((resolve = a), (reject = b)));
  return { promise, resolve, reject };
};
const { Connection, Path } = await import('@moq/net');
// @moq/net logs every control message at debug level.
console.debug = () => undefined;

async function serve(t: TestContext, o: MoqServerOptions = {}) {
  const live = new WarpLive({ timeShiftBufferDepth: 5 });
  live.publish(1);
  const producer = new WarpProducer({
    broadcast: 'live',
    window: live.window,
    timeline: live.timeline,
    policy: 'newest-first',
  });
  const moq = new MoqServer(o);
  moq.add(producer.feed());
  const server = new WebSocketSessionServer(new SessionRouter().route(MOQ_PATH, moq), { protocols: moq.protocols });
  const http = createServer((_req, res) => res.writeHead(404).end());
  http.on('upgrade', (req, socket, head) => void server.handleUpgrade(req, socket, head));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const closers: (() => unknown)[] = [];
  t.after(async () => {
    for (const c of closers) await Promise.resolve(c()).catch(() => undefined);
    await moq.close();
    await server.close();
    http.closeAllConnections();
    await new Promise((resolve) => http.close(resolve));
  });
  return { live, moq, base, closers };
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

test('@moq/net 0.3.4 forced to moqt-16: announce, the hang catalog, a video track whose frames are the CMAF chunks, group by group', async (t) => {
  const { live, moq, base, closers } = await serve(t);
  const transport = new WebTransportWs(`${base}${MOQ_PATH}`, { protocols: [MOQT_16_PROTOCOL] });
  // The negotiated protocol is known once the WebSocket is open; @moq/net reads it when given the transport.
  await transport.ready;
  const conn = await Connection.connect(new URL(`${base}${MOQ_PATH}`), { transport: transport as never });
  closers.push(() => conn.close());
  assert.equal(transport.protocol, MOQT_16_PROTOCOL);
  assert.equal(conn.version, 'moq-transport-16');

  const announced = conn.announced(Path.empty());
  assert.deepEqual(await announced.next(), { path: 'live', active: true });

  const broadcast = conn.consume(Path.from('live'));
  const catalogTrack = broadcast.subscribe('catalog.json', { priority: 100 });
  const catalog = JSON.parse(new TextDecoder().decode((await catalogTrack.readFrame())!.payload));
  assert.deepEqual(catalog.video.renditions.video.container, { kind: 'cmaf', init: toBase64(live.video.init!) });
  assert.equal(catalog.audio.renditions.audio.codec, 'mp4a.40.2');

  // Segment 1 (the group under way when it subscribes) from its first chunk, then segment 2 chunk by chunk.
  const video = broadcast.subscribe('video', { priority: 60 });
  const frames = async (group: number, count: number) => {
    const got: string[] = [];
    while (got.length < count) {
      const f = (await video.readFrameSequence())!;
      assert.equal(f.group, group);
      assert.equal(f.frame, got.length);
      got.push(hex(f.payload));
    }
    return got;
  };
  const one = live.video.get(1)!.chunks;
  assert.deepEqual(
    await frames(1, one.length),
    one.map((c) => hex(c.bytes)),
  );
  live.publish(2);
  const two = live.video.get(2)!.chunks;
  assert.deepEqual(
    await frames(2, two.length),
    two.map((c) => hex(c.bytes)),
  );
  const s = moq.stats();
  assert.equal(s.sessions, 1);
  assert.equal(s.subscriptions, 2);
  assert.ok(s.groupsSent >= 3, JSON.stringify(s));
});

/** A client written here: the control stream and the subgroup streams the server opens. */
async function client(base: string) {
  const session: Session = await connectWebSocketSession(`${base}${MOQ_PATH}`, { protocols: [MOQT_16_PROTOCOL] });
  const groups: ReturnType<typeof decodeMoqtSubgroupStream>[] = [];
  session.on('stream', (s: SessionStream) => void s.readAll().then((b) => groups.push(decodeMoqtSubgroupStream(b))));
  const control = session.openStream({ bidirectional: true });
  const reader = new MoqStreamReader();
  const chunks = control[Symbol.asyncIterator]();
  let pending: number | undefined;
  const next = async (): Promise<{ type: number; payload: Uint8Array }> => {
    for (;;) {
      pending ??= reader.varint();
      const payload = pending === undefined ? undefined : reader.message('u16');
      if (payload !== undefined) {
        const type = pending!;
        pending = undefined;
        return { type, payload };
      }
      const { value, done } = await chunks.next();
      if (done) throw new Error('the control stream ended');
      reader.push(value);
    }
  };
  const send = (type: number, payload: Uint8Array) => control.write(frameMoqtControl(type, payload));
  const subscribe = (requestId: number, track: string, filter?: MoqtFilter) =>
    send(MoqtMessage.SUBSCRIBE, encodeMoqtSubscribe({ requestId, namespace: ['live'], track, priority: 195, filter }));
  await send(MoqtMessage.CLIENT_SETUP, encodeMoqtSetup(new Map([[2n, 100n]])));
  const setup = await next();
  assert.equal(setup.type, MoqtMessage.SERVER_SETUP);
  return { session, next, send, subscribe, groups, setup: decodeMoqtSetup(setup.payload) };
}

test("a client of pushcast's codecs: SERVER_SETUP grants request IDs, refusals, Next Group Start, UNSUBSCRIBE, an odd request ID", async (t) => {
  const { live, moq, base, closers } = await serve(t);
  const c = await client(base);
  closers.push(() => c.session.close());
  assert.equal(c.setup.get(2n), 144n, 'MAX_REQUEST_ID: 64 subscriptions and 8 announce streams');

  await c.subscribe(0, 'nope');
  let m = await c.next();
  assert.equal(m.type, MoqtMessage.REQUEST_ERROR);
  assert.deepEqual(decodeMoqtRequestError(m.payload), {
    requestId: 0,
    code: 4,
    retryInterval: 0,
    reason: 'no track nope in live',
  });
  m = await c.next();
  assert.deepEqual([m.type, decodeMoqtRequestId(m.payload)], [MoqtMessage.MAX_REQUEST_ID, 146]);

  await c.subscribe(2, 'video', { kind: 'next-group' });
  m = await c.next();
  assert.equal(m.type, MoqtMessage.SUBSCRIBE_OK);
  const { trackAlias } = decodeMoqtSubscribeOk(m.payload);
  live.publish(2);
  const two = await until('group 2', () =>
    c.groups.find((g) => g.header.trackAlias === trackAlias && g.header.group === 2),
  );
  assert.equal(two.header.priority, 195);
  assert.deepEqual(
    two.objects.map((o) => [o.id, hex(o.payload)]),
    live.video.get(2)!.chunks.map((ch, i) => [i, hex(ch.bytes)]),
  );
  assert.ok(!c.groups.some((g) => g.header.group === 1), 'Next Group Start: not the group under way');

  await c.subscribe(4, 'audio', { kind: 'absolute-range', group: 0, object: 0, endGroup: 3 });
  m = await c.next();
  assert.deepEqual([m.type, decodeMoqtRequestError(m.payload).code], [MoqtMessage.REQUEST_ERROR, 3]);
  await c.next();

  await c.send(MoqtMessage.UNSUBSCRIBE, encodeMoqtRequestId(2));
  m = await c.next();
  assert.deepEqual([m.type, decodeMoqtRequestId(m.payload)], [MoqtMessage.MAX_REQUEST_ID, 150]);
  assert.equal(moq.stats().subscriptions, 0);
  await c.subscribe(6, 'audio', { kind: 'largest-object' });
  m = await c.next();
  const audio = decodeMoqtSubscribeOk(m.payload).trackAlias;
  live.publish(3);
  await until('audio group 3', () => c.groups.find((g) => g.header.trackAlias === audio && g.header.group === 3));
  assert.ok(!c.groups.some((g) => g.header.trackAlias === trackAlias && g.header.group === 3));

  // Client request IDs are even.
  const failed = moq.stats().sessionsFailed;
  await c.subscribe(7, 'audio');
  await until('the session closed', () => moq.stats().sessionsFailed === failed + 1 && moq.stats().sessions === 0);
});
