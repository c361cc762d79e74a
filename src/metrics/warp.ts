import type { Registry } from 'prom-client';
import type { WarpServerStats } from '../warp/index.js';
import { byLabel, perScrape, scrapedCounter, scrapedGauge, unlabelled } from './scrape.js';

/** Warp sessions, streams and bytes of a WarpServer (`pushcast_warp_*`), read at each scrape. */
export function registerWarpMetrics(registry: Registry, read: () => WarpServerStats) {
  const stats = perScrape(read);
  return {
    sessions: scrapedGauge(registry, 'pushcast_warp_sessions', 'Warp sessions open now', [], () =>
      unlabelled(stats().sessions),
    ),
    sessionsAccepted: scrapedCounter(
      registry,
      'pushcast_warp_sessions_accepted_total',
      'Warp sessions accepted, by transport (webtransport: WebTransport over HTTP/3; websocket: the WebSocket fallback)',
      ['transport'],
      () => byLabel('transport', stats().sessionsAcceptedByTransport),
    ),
    sessionsRefused: scrapedCounter(
      registry,
      'pushcast_warp_sessions_refused_total',
      'Warp session requests refused, by HTTP status (400 unknown track, 401 no token, 403 wrong token, 404 no such broadcast, 503 too many sessions, not started, or draining)',
      ['status'],
      () => byLabel('status', stats().sessionsRefusedByStatus),
    ),
    streams: scrapedCounter(
      registry,
      'pushcast_warp_streams_total',
      "Warp streams sent to viewers, closed sessions included, by outcome: opened; finished (sent whole); reset (dropped by the origin at the session's backlog limit); stopped (the viewer said it no longer wanted it). A stream cut by the end of its session counts as opened only",
      ['outcome'],
      () => {
        const s = stats();
        return [
          [{ outcome: 'opened' }, s.streamsOpened],
          [{ outcome: 'finished' }, s.streamsFinished],
          [{ outcome: 'reset' }, s.streamsCancelled],
          [{ outcome: 'stopped' }, s.streamsStopped],
        ];
      },
    ),
    bytes: scrapedCounter(
      registry,
      'pushcast_warp_bytes_total',
      'Bytes written to Warp sessions (stream headers and media), closed sessions included',
      [],
      () => unlabelled(stats().bytesWritten),
    ),
    draining: scrapedGauge(
      registry,
      'pushcast_warp_draining',
      "1 once the operator's drain has begun (GOAWAY to every session, new sessions refused 503) until the process ends, else 0",
      [],
      () => unlabelled(stats().draining ? 1 : 0),
    ),
    drainRemaining: scrapedGauge(
      registry,
      'pushcast_warp_drain_sessions_remaining',
      'Warp sessions the drain still waits for (0 without a drain)',
      [],
      () => unlabelled(stats().drainRemaining),
    ),
    goawaySessions: scrapedCounter(
      registry,
      'pushcast_warp_goaway_sessions_total',
      'Warp sessions sent a GOAWAY and closed since, by outcome: moved (closed once their segments under way were sent, or left first); cut (closed at the drain bound with segments still under way)',
      ['outcome'],
      () => {
        const s = stats();
        return [
          [{ outcome: 'moved' }, s.goawaySessionsMoved],
          [{ outcome: 'cut' }, s.goawaySessionsCut],
        ];
      },
    ),
    selects: scrapedCounter(
      registry,
      'pushcast_warp_selects_total',
      "Viewers' SELECT streams (rendition switching), by outcome: received; refused (malformed or too long, stopped)",
      ['outcome'],
      () => {
        const s = stats();
        return [
          [{ outcome: 'received' }, s.selectsReceived],
          [{ outcome: 'refused' }, s.selectsRefused],
        ];
      },
    ),
    backlogBytes: scrapedGauge(
      registry,
      'pushcast_warp_backlog_bytes',
      'Bytes waiting now to be sent on Warp sessions, over every open session',
      [],
      () => unlabelled(stats().backlogBytes),
    ),
  };
}
