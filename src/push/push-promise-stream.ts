/**
 * Stream 0 of a multicast push session, as read by the reassembler. In the profile's server push
 * (RFC 9114 §4.6) stream 0 stands in for the request stream and carries every PUSH_PROMISE (§7.2.5: push
 * ID + QPACK field section). Its contiguous prefix is parsed with {@link Http3FrameReader}. Past a hole
 * (a lost packet: nothing is retransmitted), each run of stream 0 that starts a STREAM frame is parsed on
 * its own, so the promises behind a lost one still arrive at once; a hole older than the push timeout is
 * given up and framing continues from the next trusted run.
 */
import { Http3FrameReader, Http3FrameType, WireError, readVarint, varintLengthOf } from '../wire/index.js';
import { SparseBytes, type ByteRange } from './sparse-bytes.js';

/** Stream 0 bytes accepted beyond the parsed prefix: promises are a few hundred bytes, so a genuine hole is far smaller. */
const MAX_AHEAD = 1024 * 1024;
/** Stream 0 islands remembered at once (each is one STREAM frame start past a hole). */
const MAX_ISLANDS = 256;
/** A frame on stream 0 past a hole longer than this is not a PUSH_PROMISE of the profile. */
const MAX_PROMISE_FRAME = 64 * 1024;

/** A run of stream 0 past a hole, parsed on its own (see parseIslands). */
interface Island {
  /** Offset parsed to; Infinity when the run does not parse as frames. */
  cursor: number;
  /** A promise parsed from it passed the verifier (or there is none): only such a run is skipped to. */
  trusted: boolean;
}

/**
 * Where a promise parsed past a hole came from. The verifier's verdict on it goes back to the stream:
 * `trust` makes its run a point a stale hole may be skipped to, `discard` forgets its bytes.
 */
export interface IslandPromise {
  readonly island: Island;
  readonly frame: ByteRange;
}

export interface PushPromiseStreamOptions {
  /** A PUSH_PROMISE frame: `from` is set when it was parsed past a hole. */
  onPromise(pushId: number, fieldSection: Uint8Array, from?: IslandPromise): void;
  /** A hole that has held the parsed prefix still for this long is given up. */
  timeoutMs: number;
  now(): number;
}

export class PushPromiseStream {
  private readonly bytes = new SparseBytes();
  private reader = new Http3FrameReader();
  /** Runs past a hole: STREAM-frame start offset → its island. */
  private readonly islands = new Map<number, Island>();
  /** Since when the parsed prefix has not moved while bytes wait past a hole. */
  private stuckSince: number | undefined;
  /** The parsed prefix ends here. */
  private fed = 0;
  /** A malformed frame: framing is lost until a hole is skipped to a trusted island. */
  private broken = false;
  private held = 0;
  /** Refused bytes and frames (`malformed`), STREAM frames that brought nothing new, new bytes, holes given up. */
  readonly counts = { malformed: 0, duplicates: 0, bytes: 0, skips: 0 };

  constructor(private readonly o: PushPromiseStreamOptions) {}

  /** Bytes held now (past the parsed prefix: its bytes are released once parsed). */
  get bufferedBytes(): number {
    return this.held;
  }

  /**
   * A STREAM frame of stream 0. `room`: the bytes the session may still buffer; false when the frame's new
   * bytes do not fit it (they are not kept).
   */
  add(offset: number, data: Uint8Array, room: number): boolean {
    if (offset + data.length > this.fed + MAX_AHEAD) {
      this.counts.malformed++; // far beyond any genuine hole: an injected packet, or a session we cannot follow
      return true;
    }
    const fresh = this.bytes.newBytes(offset, data);
    if (fresh === 0) {
      if (data.length > 0) this.counts.duplicates++;
      return true;
    }
    if (fresh > room) return false;
    this.bytes.add(offset, data);
    this.held += fresh;
    this.counts.bytes += fresh;
    if (offset > this.fed && !this.islands.has(offset)) {
      this.islands.set(offset, { cursor: offset, trusted: false });
      if (this.islands.size > MAX_ISLANDS) this.islands.delete(this.islands.keys().next().value as number);
    }
    this.parsePrefix();
    this.parseIslands();
    return true;
  }

  /** The verifier accepted a promise parsed past a hole: its run may be skipped to. */
  trust(from: IslandPromise): void {
    from.island.trusted = true;
  }

  /**
   * The verifier refused a promise parsed past a hole. Stream 0 keeps the first copy of each offset
   * (RFC 9000 §2.2), so bytes injected ahead of the genuine ones would shadow them: they are forgotten.
   */
  discard(from: IslandPromise): void {
    this.discardBytes(from.frame.start, from.frame.end);
  }

  /**
   * A hole that has held the parsed prefix still for longer than the push timeout will not be filled:
   * skip to the nearest trusted island (one whose promise passed the verifier, so that an injected
   * packet far ahead can never make the reader jump over genuine promises), freeing the bytes before
   * it; framing goes on from there.
   */
  skipStaleHole(): void {
    if (this.stuckSince === undefined || this.o.now() - this.stuckSince < this.o.timeoutMs) return;
    let next = Infinity;
    for (const [start, island] of this.islands) if (island.trusted && start > this.fed && start < next) next = start;
    if (next === Infinity) return;
    this.held -= this.bytes.skipTo(next);
    this.fed = next;
    this.reader = new Http3FrameReader();
    this.broken = false;
    this.stuckSince = undefined;
    this.counts.skips++;
    // The island at `next` was parsed already; the main reader takes over from its start (promises dedupe).
    for (const start of this.islands.keys()) if (start <= next) this.islands.delete(start);
    this.parsePrefix();
  }

  /** Parses the contiguous prefix from where it stopped (RFC 9114 §7.1 framing). */
  private parsePrefix(): void {
    const end = this.bytes.prefixEnd;
    const advanced = end > this.fed;
    if (advanced) {
      if (!this.broken) this.reader.push(this.bytes.read(this.fed, end - this.fed));
      this.fed = end;
      this.held -= this.bytes.releasePrefix();
      for (const start of this.islands.keys()) if (start < end) this.islands.delete(start);
    }
    if (!this.broken) {
      try {
        for (let event; (event = this.reader.next()) !== undefined; ) {
          if (event.kind === 'push-promise') this.o.onPromise(event.pushId, event.fieldSection);
        }
      } catch (error) {
        if (!(error instanceof WireError)) throw error;
        // §7.1: a malformed frame; framing is lost until the next STREAM frame that starts a frame.
        this.counts.malformed++;
        this.broken = true;
      }
    }
    if (advanced || this.bytes.highest <= this.fed) this.stuckSince = undefined;
    if (this.bytes.highest > this.fed || this.broken) this.stuckSince ??= this.o.now();
  }

  /**
   * Stream 0 past a hole. The profile never retransmits, so a lost packet of stream 0 would hold back
   * every later promise. Both pushcast's sender and nghq's start each PUSH_PROMISE at the start of a
   * STREAM frame, so each held run that starts where a STREAM frame started is parsed on its own
   * ("island"): complete PUSH_PROMISE frames raise their pushes at once (a promise seen twice, once here
   * and once when the hole fills, is one push). Bytes that do not parse there are left alone; with a
   * verifier a mis-framed or injected promise never passes anyway.
   */
  private parseIslands(): void {
    for (const island of this.islands.values()) {
      if (island.cursor === Infinity) continue;
      const end = this.bytes.contiguousEnd(island.cursor);
      if (end <= island.cursor) continue;
      const bytes = this.bytes.read(island.cursor, end - island.cursor);
      let pos = 0;
      try {
        for (;;) {
          if (bytes.length - pos < 2 || bytes.length - pos < varintLengthOf(bytes[pos]!)) break;
          const type = readVarint(bytes, pos);
          if (bytes.length - pos - type.length < varintLengthOf(bytes[pos + type.length]!)) break;
          const length = readVarint(bytes, pos + type.length);
          const payloadAt = pos + type.length + length.length;
          if (length.value > MAX_PROMISE_FRAME)
            throw new WireError('frame-too-large', payloadAt, 'PUSH_PROMISE too large');
          if (bytes.length < payloadAt + length.value) break;
          if (type.value === Http3FrameType.PUSH_PROMISE) {
            const payload = bytes.subarray(payloadAt, payloadAt + length.value);
            const pushId = readVarint(payload, 0);
            const frame = { start: island.cursor + pos, end: island.cursor + payloadAt + length.value };
            this.o.onPromise(pushId.value, payload.slice(pushId.length), { island, frame });
          }
          pos = payloadAt + length.value;
        }
        island.cursor += pos;
      } catch (error) {
        if (!(error instanceof WireError)) throw error;
        // Not a frame start after all: not genuine, so it must not hold these offsets against the real bytes.
        this.discardBytes(island.cursor + pos, end);
        island.cursor = Infinity;
      }
    }
  }

  /** Forgets bytes found not genuine while they are still ahead of the parsed prefix. */
  private discardBytes(start: number, end: number): void {
    if (end <= this.fed) return;
    this.held -= this.bytes.remove(start, end);
    for (const at of this.islands.keys()) if (at >= start && at < end) this.islands.delete(at);
  }
}
