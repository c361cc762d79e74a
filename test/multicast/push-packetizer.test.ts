/**
 * PushPacketizer → MulticastReassembler, in memory: the sender's datagrams read back by the receiving
 * side of the profile (src/push/reassembler.ts), plus the wire layout checked with the src/wire decoders.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import test from 'node:test';
import { PushPacketizer, SessionClosedError, type PushResource } from '../../src/multicast/index.js';
import { GOAWAY, MulticastReassembler, RESOURCE_PUSH, type ResourcePushEvent } from '../../src/push/index.js';
import {
  Http3FrameReader,
  MAX_MULTICAST_DATAGRAM,
  decodeFieldSection,
  decodeFrames,
  decodeShortHeaderPacket,
  type FieldLine,
  type Http3StreamEvent,
  type StreamFrame,
} from '../../src/wire/index.js';
import { Rng, fromHex } from '../wire/support.js';

const SESSION_ID = fromHex('5053434153540001');
const AUTHORITY = 'pushcast.example:8443';

function resources(): PushResource[] {
  const rng = new Rng(41);
  return [
    {
      path: '/live/video-360p/init.mp4',
      body: rng.bytes(1_234),
      responseHeaders: { 'content-type': 'video/mp4' },
      requestHeaders: { 'user-agent': 'pushcast-test' },
    },
    {
      path: '/live/video-360p/100.m4s',
      body: rng.bytes(250_000),
      responseHeaders: { 'content-type': 'video/mp4', 'cache-control': 'max-age=60' },
    },
    {
      path: '/live/audio/100.m4s',
      body: rng.bytes(16_384 * 3),
      responseHeaders: [{ name: 'content-type', value: 'audio/mp4' }],
    },
    { path: '/live/empty', body: new Uint8Array(0) },
    { path: '/live/video-360p/101.m4s?x=1', body: rng.bytes(3), status: 203 },
  ];
}

async function sendAll(packetizer: PushPacketizer, list: PushResource[]): Promise<Uint8Array[][]> {
  return Promise.all(list.map((r) => packetizer.push(r))); // called at once: serialised in call order
}

interface Got {
  request: Request;
  response: Response;
  body: Uint8Array;
}

async function receiveAll(
  datagrams: Uint8Array[],
  expected: number,
): Promise<{ got: Got[]; reassembler: MulticastReassembler }> {
  const reassembler = new MulticastReassembler({ sessionId: SESSION_ID, timeoutMs: 5_000 });
  const pending: Promise<Got>[] = [];
  reassembler.addEventListener(RESOURCE_PUSH, (e) => {
    const { request, response } = e as ResourcePushEvent;
    pending.push(response.then(async (r) => ({ request, response: r, body: new Uint8Array(await r.arrayBuffer()) })));
  });
  for (const d of datagrams) reassembler.enqueuePacket(d);
  assert.equal(pending.length, expected, 'one event per PUSH_PROMISE');
  return { got: await Promise.all(pending), reassembler };
}

const sha256 = (body: Uint8Array) => `sha256=${createHash('sha256').update(body).digest('base64')}`;

test('several pushes round-trip through MulticastReassembler byte-identical, digests verified', async () => {
  const list = resources();
  const packetizer = new PushPacketizer({ sessionId: SESSION_ID, authority: AUTHORITY });
  const batches = await sendAll(packetizer, list);
  const { got, reassembler } = await receiveAll(batches.flat(), list.length);
  for (const [i, r] of list.entries()) {
    const g = got[i];
    assert.equal(g!.request.url, `https://${AUTHORITY}${r.path}`);
    assert.equal(g!.request.method, 'GET');
    if (i === 0) assert.equal(g!.request.headers.get('user-agent'), 'pushcast-test');
    assert.equal(g!.response.status, r.status ?? 200);
    assert.equal(Buffer.compare(Buffer.from(g!.body), Buffer.from(r.body)), 0, `${r.path}: body`);
    assert.equal(g!.response.headers.get('digest'), sha256(r.body));
    assert.equal(g!.response.headers.get('content-length'), String(r.body.length));
  }
  assert.equal(got[1]!.response.headers.get('cache-control'), 'max-age=60');
  assert.equal(got[2]!.response.headers.get('content-type'), 'audio/mp4');
  assert.equal(got[3]!.response.headers.get('content-type'), 'application/octet-stream');
  const stats = reassembler.stats;
  assert.equal(stats.pushesCompleted, list.length);
  assert.equal(stats.dropped + stats.duplicates + stats.pushesFailed, 0);
  assert.equal(packetizer.stats.pushes, list.length);
  assert.equal(packetizer.stats.packets, batches.flat().length);
});

test('reordered and duplicated datagrams still reassemble', async () => {
  const list = resources();
  const datagrams = (
    await sendAll(new PushPacketizer({ sessionId: SESSION_ID, authority: AUTHORITY, packetNumberLength: 2 }), list)
  ).flat();
  const rng = new Rng(7);
  const order = datagrams.map((_, i) => i);
  for (let i = 0; i + 1 < order.length; i++) if (rng.bool(0.4)) [order[i], order[i + 1]] = [order[i + 1]!, order[i]!];
  const shuffled = order.map((i) => datagrams[i]!);
  shuffled.push(...datagrams.slice(10, 20));
  const { got } = await receiveAll(shuffled, list.length);
  // Events come in arrival order of the promises (a reordered promise is not held back).
  const byPath = new Map(got.map((g) => [new URL(g.request.url).pathname + new URL(g.request.url).search, g.body]));
  for (const r of list) assert.equal(Buffer.compare(Buffer.from(byPath.get(r.path)!), Buffer.from(r.body)), 0, r.path);
});

/** Decodes the whole session's STREAM frames (in order) and per-packet sizes. */
function decodeSession(datagrams: Uint8Array[], dcidLength: number) {
  let largest: number | undefined;
  const packetNumbers: number[] = [];
  const frames: StreamFrame[] = [];
  for (const d of datagrams) {
    const packet = decodeShortHeaderPacket(d, { dcidLength, largestPacketNumber: largest });
    largest = Math.max(largest ?? 0, packet.packetNumber);
    packetNumbers.push(packet.packetNumber);
    for (const f of decodeFrames(packet.payload)) {
      assert.equal(f.kind, 'stream');
      if (f.kind === 'stream') frames.push(f);
    }
  }
  return { packetNumbers, frames };
}

for (const { label, maxDatagramSize, packetNumberLength, sessionId } of [
  {
    label: 'default 1470, 1-byte packet numbers',
    maxDatagramSize: undefined,
    packetNumberLength: undefined,
    sessionId: SESSION_ID,
  },
  {
    label: '200-byte datagrams, 4-byte packet numbers, 20-byte session ID',
    maxDatagramSize: 200,
    packetNumberLength: 4 as const,
    sessionId: new Rng(3).bytes(20),
  },
]) {
  test(`wire layout (${label}): sizes within the limit and full, packet numbers, stream IDs and offsets`, async () => {
    const limit = maxDatagramSize ?? MAX_MULTICAST_DATAGRAM;
    const list = resources();
    const packetizer = new PushPacketizer({ sessionId, authority: AUTHORITY, maxDatagramSize, packetNumberLength });
    const batches = await sendAll(packetizer, list);
    const all = batches.flat();
    assert.ok(
      all.every((d) => d.length <= limit),
      'every datagram within the limit',
    );
    for (const batch of batches) {
      // Every datagram of a push but its last is full to within a STREAM frame header's worth.
      for (const d of batch.slice(0, -1)) assert.ok(d.length >= limit - 24, `${d.length} bytes of ${limit}`);
    }
    const full = all.filter((d) => d.length >= limit - 24).length;
    assert.ok(full / all.length > 0.9, `${full} of ${all.length} full`);
    assert.ok(
      all.every((d) => d[0] === 0x40 + (packetNumberLength ?? 1) - 1),
      'short header, fixed bit, packet number length',
    );
    assert.ok(
      all.every((d) => Buffer.from(d.subarray(1, 1 + sessionId.length)).equals(Buffer.from(sessionId))),
      'session ID as DCID',
    );

    const { packetNumbers, frames } = decodeSession(all, sessionId.length);
    assert.deepEqual(
      packetNumbers,
      all.map((_, i) => i),
      'packet numbers count up across the session',
    );
    // Per stream: contiguous offsets from 0, FIN on the last frame of push streams only.
    const next = new Map<number, number>();
    const fins = new Map<number, number>();
    const order: number[] = [];
    for (const f of frames) {
      assert.equal(f.offset, next.get(f.streamId) ?? 0, `stream ${f.streamId} contiguous`);
      if (!next.has(f.streamId)) order.push(f.streamId);
      next.set(f.streamId, f.offset + f.data.length);
      if (f.fin) fins.set(f.streamId, f.offset + f.data.length);
    }
    assert.deepEqual(order, [0, 3, 7, 11, 15, 19], 'stream 0 first, then push streams 3, 7, 11, …');
    assert.equal(fins.has(0), false, 'stream 0 stays open');
    for (const id of [3, 7, 11, 15, 19]) assert.equal(fins.get(id), next.get(id), `stream ${id} ends with FIN`);

    // Stream 0: the promises, in order, with their push IDs; each before its push stream's first frame.
    const reader = new Http3FrameReader();
    const promises: { pushId: number; fields: FieldLine[] }[] = [];
    for (const f of frames.filter((f) => f.streamId === 0)) reader.push(f.data);
    for (let e: Http3StreamEvent | undefined; (e = reader.next()) !== undefined; )
      if (e.kind === 'push-promise') promises.push({ pushId: e.pushId, fields: decodeFieldSection(e.fieldSection) });
    assert.deepEqual(
      promises.map((p) => p.pushId),
      [0, 1, 2, 3, 4],
    );
    assert.deepEqual(promises[0]!.fields.slice(0, 4), [
      { name: ':method', value: 'GET' },
      { name: ':scheme', value: 'https' },
      { name: ':authority', value: AUTHORITY },
      { name: ':path', value: list[0]!.path },
    ]);
    for (const [i, id] of [3, 7, 11, 15, 19].entries()) {
      const firstPush = frames.findIndex((f) => f.streamId === id);
      const promiseEnd = frames.findIndex(
        (f) => f.streamId === 0 && f.offset + f.data.length >= promiseBoundary(frames, i + 1),
      );
      assert.ok(promiseEnd >= 0 && promiseEnd < firstPush, `promise ${i} before stream ${id}`);
    }
  });
}

/** Stream-0 offset at which the n-th promise (1-based) ends. */
function promiseBoundary(frames: StreamFrame[], n: number): number {
  const bytes = Buffer.concat(frames.filter((f) => f.streamId === 0).map((f) => f.data));
  let at = 0;
  for (let k = 0; k < n; k++) {
    // type (1 byte: 0x05) + length varint + payload
    const lenByte = bytes[at + 1];
    const prefix = lenByte! >> 6;
    const lengthBytes = 1 << prefix;
    let length = lenByte! & 0x3f;
    for (let j = 1; j < lengthBytes; j++) length = length * 256 + bytes[at + 1 + j]!;
    at += 1 + lengthBytes + length;
  }
  return at;
}

test('nghq-style push stream numbering (7, 11, …) is an option', async () => {
  const packetizer = new PushPacketizer({ sessionId: SESSION_ID, authority: AUTHORITY, firstPushStreamId: 7 });
  const batches = await sendAll(packetizer, resources().slice(0, 2));
  const { frames } = decodeSession(batches.flat(), SESSION_ID.length);
  assert.deepEqual([...new Set(frames.map((f) => f.streamId))], [0, 7, 11]);
  assert.equal(packetizer.lastPush?.streamId, 11);
  assert.equal(packetizer.lastPush?.pushId, 1);
  const { got } = await receiveAll(batches.flat(), 2);
  assert.equal(got[1]!.body.length, 250_000);
  assert.throws(
    () => new PushPacketizer({ sessionId: SESSION_ID, authority: AUTHORITY, firstPushStreamId: 5 }),
    RangeError,
  );
});

test('goaway: a promise with :path goaway and connection: close on stream 0, then FIN; pushes after it reject', async () => {
  const packetizer = new PushPacketizer({ sessionId: SESSION_ID, authority: AUTHORITY });
  const first = await packetizer.push(resources()[0]!);
  const goaway = await packetizer.goaway();
  assert.equal(goaway.length, 1);
  const { packetNumbers, frames } = decodeSession([...first, ...goaway], SESSION_ID.length);
  assert.deepEqual(
    packetNumbers,
    [...first, ...goaway].map((_, i) => i),
  );
  const last = frames.filter((f) => f.streamId === 0);
  assert.equal(last[last.length - 1]!.fin, true, 'stream 0 ends with the goaway');
  assert.ok(
    frames.slice(-1)[0]!.streamId === 0 && !frames.some((f) => f.streamId === 7),
    'no push stream for the goaway',
  );
  const reader = new Http3FrameReader();
  for (const f of last) reader.push(f.data);
  const events: Http3StreamEvent[] = [];
  for (let e: Http3StreamEvent | undefined; (e = reader.next()) !== undefined; ) events.push(e);
  reader.end(); // stream 0 ends on a frame boundary
  assert.deepEqual(
    events.map((e) => e.kind),
    ['push-promise', 'push-promise', 'headers'],
  );
  const promise = events[1];
  assert.ok(promise!.kind === 'push-promise');
  assert.equal(promise!.pushId, 1);
  assert.deepEqual(decodeFieldSection(promise!.fieldSection), [
    { name: ':method', value: 'GET' },
    { name: ':scheme', value: 'https' },
    { name: ':path', value: 'goaway' },
    { name: 'connection', value: 'close' },
  ]);
  const headers = events[2];
  assert.ok(headers!.kind === 'headers');
  assert.deepEqual(decodeFieldSection(headers!.fieldSection), [
    { name: ':status', value: '200' },
    { name: 'connection', value: 'close' },
  ]);
  await assert.rejects(packetizer.push(resources()[1]!), SessionClosedError);
  await assert.rejects(packetizer.goaway(), SessionClosedError);
  // The reassembler ends the session on it: one goaway event, no ResourcePushEvent, nothing counted as malformed,
  // and the push promised before it still completes.
  const reassembler = new MulticastReassembler({ sessionId: SESSION_ID, timeoutMs: 5_000 });
  const pushes: ResourcePushEvent[] = [];
  let goaways = 0;
  reassembler.addEventListener(RESOURCE_PUSH, (e) => pushes.push(e as ResourcePushEvent));
  reassembler.addEventListener(GOAWAY, () => goaways++);
  for (const d of [...first, ...goaway, ...goaway]) reassembler.enqueuePacket(d);
  assert.equal(goaways, 1);
  assert.equal(reassembler.sessionEnded, true);
  assert.equal(pushes.length, 1);
  assert.equal((await pushes[0]!.response).status, 200);
  assert.equal(reassembler.stats.dropped, 0);
});

test('bad resources are refused before any state changes', async () => {
  const packetizer = new PushPacketizer({ sessionId: SESSION_ID, authority: AUTHORITY });
  await assert.rejects(packetizer.push({ path: 'relative', body: new Uint8Array(1) }), TypeError);
  await assert.rejects(
    packetizer.push({ path: '/x', body: new Uint8Array(1), requestHeaders: { ':path': '/y' } }),
    TypeError,
  );
  await assert.rejects(
    packetizer.push({ path: '/x', body: new Uint8Array(1), responseHeaders: { 'Content-Type': 'a/b' } }),
    TypeError,
  );
  await assert.rejects(packetizer.push({ path: '/x', body: new Uint8Array(1), status: 100 }), RangeError);
  const datagrams = await packetizer.push({ path: '/x', body: new Uint8Array(1) });
  assert.equal(decodeShortHeaderPacket(datagrams[0]!, { dcidLength: SESSION_ID.length }).packetNumber, 0);
  assert.equal(packetizer.lastPush?.pushId, 0);
  assert.throws(
    () => new PushPacketizer({ sessionId: SESSION_ID, authority: AUTHORITY, maxDatagramSize: 10 }),
    RangeError,
  );
  assert.throws(() => new PushPacketizer({ sessionId: new Uint8Array(21), authority: AUTHORITY }), RangeError);
});

test('a lost packet of stream 0 loses only its promise: the pushes after it arrive at once, and the hole is given up after the timeout', async () => {
  let now = 0;
  const timers = { now: () => now, setTimeout: () => 0, clearTimeout: () => undefined };
  const packetizer = new PushPacketizer({ sessionId: SESSION_ID, authority: AUTHORITY });
  const list = resources().slice(0, 3);
  const sent = await sendAll(packetizer, list);
  const reassembler = new MulticastReassembler({ sessionId: SESSION_ID, timeoutMs: 5_000, timers });
  const paths: string[] = [];
  const bodies: Promise<Uint8Array>[] = [];
  reassembler.addEventListener(RESOURCE_PUSH, (e) => {
    const { request, response } = e as ResourcePushEvent;
    paths.push(new URL(request.url).pathname);
    bodies.push(response.then(async (r) => new Uint8Array(await r.arrayBuffer())));
  });
  // Push 1's first datagram carries its PUSH_PROMISE on stream 0: lost.
  for (const [i, batch] of sent.entries())
    for (const [j, d] of batch.entries()) if (!(i === 1 && j === 0)) reassembler.enqueuePacket(d);
  assert.deepEqual(paths, [list[0]!.path, list[2]!.path], 'the promise after the hole is raised without waiting');
  assert.deepEqual(await Promise.all(bodies), [list[0]!.body, list[2]!.body]);
  assert.equal(reassembler.stats.requestStreamSkips, 0);
  now = 6_000; // the hole is older than the timeout: given up at the next packet
  for (const d of await packetizer.push(resources()[3]!)) reassembler.enqueuePacket(d);
  assert.equal(reassembler.stats.requestStreamSkips, 1);
  assert.deepEqual(paths, [list[0]!.path, list[2]!.path, resources()[3]!.path], 'framing goes on after the skip');
});
