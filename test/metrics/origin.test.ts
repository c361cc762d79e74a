import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { registerOriginMetrics } from '../../src/metrics/index.js';
import type { OriginStats } from '../../src/origin/index.js';
import { exposition, http2PushMetrics, metric } from './exposition.js';

const text = (s: OriginStats) =>
  exposition(
    metric(
      'pushcast_http_requests_total',
      'counter',
      'HTTP requests answered, by route, method, status and protocol',
      ...s.requests.map(
        (r) =>
          `pushcast_http_requests_total{route="${r.route}",method="${r.method}",status="${r.status}",protocol="${r.protocol}"} ${r.count}`,
      ),
    ),
    metric(
      'pushcast_http_response_body_bytes_total',
      'counter',
      'Response body bytes written, by route',
      ...Object.entries(s.responseBytesByRoute).map(
        ([route, n]) => `pushcast_http_response_body_bytes_total{route="${route}"} ${n}`,
      ),
    ),
    metric(
      'pushcast_held_segment_requests',
      'gauge',
      'Segment responses open while their segment is still being produced (low-latency chunked delivery)',
      `pushcast_held_segment_requests ${s.heldRequests}`,
    ),
    metric(
      'pushcast_held_segment_requests_refused_total',
      'counter',
      'Requests for in-progress segments refused with 503 because the hold limit was reached',
      `pushcast_held_segment_requests_refused_total ${s.heldRequestsRefused}`,
    ),
    metric(
      'pushcast_early_hints_total',
      'counter',
      '103 Early Hints responses sent, by route',
      ...Object.entries(s.earlyHintsByRoute).map(([route, n]) => `pushcast_early_hints_total{route="${route}"} ${n}`),
    ),
    metric(
      'pushcast_hls_held_playlist_requests',
      'gauge',
      'LL-HLS blocking playlist requests waiting for the segment or part they name',
      `pushcast_hls_held_playlist_requests ${s.hls.heldPlaylists}`,
    ),
    metric(
      'pushcast_hls_held_part_requests',
      'gauge',
      'LL-HLS part requests waiting for their CMAF chunk (the preload hint)',
      `pushcast_hls_held_part_requests ${s.hls.heldParts}`,
    ),
    metric(
      'pushcast_hls_blocking_reloads_total',
      'counter',
      'LL-HLS blocking playlist reloads (_HLS_msn), by outcome: at-once, waited, timeout (503), too-far and malformed (400), refused (503 at the bound), closed by the client',
      ...Object.entries(s.hls.blockingReloads).map(
        ([outcome, n]) => `pushcast_hls_blocking_reloads_total{outcome="${outcome}"} ${n}`,
      ),
    ),
    ...http2PushMetrics(s.push),
  );

test('origin stats become pushcast_http_*, held segment requests, 103 Early Hints, LL-HLS blocking reloads and HTTP/2 push, read once per scrape', async () => {
  const registry = new Registry();
  const stats: OriginStats = {
    requests: [
      { route: 'segment', method: 'GET', status: '200', protocol: 'http/1.1', count: 4 },
      { route: 'segment', method: 'GET', status: '206', protocol: 'h2', count: 1 },
      { route: 'mpd', method: 'HEAD', status: '200', protocol: 'h3', count: 2 },
    ],
    responseBytesByRoute: { segment: 400_000, mpd: 0 },
    heldRequests: 3,
    heldRequestsRefused: 0,
    earlyHintsByRoute: { page: 1 },
    push: { pushes: [{ kind: 'manifest', outcome: 'sent', count: 2 }], bytesByKind: { manifest: 1000 } },
    hls: { heldPlaylists: 2, heldParts: 1, blockingReloads: { 'at-once': 5, waited: 7 } },
  };
  let reads = 0;
  registerOriginMetrics(registry, () => {
    reads++;
    return structuredClone(stats);
  });
  assert.equal(await registry.metrics(), text(stats));
  assert.equal(reads, 1, 'one read for the origin and its push metrics');
  stats.requests[0]!.count = 10;
  stats.requests.push({ route: 'not-found', method: 'other', status: '404', protocol: 'h2', count: 1 });
  stats.responseBytesByRoute.segment = 900_000;
  stats.heldRequests = 0;
  stats.heldRequestsRefused = 2;
  stats.earlyHintsByRoute.mpd = 4;
  stats.hls.heldPlaylists = 0;
  stats.hls.blockingReloads.waited = 9;
  stats.hls.blockingReloads['too-far'] = 1;
  stats.push.pushes.push({ kind: 'next-segment', outcome: 'sent', count: 1 });
  assert.equal(await registry.metrics(), text(stats));
  assert.equal(reads, 2);
});
