/**
 * moq-lite-02 and the compatibility SETUP (src/wire/moq, docs/moq.md): every message byte for byte
 * against the pinned `@moq/net` 0.3.4's own codecs (encoded by ours, decoded by theirs, and back), a
 * control stream read through every split, and the bounds.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import {
  MoqLiteStream,
  MoqLiteVersion,
  MoqSetupParameter,
  MoqStreamReader,
  MOQT_DRAFT_14,
  decodeMoqAnnounce,
  decodeMoqAnnounceInit,
  decodeMoqAnnouncePlease,
  decodeMoqClientSetup,
  decodeMoqGroup,
  decodeMoqServerSetup,
  decodeMoqSubscribe,
  decodeMoqSubscribeOk,
  decodeMoqSubscribeUpdate,
  encodeMoqAnnounce,
  encodeMoqAnnounceInit,
  encodeMoqAnnouncePlease,
  encodeMoqClientSetup,
  encodeMoqFrameHeader,
  encodeMoqGroup,
  encodeMoqGroupStreamStart,
  encodeMoqServerSetup,
  encodeMoqStreamStart,
  encodeMoqSubscribe,
  encodeMoqSubscribeOk,
  encodeMoqSubscribeUpdate,
  frameMoqMessage,
  frameMoqtMessage,
} from '../../src/wire/index.js';
import { concat, hex, throwsWire } from './support.js';

// The reference: @moq/net's own moq-lite and draft-14 codecs (not in its package exports, so by file).
const NET = new URL('../../../node_modules/@moq/net/', import.meta.url);
// biome-ignore lint/suspicious/noExplicitAny: the reference library's untyped internals
type Any = any;
const lib = async (path: string): Promise<Any> => import(new URL(path, NET).href);
const [stream, lite, announce, subscribe, group, setup, params] = await Promise.all([
  lib('stream.js'),
  lib('lite/version.js'),
  lib('lite/announce.js'),
  lib('lite/subscribe.js'),
  lib('lite/group.js'),
  lib('ietf/setup.js'),
  lib('ietf/parameters.js'),
]);
const V2 = lite.Version.DRAFT_02;
const V3 = lite.Version.DRAFT_03;

/** What the reference writes. */
async function theirs(write: (w: Any) => Promise<void>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const w = new stream.Writer(new WritableStream<Uint8Array>({ write: (c) => void parts.push(c.slice()) }));
  await write(w);
  w.close();
  await w.closed;
  return concat(...parts);
}
/** What the reference reads from `bytes`. */
const read = (bytes: Uint8Array, f: (r: Any) => Promise<Any>): Promise<Any> =>
  f(new stream.Reader(undefined, bytes.slice()));

test('SUBSCRIBE and SUBSCRIBE_OK are moq-lite-02 as @moq/net writes them', async () => {
  const m = { id: 70_000, broadcast: 'live', track: 'video-360p', priority: 60 };
  const ours = frameMoqMessage(encodeMoqSubscribe(m));
  assert.equal(hex(ours), hex(await theirs((w) => new subscribe.Subscribe(m).encode(w, V2))));
  const back = await read(ours, (r) => subscribe.Subscribe.decode(r, V2));
  assert.deepEqual({ id: Number(back.id), broadcast: back.broadcast, track: back.track, priority: back.priority }, m);
  assert.deepEqual(decodeMoqSubscribe(ours.subarray(1)), m);
  assert.equal(hex(frameMoqMessage(encodeMoqSubscribeOk())), '00');
  assert.equal(
    hex(await theirs((w) => subscribe.encodeSubscribeResponse(w, { ok: new subscribe.SubscribeOk({}) }, V2))),
    '00',
  );
  assert.deepEqual(decodeMoqSubscribeOk(new Uint8Array(0)), {});
  throwsWire(() => decodeMoqSubscribeOk(Uint8Array.of(1)), 'frame-encoding');
  throwsWire(() => encodeMoqSubscribe({ ...m, priority: 256 }), 'invalid-argument');
});

test('ANNOUNCE_PLEASE, ANNOUNCE_INIT and ANNOUNCE are moq-lite-02 as @moq/net writes them', async () => {
  const please = frameMoqMessage(encodeMoqAnnouncePlease(''));
  assert.equal(hex(please), hex(await theirs((w) => new announce.AnnounceRequest('').encode(w, V2))));
  assert.deepEqual(decodeMoqAnnouncePlease(please.subarray(1)), { prefix: '' });
  const init = frameMoqMessage(encodeMoqAnnounceInit(['live', 'a/b']));
  assert.equal(hex(init), hex(await theirs((w) => new announce.AnnounceInit(['live', 'a/b']).encode(w, V2))));
  assert.deepEqual((await read(init, (r) => announce.AnnounceInit.decode(r, V2))).suffixes, ['live', 'a/b']);
  assert.deepEqual(decodeMoqAnnounceInit(init.subarray(1)), ['live', 'a/b']);
  for (const active of [true, false]) {
    const ours = frameMoqMessage(encodeMoqAnnounce({ active, suffix: 'live' }));
    const msg = active ? { status: 'active', suffix: 'live', hops: [] } : { status: 'ended', suffix: 'live' };
    assert.equal(hex(ours), hex(await theirs((w) => announce.encodeAnnounceBroadcast(w, msg, V2))));
    assert.equal((await read(ours, (r) => announce.decodeAnnounceBroadcast(r, V2))).status, msg.status);
    assert.deepEqual(decodeMoqAnnounce(ours.subarray(1)), { active, suffix: 'live' });
  }
  throwsWire(() => decodeMoqAnnounce(concat(Uint8Array.of(2), encodeMoqAnnouncePlease('x'))), 'frame-encoding');
});

test('a group stream starts as @moq/net reads it: type 0, GROUP, then size-prefixed frames', async () => {
  const start = encodeMoqGroupStreamStart({ subscribe: 3, sequence: 1234 });
  assert.equal(hex(start.subarray(1)), hex(await theirs((w) => new group.Group(3, 1234).encode(w))));
  assert.equal(start[0], 0);
  const g = await read(start.subarray(1), (r) => group.Group.decode(r));
  assert.deepEqual([Number(g.subscribe), g.sequence], [3, 1234]);
  assert.deepEqual(decodeMoqGroup(encodeMoqGroup({ subscribe: 3, sequence: 1234 })), { subscribe: 3, sequence: 1234 });
  const payload = new Uint8Array(300).fill(7);
  const frame = concat(encodeMoqFrameHeader(payload.length), payload);
  assert.equal(hex(frame), hex(await theirs((w) => new group.Frame(payload).encode(w))));
});

test('the compatibility SETUP is draft-14 as @moq/net writes it: CLIENT_SETUP read, SERVER_SETUP choosing moq-lite-02', async () => {
  const D14 = MOQT_DRAFT_14;
  const p = new params.SetupOptions();
  p.setVarint(MoqSetupParameter.MAX_REQUEST_ID, 42069n);
  p.setBytes(MoqSetupParameter.IMPLEMENTATION, new TextEncoder().encode('moq-lite-js'));
  const versions = [MoqLiteVersion.LITE_02, MoqLiteVersion.LITE_01, D14];
  const client = await theirs((w) => new setup.ClientSetup({ versions, parameters: p }).encode(w, D14));
  const reader = new MoqStreamReader();
  reader.push(concat(Uint8Array.of(MoqLiteStream.CLIENT_COMPAT), client));
  assert.equal(reader.varint(), MoqLiteStream.CLIENT_COMPAT);
  const decoded = decodeMoqClientSetup(reader.message('u16')!);
  assert.deepEqual(decoded.versions, versions);
  assert.equal(decoded.parameters.get(MoqSetupParameter.MAX_REQUEST_ID), 42069n);
  assert.equal(hex(frameMoqtMessage(encodeMoqClientSetup(decoded))), hex(client));
  const server = frameMoqtMessage(encodeMoqServerSetup({ version: MoqLiteVersion.LITE_02, parameters: new Map() }));
  const s = await read(server, (r) => setup.ServerSetup.decode(r, D14));
  assert.equal(s.version, MoqLiteVersion.LITE_02);
  assert.deepEqual(decodeMoqServerSetup(server.subarray(2)), {
    version: MoqLiteVersion.LITE_02,
    parameters: new Map(),
  });
  throwsWire(
    () => encodeMoqServerSetup({ version: 1, parameters: new Map([[2n, new Uint8Array(1)]]) }),
    'invalid-argument',
  );
  // No versions, two parameters of type 2.
  throwsWire(() => decodeMoqClientSetup(Uint8Array.of(0, 2, 2, 1, 2, 1)), 'frame-encoding');
});

test('MoqStreamReader: a stream read through every split gives the same messages; sizes and strings are bounded', () => {
  const bytes = encodeMoqStreamStart(
    MoqLiteStream.SUBSCRIBE,
    frameMoqMessage(encodeMoqSubscribe({ id: 1, broadcast: 'live', track: 'catalog.json', priority: 100 })),
    frameMoqMessage(encodeMoqSubscribeOk()),
  );
  for (let cut = 0; cut <= bytes.length; cut++) {
    const r = new MoqStreamReader();
    const got: unknown[] = [];
    const drain = () => {
      if (got.length === 0) {
        const t = r.varint();
        if (t === undefined) return;
        got.push(t);
      }
      for (let m = r.message(); m !== undefined; m = r.message()) got.push(m.length);
    };
    r.push(bytes.subarray(0, cut));
    drain();
    r.push(bytes.subarray(cut));
    drain();
    assert.deepEqual(got, [MoqLiteStream.SUBSCRIBE, bytes.length - 3, 0], `split at ${cut}`);
  }
  const big = new MoqStreamReader({ maxMessage: 100 });
  big.push(frameMoqMessage(new Uint8Array(101)));
  throwsWire(() => big.message(), 'frame-too-large');
  throwsWire(() => encodeMoqAnnouncePlease('x'.repeat(1025)), 'invalid-argument');
  const long = concat(Uint8Array.of(0x44, 0x01), new Uint8Array(1025));
  throwsWire(() => decodeMoqAnnouncePlease(long), 'frame-encoding');
  throwsWire(() => decodeMoqAnnouncePlease(Uint8Array.of(2, 0xff, 0xfe)), 'frame-encoding');
});

test('moq-lite-03: SUBSCRIBE with the delivery asked, the typed SUBSCRIBE_OK, SUBSCRIBE_UPDATE and ANNOUNCE with hops, as @moq/net writes them', async () => {
  const m = { id: 9, broadcast: 'live', track: 'video', priority: 60, ordered: true, maxLatency: 2000, startGroup: 0 };
  const ours = frameMoqMessage(encodeMoqSubscribe(m, 3));
  assert.equal(hex(ours), hex(await theirs((w) => new subscribe.Subscribe(m).encode(w, V3))));
  const back = await read(ours, (r) => subscribe.Subscribe.decode(r, V3));
  assert.deepEqual([back.ordered, back.maxLatency, back.startGroup, back.endGroup], [true, 2000, 0, undefined]);
  assert.deepEqual(decodeMoqSubscribe(ours.subarray(1), 3), m);
  const granted = { priority: 60, ordered: false, maxLatency: 2000, startGroup: 7 };
  const ok = concat(Uint8Array.of(0), frameMoqMessage(encodeMoqSubscribeOk(3, granted)));
  assert.equal(
    hex(ok),
    hex(await theirs((w) => subscribe.encodeSubscribeResponse(w, { ok: new subscribe.SubscribeOk(granted) }, V3))),
  );
  const resp = await read(ok, (r) => subscribe.decodeSubscribeResponse(r, V3));
  assert.deepEqual([resp.ok.priority, resp.ok.maxLatency, resp.ok.startGroup], [60, 2000, 7]);
  assert.deepEqual(decodeMoqSubscribeOk(ok.subarray(2), 3), granted);
  const update = { priority: 10, ordered: false, maxLatency: 500 };
  const theirUpdate = await theirs((w) => new subscribe.SubscribeUpdate(update).encode(w, V3));
  assert.equal(hex(frameMoqMessage(encodeMoqSubscribeUpdate(update))), hex(theirUpdate));
  assert.deepEqual(decodeMoqSubscribeUpdate(theirUpdate.subarray(1)), update);
  const announce3 = frameMoqMessage(encodeMoqAnnounce({ active: true, suffix: 'live' }, 3));
  assert.equal(
    hex(announce3),
    hex(await theirs((w) => announce.encodeAnnounceBroadcast(w, { status: 'active', suffix: 'live', hops: [] }, V3))),
  );
  assert.deepEqual(decodeMoqAnnounce(announce3.subarray(1), 3), { active: true, suffix: 'live', hops: 0 });
  throwsWire(() => decodeMoqSubscribe(ours.subarray(1), 2), 'frame-encoding');
  throwsWire(() => decodeMoqAnnounce(concat(announce3.subarray(1, -1), Uint8Array.of(33)), 3), 'frame-encoding');
});
