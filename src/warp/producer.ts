/**
 * The Warp producer (draft-lcurley-warp-00 §3, §9): turns the packager's live window into Warp
 * segments, the same bytes the origin serves at the same paths.
 *
 * - One segment per GoP per track (§9.1.1): the packager cuts segments at sync samples on the segment
 *   grid, and the encoder puts an I-frame at every grid boundary, so a segment is a GoP. Audio segments
 *   start on the same grid, i.e. at the video I-frames (§9.2's recommendation).
 * - Each track's init segment is a segment of its own that media segments depend on (§9.1.4).
 * - Media fragments are the packager's CMAF chunks (`--chunk-duration`, 0 = one frame each, §5.2's
 *   recommendation): each becomes one SEGMENT message as soon as it is produced, so a segment's first
 *   frames leave before it is complete.
 * - IDs are derived from the track and segment number, so that every relay and every reconnection
 *   names a segment the same way: catalog 0, init 1 + track index, segment n: (n + 1) · 64 + track index.
 */
import { EventEmitter } from 'node:events';
import type { LiveTimeline, LiveTrack, LiveWindow, Segment } from '../media/index.js';
import { CATALOG_ID, type WarpCatalog } from './catalog.js';
import type { BroadcastFeed } from './feed.js';
import { INIT_ORDER, segmentOrder, type WarpOrderPolicy } from './order.js';
import { GrowingSource, type WarpSource } from './source.js';

const MAX_TRACKS = 63;

export function initId(trackIndex: number): number {
  return 1 + trackIndex;
}

export function segmentId(trackIndex: number, number: number): number {
  return (number + 1) * 64 + trackIndex;
}

export interface WarpProducerOptions {
  broadcast: string;
  window: LiveWindow;
  timeline: LiveTimeline;
  policy: WarpOrderPolicy;
}

/** One broadcast's Warp segments, as they are produced. Emits 'segment' for each new media segment. */
export class WarpProducer extends EventEmitter<{ segment: [WarpSource] }> {
  private readonly inits = new Map<string, GrowingSource>();
  private readonly newest = new Map<string, GrowingSource>();
  private readonly unsubscribe: (() => void)[] = [];
  private readonly trackIndex = new Map<string, number>();
  private newestNumber: number | undefined;

  constructor(readonly o: WarpProducerOptions) {
    super();
    this.setMaxListeners(0);
    for (const track of o.window.tracks.values()) this.attach(track);
  }

  private attach(track: LiveTrack): void {
    const index = this.trackIndex.size;
    if (index >= MAX_TRACKS) throw new Error(`Warp: at most ${MAX_TRACKS} tracks`);
    this.trackIndex.set(track.id, index);
    const live = new Map<Segment, GrowingSource>();
    this.unsubscribe.push(
      track.on('segmentstarted', (segment) => {
        const source = this.sourceOf(track, index, segment);
        live.set(segment, source);
        this.newest.set(track.id, source);
        this.emit('segment', source);
      }),
      track.on('chunk', (segment, chunk) => live.get(segment)?.append(chunk.bytes)),
      track.on('segmentcompleted', (segment) => {
        live.get(segment)?.end(segment.truncated);
        live.delete(segment);
      }),
      track.on('segmentevicted', (segment) => {
        live.get(segment)?.end(true);
        live.delete(segment);
      }),
    );
    // The newest segment when the producer starts (under way or complete): where a viewer joining now starts.
    const current = track.newest();
    if (current) {
      const source = this.sourceOf(track, index, current);
      for (const c of current.chunks) source.append(c.bytes);
      if (current.complete) source.end(current.truncated);
      else live.set(current, source);
      this.newest.set(track.id, source);
    }
  }

  private sourceOf(track: LiveTrack, index: number, segment: Segment): GrowingSource {
    const pts = (segment.earliestPresentationTime / segment.timescale) * 1e6;
    if (this.newestNumber === undefined || segment.number > this.newestNumber) this.newestNumber = segment.number;
    const source = new GrowingSource(
      {
        kind: 'headers',
        id: segmentId(index, segment.number),
        order: segmentOrder(this.o.policy, track.info.kind, pts, [INIT_ORDER]),
        depends: [initId(index)],
        path: `/live/${track.id}/${segment.number}.m4s`,
      },
      track.id,
      false,
    );
    source.segment = segment.number;
    return source;
  }

  /** The newest segment number under way or done, over every track: a rendition switch is made after it. */
  get newestSegment(): number | undefined {
    return this.newestNumber;
  }

  /** The init segment of a track, once the packager has it. */
  init(trackId: string): WarpSource | undefined {
    const track = this.o.window.track(trackId);
    if (!track?.init) return undefined;
    const known = this.inits.get(trackId);
    if (known && known.parts[0] === track.init) return known;
    const source = new GrowingSource(
      {
        kind: 'headers',
        id: initId(this.trackIndex.get(trackId)!),
        order: INIT_ORDER,
        path: `/live/${trackId}/init.mp4`,
      },
      trackId,
      true,
    );
    source.append(track.init);
    source.end();
    this.inits.set(trackId, source);
    return source;
  }

  catalog(): WarpCatalog | undefined {
    const ast = this.o.timeline.availabilityStartTime;
    const tracks = [...this.o.window.tracks.values()];
    if (ast === undefined || tracks.some((t) => !t.init)) return undefined;
    return {
      version: 1,
      broadcast: this.o.broadcast,
      availabilityStartTime: ast,
      segmentDuration: this.o.timeline.segmentDuration,
      orderPolicy: this.o.policy,
      tracks: tracks.map((t) => ({
        id: t.id,
        kind: t.info.kind,
        codec: t.info.codec,
        timescale: t.info.timescale,
        bandwidth: t.info.bandwidth,
        width: t.info.width,
        height: t.info.height,
        sampleRate: t.info.sampleRate,
        channels: t.info.channels,
        initId: initId(this.trackIndex.get(t.id)!),
      })),
    };
  }

  /** The catalog as a stream's source: HEADERS id 0, order before everything, one APP message. */
  catalogSource(): WarpSource | undefined {
    const catalog = this.catalog();
    if (!catalog) return undefined;
    return catalogSource(catalog);
  }

  /** What a session joining now starts with: each track's newest segment (the newest GoP). */
  current(): WarpSource[] {
    return [...this.newest.values()].filter((s) => !s.aborted);
  }

  /** The broadcast for another protocol (src/moq): the same segments, a part per CMAF chunk already. */
  feed(): BroadcastFeed {
    return {
      name: this.o.broadcast,
      catalog: () => this.catalog(),
      init: (trackId) => this.o.window.track(trackId)?.init,
      current: () => this.current(),
      onSegment: (listener) => {
        this.on('segment', listener);
        return () => this.off('segment', listener);
      },
    };
  }

  close(): void {
    for (const off of this.unsubscribe.splice(0)) off();
  }
}

/** A catalog stream (APP message) as a source. */
export function catalogSource(catalog: WarpCatalog): WarpSource {
  const source = new GrowingSource({ kind: 'headers', id: CATALOG_ID, order: INIT_ORDER - 1 }, '', true, 'app');
  source.append(new TextEncoder().encode(JSON.stringify(catalog)));
  source.end();
  return source;
}
