/**
 * Where the Warp player page keeps its playhead (draft-lcurley-warp-00 §3.4: the viewer picks the
 * latency): at the live point of the broadcast's timeline minus the target — every frame is shown the
 * target after it was captured, and a frame that is not there by then is skipped, not waited for. Pure,
 * so that it can be reasoned about (and tested) without a media element: the page feeds it the element's
 * buffered ranges and the live point, and applies the answer.
 *
 * - Start: once the position (live − target) is buffered, there; or, taking over from another mode, at
 *   the first media as soon as some is buffered (a lower latency than the target, a picture at once).
 * - Behind it by more than CATCH_UP_SLACK (media came late): seek to it, where buffered.
 * - Behind by a little: play up to MAX_RATE faster. Ahead of it (a playback that started early, taking
 *   over from another mode): MIN_RATE until the target's margin is back.
 * - A hole in the buffered ranges (the end of a segment that was cut, or a skipped one): the playhead
 *   jumps to where media continues as it reaches the hole (or is stuck right before it).
 * - The viewer raised the target: hold (pause) until the playhead is the new target behind; media
 *   already shown is not replayed.
 * - Without a live point (no timeline yet), the buffered live edge stands in for it.
 */

export interface TimeRange {
  start: number;
  end: number;
}

export interface PlayheadInput {
  /** The media element's buffered ranges, in order (seconds). */
  ranges: readonly TimeRange[];
  currentTime: number;
  /** Latency target, seconds. */
  target: number;
  /** The live point: the newest media time the encoder has captured by now, on the element's timeline (s). */
  live?: number;
  /** Playback started (the page has placed the playhead once). */
  started: boolean;
  /** The element cannot play on (readyState below HAVE_FUTURE_DATA while not paused). */
  stuck: boolean;
  /** The viewer raised the target since the playhead was last at it: playback holds until the buffer has grown to it. */
  targetRaised?: boolean;
  /**
   * Start at the first media rather than wait for (live − target) to be buffered: for a playback taking
   * over from another mode, where showing the picture at once matters more than the target's margin (a
   * session begins at the current segment's start, often newer than live − target).
   */
  startEarly?: boolean;
}

export interface PlayheadAction {
  /** Seek here. */
  seek?: number;
  why?: 'start' | 'behind' | 'gap';
  /** Playback rate to use, MIN_RATE … MAX_RATE. */
  rate: number;
  /** Keep (or put) playback on hold: the buffer ahead is shorter than the target. */
  hold?: boolean;
}

/** Seconds behind the target after which the page seeks rather than speeds up. */
export const CATCH_UP_SLACK = 0.3;
export const MAX_RATE = 1.1;
/** Ahead of the target (closer to live than the viewer chose): played this slow until back at it. */
export const MIN_RATE = 0.96;
/** Ahead by less than this, 1.0x. */
const AHEAD_DEAD_BAND = 0.1;
/** Behind the target by less than this, 1.0x. */
const RATE_DEAD_BAND = 0.05;
/** How close to the end of a buffered range the playhead counts as having reached it (a frame or two). */
const RANGE_END_EPSILON = 0.05;
/** When stuck, how close to a range's end counts as "at the hole" (the element stops short of the end by up to a frame of the other track). */
const STUCK_EPSILON = 0.5;
/** With startEarly, this much media buffered before playback starts at it, s. */
const EARLY_START_MIN = 0.3;
/** A seek lands this far inside a range, so that the position is buffered whatever the rounding. */
const INSIDE = 0.01;

/** The buffered position at or after `t`: `t` itself if buffered, else the start of the next range; undefined past the edge. */
export function bufferedAtOrAfter(ranges: readonly TimeRange[], t: number): number | undefined {
  for (const r of ranges) {
    if (t < r.start) return r.start + INSIDE;
    if (t < r.end - RANGE_END_EPSILON) return t;
  }
  return undefined;
}

export function planPlayhead(i: PlayheadInput): PlayheadAction {
  const { ranges, currentTime: t, target } = i;
  const last = ranges.at(-1);
  if (!last) return { rate: 1 };
  const edge = last.end;
  const desired = Math.max(ranges[0]!.start, (i.live ?? edge) - target);
  const place = bufferedAtOrAfter(ranges, desired);

  if (!i.started) {
    if (i.live === undefined) {
      // Edge-based: wait until the buffer spans the target (the edge grows by a second per second).
      if (edge - ranges[0]!.start < target - RANGE_END_EPSILON) return { rate: 1 };
      return place === undefined ? { rate: 1 } : { seek: place, why: 'start', rate: 1 };
    }
    // Start where the target puts the playhead, once media is there (media after it is not due yet).
    const at = bufferedAtOrAfter(ranges, i.live - target);
    if (at !== undefined && at <= i.live - target + INSIDE) return { seek: at, why: 'start', rate: 1 };
    const first = ranges[0]!;
    if (i.startEarly && first.end - first.start >= EARLY_START_MIN)
      return { seek: first.start + INSIDE, why: 'start', rate: 1 };
    return { rate: 1 };
  }

  const behind = desired - t;
  if (behind > CATCH_UP_SLACK && place !== undefined && place > t) return { seek: place, why: 'behind', rate: 1 };

  // A hole: the playhead is in none of the ranges, or at the end of one that is followed by another.
  const index = ranges.findIndex((r) => t >= r.start - INSIDE && t < r.end);
  const here = index >= 0 ? ranges[index] : undefined;
  const next = ranges.find((r) => r.start > t);
  if (next && (!here || t >= here.end - (i.stuck ? STUCK_EPSILON : RANGE_END_EPSILON))) {
    const beyond = desired > next.start ? bufferedAtOrAfter(ranges, desired) : undefined;
    return { seek: beyond ?? next.start + INSIDE, why: 'gap', rate: 1 };
  }

  // The viewer raised the target: hold until the playhead is that far behind. (Only then: a buffer that
  // shrinks because media comes late is left to run out, and counts as a stall if it does.)
  if (i.targetRaised && behind < 0) return { rate: 1, hold: true };

  // Ahead of the target (a playback that started early, taking over): a little slower until the buffer
  // has grown back to the target's margin, as DASH's catch-up does (0.96x, sound pitch kept).
  const rate =
    behind > RATE_DEAD_BAND
      ? Math.min(MAX_RATE, 1 + (behind - RATE_DEAD_BAND) * 0.4)
      : behind < -AHEAD_DEAD_BAND
        ? MIN_RATE
        : 1;
  return { rate: Math.round(rate * 100) / 100 };
}
