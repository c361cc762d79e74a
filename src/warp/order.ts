/**
 * Delivery order (draft-lcurley-warp-00 §3.2, §4.3, §9.3): smaller is delivered first, the reading
 * docs/warp-wire.md argues for. A broadcast picks one policy; a segment's order comes from its
 * presentation time, its track's kind, and the orders of the segments it depends on.
 */
export type WarpOrderPolicy = 'newest-first' | 'oldest-first' | 'video-first' | 'audio-first';

export const WARP_ORDER_POLICIES: readonly WarpOrderPolicy[] = [
  'newest-first',
  'oldest-first',
  'video-first',
  'audio-first',
];

/** Between kinds, an offset larger than any time difference in a live window (2^40 µs ≈ 12.7 days). */
const KIND_OFFSET = 2 ** 40;
/** Init segments: before everything (§9.1.4: media segments depend on them). */
export const INIT_ORDER = -(2 ** 50);

/**
 * The order of a media segment starting at `ptsMicros`: §9.3 with the signs that match §4.3 (newer
 * first = −PTS), raised to at least each dependency's order (§3.2: never before a segment it depends on).
 */
export function segmentOrder(
  policy: WarpOrderPolicy,
  kind: 'video' | 'audio',
  ptsMicros: number,
  dependencyOrders: readonly number[] = [],
): number {
  const t = Math.round(ptsMicros);
  let order: number;
  switch (policy) {
    case 'oldest-first':
      order = t;
      break;
    case 'newest-first':
      order = -t;
      break;
    case 'video-first':
      order = -t + (kind === 'audio' ? KIND_OFFSET : 0);
      break;
    case 'audio-first':
      order = -t + (kind === 'video' ? KIND_OFFSET : 0);
      break;
  }
  return Math.max(order, ...dependencyOrders);
}

export function isOrderPolicy(p: unknown): p is WarpOrderPolicy {
  return (WARP_ORDER_POLICIES as readonly unknown[]).includes(p);
}

/**
 * The presentation time (µs) behind an order made by `policy` for a segment of `kind`: every policy
 * above is base + sign · PTS per kind (before the raise to its dependencies' orders).
 */
export function ptsFromOrder(policy: WarpOrderPolicy, kind: 'video' | 'audio', order: number): number {
  const base = segmentOrder(policy, kind, 0);
  const sign = segmentOrder(policy, kind, 1) - base;
  return (order - base) * sign;
}
