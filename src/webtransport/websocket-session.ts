/**
 * A WebTransport {@link Session} over one WebSocket (RFC 6455), in the wire format of the
 * `@moq/web-transport-ws` polyfill (src/wire/webtransport-ws.ts): the fallback for browsers without
 * WebTransport, and for Node clients. Either role: `server` on an accepted upgrade
 * (websocket-server.ts), `client` on a `ws` client (websocket-client.ts).
 *
 * - **Streams** are opened implicitly by their first STREAM frame; IDs as RFC 9000 §2.1. The n-th
 *   stream of a kind this side opens is `n << 2 | uni << 1 | server`; nothing is sent before the
 *   first write (the polyfill does the same), so a peer may see stream 8 before stream 4. Peer
 *   streams that arrive while nothing listens to `stream` are held for the first listener
 *   (`PeerStreams`, as for WebTransport over HTTP/3).
 * - **Sending.** TCP orders everything and the polyfill has no flow control, so the only place
 *   priorities (RFC 9218 urgency) can act is before bytes reach the socket: the `UrgencyScheduler`
 *   (frames of at most 64 KiB, lowest urgency first, round-robin among equals, while the socket's
 *   `bufferedAmount` is below 256 KiB). A segment of a higher-priority Warp track overtakes what a
 *   lower-priority one queued. `write()` resolves when its last frame was handed to the socket and
 *   `bufferedAmount` is below the mark: that is the backpressure. RESET_STREAM, STOP_SENDING and
 *   APPLICATION_CLOSE skip the queue (as the polyfill's "priority frames" do).
 * - **Receiving.** The peer is not flow-controlled, so every buffer has a bound; see
 *   {@link WebSocketSessionLimits}. A stream whose unread bytes pass its bound (or the session's) is
 *   stopped: STOP_SENDING with {@link WS_CODE_RECEIVE_BUFFER_FULL}, which the polyfill answers with
 *   RESET_STREAM, and its reader throws {@link StreamReceiveOverflowError}; the session and the
 *   other streams go on (one slow consumer must not cost a Warp session its other tracks).
 *   A peer stream past {@link WebSocketSessionLimits.maxPeerStreams} open at once is refused the same
 *   way with {@link WS_CODE_STREAM_LIMIT} (STOP_SENDING, and RESET_STREAM for our half of a
 *   bidirectional one): the polyfill knows no stream limit, so refusing one stream is kinder than
 *   closing the session.
 * - **Protocol errors** close the WebSocket with 1002 (RFC 6455 §7.4.1) and a one-line reason, and
 *   the session's `close` reports `{ code: 1002, reason }`: a malformed frame or unknown type, STREAM
 *   on a stream the peer may not send on (e.g. a client writing on a server-initiated unidirectional
 *   stream), STREAM after FIN, a frame naming a stream this side has not opened yet, a text message
 *   (1003). Frames for streams that are gone are otherwise ignored: after a STOP_SENDING the peer may
 *   have frames in flight, and the polyfill even sends a write that was waiting after its
 *   RESET_STREAM.
 * - **Close.** `close(code, reason)` sends APPLICATION_CLOSE, then closes the WebSocket; the
 *   polyfill's `closed` reports the WebSocket close code, so the code is repeated there when RFC 6455
 *   §7.4.2 allows it (3000–4999; 0 is 1000, anything else 1000 too). A peer's APPLICATION_CLOSE
 *   resolves `closed` with its code and reason (`by: 'peer'`); a WebSocket closed without one reports
 *   the WebSocket code (1000 and 1005 as 0), as the polyfill does, `by: 'transport'`: the polyfill's
 *   close is the frame, so an end without it is not the peer's word.
 * - **Liveness**: a ping every 15 s; a peer that has not answered the previous one is cut off and
 *   `close` reports `{ code: 1006 }`. The pong also gives `stats().rttMs`.
 * - No datagrams: the polyfill has none (`sendDatagram` returns false, `maxDatagramSize` is 0).
 */
import { EventEmitter } from 'node:events';
import { WebSocket, type RawData } from 'ws';
import {
  WireError,
  canReceiveOn,
  canSendOn,
  decodeWsFrame,
  encodeWsFrame,
  isServerInitiated,
  isUnidirectional,
  makeStreamId,
  type WsFrame,
} from '../wire/index.js';
import {
  StreamAbortedError,
  readStreamToEnd,
  type Session,
  type SessionCloseInfo,
  type SessionEvents,
  type SessionStats,
  type SessionStream,
  type StreamOptions,
  DEFAULT_MAX_PEER_STREAMS,
  PeerStreams,
} from './session.js';
import { SendQueueFullError, StreamQueue, UrgencyScheduler } from './urgency-scheduler.js';

/**
 * Codes this transport puts on RESET_STREAM / STOP_SENDING itself. They are above 2^32−1, outside
 * WebTransport's 32-bit application codes, so they cannot be mistaken for an application's.
 */
export const WS_CODE_STREAM_LIMIT = 0x1_0000_0001;
export const WS_CODE_RECEIVE_BUFFER_FULL = 0x1_0000_0002;

/** Bounds of one session; every buffer the peer can fill has one. */
export interface WebSocketSessionLimits {
  /**
   * The largest WebSocket message accepted (`ws` maxPayload), default 1 MiB: one polyfill write is one
   * message, so a page that writes larger chunks must cut them. Past it the WebSocket closes with 1009.
   * Set on the `ws` socket by whoever creates it; the session uses it for its reports.
   */
  maxMessageBytes?: number;
  /** Unread bytes of one stream, default 1 MiB; past it, STOP_SENDING (see above). */
  maxStreamReceiveBytes?: number;
  /** Unread bytes of all streams of the session, default 16 MiB; past it, the stream that passed it is stopped. */
  maxSessionReceiveBytes?: number;
  /** Peer-opened streams open at once, default 100; past it, the new stream is refused. */
  maxPeerStreams?: number;
  /**
   * Bytes accepted by `write()` and not yet handed to the socket, default 16 MiB. A write that would
   * pass it rejects with {@link SendQueueFullError} (nothing of it queued), unless the queue is empty:
   * a writer that awaits each write never meets it.
   */
  maxQueuedBytes?: number;
  /** The socket's `bufferedAmount` below which the scheduler hands it more, default 256 KiB. */
  highWaterMark?: number;
  /** The largest STREAM payload this side sends in one message, default 64 KiB. */
  maxFrameBytes?: number;
  /** Ping interval; 0 disables liveness. Default 15 s. */
  pingIntervalMs?: number;
}

export interface WebSocketSessionOptions extends WebSocketSessionLimits {
  role: 'server' | 'client';
  /** The request path with its query. */
  path: string;
  /** Server: the upgrade request's header fields; client: the 101 response's. Lowercase names. */
  headers?: Readonly<Record<string, string>>;
  /** The application protocol negotiated (`webtransport.<name>`, without the prefix), '' for none. */
  protocol?: string;
}

export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;
const DEFAULTS = {
  maxStreamReceiveBytes: 1024 * 1024,
  maxSessionReceiveBytes: 16 * 1024 * 1024,
  maxPeerStreams: DEFAULT_MAX_PEER_STREAMS,
  maxQueuedBytes: 16 * 1024 * 1024,
  highWaterMark: 256 * 1024,
  maxFrameBytes: 64 * 1024,
  pingIntervalMs: 15_000,
};
/** Streams whose FIN is remembered, to catch STREAM after FIN once they are gone. */
const REMEMBERED_FINS = 1024;
/** Peer stream indices remembered above the lowest one never seen (see {@link SeenIndices}). */
const MAX_SEEN_GAP = 1024;
/** RFC 6455 §5.5: a close frame's reason fits in 123 bytes. */
const MAX_WS_CLOSE_REASON = 123;
const CLOSE_WAIT_MS = 2000;

/** A stream's reader fell behind its bound: the stream was stopped (STOP_SENDING) and its unread bytes dropped. */
export class StreamReceiveOverflowError extends StreamAbortedError {
  constructor(streamId: number, bound: string) {
    super(streamId, WS_CODE_RECEIVE_BUFFER_FULL, 'local-stop-sending');
    this.message = `stream ${streamId}: unread bytes passed ${bound}; the reader fell behind and the stream was stopped (STOP_SENDING)`;
    this.name = 'StreamReceiveOverflowError';
  }
}

const encoder = new TextEncoder();

/** `text` cut to at most `max` bytes of UTF-8, on a character boundary, on one line. */
function oneLine(text: string, max: number): string {
  let line = text.replace(/[\r\n]+/g, ' ');
  while (encoder.encode(line).length > max) line = line.slice(0, -1);
  return line;
}

/** The WebSocket close code that carries application `code` (RFC 6455 §7.4.2: applications own 3000–4999). */
export function webSocketCloseCode(code: number): number {
  return code >= 3000 && code <= 4999 ? code : 1000;
}

/**
 * The indices of one kind of peer-opened stream seen so far: everything below `floor`, and `above`.
 * Bounded: when more than {@link MAX_SEEN_GAP} indices wait above a never-seen one, the floor skips
 * the gap, and a stream that shows up that late counts as gone.
 */
class SeenIndices {
  private floor = 0;
  private readonly above = new Set<number>();

  has(index: number): boolean {
    return index < this.floor || this.above.has(index);
  }

  add(index: number): void {
    if (index < this.floor) return;
    this.above.add(index);
    if (this.above.size > MAX_SEEN_GAP) this.floor = Math.min(...this.above);
    while (this.above.delete(this.floor)) this.floor++;
  }
}

type SendState = 'open' | 'ending' | 'done';
type ReceiveState = 'open' | 'fin' | 'done';

class WebSocketSessionStream implements SessionStream {
  readonly bidirectional: boolean;
  // send half
  sendState: SendState;
  sendError: Error | undefined;
  /** Its writes waiting in the session's scheduler, and its priority. */
  readonly queue: StreamQueue;
  // receive half
  receiveState: ReceiveState;
  private readonly chunks: Uint8Array[] = [];
  unread = 0;
  private receiveError: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(
    readonly id: number,
    readonly local: boolean,
    private readonly session: WebSocketSession,
    options: StreamOptions,
  ) {
    this.bidirectional = !isUnidirectional(id);
    this.sendState = canSendOn(id, session.isServer) ? 'open' : 'done';
    this.receiveState = canReceiveOn(id, session.isServer) ? 'open' : 'done';
    this.queue = new StreamQueue(id, options.urgency, options.incremental);
  }

  write(data: Uint8Array): Promise<void> {
    return this.enqueue(data, false);
  }

  end(data: Uint8Array = new Uint8Array(0)): Promise<void> {
    return this.enqueue(data, true);
  }

  private enqueue(data: Uint8Array, fin: boolean): Promise<void> {
    if (this.sendError) return Promise.reject(this.sendError);
    if (!canSendOn(this.id, this.session.isServer))
      return Promise.reject(
        new Error(`stream ${this.id} is the peer's unidirectional stream: this side only reads it`),
      );
    if (this.sendState !== 'open')
      return Promise.reject(new Error(`stream ${this.id} was ended: no write after end()`));
    if (!fin && data.length === 0) return Promise.resolve();
    return this.session.enqueue(this, data, fin);
  }

  reset(code: number): void {
    if (this.sendState === 'done') return; // FIN sent (nothing left to abandon), already reset, or not ours to send on
    this.abortSend(new StreamAbortedError(this.id, code, 'local-reset'));
    this.session.control({ type: 'reset-stream', id: this.id, code });
  }

  stopSending(code: number): void {
    if (this.receiveState !== 'open') return;
    this.session.control({ type: 'stop-sending', id: this.id, code });
    this.failReceive(new StreamAbortedError(this.id, code, 'local-stop-sending'));
  }

  setPriority(urgency: number, incremental = false): void {
    this.session.reprioritize(this, urgency, incremental);
  }

  /** The send half ends without FIN: queued bytes are dropped and their writes rejected. */
  abortSend(error: Error): void {
    if (this.sendState === 'done' && !this.queue.writes.length) {
      this.sendError ??= error;
      return;
    }
    this.sendError = error;
    this.sendState = 'done';
    this.session.dropQueued(this, error);
    this.session.maybeRetire(this);
  }

  /** A STREAM frame's payload (copied: the message buffer may be a slice of a larger socket read). */
  receive(data: Uint8Array, fin: boolean): void {
    if (this.receiveState === 'fin') return this.session.protocolError(`STREAM after FIN on stream ${this.id}`);
    if (this.receiveState === 'done') return; // stopped or reset here: late frames are dropped
    if (data.length > 0) {
      this.chunks.push(data.slice());
      this.unread += data.length;
      const overflow = this.session.received(this, data.length);
      if (overflow) {
        this.session.control({ type: 'stop-sending', id: this.id, code: WS_CODE_RECEIVE_BUFFER_FULL });
        this.failReceive(new StreamReceiveOverflowError(this.id, overflow));
        return;
      }
    }
    if (fin) {
      this.receiveState = 'fin';
      this.session.maybeRetire(this);
    }
    this.wakeReader();
  }

  /**
   * The receive half ends without FIN (peer reset, stopped here, session gone): unread bytes are
   * dropped. After FIN nothing changes: every byte is here (RFC 9000 §3.2, "Data Recvd").
   */
  failReceive(error: Error): void {
    if (this.receiveState !== 'open') return;
    this.receiveState = 'done';
    this.receiveError = error;
    this.session.consumed(this.unread);
    this.unread = 0;
    this.chunks.length = 0;
    this.session.maybeRetire(this);
    this.wakeReader();
  }

  private wakeReader(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    if (!canReceiveOn(this.id, this.session.isServer))
      throw new Error(`stream ${this.id} is this side's unidirectional stream: nothing to read`);
    for (;;) {
      const chunk = this.chunks.shift();
      if (chunk) {
        this.unread -= chunk.length;
        this.session.consumed(chunk.length);
        yield chunk;
        continue;
      }
      if (this.receiveError) throw this.receiveError;
      if (this.receiveState === 'fin') return;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  readAll(limit?: number): Promise<Uint8Array> {
    return readStreamToEnd(this, limit);
  }
}

/** One WebTransport session over a WebSocket, either role. */
export class WebSocketSession extends EventEmitter<SessionEvents> implements Session {
  readonly transport = 'websocket' as const;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The application protocol negotiated (`webtransport.<name>` without its prefix), '' for none. */
  readonly protocol: string;
  readonly isServer: boolean;
  readonly maxDatagramSize = 0;
  readonly closed: Promise<SessionCloseInfo>;
  private resolveClosed!: (info: SessionCloseInfo) => void;
  private closeInfo: SessionCloseInfo | undefined;
  private readonly limits: Required<Omit<WebSocketSessionLimits, 'maxMessageBytes'>> & { maxMessageBytes: number };
  private readonly streams = new Map<number, WebSocketSessionStream>();
  private readonly nextLocal = { bidi: 0, uni: 0 };
  private readonly seen = { bidi: new SeenIndices(), uni: new SeenIndices() };
  private readonly finished = new Set<number>();
  private readonly peers: PeerStreams<WebSocketSessionStream>;
  private unread = 0;
  private readonly scheduler: UrgencyScheduler;
  private readonly pinger: ReturnType<typeof setInterval> | undefined;
  private alive = true;
  private pingSentAt = 0;
  private rttMs: number | undefined;
  private readonly counters = { streamsOpened: 0, streamsAccepted: 0, streamsRefused: 0 };

  constructor(
    readonly socket: WebSocket,
    options: WebSocketSessionOptions,
  ) {
    super();
    this.isServer = options.role === 'server';
    this.path = options.path;
    this.headers = options.headers ?? {};
    this.protocol = options.protocol ?? '';
    this.limits = {
      maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      maxStreamReceiveBytes: options.maxStreamReceiveBytes ?? DEFAULTS.maxStreamReceiveBytes,
      maxSessionReceiveBytes: options.maxSessionReceiveBytes ?? DEFAULTS.maxSessionReceiveBytes,
      maxPeerStreams: options.maxPeerStreams ?? DEFAULTS.maxPeerStreams,
      maxQueuedBytes: options.maxQueuedBytes ?? DEFAULTS.maxQueuedBytes,
      highWaterMark: options.highWaterMark ?? DEFAULTS.highWaterMark,
      maxFrameBytes: Math.max(1, options.maxFrameBytes ?? DEFAULTS.maxFrameBytes),
      pingIntervalMs: options.pingIntervalMs ?? DEFAULTS.pingIntervalMs,
    };
    this.peers = new PeerStreams(this, this.limits.maxPeerStreams);
    const session = this;
    this.scheduler = new UrgencyScheduler(
      {
        get bufferedAmount() {
          return socket.bufferedAmount;
        },
        get open() {
          return !session.closeInfo && socket.readyState === WebSocket.OPEN;
        },
        send: (id, data, fin, sent) => socket.send(encodeWsFrame({ type: 'stream', id, fin, data }), sent),
      },
      this.limits,
      (queue) => {
        const stream = this.streams.get(queue.id);
        if (!stream) return;
        stream.sendState = 'done';
        this.maybeRetire(stream);
      },
    );
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    socket.binaryType = 'nodebuffer';
    socket.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    socket.on('pong', () => {
      this.alive = true;
      if (this.pingSentAt) this.rttMs = performance.now() - this.pingSentAt;
    });
    socket.on('error', (error: Error & { code?: string }) => {
      // `ws` closes the socket itself after a receive error; this names why.
      if (error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH')
        this.finish({
          code: 1009,
          reason: `a message larger than ${this.limits.maxMessageBytes} bytes`,
          by: 'transport',
        });
      else if (error.code?.startsWith('WS_ERR_'))
        this.finish({ code: 1002, reason: oneLine(error.message, 200), by: 'transport' });
    });
    socket.on('close', (code, reason) => {
      const text = reason.toString('utf8');
      this.finish(
        code === 1000 || code === 1005
          ? { code: 0, reason: text, by: 'transport' }
          : { code, reason: text || (code === 1006 ? 'the connection was lost' : ''), by: 'transport' },
      );
    });
    if (this.limits.pingIntervalMs > 0) {
      this.pinger = setInterval(() => this.ping(), this.limits.pingIntervalMs);
      this.pinger.unref();
    }
    if (socket.readyState !== WebSocket.OPEN)
      queueMicrotask(
        () =>
          socket.readyState >= WebSocket.CLOSING &&
          this.finish({ code: 1006, reason: 'the WebSocket is not open', by: 'transport' }),
      );
  }

  get isClosed(): boolean {
    return this.closeInfo !== undefined;
  }

  /** Bytes accepted by writes and not yet handed to the socket. */
  get queuedBytes(): number {
    return this.scheduler.queuedBytes;
  }

  openStream(options: StreamOptions = {}): SessionStream {
    if (this.closeInfo) throw new Error(`WebTransport session ${this.path} is closed`);
    const bidirectional = options.bidirectional ?? true;
    const kind = bidirectional ? 'bidi' : 'uni';
    const id = makeStreamId(this.nextLocal[kind]++, bidirectional, this.isServer);
    const stream = new WebSocketSessionStream(id, true, this, options);
    this.streams.set(id, stream);
    this.counters.streamsOpened++;
    return stream;
  }

  /** Always false: the polyfill's wire format has no datagrams. */
  sendDatagram(_data: Uint8Array): boolean {
    return false;
  }

  async close(code = 0, reason = ''): Promise<void> {
    if (this.closeInfo) return;
    this.finish({ code, reason, by: 'local' });
    if (this.socket.readyState !== WebSocket.OPEN) return;
    this.socket.send(encodeWsFrame({ type: 'application-close', code, reason }));
    await this.closeSocket(webSocketCloseCode(code), reason);
  }

  /** Closes the WebSocket, waiting (bounded) for the closing handshake. */
  private closeSocket(code: number, reason: string): Promise<void> {
    const socket = this.socket;
    if (socket.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        socket.terminate();
        resolve();
      }, CLOSE_WAIT_MS);
      timer.unref();
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      if (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING)
        socket.close(code, oneLine(reason, MAX_WS_CLOSE_REASON));
    });
  }

  /** A violation of the wire format: close 1002 with a one-line reason (RFC 6455 §7.4.1). */
  protocolError(reason: string): void {
    if (this.closeInfo) return;
    const line = oneLine(reason, MAX_WS_CLOSE_REASON);
    this.finish({ code: 1002, reason: line, by: 'local' });
    void this.closeSocket(1002, line);
  }

  stats(): SessionStats {
    return {
      transport: 'websocket',
      rttMs: this.rttMs,
      bufferedBytes: this.socket.bufferedAmount + this.scheduler.queuedBytes,
      ...this.counters,
      peerStreams: this.peers.count,
      datagramsSent: 0,
      datagramsReceived: 0,
    };
  }

  private ping(): void {
    if (this.closeInfo || this.socket.readyState !== WebSocket.OPEN) return;
    if (!this.alive) {
      this.finish({ code: 1006, reason: `no pong within ${this.limits.pingIntervalMs} ms`, by: 'transport' });
      this.socket.terminate();
      return;
    }
    this.alive = false;
    this.pingSentAt = performance.now();
    this.socket.ping();
  }

  private finish(info: SessionCloseInfo): void {
    if (this.closeInfo) return;
    this.closeInfo = info;
    if (this.pinger) clearInterval(this.pinger);
    for (const stream of this.streams.values()) {
      const error = new StreamAbortedError(stream.id, info.code, 'session-closed');
      stream.abortSend(error);
      if (stream.receiveState === 'open') stream.failReceive(error);
    }
    this.streams.clear();
    this.peers.clear();
    this.scheduler.close();
    this.resolveClosed(info);
    this.emit('close', info);
  }

  // ── receiving ────────────────────────────────────────────────────────────────────────────────

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.closeInfo) return;
    this.alive = true;
    if (!isBinary) {
      this.finish({ code: 1003, reason: 'a text message: every message is a binary frame', by: 'local' });
      void this.closeSocket(1003, 'a text message: every message is a binary frame');
      return;
    }
    const bytes = Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data;
    let frame: WsFrame;
    try {
      frame = decodeWsFrame(bytes);
    } catch (error) {
      if (!(error instanceof WireError)) throw error;
      return this.protocolError(`malformed frame: ${error.message}`);
    }
    switch (frame.type) {
      case 'stream':
        return this.onStream(frame.id, frame.data, frame.fin);
      case 'reset-stream':
        return this.onResetStream(frame.id, frame.code);
      case 'stop-sending':
        return this.onStopSending(frame.id, frame.code);
      case 'application-close':
        this.finish({ code: frame.code, reason: frame.reason, by: 'peer' });
        void this.closeSocket(1000, '');
        return;
    }
  }

  private isLocal(id: number): boolean {
    return isServerInitiated(id) === this.isServer;
  }

  /** True if `id` names a stream of this side that was never opened (a violation). */
  private notOpenedHere(id: number): boolean {
    return Math.floor(id / 4) >= this.nextLocal[isUnidirectional(id) ? 'uni' : 'bidi'];
  }

  /** The live stream `id`, a newly accepted peer stream, or undefined when the frame is to be dropped. */
  private streamFor(id: number, frame: string, opens: boolean): WebSocketSessionStream | undefined {
    const stream = this.streams.get(id);
    if (stream) return stream;
    if (this.isLocal(id)) {
      if (this.notOpenedHere(id)) this.protocolError(`${frame} on stream ${id}, which this side has not opened`);
      else if (frame === 'STREAM' && this.finished.has(id)) this.protocolError(`STREAM after FIN on stream ${id}`);
      return undefined;
    }
    const seen = this.seen[isUnidirectional(id) ? 'uni' : 'bidi'];
    const index = Math.floor(id / 4);
    if (seen.has(index)) {
      if (frame === 'STREAM' && this.finished.has(id)) this.protocolError(`STREAM after FIN on stream ${id}`);
      return undefined; // gone: late frames are dropped
    }
    if (!opens) return undefined;
    seen.add(index);
    if (!this.peers.hasRoom) {
      // Refused: the peer's sending half is stopped, and our half of a bidirectional stream reset.
      this.counters.streamsRefused++;
      this.control({ type: 'stop-sending', id, code: WS_CODE_STREAM_LIMIT });
      if (!isUnidirectional(id)) this.control({ type: 'reset-stream', id, code: WS_CODE_STREAM_LIMIT });
      return undefined;
    }
    const accepted = new WebSocketSessionStream(id, false, this, {});
    this.streams.set(id, accepted);
    this.counters.streamsAccepted++;
    this.peers.admit(accepted);
    return this.closeInfo ? undefined : accepted;
  }

  private onStream(id: number, data: Uint8Array, fin: boolean): void {
    if (!canReceiveOn(id, this.isServer))
      return this.protocolError(
        `STREAM on stream ${id}, a unidirectional stream of this side's: the peer may not send on it`,
      );
    this.streamFor(id, 'STREAM', true)?.receive(data, fin);
  }

  private onResetStream(id: number, code: number): void {
    if (!canReceiveOn(id, this.isServer))
      return this.protocolError(`RESET_STREAM on stream ${id}, a unidirectional stream of this side's`);
    const stream = this.streams.get(id);
    if (stream) return stream.failReceive(new StreamAbortedError(id, code, 'peer-reset'));
    if (this.isLocal(id)) {
      if (this.notOpenedHere(id)) this.protocolError(`RESET_STREAM on stream ${id}, which this side has not opened`);
      return;
    }
    // A peer stream reset before its first byte (the polyfill's writer aborted at once): it is gone.
    this.seen[isUnidirectional(id) ? 'uni' : 'bidi'].add(Math.floor(id / 4));
  }

  private onStopSending(id: number, code: number): void {
    if (!canSendOn(id, this.isServer))
      return this.protocolError(`STOP_SENDING on stream ${id}, a unidirectional stream of the peer's`);
    const stream = this.streams.get(id);
    if (!stream) {
      if (this.isLocal(id) && this.notOpenedHere(id))
        this.protocolError(`STOP_SENDING on stream ${id}, which this side has not opened`);
      return; // gone, or a peer stream not seen yet: nothing of ours to stop
    }
    if (stream.sendState === 'done') return; // FIN sent or already reset
    // RFC 9000 §3.5: STOP_SENDING is answered with RESET_STREAM (the polyfill answers the same way).
    stream.abortSend(new StreamAbortedError(id, code, 'peer-stop-sending'));
    this.control({ type: 'reset-stream', id, code });
  }

  /** Counts `n` unread bytes of `stream`; the bound passed, if one was. */
  received(stream: WebSocketSessionStream, n: number): string | undefined {
    this.unread += n;
    if (stream.unread > this.limits.maxStreamReceiveBytes)
      return `${this.limits.maxStreamReceiveBytes} bytes for the stream`;
    if (this.unread > this.limits.maxSessionReceiveBytes)
      return `${this.limits.maxSessionReceiveBytes} bytes for the session`;
    return undefined;
  }

  consumed(n: number): void {
    this.unread -= n;
  }

  /** A stream whose halves are both over leaves the table; its FIN is remembered for a while. */
  maybeRetire(stream: WebSocketSessionStream): void {
    if (stream.sendState !== 'done' || stream.receiveState === 'open' || this.streams.get(stream.id) !== stream) return;
    this.streams.delete(stream.id);
    if (!stream.local) this.peers.release();
    if (stream.receiveState === 'fin') {
      this.finished.add(stream.id);
      if (this.finished.size > REMEMBERED_FINS) this.finished.delete(this.finished.values().next().value!);
    }
  }

  // ── sending ──────────────────────────────────────────────────────────────────────────────────

  /** A frame that skips the queue (RESET_STREAM, STOP_SENDING). */
  control(frame: WsFrame): void {
    if (this.closeInfo || this.socket.readyState !== WebSocket.OPEN) return;
    this.socket.send(encodeWsFrame(frame));
  }

  enqueue(stream: WebSocketSessionStream, data: Uint8Array, fin: boolean): Promise<void> {
    if (this.closeInfo) return Promise.reject(new StreamAbortedError(stream.id, this.closeInfo.code, 'session-closed'));
    if (!this.scheduler.hasRoomFor(data.length))
      return Promise.reject(new SendQueueFullError(stream.id, this.scheduler.queuedBytes, this.limits.maxQueuedBytes));
    if (fin) stream.sendState = 'ending';
    return this.scheduler.write(stream.queue, data, fin);
  }

  /** The stream's queued bytes leave the queue (reset, stopped); its writes reject with `error`. */
  dropQueued(stream: WebSocketSessionStream, error: Error): void {
    this.scheduler.drop(stream.queue, error);
  }

  reprioritize(stream: WebSocketSessionStream, urgency: number, incremental: boolean): void {
    this.scheduler.setPriority(stream.queue, urgency, incremental);
  }
}
