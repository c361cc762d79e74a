/**
 * Bytes received from a pipe and not yet consumed, kept as the pieces they arrived in so that a stream
 * delivered a few bytes at a time is copied once per box, not once per piece.
 */
export class ByteQueue {
  private pieces: Uint8Array[] = [];
  /** Index in `pieces` of the first piece with unconsumed bytes (an index, not shift(), to stay linear). */
  private head = 0;
  /** Bytes of `pieces[head]` already consumed. */
  private headOffset = 0;
  private size = 0;

  get length(): number {
    return this.size;
  }

  /** Queues a copy of `bytes`: the caller may reuse its buffer as soon as this returns. */
  push(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.pieces.push(bytes.slice());
    this.size += bytes.length;
  }

  /** Up to `count` bytes from the front, without consuming them. */
  peek(count: number): Uint8Array {
    const n = Math.min(count, this.size);
    const first = this.pieces[this.head];
    if (first && first.length - this.headOffset >= n) return first.subarray(this.headOffset, this.headOffset + n);
    return this.copyFront(n);
  }

  /** Consumes the first `count` bytes (at most `length`) and returns them contiguously. */
  take(count: number): Uint8Array {
    if (count > this.size) throw new RangeError(`cannot take ${count} bytes from a queue of ${this.size}`);
    const first = this.pieces[this.head];
    const taken =
      first && first.length - this.headOffset >= count
        ? first.subarray(this.headOffset, this.headOffset + count)
        : this.copyFront(count);
    this.discard(count);
    return taken;
  }

  clear(): void {
    this.pieces = [];
    this.head = 0;
    this.headOffset = 0;
    this.size = 0;
  }

  private copyFront(count: number): Uint8Array {
    const out = new Uint8Array(count);
    let written = 0;
    let offset = this.headOffset;
    for (let i = this.head; written < count; i++) {
      const part = this.pieces[i]!.subarray(offset, offset + (count - written));
      out.set(part, written);
      written += part.length;
      offset = 0;
    }
    return out;
  }

  private discard(count: number): void {
    this.size -= count;
    let left = count;
    while (left > 0) {
      const available = this.pieces[this.head]!.length - this.headOffset;
      if (available > left) {
        this.headOffset += left;
        break;
      }
      left -= available;
      this.head++;
      this.headOffset = 0;
    }
    if (this.head > 64 && this.head * 2 > this.pieces.length) {
      this.pieces = this.pieces.slice(this.head);
      this.head = 0;
    }
  }
}
