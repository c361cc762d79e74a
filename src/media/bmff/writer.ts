/**
 * Writing ISO/IEC 14496-12 boxes: a growable big-endian byte writer with nested boxes, and the few
 * boxes a fragmented MP4 packager emits.
 */
import {
  TFHD_DEFAULT_BASE_IS_MOOF,
  TRUN_DATA_OFFSET_PRESENT,
  TRUN_SAMPLE_COMPOSITION_TIME_OFFSET_PRESENT,
  TRUN_SAMPLE_DURATION_PRESENT,
  TRUN_SAMPLE_FLAGS_PRESENT,
  TRUN_SAMPLE_SIZE_PRESENT,
} from './fragment.js';

const MAX_U32 = 0xffff_ffff;

/** Appends big-endian fields to a buffer that grows as needed. */
export class ByteWriter {
  private buffer: Uint8Array;
  private view: DataView;
  private length = 0;

  constructor(initialCapacity = 256) {
    this.buffer = new Uint8Array(initialCapacity);
    this.view = new DataView(this.buffer.buffer);
  }

  /** Bytes written so far. */
  get position(): number {
    return this.length;
  }

  private reserve(bytes: number): number {
    const at = this.length;
    const needed = at + bytes;
    if (needed > this.buffer.length) {
      const grown = new Uint8Array(Math.max(needed, this.buffer.length * 2));
      grown.set(this.buffer.subarray(0, at));
      this.buffer = grown;
      this.view = new DataView(grown.buffer);
    }
    this.length = needed;
    return at;
  }

  // Each write reserves first, then writes: `this.view.setX(this.reserve(n), …)` would evaluate
  // `this.view` before reserve() replaces it with a grown one.

  u8(value: number): this {
    const at = this.reserve(1);
    this.view.setUint8(at, value);
    return this;
  }

  u16(value: number): this {
    const at = this.reserve(2);
    this.view.setUint16(at, value);
    return this;
  }

  u24(value: number): this {
    const at = this.reserve(3);
    this.view.setUint8(at, value >>> 16);
    this.view.setUint16(at + 1, value & 0xffff);
    return this;
  }

  u32(value: number): this {
    checkRange(value, 0, MAX_U32, 'u32');
    const at = this.reserve(4);
    this.view.setUint32(at, value);
    return this;
  }

  i32(value: number): this {
    checkRange(value, -0x8000_0000, 0x7fff_ffff, 'i32');
    const at = this.reserve(4);
    this.view.setInt32(at, value);
    return this;
  }

  u64(value: number): this {
    checkRange(value, 0, Number.MAX_SAFE_INTEGER, 'u64');
    const at = this.reserve(8);
    this.view.setUint32(at, Math.floor(value / 2 ** 32));
    this.view.setUint32(at + 4, value % 2 ** 32);
    return this;
  }

  fourCC(code: string): this {
    if (!/^[\x20-\x7e]{4}$/.test(code)) throw new RangeError(`'${code}' is not a four-character code`);
    for (let i = 0; i < 4; i++) this.u8(code.charCodeAt(i));
    return this;
  }

  bytes(bytes: Uint8Array): this {
    const at = this.reserve(bytes.length);
    this.buffer.set(bytes, at);
    return this;
  }

  /** Overwrites a 32-bit field written earlier, e.g. a size or offset known only later. */
  setU32At(at: number, value: number): void {
    checkRange(value, 0, MAX_U32, 'u32');
    this.view.setUint32(at, value);
  }

  setI32At(at: number, value: number): void {
    checkRange(value, -0x8000_0000, 0x7fff_ffff, 'i32');
    this.view.setInt32(at, value);
  }

  /** A box (§4.2) whose payload `body` writes; its 32-bit size is filled in afterwards. */
  box(type: string, body: () => void): this {
    const start = this.position;
    this.u32(0).fourCC(type);
    body();
    this.setU32At(start, this.position - start);
    return this;
  }

  /** A full box (§4.2): a box whose payload starts with version and flags. */
  fullBox(type: string, version: number, flags: number, body: () => void): this {
    return this.box(type, () => {
      this.u8(version).u24(flags);
      body();
    });
  }

  /** The bytes written, as a new array of exactly that length. */
  finish(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }
}

function checkRange(value: number, min: number, max: number, what: string): void {
  if (!Number.isInteger(value) || value < min || value > max)
    throw new RangeError(`${value} does not fit in a ${what} field`);
}

/** `ftyp` (§4.3) or `styp` (§8.16.2): brands of a file or of a segment. */
export function writeFileTypeBox(
  type: 'ftyp' | 'styp',
  majorBrand: string,
  minorVersion: number,
  compatibleBrands: readonly string[],
): Uint8Array {
  const w = new ByteWriter(16 + 4 * compatibleBrands.length);
  w.box(type, () => {
    w.fourCC(majorBrand).u32(minorVersion);
    for (const brand of compatibleBrands) w.fourCC(brand);
  });
  return w.finish();
}

/** The header of an `mdat` (§8.1.1) holding `payloadSize` bytes; 64-bit largesize when 32 bits do not suffice. */
export function writeMediaDataHeader(payloadSize: number): Uint8Array {
  const w = new ByteWriter(16);
  if (payloadSize + 8 <= MAX_U32) w.u32(payloadSize + 8).fourCC('mdat');
  else
    w.u32(1)
      .fourCC('mdat')
      .u64(payloadSize + 16);
  return w.finish();
}

/** A sample as written into a `trun`. */
export interface OutputSample {
  readonly duration: number;
  readonly size: number;
  /** Sample flags (§8.8.3.1). */
  readonly flags: number;
  /** Composition time minus decode time, ticks; may be negative. */
  readonly compositionOffset: number;
}

export interface MovieFragmentFields {
  /** `mfhd` sequence_number: increasing across the fragments of a track. */
  readonly sequenceNumber: number;
  readonly trackId: number;
  /** `tfdt` baseMediaDecodeTime of the first sample. */
  readonly baseMediaDecodeTime: number;
  readonly samples: readonly OutputSample[];
  /** Header size of the `mdat` that directly follows the `moof`: the run's data starts right after it. */
  readonly mediaDataHeaderSize: number;
}

/**
 * A `moof` with one `traf` and one `trun` (§8.8.4–§8.8.8), self-contained so that it can be read
 * without the init segment's `trex` defaults:
 * - `tfhd` sets default-base-is-moof (§8.8.7.1), so data offsets count from the `moof`'s first byte;
 * - `tfdt` is version 1 (64-bit), which never wraps (§8.8.12);
 * - `trun` gives every sample's duration, size and flags, plus signed (version 1) composition offsets
 *   when any sample has one (§8.8.8), and a data offset pointing just past the `mdat` header.
 */
export function writeMovieFragment(fields: MovieFragmentFields): Uint8Array {
  const { samples } = fields;
  const withCompositionOffsets = samples.some((s) => s.compositionOffset !== 0);
  const trunFlags =
    TRUN_DATA_OFFSET_PRESENT |
    TRUN_SAMPLE_DURATION_PRESENT |
    TRUN_SAMPLE_SIZE_PRESENT |
    TRUN_SAMPLE_FLAGS_PRESENT |
    (withCompositionOffsets ? TRUN_SAMPLE_COMPOSITION_TIME_OFFSET_PRESENT : 0);
  const w = new ByteWriter(128 + samples.length * 16);
  let dataOffsetAt = 0;
  w.box('moof', () => {
    w.fullBox('mfhd', 0, 0, () => w.u32(fields.sequenceNumber));
    w.box('traf', () => {
      w.fullBox('tfhd', 0, TFHD_DEFAULT_BASE_IS_MOOF, () => w.u32(fields.trackId));
      w.fullBox('tfdt', 1, 0, () => w.u64(fields.baseMediaDecodeTime));
      w.fullBox('trun', withCompositionOffsets ? 1 : 0, trunFlags, () => {
        w.u32(samples.length);
        dataOffsetAt = w.position;
        w.i32(0); // data_offset, known once the moof's size is
        for (const s of samples) {
          w.u32(s.duration).u32(s.size).u32(s.flags);
          if (withCompositionOffsets) w.i32(s.compositionOffset);
        }
      });
    });
  });
  w.setI32At(dataOffsetAt, w.position + fields.mediaDataHeaderSize);
  return w.finish();
}
