import type { Registry } from 'prom-client';
import type { WarpRelayStats } from '../warp/index.js';
import { perScrape, scrapedCounter, scrapedGauge, unlabelled } from './scrape.js';

type Read = (s: WarpRelayStats) => number;

const GAUGES: readonly (readonly [string, string, Read])[] = [
  ['pushcast_relay_subscribers', 'Downstream Warp sessions now', (s) => s.sessions],
  [
    'pushcast_relay_upstream_sessions',
    'Upstream sessions now (2 while a GOAWAY is followed)',
    (s) => s.upstreamSessions,
  ],
  ['pushcast_relay_cache_bytes', 'Bytes of cached streams (catalog, inits, newest segments)', (s) => s.cacheBytes],
  [
    'pushcast_relay_draining',
    "1 once the operator's drain has begun (GOAWAY to every subscriber, new ones refused 503), else 0",
    (s) => (s.draining ? 1 : 0),
  ],
  [
    'pushcast_relay_drain_subscribers_remaining',
    'Downstream sessions the drain still waits for (0 without a drain)',
    (s) => s.drainRemaining,
  ],
];

const COUNTERS: readonly (readonly [string, string, Read])[] = [
  ['pushcast_relay_sessions_accepted_total', 'Downstream sessions accepted', (s) => s.sessionsAccepted],
  [
    'pushcast_relay_sessions_refused_total',
    'Downstream session requests refused (401, 403, 404, 503: full, stopping or draining)',
    (s) => s.sessionsRefused,
  ],
  ['pushcast_relay_upstream_streams_total', 'Upstream streams read', (s) => s.streamsReceived],
  [
    'pushcast_relay_streams_forwarded_total',
    'Upstream streams relayed as new (fanned out and cached)',
    (s) => s.streamsForwarded,
  ],
  [
    'pushcast_relay_upstream_duplicates_total',
    'Upstream streams with an ID already relayed, stopped',
    (s) => s.duplicates,
  ],
  [
    'pushcast_relay_upstream_takeovers_total',
    'Segments continued from another upstream copy after the first was lost',
    (s) => s.takeovers,
  ],
  ['pushcast_relay_upstream_malformed_total', 'Upstream streams dropped as malformed', (s) => s.malformed],
  [
    'pushcast_relay_upstream_oversize_total',
    'Upstream streams dropped past the per-stream byte bound',
    (s) => s.oversize,
  ],
  ['pushcast_relay_upstream_limited_total', "Upstream streams stopped at the relay's stream limit", (s) => s.limited],
  [
    'pushcast_relay_segments_aborted_total',
    'Relayed streams aborted downstream (upstream copy failed)',
    (s) => s.aborted,
  ],
  ['pushcast_relay_upstream_bytes_total', 'Stream bytes received upstream', (s) => s.bytesReceived],
  ['pushcast_relay_downstream_bytes_total', 'Stream bytes handed to downstream sessions', (s) => s.bytesWritten],
  ['pushcast_relay_downstream_streams_total', 'Streams opened downstream', (s) => s.streamsOpened],
  [
    'pushcast_relay_downstream_cancelled_total',
    'Downstream streams reset by the relay (resource limit, or upstream aborted)',
    (s) => s.streamsCancelled,
  ],
  [
    'pushcast_relay_downstream_stopped_total',
    'Downstream streams stopped by the viewer (STOP_SENDING)',
    (s) => s.streamsStopped,
  ],
  [
    'pushcast_relay_upstream_reconnects_total',
    'Upstream sessions opened again after the upstream was lost',
    (s) => s.upstreamReconnects,
  ],
  ['pushcast_relay_upstream_failures_total', 'Upstream connection attempts that failed', (s) => s.upstreamFailures],
  ['pushcast_relay_upstream_goaways_total', 'GOAWAYs followed', (s) => s.goaways],
  [
    'pushcast_relay_upstream_incomplete_total',
    'Upstream sessions replaced because the catalog or an init did not come in time',
    (s) => s.upstreamIncomplete,
  ],
  [
    'pushcast_relay_goaway_subscribers_moved_total',
    'Downstream sessions sent a GOAWAY and closed once their segments under way were sent (or that left first)',
    (s) => s.goawaySessionsMoved,
  ],
  [
    'pushcast_relay_goaway_subscribers_cut_total',
    'Downstream sessions sent a GOAWAY and closed at the drain bound with segments still under way',
    (s) => s.goawaySessionsCut,
  ],
  ['pushcast_relay_cache_evictions_total', 'Cached streams evicted by the cache bounds', (s) => s.cacheEvictions],
  [
    'pushcast_relay_selects_received_total',
    "Subscribers' SELECT streams read (rendition switching, answered by the relay)",
    (s) => s.selectsReceived,
  ],
  [
    'pushcast_relay_selects_refused_total',
    "Subscribers' streams refused as not a SELECT (malformed or too long)",
    (s) => s.selectsRefused,
  ],
];

/** A Warp relay's upstream, cache and downstream counts (`pushcast_relay_*`), read at each scrape. */
export function registerWarpRelayMetrics(registry: Registry, read: () => WarpRelayStats): void {
  const stats = perScrape(read);
  for (const [name, help, value] of GAUGES) scrapedGauge(registry, name, help, [], () => unlabelled(value(stats())));
  for (const [name, help, value] of COUNTERS)
    scrapedCounter(registry, name, help, [], () => unlabelled(value(stats())));
}
