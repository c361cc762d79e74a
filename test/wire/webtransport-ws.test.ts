/**
 * WebTransport over WebSocket frames (src/wire/webtransport-ws.ts) against the reference itself: the
 * `@moq/web-transport-ws` polyfill's own frame.js encodes and decodes the same bytes as pushcast, in
 * both directions, for IDs and codes on every varint length (RFC 9000 §16). Malformed messages throw
 * WireError only; stream ID bits as RFC 9000 §2.1.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import {
  WireError,
  WsFrameType,
  canReceiveOn,
  canSendOn,
  decodeWsFrame,
  encodeWsFrame,
  isServerInitiated,
  isUnidirectional,
  makeStreamId,
  type WsFrame,
} from '../../src/wire/index.js';
import { Rng, fromHex, hex, mutate, throwsWire } from './support.js';

// The polyfill's modules, untouched (plain ESM; its package exports only ".", so by file URL).
interface PolyVarInt {
  value: bigint;
}
interface PolyId {
  value: PolyVarInt;
  readonly dir: number;
  readonly serverInitiated: boolean;
  canRecv(isServer: boolean): boolean;
  canSend(isServer: boolean): boolean;
}
type PolyFrame =
  | { type: 'stream'; id: PolyId; data: Uint8Array; fin: boolean }
  | { type: 'reset_stream' | 'stop_sending'; id: PolyId; code: PolyVarInt }
  | { type: 'connection_close'; code: PolyVarInt; reason: string };
const polyfill = new URL('./', import.meta.resolve('@moq/web-transport-ws'));
const Frame = (await import(new URL('frame.js', polyfill).href)) as {
  encode(f: PolyFrame): Uint8Array;
  decode(b: Uint8Array): PolyFrame;
};
const Stream = (await import(new URL('stream.js', polyfill).href)) as {
  Id: { new (v: PolyVarInt): PolyId; create(n: bigint, dir: number, isServer: boolean): PolyId };
  Dir: { Bi: number; Uni: number };
};
const { VarInt } = (await import(new URL('varint.js', polyfill).href)) as {
  VarInt: { from(v: number | bigint): PolyVarInt };
};

function toPoly(frame: WsFrame): PolyFrame {
  switch (frame.type) {
    case 'stream':
      return { type: 'stream', id: new Stream.Id(VarInt.from(frame.id)), data: frame.data, fin: frame.fin };
    case 'reset-stream':
    case 'stop-sending':
      return {
        type: frame.type === 'reset-stream' ? 'reset_stream' : 'stop_sending',
        id: new Stream.Id(VarInt.from(frame.id)),
        code: VarInt.from(frame.code),
      };
    case 'application-close':
      return { type: 'connection_close', code: VarInt.from(frame.code), reason: frame.reason };
  }
}

function fromPoly(frame: PolyFrame): WsFrame {
  switch (frame.type) {
    case 'stream':
      return { type: 'stream', id: Number(frame.id.value.value), fin: frame.fin, data: frame.data };
    case 'reset_stream':
    case 'stop_sending':
      return {
        type: frame.type === 'reset_stream' ? 'reset-stream' : 'stop-sending',
        id: Number(frame.id.value.value),
        code: Number(frame.code.value),
      };
    case 'connection_close':
      return { type: 'application-close', code: Number(frame.code.value), reason: frame.reason };
  }
}

/** Values on each varint length and at its edges (RFC 9000 §16: 6, 14, 30, 62 bits). */
const EDGES = [0, 1, 63, 64, 16383, 16384, 2 ** 30 - 1, 2 ** 30, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER];

test('byte-exact: the polyfill decodes what pushcast encodes, and pushcast decodes what the polyfill encodes', () => {
  const rng = new Rng(336);
  const frames: WsFrame[] = [];
  for (const v of EDGES) {
    frames.push({ type: 'stream', id: v, fin: false, data: rng.bytes(rng.int(40)) });
    frames.push({ type: 'stream', id: v, fin: true, data: new Uint8Array(0) });
    frames.push({ type: 'reset-stream', id: v, code: EDGES[rng.int(EDGES.length)]! });
    frames.push({ type: 'stop-sending', id: EDGES[rng.int(EDGES.length)]!, code: v });
    frames.push({ type: 'application-close', code: v, reason: rng.bool() ? '' : 'bye — 👋' });
  }
  for (let i = 0; i < 100; i++)
    frames.push({ type: 'stream', id: rng.int(2 ** 40), fin: rng.bool(), data: rng.bytes(rng.int(20_000)) });
  for (const frame of frames) {
    const ours = encodeWsFrame(frame);
    const theirs = Frame.encode(toPoly(frame));
    assert.equal(hex(ours), hex(theirs), `${frame.type} ${'id' in frame ? frame.id : ''}`);
    assert.deepEqual(decodeWsFrame(theirs), frame);
    assert.deepEqual(fromPoly(Frame.decode(ours)), frame);
  }
});

test('known encodings: type byte, minimal varint ID, data to the end of the message', () => {
  assert.equal(hex(encodeWsFrame({ type: 'stream', id: 3, fin: false, data: fromHex('0102') })), '08030102');
  assert.equal(hex(encodeWsFrame({ type: 'stream', id: 0, fin: true, data: new Uint8Array(0) })), '0900');
  assert.equal(
    hex(encodeWsFrame({ type: 'stream', id: 494878333, fin: false, data: new Uint8Array(0) })),
    '089d7f3e7d',
  ); // RFC 9000 §A.1's 4-byte example
  assert.equal(hex(encodeWsFrame({ type: 'reset-stream', id: 7, code: 37 })), '040725');
  assert.equal(hex(encodeWsFrame({ type: 'stop-sending', id: 15293, code: 0 })), '057bbd00'); // §A.1's 2-byte example
  assert.equal(hex(encodeWsFrame({ type: 'application-close', code: 4000, reason: 'done' })), '1d4fa0646f6e65');
  assert.equal(WsFrameType.STREAM_FIN, 0x09);
  // A non-minimal varint decodes too (RFC 9000 §16 allows it; only frame types must be minimal).
  assert.deepEqual(decodeWsFrame(fromHex('08 4005 aa')), { type: 'stream', id: 5, fin: false, data: fromHex('aa') });
  // Bytes after a RESET_STREAM's code are ignored, as the polyfill ignores them.
  assert.deepEqual(decodeWsFrame(fromHex('04 01 02 ff')), { type: 'reset-stream', id: 1, code: 2 });
});

test('decoded STREAM data is a view into the message, not a copy', () => {
  const message = fromHex('08 02 0a0b0c');
  const frame = decodeWsFrame(message);
  assert.equal(frame.type, 'stream');
  if (frame.type === 'stream') {
    assert.equal(frame.data.buffer, message.buffer);
    assert.equal(frame.data.byteOffset, 2);
  }
});

test('malformed messages throw WireError, and only WireError', () => {
  throwsWire(() => decodeWsFrame(new Uint8Array(0)), 'truncated');
  throwsWire(() => decodeWsFrame(fromHex('07 00')), 'unknown-frame-type');
  throwsWire(() => decodeWsFrame(fromHex('30')), 'unknown-frame-type'); // a QUIC type not in this format (DATAGRAM)
  throwsWire(() => decodeWsFrame(fromHex('08')), 'truncated'); // no stream ID
  throwsWire(() => decodeWsFrame(fromHex('08 40')), 'truncated'); // a 2-byte varint cut short
  throwsWire(() => decodeWsFrame(fromHex('09 c0 00 00')), 'truncated');
  throwsWire(() => decodeWsFrame(fromHex('04 01')), 'truncated'); // RESET_STREAM without its code
  throwsWire(() => decodeWsFrame(fromHex('05 80 00 01')), 'truncated');
  throwsWire(() => decodeWsFrame(fromHex('1d')), 'truncated');
  throwsWire(() => decodeWsFrame(fromHex('08 ff ff ff ff ff ff ff ff')), 'unsafe-integer'); // 2^62−1 does not fit a number
  assert.throws(() => encodeWsFrame({ type: 'stream', id: -1, fin: false, data: new Uint8Array(0) }), WireError);
  assert.throws(() => encodeWsFrame({ type: 'reset-stream', id: 1, code: 1.5 }), WireError);

  const rng = new Rng(9000);
  const valid = [
    fromHex('08 03 0102'),
    fromHex('04 07 25'),
    fromHex('05 7bbd 00'),
    fromHex('1d 4fa0 646f6e65'),
    fromHex('09 00'),
  ];
  for (let i = 0; i < 3000; i++) {
    const input = mutate(rng, rng.pick(valid));
    try {
      decodeWsFrame(input);
    } catch (error) {
      assert.ok(error instanceof WireError, `${hex(input)}: ${String(error)}`);
    }
  }
});

test('stream IDs (RFC 9000 §2.1) agree with the polyfill: initiator bit, direction bit, who may send and receive', () => {
  for (let index = 0; index < 5; index++) {
    for (const bidirectional of [true, false]) {
      for (const server of [true, false]) {
        const id = makeStreamId(index, bidirectional, server);
        const poly = Stream.Id.create(BigInt(index), bidirectional ? Stream.Dir.Bi : Stream.Dir.Uni, server);
        assert.equal(id, Number(poly.value.value));
        assert.equal(isServerInitiated(id), server);
        assert.equal(isUnidirectional(id), !bidirectional);
        for (const side of [true, false]) {
          assert.equal(canSendOn(id, side), poly.canSend(side), `send on ${id} by ${side ? 'server' : 'client'}`);
          assert.equal(canReceiveOn(id, side), poly.canRecv(side), `receive on ${id} by ${side ? 'server' : 'client'}`);
        }
      }
    }
  }
  assert.deepEqual(
    [0, 1, 2, 3].map((i) => [isServerInitiated(i), isUnidirectional(i)]),
    [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ],
  );
  assert.equal(makeStreamId(2 ** 40, false, true), 2 ** 42 + 3);
});
