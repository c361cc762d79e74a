/**
 * A QUIC connection (RFC 9000) on quiche: its streams, datagrams (RFC 9221), close codes, and its pass.
 *
 * - **The pass, once per event-loop turn.** A datagram from the endpoint goes to `conn.recv` at once, and
 *   marks the connection for the pass. Once per turn (the endpoint's `setImmediate`, i.e. after libuv
 *   delivered every datagram that was readable) the pass drains the readable streams and datagrams, hands
 *   quiche the queued stream writes, and sends everything quiche has to send (`conn.send` until it has
 *   nothing). Stream writes, datagrams, resets and timers mark the connection the same way. So one batch of
 *   packets costs one pass over the streams, and the packets sent after it carry one ACK for the whole
 *   batch instead of one per packet (a pass per datagram made the loop latency-bound: the sender mostly
 *   waited for ACKs).
 * - **Timer.** One per connection follows `conn.timeout()` (RFC 9000 §10.1 idle timeout, RFC 9002 §6 loss
 *   detection); it is re-armed only when quiche's deadline moves earlier. Firing early is harmless:
 *   quiche's `on_timeout` acts only on deadlines that have passed.
 */
import { EventEmitter } from 'node:events';
import type { QuicEndpoint } from './endpoint.js';
import * as internal from './internal.js';
import type { Connection, Host } from './quiche.js';
import { QuicStream, streamError } from './stream.js';

/**
 * Packets a connection sends per pass. A congestion window of megabytes (CUBIC grows to that on the
 * loopback) would otherwise keep the event loop in one flush for milliseconds, with the ACKs that
 * free the window waiting unread, and every packet's send queued at once in node:dgram.
 */
const SEND_BUDGET = 128;

/** Connections are processed one after another, synchronously: one scratch buffer for stream reads serves all. */
const readBuffer = new Uint8Array(65_536);

export interface QuicConnectionEvents {
  stream: [QuicStream];
  datagram: [Uint8Array];
  established: [];
  close: [{ local: boolean; application: boolean; code: number; reason: string } | undefined];
}

/** One QUIC connection of a QuicEndpoint, server or client side: made by the endpoint, never by its users. */
export class QuicConnection extends EventEmitter<QuicConnectionEvents> {
  /** The streams with a direction not yet over; a stream leaves once both are (`release`). */
  private readonly streams = new Map<number, QuicStream>();
  /**
   * The peer's stream ids seen, per type (id & 3): quiche may list a stream the connection already let go
   * of as readable (a reset's marker it keeps, cloudflare/quiche#1631), and an id is never reused
   * (RFC 9000 §2.1), so such an id is drained, never made a new stream.
   */
  private readonly peerIdsSeen = [0, 1, 2, 3].map((type) => new StreamIdsSeen(type));
  /** Streams with writes queued, in the order they queued them. */
  private readonly writers = new Set<QuicStream>();
  /** Streams whose `stopped` is awaited. */
  private readonly stopWatchers = new Set<QuicStream>();
  /** Some stream has an RFC 9218 priority: writers are then served most urgent first. */
  [internal.prioritized] = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** When the armed timer fires, in performance.now() milliseconds. */
  private timerAt = Infinity;
  private timerFired = false;
  /** Queued for this turn's pass. */
  private scheduled = false;
  /** Packets arrived (or a paused stream's reader caught up) since the last pass: look for readable streams. */
  private readsDue = false;
  private established = false;
  private closedEmitted = false;
  private nextBidi: number;
  private nextUni: number;
  /** The addresses of a received packet, reused while the peer's address is the one the connection knows. */
  private readonly recvInfo: { from: Host; to: Host };

  constructor(
    private readonly native: Connection,
    private readonly endpoint: QuicEndpoint,
    readonly remote: Host,
    readonly isServer: boolean,
    private readonly maxStreamBuffer: number,
  ) {
    super();
    // RFC 9000 §2.1: client-initiated streams are even, server-initiated odd; bit 1 marks unidirectional.
    this.nextBidi = isServer ? 1 : 0;
    this.nextUni = isServer ? 3 : 2;
    this.recvInfo = { from: remote, to: endpoint.address };
  }

  /** The quiche connection, for the streams. */
  get [internal.native](): Connection {
    return this.native;
  }

  get isEstablished(): boolean {
    return this.established;
  }

  /** The ALPN protocol agreed. */
  get protocol(): string {
    return new TextDecoder().decode(this.native.applicationProto());
  }

  /**
   * The largest RFC 9221 datagram payload `sendDatagram` takes now (it depends on the path's packet
   * size and the peer's max_datagram_frame_size, RFC 9221 §3); 0 while it is not known, or when the
   * peer does not accept datagrams.
   */
  get maxDatagramSize(): number {
    return this.native.dgramMaxWritableLen() ?? 0;
  }

  openStream(options: { bidirectional?: boolean; urgency?: number; incremental?: boolean } = {}): QuicStream {
    const bidi = options.bidirectional ?? true;
    const id = bidi ? this.nextBidi : this.nextUni;
    if (bidi) this.nextBidi += 4;
    else this.nextUni += 4;
    const stream = new QuicStream(this, id);
    this.streams.set(id, stream);
    if (options.urgency !== undefined) stream.setPriority(options.urgency, options.incremental ?? false);
    return stream;
  }

  /** Streams the connection keeps: those with a direction not yet over (see `forget`). */
  get streamsOpen(): number {
    return this.streams.size;
  }

  /** An RFC 9221 datagram; false when the send queue is full (it is not queued). */
  sendDatagram(data: Uint8Array): boolean {
    if (this.native.isDgramSendQueueFull()) return false;
    this.native.dgramSend(data);
    this[internal.schedule]();
    return true;
  }

  stats(): ReturnType<Connection['stats']> & { path: ReturnType<Connection['pathStats']>[number] | undefined } {
    return { ...this.native.stats(), path: this.native.pathStats()[0] };
  }

  /** CONNECTION_CLOSE (RFC 9000 §10.2) with an application error code; resolves once closed. */
  close(code = 0, reason = ''): Promise<void> {
    if (!this.native.isClosed()) {
      try {
        this.native.close(true, code, new TextEncoder().encode(reason));
      } catch {
        // already closing
      }
      this[internal.schedule]();
    }
    return new Promise((resolve) => {
      if (this.closedEmitted) return resolve();
      this.once('close', () => resolve());
    });
  }

  /** A datagram from the socket: quiche takes it now, the rest waits for this turn's pass. */
  [internal.receive](data: Uint8Array, host: string, port: number): void {
    const info =
      port === this.recvInfo.from.port && host === this.recvInfo.from.host
        ? this.recvInfo
        : { from: { host, port }, to: this.recvInfo.to };
    try {
      this.native.recv(data, info);
    } catch {
      // quiche refused the packet (RFC 9000 §12.2 / §21.10): dropped; the connection decides the rest
    }
    this.readsDue = true;
    this[internal.schedule]();
  }

  /** Queues this connection for the endpoint's pass at the end of this turn. */
  [internal.schedule](): void {
    if (this.scheduled) return;
    this.scheduled = true;
    this.endpoint[internal.scheduleConnection](this);
  }

  /** A stream has writes queued. */
  [internal.queueWrites](stream: QuicStream): void {
    this.writers.add(stream);
    this[internal.schedule]();
  }

  /** A paused stream's reader caught up. */
  [internal.queueReads](): void {
    this.readsDue = true;
    this[internal.schedule]();
  }

  /** A stream's `stopped` is awaited: its STOP_SENDING is looked for on each pass that read packets. */
  [internal.watchStop](stream: QuicStream): void {
    this.stopWatchers.add(stream);
  }

  [internal.unwatchStop](stream: QuicStream): void {
    this.stopWatchers.delete(stream);
  }

  /** The pass: timer, reads, datagrams, writes, then everything quiche has to send. */
  [internal.pass](): void {
    this.scheduled = false;
    if (this.closedEmitted) return;
    if (this.timerFired) {
      this.timerFired = false;
      this.native.onTimeout();
    }
    if (this.readsDue) {
      this.readsDue = false;
      if (!this.established && this.native.isEstablished()) {
        this.established = true;
        this.emit('established');
      }
      // A STOP_SENDING arrives as a frame like any other: look for one where someone waits for it, before
      // the reads: reading a stream's FIN can complete the stream, and quiche then forgets its code.
      for (const s of this.stopWatchers) s[internal.checkStopped]();
      this.pumpReads();
      for (let d; (d = this.native.dgramRecvVec()) !== null; ) this.emit('datagram', d);
    }
    this.pumpWrites();
    this.flush();
  }

  /** Both directions of `stream` are over: nothing more arrives for it, nothing more is sent. */
  [internal.release](stream: QuicStream): void {
    this.streams.delete(stream.id);
  }

  /** Reads and drops what quiche holds of stream `id` (see QuicStream.stopSending). */
  [internal.discardReceived](id: number): void {
    for (;;) {
      let result: [number, boolean] | null;
      try {
        result = this.native.streamRecv(id, readBuffer);
      } catch {
        return; // reset by the peer, or already gone
      }
      if (result === null || result[1]) return;
    }
  }

  /** Drains readable streams, except those whose consumer is behind by `maxStreamBuffer`. */
  private pumpReads(): void {
    // `readable()` costs ~10 µs even when empty; `isReadable()` is a cheap test first.
    if (!this.native.isReadable()) return;
    for (const id of this.native.readable()) {
      let stream = this.streams.get(id);
      if (!stream) {
        const seen = this.peerIdsSeen[id & 3]!;
        if ((id & 1) === (this.isServer ? 1 : 0) || seen.has(id)) {
          this[internal.discardReceived](id); // a stream already let go of
          continue;
        }
        seen.add(id);
        stream = new QuicStream(this, id);
        this.streams.set(id, stream);
        this.emit('stream', stream);
      }
      while (stream.bufferedBytes < this.maxStreamBuffer) {
        let result: [number, boolean] | null;
        try {
          result = this.native.streamRecv(id, readBuffer);
        } catch (error) {
          stream[internal.failRead](streamError(id, error)); // e.g. RESET_STREAM from the peer
          break;
        }
        if (result === null) break;
        const [n, fin] = result;
        stream[internal.deliver](readBuffer.slice(0, n), fin);
        if (fin) break;
      }
      if (stream.bufferedBytes >= this.maxStreamBuffer) stream[internal.paused] = true;
    }
  }

  /**
   * Hands quiche the queued writes. quiche takes no more than the congestion window has room for, so
   * who asks first gets the room: with priorities in use, the most urgent stream asks first (quiche's
   * own scheduler then orders what it holds by urgency too).
   */
  private pumpWrites(): void {
    if (this.writers.size === 0) return;
    const order =
      this[internal.prioritized] && this.writers.size > 1
        ? [...this.writers].sort((a, b) => a[internal.urgency] - b[internal.urgency] || a.id - b.id)
        : this.writers;
    for (const s of order) if (s[internal.drainWrites]()) this.writers.delete(s);
  }

  /**
   * What quiche has to send goes to the socket, at most SEND_BUDGET packets; the rest in the next
   * turn's pass. Then the timer follows quiche's deadline.
   */
  private flush(): void {
    for (let budget = SEND_BUDGET; ; budget--) {
      if (budget === 0) {
        this[internal.schedule]();
        break;
      }
      const out = this.endpoint[internal.packetBuffer]();
      let result;
      try {
        result = this.native.send(out);
      } catch {
        break;
      }
      if (result === null) break;
      this.endpoint[internal.sendPacket](result[0], result[1].to);
    }
    if (this.native.isClosed()) return this.finish();
    this.armTimer();
  }

  private armTimer(): void {
    const ms = this.native.timeout();
    if (ms === null) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.timerAt = Infinity;
      return;
    }
    const at = performance.now() + ms;
    // A timer armed for no later than the new deadline stays: setTimeout resolution is 1 ms, and a
    // timer that fires early only costs a pass (quiche ignores deadlines not yet reached).
    if (this.timer && this.timerAt <= at + 1) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(this.onTimer, ms);
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.timerAt = Infinity;
    this.timerFired = true;
    this[internal.schedule]();
  };

  private finish(): void {
    if (this.closedEmitted) return;
    this.closedEmitted = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    const error = this.native.peerError() ?? this.native.localError();
    for (const s of this.streams.values())
      s[internal.fail](new Error(`connection closed${error ? ` (${error.errorCode})` : ''}`));
    this.writers.clear();
    this.endpoint[internal.forget](this);
    this.emit(
      'close',
      error
        ? {
            local: !this.native.peerError(),
            application: error.isApp,
            code: error.errorCode,
            reason: new TextDecoder().decode(error.reason),
          }
        : undefined,
    );
  }
}

/**
 * Which ids of one stream type (RFC 9000 §2.1: id & 3) the peer has opened: everything below a watermark,
 * and the few above it seen out of order. Streams open about in order and the peer may open no more than
 * its stream limit past the lowest still open, so the set stays that small.
 */
class StreamIdsSeen {
  /** The lowest id of the type not yet seen. */
  private below: number;
  private readonly above = new Set<number>();

  constructor(type: number) {
    this.below = type;
  }

  has(id: number): boolean {
    return id < this.below || this.above.has(id);
  }

  add(id: number): void {
    if (id !== this.below) {
      this.above.add(id);
      return;
    }
    this.below += 4;
    while (this.above.delete(this.below)) this.below += 4;
  }
}
