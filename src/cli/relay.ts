/**
 * `pushcast relay --upstream <URL>`: a Warp relay as a process of its own (draft-lcurley-warp-00 §2.3,
 * §4.5). It subscribes once to the upstream broadcast (an origin's or another relay's
 * `https://host:port/warp/<broadcast>?token=…`) and serves it again:
 *
 * - UDP <port>: HTTP/3 (QUIC) with WebTransport sessions at `/warp/<broadcast>`, plus `/metrics` and
 *   `/.well-known/pushcast/webtransport.json` as plain HTTP/3 requests;
 * - TCP <port>: HTTPS with `/metrics` (Prometheus), `/.well-known/pushcast/webtransport.json` (the port
 *   and the certificate hashes a page passes as `serverCertificateHashes`, the origin's shape), and the
 *   WebSocket fallback of WebTransport for browsers without it;
 * - with `--admin-token`, `POST /admin/drain` on either (./drain.ts): the operator's drain, which SIGTERM
 *   also begins when `--successor` is given (a second SIGTERM, or SIGINT, stops at once).
 *
 * When the upstream ends the broadcast (close code 0, §4.7) the relay tells its viewers the same way and
 * exits (status 0); a lost upstream connection, or any other close, is reconnected.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SecurePort, developmentCertificate, loadCertificate, urlHost } from '../listen/index.js';
import { METRICS_PATH, TIME_PATH, WEBTRANSPORT_INFO_PATH } from '../media/index.js';
import {
  PrometheusMetrics,
  registerMoqMetrics,
  registerWarpRelayMetrics,
  registerWebSocketSessionMetrics,
} from '../metrics/index.js';
import { MOQ_PATH, MoqServer } from '../moq/index.js';
import { WARP_PATH, WarpRelay, type WarpOrderPolicy } from '../warp/index.js';
import { SessionRouter } from '../webtransport/index.js';
import { WebSocketSessionServer } from '../webtransport/websocket-server.js';
import { OperatorDrain, type AdminRequest } from './drain.js';

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
  /** Delivery orders a viewer may ask for (?order=); default every one. */
  warpOrdersAllowed?: WarpOrderPolicy[];
  /** The largest latency target (?latency=, seconds) a session's resource limit follows. */
  warpMaxLatency?: number;
  maxSubscribers: number;
  /** Where a drain sends the viewers (GOAWAY): SIGTERM drains when it is set. */
  successor?: string;
  /** The bearer token of `POST /admin/drain`; without it, no admin endpoint. */
  adminToken?: string;
  /** A drain's bound, seconds. */
  drainTimeout: number;
  /** MoQ (moq-lite, docs/moq.md) at /moq: the relayed broadcast for `<moq-watch>`. */
  moq: boolean;
  /** The WebTransport protocols MoQ answers, preferred first. */
  moqProtocols?: string[];
}

function log(line: string): void {
  console.error(`${new Date().toISOString().slice(11, 19)} ${line}`);
}

/** The subset of a response node's HTTP/1.1 and HTTP/2 servers and the HTTP/3 server all answer with. */
interface Reply {
  writeHead(status: number, headers: Record<string, string>): { end(body: string): unknown };
}

export async function relayCommand(o: RelayCommandOptions): Promise<void> {
  if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) throw new Error('--tls-cert and --tls-key go together');
  if (o.ca !== undefined && o.insecure) throw new Error('--ca and --insecure exclude each other');
  const metrics = new PrometheusMetrics({ processMetricsPrefix: '' });
  const relay = new WarpRelay({
    upstream: o.upstream,
    ca: o.ca === undefined ? undefined : readFileSync(o.ca, 'utf8'),
    verifyPeer: o.insecure ? false : undefined,
    tokens: o.token,
    reorder: o.reorder,
    ordersAllowed: o.warpOrdersAllowed,
    maxLatencyMs: o.warpMaxLatency === undefined ? undefined : o.warpMaxLatency * 1000,
    maxSessions: Math.floor(o.maxSubscribers),
    log,
  });
  registerWarpRelayMetrics(metrics.registry, () => relay.stats());
  const certificate =
    o.tlsCert && o.tlsKey ? loadCertificate(o.tlsCert, o.tlsKey) : developmentCertificate(join(o.stateDir, 'tls'));
  const router = new SessionRouter().route(WARP_PATH, relay);
  // MoQ: the same relayed broadcast for MoQ clients, with the relay's tokens and subscriber bound.
  const moq = o.moq
    ? new MoqServer({ tokens: o.token, maxSessions: Math.floor(o.maxSubscribers), protocols: o.moqProtocols, log })
    : undefined;
  if (moq) {
    moq.add(relay.feed());
    router.route(MOQ_PATH, moq);
    registerMoqMetrics(metrics.registry, () => moq.stats());
  }
  let info = '';

  let stop: (why: string) => Promise<void> = async () => undefined;
  const drain = new OperatorDrain({
    successor: o.successor,
    timeoutSeconds: o.drainTimeout,
    adminToken: o.adminToken,
    target: relay,
    log,
    exit: (why) => stop(why),
  });

  const answer = (req: AdminRequest, res: Reply) => {
    if (drain.handle(req, res)) return;
    const path = (req.url ?? '/').split('?')[0];
    if (path === METRICS_PATH) {
      void metrics
        .text()
        .then((text) =>
          res.writeHead(200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' }).end(text),
        );
      return;
    }
    if (path === TIME_PATH) {
      // The relay's clock (UTCTiming's http-iso form), for a page that plays from it alone.
      res
        .writeHead(200, {
          'content-type': 'text/plain; charset=utf-8',
          'cache-control': 'no-store',
          'access-control-allow-origin': '*',
        })
        .end(new Date().toISOString());
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
        `this relay serves Warp at ${WARP_PATH}/${relay.broadcast}${moq ? ` and MoQ at ${MOQ_PATH}` : ''} (WebTransport), ${METRICS_PATH}, ${TIME_PATH} and ${WEBTRANSPORT_INFO_PATH}\n`,
      );
  };

  // TCP: HTTPS (metrics, certificate hashes) and the WebSocket fallback; UDP, same number: HTTP/3 and WebTransport.
  const websocket = new WebSocketSessionServer(router, {
    protocols: moq?.protocols,
    maxSessions: Math.floor(o.maxSubscribers),
    log,
  });
  registerWebSocketSessionMetrics(metrics.registry, () => websocket.stats());
  const listening = await SecurePort.listen({
    host: o.host,
    port: o.port,
    certificate,
    onRequest: (req, res) => answer(req as AdminRequest, res),
    onUpgrade: (req, socket, head) => websocket.handleUpgrade(req, socket, head),
    http3: { router, onRequest: (req, res) => answer(req, res) },
  });
  const port = listening.port;
  info = JSON.stringify(listening.webTransportInfo);

  relay.start();
  const shown = urlHost(o.host);
  const upstream = new URL(o.upstream);
  log(
    `relay: upstream ${upstream.origin}${upstream.pathname}${o.reorder ? `, delivery order rewritten to ${o.reorder}` : ''}${o.token?.length ? `, ${o.token.length} token(s) required` : ''}`,
  );
  console.log(`relay: https://${shown}:${port}${WARP_PATH}/${relay.broadcast}`);
  if (moq) console.log(`moq: https://${shown}:${port}${MOQ_PATH} broadcast ${relay.broadcast}`);
  console.log(`metrics: https://${shown}:${port}${METRICS_PATH}`);
  if (o.adminToken !== undefined)
    log(`admin: POST https://${shown}:${port}/admin/drain (bearer token) drains this relay`);
  if (drain.hasSuccessor) log(`drain: SIGTERM sends every viewer to ${o.successor} first (bound ${o.drainTimeout} s)`);

  let stopping = false;
  stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping`);
    await Promise.all([relay.close(), moq?.close()]);
    await websocket.close();
    await listening.close(0);
    log('stopped');
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => {
    if (drain.hasSuccessor && !drain.draining) drain.begin('SIGTERM');
    else void stop(drain.draining ? 'SIGTERM during the drain' : 'SIGTERM');
  });
  // §4.7: the upstream ended the broadcast and the viewers were told (code 0); there is nothing left to relay.
  void relay.ended.then((info) => stop(`the broadcast ended upstream${info.reason ? ` (${info.reason})` : ''}`));
}
