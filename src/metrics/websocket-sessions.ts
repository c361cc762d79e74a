import type { Registry } from 'prom-client';
import type { WebSocketSessionServerStats } from '../webtransport/index.js';
import { byLabel, perScrape, scrapedCounter, scrapedGauge, unlabelled } from './scrape.js';

/** The WebSocket fallback's session server (`pushcast_websocket_*`), read at each scrape. */
export function registerWebSocketSessionMetrics(registry: Registry, read: () => WebSocketSessionServerStats) {
  const stats = perScrape(read);
  return {
    sessions: scrapedGauge(
      registry,
      'pushcast_websocket_sessions',
      'WebTransport-over-WebSocket sessions now',
      [],
      () => unlabelled(stats().sessions),
    ),
    sessionsAccepted: scrapedCounter(
      registry,
      'pushcast_websocket_sessions_accepted_total',
      'WebTransport-over-WebSocket sessions accepted',
      [],
      () => unlabelled(stats().sessionsAccepted),
    ),
    sessionsRefused: scrapedCounter(
      registry,
      'pushcast_websocket_sessions_refused_total',
      'WebTransport-over-WebSocket session requests refused, by HTTP status',
      ['status'],
      () => byLabel('status', stats().sessionsRefusedByStatus),
    ),
  };
}
