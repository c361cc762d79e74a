/**
 * Rendition switching in a Warp session (draft-lcurley-warp-00 §2.2, §8.1: a lower bitrate under
 * congestion), pushcast's design (docs/warp-wire.md, "Rendition switching"):
 *
 * - **SELECT** (the viewer's request): a unidirectional stream the viewer opens, HEADERS without an ID,
 *   then one SELECT message (src/wire/warp.ts): a track ID and a sequence number. The track replaces the
 *   session's track of the same kind; `seq` grows with each request, so that of two requests whose
 *   streams overtake each other the newer one wins.
 * - **The switch** (the sender): at the next segment boundary. Renditions are cut at the same instants
 *   (one GoP per segment, the same segment numbers), so the sender keeps sending the old rendition up to
 *   the segment under way and the new one from the next segment number on; the new rendition's init is
 *   sent at once (order below every segment), and its segments depend on it (§3.3), as always.
 *
 * `TrackSelection` is that rule for one session. Isomorphic.
 */
import { concatBytes, encodeWarpMessage, type WarpSelect } from '../wire/index.js';
import type { WarpCatalog, WarpCatalogTrack } from './catalog.js';

/** A SELECT stream's bytes are few; a longer one is refused. */
export const MAX_SELECT_STREAM_BYTES = 1024;

/** A whole SELECT stream: HEADERS (no ID), then the SELECT message (src/wire/warp.ts). */
export function encodeSelectStream(seq: number, track: string): Uint8Array {
  return concatBytes([encodeWarpMessage({ kind: 'headers' }), encodeWarpMessage({ kind: 'select', seq, track })]);
}

/** A kind's rendition with the highest bandwidth. */
export function bestTrack(catalog: WarpCatalog, kind: 'video' | 'audio'): WarpCatalogTrack | undefined {
  return catalog.tracks.filter((t) => t.kind === kind).sort((a, b) => b.bandwidth - a.bandwidth)[0];
}

/**
 * The tracks one session receives, and its switches. Per kind one track (a kind's tracks are
 * renditions of one another in pushcast's catalogs), except when the session asked for several of a
 * kind by name (`tracks=`): then those, and a SELECT of that kind replaces them all.
 */
export class TrackSelection {
  private readonly chosen = new Map<'video' | 'audio', Set<string>>();
  /** Per kind, a switch not yet made: the new track from segment `at` on. */
  private readonly pending = new Map<'video' | 'audio', { track: string; at: number }>();
  private lastSeq = -1;
  /** Switches made (the first segment of the new track was let through). */
  switches = 0;

  constructor(
    private catalog: WarpCatalog,
    initial: readonly string[],
  ) {
    for (const id of initial) {
      const t = this.track(id);
      if (!t) continue;
      const set = this.chosen.get(t.kind) ?? new Set();
      set.add(id);
      this.chosen.set(t.kind, set);
    }
  }

  /**
   * A new catalog (a rendition added or removed): tracks it no longer lists are dropped, and a kind left
   * with none goes on with its best listed rendition (the highest bandwidth), from the next segment.
   */
  setCatalog(catalog: WarpCatalog): void {
    this.catalog = catalog;
    for (const [kind, p] of this.pending) if (!this.track(p.track)) this.pending.delete(kind);
    for (const [kind, set] of this.chosen) {
      for (const id of set) if (!this.track(id)) set.delete(id);
      if (set.size > 0 || this.pending.has(kind)) continue;
      const best = bestTrack(catalog, kind);
      if (best) set.add(best.id);
      else this.chosen.delete(kind);
    }
  }

  private track(id: string): WarpCatalogTrack | undefined {
    return this.catalog.tracks.find((t) => t.id === id);
  }

  /** The tracks the session receives now, and the ones it is switching to. */
  tracks(): string[] {
    const out = new Set<string>();
    for (const set of this.chosen.values()) for (const id of set) out.add(id);
    for (const p of this.pending.values()) out.add(p.track);
    return [...out];
  }

  /** The track the session will be on once the switches under way are made (the newest choice). */
  target(kind: 'video' | 'audio'): string | undefined {
    return this.pending.get(kind)?.track ?? [...(this.chosen.get(kind) ?? [])][0];
  }

  /** Summed bandwidth of the tracks the session receives (the larger of before and after a switch), bit/s. */
  bitsPerSecond(): number {
    return this.tracks().reduce((n, id) => n + (this.track(id)?.bandwidth ?? 0), 0);
  }

  /**
   * A SELECT: `newestSegment` is the newest segment number under way in the broadcast, so the switch is
   * made from the one after it. Returns the new track when a switch begins (its init is then sent), or
   * undefined: an unknown track, an older request, or the track already received.
   */
  select(request: WarpSelect, newestSegment: number | undefined): WarpCatalogTrack | undefined {
    if (request.seq <= this.lastSeq) return undefined;
    const t = this.track(request.track);
    if (!t) return undefined;
    this.lastSeq = request.seq;
    const now = this.chosen.get(t.kind);
    if (now?.size === 1 && now.has(t.id)) {
      this.pending.delete(t.kind); // back to the track under way: the switch is called off
      return undefined;
    }
    const earlier = this.pending.get(t.kind);
    this.pending.set(t.kind, { track: t.id, at: earlier?.at ?? (newestSegment ?? -1) + 1 });
    return t;
  }

  /** Whether a segment of `track` (number `segment` when known) goes to this session; makes a switch due. */
  wants(track: string, segment: number | undefined): boolean {
    const t = this.track(track);
    if (!t) return false;
    const p = this.pending.get(t.kind);
    if (p && segment !== undefined && segment >= p.at) {
      if (track !== p.track) return false;
      this.chosen.set(t.kind, new Set([p.track]));
      this.pending.delete(t.kind);
      this.switches++;
      return true;
    }
    return this.chosen.get(t.kind)?.has(track) ?? false;
  }
}
