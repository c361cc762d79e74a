/**
 * draft-ietf-moq-transport-16's subgroup streams (§10.4.2): a unidirectional stream per subgroup, its
 * header then its objects in order until FIN. pushcast: a group is a GoP, one subgroup (0) per group, an
 * object a CMAF chunk (moof+mdat).
 *
 *   SUBGROUP_HEADER { Type (i), Track Alias (i), Group ID (i), [Subgroup ID (i)], [Publisher Priority (8)] }
 *   OBJECT          { Object ID Delta (i), [Extensions Length (i) + Extensions], Payload Length (i),
 *                     Payload length 0: Object Status (i) | Payload }
 *
 * Type 0x10–0x1D with a publisher priority, 0x30–0x3D without: bit 0x01 extensions, bits 0x06 the
 * subgroup ID (0 implicit; 2: the first object's ID; 4: explicit), bit 0x08 the subgroup ends its
 * group. The first object's delta is its ID, each next object's ID is the previous + delta + 1.
 * Pure, isomorphic; decoders throw only WireError.
 */
import { Cursor, concatBytes } from '../bytes.js';
import { WireError } from '../errors.js';
import { encodeVarint } from '../varint.js';

export interface MoqtSubgroupHeader {
  trackAlias: number;
  group: number;
  /** Absent: 0 (or, with `subgroupIsFirstObject`, the first object's ID). */
  subgroup?: number;
  /** 0 is the most urgent; absent: the subscription's. */
  priority?: number;
  /** The objects carry extension headers. */
  extensions?: boolean;
  /** The group's last object is in this subgroup. */
  endOfGroup?: boolean;
  subgroupIsFirstObject?: boolean;
}

export function moqtSubgroupType(h: MoqtSubgroupHeader): number {
  let type = h.priority === undefined ? 0x30 : 0x10;
  if (h.extensions) type |= 0x01;
  if (h.subgroupIsFirstObject) type |= 0x02;
  else if (h.subgroup !== undefined && h.subgroup !== 0) type |= 0x04;
  if (h.endOfGroup) type |= 0x08;
  return type;
}

export function encodeMoqtSubgroupHeader(h: MoqtSubgroupHeader): Uint8Array {
  if (h.subgroupIsFirstObject && h.subgroup !== undefined)
    throw new WireError('invalid-argument', 0, 'a subgroup ID with subgroupIsFirstObject');
  const type = moqtSubgroupType(h);
  const parts = [encodeVarint(type), encodeVarint(h.trackAlias), encodeVarint(h.group)];
  if (type & 0x04) parts.push(encodeVarint(h.subgroup!));
  if (h.priority !== undefined) {
    if (!Number.isInteger(h.priority) || h.priority < 0 || h.priority > 255)
      throw new WireError('invalid-argument', 0, `priority ${h.priority} is not a byte`);
    parts.push(Uint8Array.of(h.priority));
  }
  return concatBytes(parts);
}

/** Reads a subgroup header at the cursor; `frame-encoding` for a type that is not one. */
export function readMoqtSubgroupHeader(c: Cursor): MoqtSubgroupHeader {
  const at = c.pos;
  const type = c.varint('subgroup stream type');
  const base = type & ~0x20;
  if (base < 0x10 || base > 0x1d || (base & 0x06) === 0x06 || (type & 0xc0) !== 0)
    throw new WireError('frame-encoding', at, `stream type 0x${type.toString(16)} is no subgroup`);
  const h: MoqtSubgroupHeader = { trackAlias: c.varint('track alias'), group: c.varint('group id') };
  if (type & 0x01) h.extensions = true;
  if (type & 0x02) h.subgroupIsFirstObject = true;
  if (type & 0x04) h.subgroup = c.varint('subgroup id');
  if (type & 0x08) h.endOfGroup = true;
  if (!(type & 0x20)) h.priority = c.u8('publisher priority');
  return h;
}

export function decodeMoqtSubgroupHeader(bytes: Uint8Array): MoqtSubgroupHeader {
  const c = new Cursor(bytes);
  const h = readMoqtSubgroupHeader(c);
  if (c.remaining > 0) throw new WireError('frame-encoding', c.pos, `${c.remaining} bytes after the subgroup header`);
  return h;
}

/** An object's header in a subgroup stream; its payload (`payloadLength` bytes) follows as is. */
export function encodeMoqtObjectHeader(idDelta: number, payloadLength: number, extensions?: Uint8Array): Uint8Array {
  if (payloadLength === 0) throw new WireError('invalid-argument', 0, 'an empty object needs a status');
  const parts = [encodeVarint(idDelta)];
  if (extensions) parts.push(encodeVarint(extensions.length), extensions);
  parts.push(encodeVarint(payloadLength));
  return concatBytes(parts);
}

export interface MoqtObject {
  id: number;
  payload: Uint8Array;
  /** Present for an empty object: 0 normal, 3 end of group, 4 end of track. */
  status?: number;
  extensions?: Uint8Array;
}

/** Longest object a decoder takes. */
export const MAX_MOQT_OBJECT = 16 * 1024 * 1024;

/**
 * Reads the next object at the cursor, the previous one's ID given (`undefined` for the first).
 * `undefined` (cursor unmoved) when the input ends before the object does.
 */
export function readMoqtObject(c: Cursor, h: MoqtSubgroupHeader, previous: number | undefined): MoqtObject | undefined {
  const start = c.pos;
  try {
    const delta = c.varint('object id delta');
    const id = previous === undefined ? delta : previous + delta + 1;
    if (!Number.isSafeInteger(id)) throw new WireError('unsafe-integer', start, 'object id beyond 2^53-1');
    const o: MoqtObject = { id, payload: new Uint8Array(0) };
    if (h.extensions) {
      const length = c.varint('extensions length');
      if (length > 4096) throw new WireError('frame-encoding', c.pos, `extensions of ${length} bytes`);
      o.extensions = c.take(length, 'extensions');
    }
    const length = c.varint('payload length');
    if (length > MAX_MOQT_OBJECT) throw new WireError('frame-too-large', c.pos, `an object of ${length} bytes`);
    if (length === 0) {
      o.status = c.varint('object status');
      if (![0, 1, 3, 4].includes(o.status)) throw new WireError('frame-encoding', c.pos, `object status ${o.status}`);
    } else o.payload = c.take(length, 'payload');
    return o;
  } catch (error) {
    if (error instanceof WireError && error.code === 'truncated') {
      c.pos = start;
      return undefined;
    }
    throw error;
  }
}

/** A whole subgroup stream: its header and objects; `truncated` if it ends inside one. */
export function decodeMoqtSubgroupStream(bytes: Uint8Array): { header: MoqtSubgroupHeader; objects: MoqtObject[] } {
  const c = new Cursor(bytes);
  const header = readMoqtSubgroupHeader(c);
  const objects: MoqtObject[] = [];
  while (c.remaining > 0) {
    const o = readMoqtObject(c, header, objects.at(-1)?.id);
    if (!o) throw new WireError('truncated', c.pos, 'the stream ends inside an object');
    objects.push(o);
  }
  return { header, objects };
}
