/**
 * A small `fetch` over node:http / node:https (HTTP/1.1) that trusts a given CA, such as pushcast's
 * development certificate, which Node's global fetch cannot be told about per call. Used for unicast
 * discovery, key sets and repair by the multicast receiver. Bounded: a timeout for the whole exchange
 * and a body size limit.
 */
import http from 'node:http';
import https from 'node:https';

export interface NodeFetchOptions {
  /** PEM certificate(s) to trust. */
  ca?: string | Buffer;
  /** Accept any certificate (development only). */
  insecure?: boolean;
  /** Whole exchange, ms; default 10 000. */
  timeoutMs?: number;
  /** Largest body accepted; default 64 MiB. */
  maxBodyBytes?: number;
}

export type NodeFetch = (
  url: string,
  init?: { method?: string; headers?: Record<string, string> },
) => Promise<Response>;

export function createNodeFetch(o: NodeFetchOptions = {}): NodeFetch {
  const agent = new https.Agent({ ca: o.ca, rejectUnauthorized: !o.insecure, keepAlive: true, maxSockets: 8 });
  const plainAgent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const maxBody = o.maxBodyBytes ?? 64 * 1024 * 1024;
  return (url, init = {}) =>
    new Promise<Response>((resolve, reject) => {
      const target = new URL(url);
      const secure = target.protocol === 'https:';
      if (!secure && target.protocol !== 'http:') return reject(new TypeError(`${url}: only http and https`));
      const req = (secure ? https : http).request(
        target,
        { method: init.method ?? 'GET', headers: init.headers, agent: secure ? agent : plainAgent },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > maxBody) {
              req.destroy(new Error(`${url}: body larger than ${maxBody} bytes`));
              return;
            }
            chunks.push(chunk);
          });
          res.on('end', () => {
            const headers = new Headers();
            for (const [name, value] of Object.entries(res.headers)) {
              if (value === undefined) continue;
              for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
            }
            const status = res.statusCode ?? 0;
            const body =
              status === 204 || status === 304 || (init.method ?? 'GET') === 'HEAD' ? null : Buffer.concat(chunks);
            resolve(new Response(body, { status, headers }));
          });
          res.on('error', reject);
        },
      );
      req.setTimeout(o.timeoutMs ?? 10_000, () =>
        req.destroy(new Error(`${url}: no answer within ${o.timeoutMs ?? 10_000} ms`)),
      );
      req.on('error', reject);
      req.end();
    });
}
