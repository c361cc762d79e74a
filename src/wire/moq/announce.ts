/**
 * moq-lite-02's announce stream (docs/moq.md): the subscriber asks for the broadcasts under a prefix,
 * the publisher answers with those active now, then each change.
 *
 *   ANNOUNCE_PLEASE { Prefix (s) }
 *   ANNOUNCE_INIT   { Count (i), Suffix (s)… }
 *   ANNOUNCE        { Status (8): 0 ended, 1 active, Suffix (s) }
 *   moq-lite-03: no ANNOUNCE_INIT (what is active now comes as ANNOUNCEs), and ANNOUNCE ends with the
 *   relay hops it took: { Status (8), Suffix (s), Hops (i) }.
 *
 * (s) is `Length (i)` + UTF-8. Payloads only; each travels with its size prefix (message.ts).
 * Pure, isomorphic; decoders throw only WireError.
 */
import { Cursor, concatBytes } from '../bytes.js';
import { WireError } from '../errors.js';
import { encodeVarint } from '../varint.js';
import { expectEnd, type MoqLiteDraft, readMoqString, writeMoqString } from './message.js';

/** Broadcasts one ANNOUNCE_INIT may list. */
export const MAX_MOQ_ANNOUNCE_INIT = 1024;

export interface MoqAnnounce {
  active: boolean;
  suffix: string;
  /** moq-lite-03: relays it passed. */
  hops?: number;
}

/** Hops an ANNOUNCE may count (moq-net's bound). */
export const MAX_MOQ_HOPS = 32;

export function encodeMoqAnnouncePlease(prefix: string): Uint8Array {
  const parts: Uint8Array[] = [];
  writeMoqString(parts, prefix);
  return concatBytes(parts);
}

export function decodeMoqAnnouncePlease(payload: Uint8Array): { prefix: string } {
  const c = new Cursor(payload);
  const prefix = readMoqString(c, 'ANNOUNCE_PLEASE prefix');
  expectEnd(c, 'ANNOUNCE_PLEASE');
  return { prefix };
}

export function encodeMoqAnnounceInit(suffixes: readonly string[]): Uint8Array {
  if (suffixes.length > MAX_MOQ_ANNOUNCE_INIT)
    throw new WireError('invalid-argument', 0, `${suffixes.length} broadcasts in one ANNOUNCE_INIT`);
  const parts = [encodeVarint(suffixes.length)];
  for (const s of suffixes) writeMoqString(parts, s);
  return concatBytes(parts);
}

export function decodeMoqAnnounceInit(payload: Uint8Array): string[] {
  const c = new Cursor(payload);
  const count = c.varint('ANNOUNCE_INIT count');
  if (count > MAX_MOQ_ANNOUNCE_INIT)
    throw new WireError('frame-encoding', c.pos, `${count} broadcasts (at most ${MAX_MOQ_ANNOUNCE_INIT})`);
  const suffixes = Array.from({ length: count }, () => readMoqString(c, 'ANNOUNCE_INIT suffix'));
  expectEnd(c, 'ANNOUNCE_INIT');
  return suffixes;
}

export function encodeMoqAnnounce(m: MoqAnnounce, draft: MoqLiteDraft = 2): Uint8Array {
  const parts: Uint8Array[] = [Uint8Array.of(m.active ? 1 : 0)];
  writeMoqString(parts, m.suffix);
  if (draft >= 3) {
    const hops = m.hops ?? 0;
    if (!Number.isInteger(hops) || hops < 0 || hops > MAX_MOQ_HOPS)
      throw new WireError('invalid-argument', 0, `${hops} hops (at most ${MAX_MOQ_HOPS})`);
    parts.push(encodeVarint(hops));
  }
  return concatBytes(parts);
}

export function decodeMoqAnnounce(payload: Uint8Array, draft: MoqLiteDraft = 2): MoqAnnounce {
  const c = new Cursor(payload);
  const status = c.u8('ANNOUNCE status');
  if (status > 1) throw new WireError('frame-encoding', 0, `ANNOUNCE status ${status}`);
  const suffix = readMoqString(c, 'ANNOUNCE suffix');
  let hops: number | undefined;
  if (draft >= 3) {
    hops = c.varint('ANNOUNCE hops');
    if (hops > MAX_MOQ_HOPS) throw new WireError('frame-encoding', c.pos, `${hops} hops (at most ${MAX_MOQ_HOPS})`);
  }
  expectEnd(c, 'ANNOUNCE');
  return hops === undefined ? { active: status === 1, suffix } : { active: status === 1, suffix, hops };
}
