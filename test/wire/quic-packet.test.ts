import assert from 'node:assert/strict';
import test from 'node:test';
import {
  MAX_MULTICAST_DATAGRAM,
  decodePacketNumber,
  decodeShortHeaderPacket,
  encodeShortHeaderPacket,
  packetNumberLength,
  shortHeaderPacketNumber,
  truncatePacketNumber,
  type PacketNumberLength,
} from '../../src/wire/index.js';
import { Rng, fromHex, hex, throwsWire } from './support.js';

const SESSION_ID = fromHex('0123456789abcdef');

test('RFC 9000 Appendix A.3: 0x9b32 after 0xa82f30ea decodes to 0xa82f9b32', () => {
  assert.equal(decodePacketNumber(0xa82f30ea, 0x9b32, 2), 0xa82f9b32);
});

test('RFC 9000 Appendix A.2: 16 bits for 0xac5c02 and 24 bits for 0xace8fe after 0xabe8b3 was acknowledged', () => {
  assert.equal(packetNumberLength(0xac5c02, 0xabe8b3), 2);
  assert.equal(packetNumberLength(0xace8fe, 0xabe8b3), 3);
  assert.equal(packetNumberLength(0), 1, 'nothing acknowledged: the whole number counts');
  assert.equal(packetNumberLength(127), 1);
  assert.equal(packetNumberLength(128), 2);
  throwsWire(() => packetNumberLength(2 ** 31 + 5, 4), 'packet-number');
});

test('packet numbers around the 1-byte window (nghq sends 1 byte)', () => {
  assert.equal(decodePacketNumber(undefined, 0x17, 1), 0x17, 'first packet: expected 0');
  assert.equal(decodePacketNumber(255, 0x00, 1), 256, 'wraps forward');
  assert.equal(decodePacketNumber(0x1ff, 0xff, 1), 0x1ff, 'a duplicate of the largest');
  assert.equal(decodePacketNumber(0x200, 0xf0, 1), 0x1f0, 'a late packet from before the wrap');
  assert.equal(decodePacketNumber(0x27f, 0x00, 1), 0x300);
  assert.equal(decodePacketNumber(0x27f, 0x01, 1), 0x201);
  assert.equal(truncatePacketNumber(0xa82f9b32, 2), 0x9b32);
});

/** RFC 9000 Appendix A.3, transcribed literally with bigints, as the reference for the number version. */
function referenceDecode(largest: bigint, truncated: bigint, nbits: bigint): bigint {
  const expected = largest + 1n;
  const win = 1n << nbits;
  const hwin = win / 2n;
  const mask = win - 1n;
  const candidate = (expected & ~mask) | truncated;
  if (candidate <= expected - hwin && candidate < (1n << 62n) - win) return candidate + win;
  if (candidate > expected + hwin && candidate >= win) return candidate - win;
  return candidate;
}

test('property: decodePacketNumber agrees with the RFC pseudocode and recovers every number within half a window', () => {
  const rng = new Rng(2);
  for (let i = 0; i < 5000; i++) {
    const length = rng.range(1, 4) as PacketNumberLength;
    const window = 2 ** (8 * length);
    const largest = rng.pick([
      rng.int(4 * window),
      rng.int(2 ** 40),
      Number.MAX_SAFE_INTEGER - 1 - rng.int(4 * window),
    ]);
    const truncated = rng.int(window);
    const reference = referenceDecode(BigInt(largest), BigInt(truncated), BigInt(8 * length));
    if (reference <= BigInt(Number.MAX_SAFE_INTEGER)) {
      assert.equal(
        decodePacketNumber(largest, truncated, length),
        Number(reference),
        `${largest} ${truncated} ${length}`,
      );
    } else {
      throwsWire(() => decodePacketNumber(largest, truncated, length), 'unsafe-integer');
    }
    // A number sent within (expected − hwin, expected + hwin] comes back whole.
    const expected = largest + 1;
    const sent = expected - window / 2 + 1 + rng.int(window);
    if (sent >= 0 && sent <= Number.MAX_SAFE_INTEGER) {
      assert.equal(decodePacketNumber(largest, truncatePacketNumber(sent, length), length), sent);
    }
  }
});

test('the nghq shape: first byte 0x40, session ID, 1-byte packet number, plaintext frames', () => {
  const payload = fromHex('01'); // PING
  const datagram = encodeShortHeaderPacket({ dcid: SESSION_ID, packetNumber: 0x1234, packetNumberLength: 1 }, payload);
  assert.equal(hex(datagram), '40' + '0123456789abcdef' + '34' + '01');
  const packet = decodeShortHeaderPacket(datagram, { dcidLength: 8, largestPacketNumber: 0x1230 });
  assert.equal(hex(packet.dcid), hex(SESSION_ID));
  assert.equal(packet.packetNumber, 0x1234);
  assert.equal(packet.truncatedPacketNumber, 0x34);
  assert.equal(packet.packetNumberLength, 1);
  assert.equal(packet.spin, false);
  assert.equal(packet.keyPhase, false);
  assert.equal(packet.payloadOffset, 10);
  assert.equal(hex(packet.payload), '01');
  assert.equal(packet.payload.buffer, datagram.buffer, 'payload is a view, not a copy');
});

test('packet number lengths 1–4 set the low bits of the first byte (0x40–0x43)', () => {
  for (const length of [1, 2, 3, 4] as const) {
    const datagram = encodeShortHeaderPacket(
      { dcid: SESSION_ID, packetNumber: 0x01020304, packetNumberLength: length },
      fromHex('01'),
    );
    assert.equal(datagram[0], 0x40 + length - 1);
    assert.equal(datagram.length, 1 + 8 + length + 1);
    assert.equal(
      decodeShortHeaderPacket(datagram, { dcidLength: 8, largestPacketNumber: 0x01020300 }).packetNumber,
      0x01020304,
    );
  }
  const chosen = encodeShortHeaderPacket(
    { dcid: SESSION_ID, packetNumber: 0xac5c02, largestAcked: 0xabe8b3 },
    fromHex('01'),
  );
  assert.equal(chosen[0], 0x41, 'Appendix A.2 picks 2 bytes');
  throwsWire(
    () =>
      encodeShortHeaderPacket(
        { dcid: SESSION_ID, packetNumber: 0xac5c02, largestAcked: 0xabe8b3, packetNumberLength: 1 },
        fromHex('01'),
      ),
    'packet-number',
  );
});

test('spin and key phase bits round-trip; a zero-length session ID works', () => {
  const datagram = encodeShortHeaderPacket(
    { dcid: new Uint8Array(0), packetNumber: 7, packetNumberLength: 1, spin: true, keyPhase: true },
    fromHex('0000'),
  );
  assert.equal(hex(datagram), '64' + '07' + '0000');
  const packet = decodeShortHeaderPacket(datagram, { dcidLength: 0 });
  assert.deepEqual([packet.spin, packet.keyPhase, packet.packetNumber], [true, true, 7]);
});

test('the decoder refuses what is not a short-header packet of the profile', () => {
  for (const decode of [decodeShortHeaderPacket, shortHeaderPacketNumber]) refusals(decode);
});

function refusals(decodeShortHeaderPacket: (d: Uint8Array, o: { dcidLength: number }) => unknown): void {
  const ok = { dcidLength: 8 };
  throwsWire(() => decodeShortHeaderPacket(new Uint8Array(0), ok), 'truncated');
  throwsWire(() => decodeShortHeaderPacket(fromHex('c0000000010800'), ok), 'packet-header', 'long header');
  throwsWire(() => decodeShortHeaderPacket(fromHex('000123456789abcdef0001'), ok), 'packet-header', 'fixed bit 0');
  throwsWire(() => decodeShortHeaderPacket(fromHex('480123456789abcdef0001'), ok), 'packet-header', 'reserved bit');
  throwsWire(() => decodeShortHeaderPacket(fromHex('500123456789abcdef0001'), ok), 'packet-header', 'reserved bit');
  throwsWire(
    () => decodeShortHeaderPacket(fromHex('430123456789abcdef0001'), ok),
    'truncated',
    '4-byte packet number cut',
  );
  throwsWire(() => decodeShortHeaderPacket(fromHex('400123'), ok), 'truncated');
  throwsWire(() => decodeShortHeaderPacket(fromHex('400123456789abcdef00'), ok), 'empty-payload');
  throwsWire(() => decodeShortHeaderPacket(fromHex('4001'), { dcidLength: 21 }), 'invalid-argument');
}

test('the encoder refuses packets the profile cannot send', () => {
  const header = { dcid: SESSION_ID, packetNumber: 1, packetNumberLength: 1 } as const;
  throwsWire(() => encodeShortHeaderPacket(header, new Uint8Array(0)), 'invalid-argument');
  const fits = new Uint8Array(MAX_MULTICAST_DATAGRAM - 10);
  assert.equal(encodeShortHeaderPacket(header, fits).length, MAX_MULTICAST_DATAGRAM);
  throwsWire(() => encodeShortHeaderPacket(header, new Uint8Array(fits.length + 1)), 'packet-too-large');
  throwsWire(() => encodeShortHeaderPacket({ ...header, dcid: new Uint8Array(21) }, fromHex('01')), 'invalid-argument');
  throwsWire(() => encodeShortHeaderPacket({ ...header, packetNumber: -1 }, fromHex('01')), 'invalid-argument');
});

test('property: random packets round-trip', () => {
  const rng = new Rng(3);
  for (let i = 0; i < 2000; i++) {
    const dcid = rng.bytes(rng.range(0, 20));
    const length = rng.range(1, 4) as PacketNumberLength;
    const largest = rng.int(2 ** 40);
    const packetNumber = largest + 1 + rng.int(2 ** (8 * length - 1));
    const payload = rng.bytes(rng.range(1, 100));
    const fields = { dcid, packetNumber, packetNumberLength: length, spin: rng.bool(), keyPhase: rng.bool() };
    const datagram = encodeShortHeaderPacket(fields, payload);
    const packet = decodeShortHeaderPacket(datagram, { dcidLength: dcid.length, largestPacketNumber: largest });
    assert.equal(
      shortHeaderPacketNumber(datagram, { dcidLength: dcid.length, largestPacketNumber: largest }),
      packetNumber,
    );
    assert.deepEqual(
      {
        dcid: hex(packet.dcid),
        packetNumber: packet.packetNumber,
        length: packet.packetNumberLength,
        spin: packet.spin,
        keyPhase: packet.keyPhase,
        payload: hex(packet.payload),
      },
      { dcid: hex(dcid), packetNumber, length, spin: fields.spin, keyPhase: fields.keyPhase, payload: hex(payload) },
    );
  }
});
