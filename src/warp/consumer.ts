/**
 * The Warp consumer (draft-lcurley-warp-00 §3.3, §3.4): takes segments in any order, on streams that
 * arrive in parallel, and hands each track's media to a sink in decode order.
 *
 * - A segment's data is passed on as it arrives when it is the track's next one in decode order (its
 *   start time is read from the `tfdt` of its first fragment, ISO/IEC 14496-12 §8.8.12); a segment that
 *   arrives early is buffered until the ones before it are done.
 * - Dependencies (§3.3): a segment waits until every segment it depends on was delivered (the init).
 * - **Skipping** (§3.4): a later segment is due to play at its start time on the catalog's timeline
 *   (`availabilityStartTime` + start) plus the buffer duration (the viewer's latency target). Once that
 *   moment comes, whatever of the segments before it has not arrived will not be played: the one under
 *   way is cut (STOP_SENDING for its stream, §4.4), missing ones are skipped, and the later one goes next.
 *   Until then the earlier segment keeps every frame it can still get. (A clock far behind the server's
 *   cannot hold a track forever: a later segment waits at most the buffer duration from its arrival.)
 * - Segments older than the one a track is playing, or than what it played, are stopped at once: of no use.
 * - **A second copy** of a segment under way (the new session's, after a GOAWAY, §5.4) is kept on standby:
 *   if the first copy's stream fails before its end (the old session closed), the segment goes on from
 *   the standby at the byte where the first stopped; once the first ends whole, the standby is stopped
 *   (`SegmentCopies`).
 * - **Renditions** (a switch, src/warp/select.ts): a kind's tracks are renditions of one another and share one
 *   lane — one decode order, one timeline — so the new rendition's first segment follows the old one's last.
 *   A track's init is handed to the sink just before its track's first segment on the lane, i.e. at the
 *   switch point (`switches` counts the changes); a rendition's segments wait for its init (§3.3).
 * - `arrived` tells how each segment came (bytes, over what time, how late against its end on the
 *   timeline): what a rendition chooser measures (src/warp/abr.ts).
 * - The checks of the timeline run on every arrival and every `CHECK_INTERVAL_MS` (`timers`).
 * Isomorphic: the browser player and the Node client use it alike.
 */
import { readFragments } from '../media/index.js';
import { WarpStreamReader, concatBytes, type WarpHeaders } from '../wire/index.js';
import { CATALOG_ID, parseCatalog, type WarpCatalog, type WarpCatalogTrack } from './catalog.js';
import { SegmentCopies } from './segment-copies.js';

/** A stream as the consumer reads it: chunks, and a way to ask the sender to stop (STOP_SENDING). */
export interface IncomingWarpStream extends AsyncIterable<Uint8Array> {
  stop(code: number): void;
}

export interface SegmentRef {
  id: number | undefined;
  track: string;
  path: string | undefined;
  order: number;
  /** Decode time of the first sample, track timescale. */
  decodeTime: number;
}

export interface WarpConsumerSink {
  catalog?(catalog: WarpCatalog): void;
  /** A track's init segment (once, before its media). */
  init?(track: WarpCatalogTrack, bytes: Uint8Array): void;
  /** Media of `segment`, in decode order per track, as it arrives. */
  data?(segment: SegmentRef, bytes: Uint8Array): void;
  /** A segment handed on whole (`complete`), or cut short (its stream failed or it was skipped midway). */
  end?(segment: SegmentRef, complete: boolean): void;
  /** A segment given up on: `missing` = never seen (only known from a gap in decode times). */
  skip?(track: string, decodeTime: number, why: 'late' | 'stalled' | 'missing' | 'old'): void;
  goaway?(url: string): void;
  /** How a segment came, once its stream ended (whole or not): in arrival terms, whatever its decode order. */
  arrived?(segment: SegmentRef, arrival: SegmentArrival): void;
  /** Bytes of a segment so far, as they come: `elapsedMs` since its start on the timeline. */
  progress?(segment: SegmentRef, bytes: number, elapsedMs: number): void;
}

export interface SegmentArrival {
  bytes: number;
  /** Its duration on the timeline (the catalog's segment duration), ms. */
  durationMs: number;
  /** From its first byte to its last, ms. */
  spanMs: number;
  /** Its last byte's arrival after its end on the timeline (availabilityStartTime + end), ms. */
  lagMs: number;
  complete: boolean;
  /**
   * Its first fragment (the key frame, the largest, sent at once when made): its bytes, and the time from
   * the stream's first byte to that fragment's last. Bytes ÷ time is the path's rate at that moment when
   * nothing else shared it, whatever the rendition's bitrate; 0 ms when it came in one read.
   */
  headBytes: number;
  headMs: number;
}

export interface WarpConsumerOptions {
  /** The buffer duration (§3.4), ms: a segment is due to play this long after its start on the catalog's timeline. */
  bufferMs: number;
  /** Wall clock, ms since the epoch, in step with the server's (the catalog's timeline is on its clock). */
  now?: () => number;
  /** Bytes buffered per early segment and in all; past the total, the newest waiting segment is dropped. */
  maxBufferedBytes?: number;
  /** The interval timer of the timeline checks; default the global one (tests pass a fake clock's). */
  timers?: WarpConsumerTimers;
}

export interface WarpConsumerTimers {
  setInterval(callback: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

const defaultTimers: WarpConsumerTimers = {
  setInterval: (callback, ms) => setInterval(callback, ms),
  clearInterval: (handle) => clearInterval(handle as ReturnType<typeof setInterval>),
};

export interface WarpConsumerStats {
  streams: number;
  segmentsDelivered: number;
  segmentsSkipped: number;
  segmentsStopped: number;
  /** Copies of a segment already had (e.g. from the new session after a GOAWAY). */
  duplicates: number;
  /** Segments continued from a standby copy after the first copy's stream failed. */
  takeovers: number;
  bufferedBytes: number;
  malformed: number;
  /** Changes of the track a lane plays (rendition switches). */
  switches: number;
}

interface Pending {
  ref: SegmentRef;
  headers: WarpHeaders;
  /** Bytes waiting to be handed to the sink (before the segment is current). */
  parts: Uint8Array[];
  bytes: number;
  done: boolean;
  failed: boolean;
  /** When it became ready to play next (its first fragment known). */
  since: number;
  /** Its first fragment's bytes, and the time from the stream's first byte to its last (SegmentArrival). */
  headBytes: number;
  headMs: number;
  /** Being handed to the sink. */
  current: boolean;
  /** The streams carrying it: one feeds it, a second copy may wait on standby. */
  copies: SegmentCopies<IncomingWarpStream>;
  /** Its start on the lane's timeline, seconds (decode time ÷ timescale). */
  start: number;
  received: number;
  lastAt: number;
  reported: boolean;
}

interface TrackState {
  info: WarpCatalogTrack;
  /** The init segment, once it arrived. */
  init?: Uint8Array;
}

/** One kind's tracks (its renditions): one decode order. */
interface Lane {
  kind: 'video' | 'audio';
  /** Time (s) the next segment should start at, once a segment was played. */
  playedUntil: number | undefined;
  /** The number in the path of the segment played last (`…/<number>.m4s`), if it had one. */
  playedNumber: number | undefined;
  current: Pending | undefined;
  waiting: Pending[];
  /** The track whose init the sink was given last. */
  initTrack: string | undefined;
}

/** The segment number at the end of a path, `/live/<track>/<number>.m4s`. */
function pathNumber(path: string | undefined): number | undefined {
  const m = path === undefined ? null : /\/(\d+)\.m4s$/.exec(path);
  return m ? Number(m[1]) : undefined;
}

/**
 * Whether a segment is the one after the lane's last by its number: segments passed through from an
 * encoder last from one of its key frames to the next, not the catalog's segment duration, and their
 * numbers follow one another, so that one longer or shorter than the duration is neither a gap nor old.
 */
function follows(lane: Lane, headers: WarpHeaders): boolean {
  const number = pathNumber(headers.path);
  return number !== undefined && lane.playedNumber !== undefined && number === lane.playedNumber + 1;
}

const STOP_CODE = 0;
const DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024 * 1024;
/** How often the timeline is checked besides on arrivals: a due segment is cut or skipped this late at most. */
export const CHECK_INTERVAL_MS = 50;

function stopQuietly(stream: IncomingWarpStream): void {
  try {
    stream.stop(STOP_CODE);
  } catch {
    // already gone
  }
}
/**
 * An earlier segment is given up this long before the later one is due: the later one's first fragment
 * needs that long to reach the picture (append, decode).
 */
export const SWITCH_MARGIN_MS = 100;

export class WarpConsumer {
  private catalogValue: WarpCatalog | undefined;
  private readonly tracks = new Map<string, TrackState>();
  private readonly lanes = new Map<'video' | 'audio', Lane>();
  private readonly byInitId = new Map<number, string>();
  private readonly delivered = new Set<number>();
  /** Segments under way or waiting, by ID: a copy from a second session (GOAWAY, §5.4) is not needed. */
  private readonly active = new Map<number, Pending>();
  /** Streams whose HEADERS came before the catalog (relays may reorder): they wait for it. */
  private readonly beforeCatalog: (() => void)[] = [];
  private readonly counters = {
    streams: 0,
    segmentsDelivered: 0,
    segmentsSkipped: 0,
    segmentsStopped: 0,
    duplicates: 0,
    takeovers: 0,
    malformed: 0,
    switches: 0,
  };
  private readonly now: () => number;
  private readonly timers: WarpConsumerTimers;
  private timer: unknown;

  constructor(
    private readonly sink: WarpConsumerSink,
    private o: WarpConsumerOptions,
  ) {
    this.now = o.now ?? (() => Date.now());
    this.timers = o.timers ?? defaultTimers;
    this.timer = this.timers.setInterval(() => this.checkAll(), CHECK_INTERVAL_MS);
  }

  get catalog(): WarpCatalog | undefined {
    return this.catalogValue;
  }

  /** The viewer changed the latency target. */
  setBufferMs(ms: number): void {
    this.o = { ...this.o, bufferMs: ms };
  }

  stats(): WarpConsumerStats {
    let buffered = 0;
    for (const l of this.lanes.values()) for (const p of l.waiting) buffered += p.bytes;
    return { ...this.counters, bufferedBytes: buffered };
  }

  close(): void {
    if (this.timer !== undefined) this.timers.clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Reads one stream to its end. Never throws: a malformed stream is stopped and counted. */
  async addStream(stream: IncomingWarpStream): Promise<void> {
    this.counters.streams++;
    const reader = new WarpStreamReader();
    let pending: Pending | undefined;
    let app: Uint8Array[] = [];
    let headers: WarpHeaders | undefined;
    let first: Uint8Array[] = [];
    let firstByteAt: number | undefined;
    try {
      for await (const chunk of stream) {
        firstByteAt ??= this.now();
        reader.push(chunk);
        for (let e; (e = reader.next()) !== undefined; ) {
          if (e.kind === 'headers') {
            headers = e;
          } else if (e.kind === 'goaway') {
            this.sink.goaway?.(e.url);
          } else if (e.kind === 'select') {
            // a viewer's message: not one a sender sends
          } else if (e.kind === 'app-data') {
            app.push(e.data.slice());
            if (e.end && headers?.id === CATALOG_ID) {
              this.setCatalog(parseCatalog(concatBytes(app)));
              app = [];
            }
          } else if (headers) {
            // segment-data. A stream without dependencies carries an init segment (§9.1.4): kept whole.
            if (headers.depends === undefined) {
              first.push(e.data.slice());
              if (e.end) await this.initArrived(headers, concatBytes(first));
              continue;
            }
            if (!pending) {
              first.push(e.data.slice());
              if (!e.end) continue;
              const head = concatBytes(first);
              first = [];
              const headMs = this.now() - (firstByteAt ?? this.now());
              await this.catalogKnown();
              pending = this.open(headers, head, stream, headMs);
              if (!pending) return stream.stop(STOP_CODE);
              continue;
            }
            if (!pending.copies.has(stream)) return; // cut, completed by another copy, or let go
            pending.copies.receive(stream, e.data.slice());
          }
        }
      }
      reader.end();
      pending?.copies.end(stream);
    } catch {
      if (pending) pending.copies.drop(stream, 'broken');
      else this.counters.malformed++;
      stopQuietly(stream);
    }
  }

  /**
   * The catalog, or a new one (a rendition added or removed upstream): tracks it adds get a state of
   * their own, tracks it no longer lists are let go (their segments stopped); the tracks it keeps go on
   * as they were. The same catalog again (a second session's) changes nothing.
   */
  private setCatalog(catalog: WarpCatalog): void {
    const previous = this.catalogValue;
    if (previous && JSON.stringify(previous.tracks) === JSON.stringify(catalog.tracks)) return;
    this.catalogValue = catalog;
    const listed = new Set(catalog.tracks.map((t) => t.id));
    for (const [id, track] of this.tracks) {
      if (listed.has(id)) continue;
      // Its segments in its kind's lane are let go; the lane goes on with the kind's other tracks.
      const lane = this.lanes.get(track.info.kind);
      if (lane) {
        const current = lane.current?.ref.track === id ? lane.current : undefined;
        if (current) {
          this.sink.end?.(current.ref, false);
          lane.current = undefined;
        }
        const gone = lane.waiting.filter((p) => p.ref.track === id);
        lane.waiting = lane.waiting.filter((p) => p.ref.track !== id);
        for (const p of [...(current ? [current] : []), ...gone]) {
          p.failed = true;
          this.forget(p);
        }
      }
      this.tracks.delete(id);
      this.byInitId.delete(track.info.initId);
    }
    for (const t of catalog.tracks) {
      if (this.tracks.has(t.id)) continue;
      this.tracks.set(t.id, { info: t });
      this.byInitId.set(t.initId, t.id);
      if (!this.lanes.has(t.kind))
        this.lanes.set(t.kind, {
          kind: t.kind,
          playedUntil: undefined,
          playedNumber: undefined,
          current: undefined,
          waiting: [],
          initTrack: undefined,
        });
    }
    this.sink.catalog?.(catalog);
    for (const resolve of this.beforeCatalog.splice(0)) resolve();
  }

  private catalogKnown(): Promise<void> {
    return this.catalogValue ? Promise.resolve() : new Promise<void>((resolve) => this.beforeCatalog.push(resolve));
  }

  private async initArrived(headers: WarpHeaders, bytes: Uint8Array): Promise<void> {
    await this.catalogKnown();
    const trackId = headers.id === undefined ? undefined : this.byInitId.get(headers.id);
    if (trackId === undefined) this.counters.malformed++;
    else this.setInit(trackId, bytes);
  }

  private setInit(trackId: string, bytes: Uint8Array): void {
    const track = this.tracks.get(trackId);
    if (!track || track.init) return;
    track.init = bytes;
    this.check(this.lanes.get(track.info.kind)!);
  }

  /** A segment whose first fragment arrived: its track and decode time. */
  private open(
    headers: WarpHeaders,
    head: Uint8Array,
    stream: IncomingWarpStream,
    headMs: number,
  ): Pending | undefined {
    const trackId = headers.depends?.map((d) => this.byInitId.get(d)).find((t) => t !== undefined);
    const track = trackId === undefined ? undefined : this.tracks.get(trackId);
    const lane = track && this.lanes.get(track.info.kind);
    if (!track || !lane) {
      this.counters.malformed++;
      return undefined;
    }
    let decodeTime: number;
    try {
      const fragment = readFragments(head)[0];
      decodeTime = fragment?.trackFragments[0]?.baseMediaDecodeTime ?? NaN;
    } catch {
      decodeTime = NaN;
    }
    if (!Number.isFinite(decodeTime)) {
      this.counters.malformed++;
      return undefined;
    }
    if (headers.id !== undefined && (this.delivered.has(headers.id) || this.active.has(headers.id))) {
      this.counters.duplicates++;
      // §5.4: kept on standby while the first copy lasts.
      const first = this.active.get(headers.id);
      if (first?.copies.attach(stream) !== 'standby') return undefined;
      first.copies.receive(stream, head);
      return first;
    }
    const ref: SegmentRef = {
      id: headers.id,
      track: track.info.id,
      path: headers.path,
      order: headers.order ?? 0,
      decodeTime,
    };
    // Older than the segment the lane is playing, or than what it played: of no use (§3.4).
    const start = decodeTime / track.info.timescale;
    const playing = lane.current?.start;
    if (
      (playing !== undefined && start < playing) ||
      (lane.playedUntil !== undefined && start < lane.playedUntil - this.tolerance() && !follows(lane, headers))
    ) {
      this.counters.segmentsStopped++;
      this.sink.skip?.(track.info.id, decodeTime, 'old');
      return undefined;
    }
    const p: Pending = {
      ref,
      headers,
      parts: [],
      bytes: 0,
      done: false,
      failed: false,
      since: this.now(),
      headBytes: head.length,
      headMs,
      current: false,
      start,
      received: 0,
      lastAt: this.now(),
      reported: false,
      copies: new SegmentCopies<IncomingWarpStream>({
        deliver: (bytes) => this.append(p, bytes),
        complete: () => this.finish(p, true),
        orphaned: () => {
          p.copies.stop(); // no later copy is waited for: the segment ends cut
          this.finish(p, false);
        },
        stopCopy: stopQuietly,
        tookOver: () => this.counters.takeovers++,
        // A standby copy is bounded like a waiting segment; past the bound it is let go.
        maxStandbyBytes: (this.o.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES) / 4,
      }),
    };
    p.copies.attach(stream);
    p.copies.receive(stream, head);
    if (ref.id !== undefined) this.active.set(ref.id, p);
    lane.waiting.push(p);
    lane.waiting.sort((a, b) => a.start - b.start);
    this.bound();
    this.check(lane);
    return p;
  }

  /** The segment's next bytes: to the sink if it is playing, else buffered. */
  private append(p: Pending, bytes: Uint8Array): void {
    p.received += bytes.length;
    p.lastAt = this.now();
    this.sink.progress?.(
      p.ref,
      p.received,
      p.lastAt - ((this.catalogValue?.availabilityStartTime ?? 0) + p.start * 1000),
    );
    if (p.current) {
      this.sink.data?.(p.ref, bytes);
      return;
    }
    p.parts.push(bytes);
    p.bytes += bytes.length;
    this.bound();
  }

  private finish(p: Pending, complete: boolean): void {
    if (p.done || p.failed) return; // already ended, or cut by the consumer
    p.done = true;
    p.failed = !complete;
    this.report(p, complete);
    const lane = this.laneOf(p);
    if (lane) this.check(lane);
  }

  private laneOf(p: Pending): Lane | undefined {
    const kind = this.tracks.get(p.ref.track)?.info.kind;
    return kind && this.lanes.get(kind);
  }

  /** Once per segment: how it came (for a rendition chooser). */
  private report(p: Pending, complete: boolean): void {
    if (p.reported) return;
    p.reported = true;
    const duration = this.segmentLength();
    const end = (this.catalogValue?.availabilityStartTime ?? 0) + (p.start + duration) * 1000;
    this.sink.arrived?.(p.ref, {
      bytes: p.received,
      durationMs: duration * 1000,
      spanMs: p.lastAt - p.since,
      lagMs: p.lastAt - end,
      complete,
      headBytes: p.headBytes,
      headMs: p.headMs,
    });
  }

  /** Half a segment: how far start times may be from the grid and still be "the next one", s. */
  private tolerance(): number {
    return this.segmentLength() / 2;
  }

  /** The catalog's segment duration, s. */
  private segmentLength(): number {
    return this.catalogValue?.segmentDuration ?? 2;
  }

  /**
   * When the segments before `later` are given up (§3.4): `SWITCH_MARGIN_MS` before `later` is due to
   * play — its start on the catalog's timeline plus the buffer — and at the latest a buffer duration
   * after it arrived, whatever the clocks say.
   */
  private deadline(later: Pending): number {
    const start = (this.catalogValue?.availabilityStartTime ?? 0) + later.start * 1000;
    return Math.min(start + this.o.bufferMs - SWITCH_MARGIN_MS, later.since + this.o.bufferMs);
  }

  private checkAll(): void {
    for (const l of this.lanes.values()) this.check(l);
  }

  /** Moves a lane on: ends a finished current segment, skips what is too late, starts the next. */
  private check(lane: Lane): void {
    const now = this.now();
    for (;;) {
      const current = lane.current;
      if (current) {
        if (current.done) {
          this.sink.end?.(current.ref, !current.failed);
          this.forget(current);
          if (!current.failed) this.delivered.add(current.ref.id ?? -1);
          lane.playedUntil = current.start + this.segmentLength();
          lane.current = undefined;
          continue;
        }
        // The next segment is due to play (§3.4): what has not come of this one will not be shown.
        const later = lane.waiting[0];
        if (later && now >= this.deadline(later)) {
          current.failed = true;
          current.current = false;
          this.report(current, false);
          this.forget(current);
          this.counters.segmentsSkipped++;
          this.sink.skip?.(current.ref.track, current.ref.decodeTime, 'stalled');
          this.sink.end?.(current.ref, false);
          lane.playedUntil = current.start + this.segmentLength();
          lane.current = undefined;
          continue;
        }
        return;
      }
      const next = lane.waiting[0];
      if (!next) return;
      const track = this.tracks.get(next.ref.track)!;
      // §3.3: a segment waits for what it depends on (its track's init).
      if (!track.init) return;
      const expected = lane.playedUntil;
      const inSequence =
        expected === undefined || Math.abs(next.start - expected) <= this.tolerance() || follows(lane, next.headers);
      if (!inSequence) {
        // A gap: the segment(s) before `next` have not arrived. They may, until `next` is due (§3.4).
        if (now < this.deadline(next)) return;
        const missing = Math.round((next.start - expected!) / this.segmentLength());
        for (let i = 0; i < missing; i++)
          this.sink.skip?.(
            next.ref.track,
            Math.round((expected! + i * this.segmentLength()) * track.info.timescale),
            'missing',
          );
        this.counters.segmentsSkipped += Math.max(0, missing);
      }
      lane.waiting.shift();
      if (lane.initTrack !== track.info.id) {
        // The switch point: the new rendition's init goes right before its first media.
        if (lane.initTrack !== undefined) this.counters.switches++;
        lane.initTrack = track.info.id;
        this.sink.init?.(track.info, track.init);
      }
      lane.current = next;
      lane.playedNumber = pathNumber(next.headers.path);
      next.current = true;
      this.counters.segmentsDelivered++;
      for (const part of next.parts) this.sink.data?.(next.ref, part);
      next.parts = [];
      next.bytes = 0;
      if (!next.done) return;
    }
  }

  private forget(p: Pending): void {
    if (p.ref.id !== undefined && this.active.get(p.ref.id) === p) this.active.delete(p.ref.id);
    p.copies.stop(); // given up: its streams are stopped (a segment that ended whole has none left)
    if (this.delivered.size > 4096) this.delivered.delete(this.delivered.values().next().value!);
  }

  /** Past the memory bound, the newest waiting segment goes (it is the one least likely to be played soon). */
  private bound(): void {
    const max = this.o.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    for (;;) {
      let total = 0;
      let newest: { lane: Lane; p: Pending } | undefined;
      for (const lane of this.lanes.values()) {
        for (const p of lane.waiting) {
          total += p.bytes;
          if (!newest || p.start > newest.p.start) newest = { lane, p };
        }
      }
      if (total <= max || !newest) return;
      newest.lane.waiting.splice(newest.lane.waiting.indexOf(newest.p), 1);
      newest.p.failed = true;
      this.report(newest.p, false);
      this.forget(newest.p);
      this.counters.segmentsStopped++;
      this.sink.skip?.(newest.p.ref.track, newest.p.ref.decodeTime, 'late');
    }
  }
}
