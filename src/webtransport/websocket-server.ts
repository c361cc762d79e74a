/**
 * The server side of the WebSocket fallback: HTTP/1.1 upgrades (RFC 6455 §4) that offer the
 * `webtransport` subprotocol become {@link WebSocketSession}s, routed by the same {@link SessionRouter}
 * as WebTransport over HTTP/3, so a route sees one kind of request whichever transport the browser had.
 *
 *   GET /warp/live?token=… (Upgrade: websocket, Sec-WebSocket-Protocol: webtransport, webtransport.moq)
 *
 * - An upgrade that offers no `webtransport` subprotocol is not taken (`handleUpgrade` returns false:
 *   another handler, e.g. the multicast gateway, may want it).
 * - The router decides before the upgrade; a refusal is a plain HTTP response with its status and the
 *   one-line reason as body, which a Node client reads (`connectWebSocketSession` rejects with both);
 *   a browser's WebSocket only sees the connection fail.
 * - Subprotocol: the first `webtransport.<app>` the client offers whose `<app>` is in `protocols`, else
 *   plain `webtransport` (the polyfill always offers it; its `protocol` is then '').
 * - At most `maxSessions` sessions, counting upgrades being decided; 503 past it.
 */
import type { IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { WEBTRANSPORT_WS_PROTOCOL, WEBTRANSPORT_WS_PROTOCOL_PREFIX } from '../wire/index.js';
import type { SessionRequest, SessionRouter } from './session.js';
import { DEFAULT_MAX_MESSAGE_BYTES, WebSocketSession, type WebSocketSessionLimits } from './websocket-session.js';

export interface WebSocketSessionServerOptions extends WebSocketSessionLimits {
  /** Sessions at once (and upgrades being decided); 503 past it. Default 1000. */
  maxSessions?: number;
  /** Application protocols served, negotiated as `webtransport.<name>`. */
  protocols?: readonly string[];
  log?: (line: string) => void;
}

/** The server's counts; accepted and refused cover its whole life. */
export interface WebSocketSessionServerStats {
  /** Sessions now. */
  sessions: number;
  sessionsAccepted: number;
  sessionsRefused: number;
  /** Refusals by HTTP status (as a string: `"503"`). */
  sessionsRefusedByStatus: Record<string, number>;
  /** Over every session, the closed ones included: streams opened by each side, peer streams refused. */
  streamsOpened: number;
  streamsAccepted: number;
  streamsRefused: number;
}

type StreamTotals = Pick<WebSocketSessionServerStats, 'streamsOpened' | 'streamsAccepted' | 'streamsRefused'>;

/** The subprotocols listed in a `Sec-WebSocket-Protocol` field (RFC 6455 §11.3.4: comma-separated tokens). */
export function offeredProtocols(field: string | string[] | undefined): string[] {
  const value = Array.isArray(field) ? field.join(',') : (field ?? '');
  return value
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
}

/** The subprotocol to select among `offered`, or undefined when none is WebTransport's. */
export function selectProtocol(offered: Iterable<string>, supported: readonly string[]): string | undefined {
  let plain = false;
  for (const p of offered) {
    if (
      p.startsWith(WEBTRANSPORT_WS_PROTOCOL_PREFIX) &&
      supported.includes(p.slice(WEBTRANSPORT_WS_PROTOCOL_PREFIX.length))
    )
      return p;
    if (p === WEBTRANSPORT_WS_PROTOCOL) plain = true;
  }
  return plain ? WEBTRANSPORT_WS_PROTOCOL : undefined;
}

function headersOf(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

function addStreams(totals: StreamTotals, session: WebSocketSession): void {
  const s = session.stats();
  totals.streamsOpened += s.streamsOpened;
  totals.streamsAccepted += s.streamsAccepted;
  totals.streamsRefused += s.streamsRefused;
}

export class WebSocketSessionServer {
  private readonly wss: WebSocketServer;
  private readonly sessions = new Set<WebSocketSession>();
  private deciding = 0;
  private closing = false;
  private readonly maxSessions: number;
  private readonly protocols: readonly string[];
  private readonly counters = { sessionsAccepted: 0, sessionsRefused: 0 };
  private readonly refusedByStatus: Record<string, number> = {};
  /** The stream counts of the sessions that closed. */
  private readonly retired: StreamTotals = { streamsOpened: 0, streamsAccepted: 0, streamsRefused: 0 };

  constructor(
    private readonly router: SessionRouter,
    private readonly o: WebSocketSessionServerOptions = {},
  ) {
    this.maxSessions = o.maxSessions ?? 1000;
    this.protocols = o.protocols ?? [];
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: o.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      perMessageDeflate: false, // media does not compress, and deflate would hide bufferedAmount
      handleProtocols: (offered) => selectProtocol(offered, this.protocols) ?? false,
    });
  }

  stats(): WebSocketSessionServerStats {
    const totals = { ...this.retired };
    for (const session of this.sessions) addStreams(totals, session);
    return {
      sessions: this.sessions.size,
      ...this.counters,
      sessionsRefusedByStatus: { ...this.refusedByStatus },
      ...totals,
    };
  }

  /** Sessions open now. */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Takes the upgrade if it offers the `webtransport` subprotocol (true); false leaves it to the caller. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const protocol = selectProtocol(offeredProtocols(req.headers['sec-websocket-protocol']), this.protocols);
    if (!protocol) return false;
    if (this.closing) return this.refuse(socket, 503, 'the server is shutting down');
    if (this.sessions.size + this.deciding >= this.maxSessions)
      return this.refuse(socket, 503, `at most ${this.maxSessions} WebSocket sessions`);
    const headers = headersOf(req);
    const request: SessionRequest = {
      transport: 'websocket',
      path: req.url ?? '/',
      authority: headers.host ?? '',
      origin: headers.origin,
      headers,
    };
    const onError = () => socket.destroy();
    socket.on('error', onError);
    this.deciding++;
    void this.router.decide(request).then((decision) => {
      this.deciding--;
      socket.off('error', onError);
      if (socket.destroyed) return;
      if ('refusal' in decision)
        return void this.refuse(
          socket,
          decision.refusal.status,
          decision.refusal.reason,
          decision.refusal.retryAfterSeconds,
        );
      if (this.closing) return void this.refuse(socket, 503, 'the server is shutting down');
      const application = protocol.startsWith(WEBTRANSPORT_WS_PROTOCOL_PREFIX)
        ? protocol.slice(WEBTRANSPORT_WS_PROTOCOL_PREFIX.length)
        : '';
      if (application) request.protocol = application;
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        const session = new WebSocketSession(ws, {
          ...this.o,
          role: 'server',
          path: request.path,
          headers,
          protocol: application,
        });
        this.sessions.add(session);
        this.counters.sessionsAccepted++;
        session.once('close', () => {
          if (this.sessions.delete(session)) addStreams(this.retired, session);
        });
        try {
          decision.route.session(session, request);
        } catch (error) {
          this.o.log?.(`websocket session ${request.path}: ${error instanceof Error ? error.message : String(error)}`);
          void session.close(0, 'the server failed to start the session');
        }
      });
    });
    return true;
  }

  /** A refusal before the upgrade: the status and a one-line reason as a plain-text body; a 503 says when to retry (5 s unless told). */
  private refuse(socket: Duplex, status: number, reason: string, retryAfterSeconds?: number): true {
    this.counters.sessionsRefused++;
    this.refusedByStatus[status] = (this.refusedByStatus[status] ?? 0) + 1;
    const body = `${reason.replace(/[\r\n]+/g, ' ')}\n`;
    const after = retryAfterSeconds ?? (status === 503 ? 5 : undefined);
    const retry = after === undefined ? '' : `Retry-After: ${after}\r\n`;
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Refused'}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${retry}Connection: close\r\n\r\n${body}`,
    );
    return true;
  }

  /** Closes every session (APPLICATION_CLOSE `code`) and refuses new ones. */
  async close(code = 0, reason = 'the server is shutting down'): Promise<void> {
    this.closing = true;
    await Promise.all([...this.sessions].map((s) => s.close(code, reason)));
    this.wss.close();
  }
}
