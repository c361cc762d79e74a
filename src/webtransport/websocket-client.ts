/**
 * A Node client of the WebSocket fallback: what the `@moq/web-transport-ws` polyfill does in a
 * browser, with `ws`. The URL may be the WebTransport one (`https://…`, `http://…`), rewritten to
 * `wss://`/`ws://` as the polyfill rewrites it, or a WebSocket URL.
 */
import type { IncomingMessage } from 'node:http';
import { WebSocket } from 'ws';
import { WEBTRANSPORT_WS_PROTOCOL, WEBTRANSPORT_WS_PROTOCOL_PREFIX } from '../wire/index.js';
import { SessionRefusedError, parseRetryAfter } from './session.js';
import { DEFAULT_MAX_MESSAGE_BYTES, WebSocketSession, type WebSocketSessionLimits } from './websocket-session.js';

export interface ConnectWebSocketSessionOptions extends WebSocketSessionLimits {
  headers?: Record<string, string>;
  /** The opening handshake's bound, default 10 s. */
  timeoutMs?: number;
  /** Trusted CA certificates (PEM) for `wss:`. */
  ca?: string | Buffer | (string | Buffer)[];
  rejectUnauthorized?: boolean;
  /** Application protocols to offer, as `webtransport.<name>` after plain `webtransport`. */
  protocols?: readonly string[];
}

/** The server refused the session before the upgrade: its HTTP status and reason (the body's first line). */
/** The WebSocket URL of a WebTransport URL (https → wss, http → ws), as the polyfill computes it. */
export function webSocketUrl(url: string | URL): URL {
  const u = new URL(url);
  if (u.protocol === 'https:') u.protocol = 'wss:';
  else if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol !== 'ws:' && u.protocol !== 'wss:')
    throw new Error(`WebTransport over WebSocket needs an http(s) or ws(s) URL: ${String(url)}`);
  u.hash = '';
  return u;
}

const MAX_REFUSAL_BODY = 4096;

function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      if (size < MAX_REFUSAL_BODY) parts.push(chunk);
      size += chunk.length;
    });
    res.on('end', () => resolve(Buffer.concat(parts).subarray(0, MAX_REFUSAL_BODY).toString('utf8')));
    res.on('error', () => resolve(Buffer.concat(parts).toString('utf8')));
    res.on('close', () => resolve(Buffer.concat(parts).toString('utf8')));
  });
}

/** A client-role session on `url` once the WebSocket is open; rejects with {@link SessionRefusedError} on a refusal. */
export function connectWebSocketSession(
  url: string | URL,
  options: ConnectWebSocketSessionOptions = {},
): Promise<WebSocketSession> {
  const target = webSocketUrl(url);
  const protocols = [
    WEBTRANSPORT_WS_PROTOCOL,
    ...(options.protocols ?? []).map((p) => `${WEBTRANSPORT_WS_PROTOCOL_PREFIX}${p}`),
  ];
  const ws = new WebSocket(target, protocols, {
    headers: options.headers,
    ca: options.ca,
    rejectUnauthorized: options.rejectUnauthorized,
    maxPayload: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    perMessageDeflate: false,
    handshakeTimeout: options.timeoutMs ?? 10_000,
  });
  return new Promise<WebSocketSession>((resolve, reject) => {
    const responseHeaders: Record<string, string> = {};
    const onError = (error: Error) => reject(error);
    ws.on('error', onError);
    ws.once('upgrade', (res) => {
      for (const [name, value] of Object.entries(res.headers))
        if (value !== undefined) responseHeaders[name] = Array.isArray(value) ? value.join(', ') : value;
    });
    ws.once('unexpected-response', (req, res) => {
      void readBody(res).then((body) => {
        const retryAfter = parseRetryAfter(res.headers['retry-after']);
        reject(new SessionRefusedError(res.statusCode ?? 0, body.split('\n')[0]!.trim(), retryAfter));
        req.destroy();
      });
    });
    ws.once('open', () => {
      const selected = ws.protocol;
      const session = new WebSocketSession(ws, {
        ...options,
        role: 'client',
        path: `${target.pathname}${target.search}`,
        headers: responseHeaders,
        protocol: selected.startsWith(WEBTRANSPORT_WS_PROTOCOL_PREFIX)
          ? selected.slice(WEBTRANSPORT_WS_PROTOCOL_PREFIX.length)
          : '',
      });
      ws.off('error', onError);
      resolve(session);
    });
  });
}
