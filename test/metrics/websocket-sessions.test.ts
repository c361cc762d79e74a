import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { registerWebSocketSessionMetrics } from '../../src/metrics/index.js';
import type { WebSocketSessionServerStats } from '../../src/webtransport/index.js';
import { exposition, metric } from './exposition.js';

const text = (s: WebSocketSessionServerStats) =>
  exposition(
    metric(
      'pushcast_websocket_sessions',
      'gauge',
      'WebTransport-over-WebSocket sessions now',
      `pushcast_websocket_sessions ${s.sessions}`,
    ),
    metric(
      'pushcast_websocket_sessions_accepted_total',
      'counter',
      'WebTransport-over-WebSocket sessions accepted',
      `pushcast_websocket_sessions_accepted_total ${s.sessionsAccepted}`,
    ),
    metric(
      'pushcast_websocket_sessions_refused_total',
      'counter',
      'WebTransport-over-WebSocket session requests refused, by HTTP status',
      ...Object.entries(s.sessionsRefusedByStatus).map(
        ([status, n]) => `pushcast_websocket_sessions_refused_total{status="${status}"} ${n}`,
      ),
    ),
  );

test('WebSocket session server stats become pushcast_websocket_*: sessions now, accepted, refused by status', async () => {
  const registry = new Registry();
  const stats: WebSocketSessionServerStats = {
    sessions: 2,
    sessionsAccepted: 5,
    sessionsRefused: 3,
    sessionsRefusedByStatus: { 403: 1, 404: 2 },
    streamsOpened: 10,
    streamsAccepted: 11,
    streamsRefused: 1,
  };
  let reads = 0;
  registerWebSocketSessionMetrics(registry, () => {
    reads++;
    return structuredClone(stats);
  });
  assert.equal(await registry.metrics(), text(stats));
  assert.equal(reads, 1, 'one read per scrape');
  stats.sessions = 0;
  stats.sessionsAccepted = 9;
  stats.sessionsRefusedByStatus[503] = 4;
  assert.equal(
    await registry.metrics(),
    text(stats),
    'totals followed; a status refused for the first time shows up; sessions now replaced',
  );
});
