/**
 * The multicast reassembler: QUIC short-header packets of an HTTP/3 multicast push
 * session (draft-pardue-quic-http-mcast as nghq sends it, ALPN `h3m-07`) in, one {@link ResourcePushEvent}
 * per PUSH_PROMISE out, its `response` settling once the push stream is complete and verified.
 *
 * ```ts
 * const reassembler = new MulticastReassembler({ sessionId, verify });
 * reassembler.addEventListener(RESOURCE_PUSH, (e) => { const { request, response } = e as ResourcePushEvent; … });
 * socket.on('message', (datagram) => reassembler.enqueuePacket(datagram));
 * ```
 *
 * How it reads the session:
 * - One packet per datagram; the Destination Connection ID must equal the configured session ID, else
 *   the packet is dropped and counted (`wrongSession`). A packet that any decoder refuses (WireError)
 *   is dropped whole and counted (`malformed`): enqueuePacket never throws.
 * - STREAM frames (RFC 9000 §19.8) are stored per stream in a sparse set of byte ranges
 *   ({@link SparseBytes}), so order, duplicates and loss do not matter (RFC 9000 §2.2: a stream is an
 *   ordered byte sequence; data at an offset never changes, the first copy is kept). FIN fixes the final size.
 * - Server push (RFC 9114 §4.6): stream 0 stands in for the request stream ({@link PushPromiseStream}:
 *   push-promise-stream.ts, which parses it across holes); each PUSH_PROMISE (RFC 9114 §7.2.5) whose
 *   request passes the verifier raises an event.
 * - Push streams are server-initiated unidirectional streams (stream ID ≡ 3 mod 4, RFC 9000 §2.1). Their
 *   frame chain is walked across holes (RFC 9114 §6.2.2: type 0x01, push ID; §4.1: HEADERS, DATA…):
 *   a frame header at a known frame boundary is read as soon as its bytes arrive, even when earlier DATA
 *   payload is still missing, so each DATA frame maps its stream bytes to body offsets. The chain stops
 *   only where the bytes of a frame header (or of the stream header, or of HEADERS) are missing; a
 *   stream whose start is missing is therefore identified (its push ID known) only later, and a
 *   PUSH_PROMISE may arrive before or after its push stream.
 * - Complete = FIN seen, every byte up to it held, the chain walked to its end. Then the body is the
 *   concatenation of the DATA payloads, `digest: sha256=<base64>` (RFC 3230, as nghq sends it) is checked
 *   with WebCrypto, then the `verify` hook (signatures), then `response` resolves. A push that does not
 *   complete rejects with an error of reassembly-errors.ts; an IncompletePushError lists what is missing
 *   (missing-ranges.ts) for a repair.
 *
 * Isomorphic: no Node API; Request, Response, ReadableStream, EventTarget, crypto.subtle, btoa exist in Node ≥ 20,
 * browsers and Service Workers.
 */
import {
  CHUNK_DIGEST_FRAME_TYPE,
  Http3FrameType,
  UniStreamType,
  WireError,
  decodeFieldSection,
  decodeFrames,
  readVarint,
  shortHeaderLength,
  shortHeaderPacketNumber,
  toBase64,
  varintLengthOf,
  decodeChunkDigest,
  type ChunkDigest,
  type FieldLine,
  type PacketNumberLength,
  type QuicFrame,
} from '../wire/index.js';
import { missingBody, type DataFrameMap } from './missing-ranges.js';
import { MAX_PENDING_CHUNKS, ProgressiveBody } from './progressive-body.js';
import { PushPromiseStream, type IslandPromise } from './push-promise-stream.js';
import {
  IncompletePushError,
  MalformedPushError,
  PushLimitError,
  VerificationError,
  type IncompleteReason,
  type PushLimit,
} from './reassembly-errors.js';
import { RESOURCE_PUSH, ResourcePushEvent } from './resource-push-event.js';
import { ChunkPool, SparseBytes, type ByteRange } from './sparse-bytes.js';

// ---------------------------------------------------------------------------------------------------
// Options and stats

/**
 * Signature checks on pushes, e.g. `PushSignatureVerifier` (src/push/signatures.ts). Both throw (or
 * reject) when the fields are not authentic. Field sections include pseudo-fields.
 */
export interface PushVerifier {
  verifyRequest(requestFields: readonly FieldLine[]): Promise<void> | void;
  verifyResponse(requestFields: readonly FieldLine[], responseFields: readonly FieldLine[]): Promise<void> | void;
  /** A progressive push's response (no length, no digest: its chunks are signed). Without it such pushes fail. */
  verifyProgressiveResponse?(
    requestFields: readonly FieldLine[],
    responseFields: readonly FieldLine[],
  ): Promise<void> | void;
  /** A chunk's signature by the key that signed its push's response. */
  verifyChunk?(keyId: string, base: Uint8Array, signature: Uint8Array): Promise<void> | void;
}

export interface ReassemblerTimers {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface MulticastReassemblerOptions {
  /** The session ID: the Destination Connection ID of every packet of the session (1 to 20 bytes). */
  sessionId: Uint8Array;
  /** Time after its PUSH_PROMISE for a push to complete (a progressive one: for its next chunk); default 10 000 ms. */
  timeoutMs?: number;
  /** A digest header is required (default true); without it the push fails verification. */
  requireDigest?: boolean;
  /**
   * Signature checks. The promised request is checked before its event is raised: a promise that fails
   * raises no event at all and is counted as `forged` (so is a goaway that fails: it is ignored). The
   * response is checked after the digest; a failure rejects the push with VerificationError.
   */
  verifier?: PushVerifier;
  /**
   * Pushes at once; default 64. Bounds both the promised pushes not yet settled (a promise past it fails
   * its push) and the push streams buffered (a new stream past it is not buffered, only counted).
   */
  maxConcurrentPushes?: number;
  /** Stream bytes buffered for one push; default 32 MiB. */
  maxBytesPerPush?: number;
  /** Stream bytes buffered in all; default 128 MiB. */
  maxTotalBytes?: number;
  /** Longest a push stream is kept, promised or not, from its first byte; default 60 000 ms. */
  maxAgeMs?: number;
  /** Clock and timer; default Date.now and the global setTimeout. */
  timers?: ReassemblerTimers;
  /**
   * Fetches body bytes [start, end) of a progressive push that did not arrive (e.g. a unicast range
   * request, `rangeRepair` in repair.ts) while the push still grows; they are verified against the signed
   * chunk digests like pushed bytes. Without it, a progressive push with a loss fails at its timeout.
   */
  repair?: (request: Request, range: ByteRange) => Promise<Uint8Array>;
  /** How long a hole followed by bytes that did arrive waits for reordered packets before a repair; default 20 ms. */
  reorderMs?: number;
}

export interface ReassemblerStats {
  packets: number;
  /** Packets dropped: wrong session ID plus malformed. */
  dropped: number;
  wrongSession: number;
  malformed: number;
  /** STREAM frames that brought no new byte. */
  duplicates: number;
  pushesPromised: number;
  pushesCompleted: number;
  pushesFailed: number;
  /** Promises (and goaways) whose request signature failed: never raised as events. */
  forged: number;
  /** Holes in stream 0 given up (a lost packet of stream 0 older than the push timeout). */
  requestStreamSkips: number;
  /**
   * Packets not received, estimated from packet-number gaps: (largest − first + 1) − packets of the
   * session received (duplicates are not told apart, so this is a lower bound under duplication).
   */
  lost: number;
  /** Pushes failed by a bound, by bound. */
  limitsHit: Record<PushLimit, number>;
  /** New stream bytes accepted. */
  bytes: number;
  /** Body bytes of progressive pushes fetched by `repair`. */
  repairedBytes: number;
  /** Progressive pushes completed with bytes fetched by `repair` (counted in pushesCompleted too). */
  pushesRepaired: number;
  /** Stream bytes buffered now. */
  bufferedBytes: number;
}

// ---------------------------------------------------------------------------------------------------
// State

interface PushStream {
  readonly streamId: number;
  readonly bytes: SparseBytes;
  readonly createdAt: number;
  finalSize?: number;
  pushId?: number;
  /** Next frame boundary the chain walk reads at. */
  pos: number;
  stage: 'stream-header' | 'frames' | 'ignored';
  fields?: FieldLine[];
  contentLength?: number;
  readonly data: DataFrameMap[];
  bodyKnown: number;
  reset: boolean;
  error?: Error;
  /** A progressive push (HEADERS without content-length and digest): its body is released chunk by chunk. */
  progressive?: {
    /** Index the next CHUNK_DIGEST must carry. */
    nextIndex: number;
    last?: ChunkDigest;
    /** CHUNK_DIGEST frames read before the body was opened. */
    pending: ChunkDigest[];
    body?: ProgressiveBody;
    /** Where the frame walk waits at a hole with later bytes held, and the timer that gives it up. */
    stuckAt?: number;
    stuckTimer?: unknown;
  };
}

interface Push {
  readonly pushId: number;
  readonly request: Request;
  readonly requestFields: readonly FieldLine[];
  readonly resolve: (response: Response) => void;
  readonly reject: (error: Error) => void;
  timer: unknown;
  streamId?: number;
  /** `streaming`: a progressive push whose response was given, its body still arriving. */
  state: 'waiting' | 'verifying' | 'streaming' | 'settled';
  body?: ProgressiveBody;
  /** A later push was promised while this one still streamed: its end is overdue. */
  superseded?: boolean;
}

/** How long a progressive push still streaming waits for its end once a later push is promised. */
const SUPERSEDED_WAIT_MS = 100;
/** How long a progressive push's frame walk waits at a hole, later bytes held, before the frame counts as lost. */
const LOST_HEAD_WAIT_MS = 150;
const REQUEST_STREAM = 0;
/** Pushes and streams remembered as finished, so that late duplicates raise nothing. */
const FINISHED_MEMORY = 4096;

const defaultTimers: ReassemblerTimers = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

function isPushStreamId(id: number): boolean {
  return id % 4 === 3; // RFC 9000 §2.1: server-initiated unidirectional
}

/** RFC 3230 `Digest: sha-256=…, md5=…`; nghq writes `sha256=`. The SHA-256 value, if any. */
function sha256FromDigest(value: string): string | undefined {
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const algorithm = part.slice(0, eq).trim().toLowerCase();
    if (algorithm === 'sha-256' || algorithm === 'sha256') return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * The body as a byte stream that takes its buffer over: Response copies bytes given as such, and a
 * reader copies them again. `body` is copied first unless it is the whole of its buffer (a view of
 * bytes held elsewhere must not be taken over).
 */
function bodyStream(body: Uint8Array<ArrayBuffer>): ReadableStream<Uint8Array> | Uint8Array<ArrayBuffer> {
  const own = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength ? body : body.slice();
  try {
    return new ReadableStream({
      type: 'bytes',
      start(controller) {
        if (own.byteLength > 0) controller.enqueue(own);
        controller.close();
      },
    });
  } catch {
    return own; // an engine without byte streams
  }
}

// ---------------------------------------------------------------------------------------------------

/** The event a reassembler raises once when its sender ends the session (draft-pardue-quic-http-mcast §5.5). */
export const GOAWAY = 'goaway';

export class MulticastReassembler extends EventTarget {
  private ended = false;

  /** Whether the sender has ended the session with a goaway. */
  get sessionEnded(): boolean {
    return this.ended;
  }
  private readonly sessionId: Uint8Array;
  private readonly timeoutMs: number;
  private readonly requireDigest: boolean;
  private readonly verifier: PushVerifier | undefined;
  /** Promises whose request signature is being checked (bounded by maxConcurrentPushes). */
  private verifyingPromises = 0;
  private firstPacketNumber: number | undefined;
  private sessionPackets = 0;
  private readonly maxConcurrentPushes: number;
  private readonly maxBytesPerPush: number;
  private readonly maxTotalBytes: number;
  private readonly maxAgeMs: number;
  private readonly timers: ReassemblerTimers;
  private readonly repair: MulticastReassemblerOptions['repair'];
  private readonly reorderMs: number;

  private largestPacketNumber: number | undefined;
  private readonly promiseStream: PushPromiseStream;
  private readonly streams = new Map<number, PushStream>();
  /** Chunks of push streams completed, filled again by later ones. */
  private readonly chunkPool = new ChunkPool();
  private readonly pushes = new Map<number, Push>();
  private readonly streamByPush = new Map<number, number>();
  private readonly finishedStreams = new Set<number>();
  private readonly finishedPushes = new Set<number>();
  /** Bytes buffered of push streams (stream 0's are the promise stream's). */
  private buffered = 0;
  private readonly counters: Omit<
    ReassemblerStats,
    'bufferedBytes' | 'dropped' | 'limitsHit' | 'lost' | 'requestStreamSkips'
  > = {
    packets: 0,
    wrongSession: 0,
    malformed: 0,
    duplicates: 0,
    pushesPromised: 0,
    pushesCompleted: 0,
    pushesFailed: 0,
    forged: 0,
    bytes: 0,
    repairedBytes: 0,
    pushesRepaired: 0,
  };
  private readonly limits: Record<PushLimit, number> = {
    'concurrent-pushes': 0,
    'bytes-per-push': 0,
    'total-bytes': 0,
    age: 0,
  };

  constructor(options: MulticastReassemblerOptions) {
    super();
    if (options.sessionId.length > 20) throw new RangeError('a session ID is at most 20 bytes (RFC 9000 §17.2)');
    this.sessionId = options.sessionId.slice();
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.requireDigest = options.requireDigest ?? true;
    this.verifier = options.verifier;
    this.maxConcurrentPushes = options.maxConcurrentPushes ?? 64;
    this.maxBytesPerPush = options.maxBytesPerPush ?? 32 * 1024 * 1024;
    this.maxTotalBytes = options.maxTotalBytes ?? 128 * 1024 * 1024;
    this.maxAgeMs = options.maxAgeMs ?? 60_000;
    this.timers = options.timers ?? defaultTimers;
    this.repair = options.repair;
    this.reorderMs = options.reorderMs ?? 20;
    this.promiseStream = new PushPromiseStream({
      onPromise: (pushId, fieldSection, from) => this.onPushPromise(pushId, fieldSection, from),
      timeoutMs: this.timeoutMs,
      now: () => this.timers.now(),
    });
  }

  get stats(): ReassemblerStats {
    const promises = this.promiseStream.counts;
    const malformed = this.counters.malformed + promises.malformed;
    return {
      ...this.counters,
      malformed,
      duplicates: this.counters.duplicates + promises.duplicates,
      bytes: this.counters.bytes + promises.bytes,
      requestStreamSkips: promises.skips,
      dropped: this.counters.wrongSession + malformed,
      lost:
        this.firstPacketNumber === undefined || this.largestPacketNumber === undefined
          ? 0
          : Math.max(0, this.largestPacketNumber - this.firstPacketNumber + 1 - this.sessionPackets),
      limitsHit: { ...this.limits },
      bufferedBytes: this.bufferedBytes,
    };
  }

  /** Stream bytes buffered now, of push streams and stream 0. */
  private get bufferedBytes(): number {
    return this.buffered + this.promiseStream.bufferedBytes;
  }

  /** One datagram holding one QUIC short-header packet. Never throws for what the datagram holds. */
  enqueuePacket(datagram: Uint8Array): void {
    this.counters.packets++;
    this.sweepAge();
    this.promiseStream.skipStaleHole();
    let frames: QuicFrame[];
    try {
      // decodeShortHeaderPacket's checks without its object: this runs for every datagram.
      const dcidLength = this.sessionId.length;
      const packetNumber = shortHeaderPacketNumber(datagram, {
        dcidLength,
        largestPacketNumber: this.largestPacketNumber,
      });
      for (let i = 0; i < dcidLength; i++) {
        if (datagram[1 + i] !== this.sessionId[i]) {
          this.counters.wrongSession++;
          return;
        }
      }
      const pnLength = ((datagram[0]! & 0x03) + 1) as PacketNumberLength; // RFC 9000 §17.3.1
      frames = decodeFrames(datagram.subarray(shortHeaderLength(dcidLength, pnLength)));
      this.largestPacketNumber = Math.max(this.largestPacketNumber ?? 0, packetNumber);
      this.firstPacketNumber = Math.min(this.firstPacketNumber ?? packetNumber, packetNumber);
      this.sessionPackets++;
    } catch (error) {
      if (!(error instanceof WireError)) throw error;
      this.counters.malformed++;
      return;
    }
    for (const frame of frames) {
      if (frame.kind === 'stream') this.onStreamFrame(frame.streamId, frame.offset, frame.data, frame.fin);
      else if (frame.kind === 'reset-stream') this.onReset(frame.streamId, frame.finalSize);
    }
  }

  /** Gives up a push: its response rejects with IncompletePushError (reason `cancelled`). */
  cancel(request: Request): boolean {
    for (const push of this.pushes.values()) {
      if (push.request === request && push.state !== 'settled') {
        this.failIncomplete(push, 'cancelled', 'cancelled');
        return true;
      }
    }
    return false;
  }

  // -------------------------------------------------------------------------------------------------
  // Streams

  private onStreamFrame(streamId: number, offset: number, data: Uint8Array, fin: boolean): void {
    if (streamId === REQUEST_STREAM) {
      if (!this.promiseStream.add(offset, data, this.maxTotalBytes - this.bufferedBytes)) this.limits['total-bytes']++;
      return;
    }
    if (!isPushStreamId(streamId) || this.finishedStreams.has(streamId)) return;
    let stream = this.streams.get(streamId);
    if (!stream) {
      if (this.streams.size >= this.maxConcurrentPushes && !this.evictUnpromisedStream()) {
        this.limits['concurrent-pushes']++;
        return; // past the bound and every buffered stream is promised: the new one is only counted
      }
      stream = {
        streamId,
        bytes: new SparseBytes(this.chunkPool),
        createdAt: this.timers.now(),
        pos: 0,
        stage: 'stream-header',
        data: [],
        bodyKnown: 0,
        reset: false,
      };
      this.streams.set(streamId, stream);
    }
    const end = offset + data.length;
    // RFC 9000 §4.5: the final size never changes and no data lies beyond it.
    if (
      (stream.finalSize !== undefined && (end > stream.finalSize || (fin && end !== stream.finalSize))) ||
      (fin && end < stream.bytes.highest)
    ) {
      this.counters.malformed++;
      return;
    }
    if (fin) stream.finalSize = end;
    const fresh = stream.bytes.newBytes(offset, data);
    if (fresh === 0) {
      if (data.length > 0) this.counters.duplicates++;
    } else {
      if (stream.bytes.held + fresh > this.maxBytesPerPush)
        return this.overLimit(stream, 'bytes-per-push', `${stream.bytes.held + fresh} bytes > ${this.maxBytesPerPush}`);
      if (this.bufferedBytes + fresh > this.maxTotalBytes)
        return this.overLimit(
          stream,
          'total-bytes',
          `${this.bufferedBytes + fresh} bytes buffered > ${this.maxTotalBytes}`,
        );
      stream.bytes.add(offset, data);
      this.buffered += fresh;
      this.counters.bytes += fresh;
    }
    this.walk(stream);
    this.watchWalk(stream);
    const body = stream.progressive?.body;
    if (body && fresh > 0)
      for (const map of stream.data) {
        const from = Math.max(offset, map.streamStart);
        const to = Math.min(end, map.streamStart + map.length);
        if (to > from) body.addBytes(map.bodyStart + from - map.streamStart, data.subarray(from - offset, to - offset));
      }
    this.advance(stream);
  }

  /**
   * Makes room for a new push stream by dropping the oldest buffered stream that no promise waits for
   * (injected streams, or streams whose promise was lost), so that such streams cannot crowd out the
   * session's genuine pushes. False when every buffered stream is promised.
   */
  private evictUnpromisedStream(): boolean {
    for (const stream of this.streams.values()) {
      const promised = stream.pushId !== undefined && this.pushes.has(stream.pushId);
      if (!promised) {
        this.dropStream(stream);
        this.limits['concurrent-pushes']++;
        return true;
      }
    }
    return false;
  }

  /** Promised pushes not yet settled. */
  private pendingPushes(): number {
    let n = 0;
    for (const push of this.pushes.values()) if (push.state !== 'settled') n++;
    return n;
  }

  /**
   * A progressive push's frame walk that waits at a hole while later bytes of the stream arrive has lost
   * both copies of a chunk's head: nothing after it can be placed. Past a wait for reordering, the push
   * fails (its reader, e.g. the Service Worker, takes the rest from the origin) rather than at its timeout.
   */
  private watchWalk(stream: PushStream): void {
    const p = stream.progressive;
    if (!p?.body || stream.error) return;
    const readable = stream.bytes.read(stream.pos, 16).length;
    if (stream.bytes.highest <= stream.pos + readable) {
      this.timers.clearTimeout(p.stuckTimer);
      p.stuckAt = undefined;
      return;
    }
    if (p.stuckAt === stream.pos) return;
    p.stuckAt = stream.pos;
    this.timers.clearTimeout(p.stuckTimer);
    p.stuckTimer = this.timers.setTimeout(
      () => {
        const push = stream.pushId === undefined ? undefined : this.pushes.get(stream.pushId);
        if (p.stuckAt === stream.pos && push?.state === 'streaming')
          this.failIncomplete(push, 'timeout', `the frame at stream offset ${stream.pos} was lost, both copies`);
      },
      Math.max(2 * this.reorderMs, LOST_HEAD_WAIT_MS),
    );
  }

  /**
   * Walks the frame chain of a push stream from the last known frame boundary as far as the held
   * bytes allow: stream header (RFC 9114 §6.2.2), then HEADERS and DATA frames (§4.1), skipping
   * unknown frame types (§9). Frame headers are read across holes in earlier DATA payloads.
   */
  private walk(stream: PushStream): void {
    try {
      for (;;) {
        if (stream.stage === 'ignored' || stream.error) return;
        if (stream.finalSize !== undefined && stream.pos >= stream.finalSize) {
          if (stream.pos > stream.finalSize)
            throw new MalformedPushError(`a frame runs past the end of stream ${stream.streamId}`);
          return;
        }
        const head = stream.bytes.read(stream.pos, 16);
        const first = head[0];
        if (first === undefined) return;
        const firstLength = varintLengthOf(first);
        // Whether the varint after the first one is whole in `head`: its own first byte gives its length.
        const secondWhole = () => {
          const second = head[firstLength];
          return second !== undefined && head.length >= firstLength + varintLengthOf(second);
        };
        if (stream.stage === 'stream-header') {
          if (head.length < firstLength) return;
          const type = readVarint(head, 0);
          if (type.value !== UniStreamType.PUSH) {
            stream.stage = 'ignored'; // §6.2: not a push stream; this receiver has no use for it
            this.dropStream(stream);
            return;
          }
          if (!secondWhole()) return;
          const pushId = readVarint(head, firstLength);
          stream.pos += firstLength + pushId.length;
          stream.stage = 'frames';
          this.identify(stream, pushId.value);
          continue;
        }
        if (!secondWhole()) return;
        const type = readVarint(head, 0);
        const length = readVarint(head, firstLength);
        const payloadStart = stream.pos + firstLength + length.length;
        switch (type.value) {
          case Http3FrameType.DATA:
            if (!stream.fields) throw new MalformedPushError('DATA before HEADERS (RFC 9114 §4.1)');
            if (stream.progressive) {
              const last = stream.progressive.last;
              if (!last || stream.bodyKnown + length.value > last.offset + last.length)
                throw new MalformedPushError(`push stream ${stream.streamId}: DATA that no CHUNK_DIGEST covers`);
            }
            stream.data.push({ streamStart: payloadStart, length: length.value, bodyStart: stream.bodyKnown });
            stream.bodyKnown += length.value;
            if (stream.progressive?.body) this.feedHeld(stream, stream.data[stream.data.length - 1]!);
            break;
          case CHUNK_DIGEST_FRAME_TYPE: {
            if (!stream.progressive) break; // a whole push has no use for it (§9: skipped like an unknown frame)
            if (length.value > 256) throw new MalformedPushError(`CHUNK_DIGEST of ${length.value} bytes`);
            const payload = stream.bytes.read(payloadStart, length.value);
            if (payload.length < length.value) return;
            this.onChunkDigest(stream, decodeChunkDigest(payload));
            break;
          }
          case Http3FrameType.HEADERS: {
            if (stream.fields) break; // trailers: skipped
            if (length.value > 64 * 1024) throw new MalformedPushError(`HEADERS of ${length.value} bytes`);
            const payload = stream.bytes.read(payloadStart, length.value);
            if (payload.length < length.value) return;
            stream.fields = decodeFieldSection(payload);
            const contentLength = stream.fields.find((f) => f.name === 'content-length')?.value;
            if (contentLength !== undefined && /^[0-9]{1,15}$/.test(contentLength))
              stream.contentLength = Number(contentLength);
            // docs/multicast.md, "Progressive pushes": the length and digest are not known when such a push starts.
            if (contentLength === undefined && !stream.fields.some((f) => f.name === 'digest'))
              stream.progressive = { nextIndex: 0, pending: [] };
            break;
          }
          case Http3FrameType.PUSH_PROMISE:
          case Http3FrameType.SETTINGS:
          case Http3FrameType.GOAWAY:
          case Http3FrameType.CANCEL_PUSH:
          case Http3FrameType.MAX_PUSH_ID:
          case 0x02:
          case 0x06:
          case 0x08:
          case 0x09:
            // §7.2.5: PUSH_PROMISE is not sent on a push stream; §7.2.4, §7.2.6, §7.2.3, §7.2.7: control
            // stream only; §7.2.8: HTTP/2 types. All H3_FRAME_UNEXPECTED.
            throw new MalformedPushError(
              `frame type 0x${type.value.toString(16)} on push stream ${stream.streamId} (RFC 9114 §7.2)`,
            );
          default:
            break; // §9: unknown and reserved types are skipped
        }
        stream.pos = payloadStart + length.value;
      }
    } catch (error) {
      if (!(error instanceof WireError) && !(error instanceof MalformedPushError)) throw error;
      this.counters.malformed++;
      stream.error =
        error instanceof MalformedPushError
          ? error
          : new MalformedPushError(`push stream ${stream.streamId}: ${error.message}`);
      const push = stream.pushId === undefined ? undefined : this.pushes.get(stream.pushId);
      if (push) this.settleFailure(push, stream.error);
      else this.dropStream(stream);
    }
  }

  /** A CHUNK_DIGEST in stream order: its index and offset continue the chunks before it, which are whole. */
  private onChunkDigest(stream: PushStream, digest: ChunkDigest): void {
    const p = stream.progressive!;
    const expectedOffset = p.last ? p.last.offset + p.last.length : 0;
    if (p.last?.last) throw new MalformedPushError(`push stream ${stream.streamId}: a chunk after the last one`);
    if (digest.index !== p.nextIndex || digest.offset !== expectedOffset || stream.bodyKnown !== expectedOffset)
      throw new MalformedPushError(
        `push stream ${stream.streamId}: chunk ${digest.index} at ${digest.offset} where chunk ${p.nextIndex} at ${expectedOffset} was due`,
      );
    p.nextIndex++;
    p.last = digest;
    if (p.body) return p.body.addDigest(digest);
    if (p.pending.length >= MAX_PENDING_CHUNKS)
      throw new MalformedPushError(`more than ${MAX_PENDING_CHUNKS} chunks ahead of the response`);
    p.pending.push(digest);
  }

  /** Gives the progressive body the held bytes of one DATA frame's payload. */
  private feedHeld(stream: PushStream, map: DataFrameMap): void {
    const body = stream.progressive!.body!;
    const end = map.streamStart + map.length;
    let at = map.streamStart;
    for (const hole of [...stream.bytes.missing(map.streamStart, end), { start: end, end }]) {
      if (hole.start > at) body.addBytes(map.bodyStart + at - map.streamStart, stream.bytes.read(at, hole.start - at));
      at = hole.end;
    }
  }

  private identify(stream: PushStream, pushId: number): void {
    if (this.finishedPushes.has(pushId) || this.streamByPush.has(pushId)) {
      // A second stream for one push, or a push already over: ignore the stream.
      stream.stage = 'ignored';
      this.dropStream(stream);
      return;
    }
    stream.pushId = pushId;
    this.streamByPush.set(pushId, stream.streamId);
    const push = this.pushes.get(pushId);
    if (push) push.streamId = stream.streamId;
  }

  private onReset(streamId: number, finalSize: number): void {
    if (!isPushStreamId(streamId)) return;
    const stream = this.streams.get(streamId);
    if (!stream) return;
    stream.reset = true;
    // §19.4: RESET_STREAM carries the final size, which tells where the stream would have ended.
    if (stream.finalSize === undefined && finalSize >= stream.bytes.highest) stream.finalSize = finalSize;
    const push = this.pushFor(stream);
    if (push) this.failIncomplete(push, 'reset', `push stream ${streamId} was reset (RESET_STREAM, RFC 9000 §19.4)`);
  }

  /** The push of a stream: by its push ID, or inferred when exactly one promise and one unidentified stream wait. */
  private pushFor(stream: PushStream): Push | undefined {
    if (stream.pushId !== undefined) return this.pushes.get(stream.pushId);
    const unidentified = [...this.streams.values()].filter(
      (s) => s.pushId === undefined && s.stage === 'stream-header',
    );
    const waiting = [...this.pushes.values()].filter((p) => p.state === 'waiting' && p.streamId === undefined);
    if (unidentified.length === 1 && waiting.length === 1 && unidentified[0] === stream) return waiting[0];
    return undefined;
  }

  private streamFor(push: Push): PushStream | undefined {
    if (push.streamId !== undefined) return this.streams.get(push.streamId);
    const unidentified = [...this.streams.values()].filter(
      (s) => s.pushId === undefined && s.stage === 'stream-header',
    );
    const waiting = [...this.pushes.values()].filter((p) => p.state === 'waiting' && p.streamId === undefined);
    if (unidentified.length === 1 && waiting.length === 1 && waiting[0] === push) return unidentified[0];
    return undefined;
  }

  private dropStream(stream: PushStream): void {
    if (this.streams.get(stream.streamId) !== stream) return;
    this.streams.delete(stream.streamId);
    this.buffered -= stream.bytes.held;
    this.remember(this.finishedStreams, stream.streamId);
  }

  private remember(set: Set<number>, value: number): void {
    set.add(value);
    if (set.size > FINISHED_MEMORY) set.delete(set.values().next().value as number);
  }

  private overLimit(stream: PushStream, limit: PushLimit, detail: string): void {
    this.limits[limit]++;
    const push = this.pushFor(stream);
    if (push) {
      this.settleFailure(push, new PushLimitError(limit, detail, this.incompleteError(push, 'limit', detail)));
    } else {
      this.counters.pushesFailed++;
      this.dropStream(stream);
    }
  }

  private sweepAge(): void {
    const now = this.timers.now();
    // Runs per packet: the expired streams are collected first (settling them changes the map), none mostly.
    let expired: PushStream[] | undefined;
    for (const stream of this.streams.values())
      if (now - stream.createdAt > this.maxAgeMs) (expired ??= []).push(stream);
    if (expired === undefined) return;
    for (const stream of expired) {
      const push = stream.pushId === undefined ? undefined : this.pushes.get(stream.pushId);
      if (push?.state === 'verifying') continue;
      this.overLimit(stream, 'age', `push stream ${stream.streamId} older than ${this.maxAgeMs} ms`);
    }
  }

  // -------------------------------------------------------------------------------------------------
  // Promises

  /** RFC 9114 §7.2.5: a PUSH_PROMISE carries the push ID and the promised request's field section. */
  private onPushPromise(pushId: number, fieldSection: Uint8Array, from?: IslandPromise): void {
    if (this.pushes.has(pushId) || this.finishedPushes.has(pushId)) return;
    let fields: FieldLine[];
    try {
      fields = decodeFieldSection(fieldSection);
    } catch {
      this.counters.malformed++;
      return;
    }
    if (!this.verifier) {
      if (from) this.promiseStream.trust(from);
      return this.onVerifiedPromise(pushId, fields);
    }
    if (this.verifyingPromises >= this.maxConcurrentPushes) {
      this.limits['concurrent-pushes']++; // a flood of promises waiting for their signature check
      return;
    }
    this.verifyingPromises++;
    Promise.resolve()
      .then(() => this.verifier!.verifyRequest(fields))
      .then(
        () => {
          this.verifyingPromises--;
          if (from) this.promiseStream.trust(from);
          this.onVerifiedPromise(pushId, fields);
        },
        () => {
          this.verifyingPromises--;
          this.counters.forged++;
          if (from) this.promiseStream.discard(from);
        },
      );
  }

  private onVerifiedPromise(pushId: number, fields: FieldLine[]): void {
    if (this.pushes.has(pushId) || this.finishedPushes.has(pushId)) return;
    let request: Request;
    try {
      const get = (name: string) => fields.find((f) => f.name === name)?.value;
      // draft-pardue-quic-http-mcast §5.5 (as nghq sends it): a promise of `:path goaway` with
      // `connection: close` ends the session. It names no resource; pushes already promised may still complete.
      if (get(':path') === 'goaway') return this.endSession();
      const method = get(':method') ?? 'GET';
      const url = `${get(':scheme') ?? 'https'}://${get(':authority') ?? ''}${get(':path') ?? '/'}`;
      const headers = new Headers();
      for (const f of fields) if (!f.name.startsWith(':')) headers.append(f.name, f.value);
      request = new Request(url, { method, headers });
    } catch {
      this.counters.malformed++; // WireError, or a request Fetch refuses (bad URL, method or header)
      return;
    }
    let resolve!: (response: Response) => void;
    let reject!: (error: Error) => void;
    const response = new Promise<Response>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const push: Push = {
      pushId,
      request,
      requestFields: fields,
      resolve,
      reject,
      timer: undefined,
      state: 'waiting',
      streamId: this.streamByPush.get(pushId),
    };
    this.counters.pushesPromised++;
    const overBound = this.pendingPushes() >= this.maxConcurrentPushes;
    this.pushes.set(pushId, push);
    this.dispatchEvent(new ResourcePushEvent(RESOURCE_PUSH, { request, response }));
    if (push.state !== 'waiting') return; // cancelled by a listener
    if (overBound) {
      this.limits['concurrent-pushes']++;
      const detail = `more than ${this.maxConcurrentPushes} pushes at once`;
      this.settleFailure(
        push,
        new PushLimitError('concurrent-pushes', detail, this.incompleteError(push, 'limit', detail)),
      );
      return;
    }
    this.armTimeout(push);
    // A session's sender ends one progressive push before it promises the next: one still streaming has
    // lost its end (or the chunks before it), and waits only for reordering and the end's second copy.
    for (const earlier of this.pushes.values())
      if (earlier.state === 'streaming' && earlier.pushId < pushId && !earlier.superseded) {
        earlier.superseded = true;
        this.armTimeout(earlier);
      }
    const stream = push.streamId === undefined ? undefined : this.streams.get(push.streamId);
    if (stream?.error) this.settleFailure(push, stream.error);
    else if (stream) this.advance(stream);
  }

  // -------------------------------------------------------------------------------------------------
  // Completion

  /** A push fails when it has not completed `timeoutMs` after its promise, or (progressive) after its last chunk. */
  private armTimeout(push: Push): void {
    this.timers.clearTimeout(push.timer);
    // Superseded, with nothing it knows of still missing or being repaired: only its end can still come.
    const superseded =
      push.superseded && push.body?.idle ? Math.max(2 * this.reorderMs, SUPERSEDED_WAIT_MS) : undefined;
    const ms = Math.min(superseded ?? this.timeoutMs, this.timeoutMs);
    push.timer = this.timers.setTimeout(() => {
      if (push.state === 'waiting' || push.state === 'streaming')
        this.failIncomplete(
          push,
          'timeout',
          superseded !== undefined
            ? `no end ${ms} ms after a later push was promised`
            : push.state === 'streaming'
              ? `no chunk for ${ms} ms`
              : `incomplete after ${ms} ms`,
        );
    }, ms);
  }

  private advance(stream: PushStream): void {
    if (stream.progressive) this.openProgressive(stream);
    else this.tryComplete(stream);
  }

  /**
   * A progressive push's response, given as soon as its HEADERS are verified: its body releases each
   * chunk once the chunk is whole and verified (progressive-body.ts).
   */
  private openProgressive(stream: PushStream): void {
    if (stream.pushId === undefined || !stream.fields || stream.progressive!.body) return;
    const push = this.pushes.get(stream.pushId);
    if (push?.state !== 'waiting') return;
    push.state = 'verifying';
    const fields = stream.fields;
    const signed = fields.find((f) => f.name === 'signature-input')?.value;
    (async () => {
      if (this.verifier) {
        if (!this.verifier.verifyProgressiveResponse || !this.verifier.verifyChunk)
          throw new VerificationError('this verifier cannot check progressive pushes', 'signature');
        try {
          await this.verifier.verifyProgressiveResponse(push.requestFields, fields);
        } catch (error) {
          throw new VerificationError(
            `response signature: ${error instanceof Error ? error.message : String(error)}`,
            'signature',
          );
        }
      }
    })().then(
      () => {
        if (push.state !== 'verifying') return;
        const get = (name: string) => push.requestFields.find((f) => f.name === name)?.value ?? '';
        const body = new ProgressiveBody({
          pool: this.chunkPool,
          sessionId: this.sessionId,
          authority: get(':authority'),
          path: get(':path'),
          created: Number(/;created=(\d+)/.exec(signed ?? '')?.[1] ?? 0),
          keyId: this.verifier ? (/;keyid="([^"]*)"/.exec(signed ?? '')?.[1] ?? '') : undefined,
          verifyChunk: this.verifier?.verifyChunk?.bind(this.verifier),
          repair: this.repair ? (range) => this.repair!(push.request, range) : undefined,
          reorderMs: this.reorderMs,
          timers: this.timers,
          onHeld: (delta) => (this.buffered += delta),
          onRepair: (bytes) => (this.counters.repairedBytes += bytes),
          onProgress: () => this.armTimeout(push),
          onComplete: () => {
            if (push.state !== 'streaming') return;
            push.state = 'settled';
            this.timers.clearTimeout(push.timer);
            this.dropStream(stream);
            stream.bytes.recycle();
            this.finish(push);
            this.counters.pushesCompleted++;
            if (body.repairedBytes > 0) this.counters.pushesRepaired++;
          },
          onFail: (error) => this.settleFailure(push, error),
        });
        let response: Response;
        try {
          const status = Number(fields.find((f) => f.name === ':status')?.value);
          const headers = new Headers();
          for (const f of fields) if (!f.name.startsWith(':')) headers.append(f.name, f.value);
          response = new Response(body.stream, { status, headers });
        } catch (error) {
          body.fail(new MalformedPushError(String(error)), false);
          return this.settleFailure(
            push,
            new MalformedPushError(
              `pushed response refused: ${error instanceof Error ? error.message : String(error)}`,
            ),
          );
        }
        const p = stream.progressive!;
        p.body = body;
        push.body = body;
        push.state = 'streaming';
        push.resolve(response);
        for (const digest of p.pending.splice(0)) body.addDigest(digest);
        for (const map of stream.data) this.feedHeld(stream, map);
        this.watchWalk(stream);
      },
      (error: unknown) =>
        this.settleFailure(push, error instanceof Error ? error : new VerificationError(String(error), 'signature')),
    );
  }

  private tryComplete(stream: PushStream): void {
    const { finalSize } = stream;
    if (
      finalSize === undefined ||
      stream.bytes.prefixEnd < finalSize ||
      stream.pos !== finalSize ||
      stream.pushId === undefined ||
      !stream.fields
    )
      return;
    const push = this.pushes.get(stream.pushId);
    if (push?.state !== 'waiting') return; // a promise still to come keeps the stream
    push.state = 'verifying';
    const only = stream.data.length === 1 ? stream.data[0]! : undefined;
    // A body in one DATA frame: a view of the bytes held (Response copies it), else the payloads concatenated.
    const body =
      only !== undefined
        ? (stream.bytes.read(only.streamStart, only.length) as Uint8Array<ArrayBuffer>)
        : new Uint8Array(stream.bodyKnown);
    if (only === undefined)
      for (const d of stream.data) stream.bytes.copy(body, d.bodyStart, d.streamStart, d.streamStart + d.length);
    const fields = stream.fields;
    this.dropStream(stream);
    if (only === undefined) stream.bytes.recycle(); // the body is a copy: nothing refers to the chunks now
    this.verifyAndResolve(push, fields, body).catch((error: unknown) => {
      this.settleFailure(push, error instanceof Error ? error : new VerificationError(String(error), 'signature'));
    });
  }

  private async verifyAndResolve(push: Push, fields: FieldLine[], body: Uint8Array<ArrayBuffer>): Promise<void> {
    const digestField = fields.find((f) => f.name === 'digest')?.value;
    const expected = digestField === undefined ? undefined : sha256FromDigest(digestField);
    if (expected === undefined) {
      if (this.requireDigest) throw new VerificationError('no digest: sha256=… on the pushed response', 'digest');
    } else {
      const actual = toBase64(new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', body)));
      if (actual !== expected)
        throw new VerificationError(`digest mismatch: header sha256=${expected}, body sha256=${actual}`, 'digest');
    }
    if (this.verifier) {
      try {
        await this.verifier.verifyResponse(push.requestFields, fields);
      } catch (error) {
        throw new VerificationError(
          `response signature: ${error instanceof Error ? error.message : String(error)}`,
          'signature',
        );
      }
    }
    let response: Response;
    try {
      const status = Number(fields.find((f) => f.name === ':status')?.value);
      const headers = new Headers();
      for (const f of fields) if (!f.name.startsWith(':')) headers.append(f.name, f.value);
      response = new Response(status === 204 || status === 304 ? null : bodyStream(body), { status, headers });
    } catch (error) {
      throw new MalformedPushError(
        `pushed response refused: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    if (push.state !== 'verifying') return;
    push.state = 'settled';
    this.timers.clearTimeout(push.timer);
    this.finish(push);
    this.counters.pushesCompleted++;
    push.resolve(response);
    // nghq's multicast-sender ends a session with `connection: close` on its last pushed response.
    if (fields.some((f) => f.name === 'connection' && f.value.toLowerCase() === 'close')) this.endSession();
  }

  private endSession(): void {
    if (this.ended) return;
    this.ended = true;
    this.dispatchEvent(new Event(GOAWAY));
  }

  private finish(push: Push): void {
    this.pushes.delete(push.pushId);
    this.streamByPush.delete(push.pushId);
    this.remember(this.finishedPushes, push.pushId);
  }

  private failIncomplete(push: Push, reason: IncompleteReason, detail: string): void {
    this.settleFailure(push, this.incompleteError(push, reason, detail));
  }

  private settleFailure(push: Push, error: Error): void {
    if (push.state === 'settled') return;
    const streaming = push.state === 'streaming';
    push.state = 'settled';
    this.timers.clearTimeout(push.timer);
    const stream = this.streamFor(push);
    if (stream) this.dropStream(stream);
    this.finish(push);
    this.counters.pushesFailed++;
    // A progressive push's response was given: its body ends with the error instead.
    if (streaming) push.body?.fail(error, false);
    else push.reject(error);
  }

  /** What is missing of a push's body; see {@link IncompletePushError} for how ranges are derived. */
  private incompleteError(push: Push, reason: IncompleteReason, detail: string): IncompletePushError {
    const url = push.request.url;
    const stream = this.streamFor(push);
    if (!stream) {
      return new IncompletePushError(
        `push ${push.pushId} (${url}) ${detail}; its push stream was never identified`,
        reason,
        [{ start: 0, end: Infinity }],
        0,
        undefined,
        false,
        undefined,
        {
          requestFields: push.requestFields,
        },
      );
    }
    if (push.body) {
      const missing = push.body.missing();
      return new IncompletePushError(
        `push ${push.pushId} (${url}) ${detail}; ${push.body.releasedBytes} body bytes released, missing ${missing.map((r) => `${r.start}-${r.end === Infinity ? '' : r.end - 1}`).join(',')}`,
        reason,
        missing,
        push.body.releasedBytes,
        undefined,
        false,
        undefined,
        { requestFields: push.requestFields, responseFields: stream.fields },
      );
    }
    const m = missingBody(stream);
    const summary = m.missing.map((r) => `${r.start}-${r.end === Infinity ? '' : r.end - 1}`).join(',');
    return new IncompletePushError(
      `push ${push.pushId} (${url}) ${detail}; missing body bytes ${summary || 'none'}${m.exact ? '' : ' (offsets past a lost frame header are unknown: a superset)'}`,
      reason,
      m.missing,
      m.receivedBytes,
      m.totalBytes,
      m.exact,
      m.missingStream,
      { requestFields: push.requestFields, responseFields: stream.fields, body: m.body, stream: m.stream },
    );
  }
}
