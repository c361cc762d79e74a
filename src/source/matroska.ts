/**
 * A live Matroska writer: the header (EBML, a Segment and Clusters of unknown size, so nothing is
 * written back), the tracks, then SimpleBlocks as frames come. It carries what a MoQ publisher sends
 * (H.264, VP8, VP9, Opus, AAC) to ffmpeg's standard input, as FLV does for RTMP: Matroska because ffmpeg
 * reads every one of those codecs from it (FLV has no Opus in ffmpeg 5).
 */

export interface MatroskaTrack {
  kind: 'video' | 'audio';
  /** Matroska codec ID: V_MPEG4/ISO/AVC, V_VP8, V_VP9, A_OPUS, A_AAC. */
  codecId: string;
  codecPrivate?: Uint8Array;
  width?: number;
  height?: number;
  sampleRate?: number;
  channels?: number;
}

const UNKNOWN_SIZE = Uint8Array.of(0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);

/** An EBML element ID is written as is (its length marker is part of it). */
function id(value: number): Uint8Array {
  const bytes: number[] = [];
  for (let v = value; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Uint8Array.from(bytes);
}

/** An element's data size, as the shortest EBML variable-length integer (up to 2^53). */
function size(n: number): Uint8Array {
  for (let len = 1; len <= 8; len++) {
    // All ones is reserved (unknown size).
    if (n < 2 ** (7 * len) - 1) {
      const out = new Uint8Array(len);
      let v = n;
      for (let i = len - 1; i >= 0; i--) {
        out[i] = v & 0xff;
        v = Math.floor(v / 256);
      }
      out[0]! |= 1 << (8 - len);
      return out;
    }
  }
  throw new RangeError(`element of ${n} bytes`);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function element(elementId: number, ...data: Uint8Array[]): Uint8Array {
  const body = concat(data);
  return concat([id(elementId), size(body.length), body]);
}

function uint(elementId: number, value: number): Uint8Array {
  const bytes: number[] = [];
  for (let v = value; v > 0 || bytes.length === 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return element(elementId, Uint8Array.from(bytes));
}

function float(elementId: number, value: number): Uint8Array {
  const data = new Uint8Array(8);
  new DataView(data.buffer).setFloat64(0, value);
  return element(elementId, data);
}

function text(elementId: number, value: string): Uint8Array {
  return element(elementId, new TextEncoder().encode(value));
}

const ID = {
  EBML: 0x1a45dfa3,
  EBMLVersion: 0x4286,
  EBMLReadVersion: 0x42f7,
  EBMLMaxIDLength: 0x42f2,
  EBMLMaxSizeLength: 0x42f3,
  DocType: 0x4282,
  DocTypeVersion: 0x4287,
  DocTypeReadVersion: 0x4285,
  Segment: 0x18538067,
  Info: 0x1549a966,
  TimestampScale: 0x2ad7b1,
  MuxingApp: 0x4d80,
  WritingApp: 0x5741,
  Tracks: 0x1654ae6b,
  TrackEntry: 0xae,
  TrackNumber: 0xd7,
  TrackUID: 0x73c5,
  TrackType: 0x83,
  FlagLacing: 0x9c,
  CodecID: 0x86,
  CodecPrivate: 0x63a2,
  Video: 0xe0,
  PixelWidth: 0xb0,
  PixelHeight: 0xba,
  Audio: 0xe1,
  SamplingFrequency: 0xb5,
  Channels: 0x9f,
  Cluster: 0x1f43b675,
  Timestamp: 0xe7,
  SimpleBlock: 0xa3,
} as const;

/** The header: EBML, an unknown-size Segment, Info (millisecond timestamps) and the tracks, numbered from 1. */
export function matroskaHeader(tracks: readonly MatroskaTrack[]): Uint8Array {
  const ebml = element(
    ID.EBML,
    uint(ID.EBMLVersion, 1),
    uint(ID.EBMLReadVersion, 1),
    uint(ID.EBMLMaxIDLength, 4),
    uint(ID.EBMLMaxSizeLength, 8),
    text(ID.DocType, 'matroska'),
    uint(ID.DocTypeVersion, 4),
    uint(ID.DocTypeReadVersion, 2),
  );
  const info = element(
    ID.Info,
    uint(ID.TimestampScale, 1_000_000),
    text(ID.MuxingApp, 'pushcast'),
    text(ID.WritingApp, 'pushcast'),
  );
  const entries = tracks.map((t, i) =>
    element(
      ID.TrackEntry,
      uint(ID.TrackNumber, i + 1),
      uint(ID.TrackUID, i + 1),
      uint(ID.TrackType, t.kind === 'video' ? 1 : 2),
      uint(ID.FlagLacing, 0),
      text(ID.CodecID, t.codecId),
      ...(t.codecPrivate ? [element(ID.CodecPrivate, t.codecPrivate)] : []),
      t.kind === 'video'
        ? element(ID.Video, uint(ID.PixelWidth, t.width ?? 0), uint(ID.PixelHeight, t.height ?? 0))
        : element(ID.Audio, float(ID.SamplingFrequency, t.sampleRate ?? 48_000), uint(ID.Channels, t.channels ?? 2)),
    ),
  );
  return concat([ebml, id(ID.Segment), UNKNOWN_SIZE, info, element(ID.Tracks, ...entries)]);
}

/** The start of an unknown-size Cluster at `timestampMs`. */
export function matroskaCluster(timestampMs: number): Uint8Array {
  return concat([id(ID.Cluster), UNKNOWN_SIZE, uint(ID.Timestamp, timestampMs)]);
}

/** A SimpleBlock of track `track` (1-based, < 127) at `relativeMs` from its Cluster (a signed 16-bit). */
export function matroskaBlock(track: number, relativeMs: number, keyframe: boolean, data: Uint8Array): Uint8Array {
  if (track < 1 || track > 126) throw new RangeError(`track ${track}`);
  if (relativeMs < -32768 || relativeMs > 32767) throw new RangeError(`block ${relativeMs} ms from its cluster`);
  const head = new Uint8Array(4);
  head[0] = 0x80 | track;
  new DataView(head.buffer).setInt16(1, relativeMs);
  head[3] = keyframe ? 0x80 : 0;
  return concat([id(ID.SimpleBlock), size(head.length + data.length), head, data]);
}

/** NAL units of an H.264 Annex B access unit (start codes 00 00 01 or 00 00 00 01), without their start codes. */
export function annexBUnits(data: Uint8Array): Uint8Array[] {
  const units: Uint8Array[] = [];
  let start = -1;
  let i = 0;
  while (i + 2 < data.length) {
    if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
      if (start >= 0) {
        let end = i;
        while (end > start && data[end - 1] === 0) end--;
        units.push(data.subarray(start, end));
      }
      i += 3;
      start = i;
    } else i++;
  }
  if (start >= 0 && start < data.length) units.push(data.subarray(start));
  return units;
}

/** An Annex B access unit as AVC samples: each NAL unit behind its 4-byte length. */
export function annexBToAvcc(data: Uint8Array): Uint8Array {
  const units = annexBUnits(data);
  if (units.length === 0) return data;
  const out = new Uint8Array(units.reduce((n, u) => n + 4 + u.length, 0));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const u of units) {
    view.setUint32(at, u.length);
    out.set(u, at + 4);
    at += 4 + u.length;
  }
  return out;
}

/** The AVCDecoderConfigurationRecord (ISO 14496-15) of the SPS and PPS in an Annex B key frame, if both are there. */
export function avcConfigFromAnnexB(data: Uint8Array): Uint8Array | undefined {
  const units = annexBUnits(data);
  const sps = units.filter((u) => (u[0]! & 0x1f) === 7);
  const pps = units.filter((u) => (u[0]! & 0x1f) === 8);
  const first = sps[0];
  if (!first || first.length < 4 || pps.length === 0) return undefined;
  const parts: Uint8Array[] = [Uint8Array.of(1, first[1]!, first[2]!, first[3]!, 0xff, 0xe0 | sps.length)];
  for (const s of sps) parts.push(Uint8Array.of(s.length >> 8, s.length & 0xff), s);
  parts.push(Uint8Array.of(pps.length));
  for (const p of pps) parts.push(Uint8Array.of(p.length >> 8, p.length & 0xff), p);
  return concat(parts);
}

/** Opus's identification header (RFC 7845 §5.1), Matroska's CodecPrivate for A_OPUS. */
export function opusHead(channels: number, sampleRate: number): Uint8Array {
  const out = new Uint8Array(19);
  out.set(new TextEncoder().encode('OpusHead'));
  const view = new DataView(out.buffer);
  out[8] = 1;
  out[9] = channels;
  view.setUint16(10, 312, true); // pre-skip: libopus's usual 6.5 ms at 48 kHz
  view.setUint32(12, sampleRate, true);
  return out;
}
