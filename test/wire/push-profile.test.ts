/**
 * One segment pushed the way nghq pushes it over multicast: a PUSH_PROMISE on stream 0, then a push
 * stream (server-initiated unidirectional, ID 3) with the stream header, HEADERS and DATA, cut into
 * STREAM frames with Length (and Offset past 0) in short-header packets of at most 1470 bytes with a
 * 1-byte packet number, and received back through every decoder.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import {
  MAX_MULTICAST_DATAGRAM,
  Http3FrameReader,
  decodeFieldSection,
  decodeFrames,
  decodeShortHeaderPacket,
  encodeFieldSection,
  encodeHttp3Frame,
  encodeHttp3FrameHeader,
  encodePushStreamHeader,
  type FieldLine,
  type Http3StreamEvent,
} from '../../src/wire/index.js';
import { Rng, concat, fromHex, hex, packetize } from './support.js';

const SESSION_ID = fromHex('5053434153540001');
const PUSH_ID = 0;
const PUSH_STREAM_ID = 3; // the first server-initiated unidirectional stream (RFC 9000 §2.1)

const REQUEST: FieldLine[] = [
  { name: ':method', value: 'GET' },
  { name: ':scheme', value: 'https' },
  { name: ':authority', value: 'pushcast.example:8443' },
  { name: ':path', value: '/live/video-360p/123.m4s' },
];

interface Received {
  promises: { pushId: number; fields: FieldLine[] }[];
  pushStream?: { pushId?: number; fields?: FieldLine[]; body: Uint8Array[]; finished: boolean };
}

function receive(datagrams: Uint8Array[]): Received {
  const received: Received = { promises: [] };
  const readers = new Map<number, Http3FrameReader>();
  const nextOffset = new Map<number, number>();
  let largest: number | undefined;
  for (const datagram of datagrams) {
    const packet = decodeShortHeaderPacket(datagram, { dcidLength: SESSION_ID.length, largestPacketNumber: largest });
    assert.equal(hex(packet.dcid), hex(SESSION_ID));
    largest = Math.max(largest ?? 0, packet.packetNumber);
    for (const frame of decodeFrames(packet.payload)) {
      assert.equal(frame.kind, 'stream');
      if (frame.kind !== 'stream') continue;
      assert.equal(frame.offset, nextOffset.get(frame.streamId) ?? 0, 'in order, no gap');
      nextOffset.set(frame.streamId, frame.offset + frame.data.length);
      let reader = readers.get(frame.streamId);
      if (!reader) {
        // Stream 0 is the request stream the promises ride on; server-initiated unidirectional streams start with a header.
        reader = new Http3FrameReader({ uniStream: frame.streamId % 4 === 3 });
        readers.set(frame.streamId, reader);
      }
      reader.push(frame.data);
      for (let event: Http3StreamEvent | undefined; (event = reader.next()) !== undefined; ) {
        switch (event.kind) {
          case 'push-promise':
            received.promises.push({ pushId: event.pushId, fields: decodeFieldSection(event.fieldSection) });
            break;
          case 'stream-header':
            received.pushStream = { pushId: event.pushId, body: [], finished: false };
            break;
          case 'headers':
            received.pushStream!.fields = decodeFieldSection(event.fieldSection);
            break;
          case 'data':
            received.pushStream!.body.push(event.data);
            break;
          default:
            assert.fail(`unexpected ${event.kind}`);
        }
      }
      if (frame.fin) {
        reader.end();
        if (frame.streamId === PUSH_STREAM_ID) received.pushStream!.finished = true;
      }
    }
  }
  return received;
}

test('a segment pushed over the multicast profile the way nghq sends it, and received back', () => {
  const body = new Rng(10).bytes(400_000); // ~275 packets: the 1-byte packet number wraps
  const response: FieldLine[] = [
    { name: ':status', value: '200' },
    { name: 'content-type', value: 'video/mp4' },
    { name: 'content-length', value: String(body.length) },
  ];
  const promise = encodeHttp3Frame({
    kind: 'push-promise',
    pushId: PUSH_ID,
    fieldSection: encodeFieldSection(REQUEST),
  });
  const pushStream = concat(
    encodePushStreamHeader(PUSH_ID),
    encodeHttp3Frame({ kind: 'headers', fieldSection: encodeFieldSection(response) }),
    // DATA in several frames, the header written apart from the body as a streaming sender would.
    encodeHttp3FrameHeader(0x00, 100_000),
    body.subarray(0, 100_000),
    encodeHttp3FrameHeader(0x00, 300_000),
    body.subarray(100_000),
  );
  const datagrams = packetize(
    [
      { id: 0, bytes: promise, fin: false },
      { id: PUSH_STREAM_ID, bytes: pushStream, fin: true },
    ],
    SESSION_ID,
  ).datagrams;

  // The wire shape.
  assert.ok(datagrams.length > 256, `${datagrams.length} packets`);
  assert.ok(datagrams.every((d) => d.length <= MAX_MULTICAST_DATAGRAM && d[0] === 0x40));
  assert.equal(
    datagrams.filter((d) => d.length === MAX_MULTICAST_DATAGRAM).length,
    datagrams.length - 2,
    'all full but the promise and the last',
  );
  // Packet 0: header (0x40, session ID, packet number 0), one STREAM frame 0x0a on stream 0 holding the PUSH_PROMISE.
  assert.equal(hex(datagrams[0]!), `40${hex(SESSION_ID)}000a00${hex(Uint8Array.of(promise.length))}${hex(promise)}`);
  // PUSH_PROMISE: type 05, length, push ID 0, section prefix 0000, :method GET (d1), :scheme https (d7), :authority by name (50).
  assert.equal(hex(promise).slice(0, 16), `05${hex(Uint8Array.of(promise.length - 2))}000000d1d750`);
  const pushStart = hex(datagrams[1]!).slice(2 * 10, 2 * 10 + 12);
  assert.equal(pushStart.slice(0, 4), '0a03', 'the push stream opens with a Length-only STREAM frame on stream 3');
  assert.equal(
    hex(datagrams[1]!).slice(2 * 10 + 8, 2 * 10 + 16),
    `010001${hex(Uint8Array.of(encodeFieldSection(response).length))}`,
    'push stream header, then HEADERS',
  );
  datagrams.forEach((d, i) => {
    assert.equal(d[1 + SESSION_ID.length], i % 256, 'the packet number byte counts up and wraps');
  });

  const received = receive(datagrams);
  assert.deepEqual(received.promises, [{ pushId: PUSH_ID, fields: REQUEST }]);
  assert.equal(received.pushStream?.pushId, PUSH_ID);
  assert.deepEqual(received.pushStream?.fields, response);
  assert.equal(received.pushStream?.finished, true);
  assert.equal(hex(concat(...received.pushStream!.body)), hex(body));
});

test('packet numbers survive the 1-byte wrap with reordering within half a window', () => {
  const datagrams = packetize([{ id: 3, bytes: new Rng(11).bytes(600_000), fin: true }], SESSION_ID).datagrams;
  const rng = new Rng(12);
  const order = datagrams.map((_, i) => i);
  for (let i = 0; i + 1 < order.length; i++) if (rng.bool(0.3)) [order[i], order[i + 1]] = [order[i + 1]!, order[i]!];
  let largest: number | undefined;
  for (const i of order) {
    const packet = decodeShortHeaderPacket(datagrams[i]!, {
      dcidLength: SESSION_ID.length,
      largestPacketNumber: largest,
    });
    assert.equal(packet.packetNumber, i);
    largest = Math.max(largest ?? 0, packet.packetNumber);
  }
});
