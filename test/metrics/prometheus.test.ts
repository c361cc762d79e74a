import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PrometheusMetrics } from '../../src/metrics/index.js';

test('the process metrics carry the pushcast_ prefix by default, or the one given; the text format is declared', async () => {
  const origin = new PrometheusMetrics();
  assert.match(origin.contentType, /^text\/plain; version=0\.0\.4/);
  const text = await origin.text();
  assert.match(text, /^# TYPE pushcast_process_resident_memory_bytes gauge$/m);
  assert.match(text, /^pushcast_nodejs_eventloop_lag_seconds \d/m);
  const unprefixed = await new PrometheusMetrics({ processMetricsPrefix: '' }).text();
  assert.match(unprefixed, /^process_resident_memory_bytes \d+$/m);
  assert.doesNotMatch(unprefixed, /pushcast_/);
});
