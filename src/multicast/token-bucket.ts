/**
 * A token-bucket pacer for the multicast sender: multicast has no congestion control
 * and no acknowledgments, so the sender itself keeps to a rate that receivers' socket buffers and the
 * network can take.
 *
 * Tokens are bytes. They accrue at `rateBitsPerSecond / 8` bytes per second up to `burstBytes`.
 * `delayFor(n)` takes n tokens at once, letting the balance go negative (a debt), and says how long the
 * caller must wait before sending those n bytes: 0 while the balance stays ≥ 0, else debt / rate. Calls
 * made before earlier ones have been waited out queue behind them, so the schedule is exact:
 * over any interval of length T at most `burstBytes + rate·T` bytes become sendable (the bound on
 * bursts), and over a long run the sendable bytes approach `rate·T` (the long-run rate).
 * A single request larger than the burst is allowed; it just waits for its whole debt.
 *
 * Isomorphic; the clock is injectable (ms, monotonic).
 */
export interface TokenBucketOptions {
  /** Long-run rate, bit/s (> 0). */
  rateBitsPerSecond: number;
  /** Most bytes sendable at once after idling (> 0); default 10 × 1470 bytes. */
  burstBytes?: number;
  /** Milliseconds, monotonic; default `performance.now()`. */
  now?: () => number;
  /** Start full (default true): the first `burstBytes` go without delay. */
  startFull?: boolean;
}

export class TokenBucket {
  readonly rateBitsPerSecond: number;
  readonly burstBytes: number;
  private readonly bytesPerMs: number;
  private readonly now: () => number;
  private tokens: number;
  private last: number;

  constructor(options: TokenBucketOptions) {
    const { rateBitsPerSecond } = options;
    const burstBytes = options.burstBytes ?? 10 * 1470;
    if (!(Number.isFinite(rateBitsPerSecond) && rateBitsPerSecond > 0))
      throw new RangeError(`rate ${rateBitsPerSecond} bit/s is not a positive number`);
    if (!(Number.isFinite(burstBytes) && burstBytes > 0))
      throw new RangeError(`burst ${burstBytes} bytes is not a positive number`);
    this.rateBitsPerSecond = rateBitsPerSecond;
    this.burstBytes = burstBytes;
    this.bytesPerMs = rateBitsPerSecond / 8 / 1000;
    this.now = options.now ?? (() => performance.now());
    this.tokens = options.startFull === false ? 0 : burstBytes;
    this.last = this.now();
  }

  /** Tokens (bytes) now; negative while earlier requests are still being waited out. */
  get available(): number {
    this.refill();
    return this.tokens;
  }

  /** Takes `bytes` tokens; returns the milliseconds to wait before sending them (0: now). */
  delayFor(bytes: number): number {
    if (!(Number.isFinite(bytes) && bytes >= 0)) throw new RangeError(`${bytes} bytes is not a non-negative number`);
    this.refill();
    this.tokens -= bytes;
    return this.tokens >= 0 ? 0 : -this.tokens / this.bytesPerMs;
  }

  private refill(): void {
    const now = this.now();
    const elapsed = now - this.last;
    if (elapsed > 0) this.tokens = Math.min(this.burstBytes, this.tokens + elapsed * this.bytesPerMs);
    this.last = Math.max(this.last, now);
  }
}
