/**
 * MoQ contribution (src/moq/publish-ingest.ts, publish-mux.ts) driven by a publisher written here with
 * pushcast's own codecs over the WebSocket fallback, moq-lite-03 as `@moq/publish` speaks it (docs/moq.md):
 * the server asks for announcements, subscribes to the catalog then to the renditions it names, and what
 * comes is Matroska; the bounds (the token, one publisher per broadcast, sessions waiting to announce, the
 * announce and idle timeouts, the frame size, Matroska not read). `@moq/publish` itself: test/e2e/moq-publish.test.ts.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PassThrough } from 'node:stream';
import test, { type TestContext } from 'node:test';
import {
  MOQ_PATH,
  MoqPublishIngest,
  MoqServer,
  decodeLegacyFrame,
  type MoqPublishOptions,
  type MoqPublisher,
} from '../../src/moq/index.js';
import { annexBToAvcc, avcConfigFromAnnexB } from '../../src/source/matroska.js';
import {
  SessionRefusedError,
  SessionRouter,
  WebSocketSessionServer,
  connectWebSocketSession,
  type Session,
  type SessionStream,
} from '../../src/webtransport/index.js';
import {
  MoqLiteStream,
  MoqStreamReader,
  concatBytes,
  decodeMoqAnnouncePlease,
  decodeMoqSubscribe,
  encodeMoqAnnounce,
  encodeMoqAnnounceInit,
  encodeMoqClientSetup,
  decodeMoqServerSetup,
  MoqLiteVersion,
  frameMoqtMessage,
  encodeMoqStreamStart,
  encodeMoqGroup,
  encodeMoqSubscribeOk,
  encodeVarint,
  frameMoqMessage,
} from '../../src/wire/index.js';
import { until } from '../support/wait.js';

const TOKEN = 'pub';
const CATALOG = {
  video: {
    renditions: {
      'video/hd': { codec: 'avc1.42c01e', codedWidth: 320, codedHeight: 180, container: { kind: 'legacy' } },
    },
  },
  audio: {
    renditions: {
      'audio/data': { codec: 'opus', sampleRate: 48000, numberOfChannels: 2, container: { kind: 'legacy' } },
    },
  },
};

const SPS = Uint8Array.of(0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x01, 0x40);
const PPS = Uint8Array.of(0x68, 0xce, 0x3c, 0x80);
const IDR = Uint8Array.of(0x65, 0x88, 0x84, 0x00, 0x33);
const P = Uint8Array.of(0x41, 0x9a, 0x02);
const annexB = (...units: Uint8Array[]) => concatBytes(units.flatMap((u) => [Uint8Array.of(0, 0, 0, 1), u]));
const legacy = (timestampUs: number, data: Uint8Array) => concatBytes([encodeVarint(timestampUs), data]);

async function ingestOver(t: TestContext, o: Partial<MoqPublishOptions> = {}) {
  const ingest = new MoqPublishIngest({ name: 'camera', token: TOKEN, ...o });
  const log: string[] = [];
  const moq = new MoqServer({ publish: ingest, log: (l) => log.push(l) });
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
  const events: string[] = [];
  const published: MoqPublisher[] = [];
  ingest.on('publish', (p) => {
    published.push(p);
    events.push(`publish ${p.remote}`);
  });
  ingest.on('unpublish', (p, reason) => events.push(`unpublish ${p.remote}: ${reason}`));
  ingest.on('refused', (remote, reason) => events.push(`refused ${remote}: ${reason}`));
  ingest.on('tracks', (_p, d) => events.push(`tracks ${d}`));
  const connect = async (token = TOKEN, protocols = ['moq-lite-03']) => {
    const session = await connectWebSocketSession(`${base}${MOQ_PATH}?token=${token}`, { protocols });
    clients.push(session);
    return session;
  };
  return { ingest, moq, connect, events, published, log };
}

/** A moq-lite-03 publisher of `broadcast`: answers the announce interest and the subscriptions. */
class FakePublisher {
  readonly subscriptions = new Map<string, number>();
  constructor(
    readonly session: Session,
    broadcast = 'camera',
    announce = true,
    readonly draft: 2 | 3 = 3,
  ) {
    session.on('stream', (stream) => void this.serve(stream, broadcast, announce).catch(() => undefined));
  }

  private async serve(stream: SessionStream, broadcast: string, announce: boolean): Promise<void> {
    const r = new MoqStreamReader();
    let type: number | undefined;
    for await (const chunk of stream) {
      r.push(chunk);
      type ??= r.varint();
      const m = type === undefined ? undefined : r.message();
      if (!m) continue;
      if (type === MoqLiteStream.ANNOUNCE) {
        assert.equal(decodeMoqAnnouncePlease(m).prefix, '');
        if (announce)
          await stream.write(
            frameMoqMessage(
              this.draft === 3
                ? encodeMoqAnnounce({ active: true, suffix: broadcast }, 3)
                : encodeMoqAnnounceInit([broadcast]),
            ),
          );
      } else if (type === MoqLiteStream.SUBSCRIBE) {
        const s = decodeMoqSubscribe(m, this.draft);
        assert.equal(s.broadcast, broadcast);
        this.subscriptions.set(s.track, s.id);
        await stream.write(
          this.draft === 3
            ? concatBytes([
                encodeVarint(0),
                frameMoqMessage(encodeMoqSubscribeOk(3, { priority: s.priority, ordered: false, maxLatency: 0 })),
              ])
            : frameMoqMessage(encodeMoqSubscribeOk()),
        );
      }
    }
  }

  /** A group of `track` (subscribed to), its frames as they are. */
  async group(track: string, sequence: number, frames: Uint8Array[]): Promise<void> {
    const id = this.subscriptions.get(track);
    assert.ok(id !== undefined, `${track} subscribed`);
    const stream = this.session.openStream({ bidirectional: false });
    await stream.end(
      concatBytes([
        encodeVarint(0),
        frameMoqMessage(encodeMoqGroup({ subscribe: id, sequence })),
        ...frames.flatMap((f) => [encodeVarint(f.length), f]),
      ]),
    );
  }
}

function collect(p: MoqPublisher): { bytes: () => Uint8Array } {
  const chunks: Uint8Array[] = [];
  p.mkv.on('data', (c: Uint8Array) => chunks.push(c));
  return { bytes: () => concatBytes(chunks) };
}

const indexOf = (hay: Uint8Array, needle: Uint8Array | string): number =>
  Buffer.from(hay).indexOf(typeof needle === 'string' ? Buffer.from(needle) : Buffer.from(needle));

test('a publisher: its announce, the catalog, then its renditions subscribed; the frames as Matroska (H.264 as AVC, Opus)', async (t) => {
  const { connect, events, published } = await ingestOver(t);
  const pub = new FakePublisher(await connect());
  await until('the catalog subscribed', () => pub.subscriptions.has('catalog.json'));
  assert.deepEqual(events, ['publish publisher 1 (websocket)']);
  const out = collect(published[0]!);
  await pub.group('catalog.json', 0, [new TextEncoder().encode(JSON.stringify(CATALOG))]);
  await until(
    'the renditions subscribed',
    () => pub.subscriptions.has('video/hd') && pub.subscriptions.has('audio/data'),
  );
  assert.match(events.at(-1)!, /^tracks video video\/hd avc1.42c01e 320x180, audio audio\/data opus 48000 Hz 2 ch$/);

  // Audio before the first key frame is dropped: the stream starts at the key frame.
  await pub.group('audio/data', 0, [legacy(900_000, Uint8Array.of(0xfc, 1, 2))]);
  await pub.group('video/hd', 0, [legacy(1_000_000, annexB(SPS, PPS, IDR)), legacy(1_040_000, annexB(P))]);
  await pub.group('audio/data', 1, [legacy(1_020_000, Uint8Array.of(0xfc, 3, 4))]);
  const mkv = await until('the blocks', () => {
    const b = out.bytes();
    return indexOf(b, Uint8Array.of(0xfc, 3, 4)) > 0 && b;
  });
  assert.deepEqual([...mkv.subarray(0, 4)], [0x1a, 0x45, 0xdf, 0xa3], 'EBML');
  assert.ok(indexOf(mkv, 'V_MPEG4/ISO/AVC') > 0 && indexOf(mkv, 'A_OPUS') > 0 && indexOf(mkv, 'OpusHead') > 0);
  assert.ok(indexOf(mkv, avcConfigFromAnnexB(annexB(SPS, PPS, IDR))!) > 0, 'the avcC of the first key frame');
  assert.ok(indexOf(mkv, annexBToAvcc(annexB(SPS, PPS, IDR))) > 0, 'the key frame, length-prefixed');
  assert.equal(indexOf(mkv, Uint8Array.of(0xfc, 1, 2)), -1, 'audio before the key frame dropped');
  // The key frame's block: track 1, at 0 ms of its cluster, flagged key; the audio's 20 ms after it.
  const key = indexOf(mkv, annexBToAvcc(annexB(SPS, PPS, IDR)));
  assert.deepEqual([...mkv.subarray(key - 4, key)], [0x81, 0, 0, 0x80]);
  const opus = indexOf(mkv, Uint8Array.of(0xfc, 3, 4));
  assert.deepEqual([...mkv.subarray(opus - 4, opus)], [0x82, 0, 20, 0x80]);
  assert.deepEqual(decodeLegacyFrame(legacy(1_040_000, P)), { timestampUs: 1_040_000, data: P });
});

test('refusals: a wrong token (403), a second publisher while one publishes, more waiting to announce than allowed, no announce in time', async (t) => {
  const { connect, events, log } = await ingestOver(t, { maxPending: 1, announceTimeoutMs: 300 });
  await assert.rejects(connect('nope'), (e: unknown) => e instanceof SessionRefusedError && e.status === 403);
  assert.match(log.join('\n'), /moq: session refused \(403\)/);

  const first = new FakePublisher(await connect());
  await until('the first publishes', () => first.subscriptions.has('catalog.json'));
  const second = await connect();
  new FakePublisher(second);
  await second.closed;
  assert.match(events.join('\n'), /refused publisher 2 \(websocket\): broadcast camera already has a publisher/);

  // One waiting (it never announces), so the next is refused at once; the waiting one at its timeout.
  const silent = await connect();
  new FakePublisher(silent, 'camera', false);
  const third = await connect();
  await third.closed;
  assert.match(events.join('\n'), /refused publisher 4 \(websocket\): more than 1 publishers waiting to announce/);
  await silent.closed;
  assert.match(events.join('\n'), /refused publisher 3 \(websocket\): no announce of the broadcast in time/);

  // Another broadcast's announce does not make a publisher of it either.
  const other = await connect();
  new FakePublisher(other, 'elsewhere');
  await other.closed;
  assert.match(events.join('\n'), /refused publisher 5 \(websocket\): no announce of the broadcast in time/);
});

test('bounds once publishing: a frame too large, silence, Matroska the encoder does not read', async (t) => {
  const { connect, events, published } = await ingestOver(t, {
    maxFrameBytes: 2000,
    idleTimeoutMs: 400,
    maxBufferedBytes: 4000,
  });
  const catalog = new TextEncoder().encode(JSON.stringify(CATALOG));
  const key = legacy(1_000_000, annexB(SPS, PPS, IDR));

  const big = new FakePublisher(await connect());
  await until('subscribed', () => big.subscriptions.has('catalog.json'));
  await big.group('catalog.json', 0, [catalog]);
  await until('video subscribed', () => big.subscriptions.has('video/hd'));
  await big.group('video/hd', 0, [legacy(1_000_000, new Uint8Array(3000))]);
  await until('cut off', () => events.some((e) => /unpublish publisher 1 .*malformed group: .*at most 2000/.test(e)));

  const silent = new FakePublisher(await connect());
  await until('subscribed', () => silent.subscriptions.has('catalog.json'));
  await until('cut off when silent', () => events.some((e) => /unpublish publisher 2 .*no media in time/.test(e)));

  // Nobody reads the Matroska: past 4000 bytes waiting, the publisher is cut off.
  const flood = new FakePublisher(await connect());
  await until('subscribed', () => flood.subscriptions.has('catalog.json'));
  await flood.group('catalog.json', 0, [catalog]);
  await until('video subscribed', () => flood.subscriptions.has('video/hd'));
  await flood.group('video/hd', 0, [
    key,
    ...Array.from({ length: 4 }, (_, i) => legacy(1_040_000 + i, new Uint8Array(1500))),
  ]);
  await until('cut off unread', () => events.some((e) => /unpublish publisher 3 .*the encoder is not reading/.test(e)));
  assert.equal(published.length, 3);
  assert.ok(
    published.every((p) => (p.mkv as PassThrough).writableEnded),
    'each Matroska stream ended',
  );
});

test('moq-lite-02 (no protocol named, as on the WebSocket fallback of @moq/net): the compatibility SETUP, then ANNOUNCE_INIT', async (t) => {
  const { connect, events, published } = await ingestOver(t);
  const session = await connect(TOKEN, []);
  const pub = new FakePublisher(session, 'camera', true, 2);
  const setup = session.openStream({ bidirectional: true });
  await setup.write(
    encodeMoqStreamStart(
      MoqLiteStream.CLIENT_COMPAT,
      frameMoqtMessage(encodeMoqClientSetup({ versions: [MoqLiteVersion.LITE_02], parameters: new Map() })),
    ),
  );
  const r = new MoqStreamReader();
  const chunks = setup[Symbol.asyncIterator]();
  let type: number | undefined;
  let answer: Uint8Array | undefined;
  while (answer === undefined) {
    const { value, done } = await chunks.next();
    assert.ok(!done, 'SERVER_SETUP');
    r.push(value);
    type ??= r.varint();
    if (type !== undefined) answer = r.message('u16');
  }
  assert.equal(type, MoqLiteStream.SERVER_COMPAT);
  assert.equal(decodeMoqServerSetup(answer).version, MoqLiteVersion.LITE_02);
  await until('the catalog subscribed', () => pub.subscriptions.has('catalog.json'));
  const out = collect(published[0]!);
  await pub.group('catalog.json', 0, [new TextEncoder().encode(JSON.stringify(CATALOG))]);
  await until('video subscribed', () => pub.subscriptions.has('video/hd'));
  await pub.group('video/hd', 0, [legacy(5_000_000, annexB(SPS, PPS, IDR))]);
  await until('Matroska', () => indexOf(out.bytes(), 'V_MPEG4/ISO/AVC') > 0);
  assert.deepEqual(events.slice(0, 1), ['publish publisher 1 (websocket)']);
});

test('a catalog without audio: its rendition is awaited a while, then the video goes alone with Opus silence in place of audio', async (t) => {
  const { connect, events, published } = await ingestOver(t, { audioWaitMs: 200 });
  const pub = new FakePublisher(await connect());
  await until('the catalog subscribed', () => pub.subscriptions.has('catalog.json'));
  const out = collect(published[0]!);
  await pub.group('catalog.json', 0, [new TextEncoder().encode(JSON.stringify({ video: CATALOG.video }))]);
  await until('no audio, after the wait', () =>
    events.some((e) => /^tracks .*no audio \(silence in its place\)$/.test(e)),
  );
  await pub.group('video/hd', 0, [legacy(1_000_000, annexB(SPS, PPS, IDR)), legacy(1_040_000, annexB(P))]);
  const mkv = await until('the blocks', () => {
    const b = out.bytes();
    return indexOf(b, annexBToAvcc(annexB(P))) > 0 && b;
  });
  assert.ok(indexOf(mkv, 'A_OPUS') > 0, 'an audio track all the same');
  // Silence at 0, 20 and 40 ms: up to the last video frame.
  const silence = [
    ...Buffer.from(mkv)
      .toString('hex')
      .matchAll(/82(00(00|14|28))80fcfffe/g),
  ].map((m) => m[1]);
  assert.deepEqual(silence, ['0000', '0014', '0028']);
});
