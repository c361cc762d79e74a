/**
 * Progressive pushes (PushPacketizer.openPush; docs/multicast.md): the promise and response go out at
 * once, each chunk after a CHUNK_DIGEST frame whose SHA-256 and Ed25519 signature cover exactly that
 * chunk at that offset of that push, and the trailers carry the whole body's digest. Interleaved with a
 * whole push, whose receivers are unaffected.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import test from 'node:test';
import { PushPacketizer } from '../../src/multicast/index.js';
import {
  MulticastReassembler,
  PushSignatureVerifier,
  PushSigner,
  RESOURCE_PUSH,
  type ResourcePushEvent,
} from '../../src/push/index.js';
import {
  CHUNK_DIGEST_FRAME_TYPE,
  Http3FrameType,
  chunkSignatureBase,
  decodeChunkDigest,
  decodeFieldSection,
  decodeFrames,
  decodeShortHeaderPacket,
  readVarint,
  type ChunkDigest,
} from '../../src/wire/index.js';
import { until } from '../support/wait.js';
import { Rng, fromHex } from '../wire/support.js';

const SESSION_ID = fromHex('5053434153540007');
const AUTHORITY = 'pushcast.example:8443';

/** Each stream's bytes, in offset order, from the session's datagrams (no loss, any order). */
function streamsOf(datagrams: Uint8Array[]): Map<number, Uint8Array> {
  const pieces = new Map<number, { offset: number; data: Uint8Array }[]>();
  for (const d of datagrams)
    for (const f of decodeFrames(decodeShortHeaderPacket(d, { dcidLength: SESSION_ID.length }).payload))
      if (f.kind === 'stream')
        pieces.set(f.streamId, [...(pieces.get(f.streamId) ?? []), { offset: f.offset, data: f.data }]);
  const out = new Map<number, Uint8Array>();
  for (const [id, list] of pieces) {
    const length = Math.max(...list.map((p) => p.offset + p.data.length));
    const bytes = new Uint8Array(length);
    for (const p of list) bytes.set(p.data, p.offset);
    out.set(id, bytes);
  }
  return out;
}

/** The HTTP/3 frames of a push stream, unknown types included (after the stream type and push ID). */
function framesOf(stream: Uint8Array): { type: number; payload: Uint8Array }[] {
  let at = readVarint(stream, 0).length;
  at += readVarint(stream, at).length;
  const frames: { type: number; payload: Uint8Array }[] = [];
  while (at < stream.length) {
    const type = readVarint(stream, at);
    const length = readVarint(stream, at + type.length);
    const start = at + type.length + length.length;
    frames.push({ type: type.value, payload: stream.subarray(start, start + length.value) });
    at = start + length.value;
  }
  return frames;
}

test('a progressive push: each chunk signed and digested as it goes, interleaved with a whole push that still arrives whole', async () => {
  const signer = await PushSigner.generate();
  const verifier = await PushSignatureVerifier.fromJwks(signer.keySet);
  const packetizer = new PushPacketizer({ sessionId: SESSION_ID, authority: AUTHORITY, signer });
  const rng = new Rng(11);
  const chunks = [rng.bytes(20_000), rng.bytes(3_000), rng.bytes(40_000)];
  const whole = { path: '/live/a/7.m4s', body: rng.bytes(30_000), responseHeaders: { 'content-type': 'audio/mp4' } };
  const datagrams: Uint8Array[] = [];
  const opened = await packetizer.openPush({ path: '/live/v/7.m4s', responseHeaders: { 'content-type': 'video/mp4' } });
  datagrams.push(...opened.datagrams);
  const [first, wholeDatagrams] = await Promise.all([opened.push.chunk(chunks[0]!), packetizer.push(whole)]);
  datagrams.push(...first, ...wholeDatagrams);
  datagrams.push(...(await opened.push.chunk(chunks[1]!)), ...(await opened.push.end(chunks[2]!)));
  await assert.rejects(opened.push.chunk(rng.bytes(10)), /has ended/);

  const stream = streamsOf(datagrams).get(opened.push.streamId)!;
  const frames = framesOf(stream);
  const headers = decodeFieldSection(frames[0]!.payload);
  assert.equal(frames[0]!.type, Http3FrameType.HEADERS);
  assert.equal(
    headers.find((f) => f.name === 'content-length'),
    undefined,
    'no length: not known yet',
  );
  const request = [
    { name: ':method', value: 'GET' },
    { name: ':scheme', value: 'https' },
    { name: ':authority', value: AUTHORITY },
    { name: ':path', value: '/live/v/7.m4s' },
  ];
  await verifier.verifyProgressiveResponse(request, headers);
  const created = Number(/;created=(\d+)/.exec(headers.find((f) => f.name === 'signature-input')!.value)![1]);

  // CHUNK_DIGEST, its DATA, … in body order; each digest and signature checked against its bytes.
  const digests: ChunkDigest[] = [];
  const bodies: Uint8Array[] = [];
  for (const f of frames.slice(1, -1)) {
    if (f.type === CHUNK_DIGEST_FRAME_TYPE) {
      digests.push(decodeChunkDigest(f.payload));
      bodies.push(new Uint8Array(0));
    } else {
      assert.equal(f.type, Http3FrameType.DATA);
      bodies[bodies.length - 1] = Uint8Array.from([...bodies.at(-1)!, ...f.payload]);
    }
  }
  assert.equal(digests.length, 3);
  let offset = 0;
  for (const [i, d] of digests.entries()) {
    assert.deepEqual(bodies[i], chunks[i], `chunk ${i}`);
    assert.deepEqual(
      { index: d.index, offset: d.offset, length: d.length, last: d.last },
      {
        index: i,
        offset,
        length: chunks[i]!.length,
        last: i === 2,
      },
    );
    assert.deepEqual(d.sha256, new Uint8Array(createHash('sha256').update(chunks[i]!).digest()));
    const base = chunkSignatureBase(SESSION_ID, AUTHORITY, '/live/v/7.m4s', created, d);
    await verifier.verifyChunk(signer.keyId, base, d.signature);
    // The same chunk claimed for another resource, or moved, does not verify.
    await assert.rejects(
      verifier.verifyChunk(
        signer.keyId,
        chunkSignatureBase(SESSION_ID, AUTHORITY, '/live/v/8.m4s', created, d),
        d.signature,
      ),
    );
    await assert.rejects(
      verifier.verifyChunk(
        signer.keyId,
        chunkSignatureBase(SESSION_ID, AUTHORITY, '/live/v/7.m4s', created, { ...d, offset: d.offset + 1 }),
        d.signature,
      ),
    );
    offset += chunks[i]!.length;
  }
  const trailers = decodeFieldSection(frames.at(-1)!.payload);
  const all = Uint8Array.from(chunks.flatMap((c) => [...c]));
  assert.deepEqual(trailers, [
    { name: 'digest', value: `sha256=${createHash('sha256').update(all).digest('base64')}` },
  ]);

  // A receiver of whole pushes gets the whole push untouched by the progressive one around it.
  const reassembler = new MulticastReassembler({ sessionId: SESSION_ID, verifier, timeoutMs: 2_000 });
  const delivered = new Map<string, Uint8Array>();
  reassembler.addEventListener(RESOURCE_PUSH, (e) => {
    const { request: r, response } = e as ResourcePushEvent;
    void response.then(
      async (res) => void delivered.set(new URL(r.url).pathname, new Uint8Array(await res.arrayBuffer())),
      () => undefined,
    );
  });
  for (const d of datagrams) reassembler.enqueuePacket(d);
  await until('the whole push delivered', () => delivered.has(whole.path));
  assert.deepEqual(delivered.get(whole.path), whole.body);
});

test('a signer that cannot sign chunks cannot open a progressive push; an unsigned session can', async () => {
  const signer = await PushSigner.generate();
  const partial = { signRequest: signer.signRequest.bind(signer), signResponse: signer.signResponse.bind(signer) };
  await assert.rejects(
    new PushPacketizer({ sessionId: SESSION_ID, authority: AUTHORITY, signer: partial }).openPush({ path: '/x' }),
    /cannot sign progressive pushes/,
  );
  const unsigned = new PushPacketizer({ sessionId: SESSION_ID, authority: AUTHORITY });
  const { datagrams, push } = await unsigned.openPush({ path: '/x' });
  const stream = streamsOf([...datagrams, ...(await push.end(Uint8Array.of(1, 2, 3)))]).get(push.streamId)!;
  const digest = decodeChunkDigest(framesOf(stream).find((f) => f.type === CHUNK_DIGEST_FRAME_TYPE)!.payload);
  assert.equal(digest.signature.length, 0);
  assert.equal(digest.last, true);
});
