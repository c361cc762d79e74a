import { Counter, Gauge, type Registry } from 'prom-client';

/** The label values of one series, by label name. */
export type Labels = Record<string, string>;

/** One series as read from a component's stats: its labels and its value. */
export type Sample = readonly [Labels, number];

/**
 * Reads once per scrape: prom-client calls every metric's `collect` in one synchronous pass, so the
 * snapshot taken by the first is dropped (a microtask) before the next scrape.
 */
export function perScrape<T>(read: () => T): () => T {
  let snapshot: T | undefined;
  return () => {
    if (snapshot === undefined) {
      snapshot = read();
      queueMicrotask(() => (snapshot = undefined));
    }
    return snapshot;
  };
}

/**
 * A counter that follows running totals read at scrape time (one value per label set), so that the
 * counted code keeps its plain integer adds and knows nothing of Prometheus. It never goes down.
 */
export function scrapedCounter(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly string[],
  read: () => readonly Sample[],
): Counter {
  const exported = new Map<string, number>();
  return new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      for (const [labels, value] of read()) {
        const key = labelNames.map((l) => labels[l]).join('\0');
        const before = exported.get(key) ?? 0;
        // inc by 0 too: a label set shows up (as 0) before its first event.
        this.inc(labels, Math.max(0, value - before));
        exported.set(key, Math.max(before, value));
      }
    },
  });
}

/** A gauge read at scrape time: exactly the label sets read, so one that is gone is no longer shown. */
export function scrapedGauge(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly string[],
  read: () => readonly Sample[],
): Gauge {
  return new Gauge({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, value] of read()) this.set(labels, value);
    },
  });
}

/** The one series of a metric without labels. */
export const unlabelled = (value: number): Sample[] => [[{}, value]];

/** One series per key of `counts`, its key as the value of `label`. */
export const byLabel = (label: string, counts: Readonly<Record<string, number>>): Sample[] =>
  Object.entries(counts).map(([value, n]) => [{ [label]: value }, n]);

/** One series per row, every field but `count` a label. */
export const byRow = <Row extends { count: number }>(rows: readonly Row[]): Sample[] =>
  rows.map(({ count, ...labels }) => [labels as unknown as Labels, count]);
