/**
 * The received, not yet read bytes of one stream, kept as the chunks they arrived in: what the
 * incremental readers (HTTP/3 frames, Warp messages) share. Bytes are looked at without copying where
 * they lie in one chunk, and the stream offset of the next unread byte is counted.
 *
 * Pure, isomorphic.
 */
import { varintLengthOf } from './varint.js';

const EMPTY = new Uint8Array(0);

export class ChunkQueue {
  private readonly chunks: Uint8Array[] = [];
  /** Bytes of `chunks[0]` already read. */
  private headOffset = 0;
  private buffered = 0;
  private consumed = 0;

  /** Bytes pushed and not yet read. */
  get length(): number {
    return this.buffered;
  }

  /** Bytes of the stream read so far: the stream offset of the next unread byte. */
  get offset(): number {
    return this.consumed;
  }

  /** Queues a chunk (kept, not copied: it must not change afterwards). Empty chunks are ignored. */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** Up to `n` unread bytes without reading them: a view when they lie in one chunk, else a copy. */
  peek(n: number): Uint8Array {
    const head = this.chunks[0];
    if (!head) return EMPTY;
    const inHead = head.length - this.headOffset;
    if (inHead >= n || this.chunks.length === 1)
      return head.subarray(this.headOffset, this.headOffset + Math.min(n, inHead));
    const out = new Uint8Array(Math.min(n, this.buffered));
    let filled = 0;
    let offset = this.headOffset;
    for (const chunk of this.chunks) {
      const part = Math.min(chunk.length - offset, out.length - filled);
      out.set(chunk.subarray(offset, offset + part), filled);
      filled += part;
      offset = 0;
      if (filled === out.length) break;
    }
    return out;
  }

  /**
   * The unread bytes up to 16 (see {@link peek}), once they start with `count` whole QUIC varints
   * (RFC 9000 §16; `count` at most 2); `undefined` until then. Nothing is read.
   */
  peekVarints(count: 1 | 2): Uint8Array | undefined {
    const head = this.peek(16);
    let end = 0;
    for (let i = 0; i < count; i++) {
      if (end >= head.length) return undefined;
      end += varintLengthOf(head[end]!);
      if (end > head.length) return undefined;
    }
    return head;
  }

  /** Reads `n` bytes (`n` ≤ {@link length}): a view when they lie in one chunk, else one copy. */
  take(n: number): Uint8Array {
    if (n === 0) return new Uint8Array(0);
    const out = this.peek(n);
    this.skip(n);
    return out;
  }

  /** Reads up to `max` bytes from the first chunk as a view (a piece of a payload passed through); empty when nothing is buffered. */
  takePiece(max: number): Uint8Array {
    const head = this.chunks[0];
    if (!head) return EMPTY;
    const n = Math.min(max, head.length - this.headOffset);
    const piece = head.subarray(this.headOffset, this.headOffset + n);
    this.skip(n);
    return piece;
  }

  /** Reads and drops up to `max` bytes, as many as are buffered; returns how many. */
  drop(max = this.buffered): number {
    const n = Math.min(max, this.buffered);
    this.skip(n);
    return n;
  }

  /** Reads and drops `n` bytes (`n` ≤ {@link length}). */
  skip(n: number): void {
    this.buffered -= n;
    this.consumed += n;
    let left = n;
    while (left > 0) {
      const inHead = this.chunks[0]!.length - this.headOffset;
      if (left < inHead) {
        this.headOffset += left;
        return;
      }
      left -= inHead;
      this.chunks.shift();
      this.headOffset = 0;
    }
  }
}
