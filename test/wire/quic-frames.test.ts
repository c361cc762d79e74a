import assert from 'node:assert/strict';
import test from 'node:test';
import {
  VARINT_MAX,
  decodeFrame,
  decodeFrames,
  encodeFrames,
  encodeVarint,
  frameSize,
  streamFrameType,
  writeFrame,
  type QuicFrame,
  type StreamFrame,
} from '../../src/wire/index.js';
import { Rng, ascii, concat, fromHex, hex, throwsWire } from './support.js';

/** Frames compared by value, data as hex. */
function plain(frames: QuicFrame[]): unknown[] {
  return frames.map((f) => (f.kind === 'stream' ? { ...f, data: hex(f.data) } : f));
}

test('STREAM: all 8 type variants 0x08–0x0f (RFC 9000 §19.8)', () => {
  const data = ascii('segment');
  for (const withOffset of [false, true]) {
    for (const withLength of [false, true]) {
      for (const fin of [false, true]) {
        const frame: StreamFrame = { kind: 'stream', streamId: 3, offset: withOffset ? 1200 : 0, data, fin };
        const layout = { withOffset, withLength };
        const out = new Uint8Array(frameSize(frame, layout));
        assert.equal(writeFrame(out, 0, frame, layout), out.length);
        const type = 0x08 | (withOffset ? 0x04 : 0) | (withLength ? 0x02 : 0) | (fin ? 0x01 : 0);
        assert.equal(out[0], type);
        assert.equal(streamFrameType(frame, layout), type);
        const expected = hex(
          concat(
            Uint8Array.of(type, 0x03),
            withOffset ? encodeVarint(1200) : new Uint8Array(0),
            withLength ? Uint8Array.of(data.length) : new Uint8Array(0),
            data,
          ),
        );
        assert.equal(hex(out), expected, `type 0x${type.toString(16)}`);
        assert.deepEqual(plain(decodeFrames(out)), plain([frame]));
      }
    }
  }
  // With OFF set and offset 0, the frame still says offset 0.
  const explicitZero = new Uint8Array(64);
  const end = writeFrame(
    explicitZero,
    0,
    { kind: 'stream', streamId: 0, offset: 0, data, fin: false },
    { withOffset: true },
  );
  assert.equal(hex(explicitZero.subarray(0, 4)), '0e000007');
  assert.equal((decodeFrames(explicitZero.subarray(0, end))[0] as StreamFrame).offset, 0);
  throwsWire(
    () => frameSize({ kind: 'stream', streamId: 0, offset: 5, data, fin: false }, { withOffset: false }),
    'invalid-argument',
  );
});

test('STREAM without Length extends to the end of the packet; data is a view', () => {
  const payload = fromHex('0b 07 02 aabb  09 07 ccddee');
  const frames = decodeFrames(payload);
  assert.deepEqual(plain(frames), [
    { kind: 'stream', streamId: 7, offset: 0, data: 'aabb', fin: true },
    { kind: 'stream', streamId: 7, offset: 0, data: 'ccddee', fin: true },
  ]);
  assert.equal((frames[1] as StreamFrame).data.buffer, payload.buffer);
});

test('STREAM bounds: offset + length at most 2^62−1 (§19.8), numbers at most 2^53−1, Length within the packet', () => {
  const atMax = (offset: bigint, data: string) =>
    concat(fromHex('0e 03'), encodeVarint(offset), encodeVarint(data.length / 2), fromHex(data));
  throwsWire(() => decodeFrames(atMax(VARINT_MAX, 'aa')), 'frame-encoding');
  throwsWire(
    () => decodeFrames(atMax(VARINT_MAX, '')),
    'unsafe-integer',
    'ending exactly at 2^62−1 is valid (§19.8) but beyond a number',
  );
  throwsWire(() => decodeFrames(atMax(VARINT_MAX - 1n, 'aa')), 'unsafe-integer', 'valid on the wire, beyond a number');
  throwsWire(() => decodeFrames(atMax(2n ** 53n - 1n, 'aa')), 'unsafe-integer');
  assert.equal((decodeFrames(atMax(2n ** 53n - 2n, 'aa'))[0] as StreamFrame).offset, 2 ** 53 - 2);
  throwsWire(() => decodeFrames(fromHex('0a 03 05 aabb')), 'frame-encoding', 'Length beyond the packet');
  throwsWire(() => decodeFrames(fromHex('0e 03')), 'truncated');
});

test('PADDING runs coalesce, PING, RESET_STREAM with a GREASE error code', () => {
  const grease = 0x1fn * 123456789012345n + 0x21n;
  const frames: QuicFrame[] = [
    { kind: 'ping' },
    { kind: 'reset-stream', streamId: 7, errorCode: grease, finalSize: 70000 },
    { kind: 'padding', length: 5 },
  ];
  const bytes = encodeFrames(frames);
  assert.equal(hex(bytes.subarray(0, 3)), '010407');
  assert.equal(hex(bytes.subarray(bytes.length - 5)), '0000000000');
  assert.deepEqual(decodeFrames(bytes), frames);
  assert.deepEqual(decodeFrames(fromHex('00 00 01 00')), [
    { kind: 'padding', length: 2 },
    { kind: 'ping' },
    { kind: 'padding', length: 1 },
  ]);
  assert.deepEqual(decodeFrame(fromHex('01 0000'), 1), { frame: { kind: 'padding', length: 2 }, end: 3 });
});

test('frame types outside the profile, non-minimal types and empty payloads are refused', () => {
  for (const type of ['02', '03', '05', '06', '07', '10', '18', '1c', '1e', '30']) {
    const error = throwsWire(() => decodeFrames(fromHex(`01 ${type} 00 00 00`)), 'unknown-frame-type', type);
    assert.equal(error.offset, 1);
  }
  throwsWire(() => decodeFrames(fromHex('4008 00 00')), 'frame-encoding', 'STREAM type on 2 bytes (§12.4)');
  throwsWire(() => decodeFrames(fromHex('4001')), 'frame-encoding', 'PING type on 2 bytes');
  throwsWire(() => decodeFrames(fromHex('4040')), 'unknown-frame-type');
  throwsWire(() => decodeFrames(fromHex('80')), 'truncated');
  throwsWire(() => decodeFrames(new Uint8Array(0)), 'empty-payload');
  throwsWire(() => decodeFrames(fromHex('04 07 00')), 'truncated', 'RESET_STREAM without final size');
});

test('property: random frame lists round-trip, with the last STREAM frame with or without Length', () => {
  const rng = new Rng(4);
  const varint = () => rng.pick([rng.int(64), rng.int(16384), rng.int(2 ** 30), rng.int(2 ** 50)]);
  for (let i = 0; i < 2000; i++) {
    const frames: QuicFrame[] = [];
    for (let n = rng.range(1, 6); n > 0; n--) {
      switch (rng.int(4)) {
        case 0:
          if (frames.at(-1)?.kind !== 'padding') frames.push({ kind: 'padding', length: rng.range(1, 20) });
          break;
        case 1:
          frames.push({ kind: 'ping' });
          break;
        case 2:
          frames.push({ kind: 'reset-stream', streamId: varint(), errorCode: rng.bigBits(62), finalSize: varint() });
          break;
        default:
          frames.push({
            kind: 'stream',
            streamId: varint(),
            offset: rng.bool(0.3) ? 0 : varint(),
            data: rng.bytes(rng.range(0, 300)),
            fin: rng.bool(),
          });
      }
    }
    const layouts = frames.map(() => ({ withLength: true }));
    const last = frames.length - 1;
    if (frames[last]!.kind === 'stream' && rng.bool()) layouts[last] = { withLength: false };
    const out = new Uint8Array(frames.reduce((n, f, k) => n + frameSize(f, layouts[k]), 0));
    let at = 0;
    frames.forEach((f, k) => {
      at = writeFrame(out, at, f, layouts[k]);
    });
    assert.equal(at, out.length);
    assert.deepEqual(plain(decodeFrames(out)), plain(frames));
  }
});
