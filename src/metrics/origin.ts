import type { Registry } from 'prom-client';
import type { OriginStats } from '../origin/index.js';
import { registerHttp2PushMetrics } from './http2-push.js';
import { byLabel, byRow, perScrape, scrapedCounter, scrapedGauge, unlabelled } from './scrape.js';

/** The origin's metrics (`pushcast_http_*`, held segment requests, LL-HLS blocking reloads, 103 Early Hints, HTTP/2 push), read at each scrape. */
export function registerOriginMetrics(registry: Registry, read: () => OriginStats) {
  const stats = perScrape(read);
  return {
    requests: scrapedCounter(
      registry,
      'pushcast_http_requests_total',
      'HTTP requests answered, by route, method, status and protocol',
      ['route', 'method', 'status', 'protocol'],
      () => byRow(stats().requests),
    ),
    responseBytes: scrapedCounter(
      registry,
      'pushcast_http_response_body_bytes_total',
      'Response body bytes written, by route',
      ['route'],
      () => byLabel('route', stats().responseBytesByRoute),
    ),
    heldRequests: scrapedGauge(
      registry,
      'pushcast_held_segment_requests',
      'Segment responses open while their segment is still being produced (low-latency chunked delivery)',
      [],
      () => unlabelled(stats().heldRequests),
    ),
    heldRequestsRefused: scrapedCounter(
      registry,
      'pushcast_held_segment_requests_refused_total',
      'Requests for in-progress segments refused with 503 because the hold limit was reached',
      [],
      () => unlabelled(stats().heldRequestsRefused),
    ),
    earlyHints: scrapedCounter(
      registry,
      'pushcast_early_hints_total',
      '103 Early Hints responses sent, by route',
      ['route'],
      () => byLabel('route', stats().earlyHintsByRoute),
    ),
    hlsHeldPlaylists: scrapedGauge(
      registry,
      'pushcast_hls_held_playlist_requests',
      'LL-HLS blocking playlist requests waiting for the segment or part they name',
      [],
      () => unlabelled(stats().hls.heldPlaylists),
    ),
    hlsHeldParts: scrapedGauge(
      registry,
      'pushcast_hls_held_part_requests',
      'LL-HLS part requests waiting for their CMAF chunk (the preload hint)',
      [],
      () => unlabelled(stats().hls.heldParts),
    ),
    hlsBlockingReloads: scrapedCounter(
      registry,
      'pushcast_hls_blocking_reloads_total',
      'LL-HLS blocking playlist reloads (_HLS_msn), by outcome: at-once, waited, timeout (503), too-far and malformed (400), refused (503 at the bound), closed by the client',
      ['outcome'],
      () => byLabel('outcome', stats().hls.blockingReloads as Record<string, number>),
    ),
    ...registerHttp2PushMetrics(registry, () => stats().push),
  };
}

export type OriginMetrics = ReturnType<typeof registerOriginMetrics>;
