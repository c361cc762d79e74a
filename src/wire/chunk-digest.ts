/**
 * CHUNK_DIGEST: a pushcast extension frame on a push stream that authenticates the body chunk after it,
 * so that a receiver can release each chunk of a growing push as soon as it is verified (docs/multicast.md,
 * "Progressive pushes"). An HTTP/3 frame of a type RFC 9114 does not define: receivers that do not know
 * it ignore it (§9, §7.2.8), so nghq-style receivers still get a valid response from the HEADERS and DATA
 * frames around it.
 *
 * ```
 * CHUNK_DIGEST Frame {
 *   Type (i) = 0x5043,
 *   Length (i),
 *   Chunk Index (i),        0, 1, 2… in body order
 *   Body Offset (i),        where the chunk starts in the response body
 *   Chunk Length (i),       the DATA payload bytes it covers (the DATA frames after it, up to the next CHUNK_DIGEST)
 *   Flags (8),              0x01: the last chunk of the body
 *   SHA-256 (256),          of the chunk's bytes
 *   Signature Length (i),   0 or 64
 *   Signature (..),         Ed25519 over chunkSignatureBase(...)
 * }
 * ```
 *
 * Pure, isomorphic; the decoder throws only WireError.
 */
import { Cursor } from './bytes.js';
import { WireError } from './errors.js';
import { varintLength, writeVarint } from './varint.js';

/** Not one of RFC 9114's types, nor a reserved (GREASE) value `0x1f * N + 0x21`. */
export const CHUNK_DIGEST_FRAME_TYPE = 0x5043;
const FLAG_LAST = 0x01;
const SHA256_BYTES = 32;
/** Ed25519 (RFC 8032 §5.1.6). */
const SIGNATURE_BYTES = 64;

export interface ChunkDigest {
  index: number;
  offset: number;
  length: number;
  /** The last chunk of the body: the body is complete after it. */
  last: boolean;
  sha256: Uint8Array;
  /** Ed25519 signature of {@link chunkSignatureBase}; empty when the session is not signed. */
  signature: Uint8Array;
}

/** The whole frame: type, length, payload. */
export function encodeChunkDigestFrame(c: ChunkDigest): Uint8Array {
  if (c.sha256.length !== SHA256_BYTES)
    throw new WireError('invalid-argument', 0, `a SHA-256 digest is ${SHA256_BYTES} bytes, not ${c.sha256.length}`);
  if (c.signature.length !== 0 && c.signature.length !== SIGNATURE_BYTES)
    throw new WireError(
      'invalid-argument',
      0,
      `a signature is 0 or ${SIGNATURE_BYTES} bytes, not ${c.signature.length}`,
    );
  const fields = [c.index, c.offset, c.length];
  const payloadLength =
    fields.reduce((n, v) => n + varintLength(v), 0) +
    1 +
    SHA256_BYTES +
    varintLength(c.signature.length) +
    c.signature.length;
  const out = new Uint8Array(varintLength(CHUNK_DIGEST_FRAME_TYPE) + varintLength(payloadLength) + payloadLength);
  let at = writeVarint(out, 0, CHUNK_DIGEST_FRAME_TYPE);
  at = writeVarint(out, at, payloadLength);
  for (const v of fields) at = writeVarint(out, at, v);
  out[at++] = c.last ? FLAG_LAST : 0;
  out.set(c.sha256, at);
  at += SHA256_BYTES;
  at = writeVarint(out, at, c.signature.length);
  out.set(c.signature, at);
  return out;
}

/** The payload of a CHUNK_DIGEST frame (after its type and length). */
export function decodeChunkDigest(payload: Uint8Array): ChunkDigest {
  const cursor = new Cursor(payload);
  const index = cursor.varint('chunk index');
  const offset = cursor.varint('body offset');
  const length = cursor.varint('chunk length');
  const flagsAt = cursor.pos;
  const flags = cursor.u8('flags');
  if ((flags & ~FLAG_LAST) !== 0)
    throw new WireError('frame-encoding', flagsAt, `unknown flags 0x${flags.toString(16)}`);
  const sha256 = cursor.take(SHA256_BYTES, 'SHA-256').slice();
  const signatureAt = cursor.pos;
  const signatureLength = cursor.varint('signature length');
  if (signatureLength !== 0 && signatureLength !== SIGNATURE_BYTES)
    throw new WireError(
      'frame-encoding',
      signatureAt,
      `a signature of ${signatureLength} bytes (0 or ${SIGNATURE_BYTES})`,
    );
  const signature = cursor.take(signatureLength, 'signature').slice();
  if (cursor.remaining !== 0)
    throw new WireError('frame-encoding', cursor.pos, `${cursor.remaining} bytes after the signature`);
  if (!Number.isSafeInteger(offset + length))
    throw new WireError('frame-encoding', 0, 'the chunk ends beyond 2^53 − 1');
  return { index, offset, length, last: (flags & FLAG_LAST) !== 0, sha256, signature };
}

/**
 * What a chunk's Ed25519 signature covers: a label, the session, the push's authority and path (so a
 * chunk cannot be moved to another session or resource), the `created` time of the push's signed response
 * (so a chunk of an earlier push of the same path cannot be replayed into a later one), and every field of
 * the frame but the signature.
 *
 * `"pushcast-chunk-v1" 0x00 | session ID length (1) | session ID | authority 0x00 | path 0x00 | created (8, big-endian) | index (8) | offset (8) | length (8) | flags (1) | SHA-256 (32)`
 */
export function chunkSignatureBase(
  sessionId: Uint8Array,
  authority: string,
  path: string,
  created: number,
  c: Omit<ChunkDigest, 'signature'>,
): Uint8Array {
  const text = new TextEncoder();
  const label = text.encode('pushcast-chunk-v1\0');
  const where = text.encode(`${authority}\0${path}\0`);
  if (sessionId.length > 255) throw new WireError('invalid-argument', 0, 'a session ID is at most 255 bytes');
  for (const v of [created, c.index, c.offset, c.length])
    if (!Number.isSafeInteger(v) || v < 0) throw new WireError('invalid-argument', 0, `${v} is not a count`);
  const out = new Uint8Array(label.length + 1 + sessionId.length + where.length + 8 * 4 + 1 + SHA256_BYTES);
  const view = new DataView(out.buffer);
  let at = 0;
  out.set(label, at);
  at += label.length;
  out[at++] = sessionId.length;
  out.set(sessionId, at);
  at += sessionId.length;
  out.set(where, at);
  at += where.length;
  for (const v of [created, c.index, c.offset, c.length]) {
    view.setBigUint64(at, BigInt(v));
    at += 8;
  }
  out[at++] = c.last ? FLAG_LAST : 0;
  out.set(c.sha256, at);
  return out;
}
