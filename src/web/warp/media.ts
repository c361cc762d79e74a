/**
 * One SourceBuffer per Warp track, fed in the order the consumer hands media over: the init segment
 * first, then each segment's bytes as they arrive (CMAF chunks, possibly split anywhere), one operation
 * at a time (appendBuffer, then `updateend`).
 *
 * - The queue is bounded (MAX_QUEUED_BYTES): past it, what is queued is dropped and so is the rest of
 *   the segment being received; the track resumes at the next segment's start (a whole moof+mdat).
 * - A segment cut short (its stream ended early, or the consumer skipped it midway) may end inside a box:
 *   the parser is reset (`abort()`, MSE §3.2 "reset parser state") before the next segment.
 * - Media older than KEEP_BEHIND_S behind the playhead is removed, so the buffer stays bounded.
 * - QuotaExceededError: old media is removed down to QUOTA_KEEP_BEHIND_S and the append retried once.
 * - A rendition switch: the new rendition's init is appended in line, where the consumer hands it over
 *   (before its first media), after `changeType` when its codec string differs (MSE 2).
 */

export const MAX_QUEUED_BYTES = 8 * 1024 * 1024;
export const KEEP_BEHIND_S = 30;
/** Removal runs once this much more than KEEP_BEHIND_S has piled up, so that it is not done every append. */
const REMOVE_SLACK_S = 10;
const QUOTA_KEEP_BEHIND_S = 4;

type Operation =
  | { kind: 'append'; bytes: Uint8Array; segment?: object; init?: boolean }
  | { kind: 'reset' }
  | { kind: 'change-type'; mime: string };

export class TrackBuffer {
  private buffer: SourceBuffer | undefined;
  private readonly queue: Operation[] = [];
  private queuedBytes = 0;
  private busy = false;
  /** Set after an overflow: the current segment's bytes are dropped until a new segment starts. */
  private droppingSegment: object | undefined;
  private lastSegment: object | undefined;
  private retried = false;
  overflows = 0;
  appendErrors = 0;

  constructor(
    /** The track whose init was appended last. */
    public id: string,
    readonly kind: 'video' | 'audio',
    public mime: string,
    private readonly currentTime: () => number,
    private readonly onError: (message: string) => void,
  ) {}

  get queued(): number {
    return this.queuedBytes;
  }

  get buffered(): TimeRanges | undefined {
    try {
      return this.buffer?.buffered;
    } catch {
      return undefined; // the SourceBuffer was removed from its MediaSource
    }
  }

  /** Once the MediaSource is open: operations queued so far start. */
  attach(buffer: SourceBuffer): void {
    this.buffer = buffer;
    buffer.addEventListener('updateend', () => {
      this.busy = false;
      this.pump();
    });
    buffer.addEventListener('error', () => {
      this.appendErrors++;
      this.onError(`the ${this.kind} SourceBuffer (${this.mime}) rejected media`);
    });
    this.pump();
  }

  /** An init segment, in line: the first one, or a rendition switch's (`id`, `mime`: the new track). */
  appendInit(bytes: Uint8Array, id = this.id, mime = this.mime): void {
    if (mime !== this.mime) this.queue.push({ kind: 'change-type', mime });
    this.id = id;
    this.mime = mime;
    this.queue.push({ kind: 'append', bytes, init: true });
    this.queuedBytes += bytes.length;
    this.pump();
  }

  /** Bytes of `segment` (the consumer's SegmentRef: one object per segment). */
  appendMedia(segment: object, bytes: Uint8Array): void {
    if (segment === this.droppingSegment) return;
    if (this.queuedBytes + bytes.length > MAX_QUEUED_BYTES) {
      this.overflows++;
      this.onError(
        `${this.id}: more than ${MAX_QUEUED_BYTES >> 20} MiB waiting to be appended; dropped it and resumed at the next segment`,
      );
      for (let i = this.queue.length - 1; i >= 0; i--) {
        const op = this.queue[i]!;
        if (op.kind === 'append' && !op.init) {
          this.queuedBytes -= op.bytes.length;
          this.queue.splice(i, 1);
        }
      }
      this.droppingSegment = segment;
      // Whatever part of a segment already went in, the parser starts afresh at the next one.
      this.queue.push({ kind: 'reset' });
      this.pump();
      return;
    }
    this.lastSegment = segment;
    this.queue.push({ kind: 'append', bytes, segment });
    this.queuedBytes += bytes.length;
    this.pump();
  }

  /** The segment ended before its last byte: the next one must not be parsed as its continuation. */
  segmentCut(segment: object): void {
    if (segment === this.droppingSegment) return; // a reset is queued already
    if (segment !== this.lastSegment) return; // nothing of it was appended
    this.queue.push({ kind: 'reset' });
    this.pump();
  }

  /** The media is going away: nothing more is appended or removed (a late `updateend` finds nothing to do). */
  detach(): void {
    this.buffer = undefined;
    this.queue.length = 0;
    this.queuedBytes = 0;
  }

  private pump(): void {
    const buffer = this.buffer;
    if (!buffer || this.busy || buffer.updating) return;
    if (this.evictIfNeeded(buffer)) return;
    const op = this.queue.shift();
    if (!op) return;
    if (op.kind === 'change-type') {
      try {
        buffer.changeType(op.mime);
      } catch (error) {
        this.onError(`${this.id}: changeType(${op.mime}) failed: ${(error as Error).message}`);
      }
      this.pump();
      return;
    }
    if (op.kind === 'reset') {
      try {
        buffer.abort();
      } catch (error) {
        this.onError(`${this.id}: resetting the parser failed: ${(error as Error).message}`);
      }
      this.pump();
      return;
    }
    this.queuedBytes -= op.bytes.length;
    try {
      this.busy = true;
      buffer.appendBuffer(op.bytes as Uint8Array<ArrayBuffer>);
      this.retried = false;
    } catch (error) {
      this.busy = false;
      if ((error as DOMException).name === 'QuotaExceededError' && !this.retried) {
        // Full: make room and try the same bytes again.
        this.retried = true;
        this.queue.unshift(op);
        this.queuedBytes += op.bytes.length;
        this.remove(buffer, this.currentTime() - QUOTA_KEEP_BEHIND_S);
        return;
      }
      this.appendErrors++;
      this.onError(`${this.id}: appendBuffer failed: ${(error as Error).message}`);
      // The parser may be mid-box now: start again at the next segment.
      if (op.segment) this.droppingSegment = op.segment;
      this.queue.unshift({ kind: 'reset' });
      queueMicrotask(() => this.pump());
    }
  }

  /** Removes media far behind the playhead; true when a removal started (pump continues at updateend). */
  private evictIfNeeded(buffer: SourceBuffer): boolean {
    const ranges = buffer.buffered;
    if (ranges.length === 0) return false;
    const keepFrom = this.currentTime() - KEEP_BEHIND_S;
    if (ranges.start(0) >= keepFrom - REMOVE_SLACK_S) return false;
    return this.remove(buffer, keepFrom);
  }

  private remove(buffer: SourceBuffer, until: number): boolean {
    const ranges = buffer.buffered;
    if (ranges.length === 0 || until <= ranges.start(0)) return false;
    try {
      this.busy = true;
      buffer.remove(0, until);
      return true;
    } catch (error) {
      this.busy = false;
      this.onError(`${this.id}: removing old media failed: ${(error as Error).message}`);
      return false;
    }
  }
}
