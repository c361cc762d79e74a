import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { registerHttp2PushMetrics } from '../../src/metrics/index.js';
import type { ServerPushStats } from '../../src/origin/index.js';
import { exposition, http2PushMetrics } from './exposition.js';

test('HTTP/2 push stats become pushes by kind and outcome, and pushed bytes by kind', async () => {
  const registry = new Registry();
  const stats: ServerPushStats = {
    pushes: [
      { kind: 'manifest', outcome: 'sent', count: 5 },
      { kind: 'manifest', outcome: 'duplicate', count: 3 },
      { kind: 'channel', outcome: 'cancelled', count: 1 },
    ],
    bytesByKind: { manifest: 289_642, channel: 4096 },
  };
  const metrics = registerHttp2PushMetrics(registry, () => structuredClone(stats));
  assert.equal(await registry.metrics(), exposition(...http2PushMetrics(stats)));
  stats.pushes[0]!.count = 8;
  stats.pushes.push({ kind: 'next-segment', outcome: 'limit', count: 2 });
  stats.bytesByKind.manifest = 500_000;
  assert.equal(await registry.metrics(), exposition(...http2PushMetrics(stats)));
  const values = (await metrics.pushes.get()).values.map((v) => [v.labels.kind, v.labels.outcome, v.value]);
  assert.deepEqual(values, [
    ['manifest', 'sent', 8],
    ['manifest', 'duplicate', 3],
    ['channel', 'cancelled', 1],
    ['next-segment', 'limit', 2],
  ]);
});
