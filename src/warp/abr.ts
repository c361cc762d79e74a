/**
 * The rendition chooser of a Warp viewer (the browser player and the Node client alike): which video
 * rendition to ask for (SELECT, src/warp/select.ts), from what the viewer measures of each GoP.
 *
 * - **Measurements** (the consumer's `arrived`, src/warp/consumer.ts): per segment its bytes, the time
 *   from its first byte to its last (`span`) against its duration, and `lag`: its last byte's arrival after
 *   its end on the timeline. A link that carries the rendition keeps the span near the duration and the lag
 *   near its floor (encoding and packaging); one that does not makes both grow GoP after GoP, before any
 *   segment is cut. The floor is the smallest lag seen lately, so clock offsets do not matter.
 * - **Down, fast**: a cut segment (given up, or not whole), a lag above its floor by `downLagMs`, or a span
 *   beyond `downSpan` × the duration is a step down at once — to the best rendition that fits in `safety` ×
 *   the rate the GoP came at (bytes ÷ span, a lower bound of the path's rate when it was backlogged), and at
 *   least one step. Segments of a rendition above the one asked for (already on their way) are not held
 *   against the new one.
 * - **Up, carefully**: after `upAfterMs` of good GoPs in a row (the link carries the rendition with room),
 *   one step up; a streak that goes on after a step up needs one more good GoP of the new rendition per
 *   step. A step up that ends in a step down within two GoPs is a failed probe: stepping up to that
 *   rendition again needs twice the good time (up to `maxUpAfterMs`), for `probeMemoryMs`.
 * - **Probes checked early**: a switch is made at a GoP boundary, so a step down decided once a GoP has come
 *   applies only from the GoP after the next — a failed probe would cost two GoPs of the new rendition on a
 *   link that cannot carry them. While the first GoP of a step up arrives, its bytes so far are held against
 *   its rendition's bitrate (`progress`): once `probeCheck` of its duration is made (less the delay the GoP
 *   before came with), less than `probeRate` × the bytes due by then is a step back down, made before the
 *   next GoP begins, so the probe costs nothing but that GoP's lateness; a probe that keeps up counts as
 *   the good GoP of a streak, so the next step's probe can begin at the next GoP. "Its bitrate" is
 *   calibrated by the GoPs played before, measured the same way (the median of the last five, 50–100 %).
 * - **A recovered path is seen at once**: a GoP's key frame is sent whole as soon as it is made, so it
 *   crosses the path at the path's rate, whatever the rendition's bitrate (`headBytes` ÷ `headMs`). When
 *   the last two GoPs' key frames came at `burstFactor` × the next rendition's bitrate or more, a failed probe
 *   of it no longer asks for a longer wait: that probe failed on a path that has changed since. Key frames
 *   slower than its bitrate say the path has not changed: the next probe waits `shortPathUpAfterMs`. (A
 *   congestion window the sender has not grown also makes key frames slow, so this measure never holds a
 *   rendition back by itself, only after a failed probe.) A streak does not go on into a rendition whose
 *   probe failed lately.
 *
 * Isomorphic: no timers; the caller passes the time.
 */
import type { SegmentArrival } from './consumer.js';

export interface Rendition {
  id: string;
  bandwidth: number;
}

export interface RenditionChooserOptions {
  /** Good time in a row before the first step up, ms. Default 2000 (probes are cheap: checked early). */
  upAfterMs?: number;
  /** Longest good time asked for after failed probes, ms. Default 4000. */
  maxUpAfterMs?: number;
  /** How long a failed probe counts, ms. Default 20 000. */
  probeMemoryMs?: number;
  /** A lag this far above its floor is congestion, ms. Default 400. */
  downLagMs?: number;
  /** A span beyond this share of the duration is congestion. Default 1.25. */
  downSpan?: number;
  /** A GoP is good when its lag is within this of its floor, ms. Default 200. */
  goodLagMs?: number;
  /** A GoP is good when its span is within this share of its duration. Default 1.1. */
  goodSpan?: number;
  /** Share of the measured rate a rendition may take when stepping down. Default 0.8. */
  safety?: number;
  /** Bits per second of the other tracks (audio), taken off the measured rate. Default 0. */
  otherBps?: number;
  /** A probe's bytes are checked once this share of its GoP's duration is made. Default 0.5. */
  probeCheck?: number;
  /** … and must be at least this share of what its bitrate makes by then. Default 0.85. */
  probeRate?: number;
  /** Key frames coming at this multiple of a rendition's bitrate waive its failed probes' wait. Default 2. */
  burstFactor?: number;
  /** After a failed probe, with key frames slower than that rendition's bitrate: the good time asked, ms. Default 8000. */
  shortPathUpAfterMs?: number;
}

export interface RenditionChoice {
  track: string;
  why: string;
}

/** How long the lag's floor is remembered, ms: it follows slow changes of the encoder's delay. */
const FLOOR_MEMORY_MS = 30_000;
/** Key frames whose rate is remembered: the slowest is taken for the path's (one may come in a lucky read). */
const BURSTS_KEPT = 2;

export class RenditionChooser {
  /** Renditions by bandwidth, lowest first. */
  readonly ladder: Rendition[];
  private index: number;
  private goodMs = 0;
  /** After a step up that a good streak carried on: the next step needs one good GoP of the new rendition. */
  private streakAfterUp = false;
  private lastUp: { index: number; at: number; gops: number; checked?: boolean } | undefined;
  private readonly failedProbes = new Map<number, { at: number; upAfterMs: number }>();
  private readonly lags: { at: number; lag: number }[] = [];
  /** The rates (bit/s) the last GoPs' key frames came at, newest last. */
  private readonly bursts: number[] = [];
  /** How far GoPs of the rendition played had come at the probe's check point (bytes ÷ due), newest last. */
  private readonly calibration: number[] = [];
  private calibratedSegment: object | undefined;
  readonly o: Required<RenditionChooserOptions>;
  /** Choices made, newest last (for stats and reports). */
  readonly history: ({ at: number } & RenditionChoice)[] = [];

  constructor(renditions: readonly Rendition[], initial: string | undefined, o: RenditionChooserOptions = {}) {
    if (renditions.length === 0) throw new Error('a rendition chooser needs renditions');
    this.ladder = [...renditions].sort((a, b) => a.bandwidth - b.bandwidth);
    const at = this.ladder.findIndex((r) => r.id === initial);
    this.index = at >= 0 ? at : this.ladder.length - 1;
    this.o = {
      upAfterMs: o.upAfterMs ?? 2000,
      maxUpAfterMs: o.maxUpAfterMs ?? 4000,
      probeMemoryMs: o.probeMemoryMs ?? 20_000,
      downLagMs: o.downLagMs ?? 400,
      downSpan: o.downSpan ?? 1.25,
      goodLagMs: o.goodLagMs ?? 200,
      goodSpan: o.goodSpan ?? 1.1,
      safety: o.safety ?? 0.8,
      otherBps: o.otherBps ?? 0,
      probeCheck: o.probeCheck ?? 0.5,
      probeRate: o.probeRate ?? 0.85,
      burstFactor: o.burstFactor ?? 2,
      shortPathUpAfterMs: o.shortPathUpAfterMs ?? 8000,
    };
  }

  /** The rendition asked for now. */
  get current(): string {
    return this.ladder[this.index]!.id;
  }

  /** The path's rate as the last key frames crossed it (the slower of the last two), bit/s. */
  get pathRateBps(): number | undefined {
    return this.bursts.length === BURSTS_KEPT ? Math.round(Math.min(...this.bursts)) : undefined;
  }

  private rank(track: string): number {
    return this.ladder.findIndex((r) => r.id === track);
  }

  private floor(now: number, lag: number): number {
    this.lags.push({ at: now, lag });
    while (this.lags.length > 1 && now - this.lags[0]!.at > FLOOR_MEMORY_MS) this.lags.shift();
    return Math.min(...this.lags.map((l) => l.lag));
  }

  /** A segment of `track` came (or ended cut): returns a new choice, or undefined to stay. */
  arrived(track: string, a: SegmentArrival, now: number): RenditionChoice | undefined {
    const rank = this.rank(track);
    if (rank < 0) return undefined;
    const floor = this.floor(now, a.lagMs);
    if (a.headBytes > 0) {
      // A key frame read in one go came faster than the clock can tell: 1 ms is its upper bound.
      this.bursts.push((a.headBytes * 8 * 1000) / Math.max(1, a.headMs));
      if (this.bursts.length > BURSTS_KEPT) this.bursts.shift();
    }
    // What was on its way before a step down says nothing of the rendition asked for now.
    if (rank > this.index) return undefined;
    const congested = !a.complete
      ? 'a segment was cut'
      : a.lagMs - floor > this.o.downLagMs
        ? `lag ${Math.round(a.lagMs - floor)} ms above its floor`
        : a.spanMs > this.o.downSpan * a.durationMs
          ? `a GoP took ${(a.spanMs / a.durationMs).toFixed(2)}× its duration`
          : undefined;
    if (congested) {
      const rate = a.spanMs > 0 ? (a.bytes * 8 * 1000) / a.spanMs - this.o.otherBps : 0;
      return this.down(rank, rate, congested, now);
    }
    if (rank !== this.index) return undefined; // a lower rendition's last segments, after a step up
    if (this.lastUp?.index === this.index) this.lastUp.gops++;
    const good = a.lagMs - floor <= this.o.goodLagMs && a.spanMs <= this.o.goodSpan * a.durationMs;
    if (!good) {
      this.goodMs = 0;
      this.streakAfterUp = false;
      return undefined;
    }
    this.goodMs += a.durationMs;
    if (this.index === this.ladder.length - 1) return undefined;
    const needed =
      this.streakAfterUp && !this.failedLately(this.index + 1, now) ? a.durationMs : this.upAfter(this.index + 1, now);
    if (this.goodMs < needed) return undefined;
    const path = this.pathClear(this.index + 1, now)
      ? `; key frames at ${(this.pathRateBps! / 1e6).toFixed(1)} Mbit/s`
      : '';
    return this.up(now, `${this.goodMs / 1000} s of GoPs with room${path}`);
  }

  /**
   * Bytes of a segment of `track` so far (`segment`: one object per segment), `elapsedMs` after its start
   * on the timeline, of `durationMs`: the first GoP of a step up that comes too slowly is a step back down,
   * before the next GoP begins. The other GoPs of the rendition played, measured the same way, calibrate
   * the measure: how far this viewer sees a GoP at that point when the link keeps up (the share of a GoP
   * its first frames weigh, the encoder's and the receiver's delays).
   */
  progress(
    track: string,
    bytes: number,
    elapsedMs: number,
    durationMs: number,
    now: number,
    segment?: object,
  ): RenditionChoice | undefined {
    const rank = this.rank(track);
    if (rank !== this.index) return undefined;
    const probe = this.lastUp?.index === rank && this.lastUp.gops === 0;
    if (probe ? this.lastUp!.checked : segment === undefined || segment === this.calibratedSegment) return undefined;
    // Media is made behind the timeline (encoding, packaging), by as much as the GoP before showed: not the link's doing.
    const made = elapsedMs - Math.max(0, this.lags.at(-1)?.lag ?? 0);
    if (made < this.o.probeCheck * durationMs || elapsedMs >= durationMs) return undefined;
    const due = ((this.ladder[rank]!.bandwidth / 8) * made) / 1000;
    if (!probe) {
      this.calibratedSegment = segment;
      this.calibration.push(bytes / due);
      if (this.calibration.length > 5) this.calibration.shift();
      return undefined;
    }
    this.lastUp!.checked = true;
    const sorted = [...this.calibration].sort((a, b) => a - b);
    const usual = Math.min(1, Math.max(0.5, sorted[Math.floor(sorted.length / 2)] ?? 1));
    const share = `${Math.round((100 * bytes) / due)} % of its bitrate (${Math.round(100 * usual)} % usually)`;
    if (bytes < this.o.probeRate * usual * due) return this.down(rank + 1, 0, `the probe's GoP came at ${share}`, now);
    // A probe that keeps up is the good GoP a streak's next step needs: that step's probe can begin at the next GoP.
    if (
      !this.streakAfterUp ||
      this.index === this.ladder.length - 1 ||
      bytes < usual * due ||
      this.failedLately(this.index + 1, now)
    )
      return undefined;
    return this.up(now, `the probe's GoP came at ${share}`);
  }

  /** A segment of `track` given up before it came whole (the consumer's skip): a step down. */
  cut(track: string, now: number): RenditionChoice | undefined {
    const rank = this.rank(track);
    if (rank < 0 || rank > this.index) return undefined;
    return this.down(rank, 0, 'a segment was given up', now);
  }

  private upAfter(index: number, now: number): number {
    if (!this.failedLately(index, now)) return this.o.upAfterMs;
    const wait = this.failedProbes.get(index)!.upAfterMs;
    return this.pathShort(index) ? Math.max(wait, this.o.shortPathUpAfterMs) : wait;
  }

  /** A probe of rendition `index` failed lately, and the key frames do not say the path has changed since. */
  private failedLately(index: number, now: number): boolean {
    const failed = this.failedProbes.get(index);
    return failed !== undefined && now - failed.at <= this.o.probeMemoryMs && !this.pathClear(index, now);
  }

  /** The last key frames crossed the path slower than rendition `index` (with the other tracks) needs. */
  private pathShort(index: number): boolean {
    const path = this.pathRateBps;
    return path !== undefined && path < this.ladder[index]!.bandwidth + this.o.otherBps;
  }

  /** A failed probe of `index` is remembered, and the path has changed since: key frames cross it fast enough. */
  private pathClear(index: number, now: number): boolean {
    const failed = this.failedProbes.get(index);
    const path = this.pathRateBps;
    return (
      failed !== undefined &&
      now - failed.at <= this.o.probeMemoryMs &&
      path !== undefined &&
      path >= this.o.burstFactor * (this.ladder[index]!.bandwidth + this.o.otherBps)
    );
  }

  private up(now: number, why: string): RenditionChoice {
    this.index++;
    this.lastUp = { index: this.index, at: now, gops: 0 };
    this.goodMs = 0;
    this.streakAfterUp = true;
    return this.choose(why, now);
  }

  private down(rank: number, rateBps: number, why: string, now: number): RenditionChoice | undefined {
    this.goodMs = 0;
    this.streakAfterUp = false;
    if (this.index === 0) return undefined;
    if (this.lastUp && this.lastUp.index === this.index && this.lastUp.gops < 2) {
      const before = this.failedProbes.get(this.index);
      const upAfterMs = Math.min(
        this.o.maxUpAfterMs,
        2 * (before && now - before.at <= this.o.probeMemoryMs ? before.upAfterMs : this.o.upAfterMs),
      );
      this.failedProbes.set(this.index, { at: now, upAfterMs });
    }
    this.lastUp = undefined;
    let to = Math.min(this.index, rank) - 1;
    // The rate a backlogged GoP came at: no rendition above it, whatever step that takes.
    while (to > 0 && rateBps > 0 && this.ladder[to]!.bandwidth > this.o.safety * rateBps) to--;
    this.index = Math.max(0, to);
    return this.choose(why, now);
  }

  private choose(why: string, now: number): RenditionChoice {
    const choice = { track: this.current, why };
    this.history.push({ at: now, ...choice });
    if (this.history.length > 100) this.history.shift();
    return choice;
  }
}
