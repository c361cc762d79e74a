import {
  LIVE_PREFIX,
  blockingReloadState,
  buildMediaPlaylist,
  buildMultivariantPlaylist,
  mediaPlaylistPath,
  parseDeliveryDirectives,
  parseHlsPath,
  type DeliveryDirectives,
  type HlsSegment,
  type LiveTimeline,
  type LiveTrack,
  type LiveWindow,
  type PlaylistSegmentState,
  type Segment,
} from '../media/index.js';
import type { HeldResponses } from './held-responses.js';
import { mediaType, type LiveResources } from './live-resources.js';
import { CACHE_MPD, CACHE_NONE, CACHE_SEGMENT, type OriginResponses } from './responses.js';
import type { Request, Response } from './route.js';

export interface HlsRouteOptions {
  window: LiveWindow;
  timeline: LiveTimeline;
  /** Nominal CMAF chunk duration, seconds: the least PART-TARGET. */
  chunkDuration: number;
  /** Latency the player should hold, seconds: PART-HOLD-BACK (at least three part targets). */
  targetLatency: number;
  frameRate?: number;
}

export const HLS_PLAYLIST_TYPE = 'application/vnd.apple.mpegurl';
/**
 * A plain media playlist changes with every part: a cache may share it for a second at most, after which
 * a player's blocking reload brings it to the newest part anyway.
 */
export const CACHE_HLS_PLAYLIST = 'public, max-age=1';
/**
 * Blocking reloads a server may wait for, as multiples of the target duration before giving up with 503
 * (8216bis §6.2.5.2); a blocking response is cacheable by its query for as long.
 */
export const HLS_BLOCKING_TARGET_DURATIONS = 3;

/** How blocking playlist requests ended, by outcome (`pushcast_hls_blocking_reloads_total`). */
export type HlsBlockingOutcome = 'at-once' | 'waited' | 'timeout' | 'too-far' | 'malformed' | 'refused' | 'closed';

export interface HlsStats {
  /** Blocking playlist requests waiting now. */
  heldPlaylists: number;
  /** Part requests waiting for their chunk now (also counted in the origin's held requests). */
  heldParts: number;
  blockingReloads: Partial<Record<HlsBlockingOutcome, number>>;
}

/** What a track's media playlist holds now. */
interface PlaylistView {
  segments: HlsSegment[];
  states: PlaylistSegmentState[];
  hint?: string;
}

/**
 * LL-HLS over the live window (RFC 8216, draft-pantos-hls-rfc8216bis): the multivariant playlist, a
 * media playlist per track with blocking reload, and each CMAF chunk as a partial segment. Segments and
 * init segments are the DASH routes' own: one URL space.
 */
export class HlsRoutes {
  /** Media Sequence Numbers by segment: consecutive per track even where segment numbers skip. */
  private readonly msns = new WeakMap<Segment, number>();
  private readonly outcomes = new Map<HlsBlockingOutcome, number>();
  private heldParts = 0;
  private durationsMemo?: { key: string; target: number; partTarget: number };

  constructor(
    private readonly o: HlsRouteOptions,
    private readonly responses: OriginResponses,
    private readonly resources: LiveResources,
    /** Part requests: bounded with the segment responses. */
    private readonly held: HeldResponses,
    /** Blocking playlist requests: bounded on their own. */
    private readonly heldPlaylists: HeldResponses,
  ) {}

  stats(): HlsStats {
    return {
      heldPlaylists: this.heldPlaylists.size,
      heldParts: this.heldParts,
      blockingReloads: Object.fromEntries(this.outcomes),
    };
  }

  private count(outcome: HlsBlockingOutcome): void {
    this.outcomes.set(outcome, (this.outcomes.get(outcome) ?? 0) + 1);
  }

  /** Answers `path` if it is an HLS route, returning its label for metrics; false otherwise. */
  serve(req: Request, res: Response, path: string, query: string): string | false {
    const hls = parseHlsPath(path);
    if (!hls) return false;
    if (hls.kind === 'multivariant') {
      this.serveMultivariant(req, res);
      return 'hls-multivariant';
    }
    if (hls.kind === 'playlist') {
      this.servePlaylist(req, res, hls.trackId, query);
      return 'hls-playlist';
    }
    this.servePart(req, res, hls.trackId, hls.number, hls.part);
    return 'hls-part';
  }

  private text(req: Request, res: Response, status: number, body: string, route: string, retry = false): void {
    this.responses.send(
      res,
      status,
      'text/plain',
      req.method === 'HEAD' ? '' : `${body}\n`,
      { 'Cache-Control': CACHE_NONE, ...(retry ? { 'Retry-After': '1' } : {}) },
      req,
      route,
    );
  }

  /** Tracks with an init segment and at least one part: what a playlist can name. */
  private liveTracks(): LiveTrack[] {
    return [...this.o.window.tracks.values()].filter((t) => t.init && t.list().some((s) => s.chunks.length > 0));
  }

  private serveMultivariant(req: Request, res: Response): void {
    const tracks = [...this.o.window.tracks.values()];
    if (this.o.timeline.availabilityStartTime === undefined || tracks.length === 0 || tracks.some((t) => !t.init))
      return this.text(req, res, 503, 'the live stream is starting', 'hls-multivariant', true);
    const text = buildMultivariantPlaylist({
      renditions: tracks.map((t) => ({
        ...t.info,
        // Relative to the multivariant playlist, which sits in the live folder.
        uri: mediaPlaylistPath(t.id).slice(LIVE_PREFIX.length),
      })),
      frameRate: this.o.frameRate,
    });
    this.responses.send(res, 200, HLS_PLAYLIST_TYPE, text, { 'Cache-Control': CACHE_MPD }, req, 'hls-multivariant');
  }

  /**
   * EXT-X-TARGETDURATION and PART-TARGET, the same in every media playlist (8216bis §6.2.4), computed again only
   * once some track has published since, and never lower than before (RFC 8216 §6.2.1: the target duration
   * does not change). The target duration is the nominal segment duration rounded up, or more if a published
   * segment rounds above it (RFC 8216 §4.3.3.1), which only input with irregular key frames can make. The part
   * target is the nominal chunk, or the longest part published (an audio chunk ends on a whole audio frame, a
   * little past the nominal duration), in whole milliseconds rounded up.
   */
  private durations(): { target: number; partTarget: number } {
    const tracks = [...this.o.window.tracks.values()];
    const key = tracks
      .map((t) => {
        const n = t.newest();
        return `${t.id}/${n?.number}/${n?.chunks.length}/${n?.complete}`;
      })
      .join(',');
    if (this.durationsMemo?.key === key) return this.durationsMemo;
    let target = Math.max(1, Math.ceil(this.o.timeline.segmentDuration - 1e-9), this.durationsMemo?.target ?? 0);
    let longest = Math.max(this.o.chunkDuration, this.durationsMemo?.partTarget ?? 0);
    for (const t of tracks)
      for (const s of t.list()) {
        if (s.complete) target = Math.max(target, Math.round(s.durationSeconds));
        for (const c of s.chunks) longest = Math.max(longest, c.duration / s.timescale);
      }
    this.durationsMemo = { key, target, partTarget: Math.ceil(longest * 1000 - 1e-6) / 1000 };
    return this.durationsMemo;
  }

  private targetDuration(): number {
    return this.durations().target;
  }

  private partTarget(): number {
    return this.durations().partTarget;
  }

  /** PART-HOLD-BACK: the origin's latency target, and at least three part targets (8216bis §4.4.3.8). */
  private partHoldBack(partTarget: number): number {
    return Math.max(this.o.targetLatency, 3 * partTarget);
  }

  /** A segment's Media Sequence Number: the first one seen keeps its own number, each next one adds one. */
  private msn(list: readonly Segment[], i: number): number {
    const s = list[i]!;
    const known = this.msns.get(s);
    if (known !== undefined) return known;
    const msn = i === 0 ? s.number : this.msn(list, i - 1) + 1;
    this.msns.set(s, msn);
    return msn;
  }

  private view(track: LiveTrack): PlaylistView {
    const ast = this.o.timeline.availabilityStartTime ?? 0;
    const all = track.list();
    const segments: HlsSegment[] = [];
    all.forEach((s, i) => {
      if (s.chunks.length === 0) return;
      const base = `${s.number}`;
      segments.push({
        msn: this.msn(all, i),
        uri: `${base}.m4s`,
        duration: s.durationSeconds,
        programDateTime: ast + (s.earliestPresentationTime / s.timescale) * 1000,
        complete: s.complete,
        parts: s.chunks.map((c, k) => ({
          uri: `${base}.${k}.m4s`,
          duration: c.duration / s.timescale,
          // A segment starts at a sync sample; within it, every audio chunk does, a video chunk does not.
          independent: k === 0 || track.info.kind === 'audio',
        })),
      });
    });
    const newest = track.newest();
    return {
      segments,
      states: segments.map((s) => ({ msn: s.msn, complete: s.complete, parts: s.parts.length })),
      hint: newest && !newest.complete ? `${newest.number}.${newest.chunks.length}.m4s` : undefined,
    };
  }

  private playlistText(view: PlaylistView): string {
    const partTarget = this.partTarget();
    return buildMediaPlaylist({
      targetDuration: this.targetDuration(),
      partTarget,
      partHoldBack: this.partHoldBack(partTarget),
      initUri: 'init.mp4',
      segments: view.segments,
      preloadHint: view.hint,
    });
  }

  /**
   * A media playlist; with `_HLS_msn` (and `_HLS_part`) a blocking reload (8216bis §6.2.5.2), answered the
   * moment the packager publishes what it asks for: the track's `chunk` and `segmentcompleted` events.
   */
  private servePlaylist(req: Request, res: Response, trackId: string, query: string): void {
    const track = this.o.window.track(trackId);
    if (!track) return this.text(req, res, 404, 'no such track', 'hls-playlist');
    if (!this.liveTracks().includes(track))
      return this.text(req, res, 503, 'the live stream is starting', 'hls-playlist', true);
    const directives = parseDeliveryDirectives(query);
    if ('error' in directives) {
      this.count('malformed');
      return this.text(req, res, 400, directives.error, 'hls-playlist');
    }
    const blocking = directives.msn !== undefined;
    const answer = (view: PlaylistView) =>
      this.responses.send(
        res,
        200,
        HLS_PLAYLIST_TYPE,
        this.playlistText(view),
        {
          'Cache-Control': blocking
            ? `public, max-age=${HLS_BLOCKING_TARGET_DURATIONS * this.targetDuration()}`
            : CACHE_HLS_PLAYLIST,
        },
        req,
        'hls-playlist',
      );
    const view = this.view(track);
    const state = this.state(view.states, directives);
    if (state === 'ready') {
      if (blocking) this.count('at-once');
      return answer(view);
    }
    if (state === 'too-far') {
      this.count('too-far');
      return this.text(
        req,
        res,
        400,
        'the requested segment or part is too far ahead (8216bis §6.2.5.2)',
        'hls-playlist',
      );
    }
    if (!this.heldPlaylists.hold(res)) {
      this.count('refused');
      return this.heldPlaylists.refuse(req, res, 'hls-playlist');
    }
    const check = () => {
      if (this.state(this.states(track), directives) === 'wait') return;
      done();
      this.count('waited');
      answer(this.view(track));
    };
    const offChunk = track.on('chunk', check);
    const offComplete = track.on('segmentcompleted', check);
    const giveUp = setTimeout(
      () => {
        done();
        this.count('timeout');
        this.text(req, res, 503, 'the requested part did not come in time', 'hls-playlist', true);
      },
      HLS_BLOCKING_TARGET_DURATIONS * this.targetDuration() * 1000,
    );
    const onClose = () => {
      done();
      this.count('closed');
    };
    res.on('close', onClose);
    const done = () => {
      clearTimeout(giveUp);
      offChunk();
      offComplete();
      res.off('close', onClose);
      this.heldPlaylists.release(res);
    };
  }

  private state(states: PlaylistSegmentState[], d: DeliveryDirectives): 'ready' | 'wait' | 'too-far' {
    return blockingReloadState(states, d, this.partTarget());
  }

  /** What blocking reload needs of a track's playlist, without writing its URIs. */
  private states(track: LiveTrack): PlaylistSegmentState[] {
    const all = track.list();
    const states: PlaylistSegmentState[] = [];
    all.forEach((s, i) => {
      if (s.chunks.length > 0) states.push({ msn: this.msn(all, i), complete: s.complete, parts: s.chunks.length });
    });
    return states;
  }

  /**
   * A partial segment: chunk `part` of segment `number`, immutable once it exists. The next part of the
   * growing segment (the preload hint) is held until the packager emits it, then sent whole: no byte of a
   * part goes out before all of it can (8216bis §6.2.6). Anything else that does not exist is 404.
   */
  private servePart(req: Request, res: Response, trackId: string, number: number, part: number): void {
    const track = this.o.window.track(trackId);
    const segment = track?.get(number);
    if (!track || !segment) return this.text(req, res, 404, 'no such part', 'hls-part');
    const send = () => {
      const bytes = segment.chunks[part]!.bytes;
      this.responses.serveBytes(
        req,
        res,
        bytes,
        mediaType(track),
        this.resources.partEtag(trackId, number, part),
        CACHE_SEGMENT,
        'hls-part',
      );
    };
    if (part < segment.chunks.length) return send();
    if (segment.complete || part !== segment.chunks.length) return this.text(req, res, 404, 'no such part', 'hls-part');
    if (!this.held.hold(res)) return this.held.refuse(req, res, 'hls-part');
    this.heldParts++;
    const finish = (ok: boolean, closed = false) => {
      clearTimeout(giveUp);
      offChunk();
      offEnd();
      offEvicted();
      res.off('close', onClose);
      this.held.release(res);
      this.heldParts--;
      if (closed) return;
      if (ok) send();
      else this.text(req, res, 404, 'the part did not come', 'hls-part');
    };
    const offChunk = track.on('chunk', (s) => s === segment && segment.chunks.length > part && finish(true));
    // The segment ended before this part: the hint named a part that will never be (8216bis §6.2.6).
    const offEnd = track.on('segmentcompleted', (s) => s === segment && finish(false));
    const offEvicted = track.on('segmentevicted', (s) => s === segment && finish(false));
    const giveUp = setTimeout(() => finish(false), (this.o.timeline.segmentDuration + 1) * 1000);
    const onClose = () => finish(false, true);
    res.on('close', onClose);
  }
}
