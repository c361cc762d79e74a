/**
 * A WebTransport session as pushcast's delivery modes see it, whatever carries it: WebTransport over
 * HTTP/3 (draft-ietf-webtrans-http3-02, as Chromium speaks it) or the WebSocket fallback (the wire
 * format of the `@moq/web-transport-ws` polyfill). Warp and its relays are written against this
 * interface only, so a session's transport is a detail of how it was opened.
 *
 * Stream IDs follow RFC 9000 §2.1 in both transports: bit 0 = server-initiated, bit 1 = unidirectional.
 *
 * Both transports bound the streams a peer has open at once in a session the same way (`PeerStreams`):
 * past `maxPeerStreams` a new peer stream is refused (STOP_SENDING, and RESET_STREAM for our half of a
 * bidirectional one) and never reaches the application; the session goes on.
 */
import type { EventEmitter } from 'node:events';
import { concatBytes } from '../wire/index.js';
import { parseList } from '../wire/structured-fields.js';

export type SessionTransport = 'webtransport' | 'websocket';

export interface SessionCloseInfo {
  /** The application's close code (WebTransport: 32 bits), 0 for a normal close. */
  code: number;
  reason: string;
  /**
   * Who ended the session: this side (`close()`), the peer (its close, or over HTTP/3 a clean FIN of the
   * CONNECT stream, which draft-02 §5 makes a close with code 0), or the transport (the connection, the
   * CONNECT stream or the WebSocket ended without the peer's close, or broke). Only `peer` is the peer's
   * word: code 0 from the transport is no statement about the application.
   */
  by: 'local' | 'peer' | 'transport';
}

export interface StreamOptions {
  bidirectional?: boolean;
  /** RFC 9218 urgency, 0 (first) to 7; the WebSocket fallback sends higher urgencies first too. */
  urgency?: number;
  incremental?: boolean;
}

/** Thrown by a write after the peer asked the stream to stop (STOP_SENDING) or the stream was reset. */
export class StreamAbortedError extends Error {
  constructor(
    readonly streamId: number,
    readonly code: number,
    readonly by: 'peer-stop-sending' | 'peer-reset' | 'local-reset' | 'local-stop-sending' | 'session-closed',
  ) {
    super(`stream ${streamId}: ${by} (code ${code})`);
    this.name = 'StreamAbortedError';
  }
}

/**
 * A session request the server refused, whatever the transport: its HTTP status, one-line reason and,
 * when the server sent one, its `Retry-After` in seconds.
 */
export class SessionRefusedError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(`WebTransport session refused${status ? ` (${status})` : ''}: ${reason || 'no reason given'}`);
    this.name = 'SessionRefusedError';
  }
}

/**
 * One stream of a session. Readable when bidirectional or opened by the peer; writable when
 * bidirectional or opened here. Reading is an async iteration of chunks (ends at FIN, throws on reset).
 */
export interface SessionStream extends AsyncIterable<Uint8Array> {
  readonly id: number;
  readonly bidirectional: boolean;
  /** Opened by this side. */
  readonly local: boolean;
  /** Resolves once the transport has taken the bytes (backpressure); rejects with StreamAbortedError. */
  write(data: Uint8Array): Promise<void>;
  /** Writes `data` (if any) and FIN. */
  end(data?: Uint8Array): Promise<void>;
  /** RESET_STREAM with an application code: the bytes not yet delivered are abandoned. */
  reset(code: number): void;
  /** STOP_SENDING with an application code: this side reads no more. */
  stopSending(code: number): void;
  setPriority(urgency: number, incremental?: boolean): void;
  /** Every byte until FIN, at most `limit` (throws past it). */
  readAll(limit?: number): Promise<Uint8Array>;
}

export interface SessionEvents {
  /** A stream the peer opened. */
  stream: [SessionStream];
  datagram: [Uint8Array];
  close: [SessionCloseInfo];
}

export interface SessionStats {
  transport: SessionTransport;
  /** Smoothed round-trip time, when the transport knows it. */
  rttMs?: number;
  /** Congestion window and estimated delivery rate (QUIC only). */
  cwndBytes?: number;
  deliveryRateBitsPerSecond?: number;
  /** Bytes written and not yet taken by the network (WebSocket: bufferedAmount). */
  bufferedBytes?: number;
  streamsOpened: number;
  streamsAccepted: number;
  /** Peer streams refused: past the bound of peer streams open at once. */
  streamsRefused: number;
  /** Peer streams open now (accepted, not over in both directions). */
  peerStreams: number;
  datagramsSent: number;
  datagramsReceived: number;
}

/** A WebTransport session: server side (accepted) or client side (connected). */
export interface Session extends EventEmitter<SessionEvents> {
  readonly transport: SessionTransport;
  /** The request path, with its query. */
  readonly path: string;
  /** The CONNECT (or WebSocket upgrade) request's header fields, lowercase names. */
  readonly headers: Readonly<Record<string, string>>;
  openStream(options?: StreamOptions): SessionStream;
  /** Sends an unreliable datagram; false when it was not sent (queue full, or no datagrams on this transport). */
  sendDatagram(data: Uint8Array): boolean;
  /** The largest datagram payload that fits, 0 when the transport has none. */
  readonly maxDatagramSize: number;
  close(code?: number, reason?: string): Promise<void>;
  readonly closed: Promise<SessionCloseInfo>;
  stats(): SessionStats;
}

/** Peer streams open at once in a session, by default; past it new ones are refused. */
export const DEFAULT_MAX_PEER_STREAMS = 100;

/**
 * The streams a peer opened and that are still open, up to a bound, and those among them that came
 * while nothing listened to `stream` (a client's first streams can arrive with the CONNECT or upgrade
 * response, before `await connect…()` returned): held, and handed to the first listener.
 */
export class PeerStreams<S extends SessionStream> {
  private open = 0;
  private readonly waiting: S[] = [];

  constructor(
    private readonly session: EventEmitter<SessionEvents>,
    readonly max = DEFAULT_MAX_PEER_STREAMS,
  ) {
    (session as EventEmitter).on('newListener', (event: string | symbol) => {
      if (event === 'stream' && this.waiting.length > 0) queueMicrotask(() => this.announce());
    });
  }

  /** Peer streams open now. */
  get count(): number {
    return this.open;
  }

  /** Room for one more: fewer than `max` open, and fewer than `max` waiting for a listener. */
  get hasRoom(): boolean {
    return this.open < this.max && this.waiting.length < this.max;
  }

  /** A new peer stream (the caller checked `hasRoom`): to the listeners, or held for the first one. */
  admit(stream: S): void {
    this.open++;
    if (this.session.listenerCount('stream') > 0) this.session.emit('stream', stream);
    else this.waiting.push(stream);
  }

  /** A peer stream is over in both directions. */
  release(): void {
    this.open = Math.max(0, this.open - 1);
  }

  /** The session ended: nothing is held any more. */
  clear(): void {
    this.waiting.length = 0;
    this.open = 0;
  }

  private announce(): void {
    while (this.waiting.length > 0 && this.session.listenerCount('stream') > 0)
      this.session.emit('stream', this.waiting.shift()!);
  }
}

/** A stream's bytes until FIN, at most `limit` (a RangeError past it): `SessionStream.readAll` of every transport. */
export async function readStreamToEnd(stream: SessionStream, limit = 64 * 1024 * 1024): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.length;
    if (size > limit) throw new RangeError(`stream ${stream.id}: more than ${limit} bytes`);
    parts.push(chunk);
  }
  return concatBytes(parts);
}

/** What a server knows of a session request before accepting it. */
export interface SessionRequest {
  transport: SessionTransport;
  /** Path and query, e.g. `/warp/live?token=…`. */
  path: string;
  authority: string;
  /** The page's `Origin` (RFC 6454), when sent. */
  origin?: string;
  headers: Record<string, string>;
  /** The application protocol answered (`WT-Protocol`), once the route accepted; undefined for none. */
  protocol?: string;
}

/** The request field of the client's application protocols (a structured-field list of strings), and the answer's. */
export const WT_AVAILABLE_PROTOCOLS = 'wt-available-protocols';
export const WT_PROTOCOL = 'wt-protocol';

/**
 * The protocol to answer a client's `WT-Available-Protocols` with: the first of `supported` (the
 * server's preference) that it offers; undefined when none, or when the field is malformed (the
 * session then goes on without one, as a client that offered none).
 */
export function selectWebTransportProtocol(
  offered: string | undefined,
  supported: readonly string[],
): string | undefined {
  if (offered === undefined || supported.length === 0) return undefined;
  let list: string[];
  try {
    list = parseList(offered).flatMap((m) => ('value' in m && typeof m.value === 'string' ? [m.value] : []));
  } catch {
    return undefined;
  }
  return supported.find((p) => list.includes(p));
}

/** A refusal: the HTTP status the client sees and a one-line reason (sent as the response body/reason). */
export interface SessionRefusal {
  status: number;
  reason: string;
  /** Sent as `Retry-After` (RFC 9110 §10.2.3): when to ask this server again. */
  retryAfterSeconds?: number;
}

/** A `Retry-After` of delay-seconds, or undefined (an HTTP date is not used between pushcast's ends). */
export function parseRetryAfter(value: string | undefined): number | undefined {
  if (value === undefined || !/^\s*[0-9]{1,9}\s*$/.test(value)) return undefined;
  return Number(value);
}

export interface SessionRoute {
  /**
   * Application protocols this route speaks, preferred first: a WebTransport client's offer
   * (`WT-Available-Protocols`) is answered with the first of these it lists (`WT-Protocol`).
   */
  readonly protocols?: readonly string[];
  /** Undefined accepts; a refusal answers with its status. */
  authorize?(request: SessionRequest): SessionRefusal | undefined | Promise<SessionRefusal | undefined>;
  /** An accepted session. */
  session(session: Session, request: SessionRequest): void;
}

/**
 * Path-based routing of session requests, shared by both transports: the longest matching prefix
 * (segment-wise: `/warp` matches `/warp` and `/warp/x`, not `/warpx`) wins.
 */
export class SessionRouter {
  private readonly routes = new Map<string, SessionRoute>();

  route(prefix: string, route: SessionRoute): this {
    if (!prefix.startsWith('/')) throw new Error(`a session route is a path: ${prefix}`);
    this.routes.set(prefix.replace(/\/+$/, '') || '/', route);
    return this;
  }

  match(path: string): SessionRoute | undefined {
    const pathname = path.split('?')[0]!;
    let best: [string, SessionRoute] | undefined;
    for (const [prefix, route] of this.routes) {
      const hit = prefix === '/' || pathname === prefix || pathname.startsWith(`${prefix}/`);
      if (hit && (!best || prefix.length > best[0].length)) best = [prefix, route];
    }
    return best?.[1];
  }

  /** The route that accepts `request`, or the refusal (404 when no route matches). */
  async decide(request: SessionRequest): Promise<{ route: SessionRoute } | { refusal: SessionRefusal }> {
    const route = this.match(request.path);
    if (!route)
      return { refusal: { status: 404, reason: `no WebTransport endpoint at ${request.path.split('?')[0]}` } };
    try {
      const refusal = await route.authorize?.(request);
      return refusal ? { refusal } : { route };
    } catch (error) {
      return {
        refusal: { status: 500, reason: `session refused: ${error instanceof Error ? error.message : String(error)}` },
      };
    }
  }
}
