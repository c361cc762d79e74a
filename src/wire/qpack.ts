/**
 * QPACK (RFC 9204) with a dynamic table of capacity 0, as the multicast profile uses it: there is no
 * encoder or decoder stream to carry table updates to receivers that join at any time, so every field
 * line references the static table or is a literal.
 *
 * Field names and values are byte strings, as Fetch's ByteString and node:http headers: each character
 * (code 0–255) is one byte. The decoder never fails on a character set; the encoder refuses characters
 * above 0xFF.
 */
import { ByteBuilder, Cursor } from './bytes.js';
import { WireError } from './errors.js';
import { huffmanDecode, huffmanEncodedLength, writeHuffman } from './huffman.js';

/** One field line. `neverIndex` is the 'N' bit: intermediaries must forward it as a literal (RFC 9204 §4.5.4). */
export interface FieldLine {
  readonly name: string;
  readonly value: string;
  readonly neverIndex?: boolean;
}

/** RFC 9204 Appendix A: the static table, [name, value] at index 0–98. */
// prettier-ignore
export const QPACK_STATIC_TABLE: readonly (readonly [name: string, value: string])[] = [
  [':authority', ''], // 0
  [':path', '/'], // 1
  ['age', '0'], // 2
  ['content-disposition', ''], // 3
  ['content-length', '0'], // 4
  ['cookie', ''], // 5
  ['date', ''], // 6
  ['etag', ''], // 7
  ['if-modified-since', ''], // 8
  ['if-none-match', ''], // 9
  ['last-modified', ''], // 10
  ['link', ''], // 11
  ['location', ''], // 12
  ['referer', ''], // 13
  ['set-cookie', ''], // 14
  [':method', 'CONNECT'], // 15
  [':method', 'DELETE'], // 16
  [':method', 'GET'], // 17
  [':method', 'HEAD'], // 18
  [':method', 'OPTIONS'], // 19
  [':method', 'POST'], // 20
  [':method', 'PUT'], // 21
  [':scheme', 'http'], // 22
  [':scheme', 'https'], // 23
  [':status', '103'], // 24
  [':status', '200'], // 25
  [':status', '304'], // 26
  [':status', '404'], // 27
  [':status', '503'], // 28
  ['accept', '*/*'], // 29
  ['accept', 'application/dns-message'], // 30
  ['accept-encoding', 'gzip, deflate, br'], // 31
  ['accept-ranges', 'bytes'], // 32
  ['access-control-allow-headers', 'cache-control'], // 33
  ['access-control-allow-headers', 'content-type'], // 34
  ['access-control-allow-origin', '*'], // 35
  ['cache-control', 'max-age=0'], // 36
  ['cache-control', 'max-age=2592000'], // 37
  ['cache-control', 'max-age=604800'], // 38
  ['cache-control', 'no-cache'], // 39
  ['cache-control', 'no-store'], // 40
  ['cache-control', 'public, max-age=31536000'], // 41
  ['content-encoding', 'br'], // 42
  ['content-encoding', 'gzip'], // 43
  ['content-type', 'application/dns-message'], // 44
  ['content-type', 'application/javascript'], // 45
  ['content-type', 'application/json'], // 46
  ['content-type', 'application/x-www-form-urlencoded'], // 47
  ['content-type', 'image/gif'], // 48
  ['content-type', 'image/jpeg'], // 49
  ['content-type', 'image/png'], // 50
  ['content-type', 'text/css'], // 51
  ['content-type', 'text/html; charset=utf-8'], // 52
  ['content-type', 'text/plain'], // 53
  ['content-type', 'text/plain;charset=utf-8'], // 54
  ['range', 'bytes=0-'], // 55
  ['strict-transport-security', 'max-age=31536000'], // 56
  ['strict-transport-security', 'max-age=31536000; includesubdomains'], // 57
  ['strict-transport-security', 'max-age=31536000; includesubdomains; preload'], // 58
  ['vary', 'accept-encoding'], // 59
  ['vary', 'origin'], // 60
  ['x-content-type-options', 'nosniff'], // 61
  ['x-xss-protection', '1; mode=block'], // 62
  [':status', '100'], // 63
  [':status', '204'], // 64
  [':status', '206'], // 65
  [':status', '302'], // 66
  [':status', '400'], // 67
  [':status', '403'], // 68
  [':status', '421'], // 69
  [':status', '425'], // 70
  [':status', '500'], // 71
  ['accept-language', ''], // 72
  ['access-control-allow-credentials', 'FALSE'], // 73
  ['access-control-allow-credentials', 'TRUE'], // 74
  ['access-control-allow-headers', '*'], // 75
  ['access-control-allow-methods', 'get'], // 76
  ['access-control-allow-methods', 'get, post, options'], // 77
  ['access-control-allow-methods', 'options'], // 78
  ['access-control-expose-headers', 'content-length'], // 79
  ['access-control-request-headers', 'content-type'], // 80
  ['access-control-request-method', 'get'], // 81
  ['access-control-request-method', 'post'], // 82
  ['alt-svc', 'clear'], // 83
  ['authorization', ''], // 84
  ['content-security-policy', "script-src 'none'; object-src 'none'; base-uri 'none'"], // 85
  ['early-data', '1'], // 86
  ['expect-ct', ''], // 87
  ['forwarded', ''], // 88
  ['if-range', ''], // 89
  ['origin', ''], // 90
  ['purpose', 'prefetch'], // 91
  ['server', ''], // 92
  ['timing-allow-origin', '*'], // 93
  ['upgrade-insecure-requests', '1'], // 94
  ['user-agent', ''], // 95
  ['x-forwarded-for', ''], // 96
  ['x-frame-options', 'deny'], // 97
  ['x-frame-options', 'sameorigin'], // 98
];

/** Exact (name, value) → lowest static index, and name → lowest static index. */
const STATIC_FIELD_INDEX = new Map<string, number>();
const STATIC_NAME_INDEX = new Map<string, number>();
QPACK_STATIC_TABLE.forEach(([name, value], index) => {
  const key = `${name}\0${value}`;
  if (!STATIC_FIELD_INDEX.has(key)) STATIC_FIELD_INDEX.set(key, index);
  if (!STATIC_NAME_INDEX.has(name)) STATIC_NAME_INDEX.set(name, index);
});

// ---------------------------------------------------------------------------------------------------
// Primitives: prefixed integers (RFC 7541 §5.1) and string literals (RFC 7541 §5.2, RFC 9204 §4.1.2)

/**
 * Writes `value` as an integer with an N-bit prefix (RFC 7541 §5.1); `flags` are the (8 − N) high bits
 * of the first byte.
 */
function writePrefixInt(out: ByteBuilder, prefixBits: number, flags: number, value: number): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out.u8(flags | value);
    return;
  }
  out.u8(flags | max);
  let rest = value - max;
  while (rest >= 128) {
    out.u8((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.u8(rest);
}

/**
 * Reads an N-bit prefix integer at the cursor (its first byte's high bits belong to the caller).
 * RFC 9204 §4.1.1 asks decoders to handle 62-bit integers; every such value is out of range here
 * (a static index is below 99, a string fits in the field section), so beyond 2^53−1 this refuses
 * with `integer-overflow`, the same outcome as the range check, with an exact message.
 */
function readPrefixInt(cursor: Cursor, prefixBits: number, what: string): number {
  const start = cursor.pos;
  const max = (1 << prefixBits) - 1;
  let value = cursor.u8(what) & max;
  if (value < max) return value;
  for (let shift = 0; ; shift += 7) {
    if (shift > 56) throw new WireError('integer-overflow', start, `${what}: prefix integer longer than 62 bits`);
    const byte = cursor.u8(what);
    value += (byte & 0x7f) * 2 ** shift;
    if (value > Number.MAX_SAFE_INTEGER)
      throw new WireError('integer-overflow', start, `${what}: prefix integer beyond 2^53-1`);
    if (!(byte & 0x80)) return value;
  }
}

/** `value` as an integer with an N-bit prefix, first byte's high bits `flags` (RFC 7541 §5.1). */
export function encodePrefixInt(value: number, prefixBits: number, flags = 0): Uint8Array {
  if (!Number.isSafeInteger(value) || value < 0) throw new WireError('invalid-argument', 0, `prefix integer ${value}`);
  if (!Number.isInteger(prefixBits) || prefixBits < 1 || prefixBits > 8)
    throw new WireError('invalid-argument', 0, `prefix of ${prefixBits} bits`);
  const out = new ByteBuilder(10);
  writePrefixInt(out, prefixBits, flags & ~((1 << prefixBits) - 1) & 0xff, value);
  return out.finish();
}

/** Reads the N-bit prefix integer at `bytes[offset]` (RFC 7541 §5.1); `length` is the bytes it took. */
export function decodePrefixInt(
  bytes: Uint8Array,
  offset: number,
  prefixBits: number,
): { value: number; length: number } {
  const cursor = new Cursor(bytes, offset);
  const value = readPrefixInt(cursor, prefixBits, 'prefix integer');
  return { value, length: cursor.pos - offset };
}

/** When string literals are Huffman-coded: when that is shorter (default), always, or never. */
export type HuffmanPolicy = 'auto' | 'always' | 'never';

/**
 * Writes an N-bit prefix string literal (RFC 9204 §4.1.2): an 'H' bit, the length as an (N − 1)-bit
 * prefix integer, then the bytes, Huffman-coded when H is set.
 */
function writeString(
  out: ByteBuilder,
  prefixBits: number,
  flags: number,
  bytes: Uint8Array,
  policy: HuffmanPolicy,
): void {
  const hBit = 1 << (prefixBits - 1);
  const huffmanLength = policy === 'never' ? Infinity : huffmanEncodedLength(bytes);
  if (policy === 'always' || huffmanLength < bytes.length) {
    writePrefixInt(out, prefixBits - 1, flags | hBit, huffmanLength);
    const at = out.reserve(huffmanLength); // before reading `raw`: reserving may replace the buffer
    writeHuffman(out.raw, at, bytes);
  } else {
    writePrefixInt(out, prefixBits - 1, flags, bytes.length);
    out.bytes(bytes);
  }
}

/** Reads an N-bit prefix string literal at the cursor; `budget` bounds its decoded length. */
function readString(cursor: Cursor, prefixBits: number, what: string, budget: number): Uint8Array {
  const start = cursor.pos;
  const huffman = (cursor.peek(`${what} length`) & (1 << (prefixBits - 1))) !== 0;
  const length = readPrefixInt(cursor, prefixBits - 1, `${what} length`);
  const raw = cursor.take(length, what);
  if (!huffman) {
    if (raw.length > budget) throw tooLarge(start, budget);
    return raw;
  }
  const decoded = huffmanDecode(raw, cursor.pos - length);
  if (decoded.length > budget) throw tooLarge(start, budget);
  return decoded;
}

function tooLarge(at: number, budget: number): WireError {
  return new WireError(
    'field-section-too-large',
    at,
    `field section exceeds its size bound (${budget} bytes of budget were left)`,
  );
}

function byteString(bytes: Uint8Array): string {
  let text = '';
  for (let i = 0; i < bytes.length; i += 4096) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 4096) as unknown as number[]);
  }
  return text;
}

function stringBytes(text: string, what: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0xff)
      throw new WireError(
        'invalid-argument',
        0,
        `${what} has character U+${code.toString(16).padStart(4, '0')} at ${i}, beyond one byte`,
      );
    bytes[i] = code;
  }
  return bytes;
}

// ---------------------------------------------------------------------------------------------------
// Field sections (RFC 9204 §4.5)

export interface EncodeFieldSectionOptions {
  /** Default `auto`: Huffman-code a string when that makes it shorter. */
  readonly huffman?: HuffmanPolicy;
}

/**
 * Encodes `fields` as a field section for a HEADERS or PUSH_PROMISE frame: prefix `00 00` (Required
 * Insert Count 0, Delta Base 0), then per field the smallest static form: an indexed field line for a
 * (name, value) of the static table, a literal with static name reference for one of its names, else
 * a literal with literal name. A `neverIndex` field is always a literal (RFC 9204 §4.5.4), N bit set.
 */
export function encodeFieldSection(fields: readonly FieldLine[], options: EncodeFieldSectionOptions = {}): Uint8Array {
  const policy = options.huffman ?? 'auto';
  const out = new ByteBuilder(64);
  // §4.5.1: Required Insert Count 0 (8-bit prefix); Sign 0 and Delta Base 0 (7-bit prefix).
  out.u8(0x00);
  out.u8(0x00);
  for (const field of fields) {
    const neverIndex = field.neverIndex === true;
    const exact = neverIndex ? undefined : STATIC_FIELD_INDEX.get(`${field.name}\0${field.value}`);
    if (exact !== undefined) {
      // §4.5.2 Indexed Field Line: 1 T=1 Index(6+)
      writePrefixInt(out, 6, 0b1100_0000, exact);
      continue;
    }
    const value = stringBytes(field.value, `value of ${field.name}`);
    const nameIndex = STATIC_NAME_INDEX.get(field.name);
    if (nameIndex !== undefined) {
      // §4.5.4 Literal Field Line with Name Reference: 01 N T=1 NameIndex(4+), value (8-bit prefix string)
      writePrefixInt(out, 4, 0b0101_0000 | (neverIndex ? 0b0010_0000 : 0), nameIndex);
    } else {
      // §4.5.6 Literal Field Line with Literal Name: 001 N, name (4-bit prefix string), value (8-bit prefix string)
      writeString(out, 4, 0b0010_0000 | (neverIndex ? 0b0001_0000 : 0), stringBytes(field.name, 'field name'), policy);
    }
    writeString(out, 8, 0, value, policy);
  }
  return out.finish();
}

export interface DecodeFieldSectionOptions {
  /** Largest decoded size, counted as RFC 9114 §4.2.2 does: name + value + 32 per field. Default 64 KiB. */
  readonly maxFieldSectionSize?: number;
  /** Most field lines. Default 256. */
  readonly maxFields?: number;
}

/** Default bound on a decoded field section, RFC 9114 §4.2.2 size. */
export const DEFAULT_MAX_FIELD_SECTION_SIZE = 64 * 1024;
/** Default bound on the number of field lines in a section. */
export const DEFAULT_MAX_FIELDS = 256;

/** RFC 9114 §4.2.2 (after RFC 7541 §4.1): each field counts 32 bytes on top of its name and value. */
const FIELD_OVERHEAD = 32;

function staticEntry(index: number, at: number): readonly [string, string] {
  const entry = QPACK_STATIC_TABLE[index];
  if (entry === undefined)
    throw new WireError(
      'qpack-static-index',
      at,
      `static table index ${index}; the table has ${QPACK_STATIC_TABLE.length} entries`,
    );
  return entry;
}

function dynamicReference(at: number, form: string): WireError {
  return new WireError('qpack-dynamic-reference', at, `${form} references the dynamic table, whose capacity is 0`);
}

/**
 * Decodes a field section encoded without the dynamic table. Refuses, with typed errors, a non-zero
 * Required Insert Count or a negative Base (§4.5.1), any dynamic or post-Base reference, a static index
 * beyond the table, bad Huffman code, truncated input, and sections beyond the size or count bound.
 */
export function decodeFieldSection(section: Uint8Array, options: DecodeFieldSectionOptions = {}): FieldLine[] {
  const maxSize = options.maxFieldSectionSize ?? DEFAULT_MAX_FIELD_SECTION_SIZE;
  const maxFields = options.maxFields ?? DEFAULT_MAX_FIELDS;
  const cursor = new Cursor(section);

  // §4.5.1.1: with MaxEntries 0, any Encoded Required Insert Count but 0 is an error.
  const insertCount = readPrefixInt(cursor, 8, 'Required Insert Count');
  if (insertCount !== 0) {
    throw new WireError(
      'qpack-dynamic-reference',
      0,
      `Required Insert Count ${insertCount}; the dynamic table has capacity 0`,
    );
  }
  // §4.5.1.2: Sign 1 means Base = Required Insert Count − Delta Base − 1, negative when the count is 0.
  const baseAt = cursor.pos;
  const negativeBase = (cursor.peek('Delta Base') & 0x80) !== 0;
  readPrefixInt(cursor, 7, 'Delta Base');
  if (negativeBase)
    throw new WireError('qpack-decompression', baseAt, 'negative Base (Sign 1 with Required Insert Count 0)');
  // With Sign 0, any Delta Base is valid: nothing references the Base.

  const fields: FieldLine[] = [];
  let budget = maxSize;
  while (cursor.remaining > 0) {
    const at = cursor.pos;
    if (fields.length >= maxFields) throw new WireError('too-many-fields', at, `more than ${maxFields} field lines`);
    const first = cursor.peek('field line');
    let name: string;
    let value: string;
    let neverIndex = false;
    if (first & 0b1000_0000) {
      // §4.5.2 Indexed Field Line: 1 T Index(6+)
      if (!(first & 0b0100_0000)) throw dynamicReference(at, 'indexed field line');
      [name, value] = staticEntry(readPrefixInt(cursor, 6, 'static index'), at);
    } else if (first & 0b0100_0000) {
      // §4.5.4 Literal Field Line with Name Reference: 01 N T NameIndex(4+)
      if (!(first & 0b0001_0000)) throw dynamicReference(at, 'literal field line with name reference');
      neverIndex = (first & 0b0010_0000) !== 0;
      name = staticEntry(readPrefixInt(cursor, 4, 'static name index'), at)[0];
      value = byteString(readString(cursor, 8, 'field value', budget - FIELD_OVERHEAD - name.length));
    } else if (first & 0b0010_0000) {
      // §4.5.6 Literal Field Line with Literal Name: 001 N H NameLen(3+)
      neverIndex = (first & 0b0001_0000) !== 0;
      const nameBytes = readString(cursor, 4, 'field name', budget - FIELD_OVERHEAD);
      name = byteString(nameBytes);
      value = byteString(readString(cursor, 8, 'field value', budget - FIELD_OVERHEAD - nameBytes.length));
    } else if (first & 0b0001_0000) {
      // §4.5.3 Indexed Field Line with Post-Base Index: 0001 Index(4+)
      throw dynamicReference(at, 'indexed field line with post-Base index');
    } else {
      // §4.5.5 Literal Field Line with Post-Base Name Reference: 0000 N NameIdx(3+)
      throw dynamicReference(at, 'literal field line with post-Base name reference');
    }
    budget -= name.length + value.length + FIELD_OVERHEAD;
    if (budget < 0) throw tooLarge(at, budget + name.length + value.length + FIELD_OVERHEAD);
    fields.push(neverIndex ? { name, value, neverIndex } : { name, value });
  }
  return fields;
}
