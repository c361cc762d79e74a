/**
 * The two byte primitives every codec here is built on: a bounds-checked read cursor and a growable
 * writer, internal to `src/wire`; and `concatBytes`, which index.ts exports for every layer.
 */
import { WireError } from './errors.js';

const TWO_32 = 2 ** 32;

/**
 * Reads fields front to back from `bytes[pos..end)`. Every read is bounds-checked and throws a
 * `truncated` {@link WireError} naming the offset of the field that did not fit, so decoders read
 * like the RFC's field lists and never index past their input.
 */
export class Cursor {
  constructor(
    readonly bytes: Uint8Array,
    public pos = 0,
    readonly end = bytes.length,
  ) {}

  get remaining(): number {
    return this.end - this.pos;
  }

  /** The byte at the cursor, not consumed. */
  peek(what = 'byte'): number {
    if (this.pos >= this.end) throw new WireError('truncated', this.pos, `input ends before the ${what}`);
    return this.bytes[this.pos]!;
  }

  u8(what = 'byte'): number {
    if (this.pos >= this.end) throw new WireError('truncated', this.pos, `input ends before the ${what}`);
    return this.bytes[this.pos++]!;
  }

  /** `n` bytes as a view into the input (no copy). */
  take(n: number, what = 'bytes'): Uint8Array {
    if (n > this.end - this.pos) {
      throw new WireError('truncated', this.pos, `${what}: ${n} bytes announced, ${this.end - this.pos} left`);
    }
    const view = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return view;
  }

  /** A QUIC variable-length integer (RFC 9000 §16) as a number; `unsafe-integer` above 2^53−1. */
  varint(what = 'varint'): number {
    const start = this.pos;
    const { high, low } = this.varintWords(what);
    if (high > 0x1fffff) {
      throw new WireError(
        'unsafe-integer',
        start,
        `${what} 0x${high.toString(16)}${low.toString(16).padStart(8, '0')} is beyond 2^53-1`,
      );
    }
    return high * TWO_32 + low;
  }

  /** A QUIC variable-length integer (RFC 9000 §16) as a bigint: the whole range, 0..2^62−1. */
  bigVarint(what = 'varint'): bigint {
    const { high, low } = this.varintWords(what);
    return (BigInt(high) << 32n) | BigInt(low);
  }

  /** RFC 9000 §16 / Appendix A.1: the two high bits of the first byte give the length, 1, 2, 4 or 8. */
  private varintWords(what: string): { high: number; low: number } {
    const start = this.pos;
    if (start >= this.end) throw new WireError('truncated', start, `input ends before the ${what}`);
    const b = this.bytes;
    const first = b[start]!;
    const length = 1 << (first >> 6);
    if (length > this.end - start) {
      throw new WireError('truncated', start, `${what}: a ${length}-byte varint, ${this.end - start} bytes left`);
    }
    this.pos = start + length;
    const v0 = first & 0x3f;
    switch (length) {
      case 1:
        return { high: 0, low: v0 };
      case 2:
        return { high: 0, low: (v0 << 8) | b[start + 1]! };
      case 4:
        return { high: 0, low: ((v0 << 24) | (b[start + 1]! << 16) | (b[start + 2]! << 8) | b[start + 3]!) >>> 0 };
      default:
        return {
          high: ((v0 << 24) | (b[start + 1]! << 16) | (b[start + 2]! << 8) | b[start + 3]!) >>> 0,
          low: ((b[start + 4]! << 24) | (b[start + 5]! << 16) | (b[start + 6]! << 8) | b[start + 7]!) >>> 0,
        };
    }
  }
}

/** A byte buffer that grows as it is written, for encoders whose output size is not known up front. */
export class ByteBuilder {
  private buffer: Uint8Array;
  private used = 0;

  constructor(initialCapacity = 64) {
    this.buffer = new Uint8Array(Math.max(initialCapacity, 16));
  }

  get length(): number {
    return this.used;
  }

  /** Makes room for `n` more bytes and returns the offset where they go. */
  reserve(n: number): number {
    const at = this.used;
    if (at + n > this.buffer.length) {
      const grown = new Uint8Array(Math.max(this.buffer.length * 2, at + n));
      grown.set(this.buffer.subarray(0, at));
      this.buffer = grown;
    }
    this.used = at + n;
    return at;
  }

  // `reserve` may replace the buffer: call it before reading `this.buffer`.
  u8(value: number): void {
    const at = this.reserve(1);
    this.buffer[at] = value;
  }

  bytes(value: Uint8Array): void {
    const at = this.reserve(value.length);
    this.buffer.set(value, at);
  }

  /** The bytes written so far (a view of the internal buffer; the builder must not be written after). */
  finish(): Uint8Array {
    return this.buffer.subarray(0, this.used);
  }

  /** The writable view of bytes already reserved, for writers that fill a reserved range themselves. */
  get raw(): Uint8Array {
    return this.buffer;
  }
}

/** The parts joined into one new array (a copy, whatever the number of parts). */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
