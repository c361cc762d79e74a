import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { registerWarpMetrics } from '../../src/metrics/index.js';
import type { WarpServerStats } from '../../src/warp/index.js';
import { exposition, metric } from './exposition.js';

const text = (s: WarpServerStats) =>
  exposition(
    metric('pushcast_warp_sessions', 'gauge', 'Warp sessions open now', `pushcast_warp_sessions ${s.sessions}`),
    metric(
      'pushcast_warp_sessions_accepted_total',
      'counter',
      'Warp sessions accepted, by transport (webtransport: WebTransport over HTTP/3; websocket: the WebSocket fallback)',
      `pushcast_warp_sessions_accepted_total{transport="webtransport"} ${s.sessionsAcceptedByTransport.webtransport}`,
      `pushcast_warp_sessions_accepted_total{transport="websocket"} ${s.sessionsAcceptedByTransport.websocket}`,
    ),
    metric(
      'pushcast_warp_sessions_refused_total',
      'counter',
      'Warp session requests refused, by HTTP status (400 unknown track, 401 no token, 403 wrong token, 404 no such broadcast, 503 too many sessions, not started, or draining)',
      ...([400, 401, 403, 404, 503] as const).map(
        (status) => `pushcast_warp_sessions_refused_total{status="${status}"} ${s.sessionsRefusedByStatus[status]}`,
      ),
    ),
    metric(
      'pushcast_warp_streams_total',
      'counter',
      "Warp streams sent to viewers, closed sessions included, by outcome: opened; finished (sent whole); reset (dropped by the origin at the session's backlog limit); stopped (the viewer said it no longer wanted it). A stream cut by the end of its session counts as opened only",
      `pushcast_warp_streams_total{outcome="opened"} ${s.streamsOpened}`,
      `pushcast_warp_streams_total{outcome="finished"} ${s.streamsFinished}`,
      `pushcast_warp_streams_total{outcome="reset"} ${s.streamsCancelled}`,
      `pushcast_warp_streams_total{outcome="stopped"} ${s.streamsStopped}`,
    ),
    metric(
      'pushcast_warp_bytes_total',
      'counter',
      'Bytes written to Warp sessions (stream headers and media), closed sessions included',
      `pushcast_warp_bytes_total ${s.bytesWritten}`,
    ),
    metric(
      'pushcast_warp_draining',
      'gauge',
      "1 once the operator's drain has begun (GOAWAY to every session, new sessions refused 503) until the process ends, else 0",
      `pushcast_warp_draining ${s.draining ? 1 : 0}`,
    ),
    metric(
      'pushcast_warp_drain_sessions_remaining',
      'gauge',
      'Warp sessions the drain still waits for (0 without a drain)',
      `pushcast_warp_drain_sessions_remaining ${s.drainRemaining}`,
    ),
    metric(
      'pushcast_warp_goaway_sessions_total',
      'counter',
      'Warp sessions sent a GOAWAY and closed since, by outcome: moved (closed once their segments under way were sent, or left first); cut (closed at the drain bound with segments still under way)',
      `pushcast_warp_goaway_sessions_total{outcome="moved"} ${s.goawaySessionsMoved}`,
      `pushcast_warp_goaway_sessions_total{outcome="cut"} ${s.goawaySessionsCut}`,
    ),
    metric(
      'pushcast_warp_selects_total',
      'counter',
      "Viewers' SELECT streams (rendition switching), by outcome: received; refused (malformed or too long, stopped)",
      `pushcast_warp_selects_total{outcome="received"} ${s.selectsReceived}`,
      `pushcast_warp_selects_total{outcome="refused"} ${s.selectsRefused}`,
    ),
    metric(
      'pushcast_warp_backlog_bytes',
      'gauge',
      'Bytes waiting now to be sent on Warp sessions, over every open session',
      `pushcast_warp_backlog_bytes ${s.backlogBytes}`,
    ),
  );

test('Warp server stats become pushcast_warp_*: sessions by transport and refusal status, streams by outcome, the drain, SELECTs', async () => {
  const registry = new Registry();
  const stats: WarpServerStats = {
    sessions: 3,
    sessionsAccepted: 4,
    sessionsAcceptedByTransport: { webtransport: 3, websocket: 1 },
    sessionsRefused: 2,
    sessionsRefusedByStatus: { 400: 0, 401: 1, 403: 0, 404: 1, 503: 0 },
    streamsOpened: 40,
    streamsFinished: 35,
    streamsCancelled: 2,
    streamsStopped: 1,
    bytesWritten: 123_456,
    backlogBytes: 2048,
    draining: true,
    drainRemaining: 3,
    goawaySessionsMoved: 12,
    goawaySessionsCut: 1,
    selectsReceived: 0,
    selectsRefused: 0,
    senders: [],
  };
  let reads = 0;
  registerWarpMetrics(registry, () => {
    reads++;
    return structuredClone(stats);
  });
  assert.equal(await registry.metrics(), text(stats));
  assert.equal(reads, 1);
  stats.sessions = 0;
  stats.sessionsAcceptedByTransport.websocket = 5;
  stats.sessionsRefusedByStatus[503] = 7;
  stats.streamsOpened = 90;
  stats.streamsStopped = 6;
  stats.bytesWritten = 999_999;
  stats.backlogBytes = 0;
  stats.drainRemaining = 0;
  stats.goawaySessionsMoved = 15;
  stats.selectsReceived = 4;
  stats.selectsRefused = 1;
  assert.equal(await registry.metrics(), text(stats), 'totals followed, closed sessions included; now-values replaced');
});
