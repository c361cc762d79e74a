/**
 * draft-ietf-moq-transport-16's generic responses and request flow control:
 *
 *   REQUEST_OK (0x07)     { Request ID (i), Parameters, Track Extensions… }
 *   REQUEST_ERROR (0x05)  { Request ID (i), Error Code (i), Retry Interval (i), Reason (s) }
 *   MAX_REQUEST_ID (0x15) { Request ID (i) }   (also REQUESTS_BLOCKED 0x1a, UNSUBSCRIBE 0x0a)
 *
 * Pure, isomorphic; decoders throw only WireError.
 */
import { Cursor, concatBytes } from '../bytes.js';
import { WireError } from '../errors.js';
import { encodeVarint } from '../varint.js';
import { expectEnd, readMoqString, writeMoqString } from './message.js';
import { type MoqtParameters, readMoqtParameters, writeMoqtParameters } from './moqt-parameters.js';

/** REQUEST_ERROR codes (draft-16 §9.8) pushcast sends. */
export const MoqtRequestError = {
  INTERNAL: 0x0,
  UNAUTHORIZED: 0x1,
  NOT_SUPPORTED: 0x3,
  DOES_NOT_EXIST: 0x4,
  INVALID_RANGE: 0x5,
} as const;

export interface MoqtRequestOk {
  requestId: number;
  parameters?: MoqtParameters;
}

export function encodeMoqtRequestOk(m: MoqtRequestOk): Uint8Array {
  const parts = [encodeVarint(m.requestId)];
  writeMoqtParameters(parts, m.parameters ?? new Map());
  return concatBytes(parts);
}

export function decodeMoqtRequestOk(payload: Uint8Array): Required<MoqtRequestOk> {
  const c = new Cursor(payload);
  const requestId = c.varint('REQUEST_OK request id');
  const parameters = readMoqtParameters(c, 'REQUEST_OK');
  readMoqtParameters(c, 'REQUEST_OK track extensions', true);
  return { requestId, parameters };
}

export interface MoqtRequestErrorMessage {
  requestId: number;
  code: number;
  /** ms before the request may be retried; 0 = never. */
  retryInterval?: number;
  reason: string;
}

export function encodeMoqtRequestError(m: MoqtRequestErrorMessage): Uint8Array {
  const parts = [encodeVarint(m.requestId), encodeVarint(m.code), encodeVarint(m.retryInterval ?? 0)];
  writeMoqString(parts, m.reason);
  return concatBytes(parts);
}

export function decodeMoqtRequestError(payload: Uint8Array): Required<MoqtRequestErrorMessage> {
  const c = new Cursor(payload);
  const requestId = c.varint('REQUEST_ERROR request id');
  const code = c.varint('REQUEST_ERROR code');
  const retryInterval = c.varint('REQUEST_ERROR retry interval');
  const reason = readMoqString(c, 'REQUEST_ERROR reason');
  expectEnd(c, 'REQUEST_ERROR');
  return { requestId, code, retryInterval, reason };
}

/** A message whose only field is a request ID: MAX_REQUEST_ID, REQUESTS_BLOCKED, UNSUBSCRIBE. */
export function encodeMoqtRequestId(requestId: number): Uint8Array {
  if (!Number.isSafeInteger(requestId) || requestId < 0)
    throw new WireError('invalid-argument', 0, `request id ${requestId}`);
  return encodeVarint(requestId);
}

export function decodeMoqtRequestId(payload: Uint8Array, what = 'request id'): number {
  const c = new Cursor(payload);
  const id = c.varint(what);
  expectEnd(c, what);
  return id;
}
