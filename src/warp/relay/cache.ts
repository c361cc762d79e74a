/**
 * What a relay keeps for late joiners (draft-lcurley-warp-00 §5.2, §9.1.4): the catalog, every init
 * segment (streams without dependencies), and per track (per dependency list: the init ID) the newest
 * `segmentsPerTrack` segment streams, so that a viewer who joins starts at the newest GoP.
 *
 * Bounded: in bytes (past the bound the oldest cached segment goes first), in tracks (the least recently
 * updated one goes), in inits (by count, oldest first). A stream still growing counts its bytes as they come.
 */
import type { GrowingSource } from '../source.js';
import type { Relayed } from './relayed.js';
import type { RelayCacheStats } from './stats.js';

export interface RelayCacheOptions {
  /** Bytes of cached streams (catalog, inits, newest segments). Default 64 MiB. */
  maxCacheBytes?: number;
  /** Newest segment streams cached per track. Default 1. */
  cacheSegmentsPerTrack?: number;
  /** Tracks cached; past it the least recently updated one goes. Default 64. */
  maxTracks?: number;
  /** Init streams cached. Default 64. */
  maxInits?: number;
}

export class RelayCache {
  private catalogSource: GrowingSource | undefined;
  private readonly initStreams = new Map<number, Relayed>();
  private readonly tracks = new Map<string, Relayed[]>();
  private bytes = 0;
  private evictions = 0;
  private readonly maxBytes: number;
  private readonly perTrack: number;

  /** `uncached` hears of every stream that leaves the cache. */
  constructor(
    private readonly o: RelayCacheOptions,
    private readonly uncached: (rel: Relayed) => void,
  ) {
    this.maxBytes = o.maxCacheBytes ?? 64 * 1024 * 1024;
    this.perTrack = Math.max(1, o.cacheSegmentsPerTrack ?? 1);
  }

  /** The catalog as the relay forwards it. */
  get catalog(): GrowingSource | undefined {
    return this.catalogSource;
  }

  set catalog(source: GrowingSource) {
    if (this.catalogSource) this.bytes -= this.catalogSource.byteLength;
    this.catalogSource = source;
    this.bytes += source.byteLength;
  }

  init(id: number): Relayed | undefined {
    return this.initStreams.get(id);
  }

  inits(): IterableIterator<Relayed> {
    return this.initStreams.values();
  }

  /** Cached media segments, oldest first. */
  segments(): Relayed[] {
    return [...this.tracks.values()].flat().sort((a, b) => a.seq - b.seq);
  }

  add(rel: Relayed): void {
    rel.cached = true;
    this.bytes += rel.source.byteLength;
    if (rel.trackKey === undefined) {
      const previous = this.initStreams.get(rel.id);
      if (previous && previous !== rel) this.remove(previous, false);
      this.initStreams.set(rel.id, rel);
      const max = this.o.maxInits ?? 64;
      while (this.initStreams.size > max) this.remove(this.initStreams.values().next().value!, true);
    } else {
      const list = this.tracks.get(rel.trackKey) ?? [];
      this.tracks.delete(rel.trackKey); // most recently updated last
      this.tracks.set(rel.trackKey, list);
      list.push(rel);
      while (list.length > this.perTrack) this.remove(list[0]!, true);
      const max = this.o.maxTracks ?? 64;
      while (this.tracks.size > max) {
        const [key, oldest] = this.tracks.entries().next().value!;
        for (const r of [...oldest]) this.remove(r, true);
        this.tracks.delete(key);
      }
    }
    this.enforceBytes();
  }

  /** A cached stream grew by `n` bytes. */
  grew(rel: Relayed, n: number): void {
    if (!rel.cached) return;
    this.bytes += n;
    this.enforceBytes();
  }

  /** `rel` leaves the cache; `evicted` when a bound made it go. */
  remove(rel: Relayed, evicted: boolean): void {
    if (!rel.cached) return;
    rel.cached = false;
    this.bytes -= rel.source.byteLength;
    if (evicted) this.evictions++;
    if (rel.trackKey === undefined) {
      if (this.initStreams.get(rel.id) === rel) this.initStreams.delete(rel.id);
    } else {
      const list = this.tracks.get(rel.trackKey);
      const i = list?.indexOf(rel) ?? -1;
      if (i >= 0) list!.splice(i, 1);
      if (list && list.length === 0) this.tracks.delete(rel.trackKey);
    }
    this.uncached(rel);
  }

  /** Past the byte bound, the oldest cached segment goes first (then the next oldest…). */
  private enforceBytes(): void {
    while (this.bytes > this.maxBytes) {
      let oldest: Relayed | undefined;
      for (const list of this.tracks.values()) if (list[0] && (!oldest || list[0].seq < oldest.seq)) oldest = list[0];
      if (!oldest) return;
      this.remove(oldest, true);
    }
  }

  stats(): RelayCacheStats {
    return {
      cacheBytes: this.bytes,
      cachedSegments: [...this.tracks.values()].reduce((n, l) => n + l.length, 0),
      cachedTracks: this.tracks.size,
      cachedInits: this.initStreams.size,
      cacheEvictions: this.evictions,
    };
  }
}
