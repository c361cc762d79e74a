import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { QuicEndpointStats } from '../quic/index.js';
import type { WarpServerStats } from '../warp/index.js';

/** What the Warp metrics read: a WarpServer. */
export interface WarpStatsSource {
  stats(): WarpServerStats;
}

/** What the QUIC metrics read: a QuicEndpoint. */
export interface QuicStatsSource {
  readonly stats: QuicEndpointStats;
}

type Labels = Record<string, string>;

/**
 * Reads once per scrape: prom-client calls every metric's `collect` in one synchronous pass, so the
 * snapshot taken by the first is dropped (a microtask) before the next scrape.
 */
function perScrape<T>(read: () => T): () => T {
  let snapshot: T | undefined;
  return () => {
    if (snapshot === undefined) {
      snapshot = read();
      queueMicrotask(() => (snapshot = undefined));
    }
    return snapshot;
  };
}

/**
 * A counter that follows running totals read at scrape time (one value per label set), so that the
 * counted code keeps its plain integer adds and knows nothing of Prometheus. It never goes down.
 */
function scrapedCounter(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly string[],
  read: () => [Labels, number][],
): void {
  const exported = new Map<string, number>();
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      for (const [labels, value] of read()) {
        const key = labelNames.map((l) => labels[l]).join('\0');
        const before = exported.get(key) ?? 0;
        // inc by 0 too: a label set shows up (as 0) before its first event.
        this.inc(labels, Math.max(0, value - before));
        exported.set(key, Math.max(before, value));
      }
    },
  });
}

function scrapedGauge(registry: Registry, name: string, help: string, read: () => number): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}

const sum = <T>(list: readonly T[], f: (item: T) => number) => list.reduce((n, item) => n + f(item), 0);

/** The origin's Prometheus metrics (text exposition format at /metrics). */
export class OriginMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'pushcast_http_requests_total',
    help: 'HTTP requests answered, by route, method, status and protocol',
    labelNames: ['route', 'method', 'status', 'protocol'] as const,
    registers: [this.registry],
  });
  readonly responseBytes = new Counter({
    name: 'pushcast_http_response_body_bytes_total',
    help: 'Response body bytes written, by route',
    labelNames: ['route'] as const,
    registers: [this.registry],
  });
  readonly segmentsPublished = new Counter({
    name: 'pushcast_segments_published_total',
    help: 'Media segments completed by the packager, by track',
    labelNames: ['track'] as const,
    registers: [this.registry],
  });
  readonly encoderRestarts = new Counter({
    name: 'pushcast_encoder_restarts_total',
    help: 'Times the live encoder died and was restarted',
    registers: [this.registry],
  });
  readonly packagerErrors = new Counter({
    name: 'pushcast_packager_errors_total',
    help: 'Malformed encoder output rejected by the packager, by track',
    labelNames: ['track'] as const,
    registers: [this.registry],
  });
  readonly heldRequests = new Gauge({
    name: 'pushcast_held_segment_requests',
    help: 'Segment responses open while their segment is still being produced (low-latency chunked delivery)',
    registers: [this.registry],
  });
  readonly heldRequestsRefused = new Counter({
    name: 'pushcast_held_segment_requests_refused_total',
    help: 'Requests for in-progress segments refused with 503 because the hold limit was reached',
    registers: [this.registry],
  });

  readonly pushes = new Counter({
    name: 'pushcast_http2_pushes_total',
    help: 'HTTP/2 server pushes by kind (manifest, next-segment, channel, vod) and outcome (sent, duplicate, client-has, limit, disabled, cancelled, …)',
    labelNames: ['kind', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly pushedBytes = new Counter({
    name: 'pushcast_http2_pushed_bytes_total',
    help: 'Body bytes written on pushed streams, by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly earlyHints = new Counter({
    name: 'pushcast_early_hints_total',
    help: '103 Early Hints responses sent, by route',
    labelNames: ['route'] as const,
    registers: [this.registry],
  });

  private readonly warpServers: WarpStatsSource[] = [];
  private readonly quicEndpoints: QuicStatsSource[] = [];

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'pushcast_' });
  }

  /** Warp sessions, streams and bytes (`pushcast_warp_*`) of a WarpServer, read at each scrape. */
  observeWarp(server: WarpStatsSource): void {
    if (this.warpServers.push(server) > 1) return;
    const r = this.registry;
    const stats = perScrape(() => this.warpServers.map((w) => w.stats()));
    scrapedGauge(r, 'pushcast_warp_sessions', 'Warp sessions open now', () => sum(stats(), (s) => s.sessions));
    scrapedCounter(
      r,
      'pushcast_warp_sessions_accepted_total',
      'Warp sessions accepted, by transport (webtransport: WebTransport over HTTP/3; websocket: the WebSocket fallback)',
      ['transport'],
      () =>
        (['webtransport', 'websocket'] as const).map((transport) => [
          { transport },
          sum(stats(), (s) => s.sessionsAcceptedByTransport[transport]),
        ]),
    );
    scrapedCounter(
      r,
      'pushcast_warp_sessions_refused_total',
      'Warp session requests refused, by HTTP status (400 unknown track, 401 no token, 403 wrong token, 404 no such broadcast, 503 too many sessions or not started)',
      ['status'],
      () => {
        const byStatus = new Map<string, number>();
        for (const s of stats())
          for (const [status, n] of Object.entries(s.sessionsRefusedByStatus))
            byStatus.set(status, (byStatus.get(status) ?? 0) + n);
        return [...byStatus].map(([status, n]) => [{ status }, n]);
      },
    );
    scrapedCounter(
      r,
      'pushcast_warp_streams_total',
      "Warp streams sent to viewers, closed sessions included, by outcome: opened; finished (sent whole); reset (dropped by the origin at the session's backlog limit); stopped (the viewer said it no longer wanted it). A stream cut by the end of its session counts as opened only",
      ['outcome'],
      () => {
        const all = stats();
        return [
          [{ outcome: 'opened' }, sum(all, (s) => s.streamsOpened)],
          [{ outcome: 'finished' }, sum(all, (s) => s.streamsFinished)],
          [{ outcome: 'reset' }, sum(all, (s) => s.streamsCancelled)],
          [{ outcome: 'stopped' }, sum(all, (s) => s.streamsStopped)],
        ];
      },
    );
    scrapedCounter(
      r,
      'pushcast_warp_bytes_total',
      'Bytes written to Warp sessions (stream headers and media), closed sessions included',
      [],
      () => [[{}, sum(stats(), (s) => s.bytesWritten)]],
    );
    scrapedGauge(
      r,
      'pushcast_warp_backlog_bytes',
      'Bytes waiting now to be sent on Warp sessions, over every open session',
      () => sum(stats(), (s) => s.backlogBytes),
    );
  }

  /** The QUIC endpoint of HTTP/3 and WebTransport (`pushcast_quic_*`), read at each scrape. */
  observeQuic(endpoint: QuicStatsSource): void {
    if (this.quicEndpoints.push(endpoint) > 1) return;
    const r = this.registry;
    const stats = perScrape(() => this.quicEndpoints.map((e) => e.stats));
    scrapedGauge(r, 'pushcast_quic_connections', 'QUIC connections open now (HTTP/3 and WebTransport)', () =>
      sum(stats(), (s) => s.connections),
    );
    scrapedCounter(r, 'pushcast_quic_connections_total', 'QUIC connections accepted', [], () => [
      [{}, sum(stats(), (s) => s.connectionsAccepted)],
    ]);
    scrapedCounter(
      r,
      'pushcast_quic_packets_total',
      'UDP datagrams of the QUIC endpoint, by direction (in: received, out: sent)',
      ['direction'],
      () => [
        [{ direction: 'in' }, sum(stats(), (s) => s.datagramsIn)],
        [{ direction: 'out' }, sum(stats(), (s) => s.datagramsOut)],
      ],
    );
    scrapedCounter(
      r,
      'pushcast_quic_bytes_total',
      'UDP payload bytes of the QUIC endpoint, by direction (in: received, out: sent)',
      ['direction'],
      () => [
        [{ direction: 'in' }, sum(stats(), (s) => s.bytesIn)],
        [{ direction: 'out' }, sum(stats(), (s) => s.bytesOut)],
      ],
    );
    scrapedCounter(
      r,
      'pushcast_quic_packets_dropped_total',
      'Received UDP datagrams dropped by the QUIC endpoint: not QUIC, no such connection, or past the connection limit',
      [],
      () => [[{}, sum(stats(), (s) => s.dropped)]],
    );
  }
}
