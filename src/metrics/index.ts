/**
 * Prometheus metrics: the one place that maps the components' `stats()` (plain numbers and counts by
 * label) to metrics, read at scrape time. Above the components, below `src/cli`; no component imports it.
 */
export { PrometheusMetrics, type PrometheusMetricsOptions } from './prometheus.js';
export { registerOriginMetrics, type OriginMetrics } from './origin.js';
export { registerHttp2PushMetrics } from './http2-push.js';
export { registerLiveStreamMetrics, type LiveStreamStats } from './live-stream.js';
export { registerQuicMetrics } from './quic.js';
export { registerWarpMetrics } from './warp.js';
export { registerMoqMetrics } from './moq.js';
export { registerMulticastSenderMetrics } from './multicast-sender.js';
export { registerGatewayMetrics } from './gateway.js';
export { registerWarpRelayMetrics } from './warp-relay.js';
export { registerWebSocketSessionMetrics } from './websocket-sessions.js';
