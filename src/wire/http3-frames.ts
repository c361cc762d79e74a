/**
 * HTTP/3 frames (RFC 9114 §7) and unidirectional stream headers (§6.2), with a reader for stream
 * bytes that arrive in pieces, as QUIC STREAM frames deliver them.
 *
 * ```
 * HTTP/3 Frame { Type (i), Length (i), Frame Payload (..) }                      §7.1
 * Push Stream Header { Stream Type (i) = 0x01, Push ID (i) }                     §6.2.2
 * ```
 * Which frame may appear on which stream (§7.2, e.g. no DATA on the control stream) is the
 * connection's business, not the codec's.
 */
import { Cursor } from './bytes.js';
import { ChunkQueue } from './chunk-queue.js';
import { WireError } from './errors.js';
import { varintLength, writeVarint } from './varint.js';

/** Frame types (RFC 9114 §11.2.1). */
export const Http3FrameType = {
  DATA: 0x00,
  HEADERS: 0x01,
  CANCEL_PUSH: 0x03,
  SETTINGS: 0x04,
  PUSH_PROMISE: 0x05,
  GOAWAY: 0x07,
  MAX_PUSH_ID: 0x0d,
} as const;

/** Unidirectional stream types (RFC 9114 §6.2, RFC 9204 §4.2). */
export const UniStreamType = {
  CONTROL: 0x00,
  PUSH: 0x01,
  QPACK_ENCODER: 0x02,
  QPACK_DECODER: 0x03,
} as const;

/** RFC 9114 §7.2.4.1. */
export const SETTINGS_MAX_FIELD_SECTION_SIZE = 0x06n;

/** §7.2.8: frame types of HTTP/2 without an HTTP/3 counterpart; receipt is H3_FRAME_UNEXPECTED. */
const HTTP2_ONLY_FRAME_TYPES: ReadonlySet<bigint> = new Set([0x02n, 0x06n, 0x08n, 0x09n]);
/** §7.2.4.1: setting identifiers of HTTP/2 without an HTTP/3 counterpart; receipt is H3_SETTINGS_ERROR. */
const HTTP2_ONLY_SETTINGS: ReadonlySet<bigint> = new Set([0x00n, 0x02n, 0x03n, 0x04n, 0x05n]);

/**
 * True for the reserved values `0x1f * N + 0x21` (§7.2.8 frame types, §6.2.3 stream types, §7.2.4.1
 * settings, §8.1 error codes), which exist to be ignored ("GREASE").
 */
export function isReservedValue(value: number | bigint): boolean {
  const v = BigInt(value);
  return v >= 0x21n && (v - 0x21n) % 0x1fn === 0n;
}

export interface DataFrame {
  readonly kind: 'data';
  readonly data: Uint8Array;
}
export interface HeadersFrame {
  readonly kind: 'headers';
  /** A QPACK encoded field section (`decodeFieldSection`). */
  readonly fieldSection: Uint8Array;
}
export interface CancelPushFrame {
  readonly kind: 'cancel-push';
  readonly pushId: number;
}
/** Identifiers and values span the whole varint range (GREASE settings are large): bigints, in wire order. */
export interface SettingsFrame {
  readonly kind: 'settings';
  readonly settings: ReadonlyMap<bigint, bigint>;
}
export interface PushPromiseFrame {
  readonly kind: 'push-promise';
  readonly pushId: number;
  readonly fieldSection: Uint8Array;
}
/** A stream ID (server to client) or push ID (client to server), §7.2.6. */
export interface GoawayFrame {
  readonly kind: 'goaway';
  readonly id: number;
}
export interface MaxPushIdFrame {
  readonly kind: 'max-push-id';
  readonly pushId: number;
}

export type Http3Frame =
  | DataFrame
  | HeadersFrame
  | CancelPushFrame
  | SettingsFrame
  | PushPromiseFrame
  | GoawayFrame
  | MaxPushIdFrame;

/** The header of a unidirectional stream. Stream types are varints of any size (GREASE): a bigint. */
export interface UniStreamHeader {
  readonly kind: 'stream-header';
  readonly streamType: bigint;
  /** The push this stream fulfils, for a push stream (type 0x01). */
  readonly pushId?: number;
}

/**
 * A piece of a DATA frame's payload, as it arrived: a DATA frame spanning several packets comes out
 * as several pieces, the last with `frameEnd`. Bodies are never buffered by the reader.
 */
export interface DataChunk {
  readonly kind: 'data';
  readonly data: Uint8Array;
  readonly frameEnd: boolean;
}

/** What {@link Http3FrameReader.next} yields. */
export type Http3StreamEvent = UniStreamHeader | DataChunk | Exclude<Http3Frame, DataFrame>;

// ---------------------------------------------------------------------------------------------------
// Encoding

function frameType(frame: Http3Frame): number {
  switch (frame.kind) {
    case 'data':
      return Http3FrameType.DATA;
    case 'headers':
      return Http3FrameType.HEADERS;
    case 'cancel-push':
      return Http3FrameType.CANCEL_PUSH;
    case 'settings':
      return Http3FrameType.SETTINGS;
    case 'push-promise':
      return Http3FrameType.PUSH_PROMISE;
    case 'goaway':
      return Http3FrameType.GOAWAY;
    case 'max-push-id':
      return Http3FrameType.MAX_PUSH_ID;
  }
}

function payloadLength(frame: Http3Frame): number {
  switch (frame.kind) {
    case 'data':
      return frame.data.length;
    case 'headers':
      return frame.fieldSection.length;
    case 'cancel-push':
    case 'max-push-id':
      return varintLength(frame.pushId);
    case 'goaway':
      return varintLength(frame.id);
    case 'push-promise':
      return varintLength(frame.pushId) + frame.fieldSection.length;
    case 'settings': {
      let n = 0;
      for (const [id, value] of frame.settings) n += varintLength(id) + varintLength(value);
      return n;
    }
  }
}

/**
 * The Type and Length of a frame (§7.1), for a sender that writes the payload itself, e.g. a DATA
 * frame whose body follows in pieces, or a reserved frame type.
 */
export function encodeHttp3FrameHeader(type: number | bigint, payloadLength: number): Uint8Array {
  const out = new Uint8Array(varintLength(type) + varintLength(payloadLength));
  writeVarint(out, writeVarint(out, 0, type), payloadLength);
  return out;
}

/** One whole frame. Setting identifiers reserved from HTTP/2 are refused (`settings`). */
export function encodeHttp3Frame(frame: Http3Frame): Uint8Array {
  const length = payloadLength(frame);
  const type = frameType(frame);
  const out = new Uint8Array(varintLength(type) + varintLength(length) + length);
  let at = writeVarint(out, writeVarint(out, 0, type), length);
  switch (frame.kind) {
    case 'data':
      out.set(frame.data, at);
      break;
    case 'headers':
      out.set(frame.fieldSection, at);
      break;
    case 'cancel-push':
    case 'max-push-id':
      writeVarint(out, at, frame.pushId);
      break;
    case 'goaway':
      writeVarint(out, at, frame.id);
      break;
    case 'push-promise':
      out.set(frame.fieldSection, writeVarint(out, at, frame.pushId));
      break;
    case 'settings':
      for (const [id, value] of frame.settings) {
        if (HTTP2_ONLY_SETTINGS.has(id))
          throw new WireError('settings', at, `setting 0x${id.toString(16)} is reserved from HTTP/2`);
        at = writeVarint(out, writeVarint(out, at, id), value);
      }
      break;
  }
  return out;
}

/** A unidirectional stream header (§6.2): the type, then the push ID for a push stream. */
export function encodeUniStreamHeader(streamType: number | bigint, pushId?: number): Uint8Array {
  const isPush = BigInt(streamType) === BigInt(UniStreamType.PUSH);
  if (isPush !== (pushId !== undefined)) {
    throw new WireError(
      'invalid-argument',
      0,
      isPush ? 'a push stream header carries a push ID' : 'only a push stream header carries a push ID',
    );
  }
  const out = new Uint8Array(varintLength(streamType) + (pushId === undefined ? 0 : varintLength(pushId)));
  const at = writeVarint(out, 0, streamType);
  if (pushId !== undefined) writeVarint(out, at, pushId);
  return out;
}

/** §6.2.2: `01` then the push ID. */
export function encodePushStreamHeader(pushId: number): Uint8Array {
  return encodeUniStreamHeader(UniStreamType.PUSH, pushId);
}

// ---------------------------------------------------------------------------------------------------
// Decoding

/**
 * Decodes a complete frame payload. `at` is its offset in the stream, for errors. §7.1: a payload
 * with bytes after its fields, or that ends inside them, is H3_FRAME_ERROR (`frame-encoding`).
 */
function decodePayload(type: number, payload: Uint8Array, at: number): Exclude<Http3Frame, DataFrame> {
  const cursor = new Cursor(payload);
  const exactlyOneVarint = (what: string): number => {
    const value = cursor.varint(what);
    if (cursor.remaining !== 0)
      throw new WireError('frame-encoding', cursor.pos, `${cursor.remaining} bytes after the ${what}`);
    return value;
  };
  try {
    switch (type) {
      case Http3FrameType.HEADERS:
        return { kind: 'headers', fieldSection: payload };
      case Http3FrameType.PUSH_PROMISE: {
        const pushId = cursor.varint('push ID');
        return { kind: 'push-promise', pushId, fieldSection: payload.subarray(cursor.pos) };
      }
      case Http3FrameType.CANCEL_PUSH:
        return { kind: 'cancel-push', pushId: exactlyOneVarint('push ID') };
      case Http3FrameType.MAX_PUSH_ID:
        return { kind: 'max-push-id', pushId: exactlyOneVarint('push ID') };
      case Http3FrameType.GOAWAY:
        return { kind: 'goaway', id: exactlyOneVarint('stream ID / push ID') };
      case Http3FrameType.SETTINGS: {
        const settings = new Map<bigint, bigint>();
        while (cursor.remaining > 0) {
          const idAt = cursor.pos;
          const id = cursor.bigVarint('setting identifier');
          const value = cursor.bigVarint('setting value');
          if (HTTP2_ONLY_SETTINGS.has(id))
            throw new WireError('settings', idAt, `setting 0x${id.toString(16)} is reserved from HTTP/2`);
          if (settings.has(id)) throw new WireError('settings', idAt, `setting 0x${id.toString(16)} appears twice`);
          settings.set(id, value);
        }
        return { kind: 'settings', settings };
      }
      default:
        throw new Error(`unreachable: frame type ${type} is not buffered`);
    }
  } catch (error) {
    if (!(error instanceof WireError)) throw error;
    const code = error.code === 'truncated' ? 'frame-encoding' : error.code;
    throw new WireError(code, at + error.offset, error.detail);
  }
}

const BUFFERED_TYPES: ReadonlySet<number> = new Set([
  Http3FrameType.HEADERS,
  Http3FrameType.PUSH_PROMISE,
  Http3FrameType.CANCEL_PUSH,
  Http3FrameType.SETTINGS,
  Http3FrameType.GOAWAY,
  Http3FrameType.MAX_PUSH_ID,
]);

export interface Http3FrameReaderOptions {
  /** Read a unidirectional stream header (§6.2) before the frames. Default false: a request stream, like stream 0. */
  readonly uniStream?: boolean;
  /**
   * Largest payload of a frame the reader buffers whole (HEADERS, PUSH_PROMISE and the control
   * frames); beyond, `frame-too-large`. DATA passes through in pieces and unknown types are skipped
   * as they arrive, so neither is bounded. Default 64 KiB + 16, a default-sized QPACK section and a push ID.
   */
  readonly maxFramePayload?: number;
}

export const DEFAULT_MAX_FRAME_PAYLOAD = 64 * 1024 + 16;

type ReaderState = 'stream-header' | 'frame-header' | 'data' | 'payload' | 'skip' | 'discard';

/**
 * Turns the bytes of one stream, pushed in pieces of any size, into HTTP/3 events:
 *
 * ```ts
 * reader.push(chunk);
 * for (let event; (event = reader.next()); ) handle(event);
 * // …when the stream ends cleanly:
 * reader.end();
 * ```
 * `next()` returns `undefined` when it needs more bytes. DATA payload pieces are views into the
 * pushed chunks; a buffered frame is a view too when it lies within one chunk, else it is copied once.
 * Unknown and reserved frame types are skipped (§9); after a unidirectional stream header of a type
 * other than control or push, the rest of the stream is discarded (§6.2).
 */
export class Http3FrameReader {
  private readonly queue = new ChunkQueue();
  private state: ReaderState;
  private frameType = 0n;
  private frameStart = 0;
  private remaining = 0;
  private readonly maxFramePayload: number;
  /** The error that ended the stream: every later call throws it again. */
  private failure: WireError | undefined;

  constructor(options: Http3FrameReaderOptions = {}) {
    this.state = options.uniStream ? 'stream-header' : 'frame-header';
    this.maxFramePayload = options.maxFramePayload ?? DEFAULT_MAX_FRAME_PAYLOAD;
  }

  /** True once the stream header named a type whose bytes are not frames (§6.2: discarded). */
  get discarding(): boolean {
    return this.state === 'discard';
  }

  /** Bytes pushed and not yet consumed. */
  get bufferedBytes(): number {
    return this.queue.length;
  }

  push(chunk: Uint8Array): void {
    this.queue.push(chunk);
    if (this.state === 'discard') this.queue.drop();
  }

  /** The next event, or `undefined` until more bytes are pushed. After a WireError, throws it again. */
  next(): Http3StreamEvent | undefined {
    if (this.failure) throw this.failure;
    try {
      return this.step();
    } catch (error) {
      if (error instanceof WireError) this.failure = error;
      throw error;
    }
  }

  private step(): Http3StreamEvent | undefined {
    for (;;) {
      switch (this.state) {
        case 'stream-header':
          return this.readStreamHeader();
        case 'frame-header': {
          const event = this.readFrameHeader();
          if (event === null) continue;
          return event;
        }
        case 'data': {
          if (this.queue.length === 0) return undefined;
          const data = this.queue.takePiece(this.remaining);
          this.remaining -= data.length;
          const frameEnd = this.remaining === 0;
          if (frameEnd) this.state = 'frame-header';
          return { kind: 'data', data, frameEnd };
        }
        case 'skip': {
          this.remaining -= this.queue.drop(this.remaining);
          if (this.remaining > 0) return undefined;
          this.state = 'frame-header';
          continue;
        }
        case 'payload': {
          if (this.queue.length < this.remaining) return undefined;
          const payloadAt = this.queue.offset;
          const payload = this.queue.take(this.remaining);
          this.state = 'frame-header';
          return decodePayload(Number(this.frameType), payload, payloadAt);
        }
        case 'discard':
          this.queue.drop();
          return undefined;
      }
    }
  }

  /**
   * The stream ended cleanly (a FIN). §7.1: ending inside a frame is H3_FRAME_ERROR (`truncated`);
   * §6.2: ending before the unidirectional stream header is tolerated.
   */
  end(): void {
    if (this.failure) throw this.failure;
    switch (this.state) {
      case 'stream-header':
      case 'discard':
        return;
      case 'frame-header':
        if (this.queue.length === 0) return;
        throw new WireError(
          'truncated',
          this.queue.offset,
          `stream ends inside a frame header (${this.queue.length} bytes)`,
        );
      default:
        throw new WireError(
          'truncated',
          this.frameStart,
          `stream ends inside a frame of type 0x${this.frameType.toString(16)}`,
        );
    }
  }

  private readStreamHeader(): UniStreamHeader | undefined {
    const head = this.queue.peekVarints(1);
    if (!head) return undefined;
    const cursor = new Cursor(head);
    const streamType = cursor.bigVarint('stream type');
    let pushId: number | undefined;
    if (streamType === BigInt(UniStreamType.PUSH)) {
      if (!this.queue.peekVarints(2)) return undefined;
      pushId = this.withStreamOffsets(() => cursor.varint('push ID'));
    }
    this.queue.skip(cursor.pos);
    const isFrames = streamType === BigInt(UniStreamType.CONTROL) || streamType === BigInt(UniStreamType.PUSH);
    this.state = isFrames ? 'frame-header' : 'discard';
    if (!isFrames) this.queue.drop();
    return pushId === undefined ? { kind: 'stream-header', streamType } : { kind: 'stream-header', streamType, pushId };
  }

  /** Reads a frame header; `undefined`: needs bytes; `null`: state changed without an event. */
  private readFrameHeader(): Http3StreamEvent | undefined | null {
    const head = this.queue.peekVarints(2);
    if (!head) return undefined;
    const cursor = new Cursor(head);
    const type = cursor.bigVarint('frame type');
    const length = cursor.bigVarint('frame length');
    const start = this.queue.offset;
    if (HTTP2_ONLY_FRAME_TYPES.has(type)) {
      throw new WireError(
        'frame-unexpected',
        start,
        `frame type 0x${type.toString(16)} is reserved from HTTP/2 (RFC 9114 §7.2.8)`,
      );
    }
    const known = type <= 0xffn ? Number(type) : -1;
    const buffered = BUFFERED_TYPES.has(known);
    if (length > BigInt(buffered ? this.maxFramePayload : Number.MAX_SAFE_INTEGER)) {
      throw new WireError('frame-too-large', start, `frame type 0x${type.toString(16)} of ${length} bytes`);
    }
    this.queue.skip(cursor.pos);
    this.frameStart = start;
    this.frameType = type;
    this.remaining = Number(length);
    if (known === Http3FrameType.DATA) {
      this.state = 'data';
      if (this.remaining === 0) {
        this.state = 'frame-header';
        return { kind: 'data', data: new Uint8Array(0), frameEnd: true };
      }
      return null;
    }
    this.state = buffered ? 'payload' : 'skip'; // §9: unknown and reserved types are ignored
    return null;
  }

  /** Runs a read on the peeked header bytes, reporting errors at their offset in the stream. */
  private withStreamOffsets<T>(read: () => T): T {
    try {
      return read();
    } catch (error) {
      if (error instanceof WireError) throw new WireError(error.code, this.queue.offset + error.offset, error.detail);
      throw error;
    }
  }
}

/** Decodes a complete stream (or a complete run of frames): the events of {@link Http3FrameReader}, DATA whole. */
export function decodeHttp3Frames(
  bytes: Uint8Array,
  options: Omit<Http3FrameReaderOptions, 'uniStream'> = {},
): Http3Frame[] {
  const reader = new Http3FrameReader(options);
  reader.push(bytes);
  const frames: Http3Frame[] = [];
  for (let event = reader.next(); event !== undefined; event = reader.next()) {
    if (event.kind === 'data') frames.push({ kind: 'data', data: event.data });
    else if (event.kind !== 'stream-header') frames.push(event);
  }
  reader.end();
  return frames;
}
