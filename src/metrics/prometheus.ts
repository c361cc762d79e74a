import { Registry, collectDefaultMetrics } from 'prom-client';

export interface PrometheusMetricsOptions {
  /**
   * Prefix of the process metrics (CPU, memory, event loop, garbage collection); default `pushcast_`.
   * `pushcast gateway` and `pushcast relay` name theirs without one, as their dashboards do.
   */
  processMetricsPrefix?: string;
}

/**
 * A process's Prometheus metrics: a registry holding the process metrics, to which each component
 * family's mapping (`register*Metrics`) adds its own, and the text exposition format served at /metrics.
 */
export class PrometheusMetrics {
  readonly registry = new Registry();

  constructor(o: PrometheusMetricsOptions = {}) {
    collectDefaultMetrics({ register: this.registry, prefix: o.processMetricsPrefix ?? 'pushcast_' });
  }

  /** The exposition format's media type (text/plain; version=0.0.4). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Every metric in the text exposition format, each component's stats read once. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
