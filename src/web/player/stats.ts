import type { DeliveryMode } from '../../media/live/delivery.js';
import type { DashPlayerStats } from '../dash/stats.js';
import type { WarpPlayerStats } from '../warp/stats.js';

/** A mode the player can run: a delivery mode, or a forced variant (`warp`: either transport; `prefetch`: DASH with the prefetcher). */
export type PlayerMode = DeliveryMode | 'warp' | 'prefetch';

/** One move between modes, and what it cost the viewer. */
export interface PlayerMove {
  from: PlayerMode | null;
  to: PlayerMode;
  /** Why: `start`, the failure of `from`, or `better` (back to a mode higher in the order). */
  cause: string;
  /** ISO instant of the swap. */
  at: string;
  /** The picture's freeze: last frame of the old element to the first of the new after the swap, ms (null at start or unmeasured). */
  frozenMs: number | null;
  /** The sound's gap: since the old element stopped advancing, to the swap, ms. */
  audioFrozenMs: number | null;
  /** The latency 2 s after the swap, ms (null until then). */
  latencyAfterMs: number | null;
}

/** A mode tried: became ready, or why not, and how long it took. */
export interface ModeAttempt {
  mode: PlayerMode;
  result: 'ready' | 'failed' | 'timeout' | 'cancelled';
  why: string;
  ms: number;
}

/** Bytes received by the way they came. */
export interface BytesByRoute {
  /** Multicast pushes through the gateway, as delivered to the player. */
  push: number;
  /** Unicast ranges that completed damaged pushes. */
  repair: number;
  /** Plain HTTP (DASH, and multicast's unicast fallback). */
  unicast: number;
  /** Warp streams over WebTransport or the WebSocket fallback. */
  warp: number;
}

/** `player.stats()` and `window.pushcastStats()`: one snapshot across modes. */
export interface PlayerStats {
  state: 'starting' | 'playing' | 'moving' | 'failed' | 'destroyed';
  /** The mode on screen, and why it was chosen. */
  mode: PlayerMode | null;
  modeReason: string;
  /** The modes this player may use, in order, and those left out with the reason. */
  order: PlayerMode[];
  unavailable: Partial<Record<PlayerMode, string>>;
  targetLatencyMs: number;
  /** The picture's age on the origin's clock, ms. */
  latencyMs: number | null;
  /** Over the player's life, every element it used. */
  framesShown: number;
  framesDropped: number;
  stalls: number;
  moves: PlayerMove[];
  attempts: ModeAttempt[];
  bytesByRoute: BytesByRoute;
  /** The one sentence shown to the viewer now ('' when all is well). */
  message: string;
  errors: string[];
  /** The mode's own figures: DASH (unicast, prefetch, multicast) or Warp. */
  dash: DashPlayerStats | null;
  warp: WarpPlayerStats | null;
}
