/**
 * Maps the encoder's media time onto the wall clock, once for the whole presentation.
 *
 * DASH addresses live segments by time (ISO/IEC 23009-1 §5.3.9.5.3): with SegmentTemplate@duration,
 * segment `startNumber + k` covers media time [k·d, (k+1)·d) and becomes available at
 * availabilityStartTime + (k+1)·d. pushcast, not the encoder, owns that mapping so that every delivery
 * mode announces the same numbers and times.
 *
 * Each encoder run is an input *generation*. Generation 0 fixes availabilityStartTime from the arrival of
 * its first sample, and startNumber from availabilityStartTime, so that segment numbers keep growing across
 * origin restarts: a URL never names two different segments, and caches may keep segments forever. A restarted encoder begins again at media time 0; its generation gets an offset that
 * puts its first sample on the segment grid at the current wall-clock position, so numbering and time
 * keep moving forward and nothing already published is reused.
 */
const MAX_GENERATIONS_KEPT = 4;

export class LiveTimeline {
  /** Milliseconds since the epoch; undefined until the first sample arrives. */
  availabilityStartTime?: number;
  private readonly offsets = new Map<number, number>();
  /** End (seconds, output media time) of the furthest sample any track has published. */
  private publishedEnd = 0;

  /** SegmentTemplate@startNumber: set with availabilityStartTime unless fixed by the constructor. */
  startNumber: number;
  private readonly fixedStartNumber?: number;

  /**
   * Segments are numbered one after another and described one by one (SegmentTimeline, ISO/IEC 23009-1
   * §5.3.9.6), for inputs whose key frames come where their encoder puts them (passthrough): a segment then
   * lasts from one cut to the next, whatever its length, and its number is the previous one's plus one, so
   * that a long GoP skips no number. Otherwise numbers follow the grid (`startNumber + k` ↔ `[k·d, (k+1)·d)`).
   */
  readonly segmentTimeline: boolean;

  constructor(
    /** Nominal segment duration in seconds (SegmentTemplate@duration); with a segment timeline, the target. */
    readonly segmentDuration: number,
    /** The wall clock, milliseconds since the epoch (replaceable in tests). */
    readonly now: () => number = Date.now,
    startNumber?: number,
    options: { segmentTimeline?: boolean } = {},
  ) {
    this.fixedStartNumber = startNumber;
    this.startNumber = startNumber ?? 1;
    this.segmentTimeline = options.segmentTimeline ?? false;
  }

  /**
   * Seconds to add to the input media times of `generation`. The first track to see a sample of a
   * generation decides it; the other tracks of the same encoder run share it.
   */
  offsetFor(generation: number, firstInputTime: number): number {
    const known = this.offsets.get(generation);
    if (known !== undefined) return known;
    let offset: number;
    if (this.availabilityStartTime === undefined) {
      this.availabilityStartTime = this.now() - firstInputTime * 1000;
      this.startNumber = this.fixedStartNumber ?? Math.floor(this.availabilityStartTime / 1000 / this.segmentDuration);
      offset = 0;
    } else {
      const d = this.segmentDuration;
      const wallPosition = (this.now() - this.availabilityStartTime) / 1000;
      // Next grid boundary at or after both the wall clock and everything already published.
      const target = Math.max(wallPosition, this.publishedEnd);
      offset = Math.ceil((target - firstInputTime) / d - 1e-9) * d;
      if (firstInputTime + offset < this.publishedEnd) offset += d;
    }
    this.offsets.set(generation, offset);
    // Only the newest generations can still deliver samples; a crash-looping encoder must not grow this map.
    for (const old of this.offsets.keys())
      if (this.offsets.size > MAX_GENERATIONS_KEPT && old < generation) this.offsets.delete(old);
    return offset;
  }

  /** Records that some track published media up to `endSeconds` (output media time). */
  notePublished(endSeconds: number): void {
    if (endSeconds > this.publishedEnd) this.publishedEnd = endSeconds;
  }

  /** The segment number whose nominal start is nearest to output media time `seconds` (where a cut there belongs). */
  segmentNumberNear(seconds: number): number {
    return this.startNumber + Math.round(seconds / this.segmentDuration);
  }

  /** Nominal start (seconds, output media time) of segment `number` (on the grid: not with a segment timeline). */
  segmentStart(number: number): number {
    return (number - this.startNumber) * this.segmentDuration;
  }

  /** Wall-clock time (ms since the epoch) at which `number` is complete by the MPD's reckoning (on the grid). */
  availabilityEnd(number: number): number {
    if (this.availabilityStartTime === undefined) return Infinity;
    return this.availabilityStartTime + (number - this.startNumber + 1) * this.segmentDuration * 1000;
  }
}
