/**
 * SparseBytes against a plain model (a byte array and a held flag per offset): frames in order, shuffled,
 * duplicated and overlapping, with chunks shared by several SparseBytes through one pool.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { ChunkPool, SparseBytes } from '../../src/push/sparse-bytes.js';
import { Rng } from '../wire/support.js';

function check(bytes: SparseBytes, stream: Uint8Array, held: boolean[], label: string): void {
  const count = held.filter(Boolean).length;
  assert.equal(bytes.held, count, `${label}: held`);
  let prefix = 0;
  while (held[prefix]) prefix++;
  assert.equal(bytes.prefixEnd, prefix, `${label}: prefixEnd`);
  assert.deepEqual(bytes.peek(0, prefix), stream.subarray(0, prefix), `${label}: prefix bytes`);
  for (let at = 0; at < stream.length; at += 97) {
    let end = at;
    while (held[end] && end < at + 300) end++;
    assert.deepEqual(bytes.read(at, 300), stream.subarray(at, end), `${label}: read at ${at}`);
    assert.deepEqual(bytes.peek(at, 300), stream.subarray(at, end), `${label}: peek at ${at}`);
  }
}

test('property: SparseBytes holds what a byte-per-offset model holds, in any arrival order, with pooled chunks', () => {
  const rng = new Rng(11);
  const pool = new ChunkPool(1 << 20);
  for (let round = 0; round < 30; round++) {
    const stream = rng.bytes(rng.range(1, 60_000));
    const frames: [number, number][] = [];
    for (let at = 0; at < stream.length; ) {
      const n = Math.min(stream.length - at, rng.range(1, 1500));
      frames.push([at, n]);
      at += n;
    }
    if (round % 3 !== 0) {
      for (let i = frames.length - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        [frames[i], frames[j]] = [frames[j]!, frames[i]!];
      }
      // Overlapping and repeated frames: RFC 9000 §2.2, the first copy of each byte is kept.
      for (let k = 0; k < frames.length / 4; k++) {
        const at = rng.int(stream.length);
        frames.splice(rng.int(frames.length), 0, [at, Math.min(stream.length - at, rng.range(1, 3000))]);
      }
    }
    const bytes = new SparseBytes(pool);
    const held: boolean[] = new Array(stream.length).fill(false);
    for (const [at, n] of frames) {
      let fresh = 0;
      for (let i = at; i < at + n; i++) if (!held[i]) fresh++;
      assert.equal(bytes.newBytes(at, stream.subarray(at, at + n)), fresh);
      // The frame's buffer is the caller's: overwritten after add, as a socket might reuse it.
      const frame = stream.slice(at, at + n);
      assert.equal(bytes.add(at, frame), fresh);
      frame.fill(0xee);
      for (let i = at; i < at + n; i++) held[i] = true;
    }
    check(bytes, stream, held, `round ${round}`);
    const body = bytes.peek(0, stream.length);
    assert.deepEqual(body, stream);
    bytes.recycle(); // its chunks are filled again by the next rounds' SparseBytes
    assert.deepEqual(body, stream, 'a copy taken before recycle stays intact');
  }
});
