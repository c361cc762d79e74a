/**
 * `NodeFetch`es over HTTP/2 and HTTP/3 for the soak's DASH viewers, so that one `DashLiveFollower` follows
 * the stream over each protocol: each keeps one connection, as a player does, and opens a new one when
 * it is gone (counted in `reconnects`). Every exchange is bounded in time and body size.
 */
import http2 from 'node:http2';
import type { NodeFetch } from '../../src/client/index.js';
import { H3_ALPN, Http3Client } from '../../src/http3/index.js';
import { QuicEndpoint, type QuicConnection } from '../../src/quic/index.js';

export interface CountingFetch {
  fetch: NodeFetch;
  /** Connections opened after the first. */
  reconnects: number;
  close(): Promise<void>;
}

const TIMEOUT_MS = 10_000;
const MAX_BODY = 64 * 1024 * 1024;

function withTimeout<T>(promise: Promise<T>, what: string, onTimeout: () => void): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        onTimeout();
        reject(new Error(`${what}: no answer within ${TIMEOUT_MS} ms`));
      }, TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}

function bodyFor(status: number, bytes: Uint8Array): Uint8Array<ArrayBuffer> | null {
  return status === 204 || status === 304 ? null : new Uint8Array(bytes);
}

/** HTTP/2 over TLS to `origin` (https://127.0.0.1:<port>), the certificate checked against `ca` for `servername`. */
export function http2Fetch(origin: string, ca: string, servername: string): CountingFetch {
  let session: http2.ClientHttp2Session | undefined;
  const state: CountingFetch = {
    reconnects: 0,
    fetch: (url, init = {}) => {
      if (!session || session.closed || session.destroyed) {
        if (session) state.reconnects++;
        session = http2.connect(origin, { ca, servername });
        session.on('error', () => {}); // surfaced by the requests that fail
      }
      const current = session;
      const target = new URL(url);
      const exchange = new Promise<Response>((resolve, reject) => {
        const stream = current.request({
          ':method': init.method ?? 'GET',
          ':path': `${target.pathname}${target.search}`,
          ...init.headers,
        });
        let status = 0;
        const headers = new Headers();
        const parts: Buffer[] = [];
        let size = 0;
        stream.on('response', (h) => {
          status = Number(h[':status']);
          for (const [name, value] of Object.entries(h))
            if (!name.startsWith(':') && value !== undefined) headers.set(name, String(value));
        });
        stream.on('data', (d: Buffer) => {
          size += d.length;
          if (size > MAX_BODY) stream.close(http2.constants.NGHTTP2_CANCEL);
          else parts.push(d);
        });
        stream.on('end', () =>
          status >= 200
            ? resolve(new Response(bodyFor(status, Buffer.concat(parts)), { status, headers }))
            : reject(new Error(`${target.pathname}: stream ended without a response`)),
        );
        stream.on('error', reject);
        stream.on('close', () => reject(new Error(`${target.pathname}: stream closed (code ${stream.rstCode})`)));
        stream.end();
      });
      return withTimeout(exchange, target.pathname, () => current.destroy());
    },
    close: async () => {
      session?.destroy();
    },
  };
  return state;
}

/** HTTP/3 on pushcast's own QUIC endpoint to 127.0.0.1:`port`, the certificate checked against `ca` for `servername`. */
export function http3Fetch(port: number, ca: string, servername: string): CountingFetch {
  let connecting: Promise<{ conn: QuicConnection; client: Http3Client }> | undefined;
  let opened = 0;
  const connect = () => {
    if (opened++ > 0) state.reconnects++;
    const attempt = QuicEndpoint.connect({ alpn: [H3_ALPN], host: '127.0.0.1', port, serverName: servername, ca }).then(
      (conn) => {
        conn.once('close', () => {
          if (connecting === attempt) connecting = undefined;
        });
        return { conn, client: new Http3Client(conn, `${servername}:${port}`) };
      },
    );
    attempt.catch(() => {
      if (connecting === attempt) connecting = undefined;
    });
    connecting = attempt;
    return attempt;
  };
  const state: CountingFetch = {
    reconnects: 0,
    fetch: async (url, init = {}) => {
      const { conn, client } = await (connecting ?? connect());
      const target = new URL(url);
      const reply = await withTimeout(
        client.request(`${target.pathname}${target.search}`, {
          method: init.method,
          headers: init.headers,
          maxBodyBytes: MAX_BODY,
        }),
        target.pathname,
        () => void conn.close(0, 'request timed out'),
      );
      const headers = new Headers();
      for (const f of reply.headers) headers.append(f.name, f.value);
      return new Response(bodyFor(reply.status, reply.body), { status: reply.status, headers });
    },
    close: async () => {
      const c = await connecting?.catch(() => undefined);
      await c?.conn.close(0, 'viewer left');
    },
  };
  return state;
}
