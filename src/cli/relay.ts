/**
 * `pushcast relay --upstream <URL>`: a Warp relay as a process of its own (draft-lcurley-warp-00 §2.3,
 * §4.5). It subscribes once to the upstream broadcast (an origin's or another relay's
 * `https://host:port/warp/<broadcast>?token=…`) and serves it again:
 *
 * - UDP <port>: HTTP/3 (QUIC) with WebTransport sessions at `/warp/<broadcast>`, plus `/metrics` and
 *   `/.well-known/pushcast/webtransport.json` as plain HTTP/3 requests;
 * - TCP <port>: HTTPS with `/metrics` (Prometheus), `/.well-known/pushcast/webtransport.json` (the port
 *   and the certificate hashes a page passes as `serverCertificateHashes`, the origin's shape), and the
 *   WebSocket fallback of WebTransport for browsers without it.
 */
import https from 'node:https';
import type http from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { H3_ALPN } from '../http3/index.js';
import { WEBTRANSPORT_INFO_PATH, certificateHashes, developmentCertificate, loadCertificate } from '../origin/index.js';
import { QuicEndpoint } from '../quic/index.js';
import { WARP_PATH, WarpRelay, type WarpOrderPolicy } from '../warp/index.js';
import { SessionRouter, serveHttp3Sessions } from '../webtransport/index.js';
import { WebSocketSessionServer } from '../webtransport/websocket-server.js';

export interface RelayCommandOptions {
  upstream: string;
  port: number;
  host: string;
  stateDir: string;
  tlsCert?: string;
  tlsKey?: string;
  /** PEM file to trust for the upstream. */
  ca?: string;
  insecure: boolean;
  token?: string[];
  reorder?: WarpOrderPolicy;
  maxSubscribers: number;
}

function log(line: string): void {
  console.error(`${new Date().toISOString().slice(11, 19)} ${line}`);
}

/** The subset of a response both node:https and the HTTP/3 server answer with. */
interface Reply {
  writeHead(status: number, headers: Record<string, string>): { end(body?: string): unknown };
}

export async function relayCommand(o: RelayCommandOptions): Promise<void> {
  if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) throw new Error('--tls-cert and --tls-key go together');
  if (o.ca !== undefined && o.insecure) throw new Error('--ca and --insecure exclude each other');
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const relay = new WarpRelay({
    upstream: o.upstream,
    ca: o.ca === undefined ? undefined : readFileSync(o.ca, 'utf8'),
    verifyPeer: o.insecure ? false : undefined,
    tokens: o.token,
    reorder: o.reorder,
    maxSubscribers: Math.floor(o.maxSubscribers),
    registry,
    log,
  });
  const certificate =
    o.tlsCert && o.tlsKey ? loadCertificate(o.tlsCert, o.tlsKey) : developmentCertificate(join(o.stateDir, 'tls'));
  const router = new SessionRouter().route(WARP_PATH, relay);
  let info = '';

  const answer = (url: string | undefined, res: Reply) => {
    const path = (url ?? '/').split('?')[0];
    if (path === '/metrics') {
      void registry
        .metrics()
        .then((text) =>
          res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' }).end(text),
        );
      return;
    }
    if (path === WEBTRANSPORT_INFO_PATH) {
      res
        .writeHead(200, {
          'content-type': 'application/json',
          'cache-control': 'no-store',
          'access-control-allow-origin': '*',
        })
        .end(info);
      return;
    }
    res
      .writeHead(404, { 'content-type': 'text/plain' })
      .end(
        `this relay serves Warp at ${WARP_PATH}/${relay.broadcast} (WebTransport), /metrics and ${WEBTRANSPORT_INFO_PATH}\n`,
      );
  };

  // TCP: HTTPS (metrics, certificate hashes) and the WebSocket fallback on the same port number.
  const websocket = new WebSocketSessionServer(router, { maxSessions: Math.floor(o.maxSubscribers), registry, log });
  const server = https.createServer(
    { key: certificate.key, cert: certificate.cert },
    (req: http.IncomingMessage, res: http.ServerResponse) => answer(req.url, res),
  );
  server.on('upgrade', (req, socket, head) => {
    if (!websocket.handleUpgrade(req, socket, head))
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as { port: number }).port;
  // UDP: HTTP/3 and WebTransport. "Any address" includes IPv6 where the host has it (browsers try ::1 for localhost).
  const quicOptions = { alpn: [H3_ALPN], key: certificate.key, cert: certificate.cert, port };
  const quic =
    o.host === '0.0.0.0'
      ? await QuicEndpoint.listen({ ...quicOptions, host: '::' }).catch(() =>
          QuicEndpoint.listen({ ...quicOptions, host: o.host }),
        )
      : await QuicEndpoint.listen({ ...quicOptions, host: o.host });
  quic.on('connection', (conn) => serveHttp3Sessions(conn, { router, onRequest: (req, res) => answer(req.url, res) }));
  info = JSON.stringify({ port, serverCertificateHashes: certificateHashes(certificate) });

  relay.start();
  const shown = o.host === '0.0.0.0' || o.host === '::' ? 'localhost' : o.host.includes(':') ? `[${o.host}]` : o.host;
  const upstream = new URL(o.upstream);
  log(
    `relay: upstream ${upstream.origin}${upstream.pathname}${o.reorder ? `, delivery order rewritten to ${o.reorder}` : ''}${o.token?.length ? `, ${o.token.length} token(s) required` : ''}`,
  );
  console.log(`relay: https://${shown}:${port}${WARP_PATH}/${relay.broadcast}`);
  console.log(`metrics: https://${shown}:${port}/metrics`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping`);
    await relay.close();
    await websocket.close();
    server.closeAllConnections();
    await Promise.all([new Promise<void>((resolve) => server.close(() => resolve())), quic.close()]);
    log('stopped');
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
}
