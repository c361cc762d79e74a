/**
 * WebTransport over HTTP/3 (draft-ietf-webtrans-http3-02, the version Chromium speaks; RFC 9220
 * extended CONNECT, RFC 9297 HTTP Datagrams and Capsules), server and client, on src/http3.
 *
 * - **Handshake.** Both sides send SETTINGS ENABLE_WEBTRANSPORT=1 and H3_DATAGRAM=1, the server also
 *   ENABLE_CONNECT_PROTOCOL=1 (RFC 9220 §3). A session is a CONNECT with `:protocol webtransport` and
 *   `sec-webtransport-http3-draft02: 1`; the server answers `:status 200` with
 *   `sec-webtransport-http3-draft: draft02`, or refuses with a 4xx/5xx and a one-line reason. The
 *   CONNECT stream's ID is the session ID, and the stream stays open for the session's life.
 * - **Streams** (draft-02 §4): a unidirectional stream starts with type 0x54 and the session ID, a
 *   bidirectional one with the signal 0x41 and the session ID; after that, bytes are the application's.
 *   Streams that arrive before their session is known wait, a bounded number of them. A session holds
 *   at most `maxPeerStreams` peer streams open at once (beside QUIC's own stream limits, which are the
 *   connection's); past it a new one is refused with H3_EXCESSIVE_LOAD (STOP_SENDING, and RESET_STREAM
 *   for a bidirectional one). A stream is no longer open once it is over both ways: read to its end (or
 *   stopped) and written to its end (or reset).
 * - **Datagrams** (RFC 9297 §2.1): QUIC DATAGRAM frames prefixed with the session's quarter stream ID.
 * - **Errors** (draft-02 §4.3): 32-bit application codes map into the HTTP/3 error space on
 *   RESET_STREAM and STOP_SENDING.
 * - **Close** (draft-02 §5): CLOSE_WEBTRANSPORT_SESSION (a code and a reason) in a DATA frame on the
 *   CONNECT stream, then FIN; a FIN alone is a close with code 0. The session's streams are reset then.
 * - **End** (draft-02 §5: a session is terminated when its CONNECT stream is closed, cleanly or
 *   abruptly, on either side, or a CLOSE_WEBTRANSPORT_SESSION is sent or received): the session ends,
 *   and leaves its connection's count of sessions, the moment the peer's CLOSE_WEBTRANSPORT_SESSION
 *   arrives (FIN or not), the CONNECT stream ends (FIN) or is reset, the peer stops reading it
 *   (STOP_SENDING), the QUIC connection closes, or the route that took it throws.
 */
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import {
  H3_ALPN,
  Http3Client,
  readVarintAfter,
  serveHttp3,
  type Http3ConnectRequest,
  type Http3Extension,
  type Http3ServerOptions,
  type StreamStart,
} from '../http3/index.js';
import { QuicEndpoint, type QuicConnection, type QuicOptions, type QuicStream } from '../quic/index.js';
import {
  CAPSULE_CLOSE_WEBTRANSPORT_SESSION,
  CapsuleReader,
  Http3FrameType,
  SETTINGS_ENABLE_CONNECT_PROTOCOL,
  SETTINGS_ENABLE_WEBTRANSPORT,
  SETTINGS_H3_DATAGRAM,
  WEBTRANSPORT_BIDI_SIGNAL,
  WEBTRANSPORT_DRAFT02_REQUEST_HEADER,
  WEBTRANSPORT_DRAFT_RESPONSE_HEADER,
  WEBTRANSPORT_UNI_STREAM,
  decodeCloseSession,
  decodeSessionDatagram,
  encodeCloseSession,
  encodeHttp3Frame,
  encodeHttp3FrameHeader,
  encodeSessionDatagram,
  encodeVarint,
  http3CodeToWebTransport,
  webTransportCodeToHttp3,
  type FieldLine,
  type Http3FrameReader,
} from '../wire/index.js';
import {
  PeerStreams,
  SessionRefusedError,
  StreamAbortedError,
  WT_AVAILABLE_PROTOCOLS,
  WT_PROTOCOL,
  parseRetryAfter,
  readStreamToEnd,
  selectWebTransportProtocol,
  type Session,
  type SessionCloseInfo,
  type SessionEvents,
  type SessionRequest,
  type SessionRouter,
  type SessionStats,
  type SessionStream,
  type StreamOptions,
} from './session.js';
import { serializeBareItem } from '../wire/structured-fields.js';

/** draft-02 §4.3: streams of a session that is gone are reset with WEBTRANSPORT_SESSION_GONE. */
const WEBTRANSPORT_SESSION_GONE = 0x170d7b68;
/** Streams that may wait for a session not known yet (per connection), and how long. */
const MAX_PENDING_STREAMS = 32;
const PENDING_STREAM_MS = 2000;
/** Sessions per QUIC connection. */
const DEFAULT_MAX_SESSIONS = 16;
/** RFC 9114 §8.1: H3_NO_ERROR (no more reading of a CONNECT stream after its close) and H3_EXCESSIVE_LOAD. */
const H3_NO_ERROR = 0x100;
const H3_EXCESSIVE_LOAD = 0x107;

const encoder = new TextEncoder();

/** The HTTP/3 error code a QUIC stream error carries, if any (QuicStreamError or quiche's message). */
function errorCodeOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown })?.code;
  if (typeof code === 'number') return code;
  const m = /\((\d+)\)/.exec(error instanceof Error ? error.message : '');
  return m ? Number(m[1]) : undefined;
}

function webTransportCodeOf(error: unknown): number {
  const code = errorCodeOf(error);
  return code === undefined ? 0 : (http3CodeToWebTransport(BigInt(code)) ?? 0);
}

/** A WebTransport stream on a QUIC stream: the stream header is written before the first bytes, or was read already. */
class Http3SessionStream implements SessionStream {
  private prefix: Uint8Array | undefined;
  /** Read to its end or stopped (or not readable here). */
  private readOver: boolean;
  /** Written to its end or reset (or not writable here). */
  private writeOver: boolean;

  constructor(
    private readonly quic: QuicStream,
    private readonly session: Http3Session,
    readonly local: boolean,
    private leftover: Uint8Array,
  ) {
    this.readOver = local && !quic.bidirectional;
    this.writeOver = !local && !quic.bidirectional;
    // A writer must learn of STOP_SENDING even between writes (quiche forgets a stream once its reset is
    // acknowledged, and a later write would then wait forever): watch for it on every stream we write.
    if (local || quic.bidirectional) void quic.stopped;
    if (local) {
      // draft-02 §4.1/§4.2: the stream type (uni) or signal (bidi), then the session ID.
      const head = encodeVarint(quic.bidirectional ? WEBTRANSPORT_BIDI_SIGNAL : WEBTRANSPORT_UNI_STREAM);
      const id = encodeVarint(session.id);
      this.prefix = new Uint8Array(head.length + id.length);
      this.prefix.set(head);
      this.prefix.set(id, head.length);
    }
  }

  get id(): number {
    return this.quic.id;
  }

  get bidirectional(): boolean {
    return this.quic.bidirectional;
  }

  private withPrefix(data: Uint8Array): Uint8Array {
    if (!this.prefix) return data;
    const out = new Uint8Array(this.prefix.length + data.length);
    out.set(this.prefix);
    out.set(data, this.prefix.length);
    this.prefix = undefined;
    return out;
  }

  private mapWriteError(error: unknown): never {
    if (error instanceof StreamAbortedError) throw error;
    const code = errorCodeOf(error);
    const stopped =
      /stop/i.test(error instanceof Error ? error.message : '') || (error as { kind?: string })?.kind === 'stopped';
    throw new StreamAbortedError(
      this.id,
      code === undefined ? 0 : (http3CodeToWebTransport(BigInt(code)) ?? 0),
      this.session.isClosed ? 'session-closed' : stopped ? 'peer-stop-sending' : 'local-reset',
    );
  }

  async write(data: Uint8Array): Promise<void> {
    await this.quic.write(this.withPrefix(data)).catch((e) => {
      this.over('write');
      return this.mapWriteError(e);
    });
  }

  async end(data: Uint8Array = new Uint8Array(0)): Promise<void> {
    try {
      await this.quic.end(this.withPrefix(data)).catch((e) => this.mapWriteError(e));
    } finally {
      this.over('write');
    }
  }

  reset(code: number): void {
    try {
      this.quic.reset(Number(webTransportCodeToHttp3(code)));
    } catch {
      // already closed
    }
    this.over('write');
  }

  stopSending(code: number): void {
    try {
      this.quic.stopSending(Number(webTransportCodeToHttp3(code)));
    } catch {
      // already closed
    }
    this.over('read');
  }

  /** One direction is over; once both are, the session lets go of the stream. */
  private over(half: 'read' | 'write'): void {
    if (half === 'read') this.readOver = true;
    else this.writeOver = true;
    if (this.readOver && this.writeOver) this.session.retire(this);
  }

  setPriority(urgency: number, incremental = false): void {
    this.quic.setPriority(urgency, incremental);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    try {
      if (this.leftover.length > 0) {
        const first = this.leftover;
        this.leftover = new Uint8Array(0);
        yield first;
      }
      for await (const chunk of this.quic) yield chunk;
    } catch (error) {
      throw new StreamAbortedError(
        this.id,
        webTransportCodeOf(error),
        this.session.isClosed ? 'session-closed' : 'peer-reset',
      );
    } finally {
      this.over('read'); // read to its end, failed, or the reader stopped reading
    }
  }

  readAll(limit?: number): Promise<Uint8Array> {
    return readStreamToEnd(this, limit);
  }

  /** The session ended: what is still open is reset (draft-02 §4.3). */
  abandon(): void {
    try {
      if (this.local || this.bidirectional) this.quic.reset(WEBTRANSPORT_SESSION_GONE);
      if (!this.local || this.bidirectional) this.quic.stopSending(WEBTRANSPORT_SESSION_GONE);
    } catch {
      // already closed
    }
  }
}

/** One WebTransport session over HTTP/3. */
export class Http3Session extends EventEmitter<SessionEvents> implements Session {
  readonly transport = 'webtransport' as const;
  readonly closed: Promise<SessionCloseInfo>;
  private resolveClosed!: (info: SessionCloseInfo) => void;
  private closeInfo: SessionCloseInfo | undefined;
  /** Streams open in at least one direction; `abandon`ed when the session ends. */
  private readonly streams = new Set<Http3SessionStream>();
  private readonly peers: PeerStreams<Http3SessionStream>;
  private readonly counters = {
    streamsOpened: 0,
    streamsAccepted: 0,
    streamsRefused: 0,
    datagramsSent: 0,
    datagramsReceived: 0,
  };

  constructor(
    private readonly quic: QuicConnection,
    private readonly connectStream: QuicStream,
    readonly path: string,
    readonly headers: Readonly<Record<string, string>>,
    private readonly onGone: (session: Http3Session) => void,
    maxPeerStreams?: number,
  ) {
    super();
    this.peers = new PeerStreams(this, maxPeerStreams);
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    quic.once('close', () => this.finish({ code: 0, reason: 'connection closed', by: 'transport' }));
    // The peer no longer reads the CONNECT stream: it is closed abruptly on its side (draft-02 §5).
    void connectStream.stopped.then((code) =>
      this.finish({ code: 0, reason: `the peer stopped reading the CONNECT stream (${code})`, by: 'transport' }),
    );
  }

  /** The session ID: its CONNECT stream's ID. */
  get id(): number {
    return this.connectStream.id;
  }

  get isClosed(): boolean {
    return this.closeInfo !== undefined;
  }

  /** Resolves once the peer's side of the CONNECT stream has ended (after its close, or in answer to ours). */
  drained: Promise<void> = Promise.resolve();

  /** Reads the CONNECT stream's capsules until it ends (draft-02 §5). */
  readCapsules(reader: Http3FrameReader): void {
    this.drained = this.readCapsuleStream(reader);
  }

  private async readCapsuleStream(reader: Http3FrameReader): Promise<void> {
    const capsules = new CapsuleReader();
    let close: SessionCloseInfo | undefined;
    /** Reads what has come; the peer's CLOSE_WEBTRANSPORT_SESSION, once it is here. */
    const drain = (): SessionCloseInfo | undefined => {
      for (let e; (e = reader.next()) !== undefined; ) {
        if (e.kind !== 'data') continue; // HEADERS (trailers) or unknown frames: nothing for a session
        capsules.push(e.data);
        for (let c; (c = capsules.next()) !== undefined; ) {
          if (c.type === BigInt(CAPSULE_CLOSE_WEBTRANSPORT_SESSION))
            return { ...decodeCloseSession(c.value), by: 'peer' };
          // other capsules (DRAIN, GREASE, datagrams as capsules) are skipped (RFC 9297 §3.2)
        }
      }
      return undefined;
    };
    try {
      close = drain();
      if (!close) {
        for await (const chunk of this.connectStream) {
          reader.push(chunk);
          if ((close = drain())) break;
        }
      }
      if (close) {
        // draft-02 §5: the session ends with the capsule, FIN or not; nothing after it is read.
        try {
          this.connectStream.stopSending(H3_NO_ERROR);
        } catch {
          // already closed
        }
      } else reader.end();
    } catch (error) {
      // A malformed capsule or frame ends the session (H3_GENERAL_PROTOCOL_ERROR on the stream, draft-02 §5).
      close = {
        code: 0,
        reason: `session ended: ${error instanceof Error ? error.message : String(error)}`,
        by: 'transport',
      };
      try {
        this.connectStream.reset(0x101);
      } catch {
        // already closed
      }
    }
    this.finish(close ?? { code: 0, reason: '', by: 'peer' }); // a clean FIN: a close with code 0 (draft-02 §5)
    // The peer closed its side; close ours (a FIN answers a FIN or a CLOSE_WEBTRANSPORT_SESSION).
    void this.connectStream.end().catch(() => undefined);
  }

  openStream(options: StreamOptions = {}): SessionStream {
    if (this.closeInfo) throw new Error(`WebTransport session ${this.path} is closed`);
    const quic = this.quic.openStream({
      bidirectional: options.bidirectional ?? true,
      urgency: options.urgency,
      incremental: options.incremental,
    });
    const stream = new Http3SessionStream(quic, this, true, new Uint8Array(0));
    this.streams.add(stream);
    this.counters.streamsOpened++;
    return stream;
  }

  /** A peer stream of this session, its header already read. */
  accept(quic: QuicStream, rest: Uint8Array): void {
    if (this.closeInfo) {
      quic.stopSending(WEBTRANSPORT_SESSION_GONE);
      return;
    }
    if (!this.peers.hasRoom) {
      this.counters.streamsRefused++;
      try {
        quic.stopSending(H3_EXCESSIVE_LOAD);
        if (quic.bidirectional) quic.reset(H3_EXCESSIVE_LOAD);
      } catch {
        // already closed
      }
      return;
    }
    const stream = new Http3SessionStream(quic, this, false, rest);
    this.streams.add(stream);
    this.counters.streamsAccepted++;
    this.peers.admit(stream);
  }

  /** A stream over in both directions leaves the session (and, a peer's, its count of open streams). */
  retire(stream: Http3SessionStream): void {
    if (this.streams.delete(stream) && !stream.local) this.peers.release();
  }

  receiveDatagram(payload: Uint8Array): void {
    this.counters.datagramsReceived++;
    this.emit('datagram', payload);
  }

  get maxDatagramSize(): number {
    const max = (this.quic as { maxDatagramSize?: number }).maxDatagramSize ?? 1200;
    return Math.max(0, max - encodeVarint(this.id / 4).length);
  }

  sendDatagram(data: Uint8Array): boolean {
    if (this.closeInfo || data.length > this.maxDatagramSize) return false;
    const sent = this.quic.sendDatagram(encodeSessionDatagram(this.id, data));
    if (sent) this.counters.datagramsSent++;
    return sent;
  }

  async close(code = 0, reason = ''): Promise<void> {
    if (this.closeInfo) return;
    const capsule = encodeCloseSession(code, reason);
    const frame = encodeHttp3Frame({ kind: 'data', data: capsule });
    this.finish({ code, reason, by: 'local' });
    await this.connectStream.end(frame).catch(() => undefined);
  }

  private finish(info: SessionCloseInfo): void {
    if (this.closeInfo) return;
    this.closeInfo = info;
    for (const s of this.streams) s.abandon();
    this.streams.clear();
    this.peers.clear();
    this.onGone(this);
    this.resolveClosed(info);
    this.emit('close', info);
  }

  /** The session's own counts (without the connection's path, which `stats()` adds). */
  counts(): { streamsOpened: number; streamsAccepted: number; streamsRefused: number } {
    return { ...this.counters };
  }

  stats(): SessionStats {
    const path = this.quic.stats().path;
    return {
      transport: 'webtransport',
      rttMs: path?.rtt, // quiche reports whole milliseconds
      cwndBytes: path?.cwnd,
      deliveryRateBitsPerSecond: path ? path.deliveryRate * 8 : undefined,
      ...this.counters,
      peerStreams: this.peers.count,
    };
  }
}

export interface WebTransportHttp3Options {
  /** Sessions per QUIC connection (and CONNECTs being decided); more are refused with 429. Default 16. */
  maxSessions?: number;
  /** Peer streams open at once per session; more are refused (H3_EXCESSIVE_LOAD). Default 100. */
  maxPeerStreams?: number;
}

/**
 * WebTransport on one HTTP/3 connection (either role): the extension handed to `serveHttp3` or
 * `Http3Client`, the sessions of the connection, and the dispatch of their streams and datagrams.
 */
/** One connection's WebTransport counts; the stream totals include its closed sessions. */
export interface WebTransportHttp3Stats {
  /** Sessions now. */
  sessions: number;
  sessionsAccepted: number;
  sessionsRefused: number;
  /** Streams waiting for a session not known yet. */
  pendingStreams: number;
  streamsOpened: number;
  streamsAccepted: number;
  streamsRefused: number;
}

type StreamTotals = Pick<WebTransportHttp3Stats, 'streamsOpened' | 'streamsAccepted' | 'streamsRefused'>;

function addStreams(totals: StreamTotals, session: Http3Session): void {
  const s = session.counts();
  totals.streamsOpened += s.streamsOpened;
  totals.streamsAccepted += s.streamsAccepted;
  totals.streamsRefused += s.streamsRefused;
}

export class WebTransportHttp3 {
  readonly extension: Http3Extension;
  private readonly sessions = new Map<number, Http3Session>();
  /** CONNECTs being decided by the router: they count against `maxSessions`. */
  private deciding = 0;
  private readonly counters = { sessionsAccepted: 0, sessionsRefused: 0 };
  /** The stream counts of the sessions that ended. */
  private readonly retired: StreamTotals = { streamsOpened: 0, streamsAccepted: 0, streamsRefused: 0 };
  private readonly pending: { sessionId: number; stream: QuicStream; rest: Uint8Array; at: number }[] = [];

  constructor(
    private readonly quic: QuicConnection,
    private readonly role: 'server' | 'client',
    private readonly router?: SessionRouter,
    private readonly o: WebTransportHttp3Options = {},
  ) {
    const settings = new Map<bigint, bigint>([
      [SETTINGS_H3_DATAGRAM, 1n],
      [SETTINGS_ENABLE_WEBTRANSPORT, 1n],
    ]);
    if (role === 'server') settings.set(SETTINGS_ENABLE_CONNECT_PROTOCOL, 1n);
    this.extension = {
      settings,
      uniStream: (stream, start) => this.takeStream(stream, start, WEBTRANSPORT_UNI_STREAM),
      bidiStream: (stream, start) => this.takeStream(stream, start, WEBTRANSPORT_BIDI_SIGNAL),
      connect: role === 'server' ? (request) => void this.serveConnect(request) : undefined,
    };
    quic.on('datagram', (datagram) => {
      try {
        const { sessionId, payload } = decodeSessionDatagram(datagram);
        this.sessions.get(sessionId)?.receiveDatagram(payload); // a datagram for no session is dropped (RFC 9297 §2.1)
      } catch {
        // malformed: dropped
      }
    });
  }

  private takeStream(stream: QuicStream, start: StreamStart, expected: number): boolean {
    if (start.type !== BigInt(expected)) return false;
    void readVarintAfter(stream, start.rest).then((id) => {
      if (!id) return;
      const sessionId = Number(id.value);
      const session = this.sessions.get(sessionId);
      if (session) return session.accept(stream, id.rest);
      // draft-02 §4.5: a stream may arrive before its CONNECT was answered; it waits, within bounds.
      this.prune();
      if (this.pending.length >= MAX_PENDING_STREAMS) return stream.stopSending(WEBTRANSPORT_SESSION_GONE);
      this.pending.push({ sessionId, stream, rest: id.rest, at: Date.now() });
      setTimeout(() => this.prune(), PENDING_STREAM_MS + 10).unref();
    });
    return true;
  }

  private prune(): void {
    const now = Date.now();
    for (let i = this.pending.length - 1; i >= 0; i--) {
      if (now - this.pending[i]!.at >= PENDING_STREAM_MS)
        this.pending.splice(i, 1)[0]!.stream.stopSending(WEBTRANSPORT_SESSION_GONE);
    }
  }

  /** Registers a session and hands it the streams that were waiting for it. */
  private add(session: Http3Session): void {
    this.sessions.set(session.id, session);
    for (let i = 0; i < this.pending.length; ) {
      const p = this.pending[i]!;
      if (p.sessionId === session.id) {
        this.pending.splice(i, 1);
        session.accept(p.stream, p.rest);
      } else i++;
    }
  }

  private readonly gone = (session: Http3Session) => {
    if (this.sessions.delete(session.id)) addStreams(this.retired, session);
  };

  stats(): WebTransportHttp3Stats {
    const totals = { ...this.retired };
    for (const session of this.sessions.values()) addStreams(totals, session);
    return { sessions: this.sessions.size, ...this.counters, pendingStreams: this.pending.length, ...totals };
  }

  private async serveConnect(request: Http3ConnectRequest): Promise<void> {
    const refuse = async (status: number, reason: string, retryAfterSeconds?: number) => {
      this.counters.sessionsRefused++;
      try {
        await request.respond(status, {
          'content-type': 'text/plain',
          ...(retryAfterSeconds === undefined ? {} : { 'retry-after': String(retryAfterSeconds) }),
        });
        const body = encoder.encode(`${reason}\n`);
        await request.stream.write(encodeHttp3FrameHeader(Http3FrameType.DATA, body.length));
        await request.stream.end(body);
      } catch {
        // the client went away
      }
    };
    if (request.protocol !== 'webtransport')
      return refuse(501, `extended CONNECT for ${request.protocol} is not served here`);
    if (!this.router) return refuse(404, 'no WebTransport here');
    const maxSessions = this.o.maxSessions ?? DEFAULT_MAX_SESSIONS;
    if (this.sessions.size + this.deciding >= maxSessions)
      return refuse(429, `at most ${maxSessions} WebTransport sessions per connection`);
    const headers = Object.fromEntries(
      request.fields.filter((f) => !f.name.startsWith(':')).map((f): [string, string] => [f.name, f.value]),
    );
    const sessionRequest: SessionRequest = {
      transport: 'webtransport',
      path: request.path,
      authority: request.authority,
      origin: headers.origin,
      headers,
    };
    this.deciding++;
    const decision = await this.router.decide(sessionRequest).finally(() => this.deciding--);
    if ('refusal' in decision)
      return refuse(decision.refusal.status, decision.refusal.reason, decision.refusal.retryAfterSeconds);
    const protocol = selectWebTransportProtocol(headers[WT_AVAILABLE_PROTOCOLS], decision.route.protocols ?? []);
    sessionRequest.protocol = protocol;
    try {
      await request.respond(200, {
        [WEBTRANSPORT_DRAFT_RESPONSE_HEADER]: 'draft02',
        ...(protocol === undefined ? {} : { [WT_PROTOCOL]: serializeBareItem(protocol) }),
      });
    } catch {
      return;
    }
    const session = new Http3Session(
      this.quic,
      request.stream,
      request.path,
      headers,
      this.gone,
      this.o.maxPeerStreams,
    );
    this.add(session);
    this.counters.sessionsAccepted++;
    session.readCapsules(request.reader);
    try {
      decision.route.session(session, sessionRequest);
    } catch {
      // The route failed: the session ends at once (the viewer learns that it could not start, not why).
      void session.close(0, 'the server failed to start the session');
    }
  }

  /** Client: opens a session with an extended CONNECT (draft-02 §3.2). */
  async open(client: Http3Client, path: string, headers: Record<string, string> = {}): Promise<Http3Session> {
    if (this.role !== 'client') throw new Error('only a client opens sessions');
    // draft-02 §3.1: a client must see the server's ENABLE_WEBTRANSPORT before it sends the CONNECT.
    const settings = await client.h3.peerSettings;
    if (settings.get(SETTINGS_ENABLE_WEBTRANSPORT) !== 1n)
      throw new SessionRefusedError(0, 'the server does not enable WebTransport (SETTINGS_ENABLE_WEBTRANSPORT)');
    const response = await client.connect(path, 'webtransport', {
      [WEBTRANSPORT_DRAFT02_REQUEST_HEADER]: '1',
      ...headers,
    });
    if (response.status !== 200) {
      let reason = '';
      try {
        const text: Uint8Array[] = [];
        const drain = () => {
          for (let e; (e = response.reader.next()) !== undefined; ) if (e.kind === 'data') text.push(e.data.slice());
        };
        drain();
        for await (const chunk of response.stream) {
          response.reader.push(chunk);
          drain();
        }
        reason = new TextDecoder().decode(Buffer.concat(text)).trim();
      } catch {
        // the reason is optional
      }
      const retryAfter = response.fields.find((f: FieldLine) => f.name === 'retry-after')?.value;
      throw new SessionRefusedError(response.status, reason, parseRetryAfter(retryAfter));
    }
    const fields = Object.fromEntries(response.fields.map((f: FieldLine): [string, string] => [f.name, f.value]));
    const session = new Http3Session(this.quic, response.stream, path, fields, this.gone, this.o.maxPeerStreams);
    this.add(session);
    session.readCapsules(response.reader);
    return session;
  }
}

export interface ConnectWebTransportOptions
  extends Partial<
    Pick<
      QuicOptions,
      | 'ca'
      | 'verifyPeer'
      | 'congestionControl'
      | 'keylogFile'
      | 'maxStreamBuffer'
      | 'initialMaxData'
      | 'initialMaxStreamData'
    >
  > {
  headers?: Record<string, string>;
  timeoutMs?: number;
}

/**
 * A Node client session: `https://host:port/path?query` over QUIC + HTTP/3. The QUIC connection is the
 * session's own and closes with it.
 */
export async function connectWebTransport(
  url: string,
  options: ConnectWebTransportOptions = {},
): Promise<Http3Session> {
  const u = new URL(url);
  if (u.protocol !== 'https:') throw new Error(`WebTransport needs an https URL: ${url}`);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port || 443);
  const quic = await QuicEndpoint.connect({
    alpn: [H3_ALPN],
    host: isIP(host) ? host : host === 'localhost' ? '127.0.0.1' : host,
    port,
    serverName: isIP(host) ? undefined : host,
    timeoutMs: options.timeoutMs,
    ca: options.ca,
    verifyPeer: options.verifyPeer,
    congestionControl: options.congestionControl,
    keylogFile: options.keylogFile,
    maxStreamBuffer: options.maxStreamBuffer,
    initialMaxData: options.initialMaxData,
    initialMaxStreamData: options.initialMaxStreamData,
  });
  const wt = new WebTransportHttp3(quic, 'client');
  const client = new Http3Client(quic, u.host, wt.extension);
  try {
    const session = await wt.open(client, `${u.pathname}${u.search}`, options.headers);
    // The connection is the session's own: it closes once the peer saw the session's end (or after 1 s).
    session.once(
      'close',
      () =>
        void Promise.race([session.drained, new Promise((r) => setTimeout(r, 1000))]).then(() =>
          quic.close(0, 'session closed'),
        ),
    );
    return session;
  } catch (error) {
    await quic.close(0x100, 'no session');
    throw error;
  }
}

export interface ServeHttp3SessionsOptions extends WebTransportHttp3Options {
  router: SessionRouter;
  /** Plain HTTP/3 requests on the same connection. Default: 404 to all. */
  onRequest?: Http3ServerOptions['onRequest'];
  maxBodyBytes?: number;
}

/** Serves HTTP/3 with WebTransport sessions on a server connection that negotiated `h3`. */
export function serveHttp3Sessions(quic: QuicConnection, options: ServeHttp3SessionsOptions): WebTransportHttp3 {
  const wt = new WebTransportHttp3(quic, 'server', options.router, options);
  serveHttp3(quic, {
    extension: wt.extension,
    maxBodyBytes: options.maxBodyBytes,
    onRequest:
      options.onRequest ??
      ((_req, res) => void res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')),
  });
  return wt;
}
