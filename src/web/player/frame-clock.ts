/**
 * When a video element last presented a frame and last moved its media time, for the frozen time of a
 * move between modes: the picture is frozen from the last frame the old element presented to the first
 * the new one presents after the swap (requestVideoFrameCallback, WICG video-rvfc); the sound from the
 * moment the old element stopped advancing (a `waiting` not followed by `playing`) to the swap.
 */
/** Longer than this between two frames, and the picture stopped (a frame every 40 ms at 25 fps). */
const GAP_MS = 150;

export class FrameClock {
  /** performance.now() of the newest frame presented; undefined before the first. */
  lastFrameAt: number | undefined;
  /** performance.now() of the first frame of the current run of frames (no gap over GAP_MS since). */
  presentingSince: number | undefined;
  /** performance.now() since when the element waits for data (its sound has stopped); undefined while it plays. */
  stalledSince: number | undefined;
  private readonly waiters: { after: number; resolve: (t: number | undefined) => void }[] = [];
  private handle: number | undefined;
  private stopped = false;
  private readonly onWaiting = () => (this.stalledSince ??= performance.now());
  private readonly onPlaying = () => (this.stalledSince = undefined);

  constructor(private readonly video: HTMLVideoElement) {
    video.addEventListener('waiting', this.onWaiting);
    video.addEventListener('playing', this.onPlaying);
    this.watch();
  }

  private watch(): void {
    if (this.stopped) return;
    this.handle = this.video.requestVideoFrameCallback((now) => {
      if (this.lastFrameAt === undefined || now - this.lastFrameAt > GAP_MS) this.presentingSince = now;
      this.lastFrameAt = now;
      for (let i = this.waiters.length - 1; i >= 0; i--) {
        const w = this.waiters[i]!;
        if (now > w.after) {
          this.waiters.splice(i, 1);
          w.resolve(now);
        }
      }
      this.watch();
    });
  }

  /** Frames have come without a gap for at least `ms`, up to now. */
  steadyFor(ms: number): boolean {
    const now = performance.now();
    return (
      this.lastFrameAt !== undefined &&
      this.presentingSince !== undefined &&
      now - this.lastFrameAt <= GAP_MS &&
      now - this.presentingSince >= ms
    );
  }

  /** The time of the first frame presented after `after` (performance.now()), or undefined after `timeoutMs`. */
  firstFrameAfter(after: number, timeoutMs: number): Promise<number | undefined> {
    return new Promise((resolve) => {
      const waiter = {
        after,
        resolve: (t: number | undefined) => {
          clearTimeout(timer);
          resolve(t);
        },
      };
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve(undefined);
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.handle !== undefined) this.video.cancelVideoFrameCallback(this.handle);
    this.video.removeEventListener('waiting', this.onWaiting);
    this.video.removeEventListener('playing', this.onPlaying);
    for (const w of this.waiters.splice(0)) w.resolve(undefined);
  }
}
