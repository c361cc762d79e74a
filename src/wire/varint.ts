/**
 * QUIC variable-length integers (RFC 9000 §16): 1, 2, 4 or 8 bytes, the two most significant bits of
 * the first byte giving the length, 6, 14, 30 or 62 bits of value in network byte order.
 *
 * Two explicit forms: `number` where the value is known to be small (lengths, stream IDs, offsets,
 * push IDs: exact up to 2^53−1, and readers refuse larger values with `unsafe-integer`), and `bigint`
 * for the whole range up to 2^62−1 (error codes, GREASE types and settings). Writers take either.
 */
import { Cursor } from './bytes.js';
import { WireError } from './errors.js';

/** The largest value a varint can carry, 2^62−1. */
export const VARINT_MAX = (1n << 62n) - 1n;

/** Encoded lengths a varint can have. */
export type VarintLength = 1 | 2 | 4 | 8;

/** A varint read from a buffer: its value and how many bytes it took. */
export interface DecodedVarint<T extends number | bigint> {
  readonly value: T;
  readonly length: VarintLength;
}

// Largest value for each length (RFC 9000 Table 4): 2^6−1, 2^14−1, 2^30−1, 2^62−1.
const MAX_1 = 63;
const MAX_2 = 16383;
const MAX_4 = 1073741823;
const TWO_32 = 2 ** 32;

function checkedValue(value: number | bigint, at: number): number | bigint {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new WireError(
        'invalid-argument',
        at,
        `varint value ${value} is not a non-negative safe integer (use a bigint beyond 2^53-1)`,
      );
    }
    return value;
  }
  if (value < 0n) throw new WireError('invalid-argument', at, `varint value ${value} is negative`);
  if (value > VARINT_MAX) throw new WireError('varint-overflow', at, `varint value ${value} is beyond 2^62-1`);
  return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

function minimalLength(v: number | bigint): VarintLength {
  if (typeof v === 'bigint') return 8; // only values beyond 2^53−1 stay bigint after checkedValue
  return v <= MAX_1 ? 1 : v <= MAX_2 ? 2 : v <= MAX_4 ? 4 : 8;
}

/** The minimal encoded length of `value`. Throws `varint-overflow` beyond 2^62−1. */
export function varintLength(value: number | bigint): VarintLength {
  return minimalLength(checkedValue(value, 0));
}

/** The length of the varint whose first byte is `firstByte`. */
export function varintLengthOf(firstByte: number): VarintLength {
  return (1 << (firstByte >> 6)) as VarintLength;
}

/**
 * Writes `value` at `out[offset]` on its minimal length, or on `length` bytes when given (RFC 9000 §16:
 * values need not use the minimal length, except frame types). Returns the offset after it.
 */
export function writeVarint(out: Uint8Array, offset: number, value: number | bigint, length?: VarintLength): number {
  const v = checkedValue(value, offset);
  const minimal = minimalLength(v);
  const n = length ?? minimal;
  if (n !== 1 && n !== 2 && n !== 4 && n !== 8)
    throw new WireError('invalid-argument', offset, `varint length ${n} is not 1, 2, 4 or 8`);
  if (n < minimal) throw new WireError('varint-overflow', offset, `varint value ${value} does not fit in ${n} bytes`);
  if (offset + n > out.length) throw new WireError('invalid-argument', offset, `no room for a ${n}-byte varint`);
  let high: number;
  let low: number;
  if (typeof v === 'bigint') {
    high = Number(v >> 32n);
    low = Number(v & 0xffffffffn);
  } else {
    high = Math.floor(v / TWO_32);
    low = v % TWO_32;
  }
  switch (n) {
    case 1:
      out[offset] = low;
      break;
    case 2:
      out[offset] = 0x40 | (low >>> 8);
      out[offset + 1] = low & 0xff;
      break;
    case 4:
      out[offset] = 0x80 | (low >>> 24);
      out[offset + 1] = (low >>> 16) & 0xff;
      out[offset + 2] = (low >>> 8) & 0xff;
      out[offset + 3] = low & 0xff;
      break;
    case 8:
      out[offset] = 0xc0 | (high >>> 24);
      out[offset + 1] = (high >>> 16) & 0xff;
      out[offset + 2] = (high >>> 8) & 0xff;
      out[offset + 3] = high & 0xff;
      out[offset + 4] = low >>> 24;
      out[offset + 5] = (low >>> 16) & 0xff;
      out[offset + 6] = (low >>> 8) & 0xff;
      out[offset + 7] = low & 0xff;
      break;
  }
  return offset + n;
}

/** `value` as a varint of its minimal length, or of `length` bytes. */
export function encodeVarint(value: number | bigint, length?: VarintLength): Uint8Array {
  const out = new Uint8Array(length ?? varintLength(value));
  writeVarint(out, 0, value, length);
  return out;
}

/** Reads the varint at `bytes[offset]` as a number: `truncated` if it does not fit, `unsafe-integer` above 2^53−1. */
export function readVarint(bytes: Uint8Array, offset = 0): DecodedVarint<number> {
  const cursor = new Cursor(bytes, offset);
  const value = cursor.varint();
  return { value, length: (cursor.pos - offset) as VarintLength };
}

/** Reads the varint at `bytes[offset]` as a bigint (any value up to 2^62−1); `truncated` if it does not fit. */
export function readBigVarint(bytes: Uint8Array, offset = 0): DecodedVarint<bigint> {
  const cursor = new Cursor(bytes, offset);
  const value = cursor.bigVarint();
  return { value, length: (cursor.pos - offset) as VarintLength };
}
