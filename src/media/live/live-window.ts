import type { Segment, ChunkInfo, TrackInfo } from './segment.js';

/** What a live track tells its subscribers, in the order it happens. */
export interface LiveTrackEvents {
  init: (track: LiveTrack) => void;
  segmentstarted: (segment: Segment) => void;
  chunk: (segment: Segment, chunk: ChunkInfo) => void;
  segmentcompleted: (segment: Segment) => void;
  segmentevicted: (segment: Segment) => void;
}

type Listeners = { [K in keyof LiveTrackEvents]: Set<LiveTrackEvents[K]> };

export interface LiveWindowOptions {
  /** Time-shift buffer depth in seconds (MPD@timeShiftBufferDepth): completed segments older than this are dropped. */
  timeShiftBufferDepth: number;
  /** Hard cap on segments kept per track whatever their durations, so a stream of tiny segments cannot grow memory. */
  maxSegmentsPerTrack?: number;
}

/**
 * One track's share of the live window: its init segment and the segments still inside the time-shift
 * buffer. The packager writes; every delivery mode reads and subscribes.
 */
export class LiveTrack {
  init?: Uint8Array;
  private readonly segments = new Map<number, Segment>();
  private readonly listeners: Listeners = {
    init: new Set(),
    segmentstarted: new Set(),
    chunk: new Set(),
    segmentcompleted: new Set(),
    segmentevicted: new Set(),
  };
  publishedCount = 0;

  constructor(
    public info: TrackInfo,
    private readonly options: Required<LiveWindowOptions>,
  ) {}

  get id(): string {
    return this.info.id;
  }

  on<K extends keyof LiveTrackEvents>(event: K, listener: LiveTrackEvents[K]): () => void {
    (this.listeners[event] as Set<LiveTrackEvents[K]>).add(listener);
    return () => (this.listeners[event] as Set<LiveTrackEvents[K]>).delete(listener);
  }

  private emit<K extends keyof LiveTrackEvents>(event: K, ...args: Parameters<LiveTrackEvents[K]>): void {
    for (const l of this.listeners[event]) {
      // A subscriber's failure must not stop publication to the others.
      try {
        (l as (...a: unknown[]) => void)(...args);
      } catch (err) {
        console.error(`pushcast: ${event} listener failed:`, err);
      }
    }
  }

  get(number: number): Segment | undefined {
    return this.segments.get(number);
  }

  /** Segments in the window, oldest first. */
  list(): Segment[] {
    return [...this.segments.values()];
  }

  /** The newest segment, complete or not. */
  newest(): Segment | undefined {
    let last: Segment | undefined;
    for (const s of this.segments.values()) last = s;
    return last;
  }

  /** The newest complete segment. */
  newestComplete(): Segment | undefined {
    const all = this.list();
    for (const s of all.slice().reverse()) if (s.complete) return s;
    return undefined;
  }

  setInit(init: Uint8Array, info: TrackInfo): void {
    this.init = init;
    this.info = info;
    this.emit('init', this);
  }

  startSegment(segment: Segment): void {
    const newest = this.newest();
    if (newest && segment.number <= newest.number) {
      throw new Error(`track ${this.id}: segment ${segment.number} does not follow ${newest.number}`);
    }
    if (newest && !newest.complete) this.completeSegment(newest);
    this.segments.set(segment.number, segment);
    this.emit('segmentstarted', segment);
  }

  addChunk(segment: Segment, chunk: ChunkInfo): void {
    segment.addChunk(chunk);
    this.emit('chunk', segment, chunk);
  }

  completeSegment(segment: Segment, truncated = false): void {
    if (segment.complete) return;
    segment.truncated = truncated;
    segment.complete = true;
    this.publishedCount++;
    this.emit('segmentcompleted', segment);
    this.evict();
  }

  /** Keeps the newest segments that fit in the time-shift buffer (by media duration) and under the count cap. */
  private evict(): void {
    const all = this.list();
    let kept = 0;
    let keptDuration = 0;
    for (const s of all.slice().reverse()) {
      const fits =
        kept < this.options.maxSegmentsPerTrack && (keptDuration < this.options.timeShiftBufferDepth || !s.complete);
      if (fits) {
        kept++;
        keptDuration += s.durationSeconds;
        continue;
      }
      this.segments.delete(s.number);
      this.emit('segmentevicted', s);
    }
  }
}

/** The live window of a presentation: every track's init segment and time-shift buffer. */
export class LiveWindow {
  readonly tracks = new Map<string, LiveTrack>();
  readonly options: Required<LiveWindowOptions>;

  constructor(options: LiveWindowOptions) {
    this.options = { maxSegmentsPerTrack: 1000, ...options };
  }

  addTrack(info: TrackInfo): LiveTrack {
    if (this.tracks.has(info.id)) throw new Error(`track ${info.id} already exists`);
    const track = new LiveTrack(info, this.options);
    this.tracks.set(info.id, track);
    return track;
  }

  track(id: string): LiveTrack | undefined {
    return this.tracks.get(id);
  }
}
