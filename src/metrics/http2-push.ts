import type { Registry } from 'prom-client';
import type { ServerPushStats } from '../origin/index.js';
import { byLabel, byRow, perScrape, scrapedCounter } from './scrape.js';

/** HTTP/2 server push (`pushcast_http2_*`), read at each scrape. */
export function registerHttp2PushMetrics(registry: Registry, read: () => ServerPushStats) {
  const stats = perScrape(read);
  return {
    pushes: scrapedCounter(
      registry,
      'pushcast_http2_pushes_total',
      'HTTP/2 server pushes by kind (manifest, next-segment, channel, vod) and outcome (sent, duplicate, client-has, limit, disabled, cancelled, …)',
      ['kind', 'outcome'],
      () => byRow(stats().pushes),
    ),
    pushedBytes: scrapedCounter(
      registry,
      'pushcast_http2_pushed_bytes_total',
      'Body bytes written on pushed streams, by kind',
      ['kind'],
      () => byLabel('kind', stats().bytesByKind),
    ),
  };
}
