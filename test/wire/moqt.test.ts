/**
 * draft-ietf-moq-transport-16 (src/wire/moq/moqt-*.ts, docs/moq.md): every message pushcast reads or writes,
 * byte for byte against the pinned `@moq/net` 0.3.4's own IETF codecs (encoded by ours and decoded by
 * theirs, and the other way), the subgroup stream and its objects, and the bounds.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import {
  MOQT_DRAFT_16,
  MoqStreamReader,
  MoqtMessage,
  decodeMoqtNamespaceSuffix,
  decodeMoqtPublishDone,
  decodeMoqtRequestError,
  decodeMoqtRequestId,
  decodeMoqtRequestOk,
  decodeMoqtSetup,
  decodeMoqtSubgroupHeader,
  decodeMoqtSubgroupStream,
  decodeMoqtSubscribe,
  decodeMoqtSubscribeNamespace,
  decodeMoqtSubscribeOk,
  encodeMoqtFilter,
  encodeMoqtNamespaceSuffix,
  encodeMoqtObjectHeader,
  encodeMoqtPublishDone,
  encodeMoqtRequestError,
  encodeMoqtRequestId,
  encodeMoqtRequestOk,
  encodeMoqtSetup,
  encodeMoqtSubgroupHeader,
  encodeMoqtSubscribe,
  encodeMoqtSubscribeNamespace,
  encodeMoqtSubscribeOk,
  decodeMoqtFilter,
  frameMoqtControl,
  frameMoqtMessage,
} from '../../src/wire/index.js';
import { concat, hex, throwsWire } from './support.js';

const NET = new URL('../../../node_modules/@moq/net/', import.meta.url);
// biome-ignore lint/suspicious/noExplicitAny: the reference library's untyped internals
type Any = any;
const lib = async (path: string): Promise<Any> => import(new URL(path, NET).href);
const [stream, setup, params, subscribe, request, publish, ns, object] = await Promise.all([
  lib('stream.js'),
  lib('ietf/setup.js'),
  lib('ietf/parameters.js'),
  lib('ietf/subscribe.js'),
  lib('ietf/request.js'),
  lib('ietf/publish.js'),
  lib('ietf/subscribe_namespace.js'),
  lib('ietf/object.js'),
]);
const D16 = MOQT_DRAFT_16;

async function theirs(write: (w: Any) => Promise<void>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const w = new stream.Writer(new WritableStream<Uint8Array>({ write: (c) => void parts.push(c.slice()) }), D16);
  await write(w);
  w.close();
  await w.closed;
  return concat(...parts);
}
const read = (bytes: Uint8Array, f: (r: Any) => Promise<Any>): Promise<Any> =>
  f(new stream.Reader(undefined, bytes.slice(), D16));
/** A payload with its 16-bit length, as `@moq/net`'s message encoders write it. */
const framed = frameMoqtMessage;

test('CLIENT_SETUP and SERVER_SETUP: draft-16 parameters, delta-encoded in ascending order, as @moq/net writes them', async () => {
  const p = new params.SetupOptions();
  p.setVarint(0x2n, 42069n);
  p.setBytes(0x7n, new TextEncoder().encode('moq-lite-js'));
  p.setVarint(0x40b5an, 1n);
  const client = await theirs((w) => new setup.ClientSetup({ versions: [D16], parameters: p }).encode(w, D16));
  const decoded = decodeMoqtSetup(client.subarray(2));
  assert.equal(decoded.get(0x2n), 42069n);
  assert.equal(new TextDecoder().decode(decoded.get(0x7n) as Uint8Array), 'moq-lite-js');
  assert.equal(decoded.get(0x40b5an), 1n);
  assert.equal(hex(framed(encodeMoqtSetup(decoded))), hex(client));
  const server = framed(
    encodeMoqtSetup(
      new Map<bigint, bigint | Uint8Array>([
        [0x7n, new TextEncoder().encode('pushcast')],
        [0x2n, 256n],
      ]),
    ),
  );
  const s = await read(server, (r) => setup.ServerSetup.decode(r, D16));
  assert.equal(s.parameters.getVarint(0x2n), 256n);
  assert.equal(new TextDecoder().decode(s.parameters.getBytes(0x7n)), 'pushcast');
  // A type repeated (delta 0) and a value of the wrong kind are refused.
  throwsWire(() => decodeMoqtSetup(Uint8Array.of(2, 2, 1, 0, 1)), 'frame-encoding');
  throwsWire(() => encodeMoqtSetup(new Map([[2n, new Uint8Array(1)]])), 'invalid-argument');
});

test('SUBSCRIBE: namespace tuple, track and the delivery parameters, as @moq/net writes and reads them', async () => {
  const m = {
    requestId: 2n,
    trackNamespace: 'live',
    trackName: 'video',
    subscriberPriority: 195,
    filter: { kind: 'nextObject' },
  };
  const their = await theirs((w) => new subscribe.Subscribe(m).encode(w, D16));
  const ours = framed(
    encodeMoqtSubscribe({
      requestId: 2,
      namespace: ['live'],
      track: 'video',
      priority: 195,
      groupOrder: 2,
      forward: true,
      filter: { kind: 'largest-object' },
    }),
  );
  assert.equal(hex(ours), hex(their));
  const d = decodeMoqtSubscribe(their.subarray(2));
  assert.deepEqual(
    [d.requestId, d.namespace, d.track, d.priority, d.groupOrder, d.forward, d.filter],
    [2, ['live'], 'video', 195, 2, true, { kind: 'largest-object' }],
  );
  for (const filter of [
    { kind: 'next-group' as const },
    { kind: 'absolute-start' as const, group: 300, object: 0 },
    { kind: 'absolute-range' as const, group: 300, object: 2, endGroup: 310 },
  ]) {
    const back = await read(
      framed(encodeMoqtSubscribe({ requestId: 4, namespace: ['a', 'b'], track: 't', filter })),
      (r) => subscribe.Subscribe.decode(r, D16),
    );
    assert.equal(back.trackNamespace, 'a/b');
    const f = back.filter;
    assert.deepEqual(decodeMoqtFilter(encodeMoqtFilter(filter)), filter);
    assert.equal(
      f.kind,
      { 'next-group': 'relative', 'absolute-start': 'absolute', 'absolute-range': 'absolute' }[filter.kind],
    );
    if (filter.kind === 'absolute-range') assert.equal(f.endGroup, 310n);
  }
  throwsWire(() => decodeMoqtFilter(Uint8Array.of(9)), 'frame-encoding');
  throwsWire(() => encodeMoqtSubscribe({ requestId: 0, namespace: [], track: 't', priority: 256 }), 'invalid-argument');
});

test('SUBSCRIBE_OK, REQUEST_OK, REQUEST_ERROR, PUBLISH_DONE and the request-ID messages, as @moq/net writes and reads them', async () => {
  const ok = framed(encodeMoqtSubscribeOk({ requestId: 2, trackAlias: 7 }));
  assert.equal(
    hex(ok),
    hex(await theirs((w) => new subscribe.SubscribeOk({ requestId: 2n, trackAlias: 7n }).encode(w, D16))),
  );
  const withLargest = framed(
    encodeMoqtSubscribeOk({ requestId: 2, trackAlias: 7, largest: { group: 1234, object: 5 } }),
  );
  const back = await read(withLargest, (r) => subscribe.SubscribeOk.decode(r, D16));
  assert.deepEqual([back.trackAlias, back.largest], [7n, { groupId: 1234n, objectId: 5n }]);
  assert.deepEqual(decodeMoqtSubscribeOk(withLargest.subarray(2)), {
    requestId: 2,
    trackAlias: 7,
    largest: { group: 1234, object: 5 },
  });

  const rok = framed(encodeMoqtRequestOk({ requestId: 1 }));
  assert.equal(hex(rok), hex(await theirs((w) => new request.RequestOk({ requestId: 1n }).encode(w, D16))));
  assert.equal(decodeMoqtRequestOk(rok.subarray(2)).requestId, 1);

  const err = { requestId: 4, code: 4, retryInterval: 0, reason: 'no track x' };
  const rerr = framed(encodeMoqtRequestError(err));
  assert.equal(
    hex(rerr),
    hex(
      await theirs((w) =>
        new request.RequestError({ requestId: 4n, errorCode: 4, reasonPhrase: 'no track x' }).encode(w, D16),
      ),
    ),
  );
  assert.deepEqual(decodeMoqtRequestError(rerr.subarray(2)), err);

  const done = { requestId: 2, status: 2, streamCount: 0, reason: 'track ended' };
  const pd = framed(encodeMoqtPublishDone(done));
  assert.equal(
    hex(pd),
    hex(
      await theirs((w) =>
        new publish.PublishDone({ requestId: 2n, statusCode: 2, reasonPhrase: 'track ended' }).encode(w, D16),
      ),
    ),
  );
  assert.deepEqual(decodeMoqtPublishDone(pd.subarray(2)), done);

  const max = framed(encodeMoqtRequestId(300));
  assert.equal(hex(max), hex(await theirs((w) => new request.MaxRequestId({ requestId: 300n }).encode(w, D16))));
  const unsub = await theirs((w) => new subscribe.Unsubscribe({ requestId: 6n }).encode(w, D16));
  assert.equal(decodeMoqtRequestId(unsub.subarray(2)), 6);
  // A control message on the stream: its type, then the 16-bit length.
  const r = new MoqStreamReader();
  r.push(frameMoqtControl(MoqtMessage.MAX_REQUEST_ID, encodeMoqtRequestId(300)));
  assert.equal(r.varint(), 0x15);
  assert.equal(decodeMoqtRequestId(r.message('u16')!), 300);
});

test('SUBSCRIBE_NAMESPACE, NAMESPACE and NAMESPACE_DONE, as @moq/net writes and reads them', async () => {
  const their = await theirs((w) => new ns.SubscribeNamespaceLegacy({ namespace: '', requestId: 0n }).encode(w, D16));
  assert.deepEqual(decodeMoqtSubscribeNamespace(their.subarray(2)), {
    requestId: 0,
    prefix: [],
    options: 1,
    parameters: new Map(),
  });
  assert.equal(hex(framed(encodeMoqtSubscribeNamespace({ requestId: 0, prefix: [], options: 1 }))), hex(their));
  const entry = framed(encodeMoqtNamespaceSuffix(['live']));
  assert.equal(hex(entry), hex(await theirs((w) => new ns.SubscribeNamespaceEntry({ suffix: 'live' }).encode(w, D16))));
  assert.equal((await read(entry, (r) => ns.SubscribeNamespaceEntryDone.decode(r, D16))).suffix, 'live');
  assert.deepEqual(decodeMoqtNamespaceSuffix(entry.subarray(2)), ['live']);
  throwsWire(() => decodeMoqtNamespaceSuffix(Uint8Array.of(33)), 'frame-encoding');
});

test('a subgroup stream: the header and objects as @moq/net reads them, and its own header read here', async () => {
  const header = encodeMoqtSubgroupHeader({ trackAlias: 7, group: 1234, priority: 60 });
  assert.equal(header[0], 0x10);
  const chunks = [new Uint8Array(300).fill(1), new Uint8Array(20).fill(2)];
  const bytes = concat(header, ...chunks.flatMap((c) => [encodeMoqtObjectHeader(0, c.length), c]));
  const r = new stream.Reader(undefined, bytes.slice(), D16);
  const g = await object.Group.decode(r, D16);
  assert.deepEqual([g.trackAlias, g.groupId, g.subGroupId, g.publisherPriority], [7n, 1234, 0, 60]);
  for (const c of chunks) assert.equal(hex((await object.Frame.decode(r, g.flags, undefined, D16)).payload), hex(c));
  assert.equal(await r.done(), true);
  const ours = decodeMoqtSubgroupStream(bytes);
  assert.deepEqual(ours.header, { trackAlias: 7, group: 1234, priority: 60 });
  assert.deepEqual(
    ours.objects.map((o) => [o.id, hex(o.payload)]),
    chunks.map((c, i) => [i, hex(c)]),
  );
  // Theirs, with an explicit subgroup and no priority (0x34), and the end-of-group bit (0x18).
  for (const flags of [
    { hasExtensions: false, hasSubgroupObject: false, hasSubgroup: true, hasEnd: false, hasPriority: false },
    { hasExtensions: false, hasSubgroupObject: false, hasSubgroup: false, hasEnd: true, hasPriority: true },
  ]) {
    const h = await theirs((w) =>
      new object.Group({
        trackAlias: 3n,
        groupId: 9,
        subGroupId: flags.hasSubgroup ? 2 : 0,
        publisherPriority: 5,
        flags,
      }).encode(w, D16),
    );
    const d = decodeMoqtSubgroupHeader(h);
    assert.equal(hex(encodeMoqtSubgroupHeader(d)), hex(h));
  }
  throwsWire(() => decodeMoqtSubgroupHeader(Uint8Array.of(0x16, 1, 1)), 'frame-encoding');
  throwsWire(() => decodeMoqtSubgroupStream(concat(header, Uint8Array.of(0, 5, 1))), 'truncated');
  throwsWire(() => decodeMoqtSubgroupStream(concat(header, Uint8Array.of(0, 0, 2))), 'frame-encoding');
  throwsWire(() => encodeMoqtObjectHeader(0, 0), 'invalid-argument');
});
