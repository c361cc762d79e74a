/**
 * Sends Warp segments to one session (draft-lcurley-warp-00 §3.2, §4.3, §4.4, §6.1):
 *
 * - **One stream per segment** (§3.2), HEADERS first (§4.2), then the segment's parts as they come.
 * - **Strict priority by delivery order** (§4.3), smaller first. QUIC offers eight urgencies (RFC 9218):
 *   the distinct orders of the streams under way are ranked, the first seven ranks get urgencies 0–6 and
 *   equal orders share one (incremental: round-robin, §4.3). Streams ranked beyond are pushcast's own
 *   queue: they are not written to the transport at all until they rank among the first eight, so that
 *   no amount of low-priority media can sit in QUIC's buffers ahead of what matters.
 * - **Resource limit** (§4.4, §6.1): the bytes waiting for the transport (queued here plus handed to a
 *   stream and not yet taken) are bounded; past the bound the lowest-priority stream is reset with code 0
 *   rather than queued, repeatedly, never the most important one.
 * - A peer's STOP_SENDING (the player no longer needs a segment) ends that stream alone.
 */
import type { Session, SessionStream } from '../webtransport/index.js';
import {
  type WarpCloseCode,
  encodeWarpMessage,
  encodeWarpMessageHeader,
  WarpMessageType,
  type WarpHeaders,
} from '../wire/index.js';
import type { WarpSource } from './source.js';

/**
 * Urgencies 0..6 for the first seven distinct orders; 7 for the rest. A stream ranked that low is not
 * opened (it waits in pushcast's queue); one opened earlier, overtaken since, is demoted to 7.
 */
const RANKED_URGENCIES = 7;

export interface WarpSenderOptions {
  /** Bytes that may wait for the transport before the lowest-priority stream is reset. */
  maxBacklogBytes: number;
  /** A relay may change the delivery order (§4.5); the new value goes on the wire too. */
  reorder?: (headers: WarpHeaders) => number;
  /**
   * How a stream goes on the wire: by default Warp's, HEADERS (with the order) then a SEGMENT or APP
   * message per part. MoQ's group streams have framing of their own and the same scheduling.
   */
  framing?: StreamFraming;
}

export interface StreamFraming {
  /** The bytes that open the stream. */
  start(source: WarpSource, order: number): Uint8Array;
  /** One part as it goes on the stream. */
  part(source: WarpSource, part: Uint8Array): Uint8Array;
}

export interface WarpSenderStats {
  /** Streams opened and finished (FIN) / reset at the resource limit / stopped by the peer. */
  streamsOpened: number;
  streamsFinished: number;
  streamsCancelled: number;
  streamsStopped: number;
  /** Streams under way, and how many of them wait in pushcast's queue. */
  active: number;
  held: number;
  backlogBytes: number;
  bytesWritten: number;
}

class OutgoingStream {
  stream: SessionStream | undefined;
  readonly queue: Uint8Array[] = [];
  queuedBytes = 0;
  inFlightBytes = 0;
  ended = false;
  finished = false;
  writing = false;
  urgency = -1;
  unfollow: () => void = () => undefined;

  constructor(
    readonly source: WarpSource,
    readonly order: number,
    readonly seq: number,
  ) {}
}

export class WarpSender {
  private readonly active: OutgoingStream[] = [];
  private readonly sentIds = new Set<number>();
  private seq = 0;
  private closed = false;
  /** The resource limit (§4.4, §6.1): it follows the media the session receives (a rendition switch). */
  maxBacklogBytes: number;
  private draining = false;
  private readonly counters = {
    streamsOpened: 0,
    streamsFinished: 0,
    streamsCancelled: 0,
    streamsStopped: 0,
    bytesWritten: 0,
  };

  constructor(
    readonly session: Session,
    private readonly o: WarpSenderOptions,
  ) {
    this.maxBacklogBytes = o.maxBacklogBytes;
    session.once('close', () => this.close());
  }

  /**
   * Sends `source` on a stream of its own, once per segment ID; `again`: a new version of a stream sent
   * before under the same ID (the catalog when it changes).
   */
  send(source: WarpSource, o: { again?: boolean } = {}): void {
    if (this.closed || this.draining) return;
    const id = source.headers.id;
    if (id !== undefined) {
      if (this.sentIds.has(id) && !o.again) return;
      this.sentIds.add(id);
      if (this.sentIds.size > 4096) this.sentIds.delete(this.sentIds.values().next().value!);
    }
    const order = this.o.reorder?.(source.headers) ?? source.headers.order ?? 0;
    const out = new OutgoingStream(source, order, this.seq++);
    for (const part of source.parts) this.enqueue(out, part);
    if (source.complete || source.aborted) out.ended = true;
    else
      out.unfollow = source.follow(
        (part) => this.append(out, part),
        () => this.end(out),
      );
    if (source.aborted) return; // nothing to send of a segment that will never be whole
    this.active.push(out);
    this.active.sort((a, b) => a.order - b.order || a.seq - b.seq);
    this.schedule();
    this.enforceLimit();
  }

  /**
   * §5.4: a GOAWAY on a stream of its own, before everything else. From then on the sender drains: it
   * takes no new segment (the viewer gets those from the new server) and finishes the ones under way,
   * so that the viewer's switch loses nothing; `drained()` says when.
   */
  async goaway(url: string): Promise<void> {
    if (this.closed || this.draining) return;
    this.draining = true;
    const stream = this.session.openStream({ bidirectional: false, urgency: 0 });
    await stream
      .end(
        Buffer.concat([
          encodeWarpMessage({ kind: 'headers', order: -(2 ** 51) }),
          encodeWarpMessage({ kind: 'goaway', url }),
        ]),
      )
      .catch(() => undefined);
  }

  /** Resolves once no stream is under way (after a GOAWAY, the moment the session can close). */
  async drained(): Promise<void> {
    while (this.active.length > 0 && !this.closed) await new Promise((r) => setTimeout(r, 20));
  }

  private frame(out: OutgoingStream, part: Uint8Array): Uint8Array {
    if (this.o.framing) return this.o.framing.part(out.source, part);
    if (out.source.partKind === 'raw') return part;
    const head = encodeWarpMessageHeader(
      out.source.partKind === 'app' ? WarpMessageType.APP : WarpMessageType.SEGMENT,
      part.length,
    );
    const framed = new Uint8Array(head.length + part.length);
    framed.set(head);
    framed.set(part, head.length);
    return framed;
  }

  private enqueue(out: OutgoingStream, part: Uint8Array): void {
    const framed = this.frame(out, part);
    out.queue.push(framed);
    out.queuedBytes += framed.length;
  }

  private append(out: OutgoingStream, part: Uint8Array): void {
    if (out.finished) return;
    this.enqueue(out, part);
    void this.pump(out);
    this.enforceLimit();
  }

  private end(out: OutgoingStream): void {
    out.ended = true;
    if (out.source.aborted && !out.finished) return this.cancel(out, 'reset');
    void this.pump(out);
  }

  /** Ranks streams by order and sets their urgencies; opens and pumps the ones ranked high enough. */
  private schedule(): void {
    let rank = -1;
    let previous: number | undefined;
    for (const out of this.active) {
      if (out.order !== previous) {
        rank++;
        previous = out.order;
      }
      const urgency = Math.min(rank, RANKED_URGENCIES);
      if (urgency === RANKED_URGENCIES && !out.stream) continue; // held in pushcast's queue
      if (!out.stream) {
        out.stream = this.session.openStream({ bidirectional: false, urgency, incremental: true });
        out.urgency = urgency;
        this.counters.streamsOpened++;
        const encoded = this.o.framing
          ? this.o.framing.start(out.source, out.order)
          : encodeWarpMessage({ ...out.source.headers, order: out.order });
        out.queue.unshift(encoded);
        out.queuedBytes += encoded.length;
      } else if (out.urgency !== urgency) {
        out.stream.setPriority(urgency, true);
        out.urgency = urgency;
      }
      void this.pump(out);
    }
  }

  private async pump(out: OutgoingStream): Promise<void> {
    if (out.writing || !out.stream || out.finished) return;
    out.writing = true;
    try {
      while (out.queue.length > 0 && !out.finished) {
        const bytes = out.queue.shift()!;
        out.queuedBytes -= bytes.length;
        out.inFlightBytes = bytes.length;
        // The last bytes of a finished segment carry the FIN (a bare FIN can be lost by quiche, cloudflare/quiche#2525).
        const last = out.ended && out.queue.length === 0;
        await (last ? out.stream.end(bytes) : out.stream.write(bytes));
        out.inFlightBytes = 0;
        this.counters.bytesWritten += bytes.length;
        if (last) {
          out.finished = true;
          this.counters.streamsFinished++;
          this.remove(out);
          return;
        }
      }
      if (out.ended && !out.finished && out.queue.length === 0) {
        out.finished = true;
        await out.stream.end();
        this.counters.streamsFinished++;
        this.remove(out);
      }
    } catch {
      // STOP_SENDING from the peer (§4.4: it no longer wants this segment), or the session is gone.
      out.inFlightBytes = 0;
      if (!out.finished) {
        out.finished = true;
        this.counters.streamsStopped++;
        this.remove(out);
      }
    } finally {
      out.writing = false;
    }
  }

  private remove(out: OutgoingStream): void {
    out.unfollow();
    const i = this.active.indexOf(out);
    if (i >= 0) this.active.splice(i, 1);
    this.schedule();
  }

  private cancel(out: OutgoingStream, _why: 'limit' | 'reset'): void {
    if (out.finished) return;
    out.finished = true;
    out.queue.length = 0;
    out.queuedBytes = 0;
    out.stream?.reset(0); // §4.4: code 0
    this.counters.streamsCancelled++;
    this.remove(out);
  }

  get backlogBytes(): number {
    return this.active.reduce((n, s) => n + s.queuedBytes + s.inFlightBytes, 0);
  }

  /** §4.4/§6.1: past the bound, reset the lowest-priority stream (never the most important one). */
  private enforceLimit(): void {
    while (this.active.length > 1 && this.backlogBytes > this.maxBacklogBytes)
      this.cancel(this.active[this.active.length - 1]!, 'limit');
  }

  stats(): WarpSenderStats {
    return {
      ...this.counters,
      active: this.active.length,
      held: this.active.filter((s) => !s.stream).length,
      backlogBytes: this.backlogBytes,
    };
  }

  /** Ends the sender; with `code` also the session (§4.7: 0 = broadcast terminated, 1 = GOAWAY). */
  close(code?: (typeof WarpCloseCode)[keyof typeof WarpCloseCode], reason = ''): void {
    if (this.closed) return;
    this.closed = true;
    for (const out of this.active.splice(0)) out.unfollow();
    if (code !== undefined) void this.session.close(code, reason);
  }
}
