/**
 * Prefetch: fetch each next segment of the renditions in use as soon as its availability time passes
 * (ISO/IEC 23009-1 §5.3.9.5.3), so that when the player asks for it, the browser's HTTP cache already holds
 * it (segments are `immutable`). It needs nothing from the server beyond ordinary HTTP caching.
 */

import { TIME_PATH } from '../../media/live/url-scheme.js';

interface TemplateTiming {
  availabilityStartTime: number;
  /** Seconds. */
  duration: number;
  startNumber: number;
  /** Seconds a segment is announced before it is complete (LL-DASH availabilityTimeOffset). */
  availabilityTimeOffset: number;
  media: string;
}

export interface PrefetchStats {
  /** Segment fetches started by the prefetcher. */
  started: number;
  /** Of those, fetches that completed. */
  completed: number;
  failed: number;
}

const REMEMBERED = 64;

export class Prefetcher {
  readonly stats: PrefetchStats = { started: 0, completed: 0, failed: 0 };
  /** URLs the prefetcher fetched (bounded): a later player load of one of them is a prefetch hit. */
  readonly fetched = new Set<string>();
  private timing?: TemplateTiming;
  private clockOffset = 0;
  private timer?: ReturnType<typeof setTimeout>;
  private stopped = false;

  constructor(
    private readonly manifestUrl: string,
    /** The representations the player is using right now. */
    private readonly representations: () => string[],
  ) {}

  async start(): Promise<void> {
    const [mpd, serverTime] = await Promise.all([
      fetch(this.manifestUrl).then((r) => r.text()),
      fetch(new URL(TIME_PATH, new URL(this.manifestUrl, location.href)))
        .then((r) => r.text())
        .catch(() => ''),
    ]);
    const parsed = Date.parse(serverTime);
    if (Number.isFinite(parsed)) this.clockOffset = parsed - Date.now();
    const doc = new DOMParser().parseFromString(mpd, 'application/xml');
    const template = doc.querySelector('SegmentTemplate');
    const root = doc.documentElement;
    if (!template) throw new Error('prefetch: the MPD has no SegmentTemplate');
    const timescale = Number(template.getAttribute('timescale') ?? 1);
    this.timing = {
      availabilityStartTime: Date.parse(root.getAttribute('availabilityStartTime') ?? ''),
      duration: Number(template.getAttribute('duration')) / timescale,
      startNumber: Number(template.getAttribute('startNumber') ?? 1),
      availabilityTimeOffset: Number(template.getAttribute('availabilityTimeOffset') ?? 0),
      media: template.getAttribute('media') ?? '',
    };
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private now(): number {
    return Date.now() + this.clockOffset;
  }

  /** Segment k becomes available at AST + (k − startNumber + 1)·d − availabilityTimeOffset. */
  private availableAt(number: number): number {
    const t = this.timing!;
    return t.availabilityStartTime + ((number - t.startNumber + 1) * t.duration - t.availabilityTimeOffset) * 1000;
  }

  private schedule(): void {
    if (this.stopped || !this.timing) return;
    const t = this.timing;
    // The newest segment already available, and when the one after it becomes available.
    const elapsed = (this.now() - t.availabilityStartTime) / 1000 + t.availabilityTimeOffset;
    const newest = t.startNumber + Math.floor(elapsed / t.duration) - 1;
    this.fetchSegment(newest);
    const wait = Math.max(0, this.availableAt(newest + 1) - this.now());
    this.timer = setTimeout(() => this.schedule(), wait + 5);
  }

  private fetchSegment(number: number): void {
    for (const rep of this.representations()) {
      const path = this.timing!.media.replace('$RepresentationID$', rep).replace('$Number$', String(number));
      const url = new URL(path, new URL(this.manifestUrl, location.href)).href;
      if (this.fetched.has(url)) continue;
      this.fetched.add(url);
      if (this.fetched.size > REMEMBERED) this.fetched.delete(this.fetched.values().next().value!);
      this.stats.started++;
      // Reading the whole body is what puts the response into the HTTP cache.
      fetch(url)
        .then((r) => (r.ok ? r.arrayBuffer() : Promise.reject(new Error(String(r.status)))))
        .then(() => this.stats.completed++)
        .catch(() => this.stats.failed++);
    }
  }
}
