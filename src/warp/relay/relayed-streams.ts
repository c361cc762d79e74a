/**
 * A relay's streams by ID (draft-lcurley-warp-00 §4.4, §5.1): which upstream copy feeds each relayed
 * stream, and what became of the IDs seen.
 *
 * - **Dedup.** A stream whose ID is already known and complete is stopped (STOP_SENDING).
 * - **Takeover** (`SegmentCopies`). A second copy of a stream still under way (the new session after a
 *   GOAWAY, or the same upstream after a reconnection, re-sending its newest GoP) waits on standby: when
 *   the copy feeding the segment is lost, the other one takes over where it stopped, after its bytes so
 *   far were checked against what was forwarded. A segment whose copy is lost and that gets no other
 *   copy within `resumeMs` is aborted downstream (subscribers see a reset).
 * - **Upstream streams at once** (§4.4 at the relay's own limit, `maxUpstreamStreams`): past it the
 *   lowest-priority copy is stopped, which may be the new one.
 * - **Remembered IDs** (`maxRememberedIds`): the oldest finished entries are forgotten first; a stream
 *   still under way or cached is never forgotten.
 */
import { segmentNumberOf } from '../../media/live/url-scheme.js';
import type { SessionStream } from '../../webtransport/index.js';
import type { WarpHeaders } from '../../wire/index.js';
import { SegmentCopies } from '../segment-copies.js';
import { GrowingSource } from '../source.js';
import { Copy, type DropReason, Relayed, stopQuietly } from './relayed.js';
import type { RelayStreamCounters } from './stats.js';

export interface RelayedStreamsOptions {
  /** Bytes one upstream stream may carry; past it, it is aborted. Default 32 MiB. */
  maxStreamBytes?: number;
  /** Upstream streams relayed at once; past it the lowest-priority one is stopped (§4.4). Default 256. */
  maxUpstreamStreams?: number;
  /** Stream IDs remembered for dedup. Default 4096. */
  maxRememberedIds?: number;
  /** How long a segment whose upstream copy was lost waits for another copy. Default 2000 ms. */
  resumeMs?: number;
  log?: (line: string) => void;
}

export interface RelayedStreamsHooks {
  /** A new relayed stream, its first bytes to come: it goes to the cache and the subscribers. */
  created(rel: Relayed): void;
  /** A relayed stream grew by `n` bytes. */
  grew(rel: Relayed, n: number): void;
  /** A relayed stream was aborted downstream. */
  aborted(rel: Relayed): void;
  /** The catalog track of a stream, for its source. */
  trackIdOf(headers: WarpHeaders): string | undefined;
}

export class RelayedStreams {
  /** Known stream IDs: the relayed stream, or what became of it. */
  private readonly entries = new Map<number, Relayed | 'complete' | 'aborted'>();
  /** Upstream copies being relayed now. */
  private readonly copies = new Set<Copy>();
  private readonly orphans = new Set<Relayed>();
  private seq = 0;
  private closed = false;
  readonly maxStreamBytes: number;

  constructor(
    private readonly o: RelayedStreamsOptions,
    private readonly counters: RelayStreamCounters,
    private readonly hooks: RelayedStreamsHooks,
  ) {
    this.maxStreamBytes = o.maxStreamBytes ?? 32 * 1024 * 1024;
  }

  /** The stream `id` was relayed whole. */
  isComplete(id: number): boolean {
    const known = this.entries.get(id);
    return known === 'complete' || (known instanceof Relayed && known.source.complete);
  }

  /** A relayed stream's first validated bytes: a new stream, a second copy of one, or a duplicate (stopped). */
  attach(headers: WarpHeaders, stream: SessionStream): Copy | undefined {
    const id = headers.id!;
    const known = this.entries.get(id);
    if (known instanceof Relayed && !known.finished && known.copies.hasRoom) {
      const copy = new Copy(stream, headers.order ?? 0, this.seq++, known);
      if (!this.makeRoom(copy)) return undefined;
      if (known.finished) {
        stopQuietly(stream); // making room aborted it
        return undefined;
      }
      if (known.copies.orphaned) {
        clearTimeout(known.orphanTimer);
        this.orphans.delete(known);
      }
      this.copies.add(copy);
      known.copies.attach(copy); // feeding again (a takeover), or on standby
      return copy;
    }
    if (known === 'complete' || (known instanceof Relayed && !known.source.aborted)) {
      // Complete, or under way with two copies already.
      this.counters.duplicates++;
      stopQuietly(stream);
      return undefined;
    }
    // New (or in place of one that was aborted: subscribers that saw that one keep their reset; §5.1 IDs are unique).
    const media = (headers.depends?.length ?? 0) > 0;
    const source = new GrowingSource({ ...headers }, this.hooks.trackIdOf(headers) ?? '', !media, 'raw');
    // The segment number (from the path) is where a subscriber's rendition switch is made.
    if (media && headers.path !== undefined) source.segment = segmentNumberOf(headers.path);
    const rel = this.relayed(id, source, media ? headers.depends!.join(',') : undefined);
    const copy = new Copy(stream, headers.order ?? 0, rel.seq, rel);
    if (!this.makeRoom(copy)) return undefined;
    rel.copies.attach(copy);
    this.copies.add(copy);
    this.remember(id, rel);
    this.counters.streamsForwarded++;
    this.hooks.created(rel);
    return copy;
  }

  /** A stream that came whole (an init sent again): remembered under its ID like a relayed one. */
  adopt(id: number, source: GrowingSource): Relayed {
    const rel = this.relayed(id, source, undefined);
    this.remember(id, rel);
    this.counters.streamsForwarded++;
    return rel;
  }

  private relayed(id: number, source: GrowingSource, trackKey: string | undefined): Relayed {
    const rel = new Relayed(id, source, this.seq++, trackKey);
    rel.copies = new SegmentCopies<Copy, DropReason>({
      deliver: (bytes) => {
        rel.source.append(bytes);
        this.hooks.grew(rel, bytes.length);
      },
      complete: () => this.complete(rel),
      orphaned: (why) => this.orphaned(rel, why),
      stopCopy: (copy, why) => {
        copy.dropped = true;
        this.copies.delete(copy);
        stopQuietly(copy.stream);
        if (why === 'mismatch') {
          this.counters.malformed++;
          this.o.log?.(`relay: a copy of stream ${rel.id} differs from the bytes already forwarded; dropped`);
        }
      },
      tookOver: () => this.counters.takeovers++,
      maxStandbyBytes: this.maxStreamBytes,
      handedOn: () => rel.source.parts,
    });
    return rel;
  }

  /** §4.4 at the relay's own limit: the lowest-priority copy is stopped, which may be the new one. */
  private makeRoom(copy: Copy): boolean {
    const max = this.o.maxUpstreamStreams ?? 256;
    while (this.copies.size >= max) {
      let victim: Copy | undefined;
      for (const c of this.copies)
        if (!victim || c.order > victim.order || (c.order === victim.order && c.seq > victim.seq)) victim = c;
      this.counters.limited++;
      if (!victim || victim.order < copy.order || (victim.order === copy.order && victim.seq < copy.seq)) {
        stopQuietly(copy.stream);
        return false;
      }
      this.drop(victim, 'limit');
    }
    return true;
  }

  /** The next bytes of `copy`, validated by its reader. */
  receive(copy: Copy, bytes: Uint8Array): void {
    if (!copy.dropped) copy.rel.copies.receive(copy, bytes);
  }

  /** `copy`'s stream ended with FIN, every byte validated. */
  ended(copy: Copy): void {
    if (copy.dropped) return;
    this.copies.delete(copy);
    copy.rel.copies.end(copy);
  }

  /** The relay gives up on `copy` (or lost it with its session): a standby takes over, or the segment waits or is aborted. */
  drop(copy: Copy, why: DropReason): void {
    if (copy.dropped) return;
    copy.dropped = true;
    this.copies.delete(copy);
    if (why !== 'lost') stopQuietly(copy.stream);
    copy.rel.copies.drop(copy, why);
  }

  private complete(rel: Relayed): void {
    this.forgetOrphan(rel);
    rel.source.end();
    if (!rel.cached) this.remember(rel.id, 'complete');
  }

  private orphaned(rel: Relayed, why: DropReason): void {
    if (why !== 'lost' || this.closed) return this.abort(rel);
    // Another copy may come (the upstream again after a reconnection, or the session a GOAWAY names).
    this.orphans.add(rel);
    rel.orphanTimer = setTimeout(() => {
      this.orphans.delete(rel);
      if (rel.copies.orphaned) this.abort(rel);
    }, this.o.resumeMs ?? 2000);
  }

  private abort(rel: Relayed): void {
    if (rel.finished) return;
    this.counters.aborted++;
    this.forgetOrphan(rel);
    rel.copies.stop();
    rel.source.end(true);
    this.hooks.aborted(rel);
    this.remember(rel.id, 'aborted');
  }

  private forgetOrphan(rel: Relayed): void {
    clearTimeout(rel.orphanTimer);
    this.orphans.delete(rel);
  }

  /** Remembers what became of an ID, bounded: the oldest finished entries are forgotten first. */
  private remember(id: number, value: Relayed | 'complete' | 'aborted'): void {
    this.entries.delete(id);
    this.entries.set(id, value);
    const max = this.o.maxRememberedIds ?? 4096;
    if (this.entries.size <= max) return;
    for (const [key, e] of this.entries) {
      if (this.entries.size <= max) break;
      if (!(e instanceof Relayed) || (e.finished && !e.cached)) this.entries.delete(key);
    }
  }

  /** A stream left the cache: once it is finished, only what became of its ID is remembered. */
  uncached(rel: Relayed): void {
    if (rel.finished && this.entries.get(rel.id) === rel)
      this.remember(rel.id, rel.source.complete ? 'complete' : 'aborted');
  }

  get rememberedIds(): number {
    return this.entries.size;
  }

  get activeCopies(): number {
    return this.copies.size;
  }

  /** Nothing waits for another copy any more. */
  close(): void {
    this.closed = true;
    for (const rel of this.orphans) clearTimeout(rel.orphanTimer);
    this.orphans.clear();
  }
}
