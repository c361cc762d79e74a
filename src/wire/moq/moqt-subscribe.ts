/**
 * draft-ietf-moq-transport-16's subscription messages, on the control stream:
 *
 *   SUBSCRIBE (0x03)    { Request ID (i), Track Namespace, Track Name (s), Parameters }
 *   SUBSCRIBE_OK (0x04) { Request ID (i), Track Alias (i), Parameters, Track Extensions… }
 *   PUBLISH_DONE (0x0b) { Request ID (i), Status Code (i), Stream Count (i), Reason (s) }
 *
 * SUBSCRIBE's delivery fields are parameters: SUBSCRIBER_PRIORITY (0x20, lower first, default 128),
 * GROUP_ORDER (0x22: 1 ascending, 2 descending), FORWARD (0x10), SUBSCRIPTION_FILTER (0x21, bytes: a
 * Filter Type (i), then for 3/4 a start Location {Group (i), Object (i)}, for 4 an end group as a delta
 * from the start, as `@moq/net` writes it). SUBSCRIBE_OK may carry LARGEST_OBJECT (0x09, a Location).
 * Pure, isomorphic; decoders throw only WireError.
 */
import { Cursor, concatBytes } from '../bytes.js';
import { WireError } from '../errors.js';
import { encodeVarint } from '../varint.js';
import { expectEnd, readMoqString, writeMoqString } from './message.js';
import {
  type MoqtParameters,
  readMoqtNamespace,
  readMoqtParameters,
  writeMoqtNamespace,
  writeMoqtParameters,
} from './moqt-parameters.js';

/** Message parameter types pushcast reads or writes. */
export const MoqtParameter = {
  FORWARD: 0x10n,
  SUBSCRIBER_PRIORITY: 0x20n,
  SUBSCRIPTION_FILTER: 0x21n,
  GROUP_ORDER: 0x22n,
  LARGEST_OBJECT: 0x09n,
} as const;

export type MoqtFilter =
  /** From the start of the next group. */
  | { kind: 'next-group' }
  /** From the object after the largest one published (pushcast: the group under way, from its start). */
  | { kind: 'largest-object' }
  | { kind: 'absolute-start'; group: number; object: number }
  | { kind: 'absolute-range'; group: number; object: number; endGroup: number };

const FILTER_TYPE = { 'next-group': 1, 'largest-object': 2, 'absolute-start': 3, 'absolute-range': 4 } as const;

export interface MoqtSubscribe {
  requestId: number;
  namespace: string[];
  track: string;
  /** 0 is the most urgent. Absent: 128. */
  priority?: number;
  /** 1 ascending, 2 descending; absent or 0: the publisher's. */
  groupOrder?: number;
  forward?: boolean;
  filter?: MoqtFilter;
  /** Every parameter as received, those above included. */
  parameters?: MoqtParameters;
}

export function encodeMoqtFilter(f: MoqtFilter): Uint8Array {
  const parts = [encodeVarint(FILTER_TYPE[f.kind])];
  if (f.kind === 'absolute-start' || f.kind === 'absolute-range')
    parts.push(encodeVarint(f.group), encodeVarint(f.object));
  if (f.kind === 'absolute-range') {
    if (f.endGroup < f.group)
      throw new WireError('invalid-argument', 0, `a range from group ${f.group} to ${f.endGroup}`);
    parts.push(encodeVarint(f.endGroup - f.group));
  }
  return concatBytes(parts);
}

export function decodeMoqtFilter(value: Uint8Array): MoqtFilter {
  const c = new Cursor(value);
  const at = c.pos;
  const type = c.varint('filter type');
  let f: MoqtFilter;
  switch (type) {
    case 1:
      f = { kind: 'next-group' };
      break;
    case 2:
      f = { kind: 'largest-object' };
      break;
    case 3:
    case 4: {
      const group = c.varint('filter start group');
      const object = c.varint('filter start object');
      if (type === 3) f = { kind: 'absolute-start', group, object };
      else {
        const endGroup = group + c.varint('filter end group delta');
        if (!Number.isSafeInteger(endGroup))
          throw new WireError('unsafe-integer', at, 'filter end group beyond 2^53-1');
        f = { kind: 'absolute-range', group, object, endGroup };
      }
      break;
    }
    default:
      throw new WireError('frame-encoding', at, `filter type ${type}`);
  }
  expectEnd(c, 'SUBSCRIPTION_FILTER');
  return f;
}

function checkByte(what: string, v: number): bigint {
  if (!Number.isInteger(v) || v < 0 || v > 255)
    throw new WireError('invalid-argument', 0, `${what} ${v} is not a byte`);
  return BigInt(v);
}

export function encodeMoqtSubscribe(m: MoqtSubscribe): Uint8Array {
  const parts = [encodeVarint(m.requestId)];
  writeMoqtNamespace(parts, m.namespace);
  writeMoqString(parts, m.track);
  const p: MoqtParameters = new Map(m.parameters);
  if (m.priority !== undefined) p.set(MoqtParameter.SUBSCRIBER_PRIORITY, checkByte('priority', m.priority));
  if (m.groupOrder !== undefined) p.set(MoqtParameter.GROUP_ORDER, checkByte('group order', m.groupOrder));
  if (m.forward !== undefined) p.set(MoqtParameter.FORWARD, m.forward ? 1n : 0n);
  if (m.filter !== undefined) p.set(MoqtParameter.SUBSCRIPTION_FILTER, encodeMoqtFilter(m.filter));
  writeMoqtParameters(parts, p);
  return concatBytes(parts);
}

function byteParameter(p: MoqtParameters, type: bigint, what: string, max = 255): number | undefined {
  const v = p.get(type);
  if (v === undefined) return undefined;
  if (typeof v !== 'bigint' || v > BigInt(max)) throw new WireError('frame-encoding', 0, `SUBSCRIBE ${what} ${v}`);
  return Number(v);
}

export function decodeMoqtSubscribe(payload: Uint8Array): MoqtSubscribe {
  const c = new Cursor(payload);
  const requestId = c.varint('SUBSCRIBE request id');
  const namespace = readMoqtNamespace(c, 'SUBSCRIBE');
  const track = readMoqString(c, 'SUBSCRIBE track name');
  const parameters = readMoqtParameters(c, 'SUBSCRIBE');
  expectEnd(c, 'SUBSCRIBE');
  const m: MoqtSubscribe = { requestId, namespace, track, parameters };
  const priority = byteParameter(parameters, MoqtParameter.SUBSCRIBER_PRIORITY, 'priority');
  if (priority !== undefined) m.priority = priority;
  const groupOrder = byteParameter(parameters, MoqtParameter.GROUP_ORDER, 'group order', 2);
  if (groupOrder !== undefined) m.groupOrder = groupOrder;
  const forward = byteParameter(parameters, MoqtParameter.FORWARD, 'forward', 1);
  if (forward !== undefined) m.forward = forward === 1;
  const filter = parameters.get(MoqtParameter.SUBSCRIPTION_FILTER);
  if (filter !== undefined) m.filter = decodeMoqtFilter(filter as Uint8Array);
  return m;
}

export interface MoqtSubscribeOk {
  requestId: number;
  /** Chosen by the publisher; names the track on the data streams. */
  trackAlias: number;
  /** The largest object published so far (LARGEST_OBJECT). */
  largest?: { group: number; object: number };
}

export function encodeMoqtSubscribeOk(m: MoqtSubscribeOk): Uint8Array {
  const parts = [encodeVarint(m.requestId), encodeVarint(m.trackAlias)];
  const p: MoqtParameters = new Map();
  if (m.largest)
    p.set(MoqtParameter.LARGEST_OBJECT, concatBytes([encodeVarint(m.largest.group), encodeVarint(m.largest.object)]));
  writeMoqtParameters(parts, p);
  return concatBytes(parts);
}

export function decodeMoqtSubscribeOk(payload: Uint8Array): MoqtSubscribeOk {
  const c = new Cursor(payload);
  const requestId = c.varint('SUBSCRIBE_OK request id');
  const trackAlias = c.varint('SUBSCRIBE_OK track alias');
  const parameters = readMoqtParameters(c, 'SUBSCRIBE_OK');
  readMoqtParameters(c, 'SUBSCRIBE_OK track extensions', true);
  const m: MoqtSubscribeOk = { requestId, trackAlias };
  const largest = parameters.get(MoqtParameter.LARGEST_OBJECT);
  if (largest instanceof Uint8Array) {
    const l = new Cursor(largest);
    m.largest = { group: l.varint('LARGEST_OBJECT group'), object: l.varint('LARGEST_OBJECT object') };
    expectEnd(l, 'LARGEST_OBJECT');
  }
  return m;
}

/** PUBLISH_DONE status codes (draft-16 §9.12) pushcast sends. */
export const MoqtPublishDone = { UNSUBSCRIBED: 0x0, INTERNAL: 0x1, TRACK_ENDED: 0x2, GOING_AWAY: 0x4 } as const;

export interface MoqtPublishDoneMessage {
  requestId: number;
  status: number;
  /** Data streams the subscription opened (0: not counted). */
  streamCount: number;
  reason: string;
}

export function encodeMoqtPublishDone(m: MoqtPublishDoneMessage): Uint8Array {
  const parts = [encodeVarint(m.requestId), encodeVarint(m.status), encodeVarint(m.streamCount)];
  writeMoqString(parts, m.reason);
  return concatBytes(parts);
}

export function decodeMoqtPublishDone(payload: Uint8Array): MoqtPublishDoneMessage {
  const c = new Cursor(payload);
  const requestId = c.varint('PUBLISH_DONE request id');
  const status = c.varint('PUBLISH_DONE status');
  const streamCount = c.varint('PUBLISH_DONE stream count');
  const reason = readMoqString(c, 'PUBLISH_DONE reason');
  expectEnd(c, 'PUBLISH_DONE');
  return { requestId, status, streamCount, reason };
}
