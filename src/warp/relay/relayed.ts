/** What a relay holds of one relayed stream, and of each upstream copy of it. */
import type { SessionStream } from '../../webtransport/index.js';
import type { SegmentCopies } from '../segment-copies.js';
import type { GrowingSource } from '../source.js';

/** Why the relay gives up on an upstream stream (each is counted). */
export type DropReason = 'lost' | 'malformed' | 'mismatch' | 'oversize' | 'limit' | 'duplicate';

/** The relay gives up on an upstream stream. */
export class RelayDrop extends Error {
  constructor(
    readonly why: DropReason,
    detail: string,
  ) {
    super(detail);
  }
}

/** One upstream stream carrying a relayed stream (there may be two copies of one ID). */
export class Copy {
  /** Let go by the relay (stopped, or its stream lost): its reader stops. */
  dropped = false;

  constructor(
    readonly stream: SessionStream,
    readonly order: number,
    readonly seq: number,
    readonly rel: Relayed,
  ) {}
}

/** A relayed stream (by ID): the source subscribers follow, fed by one upstream copy at a time. */
export class Relayed {
  cached = false;
  /** Set while no copy feeds it and another is waited for. */
  orphanTimer: ReturnType<typeof setTimeout> | undefined;
  /** Set by `RelayedStreams` when it creates the stream. */
  copies!: SegmentCopies<Copy, DropReason>;

  constructor(
    readonly id: number,
    readonly source: GrowingSource,
    /** Arrival order, for the cache's and the stream limit's "oldest". */
    readonly seq: number,
    /** Media: the dependency list (the track); undefined for inits. */
    readonly trackKey: string | undefined,
  ) {}

  get finished(): boolean {
    return this.source.complete || this.source.aborted;
  }
}

export function stopQuietly(stream: SessionStream): void {
  try {
    stream.stopSending(0);
  } catch {
    // already gone
  }
}
