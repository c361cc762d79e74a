import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/** The origin's Prometheus metrics (text exposition format at /metrics). */
export class OriginMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'pushcast_http_requests_total',
    help: 'HTTP requests answered, by route, method, status and protocol',
    labelNames: ['route', 'method', 'status', 'protocol'] as const,
    registers: [this.registry],
  });
  readonly responseBytes = new Counter({
    name: 'pushcast_http_response_body_bytes_total',
    help: 'Response body bytes written, by route',
    labelNames: ['route'] as const,
    registers: [this.registry],
  });
  readonly segmentsPublished = new Counter({
    name: 'pushcast_segments_published_total',
    help: 'Media segments completed by the packager, by track',
    labelNames: ['track'] as const,
    registers: [this.registry],
  });
  readonly encoderRestarts = new Counter({
    name: 'pushcast_encoder_restarts_total',
    help: 'Times the live encoder died and was restarted',
    registers: [this.registry],
  });
  readonly packagerErrors = new Counter({
    name: 'pushcast_packager_errors_total',
    help: 'Malformed encoder output rejected by the packager, by track',
    labelNames: ['track'] as const,
    registers: [this.registry],
  });
  readonly heldRequests = new Gauge({
    name: 'pushcast_held_segment_requests',
    help: 'Segment responses open while their segment is still being produced (low-latency chunked delivery)',
    registers: [this.registry],
  });
  readonly heldRequestsRefused = new Counter({
    name: 'pushcast_held_segment_requests_refused_total',
    help: 'Requests for in-progress segments refused with 503 because the hold limit was reached',
    registers: [this.registry],
  });

  readonly pushes = new Counter({
    name: 'pushcast_http2_pushes_total',
    help: 'HTTP/2 server pushes by kind (manifest, next-segment, channel, vod) and outcome (sent, duplicate, client-has, limit, disabled, cancelled, …)',
    labelNames: ['kind', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly pushedBytes = new Counter({
    name: 'pushcast_http2_pushed_bytes_total',
    help: 'Body bytes written on pushed streams, by kind',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly earlyHints = new Counter({
    name: 'pushcast_early_hints_total',
    help: '103 Early Hints responses sent, by route',
    labelNames: ['route'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'pushcast_' });
  }
}
