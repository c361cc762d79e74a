/**
 * moq-lite-02's subscribe stream (docs/moq.md): one SUBSCRIBE, answered by an empty SUBSCRIBE_OK; the
 * subscription lasts as long as the stream. Groups of the track then come on unidirectional streams
 * that name the subscription's ID (group.ts).
 *
 *   SUBSCRIBE    { ID (i), Broadcast (s), Track (s), Priority (8) }
 *   SUBSCRIBE_OK { }
 *
 * Priority: higher is sent first (`@moq/hang`: catalog 100, audio 80, video 60).
 * Pure, isomorphic; decoders throw only WireError.
 */
import { Cursor, concatBytes } from '../bytes.js';
import { WireError } from '../errors.js';
import { encodeVarint } from '../varint.js';
import { expectEnd, readMoqString, writeMoqString } from './message.js';

export interface MoqSubscribe {
  /** Chosen by the subscriber, unique in its session. */
  id: number;
  broadcast: string;
  track: string;
  priority: number;
}

export function encodeMoqSubscribe(m: MoqSubscribe): Uint8Array {
  if (!Number.isInteger(m.priority) || m.priority < 0 || m.priority > 255)
    throw new WireError('invalid-argument', 0, `priority ${m.priority} is not a byte`);
  const parts = [encodeVarint(m.id)];
  writeMoqString(parts, m.broadcast);
  writeMoqString(parts, m.track);
  parts.push(Uint8Array.of(m.priority));
  return concatBytes(parts);
}

export function decodeMoqSubscribe(payload: Uint8Array): MoqSubscribe {
  const c = new Cursor(payload);
  const id = c.varint('SUBSCRIBE id');
  const broadcast = readMoqString(c, 'SUBSCRIBE broadcast');
  const track = readMoqString(c, 'SUBSCRIBE track');
  const priority = c.u8('SUBSCRIBE priority');
  expectEnd(c, 'SUBSCRIBE');
  return { id, broadcast, track, priority };
}

/** SUBSCRIBE_OK has no fields in moq-lite-02. */
export function encodeMoqSubscribeOk(): Uint8Array {
  return new Uint8Array(0);
}

export function decodeMoqSubscribeOk(payload: Uint8Array): Record<string, never> {
  expectEnd(new Cursor(payload), 'SUBSCRIBE_OK');
  return {};
}
