import assert from 'node:assert/strict';
import test from 'node:test';
import {
  Http3FrameReader,
  SETTINGS_MAX_FIELD_SECTION_SIZE,
  decodeHttp3Frames,
  encodeHttp3Frame,
  encodeHttp3FrameHeader,
  encodePushStreamHeader,
  encodeUniStreamHeader,
  isReservedValue,
  type Http3Frame,
  type Http3StreamEvent,
} from '../../src/wire/index.js';
import { Rng, ascii, concat, fromHex, hex, throwsWire } from './support.js';

/** Events compared by value, byte fields as hex. */
function plain(events: readonly (Http3Frame | Http3StreamEvent)[]): unknown[] {
  return events.map((e) => {
    if (e.kind === 'data') return { ...e, data: hex(e.data) };
    if (e.kind === 'headers' || e.kind === 'push-promise') return { ...e, fieldSection: hex(e.fieldSection) };
    if (e.kind === 'settings') return { kind: 'settings', settings: [...e.settings] };
    return e;
  });
}

/** Pushes `chunks` one by one, draining events after each (bounded: a reader never loops forever). */
function readAll(reader: Http3FrameReader, chunks: Uint8Array[]): Http3StreamEvent[] {
  const events: Http3StreamEvent[] = [];
  for (const chunk of chunks) {
    reader.push(chunk);
    for (let guard = 0; ; guard++) {
      assert.ok(guard < 100_000, 'reader does not stop');
      const event = reader.next();
      if (event === undefined) break;
      events.push(event);
    }
  }
  reader.end();
  return events;
}

/** DATA pieces merged back into one per frame. */
function mergeData(events: Http3StreamEvent[]): unknown[] {
  const merged: (Http3Frame | Http3StreamEvent)[] = [];
  let pieces: Uint8Array[] = [];
  for (const event of events) {
    if (event.kind !== 'data') {
      merged.push(event);
      continue;
    }
    pieces.push(event.data);
    if (event.frameEnd) {
      merged.push({ kind: 'data', data: concat(...pieces) });
      pieces = [];
    }
  }
  return plain(merged);
}

function splitRandomly(rng: Rng, bytes: Uint8Array): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; ) {
    const n = Math.min(bytes.length - at, rng.pick([1, 2, 3, rng.range(1, 40), rng.range(1, 2000)]));
    chunks.push(bytes.subarray(at, at + n));
    at += n;
  }
  return chunks;
}

test('every frame type of RFC 9114 §7.2 encodes to its wire form and back', () => {
  const cases: [Http3Frame, string][] = [
    [{ kind: 'data', data: ascii('abc') }, '00 03 616263'],
    [{ kind: 'headers', fieldSection: fromHex('0000d9') }, '01 03 0000d9'],
    [{ kind: 'cancel-push', pushId: 7 }, '03 01 07'],
    [
      {
        kind: 'settings',
        settings: new Map([
          [SETTINGS_MAX_FIELD_SECTION_SIZE, 65536n],
          [0x21n, 0n],
        ]),
      },
      '04 07 06 80010000 21 00',
    ],
    [{ kind: 'push-promise', pushId: 300, fieldSection: fromHex('0000d1') }, '05 05 412c 0000d1'],
    [{ kind: 'goaway', id: 4 }, '07 01 04'],
    [{ kind: 'max-push-id', pushId: 16384 }, '0d 04 80004000'],
  ];
  for (const [frame, wire] of cases) {
    assert.equal(hex(encodeHttp3Frame(frame)), hex(fromHex(wire)), frame.kind);
    assert.deepEqual(plain(decodeHttp3Frames(fromHex(wire))), plain([frame]), frame.kind);
  }
});

test('push stream header (§6.2.2) and other unidirectional stream headers', () => {
  assert.equal(hex(encodePushStreamHeader(5)), '0105');
  assert.equal(hex(encodeUniStreamHeader(0)), '00');
  throwsWire(() => encodeUniStreamHeader(1), 'invalid-argument');
  throwsWire(() => encodeUniStreamHeader(0, 3), 'invalid-argument');
  const events = readAll(new Http3FrameReader({ uniStream: true }), [fromHex('01 4005 01 01 d9 00 02 6869')]);
  assert.deepEqual(plain(events), [
    { kind: 'stream-header', streamType: 1n, pushId: 5 },
    { kind: 'headers', fieldSection: 'd9' },
    { kind: 'data', data: '6869', frameEnd: true },
  ]);
  const control = readAll(new Http3FrameReader({ uniStream: true }), [fromHex('00 04 00')]);
  assert.deepEqual(plain(control), [
    { kind: 'stream-header', streamType: 0n },
    { kind: 'settings', settings: [] },
  ]);
});

test('a stream of unknown type is discarded after its header (§6.2); one closed before its header is tolerated', () => {
  const grease = 0x1fn * 1000n + 0x21n;
  const reader = new Http3FrameReader({ uniStream: true });
  const events = readAll(reader, [encodeUniStreamHeader(grease), fromHex('ffffffff 00 05 00'), fromHex('99')]);
  assert.deepEqual(events, [{ kind: 'stream-header', streamType: grease }]);
  assert.equal(reader.discarding, true);
  assert.equal(reader.bufferedBytes, 0);
  assert.deepEqual(readAll(new Http3FrameReader({ uniStream: true }), [fromHex('01')]), []);
});

test('reserved (GREASE) and unknown frame types are skipped as they arrive (§7.2.8, §9)', () => {
  assert.ok(isReservedValue(0x21) && isReservedValue(0x40) && isReservedValue(0x1fn * 2n ** 57n + 0x21n));
  assert.ok(!isReservedValue(0x20) && !isReservedValue(0x22) && !isReservedValue(0));
  const hugeGrease = 0x1fn * 99999999999999n + 0x21n;
  const stream = concat(
    encodeHttp3FrameHeader(0x21, 3),
    fromHex('aabbcc'),
    encodeHttp3Frame({ kind: 'headers', fieldSection: fromHex('0000d9') }),
    encodeHttp3FrameHeader(hugeGrease, 2),
    fromHex('dddd'),
    encodeHttp3FrameHeader(0x2f, 100000),
    new Uint8Array(100000),
    encodeHttp3Frame({ kind: 'data', data: fromHex('01') }),
  );
  const reader = new Http3FrameReader({ maxFramePayload: 16 });
  assert.deepEqual(mergeData(readAll(reader, splitRandomly(new Rng(5), stream))), [
    { kind: 'headers', fieldSection: '0000d9' },
    { kind: 'data', data: '01' },
  ]);
});

test('frame types reserved from HTTP/2 are H3_FRAME_UNEXPECTED (§7.2.8)', () => {
  for (const type of [0x02, 0x06, 0x08, 0x09]) {
    throwsWire(
      () => decodeHttp3Frames(concat(encodeHttp3FrameHeader(type, 0))),
      'frame-unexpected',
      `0x${type.toString(16)}`,
    );
  }
});

test('malformed payloads: extra or missing bytes (§7.1), settings errors (§7.2.4)', () => {
  throwsWire(() => decodeHttp3Frames(fromHex('03 02 07 00')), 'frame-encoding', 'CANCEL_PUSH with a trailing byte');
  throwsWire(() => decodeHttp3Frames(fromHex('0d 00')), 'frame-encoding', 'MAX_PUSH_ID without push ID');
  throwsWire(() => decodeHttp3Frames(fromHex('05 00')), 'frame-encoding', 'PUSH_PROMISE without push ID');
  throwsWire(() => decodeHttp3Frames(fromHex('07 01 40')), 'frame-encoding', 'GOAWAY with a cut varint');
  throwsWire(() => decodeHttp3Frames(fromHex('04 01 06')), 'frame-encoding', 'setting without value');
  const duplicate = throwsWire(() => decodeHttp3Frames(fromHex('04 04 06 01 06 02')), 'settings');
  assert.equal(duplicate.offset, 4, 'the offset of the second identifier in the stream');
  throwsWire(() => decodeHttp3Frames(fromHex('04 02 02 00')), 'settings', 'SETTINGS_ENABLE_PUSH is HTTP/2 only');
  throwsWire(() => encodeHttp3Frame({ kind: 'settings', settings: new Map([[0x03n, 1n]]) }), 'settings');
});

test('the bound on buffered frames applies as soon as the header is read; DATA is not bounded', () => {
  const reader = new Http3FrameReader({ maxFramePayload: 1000 });
  reader.push(encodeHttp3FrameHeader(0x01, 1001));
  throwsWire(() => reader.next(), 'frame-too-large');
  reader.push(new Uint8Array(1001));
  throwsWire(() => reader.next(), 'frame-too-large', 'a failed stream stays failed');
  throwsWire(() => reader.end(), 'frame-too-large');
  const big = new Uint8Array(50_000);
  const events = readAll(new Http3FrameReader({ maxFramePayload: 1000 }), [
    encodeHttp3FrameHeader(0x00, big.length),
    big.subarray(0, 20_000),
    big.subarray(20_000),
  ]);
  assert.deepEqual(
    events.map((e) => (e.kind === 'data' ? [e.data.length, e.frameEnd] : e.kind)),
    [
      [20_000, false],
      [30_000, true],
    ],
  );
  throwsWire(
    () => decodeHttp3Frames(concat(fromHex('00'), fromHex('ffffffffffffffff'))),
    'frame-too-large',
    'a length beyond 2^53',
  );
});

test('a clean end inside a frame is H3_FRAME_ERROR (§7.1)', () => {
  for (const cut of ['01', '01 05', '01 05 0000', '00 05 00', '21 05 00']) {
    const reader = new Http3FrameReader();
    reader.push(fromHex(cut));
    while (reader.next() !== undefined);
    throwsWire(() => reader.end(), 'truncated', cut);
  }
});

test('views, not copies: a frame inside one chunk is a view of it; one across chunks is copied once', () => {
  const frame = encodeHttp3Frame({ kind: 'headers', fieldSection: fromHex('0000d1d7') });
  const reader = new Http3FrameReader();
  reader.push(frame);
  const whole = reader.next();
  assert.ok(whole?.kind === 'headers');
  assert.equal(whole.fieldSection.buffer, frame.buffer);
  reader.push(frame.subarray(0, 4));
  assert.equal(reader.next(), undefined, 'needs more bytes');
  reader.push(frame.subarray(4));
  const split = reader.next();
  assert.ok(split?.kind === 'headers');
  assert.notEqual(split.fieldSection.buffer, frame.buffer);
  assert.equal(hex(split.fieldSection), '0000d1d7');
});

test('property: random frame sequences survive any split into pieces', () => {
  const rng = new Rng(6);
  for (let i = 0; i < 600; i++) {
    const frames: Http3Frame[] = [];
    const wire: Uint8Array[] = [];
    const pushId = rng.int(2 ** 20);
    wire.push(encodePushStreamHeader(pushId));
    for (let n = rng.range(0, 8); n > 0; n--) {
      const kind = rng.int(8);
      if (kind === 7) {
        // a reserved frame, skipped by the reader
        const payload = rng.bytes(rng.range(0, 50));
        wire.push(encodeHttp3FrameHeader(0x1fn * BigInt(rng.int(2 ** 40)) + 0x21n, payload.length), payload);
        continue;
      }
      const frame: Http3Frame =
        kind === 0
          ? { kind: 'data', data: rng.bytes(rng.range(0, 3000)) }
          : kind === 1
            ? { kind: 'headers', fieldSection: rng.bytes(rng.range(0, 200)) }
            : kind === 2
              ? { kind: 'cancel-push', pushId: rng.int(2 ** 30) }
              : kind === 3
                ? {
                    kind: 'settings',
                    settings: new Map([
                      [0x06n, rng.bigBits(62)],
                      [0x21n + 0x1fn * rng.bigBits(50), rng.bigBits(20)],
                    ]),
                  }
                : kind === 4
                  ? { kind: 'push-promise', pushId: rng.int(2 ** 50), fieldSection: rng.bytes(rng.range(0, 200)) }
                  : kind === 5
                    ? { kind: 'goaway', id: rng.int(2 ** 50) }
                    : { kind: 'max-push-id', pushId: rng.int(2 ** 14) };
      frames.push(frame);
      wire.push(encodeHttp3Frame(frame));
    }
    const stream = concat(...wire);
    const events = readAll(new Http3FrameReader({ uniStream: true }), splitRandomly(rng, stream));
    assert.deepEqual(mergeData(events), [{ kind: 'stream-header', streamType: 1n, pushId }, ...plain(frames)]);
  }
});
