/**
 * moq-lite's framing (draft-lcurley-moq-lite, as `@moq/net` implements it; docs/moq.md): a stream starts
 * with a type varint, then carries messages of `Size (i)` + payload; the compatibility SETUP messages
 * use draft-ietf-moq-transport-14's framing, a 16-bit length. Strings are `Length (i)` + UTF-8.
 *
 * Pure, isomorphic; decoders throw only WireError.
 */
import { ChunkQueue } from '../chunk-queue.js';
import { type Cursor, concatBytes } from '../bytes.js';
import { WireError } from '../errors.js';
import { encodeVarint, readVarint, varintLength, writeVarint } from '../varint.js';

/** The moq-lite drafts pushcast speaks: 2 (through the compatibility SETUP) and 3 (by WebTransport protocol). */
export type MoqLiteDraft = 2 | 3;

/** The WebTransport protocol of moq-lite-03 (`@moq/net` `Lite.ALPN_03`): no SETUP, the version is the protocol. */
export const MOQ_LITE_03_PROTOCOL = 'moq-lite-03';

/** moq-lite version numbers carried in the compatibility SETUP. */
export const MoqLiteVersion = { LITE_01: 0xff0dad01, LITE_02: 0xff0dad02 } as const;
/** draft-ietf-moq-transport-14's version number. */
export const MOQT_DRAFT_14 = 0xff00000e;

/** The type varint that opens a bidirectional stream (moq-lite `StreamId`). */
export const MoqLiteStream = {
  SESSION: 0x0,
  ANNOUNCE: 0x1,
  SUBSCRIBE: 0x2,
  /** The compatibility handshake: a draft-14 CLIENT_SETUP follows. */
  CLIENT_COMPAT: 0x20,
  /** The server's answer on the same stream: a draft-14 SERVER_SETUP follows. */
  SERVER_COMPAT: 0x21,
} as const;

/** The type varint that opens a unidirectional stream (moq-lite `DataType`). */
export const MoqLiteData = { GROUP: 0x0 } as const;

/** Longest string (path, track name) a decoder takes. */
export const MAX_MOQ_STRING = 1024;

const encoder = new TextEncoder();

export function writeMoqString(parts: Uint8Array[], value: string): void {
  const bytes = encoder.encode(value);
  if (bytes.length > MAX_MOQ_STRING)
    throw new WireError('invalid-argument', 0, `a string of ${bytes.length} bytes (at most ${MAX_MOQ_STRING})`);
  parts.push(encodeVarint(bytes.length), bytes);
}

export function readMoqString(c: Cursor, what: string): string {
  const length = c.varint(`${what} length`);
  if (length > MAX_MOQ_STRING)
    throw new WireError('frame-encoding', c.pos, `${what} of ${length} bytes (at most ${MAX_MOQ_STRING})`);
  const at = c.pos;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(c.take(length, what));
  } catch (error) {
    if (error instanceof WireError) throw error;
    throw new WireError('frame-encoding', at, `${what} is not UTF-8`);
  }
}

/** A payload with its moq-lite size prefix. */
export function frameMoqMessage(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(varintLength(payload.length) + payload.length);
  out.set(payload, writeVarint(out, 0, payload.length));
  return out;
}

/** A payload with draft-14's 16-bit length prefix. */
export function frameMoqtMessage(payload: Uint8Array): Uint8Array {
  if (payload.length > 0xffff) throw new WireError('invalid-argument', 0, `a message of ${payload.length} bytes`);
  const out = new Uint8Array(2 + payload.length);
  out[0] = payload.length >> 8;
  out[1] = payload.length & 0xff;
  out.set(payload, 2);
  return out;
}

/** The stream type varint, then the messages. */
export function encodeMoqStreamStart(type: number, ...messages: Uint8Array[]): Uint8Array {
  return concatBytes([encodeVarint(type), ...messages]);
}

/** Throws unless the cursor consumed its whole input. */
export function expectEnd(c: Cursor, what: string): void {
  if (c.remaining > 0) throw new WireError('frame-encoding', c.pos, `${c.remaining} bytes after the ${what} fields`);
}

export interface MoqStreamReaderOptions {
  /** Largest message payload; beyond, `frame-too-large`. Default 64 KiB. */
  maxMessage?: number;
}

/**
 * Reads a moq-lite control stream from chunks of any size: its type varint, then whole messages.
 * `undefined` means more bytes are needed.
 */
export class MoqStreamReader {
  private readonly queue = new ChunkQueue();
  private readonly max: number;

  constructor(o: MoqStreamReaderOptions = {}) {
    this.max = o.maxMessage ?? 64 * 1024;
  }

  push(chunk: Uint8Array): void {
    this.queue.push(chunk);
  }

  /** Bytes received and not yet read. */
  get buffered(): number {
    return this.queue.length;
  }

  /** A varint (the stream type), once it is all there. */
  varint(): number | undefined {
    const head = this.queue.peekVarints(1);
    if (!head) return undefined;
    const at = this.queue.offset;
    let v: { value: number; length: number };
    try {
      v = readVarint(head, 0);
    } catch (error) {
      if (error instanceof WireError) throw new WireError(error.code, at, error.detail);
      throw error;
    }
    this.queue.skip(v.length);
    return v.value;
  }

  /** The next message payload: `Size (i)` framing, or draft-14's 16-bit length with `u16`. */
  message(framing: 'varint' | 'u16' = 'varint'): Uint8Array | undefined {
    const at = this.queue.offset;
    let size: number;
    let header: number;
    if (framing === 'u16') {
      if (this.queue.length < 2) return undefined;
      const h = this.queue.peek(2);
      size = (h[0]! << 8) | h[1]!;
      header = 2;
    } else {
      const head = this.queue.peekVarints(1);
      if (!head) return undefined;
      let v: { value: number; length: number };
      try {
        v = readVarint(head, 0);
      } catch (error) {
        if (error instanceof WireError) throw new WireError(error.code, at, error.detail);
        throw error;
      }
      size = v.value;
      header = v.length;
    }
    if (size > this.max) throw new WireError('frame-too-large', at, `a message of ${size} bytes (at most ${this.max})`);
    if (this.queue.length < header + size) return undefined;
    this.queue.skip(header);
    return this.queue.take(size);
  }
}
