/**
 * The QUIC frames of the multicast profile (RFC 9000 §19): PADDING, PING, RESET_STREAM and STREAM.
 * The profile forbids every other type (no ACK, no flow control, no CRYPTO: nothing flows back), so
 * the decoder refuses them as `unknown-frame-type`, as nghq does.
 *
 * Decoded STREAM data is a view into the packet payload, never a copy.
 */
import { Cursor } from './bytes.js';
import { WireError } from './errors.js';
import { VARINT_MAX, varintLength, writeVarint } from './varint.js';

/** Frame type values (RFC 9000 §19, Table 3). STREAM is 0x08 | OFF | LEN | FIN. */
export const QuicFrameType = {
  PADDING: 0x00,
  PING: 0x01,
  RESET_STREAM: 0x04,
  STREAM: 0x08,
} as const;

/** STREAM type bits (RFC 9000 §19.8). */
export const STREAM_BIT_FIN = 0x01;
export const STREAM_BIT_LEN = 0x02;
export const STREAM_BIT_OFF = 0x04;

/** A run of consecutive PADDING frames (§19.1), one byte each; decoding coalesces them. */
export interface PaddingFrame {
  readonly kind: 'padding';
  readonly length: number;
}

/** §19.2 */
export interface PingFrame {
  readonly kind: 'ping';
}

/** §19.4. The error code is an application (HTTP/3) code, which GREASE makes as large as 2^62−1: a bigint. */
export interface ResetStreamFrame {
  readonly kind: 'reset-stream';
  readonly streamId: number;
  readonly errorCode: bigint;
  readonly finalSize: number;
}

/** §19.8 */
export interface StreamFrame {
  readonly kind: 'stream';
  readonly streamId: number;
  readonly offset: number;
  readonly data: Uint8Array;
  readonly fin: boolean;
}

export type QuicFrame = PaddingFrame | PingFrame | ResetStreamFrame | StreamFrame;

/**
 * Which optional STREAM fields to write, i.e. which of the 8 type variants 0x08–0x0f. Default:
 * Offset only when the offset is not 0 (§19.8: absent means 0), Length always (as nghq does; a frame
 * without Length extends to the end of the packet, so only the last frame of a packet can omit it).
 */
export interface StreamFrameLayout {
  readonly withOffset?: boolean;
  readonly withLength?: boolean;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function streamLayout(
  frame: StreamFrame,
  layout: StreamFrameLayout | undefined,
): { withOffset: boolean; withLength: boolean } {
  const withOffset = layout?.withOffset ?? frame.offset !== 0;
  if (!withOffset && frame.offset !== 0) {
    throw new WireError('invalid-argument', 0, `STREAM frame at offset ${frame.offset} needs its Offset field`);
  }
  if (frame.offset + frame.data.length > Number.MAX_SAFE_INTEGER) {
    throw new WireError('invalid-argument', 0, 'STREAM frame ends beyond 2^53-1');
  }
  return { withOffset, withLength: layout?.withLength ?? true };
}

/** The type byte a STREAM frame is written with. */
export function streamFrameType(frame: StreamFrame, layout?: StreamFrameLayout): number {
  const { withOffset, withLength } = streamLayout(frame, layout);
  return (
    QuicFrameType.STREAM |
    (withOffset ? STREAM_BIT_OFF : 0) |
    (withLength ? STREAM_BIT_LEN : 0) |
    (frame.fin ? STREAM_BIT_FIN : 0)
  );
}

/** Bytes `frame` takes on the wire. */
export function frameSize(frame: QuicFrame, layout?: StreamFrameLayout): number {
  switch (frame.kind) {
    case 'padding':
      return frame.length;
    case 'ping':
      return 1;
    case 'reset-stream':
      return 1 + varintLength(frame.streamId) + varintLength(frame.errorCode) + varintLength(frame.finalSize);
    case 'stream': {
      const { withOffset, withLength } = streamLayout(frame, layout);
      const n = frame.data.length;
      return (
        1 +
        varintLength(frame.streamId) +
        (withOffset ? varintLength(frame.offset) : 0) +
        (withLength ? varintLength(n) : 0) +
        n
      );
    }
  }
}

/** Writes `frame` at `out[offset]`; returns the offset after it. `layout` applies to STREAM frames. */
export function writeFrame(out: Uint8Array, offset: number, frame: QuicFrame, layout?: StreamFrameLayout): number {
  const size = frameSize(frame, layout);
  if (offset + size > out.length)
    throw new WireError('invalid-argument', offset, `no room for a ${size}-byte ${frame.kind} frame`);
  let at = offset;
  switch (frame.kind) {
    case 'padding':
      if (!Number.isInteger(frame.length) || frame.length < 1)
        throw new WireError('invalid-argument', offset, `padding of ${frame.length} bytes`);
      out.fill(QuicFrameType.PADDING, at, at + frame.length);
      return at + frame.length;
    case 'ping':
      out[at] = QuicFrameType.PING;
      return at + 1;
    case 'reset-stream':
      out[at++] = QuicFrameType.RESET_STREAM;
      at = writeVarint(out, at, frame.streamId);
      at = writeVarint(out, at, frame.errorCode);
      return writeVarint(out, at, frame.finalSize);
    case 'stream': {
      const type = streamFrameType(frame, layout);
      out[at++] = type;
      at = writeVarint(out, at, frame.streamId);
      if (type & STREAM_BIT_OFF) at = writeVarint(out, at, frame.offset);
      if (type & STREAM_BIT_LEN) at = writeVarint(out, at, frame.data.length);
      out.set(frame.data, at);
      return at + frame.data.length;
    }
  }
}

/**
 * A packet payload made of `frames`, in order. STREAM frames use the default layout (with Length);
 * use {@link writeFrame} to choose another.
 */
export function encodeFrames(frames: readonly QuicFrame[]): Uint8Array {
  let size = 0;
  for (const frame of frames) size += frameSize(frame);
  const out = new Uint8Array(size);
  let at = 0;
  for (const frame of frames) at = writeFrame(out, at, frame);
  return out;
}

/** Whether the varint at `at` is at most 4 bytes (below 2^30), or absent (the read then fails as it would anyway). */
function shortVarintAt(bytes: Uint8Array, at: number): boolean {
  const first = bytes[at];
  return first === undefined || first < 0xc0;
}

function readStreamFrame(cursor: Cursor, type: number): StreamFrame {
  const streamId = cursor.varint('STREAM stream ID');
  const offsetAt = cursor.pos;
  // Offset and length below 2^30, the common case: plain numbers (their sum cannot reach 2^53).
  if (!(type & STREAM_BIT_OFF) || shortVarintAt(cursor.bytes, offsetAt)) {
    const offset = type & STREAM_BIT_OFF ? cursor.varint('STREAM offset') : 0;
    if (!(type & STREAM_BIT_LEN) || shortVarintAt(cursor.bytes, cursor.pos)) {
      let length: number;
      if (type & STREAM_BIT_LEN) {
        const lengthAt = cursor.pos;
        length = cursor.varint('STREAM length');
        if (length > cursor.remaining) {
          throw new WireError(
            'frame-encoding',
            lengthAt,
            `STREAM length ${length}, ${cursor.remaining} bytes left in the packet`,
          );
        }
      } else {
        length = cursor.remaining;
      }
      const data = cursor.take(length, 'STREAM data');
      return { kind: 'stream', streamId, offset, data, fin: (type & STREAM_BIT_FIN) !== 0 };
    }
    cursor.pos = offsetAt;
  }
  return readStreamFrameWide(cursor, type, streamId, offsetAt);
}

/** A STREAM frame whose offset or length takes 8 bytes: read as bigints, checked against 2^62−1 and 2^53−1. */
function readStreamFrameWide(cursor: Cursor, type: number, streamId: number, offsetAt: number): StreamFrame {
  const offset = type & STREAM_BIT_OFF ? cursor.bigVarint('STREAM offset') : 0n;
  let length: number;
  if (type & STREAM_BIT_LEN) {
    const lengthAt = cursor.pos;
    const announced = cursor.bigVarint('STREAM length');
    if (announced > BigInt(cursor.remaining)) {
      throw new WireError(
        'frame-encoding',
        lengthAt,
        `STREAM length ${announced}, ${cursor.remaining} bytes left in the packet`,
      );
    }
    length = Number(announced);
  } else {
    length = cursor.remaining; // §19.8: without LEN, the data extends to the end of the packet
  }
  // §19.8: offset + length cannot exceed 2^62−1 (FRAME_ENCODING_ERROR).
  if (offset + BigInt(length) > VARINT_MAX) {
    throw new WireError('frame-encoding', offsetAt, `STREAM data ends at ${offset + BigInt(length)}, beyond 2^62-1`);
  }
  if (offset + BigInt(length) > MAX_SAFE) {
    throw new WireError('unsafe-integer', offsetAt, `STREAM data ends at ${offset + BigInt(length)}, beyond 2^53-1`);
  }
  const data = cursor.take(length, 'STREAM data');
  return { kind: 'stream', streamId, offset: Number(offset), data, fin: (type & STREAM_BIT_FIN) !== 0 };
}

/** Reads the frame at the cursor. */
function readFrame(cursor: Cursor): QuicFrame {
  const start = cursor.pos;
  const first = cursor.peek('frame type');
  // RFC 9000 §12.4: a frame type MUST use the shortest encoding; every type of the profile is one byte.
  if (first > 0x3f) {
    const type = cursor.bigVarint('frame type');
    if (type <= 0x3fn)
      throw new WireError('frame-encoding', start, `frame type 0x${type.toString(16)} not on its shortest encoding`);
    throw new WireError(
      'unknown-frame-type',
      start,
      `frame type 0x${type.toString(16)} is not in the multicast profile`,
    );
  }
  cursor.pos++;
  if (first === QuicFrameType.PADDING) {
    while (cursor.pos < cursor.end && cursor.bytes[cursor.pos] === QuicFrameType.PADDING) cursor.pos++;
    return { kind: 'padding', length: cursor.pos - start };
  }
  if (first === QuicFrameType.PING) return { kind: 'ping' };
  if (first === QuicFrameType.RESET_STREAM) {
    return {
      kind: 'reset-stream',
      streamId: cursor.varint('RESET_STREAM stream ID'),
      errorCode: cursor.bigVarint('RESET_STREAM error code'),
      finalSize: cursor.varint('RESET_STREAM final size'),
    };
  }
  if ((first & 0xf8) === QuicFrameType.STREAM) return readStreamFrame(cursor, first);
  throw new WireError(
    'unknown-frame-type',
    start,
    `frame type 0x${first.toString(16)} is not in the multicast profile`,
  );
}

/** Decodes the frame at `payload[offset]`; `end` is the offset after it. */
export function decodeFrame(payload: Uint8Array, offset = 0): { frame: QuicFrame; end: number } {
  const cursor = new Cursor(payload, offset);
  if (cursor.remaining <= 0) throw new WireError('truncated', offset, 'no frame left');
  const frame = readFrame(cursor);
  return { frame, end: cursor.pos };
}

/** Decodes a whole packet payload into its frames (at least one, RFC 9000 §12.4). */
export function decodeFrames(payload: Uint8Array): QuicFrame[] {
  if (payload.length === 0) throw new WireError('empty-payload', 0, 'packet payload without frames (RFC 9000 §12.4)');
  const cursor = new Cursor(payload);
  const frames: QuicFrame[] = [];
  while (cursor.remaining > 0) frames.push(readFrame(cursor));
  return frames;
}
