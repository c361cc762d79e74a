/**
 * The decoders that take bytes from the network, as fuzz targets: each with the one error class it
 * documents (WireError for src/wire, BmffError for the ISO BMFF readers), a corpus of valid encodings
 * to damage, and how to feed it one input. test/wire/fuzz.test.ts runs a few thousand inputs of each in
 * CI; bench/fuzz.ts a million. Inputs are random bytes, or a corpus entry damaged by `mutate`.
 */
import assert from 'node:assert/strict';
import {
  BmffError,
  ByteWriter,
  childrenOf,
  parseInitSegment,
  readBoxes,
  readFragments,
  writeMediaDataHeader,
  writeMovieFragment,
  type Box,
} from '../../src/media/bmff/index.js';
import { DeliveryDescriptionError, parseDeliveryDescription } from '../../src/media/index.js';
import {
  CAPSULE_CLOSE_WEBTRANSPORT_SESSION,
  CAPSULE_DRAIN_WEBTRANSPORT_SESSION,
  CapsuleReader,
  Http3FrameReader,
  WEBTRANSPORT_BIDI_SIGNAL,
  WEBTRANSPORT_UNI_STREAM,
  MoqStreamReader,
  MoqtMessage,
  concatBytes,
  decodeMoqtNamespaceSuffix,
  decodeMoqtPublishDone,
  decodeMoqtRequestError,
  decodeMoqtRequestId,
  decodeMoqtRequestOk,
  decodeMoqtSetup,
  decodeMoqtSubgroupHeader,
  decodeMoqtSubgroupStream,
  decodeMoqtSubscribe,
  decodeMoqtSubscribeNamespace,
  decodeMoqtSubscribeOk,
  encodeMoqtNamespaceSuffix,
  encodeMoqtObjectHeader,
  encodeMoqtPublishDone,
  encodeMoqtRequestError,
  encodeMoqtRequestOk,
  encodeMoqtSetup,
  encodeMoqtSubgroupHeader,
  encodeMoqtSubscribe,
  encodeMoqtSubscribeNamespace,
  encodeMoqtSubscribeOk,
  frameMoqtControl,
  WarpStreamReader,
  WireError,
  decodeMoqAnnounce,
  decodeMoqAnnounceInit,
  decodeMoqAnnouncePlease,
  decodeMoqClientSetup,
  decodeMoqGroup,
  decodeMoqServerSetup,
  decodeMoqSubscribe,
  decodeMoqSubscribeOk,
  decodeMoqSubscribeUpdate,
  encodeMoqAnnounce,
  encodeMoqAnnounceInit,
  encodeMoqAnnouncePlease,
  encodeMoqClientSetup,
  encodeMoqGroup,
  encodeMoqServerSetup,
  encodeMoqStreamStart,
  encodeMoqSubscribe,
  frameMoqMessage,
  frameMoqtMessage,
  decodeCloseSession,
  decodeFieldSection,
  decodeChunkDigest,
  decodeFrames,
  decodeRepairPacket,
  decodeHttp3Frames,
  decodeSessionDatagram,
  decodeShortHeaderPacket,
  decodeWarpHeaders,
  decodeWarpSelect,
  decodeWsFrame,
  encodeCapsule,
  encodeCloseSession,
  encodeFieldSection,
  encodeChunkDigestFrame,
  encodeFrames,
  encodeRepair,
  encodeRepairPacket,
  encodeHttp3Frame,
  encodeHttp3FrameHeader,
  encodePushStreamHeader,
  encodeSessionDatagram,
  encodeShortHeaderPacket,
  encodeVarint,
  encodeWarpMessage,
  encodeWarpMessageHeader,
  encodeWsFrame,
  formatMulticastAltSvc,
  http3CodeToWebTransport,
  huffmanDecode,
  huffmanEncode,
  multicastAdvertisement,
  recoverBlock,
  parseAltSvc,
  readBigVarint,
  readVarint,
  webTransportCodeToHttp3,
} from '../../src/wire/index.js';
import { decodePrefixInt, encodePrefixInt } from '../../src/wire/qpack.js';
import { parseDictionary, parseList } from '../../src/wire/structured-fields.js';
import { Rng, ascii, concat, mutate } from './support.js';

export interface FuzzTarget {
  readonly name: string;
  /** The only error class the decoder may throw. */
  readonly error: typeof WireError | typeof BmffError | typeof DeliveryDescriptionError;
  /** Valid encodings, damaged into inputs. */
  readonly corpus: readonly Uint8Array[];
  /** Decodes one input; `rng` decides what the decoder is given besides it (splits, options). */
  decode(input: Uint8Array, rng: Rng): unknown;
}

/**
 * An input: random bytes (mostly short, where decoders branch most), or a damaged corpus entry: bytes
 * flipped, inserted, deleted or cut (`mutate`), or a field overwritten with a boundary value (lengths,
 * counts and sizes of 0, 1, the largest of their width, or past it).
 */
export function fuzzInput(rng: Rng, target: FuzzTarget): Uint8Array {
  const kind = rng.int(4);
  if (kind === 0) return rng.bytes(rng.pick([0, 1, 2, 3, rng.range(0, 16), rng.range(0, 200)]));
  const entry = rng.pick(target.corpus);
  if (kind === 1 || entry.length === 0) return mutate(rng, entry);
  const out = entry.slice();
  for (let edits = rng.range(1, 3); edits > 0; edits--) {
    const width = rng.pick([1, 2, 4, 8]);
    const at = rng.int(Math.max(1, out.length - width + 1));
    const high = rng.pick([0x00, 0x00, 0x7f, 0x80, 0xff, 0x40, 0xc0, 0x3f]);
    const low = rng.pick([0x00, 0x01, 0xff, 0xfe, 0x7f, 0x80, 0x10]);
    for (let i = 0; i < width && at + i < out.length; i++) out[at + i] = i === 0 ? high : i === width - 1 ? low : high;
  }
  return kind === 2 ? out : mutate(rng, out);
}

/** Feeds a stream reader `input` in pieces of 1 to 8 bytes, reading after each; a reader that never stops fails. */
function split(input: Uint8Array, rng: Rng, push: (piece: Uint8Array) => void, drain: () => boolean): void {
  let events = 0;
  for (let at = 0; at < input.length; ) {
    const n = rng.range(1, 8);
    push(input.subarray(at, at + n));
    at += n;
    while (drain()) assert.ok(++events < 10_000, 'the reader keeps returning events');
  }
}

const latin1 = new TextDecoder('latin1');
/** A header field value as a server's bytes would reach the parser. */
const text = (bytes: Uint8Array): string => latin1.decode(bytes);

// ---------------------------------------------------------------------------------------------------
// Corpora of the wire codecs

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
    encodeHttp3Frame({ kind: 'headers', fieldSection: fieldSections[1]! }),
    encodeHttp3Frame({ kind: 'data', data: rng.bytes(30) }),
  ),
  concat(
    encodeHttp3Frame({ kind: 'push-promise', pushId: 7, fieldSection: fieldSections[0]! }),
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
const quicPayloads = [
  encodeFrames([{ kind: 'stream', streamId: 0, offset: 0, data: http3Streams[1]!, fin: false }]),
  encodeFrames([
    { kind: 'stream', streamId: 3, offset: 1400, data: rng.bytes(50), fin: true },
    { kind: 'padding', length: 4 },
  ]),
  encodeFrames([{ kind: 'ping' }, { kind: 'reset-stream', streamId: 3, errorCode: 0x10cn, finalSize: 1234 }]),
];
const datagrams = quicPayloads.map((payload, i) =>
  encodeShortHeaderPacket({ dcid: rng.bytes(8), packetNumber: 250 + i, packetNumberLength: 1 }, payload),
);
const wsFrames = [
  encodeWsFrame({ type: 'stream', id: 4, fin: false, data: rng.bytes(20) }),
  encodeWsFrame({ type: 'stream', id: 494878333, fin: true, data: new Uint8Array(0) }),
  encodeWsFrame({ type: 'reset-stream', id: 7, code: 37 }),
  encodeWsFrame({ type: 'stop-sending', id: 15293, code: 0 }),
  encodeWsFrame({ type: 'application-close', code: 4000, reason: 'done, with ünïcode' }),
];
const capsuleStreams = [
  encodeCloseSession(4000, 'bye'),
  concat(encodeCapsule(0x29, rng.bytes(12)), encodeCapsule(CAPSULE_DRAIN_WEBTRANSPORT_SESSION, new Uint8Array(0))),
  concat(encodeCapsule(CAPSULE_CLOSE_WEBTRANSPORT_SESSION, Uint8Array.of(0, 0, 0, 1)), encodeCloseSession(0, '')),
];
/** Stream signals (a unidirectional stream type or a bidirectional signal, then the session ID), datagrams, error codes. */
const webTransportSignals = [
  concat(encodeVarint(WEBTRANSPORT_UNI_STREAM), encodeVarint(4), rng.bytes(6)),
  concat(encodeVarint(WEBTRANSPORT_BIDI_SIGNAL), encodeVarint(1200), rng.bytes(3)),
  encodeSessionDatagram(8, rng.bytes(16)),
  encodeVarint(webTransportCodeToHttp3(7)),
  encodeVarint(webTransportCodeToHttp3(0xffffffff)),
];
const warpStreams = [
  concat(
    encodeWarpMessage({ kind: 'headers', id: 7, order: -3, depends: [1], path: '/live/video-360p/42.m4s' }),
    encodeWarpMessage({ kind: 'segment', data: rng.bytes(40) }),
    encodeWarpMessage({ kind: 'app', data: rng.bytes(5) }),
    encodeWarpMessage({ kind: 'goaway', url: 'https://relay.example/warp/live' }),
  ),
  concat(
    encodeWarpMessage({ kind: 'headers' }),
    encodeWarpMessageHeader(0x21, 3),
    rng.bytes(3),
    encodeWarpMessage({ kind: 'segment', data: new Uint8Array(0) }),
  ),
  concat(encodeWarpMessage({ kind: 'headers' }), encodeWarpMessage({ kind: 'select', seq: 3, track: 'video-540p' })),
];
const structuredFields = [
  'sig1=("@method" "@authority" "@path" "content-digest");created=1618884473;keyid="test-key-ed25519";alg="ed25519"',
  'sig1=:dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZSwganVzdCBieXRlcw==:, sig2=?0;x=-12',
  'a=1, b, c=?1;p=tok, d=(1 2 3);q="s\\"t", e=*tok/en:x',
].map(ascii);
const altSvcValues = [
  formatMulticastAltSvc({
    group: '232.112.99.1',
    port: 5000,
    source: '192.0.2.1',
    sessionId: '5053434153540001',
    keyUrl: 'https://localhost:8443/.well-known/pushcast-keys',
    gateway: 'ws://localhost:8080/multicast/gateway',
    maxAge: 3600,
  }),
  formatMulticastAltSvc({ group: 'ff3e::1234', port: 6000, sessionId: 'ab', maxAge: 60 }),
  formatMulticastAltSvc({
    group: '232.112.99.2',
    port: 5001,
    sessionId: '0102',
    fec: { scheme: 'rs', k: 20, m: 2, port: 5101 },
    maxAge: 60,
  }),
  'h3=":8443"; ma=86400, h3-29=":8443"',
  'clear',
].map(ascii);

// ---------------------------------------------------------------------------------------------------
// Corpora of the ISO BMFF readers: an AVC and an AAC init segment and fragments, built box by box

function fileType(w: ByteWriter, type: 'ftyp' | 'styp'): void {
  w.box(type, () => w.fourCC('iso6').u32(0).fourCC('iso6').fourCC('cmfc'));
}

function init(kind: 'video' | 'audio'): Uint8Array {
  const w = new ByteWriter();
  const timescale = kind === 'video' ? 90_000 : 48_000;
  fileType(w, 'ftyp');
  w.box('moov', () => {
    w.fullBox('mvhd', 0, 0, () => w.u32(0).u32(0).u32(1000).u32(0).bytes(new Uint8Array(80)));
    w.box('trak', () => {
      w.fullBox('tkhd', 0, 3, () => w.u32(0).u32(0).u32(1).bytes(new Uint8Array(68)));
      w.box('mdia', () => {
        w.fullBox('mdhd', 0, 0, () => w.u32(0).u32(0).u32(timescale).u32(0).u16(0x55c4).u16(0));
        w.fullBox('hdlr', 0, 0, () =>
          w
            .u32(0)
            .fourCC(kind === 'video' ? 'vide' : 'soun')
            .bytes(new Uint8Array(12))
            .bytes(ascii('media\0')),
        );
        w.box('minf', () => {
          w.box('stbl', () => {
            w.fullBox('stsd', 0, 0, () => {
              w.u32(1);
              if (kind === 'video') {
                w.box('avc1', () => {
                  w.bytes(new Uint8Array(6)).u16(1); // reserved, data_reference_index
                  w.bytes(new Uint8Array(16)).u16(640).u16(360);
                  w.u32(0x480000).u32(0x480000).u32(0).u16(1).bytes(new Uint8Array(32)).u16(0x18).u16(0xffff);
                  w.box('avcC', () => {
                    w.u8(1).u8(0x64).u8(0).u8(0x1f).u8(0xff).u8(0xe1);
                    w.u16(4).bytes(Uint8Array.of(0x67, 0x64, 0, 0x1f));
                    w.u8(1)
                      .u16(3)
                      .bytes(Uint8Array.of(0x68, 0xeb, 0xe3));
                  });
                });
              } else {
                w.box('mp4a', () => {
                  w.bytes(new Uint8Array(6)).u16(1);
                  w.u16(0)
                    .bytes(new Uint8Array(6))
                    .u16(2)
                    .u16(16)
                    .u32(0)
                    .u32(48_000 * 65_536);
                  w.fullBox('esds', 0, 0, () => {
                    // ES_Descriptor { ES_ID, flags, DecoderConfigDescriptor { …, DecoderSpecificInfo }, SLConfig }
                    w.u8(0x03).u8(25).u16(1).u8(0);
                    w.u8(0x04).u8(17).u8(0x40).u8(0x15).u24(0).u32(128_000).u32(128_000);
                    w.u8(0x05).u8(2).u8(0x11).u8(0x90);
                    w.u8(0x06).u8(1).u8(0x02);
                  });
                });
              }
            });
            for (const table of ['stts', 'stsc', 'stsz', 'stco']) w.fullBox(table, 0, 0, () => w.u32(0));
          });
        });
      });
    });
    w.box('mvex', () => w.fullBox('trex', 0, 0, () => w.u32(1).u32(1).u32(3000).u32(0).u32(0x1_0000)));
  });
  return w.finish();
}

const videoInit = init('video');
const audioInit = init('audio');
const videoMovie = parseInitSegment(videoInit);

function fragment(sequenceNumber: number, sizes: number[]): Uint8Array {
  const payload = rng.bytes(sizes.reduce((n, s) => n + s, 0));
  const mdatHeader = writeMediaDataHeader(payload.length);
  const moof = writeMovieFragment({
    sequenceNumber,
    trackId: 1,
    baseMediaDecodeTime: sequenceNumber * 3000,
    samples: sizes.map((size, i) => ({
      duration: 3000,
      size,
      flags: i === 0 ? 0x0200_0000 : 0x0101_0000,
      compositionOffset: i === 1 ? -3000 : 0,
    })),
    mediaDataHeaderSize: mdatHeader.length,
  });
  return concat(moof, mdatHeader, payload);
}

/** A fragment whose runs take their samples from the `trex` defaults: no per-sample table. */
function defaultedFragment(): Uint8Array {
  const w = new ByteWriter();
  w.box('moof', () => {
    w.fullBox('mfhd', 0, 0, () => w.u32(9));
    w.box('traf', () => {
      w.fullBox('tfhd', 0, 0x02_0000 | 0x10, () => w.u32(1).u32(4)); // default-base-is-moof, default size 4
      w.fullBox('trun', 0, 0x01, () => w.u32(3).i32(0)); // data offset patched below
      w.fullBox('trun', 0, 0, () => w.u32(2));
    });
  });
  const moof = w.finish();
  new DataView(moof.buffer).setInt32(moof.length - 16 - 4, moof.length + 8); // the first run's data_offset
  return concat(moof, writeMediaDataHeader(20), rng.bytes(20));
}

const fragments = [
  concat(videoInit, fragment(1, [30, 12, 7])),
  concat(ascii('\0\0\0\x10styp'), ascii('iso6cmfc'), fragment(2, [5]), fragment(3, [1, 2])),
  defaultedFragment(),
];

/** Walks every container box down from `boxes`, as the readers do (bounded depth). */
function walk(boxes: readonly Box[], depth: number): void {
  if (depth === 0) return;
  for (const box of boxes) {
    if (['moov', 'trak', 'mdia', 'minf', 'stbl', 'mvex', 'moof', 'traf', 'edts', 'dinf'].includes(box.type))
      walk(childrenOf(box), depth - 1);
  }
}

// ---------------------------------------------------------------------------------------------------

/** CHUNK_DIGEST payloads (after the frame's type and length), signed and not. */
const chunkDigests = [
  {
    index: 0,
    offset: 0,
    length: 16_384,
    last: false,
    sha256: new Uint8Array(32).fill(1),
    signature: new Uint8Array(64).fill(2),
  },
  {
    index: 70,
    offset: 9_000_000,
    length: 1,
    last: true,
    sha256: new Uint8Array(32).fill(3),
    signature: new Uint8Array(0),
  },
].map((c) => {
  const frame = encodeChunkDigestFrame(c);
  const type = readVarint(frame, 0);
  return frame.subarray(type.length + readVarint(frame, type.length).length);
});

/** FEC repair packets (session IDs of 8 and 0 bytes), and the block they repair, for the recovery target. */
const repairSources = [rng.bytes(40), rng.bytes(1), rng.bytes(25), new Uint8Array(0)];
const repairSymbols = encodeRepair(repairSources, 2);
const repairPackets = [
  ...repairSymbols.map((symbol, index) =>
    encodeRepairPacket({
      sessionId: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8),
      firstPacketNumber: 70_000,
      k: repairSources.length,
      m: 2,
      index,
      symbol,
    }),
  ),
  encodeRepairPacket({
    sessionId: new Uint8Array(0),
    firstPacketNumber: 0,
    k: 1,
    m: 1,
    index: 0,
    symbol: Uint8Array.of(0, 1, 9),
  }),
];

const deliveryDescriptions = [
  JSON.stringify({
    version: 1,
    broadcast: 'live',
    targetLatencyMs: 1500,
    order: ['multicast', 'warp-webtransport', 'warp-websocket', 'dash'],
    dash: { manifest: 'manifest.mpd' },
    multicast: { manifest: 'manifest.mpd?delivery=multicast', serviceWorker: '/player/sw.js', scope: '/' },
    warp: {
      path: '/warp/live',
      webTransport: { port: 8443, serverCertificateHashes: [{ algorithm: 'sha-256', value: 'ab'.repeat(32) }] },
    },
  }),
  JSON.stringify({
    version: 1,
    broadcast: 'b',
    targetLatencyMs: 3000,
    order: ['dash'],
    dash: { manifest: 'https://cdn.example/m.mpd' },
  }),
].map((s) => new TextEncoder().encode(s));

const moqPayloads: Uint8Array[] = [
  encodeMoqClientSetup({
    versions: [0xff0dad02, 0xff0dad01, 0xff00000e],
    parameters: new Map<bigint, bigint | Uint8Array>([
      [2n, 42069n],
      [7n, ascii('moq-lite-js')],
    ]),
  }),
  encodeMoqServerSetup({ version: 0xff0dad02, parameters: new Map() }),
  encodeMoqAnnouncePlease(''),
  encodeMoqAnnounceInit(['live', 'a/b']),
  encodeMoqAnnounce({ active: true, suffix: 'live' }),
  encodeMoqSubscribe({ id: 70_000, broadcast: 'live', track: 'video-360p', priority: 60 }),
  encodeMoqGroup({ subscribe: 3, sequence: 1234 }),
  encodeMoqSubscribe({ id: 9, broadcast: 'live', track: 'video', priority: 60, ordered: true, maxLatency: 2000 }, 3),
  encodeMoqAnnounce({ active: true, suffix: 'live', hops: 2 }, 3),
];
const moqStreams: Uint8Array[] = [
  encodeMoqStreamStart(0x20, frameMoqtMessage(moqPayloads[0]!)),
  encodeMoqStreamStart(0x1, frameMoqMessage(moqPayloads[2]!), frameMoqMessage(moqPayloads[3]!)),
  encodeMoqStreamStart(0x2, frameMoqMessage(moqPayloads[5]!), frameMoqMessage(new Uint8Array(0))),
];

const moqtPayloads: Uint8Array[] = [
  encodeMoqtSetup(
    new Map<bigint, bigint | Uint8Array>([
      [2n, 42069n],
      [7n, ascii('moq-lite-js')],
      [0x40b5an, 1n],
    ]),
  ),
  encodeMoqtSubscribe({
    requestId: 2,
    namespace: ['live'],
    track: 'video',
    priority: 195,
    groupOrder: 2,
    forward: true,
    filter: { kind: 'absolute-range', group: 3, object: 0, endGroup: 9 },
  }),
  encodeMoqtSubscribeOk({ requestId: 2, trackAlias: 2, largest: { group: 1234, object: 5 } }),
  encodeMoqtRequestOk({ requestId: 1 }),
  encodeMoqtRequestError({ requestId: 4, code: 4, reason: 'no track' }),
  encodeMoqtPublishDone({ requestId: 2, status: 2, streamCount: 0, reason: 'ended' }),
  encodeMoqtSubscribeNamespace({ requestId: 0, prefix: [], options: 1 }),
  encodeMoqtNamespaceSuffix(['live', 'a']),
  concatBytes([
    encodeMoqtSubgroupHeader({ trackAlias: 7, group: 1234, priority: 60 }),
    encodeMoqtObjectHeader(0, 3),
    ascii('abc'),
  ]),
];

export const FUZZ_TARGETS: readonly FuzzTarget[] = [
  {
    name: 'QUIC packet: decodeShortHeaderPacket + decodeFrames',
    error: WireError,
    corpus: datagrams,
    decode: (input, r) => {
      const packet = decodeShortHeaderPacket(input, {
        dcidLength: r.pick([0, 8, 20]),
        largestPacketNumber: r.bool() ? undefined : r.int(2 ** 40),
      });
      return decodeFrames(packet.payload);
    },
  },
  { name: 'QUIC frames: decodeFrames', error: WireError, corpus: quicPayloads, decode: (input) => decodeFrames(input) },
  {
    name: 'HTTP/3 frames: decodeHttp3Frames',
    error: WireError,
    corpus: http3Streams.slice(1), // request and control streams: no stream header
    decode: (input) => decodeHttp3Frames(input, { maxFramePayload: 64 }),
  },
  {
    name: 'HTTP/3 frames: Http3FrameReader, split anywhere',
    error: WireError,
    corpus: http3Streams,
    decode: (input, r) => {
      const reader = new Http3FrameReader({ uniStream: r.bool(), maxFramePayload: 64 });
      split(
        input,
        r,
        (piece) => reader.push(piece),
        () => reader.next() !== undefined,
      );
      reader.end();
    },
  },
  {
    name: 'Huffman: huffmanDecode',
    error: WireError,
    corpus: [huffmanEncode(ascii('www.example.com')), huffmanEncode(rng.bytes(30))],
    decode: (input) => huffmanDecode(input),
  },
  {
    name: 'QPACK: decodeFieldSection',
    error: WireError,
    corpus: fieldSections,
    decode: (input) => decodeFieldSection(input, { maxFieldSectionSize: 4096, maxFields: 16 }),
  },
  {
    name: 'QPACK: decodePrefixInt',
    error: WireError,
    corpus: [encodePrefixInt(1337, 5), encodePrefixInt(2 ** 40, 3), encodePrefixInt(42, 8)],
    decode: (input, r) => decodePrefixInt(input, 0, r.range(1, 8)),
  },
  {
    name: 'QUIC varints: readVarint / readBigVarint',
    error: WireError,
    corpus: [encodeVarint(37), encodeVarint(15293), encodeVarint(494878333), encodeVarint(151288809941952652n)],
    decode: (input, r) => {
      const offset = r.int(input.length + 1);
      readBigVarint(input, offset);
      return readVarint(input, offset);
    },
  },
  {
    name: 'WebTransport over WebSocket: decodeWsFrame',
    error: WireError,
    corpus: wsFrames,
    decode: (input) => decodeWsFrame(input),
  },
  {
    name: 'WebTransport capsules: CapsuleReader, split anywhere + decodeCloseSession',
    error: WireError,
    corpus: capsuleStreams,
    decode: (input, r) => {
      const reader = new CapsuleReader(r.pick([64, 16 * 1024]));
      split(
        input,
        r,
        (piece) => reader.push(piece),
        () => {
          const capsule = reader.next();
          if (capsule?.type === BigInt(CAPSULE_CLOSE_WEBTRANSPORT_SESSION)) decodeCloseSession(capsule.value);
          return capsule !== undefined;
        },
      );
      return reader.clean;
    },
  },
  {
    name: 'WebTransport signals: stream type + session ID, decodeSessionDatagram, http3CodeToWebTransport',
    error: WireError,
    corpus: webTransportSignals,
    decode: (input, r) => {
      switch (r.int(3)) {
        case 0: {
          const type = readBigVarint(input, 0);
          return readVarint(input, type.length);
        }
        case 1:
          return decodeSessionDatagram(input);
        default:
          return http3CodeToWebTransport(readBigVarint(input, 0).value);
      }
    },
  },
  {
    name: 'Warp: WarpStreamReader, split anywhere',
    error: WireError,
    corpus: warpStreams,
    decode: (input, r) => {
      const reader = new WarpStreamReader({ maxControlPayload: r.pick([64, 16 * 1024]) });
      split(
        input,
        r,
        (piece) => reader.push(piece),
        () => reader.next() !== undefined,
      );
      reader.end();
    },
  },
  {
    name: 'Warp: decodeWarpHeaders',
    error: WireError,
    corpus: warpStreams.map((s) => s.subarray(2, 2 + (s[1] ?? 0))),
    decode: (input) => decodeWarpHeaders(input),
  },
  {
    name: 'Warp: decodeWarpSelect',
    error: WireError,
    corpus: [
      encodeWarpMessage({ kind: 'select', seq: 3, track: 'video-540p' }).subarray(2),
      encodeWarpMessage({ kind: 'select', seq: 70_000, track: 'a' }).subarray(2),
    ],
    decode: (input) => decodeWarpSelect(input),
  },
  {
    name: 'MoQ: MoqStreamReader (moq-lite and draft-16 control streams, 16-bit framing), split anywhere',
    error: WireError,
    corpus: [...moqStreams, frameMoqtControl(MoqtMessage.CLIENT_SETUP, moqtPayloads[0]!)],
    decode: (input, r) => {
      const reader = new MoqStreamReader({ maxMessage: r.pick([16, 64 * 1024]) });
      let typed = false;
      const framing = r.pick(['varint', 'u16'] as const);
      split(
        input,
        r,
        (piece) => reader.push(piece),
        () => {
          if (!typed) return (typed = reader.varint() !== undefined);
          return reader.message(framing) !== undefined;
        },
      );
    },
  },
  {
    name: 'MoQ: moq-lite-02 and -03 messages and the draft-14 SETUPs',
    error: WireError,
    corpus: moqPayloads,
    // Every decoder in turn: an input is fine when one takes it, and none may throw anything but WireError.
    decode: (input) => {
      let failure: unknown;
      for (const decode of [
        decodeMoqClientSetup,
        decodeMoqServerSetup,
        decodeMoqAnnouncePlease,
        decodeMoqAnnounceInit,
        decodeMoqAnnounce,
        decodeMoqSubscribe,
        decodeMoqGroup,
        (b: Uint8Array) => decodeMoqSubscribe(b, 3),
        (b: Uint8Array) => decodeMoqAnnounce(b, 3),
        (b: Uint8Array) => decodeMoqSubscribeOk(b, 3),
        decodeMoqSubscribeUpdate,
      ] as ((b: Uint8Array) => unknown)[]) {
        try {
          return decode(input);
        } catch (error) {
          if (!(error instanceof WireError)) throw error;
          failure = error;
        }
      }
      throw failure;
    },
  },
  {
    name: 'MoQ: draft-ietf-moq-transport-16 messages and subgroup streams',
    error: WireError,
    corpus: moqtPayloads,
    decode: (input) => {
      let failure: unknown;
      for (const decode of [
        decodeMoqtSetup,
        decodeMoqtSubscribe,
        decodeMoqtSubscribeOk,
        decodeMoqtRequestOk,
        decodeMoqtRequestError,
        decodeMoqtRequestId,
        decodeMoqtPublishDone,
        decodeMoqtSubscribeNamespace,
        decodeMoqtNamespaceSuffix,
        decodeMoqtSubgroupHeader,
        decodeMoqtSubgroupStream,
      ] as ((b: Uint8Array) => unknown)[]) {
        try {
          return decode(input);
        } catch (error) {
          if (!(error instanceof WireError)) throw error;
          failure = error;
        }
      }
      throw failure;
    },
  },
  {
    name: 'structured fields: parseDictionary + parseList',
    error: WireError,
    corpus: structuredFields,
    decode: (input) => {
      // A signature field is a dictionary, which is seldom a list too: a list's WireError is let pass.
      try {
        parseList(text(input));
      } catch (error) {
        if (!(error instanceof WireError)) throw error;
      }
      return parseDictionary(text(input));
    },
  },
  {
    name: 'Alt-Svc: parseAltSvc + multicastAdvertisement',
    error: WireError,
    corpus: altSvcValues,
    decode: (input) => {
      parseAltSvc(text(input));
      return multicastAdvertisement(text(input));
    },
  },
  {
    name: 'CHUNK_DIGEST: decodeChunkDigest',
    error: WireError,
    corpus: chunkDigests,
    decode: (input) => decodeChunkDigest(input),
  },
  {
    name: 'FEC repair packet: decodeRepairPacket',
    error: WireError,
    corpus: repairPackets,
    decode: (input, r) => decodeRepairPacket(input, r.bool(0.8) ? 8 : r.int(21)),
  },
  {
    // Repair symbols off the wire, damaged, recover a block with two of its sources lost.
    name: 'FEC recovery: recoverBlock',
    error: WireError,
    corpus: repairSymbols.map((s) => s.slice()),
    decode: (input, r) => {
      const lost = r.int(repairSources.length);
      const sources = repairSources.map((s, j) =>
        j === lost || j === (lost + 1) % repairSources.length ? undefined : s,
      );
      return recoverBlock(sources, r.bool() ? [input, repairSymbols[1]] : [repairSymbols[0], input]);
    },
  },
  {
    // JSON text that does not parse is JSON.parse's business; what parses must be refused or read.
    name: 'delivery description: parseDeliveryDescription',
    error: DeliveryDescriptionError,
    corpus: deliveryDescriptions,
    decode: (input) => {
      let json: unknown;
      try {
        json = JSON.parse(text(input));
      } catch {
        return undefined;
      }
      return parseDeliveryDescription(json);
    },
  },
  {
    name: 'ISO BMFF boxes: readBoxes + childrenOf',
    error: BmffError,
    corpus: [videoInit, ...fragments],
    decode: (input) => walk(readBoxes(input), 8),
  },
  {
    name: 'ISO BMFF init segment: parseInitSegment',
    error: BmffError,
    corpus: [videoInit, audioInit],
    decode: (input) => parseInitSegment(input),
  },
  {
    name: 'ISO BMFF fragments: readFragments',
    error: BmffError,
    corpus: fragments,
    decode: (input, r) => readFragments(input, r.bool() ? videoMovie : undefined),
  },
];
