/**
 * Wire codec of WebTransport over WebSocket, the fallback for browsers without WebTransport: the
 * exact format of the `@moq/web-transport-ws` polyfill (npm 0.3.0, its `frame.js`, `stream.js` and
 * `varint.js` are the reference; the Rust crate `web-transport-ws` speaks the same), so that the
 * unmodified polyfill talks to pushcast. A simplified QMux (draft-opik-quic-qmux): QUIC's stream
 * frames (RFC 9000 §19) carried one per WebSocket message (RFC 6455).
 *
 * - **Handshake.** WebSocket subprotocol `webtransport`; a client also offers `webtransport.<app>`
 *   for each application protocol, and the server selects one of the offered.
 * - **Messages.** Every binary message is exactly one frame: a type byte, then fields that are QUIC
 *   variable-length integers (RFC 9000 §16, minimal length as the polyfill writes them):
 *
 *   | type | frame | fields |
 *   | --- | --- | --- |
 *   | 0x04 | RESET_STREAM | stream ID, application code |
 *   | 0x05 | STOP_SENDING | stream ID, application code |
 *   | 0x08 | STREAM | stream ID, then data to the end of the message |
 *   | 0x09 | STREAM + FIN | stream ID, then data (maybe none) to the end of the message |
 *   | 0x1d | APPLICATION_CLOSE | code, then a UTF-8 reason to the end of the message |
 *
 *   No offsets and no lengths: the WebSocket message delimits the frame and TCP orders it. No flow
 *   control, no datagrams. Fields after a RESET_STREAM/STOP_SENDING code are ignored (the polyfill
 *   ignores them too).
 * - **Stream IDs** as RFC 9000 §2.1: bit 0 set = server-initiated, bit 1 set = unidirectional; the
 *   n-th stream of a kind is `n << 2 | bits`. Which side may send on an ID is {@link canSendOn}.
 *
 * Pure functions over Uint8Array, isomorphic. Decoders throw only {@link WireError}; decoded STREAM
 * data is a view into the message, never a copy.
 */
import { WireError } from './errors.js';
import { readVarint, varintLength, writeVarint } from './varint.js';

/** The frame type byte of each message. */
export const WsFrameType = {
  RESET_STREAM: 0x04,
  STOP_SENDING: 0x05,
  STREAM: 0x08,
  STREAM_FIN: 0x09,
  APPLICATION_CLOSE: 0x1d,
} as const;

/** The WebSocket subprotocol (RFC 6455 §1.9) of the polyfill; application protocols append `.<name>`. */
export const WEBTRANSPORT_WS_PROTOCOL = 'webtransport';
export const WEBTRANSPORT_WS_PROTOCOL_PREFIX = 'webtransport.';

export interface WsStreamFrame {
  readonly type: 'stream';
  readonly id: number;
  readonly fin: boolean;
  readonly data: Uint8Array;
}

export interface WsResetStreamFrame {
  readonly type: 'reset-stream';
  readonly id: number;
  readonly code: number;
}

export interface WsStopSendingFrame {
  readonly type: 'stop-sending';
  readonly id: number;
  readonly code: number;
}

export interface WsApplicationCloseFrame {
  readonly type: 'application-close';
  readonly code: number;
  readonly reason: string;
}

export type WsFrame = WsStreamFrame | WsResetStreamFrame | WsStopSendingFrame | WsApplicationCloseFrame;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One frame as one WebSocket message's payload. Throws `invalid-argument` for IDs or codes beyond 2^62−1 or negative. */
export function encodeWsFrame(frame: WsFrame): Uint8Array {
  switch (frame.type) {
    case 'stream': {
      const out = new Uint8Array(1 + varintLength(frame.id) + frame.data.length);
      out[0] = frame.fin ? WsFrameType.STREAM_FIN : WsFrameType.STREAM;
      out.set(frame.data, writeVarint(out, 1, frame.id));
      return out;
    }
    case 'reset-stream':
    case 'stop-sending': {
      const out = new Uint8Array(1 + varintLength(frame.id) + varintLength(frame.code));
      out[0] = frame.type === 'reset-stream' ? WsFrameType.RESET_STREAM : WsFrameType.STOP_SENDING;
      writeVarint(out, writeVarint(out, 1, frame.id), frame.code);
      return out;
    }
    case 'application-close': {
      const reason = encoder.encode(frame.reason);
      const out = new Uint8Array(1 + varintLength(frame.code) + reason.length);
      out[0] = WsFrameType.APPLICATION_CLOSE;
      out.set(reason, writeVarint(out, 1, frame.code));
      return out;
    }
  }
}

/**
 * The frame a WebSocket message carries: `truncated` for an empty message or a varint cut short,
 * `unknown-frame-type` for another type byte, `unsafe-integer` for an ID or code above 2^53−1.
 */
export function decodeWsFrame(bytes: Uint8Array): WsFrame {
  if (bytes.length === 0) throw new WireError('truncated', 0, 'an empty message has no frame type');
  const type = bytes[0]!;
  switch (type) {
    case WsFrameType.STREAM:
    case WsFrameType.STREAM_FIN: {
      const id = readVarint(bytes, 1);
      return {
        type: 'stream',
        id: id.value,
        fin: type === WsFrameType.STREAM_FIN,
        data: bytes.subarray(1 + id.length),
      };
    }
    case WsFrameType.RESET_STREAM:
    case WsFrameType.STOP_SENDING: {
      const id = readVarint(bytes, 1);
      const code = readVarint(bytes, 1 + id.length);
      return {
        type: type === WsFrameType.RESET_STREAM ? 'reset-stream' : 'stop-sending',
        id: id.value,
        code: code.value,
      };
    }
    case WsFrameType.APPLICATION_CLOSE: {
      const code = readVarint(bytes, 1);
      return { type: 'application-close', code: code.value, reason: decoder.decode(bytes.subarray(1 + code.length)) };
    }
    default:
      throw new WireError(
        'unknown-frame-type',
        0,
        `frame type 0x${type.toString(16).padStart(2, '0')} is not one of WebTransport over WebSocket's`,
      );
  }
}

/** RFC 9000 §2.1: bit 0 of a stream ID marks a server-initiated stream. */
export function isServerInitiated(id: number): boolean {
  return id % 2 === 1;
}

/** RFC 9000 §2.1: bit 1 of a stream ID marks a unidirectional stream. */
export function isUnidirectional(id: number): boolean {
  return Math.floor(id / 2) % 2 === 1;
}

/** The `index`-th stream (from 0) of its kind: `index << 2 | uni << 1 | server` (RFC 9000 §2.1). */
export function makeStreamId(index: number, bidirectional: boolean, serverInitiated: boolean): number {
  return index * 4 + (bidirectional ? 0 : 2) + (serverInitiated ? 1 : 0);
}

/** Whether the server (`server` true) or the client may send STREAM data on `id`: both on a bidirectional stream, only its opener on a unidirectional one. */
export function canSendOn(id: number, server: boolean): boolean {
  return !isUnidirectional(id) || isServerInitiated(id) === server;
}

/** Whether `server` (or the client) may receive STREAM data on `id`: both on a bidirectional stream, only the opener's peer on a unidirectional one. */
export function canReceiveOn(id: number, server: boolean): boolean {
  return !isUnidirectional(id) || isServerInitiated(id) !== server;
}
