/**
 * `pushcast gateway --origin <MPD URL>`: the multicast gateway as a process of its own, for browsers on
 * a network where the origin host is not (WHP 336 §4.2). It learns which sessions it may join from the
 * origin's own advertisements (a HEAD for each representation's init segment, read again every 10 s,
 * so that a restarted sender's new sessions are followed), and serves WebSocket subscriptions on its
 * own port. Point the origin's advertisement at it with `pushcast serve --multicast --gateway-url`.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createNodeFetch } from '../client/index.js';
import { GATEWAY_PATH, MulticastGateway, type GatewaySession } from '../gateway/index.js';
import { HttpPort, developmentCertificate, urlHost, type HttpRequest, type HttpResponse } from '../listen/index.js';
import { METRICS_PATH } from '../media/index.js';
import { PrometheusMetrics, registerGatewayMetrics } from '../metrics/index.js';
import { multicastAdvertisement } from '../wire/index.js';

export interface GatewayCommandOptions {
  origin: string;
  host: string;
  port: number;
  tls: boolean;
  stateDir: string;
  allowOrigin?: string[];
  interface?: string;
  maxSubscribers: number;
  ca?: string;
  insecure: boolean;
}

const REFRESH_MS = 10_000;

function log(line: string): void {
  console.error(`${new Date().toISOString().slice(11, 19)} ${line}`);
}

export async function gatewayCommand(o: GatewayCommandOptions): Promise<void> {
  const fetch = createNodeFetch({ ca: o.ca ? await readFile(o.ca) : undefined, insecure: o.insecure });
  let sessions: GatewaySession[] = [];
  const refresh = async () => {
    try {
      const mpd = await fetch(o.origin);
      if (mpd.status !== 200) throw new Error(`MPD: HTTP ${mpd.status}`);
      const ids = [...(await mpd.text()).matchAll(/<Representation\b[^>]*\sid="([^"]+)"/g)].map((m) => m[1]!);
      const found: GatewaySession[] = [];
      for (const id of ids) {
        const head = await fetch(new URL(`${id}/init.mp4`, o.origin).href, { method: 'HEAD' });
        const ad = multicastAdvertisement(head.headers.get('alt-svc') ?? '');
        if (ad)
          found.push({
            group: ad.group,
            port: ad.port,
            source: ad.source,
            sessionId: ad.sessionId,
            ...(ad.fec ? { fec: { port: ad.fec.port } } : {}),
          });
      }
      const before = JSON.stringify(sessions);
      sessions = found;
      if (JSON.stringify(found) !== before)
        log(`advertised sessions: ${found.map((s) => `${s.group}:${s.port} ${s.sessionId}`).join(', ') || 'none'}`);
    } catch (error) {
      log(
        `cannot read the origin's advertisements: ${error instanceof Error ? error.message : String(error)}; keeping the last ones`,
      );
    }
  };
  await refresh();
  const refresher = setInterval(() => void refresh(), REFRESH_MS);

  const metrics = new PrometheusMetrics({ processMetricsPrefix: '' });
  const gateway = new MulticastGateway({
    sessions: () => sessions,
    allowedOrigins: o.allowOrigin,
    interfaceAddress: o.interface,
    maxSubscribers: o.maxSubscribers,
    log,
  });
  registerGatewayMetrics(metrics.registry, () => gateway.stats);
  const handler = (req: HttpRequest, res: HttpResponse) => {
    if (req.url === METRICS_PATH) {
      void metrics.text().then((text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(text));
      return;
    }
    res
      .writeHead(404, { 'content-type': 'text/plain' })
      .end(`the gateway answers WebSocket subscriptions at ${GATEWAY_PATH}, and ${METRICS_PATH}\n`);
  };
  const server = await HttpPort.listen({
    host: o.host,
    port: o.port,
    certificate: o.tls ? developmentCertificate(join(o.stateDir, 'tls')) : undefined,
    onRequest: handler,
    onUpgrade: (req, socket, head) => gateway.handleUpgrade(req, socket, head),
  });
  const shown = urlHost(o.host);
  console.log(`gateway: ${o.tls ? 'wss' : 'ws'}://${shown}:${server.port}${GATEWAY_PATH}`);
  console.log(`metrics: ${o.tls ? 'https' : 'http'}://${shown}:${server.port}${METRICS_PATH}`);

  const stop = async (signal: string) => {
    log(`${signal}: stopping`);
    clearInterval(refresher);
    await gateway.close();
    await server.close(0);
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
}
