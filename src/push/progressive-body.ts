/**
 * The body of a progressive push as it arrives (docs/multicast.md, "Progressive pushes"): each chunk is
 * released to the reader once it is whole and verified against its CHUNK_DIGEST (src/wire/chunk-digest.ts:
 * SHA-256, then the Ed25519 signature over `chunkSignatureBase`), in chunk order; no byte reaches the
 * reader before that. Bytes that do not arrive are fetched by `repair` (a unicast range request) while the
 * push still grows, and are verified the same way, so a repair needs no trust of its own.
 *
 * When a hole counts as lost (both deadlines follow the push's own pace):
 * - a hole followed by bytes that did arrive: once it has been seen for `reorderMs` (packets of one stream
 *   leave in order, so only reordering can still fill it);
 * - a hole at the end of what arrived, inside a chunk whose CHUNK_DIGEST gave its length: once no byte of
 *   the push (nor a chunk head) has come for half the chunk interval (measured between chunk heads; 50 to 150 ms),
 *   the packets that were to follow being lost too.
 *
 * Isomorphic: WebCrypto and ReadableStream only.
 */
import { chunkSignatureBase, type ChunkDigest } from '../wire/index.js';
import type { ReassemblerTimers } from './reassembler.js';
import { VerificationError } from './reassembly-errors.js';
import { type ByteRange, type ChunkPool, SparseBytes } from './sparse-bytes.js';

/** CHUNK_DIGEST frames held ahead of the chunk being released. */
export const MAX_PENDING_CHUNKS = 1024;
/** Tries of one hole's repair before the body fails: a range request can meet a dropped connection. */
export const REPAIR_ATTEMPTS = 3;
const REPAIR_RETRY_MS = 50;
const DEFAULT_CHUNK_INTERVAL_MS = 200;

export interface ProgressiveBodyOptions {
  pool: ChunkPool;
  sessionId: Uint8Array;
  authority: string;
  path: string;
  /** `created` of the push's signed response (0 when unsigned). */
  created: number;
  /** `keyid` of the push's signed response; undefined when the session is unsigned. */
  keyId: string | undefined;
  verifyChunk?: (keyId: string, base: Uint8Array, signature: Uint8Array) => Promise<void> | void;
  /** Body bytes [start, end) that did not arrive; resolves with exactly those bytes. */
  repair?: (range: ByteRange) => Promise<Uint8Array>;
  reorderMs: number;
  timers: ReassemblerTimers;
  /** Body bytes held changed by `delta` (for the reassembler's bounds). */
  onHeld(delta: number): void;
  onRepair(bytes: number): void;
  /** A chunk was released (and the body is not complete yet). */
  onProgress(): void;
  onComplete(): void;
  onFail(error: Error): void;
}

export class ProgressiveBody {
  readonly stream: ReadableStream<Uint8Array>;
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  private readonly bytes: SparseBytes;
  private readonly digests = new Map<number, ChunkDigest>();
  private nextIndex = 0;
  /** Body bytes released to the reader. */
  private released = 0;
  /** End of the chunks whose CHUNK_DIGEST arrived. */
  private knownEnd = 0;
  private releasing = false;
  private over = false;
  private readonly holesSeen = new Map<number, number>();
  private readonly repairing = new Set<number>();
  /** Failed repairs of each hole (by its start), for REPAIR_ATTEMPTS. */
  private readonly repairFailures = new Map<number, number>();
  private lastHeadAt: number | undefined;
  private chunkIntervalMs = DEFAULT_CHUNK_INTERVAL_MS;
  private lastArrivalAt: number;
  private timer: unknown;

  constructor(private readonly o: ProgressiveBodyOptions) {
    this.bytes = new SparseBytes(o.pool);
    this.lastArrivalAt = o.timers.now();
    this.stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.controller = controller;
      },
      cancel: () => this.fail(new VerificationError('the reader cancelled the body', 'digest'), false),
    });
  }

  /** Body bytes fetched by `repair`. */
  repairedBytes = 0;

  /** Body bytes released to the reader so far. */
  get releasedBytes(): number {
    return this.released;
  }

  /** Every chunk whose head arrived is released, and no repair is under way. */
  get idle(): boolean {
    return !this.releasing && this.repairing.size === 0 && this.released === this.knownEnd;
  }

  /** Body bytes held, not yet released. */
  get heldBytes(): number {
    return this.bytes.held;
  }

  /** What is missing now: the holes in the known chunks, then everything after them. */
  missing(): ByteRange[] {
    return [...this.bytes.missing(this.released, this.knownEnd), { start: this.knownEnd, end: Infinity }].filter(
      (r) => r.end > r.start,
    );
  }

  /** A CHUNK_DIGEST read on the push stream (in order: the walk checks index and offset). */
  addDigest(digest: ChunkDigest): void {
    if (this.over) return;
    const now = this.o.timers.now();
    if (this.lastHeadAt !== undefined)
      this.chunkIntervalMs = 0.75 * this.chunkIntervalMs + 0.25 * Math.max(1, now - this.lastHeadAt);
    this.lastHeadAt = now;
    this.lastArrivalAt = now; // the chunk's bytes follow its head: their deadline counts from here
    this.digests.set(digest.index, digest);
    this.knownEnd = digest.offset + digest.length;
    this.release();
    this.schedule();
  }

  /** Body bytes from the push stream or from a repair; bytes already held or released are ignored. */
  addBytes(offset: number, data: Uint8Array): void {
    if (this.over) return;
    const added = this.bytes.add(offset, data);
    if (added === 0) return;
    this.o.onHeld(added);
    this.lastArrivalAt = this.o.timers.now();
    this.release();
    this.schedule();
  }

  /** Ends the body with `error` (the reader sees it) and stops repairing. */
  fail(error: Error, notify = true): void {
    if (this.over) return;
    this.close();
    try {
      this.controller.error(error);
    } catch {
      // already closed by the reader
    }
    if (notify) this.o.onFail(error);
  }

  /** Releases every chunk that is whole, in order; one verification at a time. */
  private release(): void {
    if (this.releasing || this.over) return;
    const digest = this.digests.get(this.nextIndex);
    if (!digest || this.bytes.contiguousEnd(digest.offset) < digest.offset + digest.length) return;
    this.releasing = true;
    const chunk = this.bytes.peek(digest.offset, digest.length);
    this.verify(digest, chunk).then(
      () => {
        this.releasing = false;
        if (this.over) return;
        this.digests.delete(digest.index);
        this.nextIndex++;
        this.released = digest.offset + digest.length;
        this.o.onHeld(-this.bytes.skipTo(this.released));
        if (chunk.length > 0) this.controller.enqueue(chunk);
        if (digest.last) {
          this.close();
          this.controller.close();
          this.o.onComplete();
          return;
        }
        this.o.onProgress();
        this.release();
      },
      (error: unknown) => {
        this.releasing = false;
        this.fail(error instanceof Error ? error : new VerificationError(String(error), 'signature'));
      },
    );
  }

  private async verify(digest: ChunkDigest, chunk: Uint8Array): Promise<void> {
    const actual = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', new Uint8Array(chunk)));
    if (actual.some((b, i) => b !== digest.sha256[i]))
      throw new VerificationError(`chunk ${digest.index} of ${this.o.path}: SHA-256 mismatch`, 'digest');
    if (this.o.keyId === undefined || !this.o.verifyChunk) return;
    const base = chunkSignatureBase(this.o.sessionId, this.o.authority, this.o.path, this.o.created, digest);
    try {
      await this.o.verifyChunk(this.o.keyId, base, digest.signature);
    } catch (error) {
      throw new VerificationError(
        `chunk ${digest.index} of ${this.o.path}: ${error instanceof Error ? error.message : String(error)}`,
        'signature',
      );
    }
  }

  /** Finds the holes that count as lost, repairs them, and sets a timer for the next deadline. */
  private schedule(): void {
    if (this.over || !this.o.repair) return;
    const now = this.o.timers.now();
    const holes = this.bytes.missing(this.released, this.knownEnd);
    const tailMs = Math.min(150, Math.max(50, this.chunkIntervalMs / 2));
    let next = Infinity;
    for (const key of this.holesSeen.keys()) if (!holes.some((h) => h.start === key)) this.holesSeen.delete(key);
    for (const hole of holes) {
      if (this.repairing.has(hole.start)) continue;
      const seen = this.holesSeen.get(hole.start) ?? now;
      this.holesSeen.set(hole.start, seen);
      const followed = this.bytes.highest > hole.end;
      const due = followed ? seen + this.o.reorderMs : this.lastArrivalAt + tailMs;
      if (due <= now) this.repair(hole);
      else next = Math.min(next, due);
    }
    this.o.timers.clearTimeout(this.timer);
    this.timer = next === Infinity ? undefined : this.o.timers.setTimeout(() => this.schedule(), next - now);
  }

  private repair(hole: ByteRange): void {
    this.repairing.add(hole.start);
    this.holesSeen.delete(hole.start);
    this.o.repair!(hole).then(
      (bytes) => {
        this.repairing.delete(hole.start);
        if (this.over) return;
        if (bytes.length !== hole.end - hole.start)
          return this.fail(
            new VerificationError(
              `repair of ${this.o.path} bytes ${hole.start}-${hole.end - 1} brought ${bytes.length} bytes`,
              'digest',
            ),
          );
        this.repairedBytes += bytes.length;
        this.o.onRepair(bytes.length);
        this.addBytes(hole.start, bytes);
      },
      (error: unknown) => {
        this.repairing.delete(hole.start);
        if (this.over) return;
        const failures = (this.repairFailures.get(hole.start) ?? 0) + 1;
        this.repairFailures.set(hole.start, failures);
        if (failures >= REPAIR_ATTEMPTS) return this.fail(error instanceof Error ? error : new Error(String(error)));
        // Again shortly, for what is still missing then (late packets may have filled part of it).
        this.o.timers.clearTimeout(this.timer);
        this.timer = this.o.timers.setTimeout(() => this.schedule(), REPAIR_RETRY_MS);
      },
    );
  }

  private close(): void {
    this.over = true;
    this.o.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.o.onHeld(-this.bytes.held);
    this.bytes.recycle();
    this.digests.clear();
    this.repairFailures.clear();
  }
}
