/**
 * The sending side of forward error correction (docs/multicast.md, "Forward error correction"): sees
 * each datagram of a session as it leaves, groups consecutive packet numbers into blocks of k, and
 * makes the m repair packets of a block (src/wire/fec.ts) once it is full, when its owner calls `flush`
 * (MulticastUdpSender does when its queue runs empty), or `flushMs` after its first packet (a slow stream
 * must not hold its protection back for seconds): a block lasts at most `flushMs`.
 *
 * - A block is consecutive packet numbers: a gap (datagrams refused by a full queue never left) closes the
 *   block before it.
 * - A block closed early with k' < k sources gets ceil(m · k' / k) repair packets (at least 1): the
 *   overhead stays m / k whatever the stream's pace.
 * - Datagrams that are not packets of the session (no short header) are passed over, unprotected.
 *
 * Isomorphic: the timer is injectable.
 */
import {
  MAX_FEC_BLOCK,
  WireError,
  encodeRepair,
  encodeRepairPacket,
  repairPacketOverhead,
  shortHeaderPacketNumber,
} from '../wire/index.js';

/** FEC of a session as its sender is configured with it. */
export interface FecOptions {
  /** Source packets per block, 1 or more. */
  k: number;
  /** Repair packets per full block, 1 or more; k + m ≤ 255. */
  m: number;
  /** UDP port of the repair packets on the session's group; default the session's port + 1. */
  port?: number;
  /** Longest a block waits for its k-th packet after its first, ms; default 50. */
  flushMs?: number;
}

export interface FecTimers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface FecEncoderOptions {
  /** The session ID: the Destination Connection ID of its packets, repeated in each repair packet. */
  sessionId: Uint8Array;
  k: number;
  m: number;
  flushMs?: number;
  /** Receives the repair packets of each block as it closes, in order. */
  output: (repairs: Uint8Array[]) => void;
  timers?: FecTimers;
}

export interface FecEncoderStats {
  /** Blocks closed: full, cut by a gap, or flushed by time. */
  blocks: number;
  /** Source packets protected. */
  sourcePackets: number;
  repairPackets: number;
  repairBytes: number;
}

export const DEFAULT_FEC_FLUSH_MS = 50;

const defaultTimers: FecTimers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** Checks k, m and flushMs; throws RangeError with what is wrong. */
export function checkFecOptions(o: FecOptions): void {
  if (!Number.isInteger(o.k) || o.k < 1) throw new RangeError(`FEC k ${o.k} is not 1 or more`);
  if (!Number.isInteger(o.m) || o.m < 1) throw new RangeError(`FEC m ${o.m} is not 1 or more`);
  if (o.k + o.m > MAX_FEC_BLOCK) throw new RangeError(`FEC k + m = ${o.k + o.m}: at most ${MAX_FEC_BLOCK}`);
  if (o.port !== undefined && (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535))
    throw new RangeError(`FEC port ${o.port} is not 1 to 65535`);
  if (o.flushMs !== undefined && !(Number.isFinite(o.flushMs) && o.flushMs >= 0))
    throw new RangeError(`FEC flushMs ${o.flushMs} is not 0 or more`);
}

/**
 * The largest source datagram of a session with FEC whose datagrams are at most `maxDatagramSize`: its
 * repair packets carry the longest source of their block plus a header, and must fit the limit too.
 */
export function fecSourceDatagramSize(maxDatagramSize: number, sessionIdLength: number): number {
  return maxDatagramSize - repairPacketOverhead(sessionIdLength);
}

export class FecEncoder {
  private readonly sessionId: Uint8Array;
  private readonly k: number;
  private readonly m: number;
  private readonly flushMs: number;
  private readonly output: (repairs: Uint8Array[]) => void;
  private readonly timers: FecTimers;
  private largest: number | undefined;
  private first = 0;
  private sources: Uint8Array[] = [];
  private timer: unknown;
  private closed = false;
  private readonly counters: FecEncoderStats = { blocks: 0, sourcePackets: 0, repairPackets: 0, repairBytes: 0 };

  constructor(o: FecEncoderOptions) {
    checkFecOptions(o);
    this.sessionId = o.sessionId.slice();
    this.k = o.k;
    this.m = o.m;
    this.flushMs = o.flushMs ?? DEFAULT_FEC_FLUSH_MS;
    this.output = o.output;
    this.timers = o.timers ?? defaultTimers;
  }

  get stats(): FecEncoderStats {
    return { ...this.counters };
  }

  /** A datagram of the session that has just been sent. */
  add(datagram: Uint8Array): void {
    if (this.closed) return;
    let packetNumber: number;
    try {
      packetNumber = shortHeaderPacketNumber(datagram, {
        dcidLength: this.sessionId.length,
        largestPacketNumber: this.largest,
      });
    } catch (error) {
      if (error instanceof WireError) return;
      throw error;
    }
    this.largest = Math.max(this.largest ?? 0, packetNumber);
    if (this.sources.length > 0 && packetNumber !== this.first + this.sources.length) this.flush();
    if (this.sources.length === 0) {
      this.first = packetNumber;
      this.timer = this.timers.setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, this.flushMs);
    }
    this.sources.push(datagram);
    this.counters.sourcePackets++;
    if (this.sources.length === this.k) this.flush();
  }

  /** Closes the block being filled now: its repair packets go to `output`. */
  flush(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    const sources = this.sources;
    if (sources.length === 0) return;
    this.sources = [];
    const k = sources.length;
    const m = k === this.k ? this.m : Math.max(1, Math.ceil((this.m * k) / this.k));
    const repairs = encodeRepair(sources, m).map((symbol, index) =>
      encodeRepairPacket({ sessionId: this.sessionId, firstPacketNumber: this.first, k, m, index, symbol }),
    );
    this.counters.blocks++;
    this.counters.repairPackets += repairs.length;
    for (const r of repairs) this.counters.repairBytes += r.length;
    this.output(repairs);
  }

  /** Stops the timer; the block being filled is dropped. */
  close(): void {
    this.closed = true;
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.sources = [];
  }
}
