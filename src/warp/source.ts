/**
 * A Warp segment as a sender sees it (draft-lcurley-warp-00 §3): its HEADERS and its bytes, which may
 * still be growing. The producer makes them from the packager's live window, a relay from the streams
 * it reads upstream; a sender writes any of them to a session the same way.
 */
import { concatBytes, type WarpHeaders } from '../wire/index.js';

export interface WarpSource {
  readonly headers: WarpHeaders;
  /** The track the segment belongs to (catalog track ID). */
  readonly track: string;
  readonly init: boolean;
  /**
   * A media segment's number, when known (the producer's, or from the path a relay reads): the same for
   * every rendition's segment of one GoP, which is where a session switches renditions.
   */
  readonly segment?: number;
  /**
   * What a part is: the payload of one SEGMENT message (whole boxes, a CMAF chunk each) or of one APP
   * message, or `raw` stream bytes after HEADERS, already framed as messages (a relay passes them on as
   * they arrive, message boundaries or not).
   */
  readonly partKind: 'segment' | 'app' | 'raw';
  /** Parts so far. */
  readonly parts: readonly Uint8Array[];
  readonly complete: boolean;
  /** True when the source ended before completing (its producer or upstream went away). */
  readonly aborted: boolean;
  /** Calls `onPart` for each new payload and `onEnd` once; returns the unsubscribe function. */
  follow(onPart: (part: Uint8Array) => void, onEnd: (aborted: boolean) => void): () => void;
}

/** A WarpSource fed by its owner: parts are appended as they arrive, then it ends. */
export class GrowingSource implements WarpSource {
  readonly parts: Uint8Array[] = [];
  complete = false;
  aborted = false;
  segment: number | undefined;
  private readonly followers = new Set<{ onPart: (part: Uint8Array) => void; onEnd: (aborted: boolean) => void }>();
  private size = 0;

  constructor(
    readonly headers: WarpHeaders,
    readonly track: string,
    readonly init: boolean,
    readonly partKind: 'segment' | 'app' | 'raw' = 'segment',
  ) {}

  get byteLength(): number {
    return this.size;
  }

  append(part: Uint8Array): void {
    if (this.complete || this.aborted) return;
    this.parts.push(part);
    this.size += part.length;
    for (const f of this.followers) f.onPart(part);
  }

  end(aborted = false): void {
    if (this.complete || this.aborted) return;
    if (aborted) this.aborted = true;
    else this.complete = true;
    for (const f of [...this.followers]) f.onEnd(aborted);
    this.followers.clear();
  }

  follow(onPart: (part: Uint8Array) => void, onEnd: (aborted: boolean) => void): () => void {
    if (this.complete || this.aborted) {
      queueMicrotask(() => onEnd(this.aborted));
      return () => undefined;
    }
    const f = { onPart, onEnd };
    this.followers.add(f);
    return () => this.followers.delete(f);
  }

  /** All bytes so far. */
  bytes(): Uint8Array {
    return concatBytes(this.parts);
  }
}
