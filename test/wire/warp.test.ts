/**
 * Warp messages (docs/warp-wire.md): the documented example bytes, round trips through every split
 * of a stream, signed orders, the stream rules of §4.2, unknown types skipped, and bounds.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import {
  WarpStreamReader,
  WireError,
  decodeWarpHeaders,
  decodeWarpSelect,
  encodeWarpMessage,
  type WarpMessage,
  type WarpStreamEvent,
} from '../../src/wire/index.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

test('HEADERS encodes as documented in docs/warp-wire.md', () => {
  // id 7, order -3 (zigzag 5), depends [1], path "/a"
  assert.equal(
    hex(encodeWarpMessage({ kind: 'headers', id: 7, order: -3, depends: [1], path: '/a' })),
    '00' + '08' + '0f' + '07' + '05' + '0101' + '022f61',
  );
  assert.equal(hex(encodeWarpMessage({ kind: 'headers' })), '000100');
  assert.equal(
    hex(encodeWarpMessage({ kind: 'goaway', url: 'https://b/' })),
    `100a${Buffer.from('https://b/').toString('hex')}`,
  );
  for (const order of [0, 1, -1, 2 ** 40, -(2 ** 51), 2 ** 51]) {
    const bytes = encodeWarpMessage({ kind: 'headers', order });
    assert.equal(decodeWarpHeaders(bytes.subarray(2)).order ?? 0, order);
  }
  assert.throws(() => encodeWarpMessage({ kind: 'headers', order: 2 ** 52 }), WireError);
  assert.throws(() => encodeWarpMessage({ kind: 'headers', depends: Array(65).fill(1) }), WireError);
});

function readAll(bytes: Uint8Array, split: number): WarpStreamEvent[] {
  const reader = new WarpStreamReader();
  const events: WarpStreamEvent[] = [];
  for (let at = 0; at < bytes.length; at += split) {
    reader.push(bytes.subarray(at, at + split));
    for (let e; (e = reader.next()); ) events.push(e);
  }
  reader.end();
  return events;
}

test('a stream reads back the same from every split; SEGMENT payloads pass through in pieces', () => {
  const segment = Uint8Array.from({ length: 3000 }, (_, i) => i & 0xff);
  const messages: WarpMessage[] = [
    { kind: 'headers', id: 42, order: 1_700_000_000, depends: [1, 2], path: '/live/video-360p/42.m4s' },
    { kind: 'segment', data: segment.subarray(0, 1000) },
    { kind: 'app', data: new Uint8Array([1, 2, 3]) },
    { kind: 'segment', data: segment.subarray(1000) },
    { kind: 'goaway', url: 'https://relay2.example/warp' },
  ];
  const stream = Buffer.concat(messages.map(encodeWarpMessage));
  for (const split of [1, 2, 3, 7, 100, 4096]) {
    const events = readAll(stream, split);
    assert.deepEqual(events[0], messages[0]);
    const data = Buffer.concat(
      events.filter((e) => e.kind === 'segment-data').map((e) => (e as { data: Uint8Array }).data),
    );
    assert.deepEqual(new Uint8Array(data), segment);
    assert.equal(events.filter((e) => e.kind === 'segment-data' && e.start).length, 2);
    assert.equal(events.filter((e) => e.kind === 'segment-data' && e.end).length, 2);
    assert.deepEqual(events.at(-1), messages[4]);
  }
});

test('§4.2: HEADERS first and only once; truncation; unknown types skipped; bounds', () => {
  const headers = encodeWarpMessage({ kind: 'headers', id: 1 });
  const seg = encodeWarpMessage({ kind: 'segment', data: new Uint8Array(5) });
  assert.throws(
    () => readAll(seg, 100),
    (e: unknown) => e instanceof WireError && e.code === 'frame-unexpected' && /not HEADERS/.test(e.message),
  );
  assert.throws(
    () => readAll(Buffer.concat([headers, headers]), 100),
    (e: unknown) => e instanceof WireError && /second HEADERS/.test(e.message),
  );
  assert.throws(
    () => readAll(Buffer.concat([headers, seg.subarray(0, 4)]), 100),
    (e: unknown) => e instanceof WireError && e.code === 'truncated',
  );
  assert.throws(
    () => readAll(new Uint8Array(0), 1),
    (e: unknown) => e instanceof WireError && /before its HEADERS/.test(e.message),
  );
  const unknown = new Uint8Array([0x20, 0x03, 9, 9, 9]);
  assert.equal(
    readAll(Buffer.concat([headers, unknown, seg]), 2).filter((e) => e.kind === 'segment-data').length >= 1,
    true,
  );
  const reader = new WarpStreamReader({ maxControlPayload: 10 });
  reader.push(encodeWarpMessage({ kind: 'headers', path: 'x'.repeat(20) }));
  assert.throws(
    () => reader.next(),
    (e: unknown) => e instanceof WireError && e.code === 'frame-too-large',
  );
  assert.throws(() => reader.next(), WireError, 'a failed reader keeps failing');
  assert.throws(
    () => decodeWarpHeaders(new Uint8Array([0x80])),
    (e: unknown) => e instanceof WireError && /unknown bits/.test(e.message),
  );
  assert.throws(
    () => decodeWarpHeaders(new Uint8Array([0x01, 0x05, 0x00])),
    (e: unknown) => e instanceof WireError && /after the HEADERS fields/.test(e.message),
  );
  assert.throws(
    () => decodeWarpHeaders(new Uint8Array([0x08, 0x02, 0xff, 0xfe])),
    (e: unknown) => e instanceof WireError && /not UTF-8/.test(e.message),
  );
});

test('SELECT encodes as documented in docs/warp-wire.md, reads back from a stream, and refuses what it cannot be', () => {
  // seq 3, track "v1"
  assert.equal(hex(encodeWarpMessage({ kind: 'select', seq: 3, track: 'v1' })), '2003' + '03' + '7631');
  assert.deepEqual(decodeWarpSelect(Buffer.from('4100' + '61', 'hex')), { kind: 'select', seq: 256, track: 'a' });
  const stream = Buffer.concat([
    encodeWarpMessage({ kind: 'headers' }),
    encodeWarpMessage({ kind: 'select', seq: 70_000, track: 'video-540p' }),
  ]);
  for (const split of [1, 2, 5, stream.length]) {
    const events = readAll(stream, split);
    assert.deepEqual(events.at(-1), { kind: 'select', seq: 70_000, track: 'video-540p' });
  }
  for (const bad of ['03', '', '03ff', `03${'61'.repeat(257)}`]) {
    assert.throws(
      () => decodeWarpSelect(Buffer.from(bad, 'hex')),
      (e: unknown) => e instanceof WireError,
      bad.slice(0, 12),
    );
  }
  assert.throws(() => encodeWarpMessage({ kind: 'select', seq: -1, track: 'a' }), WireError);
  assert.throws(() => encodeWarpMessage({ kind: 'select', seq: 1, track: '' }), WireError);
  // A SELECT larger than the reader's control bound is refused like any control message.
  const reader = new WarpStreamReader({ maxControlPayload: 8 });
  reader.push(
    Buffer.concat([
      encodeWarpMessage({ kind: 'headers' }),
      encodeWarpMessage({ kind: 'select', seq: 1, track: 'a-long-track-id' }),
    ]),
  );
  assert.equal(reader.next()?.kind, 'headers');
  assert.throws(
    () => reader.next(),
    (e: unknown) => e instanceof WireError && e.code === 'frame-too-large',
  );
});
