import type { ServerPushStats } from '../../src/origin/index.js';

/** One metric as the Prometheus text format writes it: HELP, TYPE, then its series in order. */
export function metric(name: string, type: 'counter' | 'gauge', help: string, ...series: string[]): string {
  return [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...series].join('\n');
}

/** A registry's whole exposition: its metrics in registration order. */
export function exposition(...metrics: string[]): string {
  return `${metrics.join('\n\n')}\n`;
}

const PUSHES_HELP =
  'HTTP/2 server pushes by kind (manifest, next-segment, channel, vod) and outcome (sent, duplicate, client-has, limit, disabled, cancelled, …)';
const PUSHED_BYTES_HELP = 'Body bytes written on pushed streams, by kind';

/** The HTTP/2 push metrics of `s`, which the origin's metrics include. */
export const http2PushMetrics = (s: ServerPushStats) => [
  metric(
    'pushcast_http2_pushes_total',
    'counter',
    PUSHES_HELP,
    ...s.pushes.map((p) => `pushcast_http2_pushes_total{kind="${p.kind}",outcome="${p.outcome}"} ${p.count}`),
  ),
  metric(
    'pushcast_http2_pushed_bytes_total',
    'counter',
    PUSHED_BYTES_HELP,
    ...Object.entries(s.bytesByKind).map(([kind, n]) => `pushcast_http2_pushed_bytes_total{kind="${kind}"} ${n}`),
  ),
];
