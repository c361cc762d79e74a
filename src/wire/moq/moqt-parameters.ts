/**
 * draft-ietf-moq-transport-16's shared pieces (docs/moq.md): the control message framing, Key-Value-Pair
 * parameters and namespace tuples. Every control message, on the control stream or on a request's own
 * bidirectional stream, is `Type (i) + Length (16) + payload`.
 *
 *   Parameters       { Count (i), Key-Value-Pair… }          types delta-encoded, ascending
 *   Key-Value-Pair   { Type Delta (i), even: Value (i) | odd: Length (i) + Value }
 *   Namespace        { Count (i) ≤ 32, Field (s)… }
 *
 * Pure, isomorphic; decoders throw only WireError.
 */
import { type Cursor, concatBytes } from '../bytes.js';
import { WireError } from '../errors.js';
import { encodeVarint } from '../varint.js';
import { frameMoqtMessage, readMoqString, writeMoqString } from './message.js';

/** draft-ietf-moq-transport-16's version number, and its WebTransport protocol (`@moq/net` `Ietf.ALPN.DRAFT_16`). */
export const MOQT_DRAFT_16 = 0xff000010;
export const MOQT_16_PROTOCOL = 'moqt-16';

/** Control message types (draft-16 §9) pushcast reads or writes. */
export const MoqtMessage = {
  REQUEST_UPDATE: 0x02,
  SUBSCRIBE: 0x03,
  SUBSCRIBE_OK: 0x04,
  REQUEST_ERROR: 0x05,
  PUBLISH_NAMESPACE: 0x06,
  REQUEST_OK: 0x07,
  NAMESPACE: 0x08,
  UNSUBSCRIBE: 0x0a,
  PUBLISH_DONE: 0x0b,
  TRACK_STATUS: 0x0d,
  NAMESPACE_DONE: 0x0e,
  GOAWAY: 0x10,
  SUBSCRIBE_NAMESPACE: 0x11,
  MAX_REQUEST_ID: 0x15,
  FETCH: 0x16,
  REQUESTS_BLOCKED: 0x1a,
  PUBLISH: 0x1d,
  CLIENT_SETUP: 0x20,
  SERVER_SETUP: 0x21,
} as const;

/** A message's parameters by type: a varint when the type is even, bytes when odd. */
export type MoqtParameters = Map<bigint, bigint | Uint8Array>;

/** Parameters one message may carry, namespace fields, and the longest bytes value taken. */
export const MAX_MOQT_PARAMETERS = 64;
export const MAX_MOQT_NAMESPACE_FIELDS = 32;
export const MAX_MOQT_PARAMETER_BYTES = 4096;

/** A control message: its type, then the payload with its 16-bit length. */
export function frameMoqtControl(type: number, payload: Uint8Array): Uint8Array {
  return concatBytes([encodeVarint(type), frameMoqtMessage(payload)]);
}

/** The Key-Value-Pairs, ascending by type with each type a delta from the one before (draft-16 §1.4.2). */
export function writeMoqtParameters(parts: Uint8Array[], parameters: MoqtParameters, counted = true): void {
  if (parameters.size > MAX_MOQT_PARAMETERS)
    throw new WireError('invalid-argument', 0, `${parameters.size} parameters`);
  if (counted) parts.push(encodeVarint(parameters.size));
  let previous = 0n;
  for (const type of [...parameters.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
    const value = parameters.get(type)!;
    const even = (type & 1n) === 0n;
    if (even !== (typeof value === 'bigint'))
      throw new WireError('invalid-argument', 0, `parameter 0x${type.toString(16)}: even types are varints, odd bytes`);
    parts.push(encodeVarint(type - previous));
    previous = type;
    if (typeof value === 'bigint') parts.push(encodeVarint(value));
    else {
      if (value.length > MAX_MOQT_PARAMETER_BYTES)
        throw new WireError('invalid-argument', 0, `a parameter of ${value.length} bytes`);
      parts.push(encodeVarint(value.length), value);
    }
  }
}

/** Reads counted Key-Value-Pairs, or with `toEnd` those up to the end of the message (track extensions). */
export function readMoqtParameters(c: Cursor, what: string, toEnd = false): MoqtParameters {
  const n = toEnd ? 0 : c.varint(`${what} parameters count`);
  if (n > MAX_MOQT_PARAMETERS)
    throw new WireError('frame-encoding', c.pos, `${n} parameters (at most ${MAX_MOQT_PARAMETERS})`);
  const parameters: MoqtParameters = new Map();
  let previous = 0n;
  for (let i = 0; toEnd ? c.remaining > 0 : i < n; i++) {
    if (i >= MAX_MOQT_PARAMETERS)
      throw new WireError('frame-encoding', c.pos, `more than ${MAX_MOQT_PARAMETERS} parameters`);
    const at = c.pos;
    const type = previous + c.bigVarint(`${what} parameter type`);
    if (i > 0 && type === previous)
      throw new WireError('frame-encoding', at, `${what}: parameter 0x${type.toString(16)} twice`);
    if (type >= 1n << 62n) throw new WireError('varint-overflow', at, `${what}: parameter type beyond 2^62-1`);
    previous = type;
    if ((type & 1n) === 0n) parameters.set(type, c.bigVarint(`${what} parameter value`));
    else {
      const length = c.varint(`${what} parameter length`);
      if (length > MAX_MOQT_PARAMETER_BYTES)
        throw new WireError('frame-encoding', c.pos, `${what}: a parameter of ${length} bytes`);
      parameters.set(type, c.take(length, `${what} parameter value`).slice());
    }
  }
  return parameters;
}

export function writeMoqtNamespace(parts: Uint8Array[], fields: readonly string[]): void {
  if (fields.length > MAX_MOQT_NAMESPACE_FIELDS)
    throw new WireError('invalid-argument', 0, `a namespace of ${fields.length} fields`);
  parts.push(encodeVarint(fields.length));
  for (const f of fields) writeMoqString(parts, f);
}

export function readMoqtNamespace(c: Cursor, what: string): string[] {
  const count = c.varint(`${what} namespace count`);
  if (count > MAX_MOQT_NAMESPACE_FIELDS)
    throw new WireError(
      'frame-encoding',
      c.pos,
      `${what}: ${count} namespace fields (at most ${MAX_MOQT_NAMESPACE_FIELDS})`,
    );
  return Array.from({ length: count }, () => readMoqString(c, `${what} namespace field`));
}
