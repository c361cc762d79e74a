/**
 * Every decoder, fed random bytes and damaged valid encodings, returns a value or throws a WireError:
 * never another exception type, never a hang (every loop here is bounded, and so is every decoder's).
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import {
  Http3FrameReader,
  WireError,
  decodeFieldSection,
  decodeFrames,
  decodeHttp3Frames,
  decodeShortHeaderPacket,
  encodeFieldSection,
  encodeFrames,
  encodeHttp3Frame,
  encodeHttp3FrameHeader,
  encodePushStreamHeader,
  encodeShortHeaderPacket,
  encodeVarint,
  huffmanDecode,
  huffmanEncode,
  readBigVarint,
  readVarint,
} from '../../src/wire/index.js';
import { decodePrefixInt, encodePrefixInt } from '../../src/wire/qpack.js';
import { Rng, ascii, concat, mutate } from './support.js';

const RUNS = 2500; // random inputs, and as many mutated ones, per decoder

function survives(name: string, input: Uint8Array, decode: () => unknown): void {
  try {
    decode();
  } catch (error) {
    if (error instanceof WireError) return;
    assert.fail(
      `${name} threw ${String(error)} on ${Array.from(input, (b) => b.toString(16).padStart(2, '0')).join('')}`,
    );
  }
}

function fuzz(
  name: string,
  seed: number,
  corpus: Uint8Array[],
  decode: (input: Uint8Array, rng: Rng) => unknown,
): void {
  test(`fuzz: ${name}`, () => {
    const rng = new Rng(seed);
    for (let i = 0; i < RUNS; i++) {
      const random = rng.bytes(rng.pick([0, 1, 2, 3, rng.range(0, 16), rng.range(0, 200)]));
      survives(name, random, () => decode(random, rng));
      const mutated = mutate(rng, rng.pick(corpus));
      survives(name, mutated, () => decode(mutated, rng));
    }
  });
}

const rng = new Rng(100);
const fieldSections = [
  encodeFieldSection([
    { name: ':method', value: 'GET' },
    { name: ':path', value: '/live/video-360p/123.m4s' },
  ]),
  encodeFieldSection([
    { name: ':status', value: '200' },
    { name: 'content-type', value: 'video/mp4' },
    { name: 'x-custom', value: 'v', neverIndex: true },
  ]),
  encodeFieldSection([{ name: 'custom-key', value: 'custom-value' }], { huffman: 'never' }),
  encodeFieldSection([{ name: 'x-bytes', value: String.fromCharCode(...rng.bytes(40)) }], { huffman: 'always' }),
];
const http3Streams = [
  concat(
    encodePushStreamHeader(7),
    encodeHttp3Frame({ kind: 'headers', fieldSection: fieldSections[1] }),
    encodeHttp3Frame({ kind: 'data', data: rng.bytes(30) }),
  ),
  concat(
    encodeHttp3Frame({ kind: 'push-promise', pushId: 7, fieldSection: fieldSections[0] }),
    encodeHttp3FrameHeader(0x21, 2),
    ascii('hi'),
  ),
  concat(
    encodeHttp3Frame({
      kind: 'settings',
      settings: new Map([
        [6n, 100n],
        [0x40n, 1n],
      ]),
    }),
    encodeHttp3Frame({ kind: 'goaway', id: 8 }),
    encodeHttp3Frame({ kind: 'cancel-push', pushId: 3 }),
    encodeHttp3Frame({ kind: 'max-push-id', pushId: 99 }),
  ),
];
const payloads = [
  encodeFrames([{ kind: 'stream', streamId: 0, offset: 0, data: http3Streams[1], fin: false }]),
  encodeFrames([
    { kind: 'stream', streamId: 3, offset: 1400, data: rng.bytes(50), fin: true },
    { kind: 'padding', length: 4 },
  ]),
  encodeFrames([{ kind: 'ping' }, { kind: 'reset-stream', streamId: 3, errorCode: 0x10cn, finalSize: 1234 }]),
];
const datagrams = payloads.map((payload, i) =>
  encodeShortHeaderPacket({ dcid: rng.bytes(8), packetNumber: 250 + i, packetNumberLength: 1 }, payload),
);

fuzz('decodeShortHeaderPacket + decodeFrames', 1, datagrams, (input, r) => {
  const packet = decodeShortHeaderPacket(input, {
    dcidLength: r.pick([0, 8, 20]),
    largestPacketNumber: r.bool() ? undefined : r.int(2 ** 40),
  });
  return decodeFrames(packet.payload);
});
fuzz('decodeFrames', 2, payloads, (input) => decodeFrames(input));
fuzz('decodeHttp3Frames', 3, http3Streams, (input) => decodeHttp3Frames(input, { maxFramePayload: 64 }));
fuzz('Http3FrameReader, split anywhere', 4, http3Streams, (input, r) => {
  const reader = new Http3FrameReader({ uniStream: r.bool(), maxFramePayload: 64 });
  let guard = 0;
  for (let at = 0; at < input.length; ) {
    const n = r.range(1, 8);
    reader.push(input.subarray(at, at + n));
    at += n;
    while (reader.next() !== undefined) assert.ok(++guard < 10_000, 'reader does not stop');
  }
  reader.end();
});
fuzz('huffmanDecode', 5, [huffmanEncode(ascii('www.example.com')), huffmanEncode(rng.bytes(30))], (input) =>
  huffmanDecode(input),
);
fuzz('decodeFieldSection', 6, fieldSections, (input) =>
  decodeFieldSection(input, { maxFieldSectionSize: 4096, maxFields: 16 }),
);
fuzz(
  'readVarint / readBigVarint',
  7,
  [encodeVarint(37), encodeVarint(15293), encodeVarint(494878333), encodeVarint(151288809941952652n)],
  (input, r) => {
    const offset = r.int(input.length + 1);
    readBigVarint(input, offset);
    return readVarint(input, offset);
  },
);
fuzz(
  'decodePrefixInt',
  8,
  [encodePrefixInt(1337, 5), encodePrefixInt(2 ** 40, 3), encodePrefixInt(42, 8)],
  (input, r) => decodePrefixInt(input, 0, r.range(1, 8)),
);
