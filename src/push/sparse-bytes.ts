/**
 * The bytes of one QUIC stream as STREAM frames deliver them: in any order, duplicated, with holes
 * (RFC 9000 §2.2: "data at a given offset MUST NOT change if it is sent multiple times"; the first copy
 * received is kept). A sorted list of non-overlapping segments, each a view of a private copy of its
 * bytes. The copies are packed into chunks (a bump allocator) rather than one allocation per frame, and
 * a frame that continues the segment last written extends it in place, so in-order arrival builds few,
 * long segments. A chunk's bytes are never written twice: views handed out stay valid.
 *
 * Isomorphic: Uint8Array only.
 */

/** A byte range, start inclusive, end exclusive. */
export interface ByteRange {
  start: number;
  end: number;
}

/** Stream bytes [start, end), held in `buf` from index `at`. */
interface Segment {
  readonly start: number;
  end: number;
  readonly buf: Uint8Array;
  readonly at: number;
}

const EMPTY = new Uint8Array(0);

/** A view of the held bytes [from, to) of `seg`. */
function bytesOf(seg: Segment, from: number, to: number): Uint8Array {
  return seg.buf.subarray(seg.at + from - seg.start, seg.at + to - seg.start);
}

/** Smallest and largest chunk allocated; in between a new chunk is as large as the bytes held (so chunks stay within about twice what is held). */
const MIN_CHUNK = 16 * 1024;
const MAX_CHUNK = 4 * 1024 * 1024;

/**
 * Chunks given back by SparseBytes that are done with ({@link SparseBytes.recycle}), for others to fill
 * again: writing into memory already touched is much cheaper than into fresh pages, and fewer
 * ArrayBuffers come and go for the garbage collector. Holds at most `maxBytes`.
 */
export class ChunkPool {
  private readonly chunks: Uint8Array[] = [];
  private bytes = 0;
  constructor(private readonly maxBytes = 8 * 1024 * 1024) {}

  /** A chunk of at least `min` bytes (at most 4 × `want` when `want` ≥ `min`), if one is pooled. */
  take(min: number, want: number): Uint8Array | undefined {
    for (let i = 0; i < this.chunks.length; i++) {
      const chunk = this.chunks[i]!;
      if (chunk.length >= min && chunk.length <= 4 * Math.max(want, min)) {
        this.chunks[i] = this.chunks[this.chunks.length - 1]!;
        this.chunks.pop();
        this.bytes -= chunk.length;
        return chunk;
      }
    }
    return undefined;
  }

  give(chunk: Uint8Array): void {
    if (this.bytes + chunk.length > this.maxBytes) return;
    this.chunks.push(chunk);
    this.bytes += chunk.length;
  }
}

export class SparseBytes {
  private readonly segments: Segment[] = [];
  /** Bytes held. */
  held = 0;
  /** Every byte of [0, prefixEnd) is held. */
  prefixEnd = 0;
  /** The end of the highest byte held. */
  highest = 0;
  private prefixIndex = 0;
  /** Bytes below this offset were released (consumed): received, no longer held. */
  private released = 0;
  /** The chunk written to now and how far; the last segment written, which may grow in place. */
  private chunk: Uint8Array | undefined;
  private chunkUsed = 0;
  private lastWritten: Segment | undefined;
  /** Every chunk allocated, for recycle (only with a pool). */
  private readonly chunks: Uint8Array[] = [];

  constructor(private readonly pool?: ChunkPool) {}

  /**
   * Gives every chunk to the pool; the bytes are gone, use this no more. Only once no view of them is in
   * use (views from {@link read} included): the pool hands the chunks out again to be overwritten.
   */
  recycle(): void {
    if (this.pool) for (const chunk of this.chunks) this.pool.give(chunk);
    this.chunks.length = 0;
    this.segments.length = 0;
    this.chunk = undefined;
    this.lastWritten = undefined;
  }

  private newChunk(n: number): Uint8Array {
    const want = Math.max(n, Math.min(MAX_CHUNK, Math.max(MIN_CHUNK, this.held)));
    if (!this.pool) return new Uint8Array(want);
    const chunk = this.pool.take(n, want) ?? new Uint8Array(want);
    this.chunks.push(chunk);
    return chunk;
  }

  /**
   * A new segment holding a copy of `data`, or undefined when `after` (the segment just before it) took
   * the bytes: it grows in place when it is the segment last written, ends where `data` starts and the
   * chunk has room (in-order arrival: few, long segments).
   */
  private place(start: number, data: Uint8Array, after: Segment | undefined): Segment | undefined {
    const n = data.length;
    let chunk = this.chunk;
    const fits = chunk !== undefined && chunk.length - this.chunkUsed >= n;
    if (fits && after !== undefined && after === this.lastWritten && after.end === start) {
      chunk!.set(data, this.chunkUsed);
      this.chunkUsed += n;
      after.end = start + n;
      return undefined;
    }
    if (!fits) {
      chunk = this.chunk = this.newChunk(n);
      this.chunkUsed = 0;
    }
    const seg = { start, end: start + n, buf: chunk!, at: this.chunkUsed };
    chunk!.set(data, this.chunkUsed);
    this.chunkUsed += n;
    this.lastWritten = seg;
    return seg;
  }

  /** First index whose segment ends after `offset`. */
  private indexAfter(offset: number): number {
    let lo = 0;
    let hi = this.segments.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.segments[mid]!.end <= offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** How many bytes of [offset, offset + data.length) are new (0: a complete duplicate). */
  newBytes(offset: number, data: Uint8Array): number {
    if (offset >= this.highest && offset >= this.released) return data.length; // in-order arrival: all new
    let n = 0;
    for (const gap of this.missing(offset, offset + data.length)) n += gap.end - gap.start;
    return n;
  }

  /** Stores what is new of `data` at stream offset `offset`; returns how many bytes were new. */
  add(offset: number, data: Uint8Array): number {
    const end = offset + data.length;
    if (end <= offset) return 0;
    const last = this.segments[this.segments.length - 1];
    let added = 0;
    if (last === undefined || last.end <= offset) {
      const seg = this.place(offset, data, last);
      if (seg) this.segments.push(seg);
      added = data.length;
    } else {
      for (const gap of this.missing(offset, end)) {
        const at = this.indexAfter(gap.start);
        const seg = this.place(gap.start, data.subarray(gap.start - offset, gap.end - offset), this.segments[at - 1]);
        if (seg) this.segments.splice(at, 0, seg);
        added += gap.end - gap.start;
      }
    }
    this.held += added;
    this.highest = Math.max(this.highest, end);
    // The last segment of the prefix may have grown in place.
    if (this.prefixIndex > 0) this.prefixEnd = Math.max(this.prefixEnd, this.segments[this.prefixIndex - 1]!.end);
    while (this.prefixIndex < this.segments.length && this.segments[this.prefixIndex]!.start === this.prefixEnd) {
      this.prefixEnd = this.segments[this.prefixIndex]!.end;
      this.prefixIndex++;
    }
    return added;
  }

  /**
   * Frees the held prefix [0, prefixEnd) once it has been consumed; it still counts as received, so
   * later copies of it are duplicates.
   */
  releasePrefix(): number {
    let freed = 0;
    for (let i = 0; i < this.prefixIndex; i++) freed += this.segments[i]!.end - this.segments[i]!.start;
    this.segments.splice(0, this.prefixIndex);
    this.prefixIndex = 0;
    this.released = this.prefixEnd;
    this.held -= freed;
    return freed;
  }

  /**
   * Gives up the bytes below `offset` (received or not: a hole there will never be filled, or no longer
   * matters): they are freed and count as received from now on. The prefix then runs from `offset`
   * through whatever is held contiguously after it. Returns the bytes freed.
   */
  skipTo(offset: number): number {
    if (offset <= this.prefixEnd) return 0;
    let freed = 0;
    let drop = 0;
    while (drop < this.segments.length && this.segments[drop]!.end <= offset) {
      freed += this.segments[drop]!.end - this.segments[drop]!.start;
      drop++;
    }
    this.segments.splice(0, drop);
    const first = this.segments[0];
    if (first && first.start < offset) {
      this.segments[0] = { start: offset, end: first.end, buf: first.buf, at: first.at + offset - first.start };
      freed += offset - first.start;
    }
    this.held -= freed;
    this.released = offset;
    this.prefixEnd = offset;
    this.prefixIndex = 0;
    while (this.prefixIndex < this.segments.length && this.segments[this.prefixIndex]!.start === this.prefixEnd) {
      this.prefixEnd = this.segments[this.prefixIndex]!.end;
      this.prefixIndex++;
    }
    this.highest = Math.max(this.highest, offset);
    return freed;
  }

  /**
   * Forgets held bytes of [from, to) at or past the prefix (bytes found not to be genuine), so that
   * other copies of those offsets are taken when they come. Returns the bytes freed.
   */
  remove(from: number, to: number): number {
    from = Math.max(from, this.prefixEnd);
    if (to <= from) return 0;
    let freed = 0;
    const kept: Segment[] = [];
    for (const seg of this.segments) {
      if (seg.end <= from || seg.start >= to) {
        kept.push(seg);
        continue;
      }
      if (seg.start < from) kept.push({ start: seg.start, end: from, buf: seg.buf, at: seg.at });
      if (seg.end > to) kept.push({ start: to, end: seg.end, buf: seg.buf, at: seg.at + to - seg.start });
      freed += Math.min(seg.end, to) - Math.max(seg.start, from);
    }
    this.segments.splice(0, this.segments.length, ...kept);
    this.held -= freed;
    this.highest =
      this.segments.length === 0
        ? this.prefixEnd
        : Math.max(this.prefixEnd, this.segments[this.segments.length - 1]!.end);
    return freed;
  }

  /** The end of the bytes held contiguously from `offset` (`offset` itself when it is not held). */
  contiguousEnd(offset: number): number {
    let end = offset;
    for (let i = this.indexAfter(offset); i < this.segments.length; i++) {
      const seg = this.segments[i];
      if (seg!.start > end) break;
      end = seg!.end;
    }
    return end;
  }

  /** The holes in [from, to). */
  missing(from: number, to: number): ByteRange[] {
    const gaps: ByteRange[] = [];
    let cursor = Math.max(from, this.released);
    for (let i = this.indexAfter(from); i < this.segments.length && cursor < to; i++) {
      const seg = this.segments[i];
      if (seg!.start >= to) break;
      if (seg!.start > cursor) gaps.push({ start: cursor, end: seg!.start });
      cursor = Math.max(cursor, seg!.end);
    }
    if (cursor < to) gaps.push({ start: cursor, end: to });
    return gaps;
  }

  /**
   * As {@link peek}, but a view of the bytes held when they lie in one segment (no copy): read it,
   * never write it.
   */
  read(offset: number, n: number): Uint8Array {
    const i = this.indexAfter(offset);
    const seg = this.segments[i];
    if (seg === undefined || seg.start > offset) return EMPTY;
    if (seg.end >= offset + n) return bytesOf(seg, offset, offset + n);
    return this.peek(offset, n);
  }

  /** Up to `n` bytes held contiguously from `offset` (fewer, or none, where a hole starts). */
  peek(offset: number, n: number): Uint8Array {
    const out = new Uint8Array(n);
    const filled = this.copyContiguous(out, offset, n);
    return filled === n ? out : out.subarray(0, filled);
  }

  /** Copies bytes [from, to), which must all be held, into `out` at `at`. */
  copy(out: Uint8Array, at: number, from: number, to: number): void {
    const n = this.copyContiguous(out.subarray(at, at + (to - from)), from, to - from);
    if (n !== to - from) throw new Error(`bytes [${from + n}, ${to}) are not held`);
  }

  /** Copies the held bytes of [from, to) into `out` at `at` (out[at + k] ↔ byte from + k); holes are left as they are. */
  copyHeld(out: Uint8Array, at: number, from: number, to: number): void {
    for (let i = this.indexAfter(from); i < this.segments.length; i++) {
      const seg = this.segments[i];
      if (seg!.start >= to) break;
      const start = Math.max(seg!.start, from);
      const end = Math.min(seg!.end, to);
      if (end > start) out.set(bytesOf(seg!, start, end), at + (start - from));
    }
  }

  private copyContiguous(out: Uint8Array, offset: number, n: number): number {
    let filled = 0;
    for (let i = this.indexAfter(offset); i < this.segments.length && filled < n; i++) {
      const seg = this.segments[i];
      const want = offset + filled;
      if (seg!.start > want) break;
      const take = Math.min(seg!.end - want, n - filled);
      out.set(bytesOf(seg!, want, want + take), filled);
      filled += take;
    }
    return filled;
  }
}
