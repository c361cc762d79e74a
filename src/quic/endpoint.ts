/**
 * pushcast's QUIC endpoint (RFC 9000) on Cloudflare quiche's native binding (src/quic/quiche.ts; the
 * binary of `@matrixai/quic`, whose own event loop and wrapper are not used): the UDP socket, the packet loop, connection-ID
 * routing, timers, and streams as backpressured async byte streams. Server and client roles.
 *
 * - **Packet loop.** Each datagram is routed by its Destination Connection ID to a connection, handed to
 *   `conn.recv`, then the connection's readable streams and datagrams are drained and everything it has
 *   to send (`conn.send` until it has nothing) goes to the socket. A timer follows `conn.timeout()`
 *   (RFC 9000 §10 idle timeout, RFC 9002 loss detection) and calls `onTimeout`.
 * - **Connection IDs** (RFC 9000 §5.1, §7.2). A new server connection is registered under its own
 *   Source Connection ID and under the client's original Destination Connection ID, so that every
 *   Initial packet of a ClientHello that spans several packets reaches the same connection (Chromium
 *   sends such ClientHellos; the `@matrixai/quic` wrapper made two connections of them).
 * - **Streams.** Reads are drained into a bounded queue per stream; past `maxStreamBuffer` the stream
 *   is no longer drained, so QUIC flow control (RFC 9000 §4) holds the peer back until the reader
 *   catches up. Writes resolve once quiche has taken every byte (it takes what flow control and
 *   congestion allow; the rest waits for the stream to become writable again).
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
import { toHex } from '../wire/index.js';
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
  /** Connection-level receive window, bytes. */
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
}

const SCID_LENGTH = 16;
const MAX_UDP = 1350;

function makeConfig(o: QuicOptions, server: boolean): Config {
  const enc = (s: string | undefined) => (s === undefined ? undefined : new TextEncoder().encode(s));
  const config = server
    ? quiche().Config.withBoringSslCtx(false, false, null, [enc(o.key)!], [enc(o.cert)!], null)
    : quiche().Config.withBoringSslCtx(o.verifyPeer ?? true, false, enc(o.ca) ?? null, null, null, null);
  config.setApplicationProtos(o.alpn);
  config.setMaxIdleTimeout(o.maxIdleTimeoutMs ?? 30_000);
  config.setMaxRecvUdpPayloadSize(MAX_UDP);
  config.setMaxSendUdpPayloadSize(MAX_UDP);
  const maxData = o.initialMaxData ?? 16 * 1024 * 1024;
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

/** A QUIC stream: an async iterable of received chunks, and backpressured writes. */
export class QuicStream {
  private readonly chunks: Uint8Array[] = [];
  private buffered = 0;
  private ended = false;
  private error: Error | undefined;
  private wake: (() => void) | undefined;
  private readonly pendingWrites: { data: Uint8Array; fin: boolean; resolve: () => void; reject: (e: Error) => void }[] = [];

  constructor(
    private readonly conn: QuicConnection,
    readonly id: number,
  ) {}

  /** Client- or server-initiated, bidirectional or unidirectional (RFC 9000 §2.1). */
  get bidirectional(): boolean {
    return (this.id & 2) === 0;
  }

  private priority: [number, boolean] | undefined;

  /**
   * RFC 9218: urgency 0 (highest) to 7, incremental or not. quiche knows a local stream only once
   * something was written to it, so before that the priority is kept and applied at the first write.
   */
  setPriority(urgency: number, incremental = false): void {
    this.priority = [Math.max(0, Math.min(7, urgency)), incremental];
    try {
      this.conn.native.streamPriority(this.id, this.priority[0], incremental);
      this.priority = undefined;
    } catch {
      // not created yet
    }
  }

  write(data: Uint8Array, fin = false): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.error) return reject(this.error);
      this.pendingWrites.push({ data, fin, resolve, reject });
      this.conn.pumpWrites(this);
    });
  }

  end(data: Uint8Array = new Uint8Array(0)): Promise<void> {
    return this.write(data, true);
  }

  /** RESET_STREAM (RFC 9000 §19.4) with an application error code. */
  reset(code: number): void {
    this.conn.native.streamShutdown(this.id, quiche().Shutdown.Write, code);
    for (const w of this.pendingWrites.splice(0)) w.reject(new Error(`stream ${this.id} reset (${code})`));
    this.conn.flush();
  }

  /** STOP_SENDING (RFC 9000 §19.5): the peer should stop writing. */
  stopSending(code: number): void {
    this.conn.native.streamShutdown(this.id, quiche().Shutdown.Read, code);
    this.ended = true;
    this.chunks.length = 0;
    this.buffered = 0;
    this.wake?.();
    this.conn.flush();
  }

  /** Called by the connection: tries to hand quiche the pending writes; true when none is left. */
  drainWrites(): boolean {
    while (this.pendingWrites.length > 0) {
      const w = this.pendingWrites[0]!;
      let written: number | null;
      try {
        written = this.conn.native.streamSend(this.id, w.data, w.fin);
        if (this.priority) this.setPriority(...this.priority);
      } catch (error) {
        this.pendingWrites.shift();
        w.reject(error instanceof Error ? error : new Error(String(error)));
        continue;
      }
      if (written === null) return false; // blocked: flow control or congestion
      if (written < w.data.length) {
        w.data = w.data.subarray(written);
        return false;
      }
      this.pendingWrites.shift();
      w.resolve();
    }
    return true;
  }

  /** Called by the connection with received bytes. */
  push(data: Uint8Array, fin: boolean): void {
    if (data.length > 0) {
      this.chunks.push(data);
      this.buffered += data.length;
    }
    if (fin) this.ended = true;
    this.wake?.();
  }

  /** The stream can go no further: writes under way fail; a read side that already saw FIN stays clean. */
  fail(error: Error): void {
    if (!this.ended) {
      this.error = error;
      this.ended = true;
    }
    for (const w of this.pendingWrites.splice(0)) w.reject(error);
    this.wake?.();
  }

  /** Set by the connection when it stopped draining this stream at its read-ahead bound. */
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
          this.conn.pumpReads();
          this.conn.flush();
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
  private timer: ReturnType<typeof setTimeout> | undefined;
  private established = false;
  private closedEmitted = false;
  private nextBidi: number;
  private nextUni: number;
  private readonly out = new Uint8Array(MAX_UDP);
  private readonly readBuffer = new Uint8Array(65_536);

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
  }

  get isEstablished(): boolean {
    return this.established;
  }

  /** The ALPN protocol agreed. */
  get protocol(): string {
    return new TextDecoder().decode(this.native.applicationProto());
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
    this.flush();
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
      this.flush();
    }
    return new Promise((resolve) => {
      if (this.closedEmitted) return resolve();
      this.once('close', () => resolve());
    });
  }

  /** A datagram from the socket. */
  receive(data: Uint8Array, from: Host, to: Host): void {
    try {
      this.native.recv(data, { from, to });
    } catch {
      // quiche refused the packet (RFC 9000 §12.2 / §21.10): dropped; the connection decides the rest
    }
    if (!this.established && this.native.isEstablished()) {
      this.established = true;
      this.emit('established');
    }
    this.pumpReads();
    for (let d; (d = this.native.dgramRecvVec()) !== null; ) this.emit('datagram', d);
    this.pumpAllWrites();
    this.flush();
  }

  /** Drains readable streams, except those whose consumer is behind by `maxStreamBuffer`. */
  pumpReads(): void {
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
          result = this.native.streamRecv(id, this.readBuffer);
        } catch (error) {
          stream.fail(new Error(`stream ${id}: ${error instanceof Error ? error.message : String(error)}`)); // e.g. reset by the peer
          break;
        }
        if (result === null) break;
        const [n, fin] = result;
        stream.push(this.readBuffer.slice(0, n), fin);
        if (fin) break;
      }
      if (stream.bufferedBytes >= this.maxStreamBuffer) stream.paused = true;
    }
  }

  pumpWrites(stream: QuicStream): void {
    stream.drainWrites();
    this.flush();
  }

  private pumpAllWrites(): void {
    for (const id of this.native.writable()) this.streams.get(id)?.drainWrites();
  }

  /** Everything quiche has to send goes to the socket; then the timer is set again. */
  flush(): void {
    for (;;) {
      let result;
      try {
        result = this.native.send(this.out);
      } catch {
        break;
      }
      if (result === null) break;
      const [n, info] = result;
      // A copy: node:dgram sends asynchronously, and the next conn.send would overwrite `out`.
      this.endpoint.sendDatagram(this.out.slice(0, n), info.to);
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.native.isClosed()) return this.finish();
    const timeout = this.native.timeout();
    if (timeout !== null) {
      this.timer = setTimeout(() => {
        this.native.onTimeout();
        this.pumpAllWrites();
        this.flush();
      }, timeout);
    }
  }

  private finish(): void {
    if (this.closedEmitted) return;
    this.closedEmitted = true;
    const error = this.native.peerError() ?? this.native.localError();
    for (const s of this.streams.values()) s.fail(new Error(`connection closed${error ? ` (${error.errorCode})` : ''}`));
    this.endpoint.forget(this);
    this.emit(
      'close',
      error ? { local: !this.native.peerError(), application: error.isApp, code: error.errorCode, reason: new TextDecoder().decode(error.reason) } : undefined,
    );
  }
}

export interface QuicEndpointStats {
  connections: number;
  datagramsIn: number;
  datagramsOut: number;
  /** Datagrams dropped: not QUIC, unknown connection, or past the connection limit. */
  dropped: number;
  /** Version Negotiation packets sent (RFC 9000 §6) for Initials of an unsupported version. */
  versionNegotiations: number;
  /** Datagrams handed to a connection (an existing one, or one they opened). */
  routed: number;
}

/** One UDP socket, any number of connections: the server's listener, or a client's local end. */
export class QuicEndpoint extends EventEmitter<{ connection: [QuicConnection] }> {
  private readonly byId = new Map<string, QuicConnection>();
  private readonly ids = new WeakMap<QuicConnection, string[]>();
  private readonly counters = { datagramsIn: 0, datagramsOut: 0, dropped: 0, versionNegotiations: 0, routed: 0 };
  private local!: Host;

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
  static async connect(o: QuicOptions & { host: string; port: number; serverName?: string; timeoutMs?: number }): Promise<QuicConnection> {
    const endpoint = await QuicEndpoint.open(o, false, isIP(o.host) === 6 ? '::' : '0.0.0.0', 0);
    const scid = randomBytes(SCID_LENGTH);
    const remote = { host: o.host, port: o.port };
    const native = quiche().Connection.connect(o.serverName ?? o.host, scid, endpoint.local, remote, makeConfig(o, false));
    if (o.keylogFile) native.setKeylog(o.keylogFile);
    const conn = new QuicConnection(native, endpoint, remote, false, o.maxStreamBuffer ?? 1024 * 1024);
    endpoint.register(conn, [toHex(scid)]);
    conn.once('close', () => void endpoint.close());
    conn.flush();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`QUIC handshake with ${o.host}:${o.port} did not finish within ${o.timeoutMs ?? 5000} ms`)), o.timeoutMs ?? 5000);
      conn.once('established', () => {
        clearTimeout(timer);
        resolve();
      });
      conn.once('close', (why) => {
        clearTimeout(timer);
        reject(new Error(`QUIC connection to ${o.host}:${o.port} closed during the handshake${why ? ` (${why.code} ${why.reason})` : ''}`));
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
    const address = socket.address();
    endpoint.local = { host: address.address === '0.0.0.0' ? '127.0.0.1' : address.address, port: address.port };
    socket.on('message', (msg, rinfo) => endpoint.onDatagram(msg, { host: rinfo.address, port: rinfo.port }));
    socket.on('error', () => endpoint.counters.dropped++);
    return endpoint;
  }

  get address(): Host {
    return { ...this.local };
  }

  get stats(): QuicEndpointStats {
    return { connections: new Set(this.byId.values()).size, ...this.counters };
  }

  private onDatagram(data: Uint8Array, from: Host): void {
    this.counters.datagramsIn++;
    let header;
    try {
      header = quiche().Header.fromSlice(data, SCID_LENGTH);
    } catch {
      this.counters.dropped++; // not a QUIC packet (RFC 9000 §17)
      return;
    }
    const to = this.local;
    const existing = this.byId.get(toHex(header.dcid));
    if (existing) {
      this.counters.routed++;
      return existing.receive(data, from, to);
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
      this.sendDatagram(out.subarray(0, n), from);
      return;
    }
    if (data.length < quiche().MIN_CLIENT_INITIAL_LEN || new Set(this.byId.values()).size >= (this.o.maxConnections ?? 10_000)) {
      this.counters.dropped++; // RFC 9000 §14.1: a client Initial is at least 1200 bytes
      return;
    }
    const scid = randomBytes(SCID_LENGTH);
    const native = quiche().Connection.accept(scid, null, to, from, makeConfig(this.o, true));
    if (this.o.keylogFile) native.setKeylog(this.o.keylogFile);
    const conn = new QuicConnection(native, this, from, true, this.o.maxStreamBuffer ?? 1024 * 1024);
    // Both IDs: the client's next Initial packets still carry its original DCID (RFC 9000 §7.2).
    this.register(conn, [toHex(scid), toHex(header.dcid)]);
    this.emit('connection', conn);
    this.counters.routed++;
    conn.receive(data, from, to);
  }

  private register(conn: QuicConnection, ids: string[]): void {
    for (const id of ids) this.byId.set(id, conn);
    this.ids.set(conn, ids);
  }

  forget(conn: QuicConnection): void {
    for (const id of this.ids.get(conn) ?? []) if (this.byId.get(id) === conn) this.byId.delete(id);
  }

  sendDatagram(data: Uint8Array, to: Host): void {
    this.counters.datagramsOut++;
    this.socket.send(data, to.port, to.host);
  }

  /** Closes every connection (code 0) and the socket. */
  async close(): Promise<void> {
    const conns = [...new Set(this.byId.values())];
    await Promise.race([Promise.all(conns.map((c) => c.close(0, 'endpoint closing'))), new Promise((r) => setTimeout(r, 1000))]);
    await new Promise<void>((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }
}
