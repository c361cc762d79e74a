/**
 * Warp messages (draft-lcurley-warp-00 §5), in pushcast's encoding: the draft lists the messages and
 * their fields but leaves the encoding open ("TODO document the encoding"). docs/warp-wire.md is the
 * specification with examples; in short, every message is
 *
 *   Message { Type (i), Length (i), Payload (Length bytes) }      (i) = QUIC varint, RFC 9000 §16
 *
 *   HEADERS (0x0)  { Flags (8), [ID (i)], [Order (i, zigzag)], [Depends Count (i), Depends ID (i)…],
 *                    [Path Length (i), Path (UTF-8)] }        — §5.1, first on every stream (§4.2)
 *   SEGMENT (0x1)  { fMP4 bytes: whole boxes, e.g. one moof+mdat }   — §5.2, any number per stream
 *   APP (0x2)      { application bytes }                             — §5.3
 *   GOAWAY (0x10)  { URL (UTF-8) }                                   — §5.4
 *   SELECT (0x20)  { Seq (i), Track ID (UTF-8) }                     — pushcast: the viewer picks a rendition
 *
 * Order is signed (§9.3 uses −PTS), so it is zigzag-encoded: 0, −1, 1, −2… → 0, 1, 2, 3…
 * `Path` is pushcast's own field: the URL path under which the same resource is served over HTTP
 * (e.g. /live/video-360p/42.m4s), so every delivery mode names a resource the same way.
 * Unknown message types are skipped (their length is known), so the encoding can grow.
 *
 * Pure, isomorphic; decoders throw only WireError.
 */
import { Cursor, concatBytes } from './bytes.js';
import { ChunkQueue } from './chunk-queue.js';
import { WireError } from './errors.js';
import { varintLength, writeVarint } from './varint.js';

export const WarpMessageType = {
  HEADERS: 0x0,
  SEGMENT: 0x1,
  APP: 0x2,
  GOAWAY: 0x10,
  SELECT: 0x20,
} as const;

/** §4.7: connection (session) close codes. */
export const WarpCloseCode = {
  BROADCAST_TERMINATED: 0x0,
  GOAWAY: 0x1,
  /**
   * pushcast's (§4.7 allows "any error message"): this server stops, not the broadcast, so a viewer or a
   * relay downstream may connect again; code 0 would tell a relay to pass the end on.
   */
  SERVER_STOPPED: 0x2,
} as const;

const FLAG_ID = 0x01;
const FLAG_ORDER = 0x02;
const FLAG_DEPENDS = 0x04;
const FLAG_PATH = 0x08;
const KNOWN_FLAGS = FLAG_ID | FLAG_ORDER | FLAG_DEPENDS | FLAG_PATH;

/** Largest order magnitude: its zigzag (≤ 2^52) stays a safe integer. */
export const MAX_WARP_ORDER = 2 ** 51;
/** Dependencies one HEADERS may list. */
export const MAX_WARP_DEPENDS = 64;

export interface WarpHeaders {
  kind: 'headers';
  /** §5.1: unique per stream when set. */
  id?: number;
  /** §3.2: delivery order, default 0; smaller is delivered first (docs/warp-wire.md, "Delivery order"). */
  order?: number;
  depends?: number[];
  /** pushcast: the HTTP path of the same resource. */
  path?: string;
}

export interface WarpSegment {
  kind: 'segment';
  data: Uint8Array;
}

export interface WarpApp {
  kind: 'app';
  data: Uint8Array;
}

export interface WarpGoaway {
  kind: 'goaway';
  url: string;
}

/**
 * pushcast's SELECT: the viewer asks for `track` (a catalog track ID) in place of the session's track of
 * the same kind, from the next GoP boundary on. `seq` grows with each request of a session, so that of
 * two requests whose streams overtake each other the newer one wins.
 */
export interface WarpSelect {
  kind: 'select';
  seq: number;
  track: string;
}

/** A SELECT's track ID is a catalog ID: short. */
export const MAX_WARP_SELECT_TRACK = 256;

export type WarpMessage = WarpHeaders | WarpSegment | WarpApp | WarpGoaway | WarpSelect;

const zigzag = (n: number): number => (n >= 0 ? n * 2 : -n * 2 - 1);
const unzigzag = (z: number): number => (z % 2 === 0 ? z / 2 : -(z + 1) / 2);

const encoder = new TextEncoder();

function headersPayload(h: WarpHeaders): Uint8Array {
  const path = h.path === undefined ? undefined : encoder.encode(h.path);
  const depends = h.depends ?? [];
  if (depends.length > MAX_WARP_DEPENDS)
    throw new WireError('invalid-argument', 0, `${depends.length} dependencies (at most ${MAX_WARP_DEPENDS})`);
  if (h.order !== undefined && (!Number.isInteger(h.order) || Math.abs(h.order) > MAX_WARP_ORDER))
    throw new WireError('invalid-argument', 0, `order ${h.order} is not an integer within ±2^51`);
  let flags = 0;
  let size = 1;
  if (h.id !== undefined) (flags |= FLAG_ID), (size += varintLength(h.id));
  if (h.order !== undefined && h.order !== 0) (flags |= FLAG_ORDER), (size += varintLength(zigzag(h.order)));
  if (depends.length > 0)
    (flags |= FLAG_DEPENDS), (size += varintLength(depends.length) + depends.reduce((n, d) => n + varintLength(d), 0));
  if (path) (flags |= FLAG_PATH), (size += varintLength(path.length) + path.length);
  const out = new Uint8Array(size);
  out[0] = flags;
  let at = 1;
  if (flags & FLAG_ID) at = writeVarint(out, at, h.id!);
  if (flags & FLAG_ORDER) at = writeVarint(out, at, zigzag(h.order!));
  if (flags & FLAG_DEPENDS) {
    at = writeVarint(out, at, depends.length);
    for (const d of depends) at = writeVarint(out, at, d);
  }
  if (path) {
    at = writeVarint(out, at, path.length);
    out.set(path, at);
  }
  return out;
}

/** The header (type and length) of a message whose payload follows separately, e.g. a SEGMENT written as it arrives. */
export function encodeWarpMessageHeader(type: number, payloadLength: number): Uint8Array {
  const out = new Uint8Array(varintLength(type) + varintLength(payloadLength));
  writeVarint(out, writeVarint(out, 0, type), payloadLength);
  return out;
}

export function encodeWarpMessage(message: WarpMessage): Uint8Array {
  let type: number;
  let payload: Uint8Array;
  switch (message.kind) {
    case 'headers':
      type = WarpMessageType.HEADERS;
      payload = headersPayload(message);
      break;
    case 'segment':
      type = WarpMessageType.SEGMENT;
      payload = message.data;
      break;
    case 'app':
      type = WarpMessageType.APP;
      payload = message.data;
      break;
    case 'goaway':
      type = WarpMessageType.GOAWAY;
      payload = encoder.encode(message.url);
      break;
    case 'select':
      type = WarpMessageType.SELECT;
      payload = selectPayload(message);
      break;
  }
  return concatBytes([encodeWarpMessageHeader(type, payload.length), payload]);
}

function decodeUtf8(bytes: Uint8Array, at: number, what: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new WireError('frame-encoding', at, `${what} is not UTF-8`);
  }
}

function selectPayload(m: WarpSelect): Uint8Array {
  if (!Number.isSafeInteger(m.seq) || m.seq < 0)
    throw new WireError('invalid-argument', 0, `SELECT seq ${m.seq} is not a count`);
  const track = encoder.encode(m.track);
  if (track.length === 0 || track.length > MAX_WARP_SELECT_TRACK)
    throw new WireError('invalid-argument', 0, `SELECT track of ${track.length} bytes (1 to ${MAX_WARP_SELECT_TRACK})`);
  const out = new Uint8Array(varintLength(m.seq) + track.length);
  out.set(track, writeVarint(out, 0, m.seq));
  return out;
}

/** A SELECT payload: the sequence number, then the track ID to the end. */
export function decodeWarpSelect(payload: Uint8Array): WarpSelect {
  const c = new Cursor(payload);
  const seq = c.varint('SELECT seq');
  const at = c.pos;
  if (c.remaining === 0 || c.remaining > MAX_WARP_SELECT_TRACK)
    throw new WireError('frame-encoding', at, `SELECT track of ${c.remaining} bytes (1 to ${MAX_WARP_SELECT_TRACK})`);
  return { kind: 'select', seq, track: decodeUtf8(c.take(c.remaining, 'SELECT track'), at, 'SELECT track') };
}

export function decodeWarpHeaders(payload: Uint8Array): WarpHeaders {
  const c = new Cursor(payload);
  const flags = c.u8('HEADERS flags');
  if (flags & ~KNOWN_FLAGS)
    throw new WireError('frame-encoding', 0, `HEADERS flags 0x${flags.toString(16)} has unknown bits`);
  const h: WarpHeaders = { kind: 'headers' };
  if (flags & FLAG_ID) h.id = c.varint('HEADERS id');
  if (flags & FLAG_ORDER) {
    const z = c.varint('HEADERS order');
    if (z > 2 * MAX_WARP_ORDER) throw new WireError('frame-encoding', c.pos, `HEADERS order beyond ±2^51`);
    h.order = unzigzag(z);
  }
  if (flags & FLAG_DEPENDS) {
    const count = c.varint('HEADERS depends count');
    if (count > MAX_WARP_DEPENDS)
      throw new WireError('frame-encoding', c.pos, `${count} dependencies (at most ${MAX_WARP_DEPENDS})`);
    h.depends = Array.from({ length: count }, () => c.varint('HEADERS depends id'));
  }
  if (flags & FLAG_PATH) {
    const length = c.varint('HEADERS path length');
    const at = c.pos;
    h.path = decodeUtf8(c.take(length, 'HEADERS path'), at, 'HEADERS path');
  }
  if (c.remaining > 0) throw new WireError('frame-encoding', c.pos, `${c.remaining} bytes after the HEADERS fields`);
  return h;
}

/** Events of a stream: whole messages, except SEGMENT and APP payloads, which pass through in pieces. */
export type WarpStreamEvent =
  | WarpHeaders
  | WarpGoaway
  | WarpSelect
  /** A piece of a SEGMENT or APP payload; `start` on its first piece, `end` on its last. */
  | { kind: 'segment-data' | 'app-data'; data: Uint8Array; start: boolean; end: boolean };

export interface WarpStreamReaderOptions {
  /** Largest HEADERS, GOAWAY or SELECT payload; beyond, `frame-too-large`. Default 16 KiB. */
  maxControlPayload?: number;
}

/**
 * Reads a Warp stream's messages from chunks of any size (relays forward pieces as they arrive, §4.5).
 * §4.2: the first message must be HEADERS, and only the first.
 */
export class WarpStreamReader {
  private readonly queue = new ChunkQueue();
  private state: 'header' | 'payload' | 'pass' | 'skip' = 'header';
  private type = 0;
  private remaining = 0;
  private first = true;
  private passKind: 'segment-data' | 'app-data' = 'segment-data';
  private passStart = false;
  private sawHeaders = false;
  private failure: WireError | undefined;
  private readonly maxControl: number;

  constructor(options: WarpStreamReaderOptions = {}) {
    this.maxControl = options.maxControlPayload ?? 16 * 1024;
  }

  /** True once the stream's HEADERS were read. */
  get started(): boolean {
    return this.sawHeaders;
  }

  /**
   * Stream bytes consumed so far (everything before the next unread byte). Right after `next()` returned
   * the HEADERS, this is the HEADERS message's length: a relay passes the bytes from here on untouched (§4.5).
   */
  get offset(): number {
    return this.queue.offset;
  }

  push(chunk: Uint8Array): void {
    this.queue.push(chunk);
  }

  next(): WarpStreamEvent | undefined {
    if (this.failure) throw this.failure;
    try {
      return this.step();
    } catch (error) {
      if (error instanceof WireError) this.failure = error;
      throw error;
    }
  }

  /** The stream ended (FIN): ending inside a message is `truncated`; a stream without HEADERS too. */
  end(): void {
    if (this.failure) throw this.failure;
    if (this.state !== 'header' || this.queue.length > 0)
      throw new WireError(
        'truncated',
        this.queue.offset,
        `stream ends inside a message of type 0x${this.type.toString(16)}`,
      );
    if (!this.sawHeaders) throw new WireError('truncated', 0, 'stream ends before its HEADERS (Warp §4.2)');
  }

  private step(): WarpStreamEvent | undefined {
    for (;;) {
      if (this.state === 'header') {
        const head = this.queue.peekVarints(2);
        if (!head) return undefined;
        const c = new Cursor(head);
        const start = this.queue.offset;
        this.type = c.varint('message type');
        this.remaining = c.varint('message length');
        this.queue.skip(c.pos);
        if (this.first !== (this.type === WarpMessageType.HEADERS)) {
          throw new WireError(
            'frame-unexpected',
            start,
            this.first
              ? `stream starts with message 0x${this.type.toString(16)}, not HEADERS (Warp §4.2)`
              : 'a second HEADERS on a stream (Warp §4.2)',
          );
        }
        this.first = false;
        if (this.type === WarpMessageType.SEGMENT || this.type === WarpMessageType.APP) {
          this.passKind = this.type === WarpMessageType.SEGMENT ? 'segment-data' : 'app-data';
          this.passStart = true;
          this.state = 'pass';
          if (this.remaining === 0) {
            this.state = 'header';
            return { kind: this.passKind, data: new Uint8Array(0), start: true, end: true };
          }
          continue;
        }
        if (
          this.type !== WarpMessageType.HEADERS &&
          this.type !== WarpMessageType.GOAWAY &&
          this.type !== WarpMessageType.SELECT
        ) {
          this.state = 'skip'; // unknown types are skipped
          continue;
        }
        if (this.remaining > this.maxControl)
          throw new WireError(
            'frame-too-large',
            start,
            `message 0x${this.type.toString(16)} of ${this.remaining} bytes (at most ${this.maxControl})`,
          );
        this.state = 'payload';
      }
      if (this.state === 'payload') {
        if (this.queue.length < this.remaining) return undefined;
        const at = this.queue.offset;
        const payload = this.queue.take(this.remaining);
        this.state = 'header';
        if (this.type === WarpMessageType.HEADERS || this.type === WarpMessageType.SELECT) {
          try {
            if (this.type === WarpMessageType.SELECT) return decodeWarpSelect(payload);
            const h = decodeWarpHeaders(payload);
            this.sawHeaders = true;
            return h;
          } catch (error) {
            throw error instanceof WireError ? new WireError(error.code, at + error.offset, error.detail) : error;
          }
        }
        return { kind: 'goaway', url: decodeUtf8(payload, at, 'GOAWAY URL') };
      }
      if (this.state === 'skip') {
        this.remaining -= this.queue.drop(this.remaining);
        if (this.remaining > 0) return undefined;
        this.state = 'header';
        continue;
      }
      // pass: payload pieces as they arrive
      if (this.queue.length === 0) return undefined;
      const data = this.queue.takePiece(this.remaining);
      this.remaining -= data.length;
      const start = this.passStart;
      this.passStart = false;
      const end = this.remaining === 0;
      if (end) this.state = 'header';
      return { kind: this.passKind, data, start, end };
    }
  }
}
