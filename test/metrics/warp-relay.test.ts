import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { registerWarpRelayMetrics } from '../../src/metrics/index.js';
import type { WarpRelayStats } from '../../src/warp/index.js';
import { exposition, metric } from './exposition.js';

/** Each metric in exposition order: name, type, help, the stats field it reads (or how). */
const METRICS: readonly (readonly [
  string,
  'counter' | 'gauge',
  string,
  keyof WarpRelayStats | ((s: WarpRelayStats) => number),
])[] = [
  ['pushcast_relay_subscribers', 'gauge', 'Downstream Warp sessions now', 'sessions'],
  [
    'pushcast_relay_upstream_sessions',
    'gauge',
    'Upstream sessions now (2 while a GOAWAY is followed)',
    'upstreamSessions',
  ],
  ['pushcast_relay_cache_bytes', 'gauge', 'Bytes of cached streams (catalog, inits, newest segments)', 'cacheBytes'],
  [
    'pushcast_relay_draining',
    'gauge',
    "1 once the operator's drain has begun (GOAWAY to every subscriber, new ones refused 503), else 0",
    (s) => (s.draining ? 1 : 0),
  ],
  [
    'pushcast_relay_drain_subscribers_remaining',
    'gauge',
    'Downstream sessions the drain still waits for (0 without a drain)',
    'drainRemaining',
  ],
  ['pushcast_relay_sessions_accepted_total', 'counter', 'Downstream sessions accepted', 'sessionsAccepted'],
  [
    'pushcast_relay_sessions_refused_total',
    'counter',
    'Downstream session requests refused (401, 403, 404, 503: full, stopping or draining)',
    'sessionsRefused',
  ],
  ['pushcast_relay_upstream_streams_total', 'counter', 'Upstream streams read', 'streamsReceived'],
  [
    'pushcast_relay_streams_forwarded_total',
    'counter',
    'Upstream streams relayed as new (fanned out and cached)',
    'streamsForwarded',
  ],
  [
    'pushcast_relay_upstream_duplicates_total',
    'counter',
    'Upstream streams with an ID already relayed, stopped',
    'duplicates',
  ],
  [
    'pushcast_relay_upstream_takeovers_total',
    'counter',
    'Segments continued from another upstream copy after the first was lost',
    'takeovers',
  ],
  ['pushcast_relay_upstream_malformed_total', 'counter', 'Upstream streams dropped as malformed', 'malformed'],
  [
    'pushcast_relay_upstream_oversize_total',
    'counter',
    'Upstream streams dropped past the per-stream byte bound',
    'oversize',
  ],
  [
    'pushcast_relay_upstream_limited_total',
    'counter',
    "Upstream streams stopped at the relay's stream limit",
    'limited',
  ],
  [
    'pushcast_relay_segments_aborted_total',
    'counter',
    'Relayed streams aborted downstream (upstream copy failed)',
    'aborted',
  ],
  ['pushcast_relay_upstream_bytes_total', 'counter', 'Stream bytes received upstream', 'bytesReceived'],
  ['pushcast_relay_downstream_bytes_total', 'counter', 'Stream bytes handed to downstream sessions', 'bytesWritten'],
  ['pushcast_relay_downstream_streams_total', 'counter', 'Streams opened downstream', 'streamsOpened'],
  [
    'pushcast_relay_downstream_cancelled_total',
    'counter',
    'Downstream streams reset by the relay (resource limit, or upstream aborted)',
    'streamsCancelled',
  ],
  [
    'pushcast_relay_downstream_stopped_total',
    'counter',
    'Downstream streams stopped by the viewer (STOP_SENDING)',
    'streamsStopped',
  ],
  [
    'pushcast_relay_upstream_reconnects_total',
    'counter',
    'Upstream sessions opened again after the upstream was lost',
    'upstreamReconnects',
  ],
  ['pushcast_relay_upstream_failures_total', 'counter', 'Upstream connection attempts that failed', 'upstreamFailures'],
  ['pushcast_relay_upstream_goaways_total', 'counter', 'GOAWAYs followed', 'goaways'],
  [
    'pushcast_relay_upstream_incomplete_total',
    'counter',
    'Upstream sessions replaced because the catalog or an init did not come in time',
    'upstreamIncomplete',
  ],
  [
    'pushcast_relay_goaway_subscribers_moved_total',
    'counter',
    'Downstream sessions sent a GOAWAY and closed once their segments under way were sent (or that left first)',
    'goawaySessionsMoved',
  ],
  [
    'pushcast_relay_goaway_subscribers_cut_total',
    'counter',
    'Downstream sessions sent a GOAWAY and closed at the drain bound with segments still under way',
    'goawaySessionsCut',
  ],
  ['pushcast_relay_cache_evictions_total', 'counter', 'Cached streams evicted by the cache bounds', 'cacheEvictions'],
  [
    'pushcast_relay_selects_received_total',
    'counter',
    "Subscribers' SELECT streams read (rendition switching, answered by the relay)",
    'selectsReceived',
  ],
  [
    'pushcast_relay_selects_refused_total',
    'counter',
    "Subscribers' streams refused as not a SELECT (malformed or too long)",
    'selectsRefused',
  ],
];

const text = (s: WarpRelayStats) =>
  exposition(
    ...METRICS.map(([name, type, help, field]) =>
      metric(name, type, help, `${name} ${typeof field === 'function' ? field(s) : s[field]}`),
    ),
  );

/** Stats whose numbers are all different, so that a metric reading the wrong field shows. */
function relayStats(): WarpRelayStats {
  const numbers = {
    upstreamConnects: 1,
    upstreamReconnects: 2,
    upstreamFailures: 3,
    upstreamIncomplete: 4,
    goaways: 5,
    streamsReceived: 6,
    streamsForwarded: 7,
    duplicates: 8,
    takeovers: 9,
    malformed: 10,
    oversize: 11,
    limited: 12,
    lost: 13,
    aborted: 14,
    controlStreams: 15,
    bytesReceived: 16_000,
    cacheBytes: 17_000,
    cachedSegments: 18,
    cachedTracks: 19,
    cachedInits: 20,
    cacheEvictions: 21,
    sessions: 22,
    sessionsAccepted: 23,
    sessionsRefused: 24,
    backlogBytes: 25,
    streamsOpened: 26,
    streamsFinished: 27,
    streamsCancelled: 28,
    streamsStopped: 29,
    bytesWritten: 30_000,
    upstreamSessions: 2,
    rememberedIds: 31,
    upstreamStreamsActive: 32,
    heldForCatalog: 33,
    drainRemaining: 34,
    goawaySessionsMoved: 35,
    goawaySessionsCut: 36,
    selectsReceived: 37,
    selectsRefused: 38,
  };
  return {
    ...numbers,
    broadcast: 'live',
    upstreamUrl: 'https://origin.example:8443/warp/live',
    draining: true,
    sessionsAcceptedByTransport: { webtransport: 20, websocket: 3 },
    sessionsRefusedByStatus: { 400: 0, 401: 4, 403: 10, 404: 0, 503: 10 },
    senders: [],
  };
}

test('Warp relay stats become pushcast_relay_*: sessions, upstream, streams, bytes and cache, each from its own count', async () => {
  const registry = new Registry();
  const stats = relayStats();
  let reads = 0;
  registerWarpRelayMetrics(registry, () => {
    reads++;
    return structuredClone(stats);
  });
  assert.equal(await registry.metrics(), text(stats));
  assert.equal(reads, 1, 'one read per scrape');
  stats.sessions = 0;
  stats.upstreamSessions = 1;
  stats.cacheBytes = 500;
  stats.sessionsAccepted = 40;
  stats.upstreamReconnects = 7;
  stats.takeovers = 90;
  stats.bytesWritten = 999_999;
  stats.cacheEvictions = 60;
  stats.draining = false;
  stats.drainRemaining = 0;
  stats.goawaySessionsCut = 37;
  assert.equal(await registry.metrics(), text(stats), 'totals followed; now-values replaced');
  assert.equal(reads, 2);
});
