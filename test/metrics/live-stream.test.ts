import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { registerLiveStreamMetrics, type LiveStreamStats } from '../../src/metrics/index.js';
import { exposition, metric } from './exposition.js';

const text = (s: LiveStreamStats) =>
  exposition(
    metric(
      'pushcast_segments_published_total',
      'counter',
      'Media segments completed by the packager, by track',
      ...Object.entries(s.segmentsPublishedByTrack).map(
        ([track, n]) => `pushcast_segments_published_total{track="${track}"} ${n}`,
      ),
    ),
    metric(
      'pushcast_encoder_restarts_total',
      'counter',
      'Times the live encoder died and was restarted',
      `pushcast_encoder_restarts_total ${s.encoder.restarts}`,
    ),
    metric(
      'pushcast_packager_errors_total',
      'counter',
      'Malformed encoder output rejected by the packager, by track',
      ...Object.entries(s.encoder.sinkErrorsByTrack).map(
        ([track, n]) => `pushcast_packager_errors_total{track="${track}"} ${n}`,
      ),
    ),
  );

test('encoder and packager stats become segments published by track, encoder restarts and packager errors by track', async () => {
  const registry = new Registry();
  const stats: LiveStreamStats = {
    encoder: { restarts: 0, sinkErrorsByTrack: {} },
    segmentsPublishedByTrack: { 'video-360p': 0, audio: 0 },
  };
  registerLiveStreamMetrics(registry, () => structuredClone(stats));
  assert.equal(await registry.metrics(), text(stats), 'no packager error series before the first error');
  stats.segmentsPublishedByTrack = { 'video-360p': 12, audio: 13 };
  stats.encoder = { restarts: 1, sinkErrorsByTrack: { 'video-360p': 1 } };
  assert.equal(await registry.metrics(), text(stats));
});
