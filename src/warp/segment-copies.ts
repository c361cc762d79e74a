/**
 * The copies of one segment (draft-lcurley-warp-00 §5.1: a stream ID names one segment, so two streams
 * with one ID carry the same bytes): the new session's copy after a GOAWAY (§5.4), or the same upstream's
 * after a reconnection, arrives while the first copy is still under way.
 *
 * - One copy **feeds** the segment: its bytes are handed on (`deliver`) as they come.
 * - A second copy waits on **standby**: the bytes it has that were handed on already are checked against
 *   them (when the owner keeps them, `handedOn`) and let go; the bytes it has beyond are held, at most
 *   `maxStandbyBytes`, past which the standby is stopped.
 * - When the feeding copy **breaks** (its stream ends without FIN, or its bytes differ from what was
 *   handed on), the standby takes over at the exact byte where the first stopped. Without a standby the
 *   segment is **orphaned**: the owner may wait for another copy (`attach`), or give up (`stop`).
 * - When the feeding copy **ends whole** (FIN, every byte handed on), the segment is complete and the
 *   standby is stopped: it is not needed.
 *
 * Isomorphic: the relay and the consumer (in the browser too) use it alike.
 */

export type StopReason = 'not-needed' | 'mismatch' | 'standby-bound';

export interface SegmentCopiesOptions<C, Why extends string> {
  /** The segment's next bytes, from the feeding copy. */
  deliver(bytes: Uint8Array): void;
  /** The feeding copy ended whole: every byte of the segment was handed on. */
  complete(): void;
  /** The feeding copy is gone and no standby is left; `why` is the reason given to `drop`, or 'mismatch'. */
  orphaned(why: Why | 'mismatch'): void;
  /** A copy this module let go: the owner stops its stream (STOP_SENDING) and counts it. */
  stopCopy(copy: C, why: StopReason): void;
  /** A copy took over from one that broke (a standby, or a copy attached to an orphaned segment). */
  tookOver?(copy: C): void;
  /** Bytes a standby may hold beyond what was handed on; past it, it is stopped ('standby-bound'). */
  maxStandbyBytes: number;
  /** The bytes handed on so far, to check a copy that catches up against; without it such bytes are trusted. */
  handedOn?(): readonly Uint8Array[];
}

interface CopyState<C> {
  readonly copy: C;
  /** Bytes of this copy consumed: checked against what was handed on, or handed on. */
  offset: number;
  /** Bytes received and not consumed yet (a standby ahead of the feeding copy). */
  readonly ahead: Uint8Array[];
  aheadBytes: number;
  /** FIN seen. */
  done: boolean;
  /** Where `offset` is in `handedOn()`'s parts, while this copy is being checked. */
  readonly cursor: { part: number; at: number };
}

/** Compares `n` bytes of `bytes` with `parts` from `cursor`, and moves the cursor on. */
function matchesAt(
  parts: readonly Uint8Array[],
  cursor: { part: number; at: number },
  bytes: Uint8Array,
  n: number,
): boolean {
  let i = 0;
  while (i < n) {
    const p = parts[cursor.part];
    if (!p) return false;
    if (cursor.at >= p.length) {
      cursor.part++;
      cursor.at = 0;
      continue;
    }
    const k = Math.min(p.length - cursor.at, n - i);
    for (let j = 0; j < k; j++) if (p[cursor.at + j] !== bytes[i + j]) return false;
    cursor.at += k;
    i += k;
  }
  return true;
}

export class SegmentCopies<C, Why extends string = 'broken'> {
  private feeding: CopyState<C> | undefined;
  private standby: CopyState<C> | undefined;
  private delivered = 0;
  private started = false;
  private over = false;

  constructor(private readonly o: SegmentCopiesOptions<C, Why>) {}

  /** Bytes handed on so far. */
  get deliveredBytes(): number {
    return this.delivered;
  }

  /** Complete, or given up (`stop`): nothing more is taken. */
  get finished(): boolean {
    return this.over;
  }

  /** No copy feeds the segment now (the last one broke); a new copy may still take over. */
  get orphaned(): boolean {
    return this.started && !this.over && !this.feeding;
  }

  /** Room for one more copy: none feeds it, or no standby waits. */
  get hasRoom(): boolean {
    return !this.over && (!this.feeding || !this.standby);
  }

  has(copy: C): boolean {
    return this.feeding?.copy === copy || this.standby?.copy === copy;
  }

  /** A new copy: it feeds the segment if none does, else waits on standby; undefined when there is no room. */
  attach(copy: C): 'feeding' | 'standby' | undefined {
    if (!this.hasRoom) return undefined;
    const state: CopyState<C> = { copy, offset: 0, ahead: [], aheadBytes: 0, done: false, cursor: { part: 0, at: 0 } };
    if (this.feeding) {
      this.standby = state;
      return 'standby';
    }
    this.feeding = state;
    if (this.started) this.o.tookOver?.(copy);
    this.started = true;
    return 'feeding';
  }

  /** The next bytes of `copy` (a copy that is not attached is ignored). */
  receive(copy: C, bytes: Uint8Array): void {
    const s = this.stateOf(copy);
    if (!s || s.done || bytes.length === 0) return;
    s.ahead.push(bytes);
    s.aheadBytes += bytes.length;
    this.advance(s);
  }

  /** `copy`'s stream ended with FIN. */
  end(copy: C): void {
    const s = this.stateOf(copy);
    if (!s || s.done) return;
    s.done = true;
    if (s === this.feeding) this.advance(s);
  }

  /** `copy` broke (its stream ended without FIN, or the owner gave up on it): detached, not stopped here. */
  drop(copy: C, why: Why): void {
    const s = this.stateOf(copy);
    if (s) this.lose(s, why);
  }

  /** Gives the segment up: every copy still attached is stopped ('not-needed'). */
  stop(): void {
    if (this.over) return;
    this.over = true;
    for (const s of this.detachAll()) if (!s.done) this.o.stopCopy(s.copy, 'not-needed');
  }

  private stateOf(copy: C): CopyState<C> | undefined {
    if (this.over) return undefined;
    if (this.feeding?.copy === copy) return this.feeding;
    if (this.standby?.copy === copy) return this.standby;
    return undefined;
  }

  private detachAll(): CopyState<C>[] {
    const all = [this.feeding, this.standby].filter((s): s is CopyState<C> => s !== undefined);
    this.feeding = undefined;
    this.standby = undefined;
    return all;
  }

  /**
   * Consumes a copy's bytes: those handed on already are checked (a copy taking over must carry the
   * same bytes), the rest is handed on by the feeding copy, or waits in a standby.
   */
  private advance(s: CopyState<C>): void {
    while (s.ahead.length > 0) {
      const head = s.ahead[0]!;
      if (s.offset < this.delivered) {
        const n = Math.min(head.length, this.delivered - s.offset);
        const parts = this.o.handedOn?.();
        if (parts && !matchesAt(parts, s.cursor, head, n)) return this.mismatch(s);
        s.offset += n;
        s.aheadBytes -= n;
        if (n === head.length) s.ahead.shift();
        else s.ahead[0] = head.subarray(n);
        continue;
      }
      if (s !== this.feeding) break; // a standby ahead of the feeding copy waits
      s.ahead.shift();
      s.aheadBytes -= head.length;
      s.offset += head.length;
      this.delivered += head.length;
      this.o.deliver(head);
      if (this.feeding !== s) return; // the owner stopped the segment while it was handed on
    }
    if (s === this.standby && s.aheadBytes > this.o.maxStandbyBytes) {
      this.standby = undefined;
      this.o.stopCopy(s.copy, 'standby-bound');
      return;
    }
    if (s === this.feeding && s.done) {
      // Whole only if it carried exactly what was handed on: a copy shorter than that differs.
      if (s.offset !== this.delivered) return this.mismatch(s);
      this.over = true;
      const standby = this.standby;
      this.feeding = undefined;
      this.standby = undefined;
      if (standby && !standby.done) this.o.stopCopy(standby.copy, 'not-needed');
      this.o.complete();
    }
  }

  private mismatch(s: CopyState<C>): void {
    this.o.stopCopy(s.copy, 'mismatch');
    this.lose(s, 'mismatch');
  }

  /** `s` is gone: a standby is forgotten; the feeding copy is replaced by the standby, or the segment is orphaned. */
  private lose(s: CopyState<C>, why: Why | 'mismatch'): void {
    if (s === this.standby) {
      this.standby = undefined;
      return;
    }
    if (s !== this.feeding) return;
    this.feeding = undefined;
    const next = this.standby;
    if (!next) return this.o.orphaned(why);
    this.standby = undefined;
    this.feeding = next;
    this.o.tookOver?.(next.copy);
    this.advance(next);
  }
}
