/**
 * The send side of a transport that orders everything itself (TCP under the WebSocket fallback): the only
 * place priorities (RFC 9218 urgency) can act is before bytes reach it. Writes are cut into frames of at
 * most `maxFrameBytes` and wait here; while the transport holds less than `highWaterMark` bytes, it is
 * handed one frame of the first stream of the lowest urgency that has bytes queued, and that stream goes
 * to the back of its urgency's list: round-robin among streams of equal urgency (`incremental` or not).
 *
 * - A write resolves when its last frame was handed to the transport and the transport holds less than
 *   the mark again: that is the backpressure.
 * - A write that would take the queue past `maxQueuedBytes` rejects with `SendQueueFullError` (nothing
 *   of it queued), unless the queue is empty: a writer that awaits each write never meets it.
 * - The scheduler runs once the current task is over, so that writes made together compete together.
 */

/** What the scheduler hands frames to. */
export interface FrameTransport {
  /** Bytes handed over and not yet sent (a WebSocket's `bufferedAmount`). */
  readonly bufferedAmount: number;
  /** False once nothing can be sent any more. */
  readonly open: boolean;
  /** Sends one frame of stream `id`; `sent` runs once the transport has sent it. */
  send(id: number, data: Uint8Array, fin: boolean, sent: () => void): void;
}

export interface UrgencySchedulerLimits {
  /** The transport's `bufferedAmount` below which it is handed more. */
  highWaterMark: number;
  /** The largest frame payload. */
  maxFrameBytes: number;
  /** Bytes queued here at most (see `SendQueueFullError`). */
  maxQueuedBytes: number;
}

/** A write the peer cannot take now: the session's send queue is full. */
export class SendQueueFullError extends Error {
  constructor(
    readonly streamId: number,
    readonly queuedBytes: number,
    readonly maxQueuedBytes: number,
  ) {
    super(
      `stream ${streamId}: the send queue holds ${queuedBytes} bytes, at most ${maxQueuedBytes} (the peer reads too slowly); await each write`,
    );
    this.name = 'SendQueueFullError';
  }
}

/** RFC 9218 §4.1: urgency 0–7, default 3. */
export function clampUrgency(urgency: number | undefined): number {
  return urgency === undefined || !Number.isFinite(urgency) ? 3 : Math.min(7, Math.max(0, Math.round(urgency)));
}

interface QueuedWrite {
  data: Uint8Array;
  offset: number;
  fin: boolean;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** One stream's writes waiting in the scheduler, and its priority. */
export class StreamQueue {
  readonly writes: QueuedWrite[] = [];
  bytes = 0;
  /** In its urgency's list (it has bytes queued). */
  scheduled = false;
  urgency: number;

  constructor(
    readonly id: number,
    urgency?: number,
    public incremental = false,
  ) {
    this.urgency = clampUrgency(urgency);
  }
}

export class UrgencyScheduler {
  /** Streams with queued bytes, by urgency; each list is served round-robin. */
  private readonly ready: StreamQueue[][] = Array.from({ length: 8 }, () => []);
  private queued = 0;
  /** Writes whose bytes were handed over, waiting for the transport to fall below the mark. */
  private readonly drained: (() => void)[] = [];
  private pumping = false;
  private readonly onSent = () => this.schedule();

  /** `onFinSent` hears of each stream whose FIN was handed to the transport. */
  constructor(
    private readonly transport: FrameTransport,
    private readonly limits: UrgencySchedulerLimits,
    private readonly onFinSent: (queue: StreamQueue) => void = () => undefined,
  ) {}

  /** Bytes accepted by writes and not yet handed to the transport. */
  get queuedBytes(): number {
    return this.queued;
  }

  /** Whether a write of `bytes` would be taken (see `SendQueueFullError`). */
  hasRoomFor(bytes: number): boolean {
    return this.queued === 0 || this.queued + bytes <= this.limits.maxQueuedBytes;
  }

  /** Queues `data` (and FIN) of `q`; resolves when it was handed over and the transport is below the mark. */
  write(q: StreamQueue, data: Uint8Array, fin: boolean): Promise<void> {
    if (!this.hasRoomFor(data.length))
      return Promise.reject(new SendQueueFullError(q.id, this.queued, this.limits.maxQueuedBytes));
    return new Promise<void>((resolve, reject) => {
      q.writes.push({ data, offset: 0, fin, resolve, reject });
      q.bytes += data.length;
      this.queued += data.length;
      if (!q.scheduled) {
        q.scheduled = true;
        this.ready[q.urgency]!.push(q);
      }
      this.schedule();
    });
  }

  /** `q`'s queued bytes leave the queue (reset, stopped) and its writes reject with `error`. */
  drop(q: StreamQueue, error: Error): void {
    this.queued -= q.bytes;
    q.bytes = 0;
    if (q.scheduled) {
      const list = this.ready[q.urgency]!;
      list.splice(list.indexOf(q), 1);
      q.scheduled = false;
    }
    for (const w of q.writes.splice(0)) w.reject(error);
  }

  setPriority(q: StreamQueue, urgency: number, incremental: boolean): void {
    const u = clampUrgency(urgency);
    q.incremental = incremental;
    if (q.urgency === u) return;
    if (q.scheduled) {
      const list = this.ready[q.urgency]!;
      list.splice(list.indexOf(q), 1);
      this.ready[u]!.push(q);
    }
    q.urgency = u;
  }

  /** The transport is gone: nothing more is sent; writers waiting for it to drain are released. */
  close(): void {
    for (const list of this.ready) list.length = 0;
    this.queued = 0;
    for (const resolve of this.drained.splice(0)) resolve();
  }

  /** Runs the scheduler once the current task is over. */
  schedule(): void {
    if (this.pumping) return;
    this.pumping = true;
    queueMicrotask(() => {
      this.pumping = false;
      this.pump();
    });
  }

  /**
   * Hands the transport frames while it holds less than the high-water mark: from the lowest urgency
   * that has queued bytes, one frame of the first stream, which then goes to the back of its urgency's
   * list (round-robin). Each frame's `sent` runs the scheduler again.
   */
  private pump(): void {
    const transport = this.transport;
    if (!transport.open) return;
    const { highWaterMark, maxFrameBytes } = this.limits;
    while (transport.bufferedAmount < highWaterMark) {
      const list = this.ready.find((l) => l.length > 0);
      if (!list) break;
      const q = list.shift()!;
      const w = q.writes[0]!;
      const n = Math.min(maxFrameBytes, w.data.length - w.offset);
      const last = w.offset + n === w.data.length;
      const fin = last && w.fin;
      transport.send(q.id, w.data.subarray(w.offset, w.offset + n), fin, this.onSent);
      w.offset += n;
      q.bytes -= n;
      this.queued -= n;
      if (last) {
        q.writes.shift();
        this.drained.push(w.resolve);
      }
      if (q.writes.length > 0) list.push(q);
      else q.scheduled = false;
      if (fin) this.onFinSent(q);
    }
    if (transport.bufferedAmount < highWaterMark) for (const resolve of this.drained.splice(0)) resolve();
  }
}
