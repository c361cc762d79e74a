/**
 * pushcast's QUIC endpoint (RFC 9000) on Cloudflare quiche's native binding (src/quic/quiche.ts; the
 * binary of `@matrixai/quic`, whose own event loop and wrapper are not used): the UDP socket, packet
 * routing to connections (connection.ts: the pass, timers; stream.ts: backpressured streams), server and
 * client roles; congestion control CUBIC by default (options.ts says why not BBR, which the Warp draft
 * recommends), BBR or Reno; a key log (SSLKEYLOGFILE format) for tshark (options.ts).
 *
 * - **Batched per event-loop turn.** A datagram is only routed by its Destination Connection ID and handed
 *   to its connection, which marks itself for this turn's pass; the endpoint runs the passes once per
 *   turn, after libuv delivered every datagram that was readable.
 * - **Connection IDs** (RFC 9000 §5.1, §7.2). A new server connection is registered under its own
 *   Source Connection ID and under the client's original Destination Connection ID, so that every
 *   Initial packet of a ClientHello that spans several packets reaches the same connection (Chromium
 *   sends such ClientHellos; the `@matrixai/quic` wrapper made two connections of them). Short-header
 *   packets (RFC 9000 §17.3: all of them once the handshake is done) are routed by a JS read of the
 *   DCID, whose length is ours; only long headers go through quiche's header parser.
 * Node only (node:dgram, native code).
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { QuicConnection } from './connection.js';
import * as internal from './internal.js';
import { MAX_UDP, makeConfig, type QuicOptions } from './options.js';
import { quiche, type Host } from './quiche.js';

const SCID_LENGTH = 16;
const DEFAULT_SOCKET_BUFFER = 4 * 1024 * 1024;

/** The routing key of a connection ID. */
function idKey(id: Uint8Array): string {
  return Buffer.from(id.buffer, id.byteOffset, id.byteLength).toString('hex');
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
    conn[internal.schedule]();
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
      return conn[internal.receive](data, rinfo.address, rinfo.port);
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
      return existing[internal.receive](data, from.host, from.port);
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
    conn[internal.receive](data, from.host, from.port);
  }

  private register(conn: QuicConnection, ids: string[]): void {
    for (const id of ids) this.byId.set(id, conn);
    this.ids.set(conn, ids);
  }

  /** A closed connection's IDs are no longer routed. */
  [internal.forget](conn: QuicConnection): void {
    for (const id of this.ids.get(conn) ?? []) if (this.byId.get(id) === conn) this.byId.delete(id);
  }

  /** Queues `conn` for its pass at the end of this turn. */
  [internal.scheduleConnection](conn: QuicConnection): void {
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
      for (; i < conns.length; i++) conns[i]![internal.pass]();
    } finally {
      // A listener threw in one connection's pass: the others still get theirs, next turn.
      for (const c of conns.slice(i + 1)) this[internal.scheduleConnection](c);
    }
  };

  /** Where quiche writes the next outgoing packet (MAX_UDP bytes of the slab). */
  [internal.packetBuffer](): Uint8Array {
    return this.out;
  }

  /** Sends the `n` bytes quiche wrote into the packet buffer; the next packet goes after them. */
  [internal.sendPacket](n: number, to: Host): void {
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
