/**
 * Wire codecs of WebTransport over HTTP/3 as Chromium speaks it (draft-ietf-webtrans-http3-02, with
 * HTTP Datagrams and Capsules, RFC 9297): the settings and stream signals that mark WebTransport
 * streams, the capsules on a session's CONNECT stream, datagram framing, and the mapping of
 * WebTransport application error codes into the HTTP/3 error space. Pure functions, isomorphic.
 */
import { Cursor } from './bytes.js';
import { WireError } from './errors.js';
import { varintLength, writeVarint } from './varint.js';

/** RFC 9220 §3: the server allows extended CONNECT (`:protocol`). */
export const SETTINGS_ENABLE_CONNECT_PROTOCOL = 0x08n;
/** RFC 9297 §5.1: HTTP Datagrams. Chromium's draft-02 mode sends this one (0x33). */
export const SETTINGS_H3_DATAGRAM = 0x33n;
/** draft-ietf-webtrans-http3-02 §3.1: ENABLE_WEBTRANSPORT (later drafts replaced it with WEBTRANSPORT_MAX_SESSIONS). */
export const SETTINGS_ENABLE_WEBTRANSPORT = 0x2b603742n;

/** draft-02 §4.1: the unidirectional stream type of a WebTransport stream, followed by the session ID. */
export const WEBTRANSPORT_UNI_STREAM = 0x54;
/** draft-02 §4.2: the signal value that opens a bidirectional WebTransport stream, followed by the session ID. */
export const WEBTRANSPORT_BIDI_SIGNAL = 0x41;

/** draft-02 §5: the capsule that closes a session with an application code and a reason. */
export const CAPSULE_CLOSE_WEBTRANSPORT_SESSION = 0x2843;
/** draft (later revisions): the capsule asking the peer to finish the session gracefully. */
export const CAPSULE_DRAIN_WEBTRANSPORT_SESSION = 0x78ae;
/** draft-02 §5: a close reason is at most 1024 bytes of UTF-8. */
export const MAX_CLOSE_REASON_BYTES = 1024;

/** Header field names of the draft-02 handshake (Chromium). */
export const WEBTRANSPORT_DRAFT02_REQUEST_HEADER = 'sec-webtransport-http3-draft02';
export const WEBTRANSPORT_DRAFT_RESPONSE_HEADER = 'sec-webtransport-http3-draft';

/** The first HTTP/3 error code of the range WebTransport application codes map to (draft-02 §4.3). */
const FIRST_MAPPED = 0x52e4a40fa8dbn;
const LAST_MAPPED = 0x52e5ac983162n;

/**
 * draft-02 §4.3: a WebTransport application error code (32 bits) as the HTTP/3 error code carried by
 * RESET_STREAM and STOP_SENDING. Every 0x1f-th value of the range is skipped: it would be a GREASE
 * code (RFC 9114 §8.1).
 */
export function webTransportCodeToHttp3(code: number): bigint {
  if (!Number.isInteger(code) || code < 0 || code > 0xffffffff)
    throw new WireError('invalid-argument', 0, `WebTransport error code ${code} is not a 32-bit unsigned integer`);
  const n = BigInt(code);
  return FIRST_MAPPED + n + n / 0x1en;
}

/** The inverse of {@link webTransportCodeToHttp3}; undefined for a code outside the range or a GREASE value in it. */
export function http3CodeToWebTransport(code: bigint): number | undefined {
  if (code < FIRST_MAPPED || code > LAST_MAPPED) return undefined;
  const shifted = code - FIRST_MAPPED;
  if ((code - 0x21n) % 0x1fn === 0n) return undefined; // GREASE
  return Number(shifted - shifted / 0x1fn);
}

export interface Capsule {
  type: bigint;
  value: Uint8Array;
}

/** RFC 9297 §3.2: Capsule Type (varint), Capsule Length (varint), Capsule Value. */
export function encodeCapsule(type: number | bigint, value: Uint8Array): Uint8Array {
  const out = new Uint8Array(varintLength(type) + varintLength(value.length) + value.length);
  let at = writeVarint(out, 0, type);
  at = writeVarint(out, at, value.length);
  out.set(value, at);
  return out;
}

/** CLOSE_WEBTRANSPORT_SESSION: a 32-bit code and a UTF-8 reason (truncated on a character boundary to 1024 bytes). */
export function encodeCloseSession(code: number, reason: string): Uint8Array {
  if (!Number.isInteger(code) || code < 0 || code > 0xffffffff)
    throw new WireError('invalid-argument', 0, `session close code ${code} is not a 32-bit unsigned integer`);
  let text = new TextEncoder().encode(reason);
  if (text.length > MAX_CLOSE_REASON_BYTES) {
    let end = MAX_CLOSE_REASON_BYTES;
    while (end > 0 && (text[end]! & 0xc0) === 0x80) end--; // not inside a UTF-8 sequence
    text = text.subarray(0, end);
  }
  const value = new Uint8Array(4 + text.length);
  new DataView(value.buffer).setUint32(0, code);
  value.set(text, 4);
  return encodeCapsule(CAPSULE_CLOSE_WEBTRANSPORT_SESSION, value);
}

export function decodeCloseSession(value: Uint8Array): { code: number; reason: string } {
  if (value.length < 4)
    throw new WireError('truncated', 0, `CLOSE_WEBTRANSPORT_SESSION of ${value.length} bytes has no 32-bit code`);
  if (value.length > 4 + MAX_CLOSE_REASON_BYTES)
    throw new WireError(
      'frame-too-large',
      4,
      `close reason of ${value.length - 4} bytes (at most ${MAX_CLOSE_REASON_BYTES})`,
    );
  let reason: string;
  try {
    reason = new TextDecoder('utf-8', { fatal: true }).decode(value.subarray(4));
  } catch {
    throw new WireError('frame-encoding', 4, 'close reason is not UTF-8');
  }
  return { code: new DataView(value.buffer, value.byteOffset, 4).getUint32(0), reason };
}

/**
 * Capsules from a byte stream pushed in pieces (the payloads of the DATA frames on a CONNECT stream,
 * RFC 9297 §3.3). A capsule is buffered whole up to `maxCapsule` bytes; unknown types are returned
 * too (the caller skips them, §3.2), but never buffered beyond the bound.
 */
export class CapsuleReader {
  private buffer = new Uint8Array(0);
  private consumed = 0;

  constructor(private readonly maxCapsule = 16 * 1024) {}

  push(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    const joined = new Uint8Array(this.buffer.length + bytes.length);
    joined.set(this.buffer);
    joined.set(bytes, this.buffer.length);
    this.buffer = joined;
  }

  /** The next whole capsule, or undefined until more bytes arrive. */
  next(): Capsule | undefined {
    if (this.buffer.length === 0) return undefined;
    const cursor = new Cursor(this.buffer);
    let type: bigint;
    let length: number;
    try {
      type = cursor.bigVarint('capsule type');
      length = cursor.varint('capsule length');
    } catch (error) {
      if (error instanceof WireError && error.code === 'truncated') return undefined;
      throw new WireError(
        (error as WireError).code,
        this.consumed + (error as WireError).offset,
        (error as WireError).detail,
      );
    }
    if (length > this.maxCapsule)
      throw new WireError(
        'frame-too-large',
        this.consumed,
        `capsule 0x${type.toString(16)} of ${length} bytes (at most ${this.maxCapsule})`,
      );
    if (cursor.remaining < length) return undefined;
    const value = cursor.take(length).slice();
    this.consumed += cursor.pos;
    this.buffer = this.buffer.subarray(cursor.pos);
    return { type, value };
  }

  /** The stream ended: true when it ended between capsules. */
  get clean(): boolean {
    return this.buffer.length === 0;
  }
}

/** RFC 9297 §2.1: an HTTP datagram for a request stream starts with its Quarter Stream ID. */
export function encodeSessionDatagram(sessionId: number, payload: Uint8Array): Uint8Array {
  const quarter = sessionId / 4;
  const out = new Uint8Array(varintLength(quarter) + payload.length);
  out.set(payload, writeVarint(out, 0, quarter));
  return out;
}

export function decodeSessionDatagram(datagram: Uint8Array): { sessionId: number; payload: Uint8Array } {
  const cursor = new Cursor(datagram);
  const quarter = cursor.varint('quarter stream ID');
  return { sessionId: quarter * 4, payload: datagram.subarray(cursor.pos) };
}
