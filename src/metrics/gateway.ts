import type { Registry } from 'prom-client';
import type { GatewayStats } from '../gateway/index.js';
import { byLabel, perScrape, scrapedCounter, scrapedGauge, unlabelled } from './scrape.js';

/** The multicast gateway (`pushcast_gateway_*`), read at each scrape. */
export function registerGatewayMetrics(registry: Registry, read: () => GatewayStats) {
  const stats = perScrape(read);
  return {
    refused: scrapedCounter(
      registry,
      'pushcast_gateway_refused_total',
      'WebSocket subscriptions refused, by reason',
      ['reason'],
      () => byLabel('reason', stats().refused),
    ),
    forwarded: scrapedCounter(
      registry,
      'pushcast_gateway_packets_forwarded_total',
      'QUIC packets (and FEC repair packets) sent to subscribers',
      [],
      () => unlabelled(stats().forwarded),
    ),
    dropped: scrapedCounter(
      registry,
      'pushcast_gateway_packets_dropped_total',
      'QUIC packets dropped for a subscriber whose send queue was full',
      [],
      () => unlabelled(stats().dropped),
    ),
    subscribers: scrapedGauge(registry, 'pushcast_gateway_subscribers', 'WebSocket subscribers now', [], () =>
      unlabelled(stats().subscribers),
    ),
    sessionsJoined: scrapedGauge(
      registry,
      'pushcast_gateway_sessions_joined',
      'Multicast sessions joined now',
      [],
      () => unlabelled(stats().sessions),
    ),
    repairFlows: scrapedGauge(
      registry,
      'pushcast_gateway_repair_flows_joined',
      'FEC repair flows joined now (for subscribers that asked with fec=1)',
      [],
      () => unlabelled(stats().repairFlows),
    ),
  };
}
