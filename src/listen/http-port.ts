import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import http2, { type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Certificate } from './certificate.js';

export type HttpRequest = IncomingMessage | Http2ServerRequest;
export type HttpResponse = ServerResponse | Http2ServerResponse;
/** A request handler for node:http and node:http2 (compatibility API) alike. */
export type RequestHandler = (req: HttpRequest, res: HttpResponse) => void;
/** An HTTP/1.1 upgrade (RFC 9110 §7.8): true when taken; one not taken is answered 404 and closed. */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean;

/** How long a connection may take over what the client owes; past each, the server closes it. */
export interface HttpTimeouts {
  /**
   * Receiving a request's header section, from its first byte (or from the connection's start):
   * then 408 and close (node's headersTimeout). A browser sends its headers in one packet.
   */
  headersMs: number;
  /**
   * Receiving the whole request, body included (node's requestTimeout). It ends when the request
   * does: a response that streams a live segment for longer is not bounded by it.
   */
  requestMs: number;
  /**
   * A connection with nothing in progress: HTTP/1.1 between requests (keepAliveTimeout), an HTTP/2
   * session with no frame either way. Longer than a request held for a segment that has yet to start.
   */
  idleMs: number;
  /** The TLS handshake (tls.Server handshakeTimeout). */
  handshakeMs: number;
}

export const HTTP_TIMEOUTS: Readonly<HttpTimeouts> = {
  headersMs: 10_000,
  requestMs: 30_000,
  idleMs: 30_000,
  handshakeMs: 10_000,
};

/** Node checks the header and request deadlines on a timer: every second, or more often for short deadlines. */
function deadlineCheckMs(t: HttpTimeouts): number {
  return Math.max(10, Math.min(1000, Math.floor(t.headersMs / 4)));
}

export interface HttpPortOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** HTTPS with HTTP/2 and HTTP/1.1 (ALPN); absent = cleartext HTTP/1.1. */
  certificate?: Certificate;
  onRequest: RequestHandler;
  onUpgrade?: UpgradeHandler;
  /** Connections open at once; more are closed as they arrive (node's server.maxConnections). Default 10000. */
  maxConnections?: number;
  timeouts?: Partial<HttpTimeouts>;
}

/**
 * One TCP port of a pushcast server: cleartext HTTP/1.1, or HTTPS with HTTP/2 and HTTP/1.1. Every
 * server pushcast runs is made here, so that each has the same bounds: the timeouts above, the
 * connection cap, and the refusal of request lines node's parser lets through (`malformedHttp1`).
 */
export class HttpPort {
  readonly server: http.Server | http2.Http2SecureServer;
  private readonly sockets = new Set<Socket>();
  private readonly sessions = new Set<Http2Session>();
  private listeningPort = 0;

  private constructor(o: HttpPortOptions) {
    const t: HttpTimeouts = { ...HTTP_TIMEOUTS, ...o.timeouts };
    const onRequest = (req: HttpRequest, res: HttpResponse) => {
      const why = malformedHttp1(req);
      if (why === undefined) return o.onRequest(req, res);
      res.writeHead(why.status, {
        'Content-Type': 'text/plain',
        'Content-Length': String(Buffer.byteLength(why.reason)),
        Connection: 'close',
      });
      res.end(why.reason);
    };
    if (o.certificate) {
      const server = http2.createSecureServer(
        {
          key: o.certificate.key,
          cert: o.certificate.cert,
          allowHTTP1: true,
          settings: { enablePush: false },
          handshakeTimeout: t.handshakeMs,
        },
        onRequest,
      );
      // The HTTP/1.1 path of node's HTTP/2 server reads these from the server, as node:http does; its
      // defaults are 60 s for headers, 300 s for a request, and no keep-alive limit at all.
      Object.assign(server, {
        headersTimeout: t.headersMs,
        requestTimeout: t.requestMs,
        keepAliveTimeout: t.idleMs,
        connectionsCheckingInterval: deadlineCheckMs(t),
      });
      server.on('session', (session) => {
        this.sessions.add(session);
        session.on('close', () => this.sessions.delete(session));
        // No frame either way for idleMs: a session that asks for nothing (or stalls mid-request) goes.
        session.setTimeout(t.idleMs, () => {
          session.close();
          setTimeout(() => session.destroy(), 1000).unref();
        });
      });
      this.server = server;
    } else {
      this.server = http.createServer(
        {
          headersTimeout: t.headersMs,
          requestTimeout: t.requestMs,
          keepAliveTimeout: t.idleMs,
          connectionsCheckingInterval: deadlineCheckMs(t),
        },
        onRequest,
      );
    }
    this.server.maxConnections = o.maxConnections ?? 10_000;
    // The TCP socket (under TLS, too): one that never finishes its handshake is tracked as well.
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      // Node takes its own 'error' listener off an upgraded socket: without one, a client that resets
      // the connection while a refusal is written (or before a handler takes it) would throw ECONNRESET
      // as an unhandled 'error' and end the process.
      socket.on('error', () => socket.destroy());
      const why = malformedHttp1(req);
      if (why === undefined && o.onUpgrade?.(req, socket, head)) return;
      socket.end(
        why === undefined
          ? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'
          : `HTTP/1.1 ${why.status} ${http.STATUS_CODES[why.status]}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
      );
    });
  }

  /** Listens on `o.host:o.port`; resolves once it does. */
  static async listen(o: HttpPortOptions): Promise<HttpPort> {
    const port = new HttpPort(o);
    const server = port.server;
    port.listeningPort = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port, o.host, () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
    return port;
  }

  /** The TCP port it listens on. */
  get port(): number {
    return this.listeningPort;
  }

  /**
   * Stops accepting, ends HTTP/2 sessions (GOAWAY) and idle HTTP/1.1 connections, and destroys what is
   * still open after `graceMs`.
   */
  async close(graceMs = 2000): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const session of this.sessions) session.close();
    (this.server as http.Server).closeIdleConnections?.();
    const grace = setTimeout(() => {
      for (const socket of this.sockets) socket.destroy();
    }, graceMs);
    await closed;
    clearTimeout(grace);
  }
}

/**
 * What node's HTTP/1 parser accepts and pushcast refuses (RFC 9112 §2.3, §3, §3.2), or undefined:
 * - a request line without a version (`GET /`, HTTP/0.9): llhttp reads it as version 0.9 with no
 *   header section, and node's check for Host covers HTTP/1.1 only, so it would reach the handler;
 * - any version but 1.0 and 1.1 in HTTP/1 framing: `HTTP/2.0` there would be taken for HTTP/2;
 * - HTTP/1.1 without Host: node:http refuses it, but not the HTTP/1.1 path of node's HTTP/2 server.
 * HTTP/2 requests (node's Http2ServerRequest) are not HTTP/1 messages and pass.
 */
export function malformedHttp1(req: HttpRequest): { status: number; reason: string } | undefined {
  if (!(req instanceof http.IncomingMessage)) return undefined;
  if (req.httpVersionMajor === 0)
    return { status: 400, reason: 'a request line needs an HTTP version (HTTP/1.0 or HTTP/1.1)\n' };
  if (req.httpVersionMajor !== 1) return { status: 505, reason: 'HTTP/1.0 or HTTP/1.1 only in this framing\n' };
  if (req.httpVersionMinor === 1 && req.headers.host === undefined)
    return { status: 400, reason: 'an HTTP/1.1 request needs a Host header\n' };
  return undefined;
}
