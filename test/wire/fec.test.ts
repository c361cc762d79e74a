/**
 * The Reed–Solomon erasure code of src/wire/fec.ts: any k of a block's k + m symbols give its sources
 * back (every erasure pattern of a small block, random ones of k = 20, m = 2), symbols that disagree are
 * refused, and the repair packet round-trips and refuses what is not one.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import {
  MAX_FEC_BLOCK,
  decodeRepairPacket,
  encodeRepair,
  encodeRepairPacket,
  encodeShortHeaderPacket,
  encodeFrames,
  isRepairPacket,
  recoverBlock,
  repairCoefficient,
  repairPacketOverhead,
} from '../../src/wire/index.js';
import { Rng, fromHex, hex, throwsWire } from './support.js';

/** Source datagrams of random lengths in [min, max]. */
function block(rng: Rng, k: number, min: number, max: number): Uint8Array[] {
  return Array.from({ length: k }, () => rng.bytes(rng.range(min, max)));
}

/** Every subset of {0..n-1} as a bit mask. */
function* masks(n: number): Generator<number> {
  for (let mask = 0; mask < 1 << n; mask++) yield mask;
}

function erase<T>(items: readonly T[], lost: (i: number) => boolean): (T | undefined)[] {
  return items.map((x, i) => (lost(i) ? undefined : x));
}

test('the code is pinned: repair 0 is the XOR of the sources, repair 1 the Cauchy row (a change breaks every receiver)', () => {
  for (let j = 0; j < 254; j++) assert.equal(repairCoefficient(0, j), 1);
  for (let i = 1; i < 8; i++)
    for (let j = 0; j < MAX_FEC_BLOCK - i; j++) assert.notEqual(repairCoefficient(i, j), 0, `C[${i}][${j}]`);
  const [r0, r1] = encodeRepair([fromHex('010203'), fromHex('ff'), new Uint8Array(0)], 2);
  // symbols: 0003 010203, 0001 ff0000, 0000 000000
  assert.equal(hex(r0!), '0002fe0203');
  assert.equal(hex(r1!), '007d81fe81'); // checked against a bit-by-bit GF(2^8) multiply
});

test('every erasure pattern of a k = 5, m = 3 block (lengths 0 to 40) is recovered when at most m symbols are lost, refused beyond', () => {
  const rng = new Rng(1);
  const sources = [new Uint8Array(0), rng.bytes(1), rng.bytes(40), rng.bytes(17), rng.bytes(39)];
  const repairs = encodeRepair(sources, 3);
  assert.ok(repairs.every((r) => r.length === 42));
  let recovered = 0;
  for (const mask of masks(8)) {
    const lost = (i: number) => (mask & (1 << i)) !== 0;
    const s = erase(sources, lost);
    const r = erase(repairs, (i) => lost(5 + i));
    const losses = s.filter((x) => x === undefined).length + r.filter((x) => x === undefined).length;
    if (losses > 3) {
      if (s.some((x) => x === undefined)) throwsWire(() => recoverBlock(s, r), 'fec-block', `mask ${mask}`);
      continue;
    }
    assert.deepEqual(recoverBlock(s, r), sources, `mask ${mask.toString(2)}`);
    recovered++;
  }
  assert.equal(recovered, 1 + 8 + 28 + 56); // patterns of 0 to 3 losses among 8
});

test('random blocks of k = 20, m = 2 (datagrams 1 to 1470 bytes): any two losses are recovered', () => {
  const rng = new Rng(2);
  for (let round = 0; round < 300; round++) {
    const k = round < 200 ? 20 : rng.range(1, 20);
    const sources = block(rng, k, 1, 1470);
    const repairs = encodeRepair(sources, 2);
    const lost = new Set<number>();
    for (let n = rng.range(1, 2); lost.size < n; ) lost.add(rng.int(k + 2));
    const got = recoverBlock(
      erase(sources, (i) => lost.has(i)),
      erase(repairs, (i) => lost.has(k + i)),
    );
    assert.deepEqual(got, sources, `round ${round}: lost ${[...lost]}`);
  }
});

test('the largest block (k + m = 255) and the longest datagram (65 535 bytes) round-trip', () => {
  const rng = new Rng(3);
  const sources = block(rng, 250, 0, 64);
  const repairs = encodeRepair(sources, 5);
  const lost = [0, 7, 100, 249, 3];
  assert.deepEqual(
    recoverBlock(
      erase(sources, (i) => lost.includes(i)),
      repairs,
    ),
    sources,
  );
  const big = [rng.bytes(65_535), rng.bytes(3)];
  const [r] = encodeRepair(big, 1);
  assert.equal(r!.length, 65_537);
  assert.deepEqual(recoverBlock([undefined, big[1]], [r]), big);
});

test('refusals: bad counts, a datagram too long for a symbol, too few symbols, symbols that disagree', () => {
  throwsWire(() => encodeRepair([], 2), 'invalid-argument');
  throwsWire(() => encodeRepair([new Uint8Array(1)], 0), 'invalid-argument');
  throwsWire(() => encodeRepair(block(new Rng(4), 250, 1, 2), 6), 'invalid-argument');
  throwsWire(() => encodeRepair([new Uint8Array(65_536)], 1), 'invalid-argument');

  const rng = new Rng(5);
  const sources = block(rng, 6, 10, 100);
  const repairs = encodeRepair(sources, 2);
  throwsWire(() => recoverBlock([undefined, undefined, undefined, ...sources.slice(3)], repairs), 'fec-block');
  throwsWire(() => recoverBlock([undefined, ...sources.slice(1)], [undefined, undefined]), 'fec-block');
  // Repair symbols of two lengths.
  throwsWire(
    () => recoverBlock([undefined, undefined, ...sources.slice(2)], [repairs[0], repairs[1]!.subarray(1)]),
    'fec-block',
  );
  // A source longer than the symbols.
  throwsWire(() => recoverBlock([undefined, new Uint8Array(200), ...sources.slice(2)], repairs), 'fec-block');
  // A damaged repair symbol: the recovered length is impossible.
  const damaged = repairs[0]!.slice();
  damaged[0]! ^= 0x80;
  throwsWire(() => recoverBlock([undefined, ...sources.slice(1)], [damaged, undefined]), 'fec-block');
  // A damaged symbol whose length still fits: its padding is not zero.
  const shortest = sources.reduce((a, s, j) => (s.length < sources[a]!.length ? j : a), 0);
  const padded = repairs[0]!.slice();
  padded[padded.length - 1]! ^= 1;
  throwsWire(
    () =>
      recoverBlock(
        erase(sources, (i) => i === shortest),
        [padded, undefined],
      ),
    'fec-block',
  );
});

test('a repair packet round-trips; its first byte can never be taken for a QUIC packet', () => {
  const sessionId = fromHex('5fa3c2e19b0d4e77');
  const symbol = new Rng(6).bytes(1200);
  for (const firstPacketNumber of [0, 63, 64, 16_383, 2 ** 30, Number.MAX_SAFE_INTEGER - 300]) {
    const packet = { sessionId, firstPacketNumber, k: 20, m: 2, index: 1, symbol };
    const datagram = encodeRepairPacket(packet);
    assert.ok(isRepairPacket(datagram));
    assert.ok(datagram.length <= symbol.length + repairPacketOverhead(sessionId.length) - 2);
    assert.deepEqual(decodeRepairPacket(datagram, sessionId.length), packet);
  }
  const quic = encodeShortHeaderPacket(
    { dcid: sessionId, packetNumber: 9, packetNumberLength: 1 },
    encodeFrames([{ kind: 'ping' }]),
  );
  assert.equal(isRepairPacket(quic), false);
  throwsWire(() => decodeRepairPacket(quic, 8), 'packet-header');
  assert.equal(isRepairPacket(new Uint8Array(0)), false);
  assert.deepEqual(decodeRepairPacket(fromHex('01 00 01 01 00 0102'), 0), {
    sessionId: new Uint8Array(0),
    firstPacketNumber: 0,
    k: 1,
    m: 1,
    index: 0,
    symbol: fromHex('0102'),
  });
});

test('repair packet refusals: type, truncation, counts, index, symbol length', () => {
  const ok = (k: number, m: number, index: number, symbol = '0000') =>
    fromHex(`01 aabb 05 ${hex(Uint8Array.of(k, m, index))} ${symbol}`);
  assert.equal(decodeRepairPacket(ok(20, 2, 1), 2).k, 20);
  throwsWire(() => decodeRepairPacket(fromHex('02 aabb 05 140201 0000'), 2), 'packet-header');
  throwsWire(() => decodeRepairPacket(fromHex('41 aabb 05 140201 0000'), 2), 'packet-header');
  throwsWire(() => decodeRepairPacket(new Uint8Array(0), 2), 'truncated');
  throwsWire(() => decodeRepairPacket(fromHex('01 aa'), 2), 'truncated');
  throwsWire(() => decodeRepairPacket(fromHex('01 aabb 45'), 2), 'truncated');
  throwsWire(() => decodeRepairPacket(ok(20, 2, 1, '00'), 2), 'truncated');
  throwsWire(() => decodeRepairPacket(ok(0, 2, 1), 2), 'frame-encoding');
  throwsWire(() => decodeRepairPacket(ok(20, 0, 0), 2), 'frame-encoding');
  throwsWire(() => decodeRepairPacket(ok(250, 6, 0), 2), 'frame-encoding');
  throwsWire(() => decodeRepairPacket(ok(20, 2, 2), 2), 'frame-encoding');
  throwsWire(() => decodeRepairPacket(fromHex('01 aabb c01fffffffffffff 140201 0000'), 2), 'unsafe-integer');
  throwsWire(() => decodeRepairPacket(ok(20, 2, 1), 21), 'invalid-argument');

  const base = { sessionId: new Uint8Array(2), firstPacketNumber: 1, k: 3, m: 2, index: 0, symbol: new Uint8Array(4) };
  throwsWire(() => encodeRepairPacket({ ...base, sessionId: new Uint8Array(21) }), 'invalid-argument');
  throwsWire(() => encodeRepairPacket({ ...base, firstPacketNumber: -1 }), 'invalid-argument');
  throwsWire(() => encodeRepairPacket({ ...base, k: 254 }), 'invalid-argument');
  throwsWire(() => encodeRepairPacket({ ...base, index: 2 }), 'invalid-argument');
  throwsWire(() => encodeRepairPacket({ ...base, symbol: new Uint8Array(1) }), 'invalid-argument');
  throwsWire(() => encodeRepairPacket({ ...base, symbol: new Uint8Array(65_538) }), 'invalid-argument');
});
