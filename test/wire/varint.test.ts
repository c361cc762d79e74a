import assert from 'node:assert/strict';
import test from 'node:test';
import {
  VARINT_MAX,
  encodeVarint,
  readBigVarint,
  readVarint,
  varintLength,
  varintLengthOf,
  writeVarint,
  type VarintLength,
} from '../../src/wire/index.js';
import { Rng, fromHex, hex, throwsWire } from './support.js';

test('RFC 9000 Appendix A.1: the sample varints decode to the values the RFC gives', () => {
  assert.deepEqual(readBigVarint(fromHex('c2197c5eff14e88c')), { value: 151288809941952652n, length: 8 });
  assert.deepEqual(readVarint(fromHex('9d7f3e7d')), { value: 494878333, length: 4 });
  assert.deepEqual(readVarint(fromHex('7bbd')), { value: 15293, length: 2 });
  assert.deepEqual(readVarint(fromHex('25')), { value: 37, length: 1 });
  assert.deepEqual(readVarint(fromHex('4025')), { value: 37, length: 2 }, 'non-minimal encodings are valid');
  // Beyond 2^53−1 the number form refuses rather than round.
  throwsWire(() => readVarint(fromHex('c2197c5eff14e88c')), 'unsafe-integer');
});

test('RFC 9000 Appendix A.1: the sample values encode to the RFC bytes', () => {
  assert.equal(hex(encodeVarint(151288809941952652n)), 'c2197c5eff14e88c');
  assert.equal(hex(encodeVarint(494878333)), '9d7f3e7d');
  assert.equal(hex(encodeVarint(15293)), '7bbd');
  assert.equal(hex(encodeVarint(37)), '25');
  assert.equal(hex(encodeVarint(37, 2)), '4025');
  assert.equal(hex(encodeVarint(37, 8)), 'c000000000000025');
});

test('length boundaries of RFC 9000 Table 4', () => {
  const cases: [number | bigint, VarintLength][] = [
    [0, 1],
    [63, 1],
    [64, 2],
    [16383, 2],
    [16384, 4],
    [2 ** 30 - 1, 4],
    [2 ** 30, 8],
    [Number.MAX_SAFE_INTEGER, 8],
    [VARINT_MAX, 8],
    [0n, 1],
    [64n, 2],
  ];
  for (const [value, length] of cases) {
    assert.equal(varintLength(value), length, `${value}`);
    const bytes = encodeVarint(value);
    assert.equal(bytes.length, length);
    assert.equal(varintLengthOf(bytes[0]!), length);
    assert.equal(readBigVarint(bytes).value, BigInt(value));
  }
  assert.equal(hex(encodeVarint(VARINT_MAX)), 'ffffffffffffffff');
  assert.equal(readVarint(encodeVarint(Number.MAX_SAFE_INTEGER)).value, Number.MAX_SAFE_INTEGER);
  throwsWire(() => readVarint(encodeVarint(2n ** 53n)), 'unsafe-integer');
});

test('encoders refuse what a varint cannot carry', () => {
  throwsWire(() => encodeVarint(VARINT_MAX + 1n), 'varint-overflow');
  throwsWire(() => encodeVarint(64, 1), 'varint-overflow');
  throwsWire(() => encodeVarint(16384, 2), 'varint-overflow');
  throwsWire(() => encodeVarint(-1), 'invalid-argument');
  throwsWire(() => encodeVarint(-1n), 'invalid-argument');
  throwsWire(() => encodeVarint(1.5), 'invalid-argument');
  throwsWire(() => encodeVarint(2 ** 53), 'invalid-argument', 'unsafe numbers must be bigints');
  throwsWire(() => writeVarint(new Uint8Array(1), 0, 64), 'invalid-argument', 'no room');
});

test('truncated varints are refused with the offset of their first byte', () => {
  throwsWire(() => readVarint(new Uint8Array(0)), 'truncated');
  assert.equal(throwsWire(() => readVarint(fromHex('0040'), 1), 'truncated').offset, 1);
  throwsWire(() => readVarint(fromHex('9d7f3e')), 'truncated');
  throwsWire(() => readBigVarint(fromHex('c2197c5eff14e8')), 'truncated');
});

test('property: random varints of every length round-trip, minimal and forced', () => {
  const rng = new Rng(1);
  const lengths: VarintLength[] = [1, 2, 4, 8];
  for (let i = 0; i < 4000; i++) {
    const bits = rng.pick([6, 14, 30, 53, 62]);
    const big = rng.bigBits(rng.range(1, bits));
    const value: number | bigint = big <= BigInt(Number.MAX_SAFE_INTEGER) && rng.bool() ? Number(big) : big;
    const minimal = varintLength(value);
    const length = rng.bool() ? minimal : (lengths.find((n) => n >= minimal && rng.bool()) ?? 8);
    const out = new Uint8Array(length + 3);
    const end = writeVarint(out, 3, value, length);
    assert.equal(end, 3 + length);
    assert.deepEqual(readBigVarint(out, 3), { value: big, length });
    if (big <= BigInt(Number.MAX_SAFE_INTEGER)) assert.deepEqual(readVarint(out, 3), { value: Number(big), length });
  }
});
