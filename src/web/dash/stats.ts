import type { MulticastStats } from '../sw/stats.js';

/** How a segment reached the player. Push modes add their routes beside plain unicast HTTP. */
export type DeliveryRoute = 'unicast' | 'prefetch' | 'push' | 'repaired';

export interface SegmentRecord {
  url: string;
  kind: 'video' | 'audio';
  representation: string;
  number?: number;
  route: DeliveryRoute;
  /** The HTTP version the browser used, from Resource Timing (e.g. h2, http/1.1). */
  protocol: string;
  bytes: number;
  /** Milliseconds from request to last byte. */
  loadMs: number;
  /** Multicast: unicast bytes that completed a repaired segment. */
  repairBytes?: number;
  /** Multicast: ms from the segment's arrival to the player's request (negative: the player waited). */
  aheadMs?: number | null;
}

/** What DASH playback (dash.js, over unicast, prefetch or multicast) reports: the DASH part of the player's stats. */
export interface DashPlayerStats {
  mode: 'unicast' | 'prefetch' | 'multicast';
  manifest: string;
  playing: boolean;
  currentTime: number;
  /** Seconds behind the live edge by the player's clock (dash.js, synchronised by UTCTiming). */
  latency: number | null;
  targetLatency: number | null;
  /** Seconds of video buffered ahead of the playhead. */
  buffer: number | null;
  playbackRate: number;
  rendition: { id: string; width: number; height: number; bandwidth: number } | null;
  stalls: number;
  framesDecoded: number;
  framesDropped: number;
  segments: { total: number; byRoute: Record<string, number>; recent: SegmentRecord[] };
  /** Prefetcher counts, in `prefetch` mode. */
  prefetch: { started: number; completed: number; failed: number } | null;
  /** The multicast Service Worker's counts, in `multicast` mode (null until it answers). */
  multicast: MulticastStats | null;
  errors: string[];
}
