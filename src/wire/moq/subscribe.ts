/**
 * moq-lite's subscribe stream (docs/moq.md): one SUBSCRIBE, answered by SUBSCRIBE_OK; the subscription
 * lasts as long as the stream. Groups of the track then come on unidirectional streams that name the
 * subscription's ID (group.ts).
 *
 *   moq-lite-02:
 *   SUBSCRIBE        { ID (i), Broadcast (s), Track (s), Priority (8) }
 *   SUBSCRIBE_OK     { }
 *   moq-lite-03 adds the delivery the subscriber asks for, and a type before each response:
 *   SUBSCRIBE        { ID (i), Broadcast (s), Track (s), Priority (8), Ordered (8), Max Latency (i),
 *                      Start Group (i), End Group (i) }            groups: 0 = none, else group + 1
 *   SUBSCRIBE_UPDATE { Priority (8), Ordered (8), Max Latency (i), Start Group (i), End Group (i) }
 *   response         { Type (i): 0 SUBSCRIBE_OK, then SUBSCRIBE_OK { the same five fields } }
 *
 * Priority: higher is sent first (`@moq/hang`: catalog 100, audio 80, video 60).
 * Pure, isomorphic; decoders throw only WireError.
 */
import { Cursor, concatBytes } from '../bytes.js';
import { WireError } from '../errors.js';
import { encodeVarint } from '../varint.js';
import { expectEnd, type MoqLiteDraft, readMoqString, writeMoqString } from './message.js';

/** What a moq-lite-03 subscriber asks of the delivery (absent in moq-lite-02). */
export interface MoqDelivery {
  priority: number;
  /** Groups in order rather than newest first. */
  ordered: boolean;
  /** ms; 0 = no bound. */
  maxLatency: number;
  startGroup?: number;
  endGroup?: number;
}

export interface MoqSubscribe extends Partial<Omit<MoqDelivery, 'priority'>> {
  /** Chosen by the subscriber, unique in its session. */
  id: number;
  broadcast: string;
  track: string;
  priority: number;
}

function checkPriority(priority: number): void {
  if (!Number.isInteger(priority) || priority < 0 || priority > 255)
    throw new WireError('invalid-argument', 0, `priority ${priority} is not a byte`);
}

function writeDelivery(parts: Uint8Array[], d: Omit<MoqDelivery, 'priority'>): void {
  parts.push(
    Uint8Array.of(d.ordered ? 1 : 0),
    encodeVarint(d.maxLatency),
    encodeVarint(d.startGroup === undefined ? 0 : d.startGroup + 1),
    encodeVarint(d.endGroup === undefined ? 0 : d.endGroup + 1),
  );
}

function readDelivery(c: Cursor, what: string): Omit<MoqDelivery, 'priority'> {
  const at = c.pos;
  const ordered = c.u8(`${what} ordered`);
  if (ordered > 1) throw new WireError('frame-encoding', at, `${what} ordered is ${ordered}, not a bool`);
  const maxLatency = c.varint(`${what} max latency`);
  const start = c.varint(`${what} start group`);
  const end = c.varint(`${what} end group`);
  return {
    ordered: ordered === 1,
    maxLatency,
    ...(start > 0 ? { startGroup: start - 1 } : {}),
    ...(end > 0 ? { endGroup: end - 1 } : {}),
  };
}

export function encodeMoqSubscribe(m: MoqSubscribe, draft: MoqLiteDraft = 2): Uint8Array {
  checkPriority(m.priority);
  const parts = [encodeVarint(m.id)];
  writeMoqString(parts, m.broadcast);
  writeMoqString(parts, m.track);
  parts.push(Uint8Array.of(m.priority));
  if (draft >= 3)
    writeDelivery(parts, {
      ordered: m.ordered ?? false,
      maxLatency: m.maxLatency ?? 0,
      startGroup: m.startGroup,
      endGroup: m.endGroup,
    });
  return concatBytes(parts);
}

export function decodeMoqSubscribe(payload: Uint8Array, draft: MoqLiteDraft = 2): MoqSubscribe {
  const c = new Cursor(payload);
  const id = c.varint('SUBSCRIBE id');
  const broadcast = readMoqString(c, 'SUBSCRIBE broadcast');
  const track = readMoqString(c, 'SUBSCRIBE track');
  const priority = c.u8('SUBSCRIBE priority');
  const delivery = draft >= 3 ? readDelivery(c, 'SUBSCRIBE') : {};
  expectEnd(c, 'SUBSCRIBE');
  return { id, broadcast, track, priority, ...delivery };
}

/** SUBSCRIBE_OK: no fields in moq-lite-02; in moq-lite-03 the delivery the publisher grants. */
export function encodeMoqSubscribeOk(draft: MoqLiteDraft = 2, granted?: MoqDelivery): Uint8Array {
  if (draft < 3) return new Uint8Array(0);
  const d = granted ?? { priority: 0, ordered: false, maxLatency: 0 };
  checkPriority(d.priority);
  const parts = [Uint8Array.of(d.priority)];
  writeDelivery(parts, d);
  return concatBytes(parts);
}

export function decodeMoqSubscribeOk(payload: Uint8Array, draft: MoqLiteDraft = 2): Partial<MoqDelivery> {
  const c = new Cursor(payload);
  if (draft < 3) {
    expectEnd(c, 'SUBSCRIBE_OK');
    return {};
  }
  const priority = c.u8('SUBSCRIBE_OK priority');
  const delivery = readDelivery(c, 'SUBSCRIBE_OK');
  expectEnd(c, 'SUBSCRIBE_OK');
  return { priority, ...delivery };
}

/** moq-lite-03's SUBSCRIBE_UPDATE: the subscriber changes what it asked. */
export function encodeMoqSubscribeUpdate(d: MoqDelivery): Uint8Array {
  return encodeMoqSubscribeOk(3, d);
}

export function decodeMoqSubscribeUpdate(payload: Uint8Array): MoqDelivery {
  const c = new Cursor(payload);
  const priority = c.u8('SUBSCRIBE_UPDATE priority');
  const delivery = readDelivery(c, 'SUBSCRIBE_UPDATE');
  expectEnd(c, 'SUBSCRIBE_UPDATE');
  return { priority, ...delivery };
}

/** moq-lite-03's response type before SUBSCRIBE_OK. */
export const MOQ_SUBSCRIBE_OK_TYPE = 0x0;
