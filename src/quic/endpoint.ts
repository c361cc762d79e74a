/**
 * pushcast's QUIC endpoint (RFC 9000) on Cloudflare quiche's native binding (src/quic/quiche.ts; the
 * binary of `@matrixai/quic`, whose own event loop and wrapper are not used): the UDP socket, the packet loop, connection-ID
 * routing, timers, and streams as backpressured async byte streams. Server and client roles.
 *
 * - **Packet loop, batched per event-loop turn.** A datagram is only routed by its Destination
 *   Connection ID and handed to `conn.recv`; the connection is marked dirty. Once per turn (a
 *   `setImmediate`, i.e. after libuv delivered every datagram that was readable) each dirty
 *   connection drains its readable streams and datagrams, hands quiche the queued stream writes, and
 *   sends everything quiche has to send (`conn.send` until it has nothing). Stream writes, datagrams,
 *   resets and timers mark the connection dirty the same way. So one batch of packets costs one pass
 *   over the streams, and the packets sent after it carry one ACK for the whole batch instead of one
 *   per packet (the per-datagram pass made the loop latency-bound: the sender mostly waited for ACKs).
 * - **Timer.** One per connection follows `conn.timeout()` (RFC 9000 §10.1 idle timeout, RFC 9002
 *   §6 loss detection); it is re-armed only when quiche's deadline moves earlier. Firing early is
 *   harmless: quiche's `on_timeout` acts only on deadlines that have passed.
 * - **Connection IDs** (RFC 9000 §5.1, §7.2). A new server connection is registered under its own
 *   Source Connection ID and under the client's original Destination Connection ID, so that every
 *   Initial packet of a ClientHello that spans several packets reaches the same connection (Chromium
 *   sends such ClientHellos; the `@matrixai/quic` wrapper made two connections of them). Short-header
 *   packets (RFC 9000 §17.3: all of them once the handshake is done) are routed by a JS read of the
 *   DCID, whose length is ours; only long headers go through quiche's header parser.
 * - **Streams.** Reads are drained into a bounded queue per stream; past `maxStreamBuffer` the stream
 *   is no longer drained, so QUIC flow control (RFC 9000 §4) holds the peer back until the reader
 *   catches up. Writes resolve once quiche has taken every byte (it takes what flow control and
 *   the congestion window allow; the rest waits for the next turn with room). A peer's STOP_SENDING
 *   fails the writes and RESET_STREAM fails the reader with a `QuicStreamError` carrying its code.
 * - **Priorities** (RFC 9218 §4: urgency 0–7, incremental) per stream; **congestion control** BBR by
 *   default (the Warp draft's recommendation), CUBIC or Reno; **datagrams** (RFC 9221); **stats**;
 *   **close** with an application error code (RFC 9000 §10.2); **key log** (SSLKEYLOGFILE format)
 *   for tshark.
 * Node only (node:dgram, native code).
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { quiche, type Config, type Connection, type Host } from './quiche.js';

export type CongestionControl = 'bbr' | 'cubic' | 'reno';

export interface QuicOptions {
  /** ALPN protocols (RFC 7301), in preference order. */
  alpn: string[];
  /** PEM key and certificate chain (server; a client presenting one is not supported). */
  key?: string;
  cert?: string;
  /** Client: PEM certificates to trust; `verifyPeer: false` accepts any (development only). */
  ca?: string;
  verifyPeer?: boolean;
  congestionControl?: CongestionControl;
  maxIdleTimeoutMs?: number;
  /** Connection-level receive credit, bytes (server default 16 MiB; client default: none, see CLIENT_MAX_DATA). */
  initialMaxData?: number;
  /** Per-stream receive window, bytes. */
  initialMaxStreamData?: number;
  maxStreamsBidi?: number;
  maxStreamsUni?: number;
  /** Queue lengths for RFC 9221 datagrams; 0 disables them. */
  datagramQueue?: number;
  /** Bytes read ahead of a stream's consumer before the stream stops being drained. */
  maxStreamBuffer?: number;
  /** Append TLS secrets in SSLKEYLOGFILE format here (for Wireshark/tshark). */
  keylogFile?: string;
  /** Connections at once (server); more are refused at their first packet. */
  maxConnections?: number;
  /**
   * The UDP socket's kernel receive and send buffers, bytes (default 4 MiB; Linux caps them at
   * net.core.rmem_max / wmem_max). The default 208 KiB overflows under a burst of one congestion
   * window, and every datagram dropped there is a loss the congestion controller backs off for.
   */
  socketBufferSize?: number;
}

const SCID_LENGTH = 16;
const MAX_UDP = 1350;
const DEFAULT_SOCKET_BUFFER = 4 * 1024 * 1024;
/**
 * Packets a connection sends per pass. A congestion window of megabytes (CUBIC grows to that on the
 * loopback) would otherwise keep the event loop in one flush for milliseconds, with the ACKs that
 * free the window waiting unread, and every packet's send queued at once in node:dgram.
 */
const SEND_BUDGET = 128;
/**
 * A client's connection-level receive credit (RFC 9000 §4.1): 2^50 bytes, i.e. no connection limit;
 * the per-stream windows and stream counts bound what a server can make it buffer. Because quiche 0.18
 * (this binding's) cannot sustain a connection limit over a long session whose streams get cut: once the
 * initial credit is used up, its window is 48 KiB (DEFAULT_CONNECTION_WINDOW), grown only by autotuning,
 * while bytes of streams reset by the peer or stopped by us are counted as received and never as
 * consumed (cloudflare/quiche#2158, fixed upstream in 2025, not in any binding on npm). A Warp viewer or
 * relay upstream, whose streams are cut whenever the link is short, stalled for good after about its
 * initial credit: 16 MiB, minutes of video. test/quic/flow-credit.test.ts reproduces it.
 */
const CLIENT_MAX_DATA = 2 ** 50;
/** quiche's urgency for a stream given none (it orders those after every RFC 9218 urgency). */
const QUICHE_DEFAULT_URGENCY = 127;

/** Connections are processed one after another, synchronously: one scratch buffer for stream reads serves all. */
const readBuffer = new Uint8Array(65_536);

/** The routing key of a connection ID. */
function idKey(id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex');
}

function makeConfig(o: QuicOptions, server: boolean): Config {
  const enc = (s: string | undefined) => (s === undefined ? undefined : new TextEncoder().encode(s));
  const config = server
    ? quiche().Config.withBoringSslCtx(false, false, null, [enc(o.key)!], [enc(o.cert)!], null)
    : quiche().Config.withBoringSslCtx(o.verifyPeer ?? true, false, enc(o.ca) ?? null, null, null, null);
  config.setApplicationProtos(o.alpn);
  config.setMaxIdleTimeout(o.maxIdleTimeoutMs ?? 30_000);
  config.setMaxRecvUdpPayloadSize(MAX_UDP);
  config.setMaxSendUdpPayloadSize(MAX_UDP);
  const maxData = o.initialMaxData ?? (server ? 16 * 1024 * 1024 : CLIENT_MAX_DATA);
  const streamData = o.initialMaxStreamData ?? 4 * 1024 * 1024;
  config.setInitialMaxData(maxData);
  config.setInitialMaxStreamDataBidiLocal(streamData);
  config.setInitialMaxStreamDataBidiRemote(streamData);
  config.setInitialMaxStreamDataUni(streamData);
  config.setInitialMaxStreamsBidi(o.maxStreamsBidi ?? 128);
  config.setInitialMaxStreamsUni(o.maxStreamsUni ?? 128);
  config.setCcAlgorithmName(o.congestionControl ?? 'bbr');
  config.enablePacing(true);
  config.setDisableActiveMigration(true);
  if ((o.datagramQueue ?? 256) > 0) config.enableDgram(true, o.datagramQueue ?? 256, o.datagramQueue ?? 256);
  if (o.keylogFile) config.logKeys();
  return config;
}

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
function streamError(id: number, error: unknown): Error {
  const message = error instanceof Error ? error.message : String(error);
  const m = /^Stream(Stopped|Reset)\((\d+)\)$/.exec(message);
  if (m) return new QuicStreamError(id, Number(m[2]), m[1] === 'Stopped' ? 'stopped' : 'reset');
  return new Error(`stream ${id}: ${message}`);
}

/** A QUIC stream: an async iterable of received chunks, and backpressured writes. */
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
  private stoppedPromise: Promise<number> | undefined;
  private resolveStopped: ((code: number) => void) | undefined;
  /** @internal quiche's urgency of this stream: the order in which the connection hands writers the send capacity. */
  urgency = QUICHE_DEFAULT_URGENCY;

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
    this.urgency = this.priority[0];
    this.conn.prioritized = true;
    try {
      this.conn.native.streamPriority(this.id, this.priority[0], incremental);
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
      this.conn.queueWrites(this);
    });
  }

  end(data: Uint8Array = new Uint8Array(0)): Promise<void> {
    return this.write(data, true);
  }

  /** RESET_STREAM (RFC 9000 §19.4) with an application error code. */
  reset(code: number): void {
    this.conn.native.streamShutdown(this.id, quiche().Shutdown.Write, code);
    this.failWrites(new Error(`stream ${this.id} reset (${code})`));
    this.conn.schedule();
  }

  /** STOP_SENDING (RFC 9000 §19.5): the peer should stop writing. */
  stopSending(code: number): void {
    // quiche 0.18 drops what it holds of the stream without counting it as consumed, so that much
    // connection credit (RFC 9000 §4.5) would be lost for good and a long session stalls once the
    // losses add up to its window (fixed upstream in cloudflare/quiche#2158, not in this binding).
    // Reading it out first counts it; what arrives after the shutdown quiche counts itself.
    this.conn.discardReceived(this.id);
    this.conn.native.streamShutdown(this.id, quiche().Shutdown.Read, code);
    this.ended = true;
    this.chunks.length = 0;
    this.buffered = 0;
    this.wake?.();
    this.conn.schedule();
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
      else if (!this.writeError && !this.finished && (this.local || this.bidirectional)) this.conn.watchStop(this);
    }
    return this.stoppedPromise;
  }

  /** @internal Called by the connection: hands quiche the pending writes; true when none is left. */
  drainWrites(): boolean {
    while (this.pendingWrites.length > 0) {
      const w = this.pendingWrites[0]!;
      if (w.fin && w.data.length === 0 && !this.roomToSend()) return false;
      let written: number | null;
      try {
        written = this.conn.native.streamSend(this.id, w.data, w.fin);
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
      if (written === null) return false; // blocked: flow control or congestion
      if (written < w.data.length) {
        w.data = w.data.subarray(written);
        return false;
      }
      this.pendingWrites.shift();
      if (w.fin) {
        this.finished = true;
        this.conn.unwatchStop(this); // a STOP_SENDING after FIN changes nothing for the writer
      }
      w.resolve();
    }
    return true;
  }

  /**
   * Whether quiche would send a bare FIN in this pass's flush. quiche loses a FIN written without data
   * when the data before it is acknowledged before the FIN goes out: the stream then counts as complete
   * and is collected, and the peer never sees the end of the stream (cloudflare/quiche#2525). So a bare
   * FIN waits in our queue until the congestion window has room (the stream's capacity includes it).
   */
  private roomToSend(): boolean {
    try {
      return this.conn.native.streamCapacity(this.id) > 0;
    } catch {
      return true; // a stream quiche does not know yet, or a stopped one: streamSend tells
    }
  }

  /** @internal Called by the connection while `stopped` is watched: asks quiche whether the peer stopped the stream. */
  checkStopped(): void {
    try {
      this.conn.native.streamWritable(this.id, 0);
    } catch (error) {
      // Only StreamStopped counts: a local stream quiche does not know yet (nothing written) throws too.
      const e = streamError(this.id, error);
      if (e instanceof QuicStreamError) this.failWrites(e);
    }
  }

  /** Writing is over: pending and later writes fail with `error`; a STOP_SENDING resolves `stopped`. */
  private failWrites(error: Error): void {
    this.writeError ??= error;
    for (const w of this.pendingWrites.splice(0)) w.reject(error);
    if (error instanceof QuicStreamError && error.kind === 'stopped') this.resolveStopped?.(error.code);
    this.conn.unwatchStop(this);
  }

  /** @internal Called by the connection with received bytes. */
  push(data: Uint8Array, fin: boolean): void {
    if (data.length > 0) {
      this.chunks.push(data);
      this.buffered += data.length;
    }
    if (fin) this.ended = true;
    this.wake?.();
  }

  /** @internal The read side failed (e.g. RESET_STREAM): the reader sees `error` after the chunks already queued. */
  failRead(error: Error): void {
    if (this.ended) return;
    this.error = error;
    this.ended = true;
    this.wake?.();
  }

  /** @internal The stream can go no further: writes under way fail; a read side that already saw FIN stays clean. */
  fail(error: Error): void {
    this.failRead(error);
    this.failWrites(error);
  }

  /** @internal Set by the connection when it stopped draining this stream at its read-ahead bound. */
  paused = false;

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
        if (this.paused) {
          this.paused = false;
          this.conn.queueReads();
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

export interface QuicConnectionEvents {
  stream: [QuicStream];
  datagram: [Uint8Array];
  established: [];
  close: [{ local: boolean; application: boolean; code: number; reason: string } | undefined];
}

export class QuicConnection extends EventEmitter<QuicConnectionEvents> {
  private readonly streams = new Map<number, QuicStream>();
  /** Streams with writes queued, in the order they queued them. */
  private readonly writers = new Set<QuicStream>();
  /** Streams whose `stopped` is awaited. */
  private readonly stopWatchers = new Set<QuicStream>();
  /** @internal Some stream has an RFC 9218 priority: writers are then served most urgent first. */
  prioritized = false;
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
    readonly native: Connection,
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

  /** An RFC 9221 datagram; false when the send queue is full (it is not queued). */
  sendDatagram(data: Uint8Array): boolean {
    if (this.native.isDgramSendQueueFull()) return false;
    this.native.dgramSend(data);
    this.schedule();
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
      this.schedule();
    }
    return new Promise((resolve) => {
      if (this.closedEmitted) return resolve();
      this.once('close', () => resolve());
    });
  }

  /** @internal A datagram from the socket: quiche takes it now, the rest waits for this turn's pass. */
  receive(data: Uint8Array, host: string, port: number): void {
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
    this.schedule();
  }

  /** @internal Queues this connection for the endpoint's pass at the end of this turn. */
  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    this.endpoint.schedule(this);
  }

  /** @internal */
  queueWrites(stream: QuicStream): void {
    this.writers.add(stream);
    this.schedule();
  }

  /** @internal A paused stream's reader caught up. */
  queueReads(): void {
    this.readsDue = true;
    this.schedule();
  }

  /** @internal */
  watchStop(stream: QuicStream): void {
    this.stopWatchers.add(stream);
  }

  /** @internal */
  unwatchStop(stream: QuicStream): void {
    this.stopWatchers.delete(stream);
  }

  /** @internal The pass: timer, reads, datagrams, writes, then everything quiche has to send. */
  process(): void {
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
      this.pumpReads();
      for (let d; (d = this.native.dgramRecvVec()) !== null; ) this.emit('datagram', d);
      // A STOP_SENDING arrives as a frame like any other: look for one where someone waits for it.
      for (const s of this.stopWatchers) s.checkStopped();
    }
    this.pumpWrites();
    this.flush();
  }

  /** @internal Reads and drops what quiche holds of stream `id` (see QuicStream.stopSending). */
  discardReceived(id: number): void {
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
        stream = new QuicStream(this, id);
        this.streams.set(id, stream);
        this.emit('stream', stream);
      }
      while (stream.bufferedBytes < this.maxStreamBuffer) {
        let result: [number, boolean] | null;
        try {
          result = this.native.streamRecv(id, readBuffer);
        } catch (error) {
          stream.failRead(streamError(id, error)); // e.g. RESET_STREAM from the peer
          break;
        }
        if (result === null) break;
        const [n, fin] = result;
        stream.push(readBuffer.slice(0, n), fin);
        if (fin) break;
      }
      if (stream.bufferedBytes >= this.maxStreamBuffer) stream.paused = true;
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
      this.prioritized && this.writers.size > 1
        ? [...this.writers].sort((a, b) => a.urgency - b.urgency || a.id - b.id)
        : this.writers;
    for (const s of order) if (s.drainWrites()) this.writers.delete(s);
  }

  /**
   * What quiche has to send goes to the socket, at most SEND_BUDGET packets; the rest in the next
   * turn's pass. Then the timer follows quiche's deadline.
   */
  private flush(): void {
    for (let budget = SEND_BUDGET; ; budget--) {
      if (budget === 0) {
        this.schedule();
        break;
      }
      const out = this.endpoint.packetBuffer();
      let result;
      try {
        result = this.native.send(out);
      } catch {
        break;
      }
      if (result === null) break;
      this.endpoint.sendPacket(result[0], result[1].to);
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
    this.schedule();
  };

  private finish(): void {
    if (this.closedEmitted) return;
    this.closedEmitted = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    const error = this.native.peerError() ?? this.native.localError();
    for (const s of this.streams.values())
      s.fail(new Error(`connection closed${error ? ` (${error.errorCode})` : ''}`));
    this.writers.clear();
    this.endpoint.forget(this);
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

export interface QuicEndpointStats {
  /** Connections now. */
  connections: number;
  /** Connections a server accepted (opened by a client's Initial), ever. */
  connectionsAccepted: number;
  /** UDP datagrams received and sent, and their bytes (UDP payload). */
  datagramsIn: number;
  datagramsOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Datagrams dropped: not QUIC, unknown connection, or past the connection limit. */
  dropped: number;
  /** Version Negotiation packets sent (RFC 9000 §6) for Initials of an unsupported version. */
  versionNegotiations: number;
  /** Datagrams handed to a connection (an existing one, or one they opened). */
  routed: number;
}

/**
 * Outgoing packets are written by quiche straight into consecutive slices of a slab, so that none is
 * copied before node:dgram takes it. A slab is never reused: node:dgram may still hold a slice
 * (a send the kernel did not take at once), so a full slab is left to the garbage collector.
 */
const SLAB_SIZE = 64 * 1024;

/** One UDP socket, any number of connections: the server's listener, or a client's local end. */
export class QuicEndpoint extends EventEmitter<{ connection: [QuicConnection] }> {
  private readonly byId = new Map<string, QuicConnection>();
  private readonly ids = new WeakMap<QuicConnection, string[]>();
  private readonly counters = {
    connectionsAccepted: 0,
    datagramsIn: 0,
    datagramsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    dropped: 0,
    versionNegotiations: 0,
    routed: 0,
  };
  private local!: Host;
  /** A client's socket is connected to its one server: sends skip the address lookup node:dgram does per send. */
  private connected = false;
  /** Connections to process at the end of this turn. */
  private dirty: QuicConnection[] = [];
  private immediate: ReturnType<typeof setImmediate> | undefined;
  private closed = false;
  private slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
  private slabUsed = 0;
  private out = this.slab.subarray(0, MAX_UDP);

  private constructor(
    private readonly socket: dgram.Socket,
    private readonly o: QuicOptions,
    private readonly server: boolean,
  ) {
    super();
  }

  /** A server on `host:port` (port 0: any). */
  static async listen(o: QuicOptions & { host?: string; port: number }): Promise<QuicEndpoint> {
    if (!o.key || !o.cert) throw new Error('a QUIC server needs a key and a certificate');
    return QuicEndpoint.open(o, true, o.host ?? '0.0.0.0', o.port);
  }

  /** A client connection to `host:port`; resolves once the handshake is done. */
  static async connect(
    o: QuicOptions & { host: string; port: number; serverName?: string; timeoutMs?: number },
  ): Promise<QuicConnection> {
    const endpoint = await QuicEndpoint.open(o, false, isIP(o.host) === 6 ? '::' : '0.0.0.0', 0);
    await new Promise<void>((resolve, reject) => {
      endpoint.socket.once('error', reject);
      endpoint.socket.connect(o.port, o.host, () => {
        endpoint.socket.off('error', reject);
        resolve();
      });
    }).catch(async (error) => {
      await endpoint.close();
      throw error;
    });
    endpoint.connected = true;
    const scid = randomBytes(SCID_LENGTH);
    const remote = { host: o.host, port: o.port };
    const native = quiche().Connection.connect(
      o.serverName ?? o.host,
      scid,
      endpoint.local,
      remote,
      makeConfig(o, false),
    );
    if (o.keylogFile) native.setKeylog(o.keylogFile);
    const conn = new QuicConnection(native, endpoint, remote, false, o.maxStreamBuffer ?? 1024 * 1024);
    endpoint.register(conn, [idKey(scid)]);
    conn.once('close', () => void endpoint.close());
    conn.schedule();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new Error(`QUIC handshake with ${o.host}:${o.port} did not finish within ${o.timeoutMs ?? 5000} ms`)),
        o.timeoutMs ?? 5000,
      );
      conn.once('established', () => {
        clearTimeout(timer);
        resolve();
      });
      conn.once('close', (why) => {
        clearTimeout(timer);
        reject(
          new Error(
            `QUIC connection to ${o.host}:${o.port} closed during the handshake${why ? ` (${why.code} ${why.reason})` : ''}`,
          ),
        );
      });
    }).catch(async (error) => {
      await endpoint.close();
      throw error;
    });
    return conn;
  }

  private static async open(o: QuicOptions, server: boolean, host: string, port: number): Promise<QuicEndpoint> {
    const socket = dgram.createSocket({ type: isIP(host) === 6 ? 'udp6' : 'udp4' });
    const endpoint = new QuicEndpoint(socket, o, server);
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    const buffer = o.socketBufferSize ?? DEFAULT_SOCKET_BUFFER;
    try {
      socket.setRecvBufferSize(buffer);
      socket.setSendBufferSize(buffer);
    } catch {
      // the system's default buffers: slower under bursts, not wrong
    }
    const address = socket.address();
    endpoint.local = { host: address.address === '0.0.0.0' ? '127.0.0.1' : address.address, port: address.port };
    socket.on('message', (msg, rinfo) => endpoint.onDatagram(msg, rinfo));
    socket.on('error', () => endpoint.counters.dropped++);
    return endpoint;
  }

  get address(): Host {
    return { ...this.local };
  }

  get stats(): QuicEndpointStats {
    return { connections: new Set(this.byId.values()).size, ...this.counters };
  }

  private onDatagram(data: Buffer, rinfo: dgram.RemoteInfo): void {
    this.counters.datagramsIn++;
    this.counters.bytesIn += data.length;
    // RFC 9000 §17.3: a short header (first bit 0) is one byte, then the DCID, whose length only the
    // receiver knows: ours. Read in JS, as quiche's parser costs a native call and an object per packet.
    if ((data[0]! & 0x80) === 0) {
      const conn = data.length > 1 + SCID_LENGTH ? this.byId.get(data.toString('hex', 1, 1 + SCID_LENGTH)) : undefined;
      if (!conn) {
        this.counters.dropped++;
        return;
      }
      this.counters.routed++;
      return conn.receive(data, rinfo.address, rinfo.port);
    }
    let header;
    try {
      header = quiche().Header.fromSlice(data, SCID_LENGTH);
    } catch {
      this.counters.dropped++; // not a QUIC packet (RFC 9000 §17)
      return;
    }
    const from = { host: rinfo.address, port: rinfo.port };
    const existing = this.byId.get(idKey(header.dcid));
    if (existing) {
      this.counters.routed++;
      return existing.receive(data, from.host, from.port);
    }
    if (!this.server || header.ty !== quiche().Type.Initial) {
      this.counters.dropped++;
      return;
    }
    if (!quiche().versionIsSupported(header.version)) {
      // RFC 9000 §6: Version Negotiation.
      const out = new Uint8Array(MAX_UDP);
      const n = quiche().negotiateVersion(header.scid, header.dcid, out);
      this.counters.versionNegotiations++;
      this.counters.datagramsOut++;
      this.counters.bytesOut += n;
      this.socket.send(out.subarray(0, n), from.port, from.host);
      return;
    }
    if (
      data.length < quiche().MIN_CLIENT_INITIAL_LEN ||
      new Set(this.byId.values()).size >= (this.o.maxConnections ?? 10_000)
    ) {
      this.counters.dropped++; // RFC 9000 §14.1: a client Initial is at least 1200 bytes
      return;
    }
    const scid = randomBytes(SCID_LENGTH);
    const native = quiche().Connection.accept(scid, null, this.local, from, makeConfig(this.o, true));
    if (this.o.keylogFile) native.setKeylog(this.o.keylogFile);
    const conn = new QuicConnection(native, this, from, true, this.o.maxStreamBuffer ?? 1024 * 1024);
    // Both IDs: the client's next Initial packets still carry its original DCID (RFC 9000 §7.2).
    this.register(conn, [idKey(scid), idKey(header.dcid)]);
    this.counters.connectionsAccepted++;
    this.emit('connection', conn);
    this.counters.routed++;
    conn.receive(data, from.host, from.port);
  }

  private register(conn: QuicConnection, ids: string[]): void {
    for (const id of ids) this.byId.set(id, conn);
    this.ids.set(conn, ids);
  }

  /** @internal */
  forget(conn: QuicConnection): void {
    for (const id of this.ids.get(conn) ?? []) if (this.byId.get(id) === conn) this.byId.delete(id);
  }

  /** @internal */
  schedule(conn: QuicConnection): void {
    this.dirty.push(conn);
    this.immediate ??= setImmediate(this.processDirty);
  }

  /** Once per turn, after the poll phase delivered this turn's datagrams: each dirty connection's pass. */
  private readonly processDirty = (): void => {
    this.immediate = undefined;
    const conns = this.dirty;
    this.dirty = [];
    let i = 0;
    try {
      for (; i < conns.length; i++) conns[i]!.process();
    } finally {
      // A listener threw in one connection's pass: the others still get theirs, next turn.
      for (const c of conns.slice(i + 1)) this.schedule(c);
    }
  };

  /** @internal Where quiche writes the next outgoing packet (MAX_UDP bytes of the slab). */
  packetBuffer(): Uint8Array {
    return this.out;
  }

  /** @internal Sends the `n` bytes quiche wrote into `packetBuffer()`; the next packet goes after them. */
  sendPacket(n: number, to: Host): void {
    if (this.closed) return; // a connection's last pass after the socket closed
    this.counters.datagramsOut++;
    this.counters.bytesOut += n;
    if (this.connected) this.socket.send(this.slab, this.slabUsed, n);
    else this.socket.send(this.slab, this.slabUsed, n, to.port, to.host);
    this.slabUsed += n;
    if (this.slabUsed + MAX_UDP > SLAB_SIZE) {
      this.slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
      this.slabUsed = 0;
    }
    this.out = this.slab.subarray(this.slabUsed, this.slabUsed + MAX_UDP);
  }

  /** Closes every connection (code 0) and the socket. */
  async close(): Promise<void> {
    const conns = [...new Set(this.byId.values())];
    await Promise.race([
      Promise.all(conns.map((c) => c.close(0, 'endpoint closing'))),
      new Promise((r) => setTimeout(r, 1000)),
    ]);
    this.closed = true;
    await new Promise<void>((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }
}
