/** The JSON snapshot behind the Warp player page's `window.pushcastStats()`: exactly what its panel shows. */

export type WarpTransportKind = 'webtransport' | 'websocket';

/** One row of the panel's table: a segment as the page saw it. */
export interface WarpSegmentRecord {
  track: string;
  /** The segment number from its resource path (/live/<track>/<n>.m4s), when the sender named one. */
  number: number | null;
  /** received: whole; cut: its stream ended early (a part was played); skipped: given up on (§3.4). */
  state: 'receiving' | 'received' | 'cut' | 'skipped';
  /** Why it was skipped (the consumer's reason). */
  why?: string;
  bytes: number;
  /** Presentation time of its start, seconds on the broadcast's timeline. */
  time: number;
}

export interface WarpPlayerStats {
  mode: 'warp';
  /** The transport of the newest session; null before one is open. */
  transport: WarpTransportKind | null;
  /** `connecting`, `playing`, `waiting` (for media), `failed` (see errors), … in words. */
  state: string;
  /** Date.now() − (availabilityStartTime + currentTime): the picture's age, ms; null before playback. */
  latencyMs: number | null;
  /** Media buffered ahead of currentTime, ms. */
  bufferMs: number | null;
  /** The viewer's latency target: the consumer's buffer (how long a late segment is waited for) and the playback delay. */
  targetLatencyMs: number;
  /** The server's clock (its /time) minus the viewer's, ms: the timeline the latency is measured on. */
  clockOffsetMs: number;
  playbackRate: number;
  currentTime: number;
  /** getVideoPlaybackQuality(): totalVideoFrames − droppedVideoFrames. */
  framesShown: number;
  framesDropped: number;
  /** Segments handed over whole (every track). */
  segmentsReceived: number;
  /** Segments given up on (§3.4): late, stalled or missing. */
  segmentsSkipped: number;
  /** Segment streams stopped (STOP_SENDING) because they came too late to be played, or duplicates. */
  segmentsStopped: number;
  /** Waiting events while playing (not seeking). */
  stalls: number;
  /** Seeks the page made to keep the target, and to jump over holes left by skipped segments. */
  catchUpSeeks: number;
  gapJumps: number;
  /** Bytes read from every Warp stream of every session. */
  bytesReceived: number;
  /** GOAWAY messages followed with a new session (§5.4). */
  goaways: number;
  /** The video rendition at the playhead; the one asked for now (null without a chooser); choices made. */
  rendition: string | null;
  renditionChoice: string | null;
  /** The path's rate as the last key frames crossed it, bit/s (null until two came): what a chooser probes on. */
  pathRateBps: number | null;
  renditionSwitches: number;
  sessionsOpened: number;
  /** The URL of the newest session. */
  sessionUrl: string | null;
  /** The tracks played (one SourceBuffer each): MSE type, media buffered ahead of currentTime, bytes waiting to be appended. */
  tracks: {
    id: string;
    kind: 'video' | 'audio';
    mime: string;
    bufferedMs: number | null;
    buffered: [number, number][];
    queuedBytes: number;
  }[];
  /** The media element: readyState (HTMLMediaElement), seeking, paused, and its buffered ranges (s; every track's media). */
  media: { readyState: number; seeking: boolean; paused: boolean; buffered: [number, number][] };
  recent: WarpSegmentRecord[];
  errors: string[];
}
