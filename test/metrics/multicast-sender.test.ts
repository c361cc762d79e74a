import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { registerMulticastSenderMetrics } from '../../src/metrics/index.js';
import type { LiveSessionStats } from '../../src/multicast/index.js';
import { exposition, metric } from './exposition.js';

const text = (sessions: LiveSessionStats[]) => {
  const perTrack = (name: string, pick: (s: LiveSessionStats) => number) =>
    sessions.map((s) => `${name}{track="${s.trackId}"} ${pick(s)}`);
  return exposition(
    metric(
      'pushcast_multicast_segments_sent',
      'gauge',
      'Media segments pushed into the multicast session, by track',
      ...perTrack('pushcast_multicast_segments_sent', (s) => s.segments),
    ),
    metric(
      'pushcast_multicast_init_pushes',
      'gauge',
      'Init segment pushes (repeated for late joiners), by track',
      ...perTrack('pushcast_multicast_init_pushes', (s) => s.inits),
    ),
    metric(
      'pushcast_multicast_pushes_dropped',
      'gauge',
      'Pushes dropped whole because the send queue was full, by track',
      ...perTrack('pushcast_multicast_pushes_dropped', (s) => s.dropped),
    ),
    metric(
      'pushcast_multicast_packets_sent',
      'gauge',
      'QUIC packets sent to the multicast group, by track',
      ...perTrack('pushcast_multicast_packets_sent', (s) => s.packets),
    ),
    metric(
      'pushcast_multicast_bytes_sent',
      'gauge',
      'Datagram bytes sent to the multicast group, by track',
      ...perTrack('pushcast_multicast_bytes_sent', (s) => s.bytes),
    ),
    metric(
      'pushcast_multicast_repair_packets_sent',
      'gauge',
      'FEC repair packets sent to the repair port, by track (0 without FEC)',
      ...perTrack('pushcast_multicast_repair_packets_sent', (s) => s.repairPackets),
    ),
    metric(
      'pushcast_multicast_repair_bytes_sent',
      'gauge',
      'FEC repair datagram bytes sent to the repair port, by track (0 without FEC)',
      ...perTrack('pushcast_multicast_repair_bytes_sent', (s) => s.repairBytes),
    ),
  );
};

const session = (trackId: string, port: number, n: number): LiveSessionStats => ({
  trackId,
  group: '232.112.99.1',
  port,
  sessionId: '0011223344556677',
  rateBitsPerSecond: 1_600_000,
  segments: n,
  inits: n + 1,
  dropped: n % 2,
  packets: n * 100,
  bytes: n * 120_000,
  repairPackets: n * 10,
  repairBytes: n * 12_000,
});

test('multicast sender stats become one pushcast_multicast_* series per track', async () => {
  const registry = new Registry();
  let sessions: LiveSessionStats[] = [];
  registerMulticastSenderMetrics(registry, () => sessions);
  assert.equal(await registry.metrics(), text([]), 'before the sender starts: the metrics, no series');
  sessions = [session('video-360p', 5000, 3), session('audio', 5001, 4)];
  assert.equal(await registry.metrics(), text(sessions));
  sessions = [session('video-360p', 5000, 9), session('audio', 5001, 10)];
  assert.equal(await registry.metrics(), text(sessions));
});
