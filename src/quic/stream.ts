/** A QUIC stream (RFC 9000 §2–3) of a QuicConnection, and the error a peer's abrupt end of one raises. */
import type { QuicConnection } from './connection.js';
import * as internal from './internal.js';
import { quiche } from './quiche.js';

/** quiche's urgency for a stream given none (it orders those after every RFC 9218 urgency). */
const QUICHE_DEFAULT_URGENCY = 127;

/**
 * The peer ended one direction of a stream abruptly: STOP_SENDING (RFC 9000 §3.5, §19.5) fails our
 * writes (`kind: 'stopped'`), RESET_STREAM (§3.2, §19.4) fails our reads (`kind: 'reset'`). `code` is
 * the application error code the frame carried.
 */
export class QuicStreamError extends Error {
  constructor(
    readonly streamId: number,
    readonly code: number,
    readonly kind: 'stopped' | 'reset',
  ) {
    super(
      `stream ${streamId} ${kind === 'stopped' ? 'stopped by the peer (STOP_SENDING' : 'reset by the peer (RESET_STREAM'} ${code})`,
    );
    this.name = 'QuicStreamError';
  }
}

/** What quiche threw for a stream: its StreamStopped(code) / StreamReset(code) as a QuicStreamError, anything else as is. */
export function streamError(id: number, error: unknown): Error {
  const message = error instanceof Error ? error.message : String(error);
  const m = /^Stream(Stopped|Reset)\((\d+)\)$/.exec(message);
  if (m) return new QuicStreamError(id, Number(m[2]), m[1] === 'Stopped' ? 'stopped' : 'reset');
  return new Error(`stream ${id}: ${message}`);
}

/**
 * A QUIC stream: an async iterable of received chunks, and backpressured writes. Reads are drained into
 * a bounded queue; past the connection's `maxStreamBuffer` the stream is no longer drained, so QUIC flow
 * control (RFC 9000 §4) holds the peer back until the reader catches up. Writes resolve once quiche has
 * taken every byte (it takes what flow control and the congestion window allow; the rest waits for the
 * next pass with room), but the last byte of a write without FIN, which waits a turn for an end() to
 * carry (see heldTail). A peer's STOP_SENDING fails the writes and RESET_STREAM fails the reader with a
 * `QuicStreamError` carrying its code. Priorities per RFC 9218 §4 (urgency 0–7, incremental).
 */
export class QuicStream {
  private readonly chunks: Uint8Array[] = [];
  private buffered = 0;
  private ended = false;
  private error: Error | undefined;
  /** Set once writing can go no further (peer's STOP_SENDING, local reset, connection gone): later writes fail with it. */
  private writeError: Error | undefined;
  private wake: (() => void) | undefined;
  private readonly pendingWrites: {
    data: Uint8Array;
    fin: boolean;
    resolve: () => void;
    reject: (e: Error) => void;
  }[] = [];
  /** FIN was handed to quiche. */
  private finished = false;
  /**
   * The last byte of the last write without FIN, not yet handed to quiche, so that a FIN written after it
   * goes with data: quiche 0.18 loses a FIN sent alone once the data before it is acknowledged (the
   * stream then counts as complete, is collected, and the lost FIN is never sent again: the peer never
   * sees the end of the stream; cloudflare/quiche#2525). A write resolves once quiche took all but this
   * byte; the byte goes with the next write, or with the FIN, or alone after the writer had a turn to
   * end the stream (`tailWaited`).
   */
  private heldTail: Uint8Array | undefined;
  private tailWaited = false;
  /** quiche took bytes (or a FIN) of ours on this stream: it knows the stream, until it forgets it. */
  private created = false;
  private stoppedPromise: Promise<number> | undefined;
  private resolveStopped: ((code: number) => void) | undefined;
  /** quiche's urgency of this stream: the order in which the connection hands writers the send capacity. */
  [internal.urgency] = QUICHE_DEFAULT_URGENCY;

  constructor(
    private readonly conn: QuicConnection,
    readonly id: number,
  ) {}

  /** Client- or server-initiated, bidirectional or unidirectional (RFC 9000 §2.1). */
  get bidirectional(): boolean {
    return (this.id & 2) === 0;
  }

  /** Opened by this end (RFC 9000 §2.1: bit 0 is set on server-initiated streams). */
  get local(): boolean {
    return (this.id & 1) === (this.conn.isServer ? 1 : 0);
  }

  private priority: [number, boolean] | undefined;

  /**
   * RFC 9218: urgency 0 (highest) to 7, incremental or not. quiche knows a local stream only once
   * something was written to it, so before that the priority is kept and applied at the first write.
   */
  setPriority(urgency: number, incremental = false): void {
    this.priority = [Math.max(0, Math.min(7, urgency)), incremental];
    this[internal.urgency] = this.priority[0];
    this.conn[internal.prioritized] = true;
    try {
      this.conn[internal.native].streamPriority(this.id, this.priority[0], incremental);
      this.priority = undefined;
    } catch {
      // not created yet
    }
  }

  /** Queued; handed to quiche in this turn's pass over the connection. Resolves once quiche took every byte. */
  write(data: Uint8Array, fin = false): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.writeError) return reject(this.writeError);
      this.pendingWrites.push({ data, fin, resolve, reject });
      this.conn[internal.queueWrites](this);
    });
  }

  end(data: Uint8Array = new Uint8Array(0)): Promise<void> {
    return this.write(data, true);
  }

  /** RESET_STREAM (RFC 9000 §19.4) with an application error code. */
  reset(code: number): void {
    this.conn[internal.native].streamShutdown(this.id, quiche().Shutdown.Write, code);
    this.failWrites(new Error(`stream ${this.id} reset (${code})`));
    this.conn[internal.schedule]();
  }

  /** STOP_SENDING (RFC 9000 §19.5): the peer should stop writing. */
  stopSending(code: number): void {
    // quiche 0.18 drops what it holds of the stream without counting it as consumed, so that much
    // connection credit (RFC 9000 §4.5) would be lost for good and a long session stalls once the
    // losses add up to its window (fixed upstream in cloudflare/quiche#2158, not in this binding).
    // Reading it out first counts it; what arrives after the shutdown quiche counts itself.
    this.conn[internal.discardReceived](this.id);
    this.conn[internal.native].streamShutdown(this.id, quiche().Shutdown.Read, code);
    this.ended = true;
    this.chunks.length = 0;
    this.buffered = 0;
    this.wake?.();
    this.releaseIfOver();
    this.conn[internal.schedule]();
  }

  /**
   * Resolves with the application error code of the peer's STOP_SENDING (RFC 9000 §3.5), if it sends
   * one: the writer can stop producing. Stays pending otherwise. Watched on each batch of packets
   * while asked for, so it costs nothing unless used.
   */
  get stopped(): Promise<number> {
    if (!this.stoppedPromise) {
      this.stoppedPromise = new Promise((resolve) => (this.resolveStopped = resolve));
      if (this.writeError instanceof QuicStreamError && this.writeError.kind === 'stopped')
        this.resolveStopped!(this.writeError.code);
      else if (!this.writeError && !this.finished && (this.local || this.bidirectional))
        this.conn[internal.watchStop](this);
    }
    return this.stoppedPromise;
  }

  /** Called by the connection's pass: hands quiche the pending writes; true when none is left. */
  [internal.drainWrites](): boolean {
    while (this.pendingWrites.length > 0) {
      const w = this.pendingWrites[0]!;
      const bareFin = w.fin && w.data.length === 0;
      if (this.heldTail) {
        // The byte held back from the previous write goes first, with the FIN when this write is an end().
        const sent = this.send(this.heldTail, bareFin);
        if (sent === 'failed') return true;
        if (sent === 'blocked') return false;
        this.heldTail = undefined;
        if (bareFin) {
          this.completeWrite(w);
          continue;
        }
      } else if (bareFin && !this.roomToSend()) {
        return false; // a FIN with no byte to carry it (see roomToSend)
      }
      // A write without FIN keeps its last byte back (see heldTail).
      const keep = !w.fin && w.data.length > 0;
      const data = keep ? w.data.subarray(0, -1) : w.data;
      let written = 0;
      if (data.length > 0 || w.fin) {
        let result: number | null;
        try {
          result = this.conn[internal.native].streamSend(this.id, data, w.fin);
          if (this.priority) this.setPriority(...this.priority);
        } catch (error) {
          const e = streamError(this.id, error);
          if (e instanceof QuicStreamError) {
            this.failWrites(e);
            return true;
          }
          this.pendingWrites.shift(); // e.g. StreamLimit: this write fails, the next may not
          w.reject(e);
          continue;
        }
        if (result === null) return this.failIfForgotten(); // blocked (flow control, congestion), or gone
        this.created = true;
        written = result;
      }
      if (written < data.length) {
        w.data = w.data.subarray(written);
        return false;
      }
      if (keep) {
        this.heldTail = w.data.slice(-1); // a copy: the writer may reuse its buffer once the write resolved
        this.tailWaited = false;
      }
      this.completeWrite(w);
    }
    if (this.heldTail) {
      if (!this.tailWaited) {
        // The writer's continuation runs before the next pass: an end() it calls takes the byte with its FIN.
        this.tailWaited = true;
        this.conn[internal.schedule]();
        return false;
      }
      const sent = this.send(this.heldTail, false);
      if (sent === 'blocked') return false;
      this.heldTail = undefined;
    }
    return true;
  }

  /** Hands quiche `data` (the held byte); a stream error fails the writes. */
  private send(data: Uint8Array, fin: boolean): 'sent' | 'blocked' | 'failed' {
    try {
      const written = this.conn[internal.native].streamSend(this.id, data, fin);
      if (this.priority) this.setPriority(...this.priority);
      if (written === data.length) {
        this.created = true;
        return 'sent';
      }
      return this.failIfForgotten() ? 'failed' : 'blocked';
    } catch (error) {
      this.failWrites(streamError(this.id, error));
      return 'failed';
    }
  }

  private completeWrite(w: { fin: boolean; resolve: () => void }): void {
    this.pendingWrites.shift();
    if (w.fin) {
      this.finished = true;
      this.conn[internal.unwatchStop](this); // a STOP_SENDING after FIN changes nothing for the writer
      this.releaseIfOver();
    }
    w.resolve();
  }

  /**
   * Whether quiche would send a bare FIN in this pass's flush. A FIN with no held byte to carry it (the
   * writer ended the stream a turn or more after its last write) is sent alone, and quiche loses it if
   * the data before it is acknowledged before it goes out (see heldTail). So it waits in our queue until
   * the congestion window has room (the stream's capacity includes it); its packet may still be lost.
   */
  private roomToSend(): boolean {
    try {
      return this.conn[internal.native].streamCapacity(this.id) > 0;
    } catch {
      return true; // a stream quiche does not know yet, or a stopped one: streamSend tells
    }
  }

  /** Called by the connection's pass while `stopped` is watched: asks quiche whether the peer stopped the stream. */
  [internal.checkStopped](): void {
    try {
      this.conn[internal.native].streamWritable(this.id, 0);
    } catch (error) {
      // StreamStopped counts; a local stream quiche does not know yet (nothing written) throws too.
      const e = streamError(this.id, error);
      if (e instanceof QuicStreamError) this.failWrites(e);
      else this.failIfForgotten();
    }
  }

  /**
   * quiche forgets a stream whose sending the peer stopped once all it had sent is acknowledged, and may
   * do so within the batch of packets that brought the STOP_SENDING, before a pass looks for it: its code
   * is then lost, and a write would wait for room that never comes. A stream of ours that quiche knew and
   * no longer knows, with our FIN not handed over, can only have gone that way: writing fails as
   * stopped (code 0, the real one unknown). True when it did.
   */
  private failIfForgotten(): boolean {
    if (!this.created || this.finished || this.writeError) return false;
    try {
      this.conn[internal.native].streamCapacity(this.id);
      return false;
    } catch (error) {
      if (!/InvalidStreamState/.test(error instanceof Error ? error.message : String(error))) return false;
      this.failWrites(new QuicStreamError(this.id, 0, 'stopped'));
      return true;
    }
  }

  /** Writing is over: pending and later writes fail with `error`; a STOP_SENDING resolves `stopped`. */
  private failWrites(error: Error): void {
    this.writeError ??= error;
    this.heldTail = undefined;
    for (const w of this.pendingWrites.splice(0)) w.reject(error);
    if (error instanceof QuicStreamError && error.kind === 'stopped') this.resolveStopped?.(error.code);
    this.conn[internal.unwatchStop](this);
    this.releaseIfOver();
  }

  /**
   * Once both directions are over (read: FIN or reset read, or stopped; write: FIN handed to quiche, or
   * failed; a unidirectional stream has one of them only), the connection lets go of the stream: quiche
   * finishes what is left (retransmissions, acknowledgements) on its own.
   */
  private releaseIfOver(): void {
    const readOver = this.ended || (this.local && !this.bidirectional);
    const writeOver = this.finished || this.writeError !== undefined || (!this.local && !this.bidirectional);
    if (readOver && writeOver) this.conn[internal.release](this);
  }

  /** Called by the connection with received bytes. */
  [internal.deliver](data: Uint8Array, fin: boolean): void {
    if (data.length > 0) {
      this.chunks.push(data);
      this.buffered += data.length;
    }
    if (fin) {
      this.ended = true;
      this.releaseIfOver();
    }
    this.wake?.();
  }

  /** The read side failed (e.g. RESET_STREAM): the reader sees `error` after the chunks already queued. */
  [internal.failRead](error: Error): void {
    if (this.ended) return;
    this.error = error;
    this.ended = true;
    this.releaseIfOver();
    this.wake?.();
  }

  /** The stream can go no further: writes under way fail; a read side that already saw FIN stays clean. */
  [internal.fail](error: Error): void {
    this[internal.failRead](error);
    this.failWrites(error);
  }

  /** Set by the connection when it stopped draining this stream at its read-ahead bound. */
  [internal.paused] = false;

  get bufferedBytes(): number {
    return this.buffered;
  }

  get readEnded(): boolean {
    return this.ended;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    for (;;) {
      const chunk = this.chunks.shift();
      if (chunk) {
        this.buffered -= chunk.length;
        // The reader caught up with a stream that was left undrained at its bound: drain it now, and
        // send what reading frees (MAX_STREAM_DATA, RFC 9000 §4.2), else the peer waits for nothing.
        if (this[internal.paused]) {
          this[internal.paused] = false;
          this.conn[internal.queueReads]();
        }
        yield chunk;
        continue;
      }
      if (this.error) throw this.error;
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }

  /** Every byte until FIN, at most `limit`. */
  async readAll(limit = 64 * 1024 * 1024): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of this) {
      size += chunk.length;
      if (size > limit) throw new Error(`stream ${this.id}: more than ${limit} bytes`);
      parts.push(chunk);
    }
    return new Uint8Array(Buffer.concat(parts));
  }
}
