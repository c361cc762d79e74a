/**
 * The WebSocket fallback server's Prometheus metrics, read from `stats()` at each scrape:
 * `pushcast_websocket_sessions` (now), `pushcast_websocket_sessions_accepted_total`,
 * `pushcast_websocket_sessions_refused_total{status}`.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

/** What the metrics read of a `WebSocketSessionServer`'s `stats()`. */
interface ServerCounts {
  sessions: number;
  sessionsAccepted: number;
  sessionsRefusedByStatus: Record<string, number>;
}

export function registerWebSocketServerMetrics(registry: Registry, stats: () => ServerCounts): void {
  const registers = [registry];
  new Gauge({
    name: 'pushcast_websocket_sessions',
    help: 'WebTransport-over-WebSocket sessions now',
    registers,
    collect() {
      this.set(stats().sessions);
    },
  });
  let accepted = 0;
  new Counter({
    name: 'pushcast_websocket_sessions_accepted_total',
    help: 'WebTransport-over-WebSocket sessions accepted',
    registers,
    collect() {
      const now = stats().sessionsAccepted;
      if (now > accepted) this.inc(now - accepted);
      accepted = Math.max(accepted, now);
    },
  });
  const refused = new Map<string, number>();
  new Counter({
    name: 'pushcast_websocket_sessions_refused_total',
    help: 'WebTransport-over-WebSocket session requests refused, by HTTP status',
    labelNames: ['status'] as const,
    registers,
    collect() {
      for (const [status, now] of Object.entries(stats().sessionsRefusedByStatus)) {
        const before = refused.get(status) ?? 0;
        if (now > before) this.inc({ status }, now - before);
        refused.set(status, Math.max(before, now));
      }
    },
  });
}
