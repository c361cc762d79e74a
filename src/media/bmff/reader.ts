/**
 * Box framing and field reading for ISO/IEC 14496-12 (ISO base media file format).
 *
 * Every box keeps the byte offset at which it starts in the whole input stream, so that errors found
 * deep inside a parsed structure still point at the right place of the original input.
 */
import { BmffError } from './errors.js';

/** A box located in a byte buffer (ISO/IEC 14496-12 §4.2). */
export interface Box {
  /** Four-character type; bytes outside printable ASCII are written as `\xNN`. */
  readonly type: string;
  /** The 16-byte extended type of a `uuid` box. */
  readonly userType?: Uint8Array;
  /** The whole box, header included. */
  readonly bytes: Uint8Array;
  /** 8, 16 with a 64-bit largesize, plus 16 for a `uuid` box's extended type. */
  readonly headerSize: number;
  /** Byte offset of the box's first byte in the input stream. */
  readonly offset: number;
}

/** Stands for the type of a box whose header is cut off before its type. */
export const UNKNOWN_TYPE = '????';

/** What the first bytes of a box say about it (ISO/IEC 14496-12 §4.2). */
export interface BoxHeader {
  readonly type: string;
  readonly userType?: Uint8Array;
  readonly headerSize: number;
  /** Total size in bytes; 0 means the box extends to the end of its enclosing range. */
  readonly size: number;
}

/** The four-character code at `bytes[at..at+4]`, non-printable bytes escaped so error messages stay readable. */
export function readFourCC(bytes: Uint8Array, at: number): string {
  let code = '';
  for (const b of bytes.subarray(at, at + 4)) {
    code += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return code;
}

/** True when the four-character code is made of printable ASCII, as every registered box type is. */
export function isPrintableFourCC(type: string): boolean {
  return type.length === 4 && !type.includes('\\x');
}

/**
 * Reads the box header at `bytes[at]`; `undefined` when the buffer ends before the header does.
 * Throws when the header itself is impossible (a size smaller than the header, a size beyond 2^53).
 *
 * @param streamOffset byte offset of `bytes[at]` in the input stream, for error messages
 */
export function readBoxHeader(bytes: Uint8Array, at: number, streamOffset: number): BoxHeader | undefined {
  if (bytes.length - at < 8) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, bytes.length - at);
  const type = readFourCC(bytes, at + 4);
  let size = view.getUint32(0);
  let headerSize = 8;
  if (size === 1) {
    // 64-bit largesize follows the type.
    if (view.byteLength < 16) return undefined;
    const high = view.getUint32(8);
    if (high > 0x1fffff)
      throw new BmffError(
        `largesize 0x${high.toString(16)}${view.getUint32(12).toString(16).padStart(8, '0')} is beyond 2^53`,
        type,
        streamOffset,
      );
    size = high * 2 ** 32 + view.getUint32(12);
    headerSize = 16;
  }
  let userType: Uint8Array | undefined;
  if (type === 'uuid') {
    if (view.byteLength < headerSize + 16) return undefined;
    userType = bytes.slice(at + headerSize, at + headerSize + 16);
    headerSize += 16;
  }
  if (size !== 0 && size < headerSize) {
    throw new BmffError(`box size ${size} is smaller than its ${headerSize}-byte header`, type, streamOffset);
  }
  return { type, userType, headerSize, size };
}

/**
 * The boxes filling `bytes` from start to end, e.g. a file or the payload of a container box.
 *
 * @param streamOffset byte offset of `bytes[0]` in the input stream
 * @param parent the enclosing box, named in errors about boxes that do not fit in it
 */
export function readBoxes(bytes: Uint8Array, streamOffset = 0, parent?: Box): Box[] {
  const boxes: Box[] = [];
  let at = 0;
  while (at < bytes.length) {
    const header = readBoxHeader(bytes, at, streamOffset + at);
    if (!header) {
      const where = parent ? `the end of '${parent.type}'` : 'the end of the input';
      const detail = `${bytes.length - at} stray bytes before ${where}, too few for a box header`;
      if (parent) throw new BmffError(detail, parent.type, parent.offset);
      throw new BmffError(detail, UNKNOWN_TYPE, streamOffset + at);
    }
    const size = header.size === 0 ? bytes.length - at : header.size;
    if (at + size > bytes.length) {
      const enclosing = parent ? `its parent '${parent.type}'` : 'the input';
      throw new BmffError(
        `box size ${size} runs past the end of ${enclosing} (${bytes.length - at} bytes left)`,
        header.type,
        streamOffset + at,
      );
    }
    boxes.push({
      type: header.type,
      userType: header.userType,
      bytes: bytes.subarray(at, at + size),
      headerSize: header.headerSize,
      offset: streamOffset + at,
    });
    at += size;
  }
  return boxes;
}

/** The boxes contained in a container box, starting `skip` bytes into its payload (e.g. past a full box header). */
export function childrenOf(box: Box, skip = 0): Box[] {
  if (box.bytes.length < box.headerSize + skip) {
    throw new BmffError(
      `box size ${box.bytes.length} is too small for its ${skip}-byte fields before the child boxes`,
      box.type,
      box.offset,
    );
  }
  return readBoxes(box.bytes.subarray(box.headerSize + skip), box.offset + box.headerSize + skip, box);
}

/** The first child of type `type`, or an error naming the parent when there is none. */
export function requireChild(children: readonly Box[], type: string, parent: Box): Box {
  const child = children.find((b) => b.type === type);
  if (!child) throw new BmffError(`required '${type}' box is missing`, parent.type, parent.offset);
  return child;
}

/** The only child of type `type`, or an error naming the parent when there is none or more than one. */
export function requireSingleChild(children: readonly Box[], type: string, parent: Box): Box {
  const matches = children.filter((b) => b.type === type);
  if (matches.length !== 1) {
    throw new BmffError(`expected exactly one '${type}' box, found ${matches.length}`, parent.type, parent.offset);
  }
  return matches[0]!;
}

/** Version and flags of a full box (ISO/IEC 14496-12 §4.2). */
export interface FullBoxHeader {
  readonly version: number;
  readonly flags: number;
}

/**
 * Reads the fields of one box, big-endian, refusing to read past the box's end. Every failure is a
 * BmffError naming the box and its stream offset.
 */
export class FieldReader {
  private readonly view: DataView;
  private at: number;

  constructor(
    readonly box: Box,
    /** Where to start, in bytes from the start of the box; by default right after its header. */
    start = box.headerSize,
  ) {
    this.view = new DataView(box.bytes.buffer, box.bytes.byteOffset, box.bytes.byteLength);
    this.at = start;
  }

  /** Offset from the start of the box of the next field. */
  get position(): number {
    return this.at;
  }

  get remaining(): number {
    return this.view.byteLength - this.at;
  }

  /** A BmffError about this box. */
  error(detail: string): BmffError {
    return new BmffError(detail, this.box.type, this.box.offset);
  }

  private need(bytes: number, what: string): number {
    if (bytes > this.remaining) {
      throw this.error(`${what} needs ${bytes} bytes at byte ${this.at} of the box, but only ${this.remaining} remain`);
    }
    const at = this.at;
    this.at += bytes;
    return at;
  }

  u8(what = 'an 8-bit field'): number {
    return this.view.getUint8(this.need(1, what));
  }

  u16(what = 'a 16-bit field'): number {
    return this.view.getUint16(this.need(2, what));
  }

  u24(what = 'a 24-bit field'): number {
    const at = this.need(3, what);
    return (this.view.getUint8(at) << 16) | this.view.getUint16(at + 1);
  }

  u32(what = 'a 32-bit field'): number {
    return this.view.getUint32(this.need(4, what));
  }

  i32(what = 'a 32-bit field'): number {
    return this.view.getInt32(this.need(4, what));
  }

  /** A 64-bit unsigned field; values beyond 2^53 cannot be represented exactly and are refused. */
  u64(what = 'a 64-bit field'): number {
    const at = this.need(8, what);
    const high = this.view.getUint32(at);
    if (high > 0x1fffff) throw this.error(`${what} exceeds 2^53`);
    return high * 2 ** 32 + this.view.getUint32(at + 4);
  }

  fourCC(what = 'a four-character code'): string {
    const at = this.need(4, what);
    return readFourCC(this.box.bytes, at);
  }

  /** `length` bytes as a view into the box (not a copy). */
  bytes(length: number, what = 'a byte string'): Uint8Array {
    const at = this.need(length, what);
    return this.box.bytes.subarray(at, at + length);
  }

  skip(length: number, what = 'reserved fields'): void {
    this.need(length, what);
  }

  /** Version and flags of a full box; versions above `maxVersion` change the layout and are refused. */
  fullBoxHeader(maxVersion: number): FullBoxHeader {
    const version = this.u8('the full box version');
    const flags = this.u24('the full box flags');
    if (version > maxVersion) throw this.error(`unsupported version ${version}`);
    return { version, flags };
  }
}
