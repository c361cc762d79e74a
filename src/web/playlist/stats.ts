/** What the playlist page shows in its panel and returns from `window.pushcastStats()`. */

export type ItemState = 'queued' | 'loading' | 'playing' | 'ended' | 'failed';

export interface ItemRecord {
  id: string;
  title: string;
  state: ItemState;
  /** Whether the item started from the metadata and first ranges fetched while the previous one played. */
  prefetched: boolean;
  /** From the moment the item was due (page start, or the previous item's end) to its first frame shown. */
  timeToFirstFrameMs: number | null;
}

/** The JSON snapshot behind `window.pushcastStats()`: exactly what the panel shows. */
export interface PlaylistStats {
  mode: 'vod';
  current: { id: string; title: string; index: number; currentTime: number; duration: number | null } | null;
  /** Seconds buffered ahead of the playhead. */
  buffer: number | null;
  /** Items played to their end. */
  itemsPlayed: number;
  items: ItemRecord[];
  errors: string[];
}
