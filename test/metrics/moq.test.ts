import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { registerMoqMetrics } from '../../src/metrics/index.js';
import type { MoqServerStats } from '../../src/moq/index.js';

test('MoqServer stats become pushcast_moq_* metrics, read once per scrape', async () => {
  const registry = new Registry();
  const stats: MoqServerStats = {
    sessions: 3,
    sessionsAccepted: 10,
    sessionsRefused: 2,
    sessionsFailed: 1,
    subscriptions: 9,
    subscriptionsRefused: 4,
    groupsSent: 120,
    streamsOpened: 118,
    streamsFinished: 110,
    streamsCancelled: 5,
    streamsStopped: 1,
    bytesWritten: 123_456,
    backlogBytes: 789,
  };
  let reads = 0;
  registerMoqMetrics(registry, () => (reads++, { ...stats }));
  const text = await registry.metrics();
  assert.equal(reads, 1);
  for (const line of [
    'pushcast_moq_sessions 3',
    'pushcast_moq_sessions_accepted_total 10',
    'pushcast_moq_sessions_refused_total 2',
    'pushcast_moq_sessions_failed_total 1',
    'pushcast_moq_subscriptions 9',
    'pushcast_moq_subscriptions_refused_total 4',
    'pushcast_moq_group_streams_total{outcome="opened"} 118',
    'pushcast_moq_group_streams_total{outcome="finished"} 110',
    'pushcast_moq_group_streams_total{outcome="reset"} 5',
    'pushcast_moq_group_streams_total{outcome="stopped"} 1',
    'pushcast_moq_bytes_total 123456',
    'pushcast_moq_backlog_bytes 789',
  ])
    assert.ok(text.split('\n').includes(line), `${line} in\n${text}`);
});
