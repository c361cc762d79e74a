/**
 * Figures from a benchmark's samples, defined once for every bench: sum, mean, median, percentile, and the
 * median with its range that the reports print.
 */

export function sum(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

/** The arithmetic mean; undefined for no samples. */
export function mean(xs: readonly number[]): number | undefined {
  return xs.length ? sum(xs) / xs.length : undefined;
}

/** The middle sample, or the mean of the two middle ones for an even count; NaN for no samples. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  if (s.length === 0) return Number.NaN;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * The p-th percentile (0–100) by nearest rank: the smallest sample with at least p % of the samples at or
 * below it, so always a measured value; undefined for no samples.
 */
export function percentile(xs: readonly number[], p: number): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}

/** Median, range and count; undefined for no samples. */
export function summarize(xs: readonly number[]): Summary | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return { median: median(s), min: s[0]!, max: s.at(-1)!, n: s.length };
}
