/** What `window.pushcastStats()` gives on this page: the player stats' common fields and hls.js's own. */
export interface HlsPageStats {
  state: 'starting' | 'playing' | 'failed';
  mode: 'hls';
  /** The picture's age on the origin's clock, ms. */
  latencyMs: number | null;
  /** hls.js's target (PART-HOLD-BACK), ms. */
  targetLatencyMs: number | null;
  framesShown: number;
  framesDropped: number;
  /** Times playback waited for data after it had started. */
  stalls: number;
  currentTime: number;
  playbackRate: number;
  /** Seconds buffered ahead of the playhead. */
  buffer: number;
  /** Partial segments and whole segments hls.js loaded. */
  partsLoaded: number;
  segmentsLoaded: number;
  level: number;
  message: string;
  errors: string[];
}
