/**
 * A broadcast as another delivery protocol takes it from Warp's side (MoQ, src/moq): its catalog, each
 * track's init segment, each track's newest segment and every new one, each segment's parts whole CMAF
 * chunks. The origin's `WarpProducer` and a relay's `WarpRelay` give one (`feed()`).
 */
import type { WarpCatalog } from './catalog.js';
import type { WarpSource } from './source.js';

export interface BroadcastFeed {
  readonly name: string;
  catalog(): WarpCatalog | undefined;
  /** A track's init segment (ftyp+moov), once known. */
  init(trackId: string): Uint8Array | undefined;
  /** Each track's newest media segment (under way or complete), `segment` set, a part per CMAF chunk. */
  current(): WarpSource[];
  /** Calls `listener` with each new media segment, as `current()` gives them; returns the unsubscribe. */
  onSegment(listener: (source: WarpSource) => void): () => void;
  /** Calls `listener` when the catalog comes or changes (a relay's, from upstream); absent: it never does. */
  onCatalog?(listener: () => void): () => void;
}
