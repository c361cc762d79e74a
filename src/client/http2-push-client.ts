import http2, {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from 'node:http2';
import { RESOURCE_PUSH, ResourcePushEvent } from '../push/index.js';

export interface Http2PushClientOptions {
  /** PEM certificate(s) to trust, e.g. pushcast's development certificate. */
  ca?: string | Buffer;
  /** Accept any certificate (development only). */
  insecure?: boolean;
  /** Pushed streams the server may have promised and not yet completed (SETTINGS / reserved streams). */
  maxReservedPushes?: number;
  /** Largest pushed body accepted; a larger push is reset and its response rejected. */
  maxPushBytes?: number;
}

/** A response to a request made by the client: status, headers and the body as it streams. */
export interface Http2Reply {
  status: number;
  headers: IncomingHttpHeaders;
  stream: ClientHttp2Stream;
}

const HOP_BY_HOP = /^:/;

/**
 * An HTTP/2 client that turns every PUSH_PROMISE into a `ResourcePushEvent` (WHP 336 §4.4): `request` is
 * the promised request, `response` resolves when the pushed response is complete. Pushes can be cancelled
 * (RST_STREAM CANCEL, RFC 9113 §8.4.2) through `cancel(request)`.
 */
export class Http2PushClient extends EventTarget {
  readonly session: ClientHttp2Session;
  private readonly streams = new WeakMap<Request, ClientHttp2Stream>();
  private readonly maxPushBytes: number;
  /** Pushes received, and pushes whose response failed (reset by either side, too large, connection lost). */
  readonly counts = { pushes: 0, failed: 0 };

  constructor(
    readonly origin: string,
    options: Http2PushClientOptions = {},
  ) {
    super();
    this.maxPushBytes = options.maxPushBytes ?? 64 << 20;
    this.session = http2.connect(origin, {
      ca: options.ca,
      rejectUnauthorized: !options.insecure,
      maxReservedRemoteStreams: options.maxReservedPushes ?? 64,
      settings: { enablePush: true },
    });
    this.session.on('error', () => {}); // surfaced through the requests and pushes that fail
    this.session.on('stream', (stream, promised) => this.onPush(stream, promised));
  }

  private onPush(stream: ClientHttp2Stream, promised: IncomingHttpHeaders): void {
    this.counts.pushes++;
    const url = new URL(String(promised[':path']), `${promised[':scheme'] ?? 'https'}://${promised[':authority']}`);
    const request = new Request(url, { method: String(promised[':method'] ?? 'GET'), headers: plainHeaders(promised) });
    this.streams.set(request, stream);
    const response = new Promise<Response>((resolve, reject) => {
      let status = 0;
      let headers: Headers | undefined;
      const parts: Buffer[] = [];
      let size = 0;
      stream.on('push', (h: IncomingHttpHeaders) => {
        status = Number(h[':status']);
        headers = new Headers(plainHeaders(h));
      });
      stream.on('data', (d: Buffer) => {
        size += d.byteLength;
        if (size > this.maxPushBytes) {
          stream.close(http2.constants.NGHTTP2_CANCEL);
          reject(new Error(`pushed ${url.pathname} exceeds ${this.maxPushBytes} bytes; reset`));
          return;
        }
        parts.push(d);
      });
      let ended = false;
      stream.on('end', () => (ended = true));
      // Settle on 'close', when the stream's fate is known: a reset stream may still have emitted 'end'.
      stream.on('close', () => {
        const clean = ended && (stream.rstCode === undefined || stream.rstCode === http2.constants.NGHTTP2_NO_ERROR);
        if (!clean) return reject(new Error(`push of ${url.pathname} was reset (code ${stream.rstCode})`));
        if (!headers) return reject(new Error(`push of ${url.pathname} ended without a response`));
        resolve(new Response(status === 204 || status === 304 ? null : Buffer.concat(parts), { status, headers }));
      });
      stream.on('error', (err) => reject(err));
    });
    response.catch(() => this.counts.failed++);
    this.dispatchEvent(new ResourcePushEvent(RESOURCE_PUSH, { request, response }));
  }

  /** Cancels a push not yet complete: RST_STREAM with CANCEL; its response rejects. */
  cancel(request: Request): void {
    const stream = this.streams.get(request);
    if (stream && !stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
  }

  /** A GET (or other) request on this connection; resolves once the response headers arrived. */
  request(path: string, headers: OutgoingHttpHeaders = {}): Promise<Http2Reply> {
    return new Promise((resolve, reject) => {
      const stream = this.session.request({ ':path': path, ...headers });
      stream.once('response', (h) => resolve({ status: Number(h[':status']), headers: h, stream }));
      stream.once('error', reject);
      stream.end();
    });
  }

  /** A whole response body. */
  async get(
    path: string,
    headers: OutgoingHttpHeaders = {},
  ): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
    const reply = await this.request(path, headers);
    const parts: Buffer[] = [];
    for await (const d of reply.stream) parts.push(d as Buffer);
    return { status: reply.status, headers: reply.headers, body: Buffer.concat(parts) };
  }

  /** Closes the connection: open streams get `graceMs` to finish, then the session is destroyed. */
  close(graceMs = 2000): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.session.destroy(), graceMs);
      this.session.close(() => {
        clearTimeout(timer);
        resolve();
      });
      if (this.session.destroyed) resolve();
    });
  }
}

function plainHeaders(h: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (HOP_BY_HOP.test(k) || v === undefined) continue;
    out[k] = Array.isArray(v) ? v.join(', ') : String(v);
  }
  return out;
}
