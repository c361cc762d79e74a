/**
 * The bytes of one QUIC stream as STREAM frames deliver them: in any order, duplicated, with holes
 * (RFC 9000 §2.2: "data at a given offset MUST NOT change if it is sent multiple times"; the first copy
 * received is kept). A sorted list of non-overlapping segments, each a private copy of its bytes.
 *
 * Isomorphic: Uint8Array only.
 */

/** A byte range, start inclusive, end exclusive. */
export interface ByteRange {
  start: number;
  end: number;
}

interface Segment {
  readonly start: number;
  readonly end: number;
  readonly data: Uint8Array;
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
      this.segments.push({ start: offset, end, data: data.slice() });
      added = data.length;
    } else {
      for (const gap of this.missing(offset, end)) {
        const at = this.indexAfter(gap.start);
        this.segments.splice(at, 0, {
          start: gap.start,
          end: gap.end,
          data: data.slice(gap.start - offset, gap.end - offset),
        });
        added += gap.end - gap.start;
      }
    }
    this.held += added;
    this.highest = Math.max(this.highest, end);
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
      this.segments[0] = { start: offset, end: first.end, data: first.data.subarray(offset - first.start) };
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
      if (seg.start < from) kept.push({ start: seg.start, end: from, data: seg.data.subarray(0, from - seg.start) });
      if (seg.end > to) kept.push({ start: to, end: seg.end, data: seg.data.subarray(to - seg.start) });
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
      if (end > start) out.set(seg!.data.subarray(start - seg!.start, end - seg!.start), at + (start - from));
    }
  }

  private copyContiguous(out: Uint8Array, offset: number, n: number): number {
    let filled = 0;
    for (let i = this.indexAfter(offset); i < this.segments.length && filled < n; i++) {
      const seg = this.segments[i];
      const want = offset + filled;
      if (seg!.start > want) break;
      const take = Math.min(seg!.end - want, n - filled);
      out.set(seg!.data.subarray(want - seg!.start, want - seg!.start + take), filled);
      filled += take;
    }
    return filled;
  }
}
