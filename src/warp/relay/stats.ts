/** What a relay counts: plain numbers, read by `WarpRelay.stats()` (and from there by the metrics). */
import type { WarpFanoutStats } from '../fanout.js';

/** Upstream sessions (`RelayUpstream`). */
export interface RelayUpstreamStats {
  upstreamConnects: number;
  /** Sessions opened again after the upstream was lost. */
  upstreamReconnects: number;
  upstreamFailures: number;
  /** Upstream sessions replaced because the catalog and inits did not come within `startupTimeoutMs`. */
  upstreamIncomplete: number;
  goaways: number;
}

/** Upstream streams, counted where they are read (`UpstreamStreamReader`) and relayed (`RelayedStreams`). */
export interface RelayStreamCounters {
  /** Upstream streams: read, relayed as new, duplicates stopped, copies that took over a segment. */
  streamsReceived: number;
  streamsForwarded: number;
  duplicates: number;
  takeovers: number;
  /** Upstream streams dropped: malformed, past `maxStreamBytes`, past `maxUpstreamStreams`, lost. */
  malformed: number;
  oversize: number;
  limited: number;
  lost: number;
  /** Segments aborted downstream (their upstream copy failed with no other copy). */
  aborted: number;
  controlStreams: number;
  bytesReceived: number;
}

export function relayStreamCounters(): RelayStreamCounters {
  return {
    streamsReceived: 0,
    streamsForwarded: 0,
    duplicates: 0,
    takeovers: 0,
    malformed: 0,
    oversize: 0,
    limited: 0,
    lost: 0,
    aborted: 0,
    controlStreams: 0,
    bytesReceived: 0,
  };
}

/** The cache (`RelayCache`). */
export interface RelayCacheStats {
  cacheBytes: number;
  cachedSegments: number;
  cachedTracks: number;
  cachedInits: number;
  cacheEvictions: number;
}

/**
 * A relay's counts: upstream, streams, cache, and downstream (the fan-out's names: `sessions`,
 * `streamsOpened`, `bytesWritten`, …, over every session so far, the closed ones included).
 */
export interface WarpRelayStats extends RelayUpstreamStats, RelayStreamCounters, RelayCacheStats, WarpFanoutStats {
  broadcast: string;
  upstreamUrl: string;
  /** Upstream sessions now (2 while a GOAWAY is followed). */
  upstreamSessions: number;
  rememberedIds: number;
  /** Upstream copies being relayed now. */
  upstreamStreamsActive: number;
  /** Media streams waiting for the catalog (with `reorder`). */
  heldForCatalog: number;
}
