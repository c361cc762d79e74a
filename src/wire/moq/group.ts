/**
 * moq-lite-02's group stream (docs/moq.md): a unidirectional stream of type 0 per group, a GROUP header
 * naming the subscription and the group's sequence, then its frames in order, each `Size (i)` + payload,
 * until FIN. pushcast: a group is a GoP, a frame a CMAF chunk (moof+mdat).
 *
 *   GROUP { Subscribe ID (i), Sequence (i) }   (size-prefixed)
 *   FRAME { Size (i), Payload }
 *
 * Pure, isomorphic; decoders throw only WireError.
 */
import { Cursor } from '../bytes.js';
import { encodeVarint, varintLength, writeVarint } from '../varint.js';
import { MoqLiteData, encodeMoqStreamStart, expectEnd, frameMoqMessage } from './message.js';

export interface MoqGroup {
  subscribe: number;
  sequence: number;
}

export function encodeMoqGroup(m: MoqGroup): Uint8Array {
  const out = new Uint8Array(varintLength(m.subscribe) + varintLength(m.sequence));
  writeVarint(out, writeVarint(out, 0, m.subscribe), m.sequence);
  return out;
}

export function decodeMoqGroup(payload: Uint8Array): MoqGroup {
  const c = new Cursor(payload);
  const subscribe = c.varint('GROUP subscribe id');
  const sequence = c.varint('GROUP sequence');
  expectEnd(c, 'GROUP');
  return { subscribe, sequence };
}

/** The first bytes of a group stream: its type and the GROUP header. */
export function encodeMoqGroupStreamStart(m: MoqGroup): Uint8Array {
  return encodeMoqStreamStart(MoqLiteData.GROUP, frameMoqMessage(encodeMoqGroup(m)));
}

/** A frame's size prefix; its payload follows as is. */
export function encodeMoqFrameHeader(size: number): Uint8Array {
  return encodeVarint(size);
}
