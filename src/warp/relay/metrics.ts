/**
 * The relay's Prometheus metrics (`pushcast_relay_*`), read from `stats()` at each scrape: the relay
 * itself counts with plain numbers and knows nothing of Prometheus.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { WarpRelayStats } from './stats.js';

export function registerRelayMetrics(registry: Registry, read: () => WarpRelayStats): void {
  const registers = [registry];
  // prom-client calls every metric's `collect` in one synchronous pass: one snapshot serves the scrape.
  let snapshot: WarpRelayStats | undefined;
  const stats = (): WarpRelayStats => {
    if (!snapshot) {
      snapshot = read();
      queueMicrotask(() => (snapshot = undefined));
    }
    return snapshot;
  };
  const counter = (name: string, help: string, read: (s: WarpRelayStats) => number) => {
    let exported = 0;
    new Counter({
      name,
      help,
      registers,
      collect() {
        const value = read(stats());
        if (value > exported) this.inc(value - exported);
        exported = Math.max(exported, value);
      },
    });
  };
  const gauge = (name: string, help: string, read: (s: WarpRelayStats) => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read(stats()));
      },
    });
  gauge('pushcast_relay_subscribers', 'Downstream Warp sessions now', (s) => s.sessions);
  gauge(
    'pushcast_relay_upstream_sessions',
    'Upstream sessions now (2 while a GOAWAY is followed)',
    (s) => s.upstreamSessions,
  );
  gauge('pushcast_relay_cache_bytes', 'Bytes of cached streams (catalog, inits, newest segments)', (s) => s.cacheBytes);
  counter('pushcast_relay_sessions_accepted_total', 'Downstream sessions accepted', (s) => s.sessionsAccepted);
  counter(
    'pushcast_relay_sessions_refused_total',
    'Downstream session requests refused (401, 403, 404, 503)',
    (s) => s.sessionsRefused,
  );
  counter('pushcast_relay_upstream_streams_total', 'Upstream streams read', (s) => s.streamsReceived);
  counter(
    'pushcast_relay_streams_forwarded_total',
    'Upstream streams relayed as new (fanned out and cached)',
    (s) => s.streamsForwarded,
  );
  counter(
    'pushcast_relay_upstream_duplicates_total',
    'Upstream streams with an ID already relayed, stopped',
    (s) => s.duplicates,
  );
  counter(
    'pushcast_relay_upstream_takeovers_total',
    'Segments continued from another upstream copy after the first was lost',
    (s) => s.takeovers,
  );
  counter('pushcast_relay_upstream_malformed_total', 'Upstream streams dropped as malformed', (s) => s.malformed);
  counter(
    'pushcast_relay_upstream_oversize_total',
    'Upstream streams dropped past the per-stream byte bound',
    (s) => s.oversize,
  );
  counter(
    'pushcast_relay_upstream_limited_total',
    "Upstream streams stopped at the relay's stream limit",
    (s) => s.limited,
  );
  counter(
    'pushcast_relay_segments_aborted_total',
    'Relayed streams aborted downstream (upstream copy failed)',
    (s) => s.aborted,
  );
  counter('pushcast_relay_upstream_bytes_total', 'Stream bytes received upstream', (s) => s.bytesReceived);
  counter('pushcast_relay_downstream_bytes_total', 'Stream bytes handed to downstream sessions', (s) => s.bytesWritten);
  counter('pushcast_relay_downstream_streams_total', 'Streams opened downstream', (s) => s.streamsOpened);
  counter(
    'pushcast_relay_downstream_cancelled_total',
    'Downstream streams reset by the relay (resource limit, or upstream aborted)',
    (s) => s.streamsCancelled,
  );
  counter(
    'pushcast_relay_downstream_stopped_total',
    'Downstream streams stopped by the viewer (STOP_SENDING)',
    (s) => s.streamsStopped,
  );
  counter(
    'pushcast_relay_upstream_reconnects_total',
    'Upstream sessions opened again after the upstream was lost',
    (s) => s.upstreamReconnects,
  );
  counter(
    'pushcast_relay_upstream_failures_total',
    'Upstream connection attempts that failed',
    (s) => s.upstreamFailures,
  );
  counter('pushcast_relay_upstream_goaways_total', 'GOAWAYs followed', (s) => s.goaways);
  counter(
    'pushcast_relay_upstream_incomplete_total',
    'Upstream sessions replaced because the catalog or an init did not come in time',
    (s) => s.upstreamIncomplete,
  );
  counter(
    'pushcast_relay_cache_evictions_total',
    'Cached streams evicted by the cache bounds',
    (s) => s.cacheEvictions,
  );
}
