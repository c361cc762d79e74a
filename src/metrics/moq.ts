import type { Registry } from 'prom-client';
import type { MoqServerStats } from '../moq/index.js';
import { perScrape, scrapedCounter, scrapedGauge, unlabelled } from './scrape.js';

/** MoQ sessions, subscriptions, group streams and bytes of a MoqServer (`pushcast_moq_*`), read at each scrape. */
export function registerMoqMetrics(registry: Registry, read: () => MoqServerStats) {
  const stats = perScrape(read);
  return {
    sessions: scrapedGauge(registry, 'pushcast_moq_sessions', 'MoQ sessions open now', [], () =>
      unlabelled(stats().sessions),
    ),
    sessionsAccepted: scrapedCounter(
      registry,
      'pushcast_moq_sessions_accepted_total',
      'MoQ sessions accepted (WebTransport or the WebSocket fallback)',
      [],
      () => unlabelled(stats().sessionsAccepted),
    ),
    sessionsRefused: scrapedCounter(
      registry,
      'pushcast_moq_sessions_refused_total',
      'MoQ session requests refused (401 no token, 403 wrong token, 404 another path, 503 too many sessions)',
      [],
      () => unlabelled(stats().sessionsRefused),
    ),
    sessionsFailed: scrapedCounter(
      registry,
      'pushcast_moq_sessions_failed_total',
      'MoQ sessions closed by the server: a malformed or unexpected message, no version in common, or no SETUP in time',
      [],
      () => unlabelled(stats().sessionsFailed),
    ),
    subscriptions: scrapedGauge(registry, 'pushcast_moq_subscriptions', 'MoQ subscriptions open now', [], () =>
      unlabelled(stats().subscriptions),
    ),
    subscriptionsRefused: scrapedCounter(
      registry,
      'pushcast_moq_subscriptions_refused_total',
      'MoQ subscriptions refused: an unknown broadcast or track, or past the bound of a session',
      [],
      () => unlabelled(stats().subscriptionsRefused),
    ),
    streams: scrapedCounter(
      registry,
      'pushcast_moq_group_streams_total',
      "MoQ group streams, closed sessions included, by outcome: opened; finished (sent whole); reset (at the session's backlog bound, the oldest groups first); stopped (by the viewer)",
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
      'pushcast_moq_bytes_total',
      'Bytes written to MoQ group streams, closed sessions included',
      [],
      () => unlabelled(stats().bytesWritten),
    ),
    backlog: scrapedGauge(
      registry,
      'pushcast_moq_backlog_bytes',
      'Bytes waiting for the transport now over every MoQ session',
      [],
      () => unlabelled(stats().backlogBytes),
    ),
  };
}
