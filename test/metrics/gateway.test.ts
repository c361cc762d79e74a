import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import type { GatewayStats } from '../../src/gateway/index.js';
import { registerGatewayMetrics } from '../../src/metrics/index.js';
import { exposition, metric } from './exposition.js';

const text = (s: GatewayStats) =>
  exposition(
    metric(
      'pushcast_gateway_refused_total',
      'counter',
      'WebSocket subscriptions refused, by reason',
      ...Object.entries(s.refused).map(([reason, n]) => `pushcast_gateway_refused_total{reason="${reason}"} ${n}`),
    ),
    metric(
      'pushcast_gateway_packets_forwarded_total',
      'counter',
      'QUIC packets (and FEC repair packets) sent to subscribers',
      `pushcast_gateway_packets_forwarded_total ${s.forwarded}`,
    ),
    metric(
      'pushcast_gateway_packets_dropped_total',
      'counter',
      'QUIC packets dropped for a subscriber whose send queue was full',
      `pushcast_gateway_packets_dropped_total ${s.dropped}`,
    ),
    metric(
      'pushcast_gateway_subscribers',
      'gauge',
      'WebSocket subscribers now',
      `pushcast_gateway_subscribers ${s.subscribers}`,
    ),
    metric(
      'pushcast_gateway_sessions_joined',
      'gauge',
      'Multicast sessions joined now',
      `pushcast_gateway_sessions_joined ${s.sessions}`,
    ),
    metric(
      'pushcast_gateway_repair_flows_joined',
      'gauge',
      'FEC repair flows joined now (for subscribers that asked with fec=1)',
      `pushcast_gateway_repair_flows_joined ${s.repairFlows}`,
    ),
  );

test('gateway stats become pushcast_gateway_*: refusals by reason (only reasons seen), packets, subscribers and joins now', async () => {
  const registry = new Registry();
  const stats: GatewayStats = {
    subscribers: 0,
    sessions: 0,
    datagrams: 0,
    forwarded: 0,
    dropped: 0,
    foreign: 0,
    repairFlows: 0,
    refused: {},
  };
  registerGatewayMetrics(registry, () => structuredClone(stats));
  assert.equal(await registry.metrics(), text(stats), 'before any subscription: no refusal series, zero counts');
  Object.assign(stats, {
    subscribers: 12,
    sessions: 2,
    datagrams: 900,
    forwarded: 10_000,
    dropped: 3,
    foreign: 1,
    repairFlows: 1,
  });
  stats.refused = { origin: 2, 'not-advertised': 1 };
  assert.equal(await registry.metrics(), text(stats));
  stats.refused.origin = 5;
  stats.forwarded = 20_000;
  stats.subscribers = 1;
  assert.equal(await registry.metrics(), text(stats), 'the counters follow the totals, the gauges the values now');
});
