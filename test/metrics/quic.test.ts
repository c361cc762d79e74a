import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { registerQuicMetrics } from '../../src/metrics/index.js';
import type { QuicEndpointStats } from '../../src/quic/index.js';
import { exposition, metric } from './exposition.js';

const text = (s: QuicEndpointStats) =>
  exposition(
    metric(
      'pushcast_quic_connections',
      'gauge',
      'QUIC connections open now (HTTP/3 and WebTransport)',
      `pushcast_quic_connections ${s.connections}`,
    ),
    metric(
      'pushcast_quic_connections_total',
      'counter',
      'QUIC connections accepted',
      `pushcast_quic_connections_total ${s.connectionsAccepted}`,
    ),
    metric(
      'pushcast_quic_packets_total',
      'counter',
      'UDP datagrams of the QUIC endpoint, by direction (in: received, out: sent)',
      `pushcast_quic_packets_total{direction="in"} ${s.datagramsIn}`,
      `pushcast_quic_packets_total{direction="out"} ${s.datagramsOut}`,
    ),
    metric(
      'pushcast_quic_bytes_total',
      'counter',
      'UDP payload bytes of the QUIC endpoint, by direction (in: received, out: sent)',
      `pushcast_quic_bytes_total{direction="in"} ${s.bytesIn}`,
      `pushcast_quic_bytes_total{direction="out"} ${s.bytesOut}`,
    ),
    metric(
      'pushcast_quic_packets_dropped_total',
      'counter',
      'Received UDP datagrams dropped by the QUIC endpoint: not QUIC, no such connection, or past the connection limit',
      `pushcast_quic_packets_dropped_total ${s.dropped}`,
    ),
  );

test('QUIC endpoint stats become pushcast_quic_*: connections now, totals by direction, read once per scrape', async () => {
  const registry = new Registry();
  const stats: QuicEndpointStats = {
    connections: 2,
    connectionsAccepted: 5,
    datagramsIn: 10,
    datagramsOut: 12,
    bytesIn: 1000,
    bytesOut: 2000,
    dropped: 1,
    versionNegotiations: 0,
    routed: 9,
  };
  let reads = 0;
  registerQuicMetrics(registry, () => {
    reads++;
    return { ...stats };
  });
  assert.equal(await registry.metrics(), text(stats));
  assert.equal(reads, 1, 'one read for the five metrics');
  Object.assign(stats, { connections: 0, connectionsAccepted: 7, datagramsIn: 30, bytesOut: 5000, dropped: 4 });
  assert.equal(await registry.metrics(), text(stats), 'the counters follow the totals, the gauge the value now');
  assert.equal(reads, 2);
});
