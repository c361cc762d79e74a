/**
 * CHUNK_DIGEST (src/wire/chunk-digest.ts): round trip, the frame read by the HTTP/3 reader as a frame it
 * does not know and skips (what nghq-style receivers do), malformed payloads refused, and a signing base
 * that changes with every field it binds.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import {
  CHUNK_DIGEST_FRAME_TYPE,
  Http3FrameReader,
  WireError,
  chunkSignatureBase,
  decodeChunkDigest,
  encodeChunkDigestFrame,
  encodeHttp3Frame,
  isReservedValue,
  readVarint,
  type ChunkDigest,
} from '../../src/wire/index.js';
import { Rng } from './support.js';

const rng = new Rng(7);
const digest: ChunkDigest = {
  index: 3,
  offset: 123_456,
  length: 16_384,
  last: true,
  sha256: rng.bytes(32),
  signature: rng.bytes(64),
};

/** The payload of an encoded frame (after its type and length). */
function payloadOf(frame: Uint8Array): Uint8Array {
  const type = readVarint(frame, 0);
  assert.equal(type.value, CHUNK_DIGEST_FRAME_TYPE);
  const length = readVarint(frame, type.length);
  assert.equal(frame.length, type.length + length.length + length.value);
  return frame.subarray(type.length + length.length);
}

test('a chunk digest round-trips, signed or not; its type is no HTTP/3 type and no reserved value', () => {
  assert.deepEqual(decodeChunkDigest(payloadOf(encodeChunkDigestFrame(digest))), digest);
  const unsigned = { ...digest, last: false, signature: new Uint8Array(0) };
  assert.deepEqual(decodeChunkDigest(payloadOf(encodeChunkDigestFrame(unsigned))), unsigned);
  assert.equal(isReservedValue(CHUNK_DIGEST_FRAME_TYPE), false);
  assert.throws(() => encodeChunkDigestFrame({ ...digest, sha256: new Uint8Array(31) }), WireError);
  assert.throws(() => encodeChunkDigestFrame({ ...digest, signature: new Uint8Array(10) }), WireError);
});

test('an HTTP/3 reader that does not know the frame skips it and reads the DATA around it', () => {
  const body = rng.bytes(3000);
  const stream = Uint8Array.from([
    ...encodeChunkDigestFrame({ ...digest, index: 0, offset: 0, length: 1000, last: false }),
    ...encodeHttp3Frame({ kind: 'data', data: body.subarray(0, 1000) }),
    ...encodeChunkDigestFrame({ ...digest, index: 1, offset: 1000, length: 2000, last: true }),
    ...encodeHttp3Frame({ kind: 'data', data: body.subarray(1000) }),
  ]);
  const reader = new Http3FrameReader();
  reader.push(stream);
  const data: Uint8Array[] = [];
  for (let event = reader.next(); event !== undefined; event = reader.next()) {
    assert.equal(event.kind, 'data', 'nothing but DATA comes out');
    if (event.kind === 'data') data.push(event.data);
  }
  reader.end();
  assert.deepEqual(Uint8Array.from(data.flatMap((d) => [...d])), body);
});

test('malformed payloads are refused with a WireError', () => {
  const good = payloadOf(encodeChunkDigestFrame(digest));
  for (let cut = 0; cut < good.length; cut++)
    assert.throws(() => decodeChunkDigest(good.subarray(0, cut)), WireError, `cut at ${cut}`);
  const flags = good.slice();
  flags[flags.length - 64 - 2 - 32 - 1] = 0x80; // the flags byte (before SHA-256, a 2-byte length 64, the signature): an unknown flag
  assert.throws(() => decodeChunkDigest(flags), /unknown flags/);
  assert.throws(() => decodeChunkDigest(Uint8Array.from([...good, 0])), /after the signature/);
  const odd = payloadOf(encodeChunkDigestFrame({ ...digest, signature: new Uint8Array(0) })).slice();
  odd[odd.length - 1] = 10; // a 10-byte signature
  assert.throws(() => decodeChunkDigest(Uint8Array.from([...odd, ...new Uint8Array(10)])), /0 or 64/);
});

test('the signing base binds the session, the resource, the push and every field', () => {
  const session = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
  const base = (
    o: Partial<{ session: Uint8Array; authority: string; path: string; created: number }> = {},
    c = digest,
  ) =>
    chunkSignatureBase(
      o.session ?? session,
      o.authority ?? 'origin.example',
      o.path ?? '/live/v/1.m4s',
      o.created ?? 1_700_000_000,
      c,
    );
  const reference = base();
  assert.deepEqual(base(), reference, 'deterministic');
  assert.deepEqual(base({}, { ...digest, signature: new Uint8Array(0) }), reference, 'the signature is not signed');
  const variants = [
    base({ session: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 9) }),
    base({ authority: 'other.example' }),
    base({ path: '/live/v/2.m4s' }),
    base({ created: 1_700_000_001 }),
    base({}, { ...digest, index: 4 }),
    base({}, { ...digest, offset: 0 }),
    base({}, { ...digest, length: 1 }),
    base({}, { ...digest, last: false }),
    base({}, { ...digest, sha256: new Uint8Array(32) }),
  ];
  for (const [i, v] of variants.entries()) assert.notDeepEqual(v, reference, `variant ${i}`);
  assert.throws(() => base({ created: -1 }), WireError);
});
