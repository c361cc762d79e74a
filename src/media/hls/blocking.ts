/**
 * Blocking playlist reload (8216bis §6.2.5.2): the delivery directives a client puts in a playlist
 * request's query, and whether a playlist in a given state answers them now, later, or never.
 */

/** What a playlist request asks for: a plain reload, or to wait for a segment (and a part of it). */
export type DeliveryDirectives = { readonly msn?: number; readonly part?: number };

/** Query parameters 8216bis reserves (§6.2.5): any `_HLS_` name. */
const RESERVED = /^_HLS_/;
const DECIMAL_INTEGER = /^\d{1,15}$/;

/**
 * The directives of a request's query string (without the `?`), or an error sentence for a 400: a value
 * that is not a decimal-integer, a directive given twice, `_HLS_part` without `_HLS_msn` (§6.2.5.2).
 * `_HLS_skip` is ignored, as a server without CAN-SKIP-UNTIL must (§6.2.5.1); other parameters too.
 */
export function parseDeliveryDirectives(query: string): DeliveryDirectives | { readonly error: string } {
  let msn: number | undefined;
  let part: number | undefined;
  for (const pair of query.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const name = eq < 0 ? pair : pair.slice(0, eq);
    if (!RESERVED.test(name) || name === '_HLS_skip') continue;
    const value = eq < 0 ? '' : pair.slice(eq + 1);
    if (name !== '_HLS_msn' && name !== '_HLS_part') continue;
    if (!DECIMAL_INTEGER.test(value)) return { error: `${name} must be a decimal integer` };
    if ((name === '_HLS_msn' ? msn : part) !== undefined) return { error: `${name} is given twice` };
    if (name === '_HLS_msn') msn = Number(value);
    else part = Number(value);
  }
  if (part !== undefined && msn === undefined) return { error: '_HLS_part needs _HLS_msn (8216bis §6.2.5.2)' };
  return { msn, part };
}

/** A segment of the playlist as blocking reload sees it: its number, whether it is complete, its parts. */
export interface PlaylistSegmentState {
  readonly msn: number;
  readonly complete: boolean;
  readonly parts: number;
}

/**
 * The Advance Part Limit (§6.2.5.2): how many parts past the playlist's last a request may ask for
 * before it is refused: three seconds' worth of parts, or three parts when a part lasts a second or more.
 */
export function advancePartLimit(partTarget: number): number {
  return partTarget < 1 ? Math.floor(3 / partTarget) : 3;
}

/**
 * Whether the playlist, with `segments` (oldest first), satisfies a blocking request now (`ready`), may
 * later (`wait`), or asks too far ahead (`too-far`, answered 400 at once, §6.2.5.2).
 * - `_HLS_msn=M` alone waits for segment M (or a later one) to be complete: listed with its EXTINF.
 * - With `_HLS_part=N` it waits for part N of M or any later part; a part index past the last part of a
 *   complete segment M means part 0 of M+1.
 */
export function blockingReloadState(
  segments: readonly PlaylistSegmentState[],
  d: DeliveryDirectives,
  partTarget: number,
): 'ready' | 'wait' | 'too-far' {
  if (d.msn === undefined) return 'ready';
  const lastComplete = lastOf(segments, (s) => s.complete);
  const lastWithParts = lastOf(segments, (s) => s.parts > 0);
  // The last Media Segment of the playlist is its last complete one (the growing one is only parts so far).
  const lastMsn = lastComplete?.msn ?? (lastWithParts ? lastWithParts.msn - 1 : undefined);
  if (lastMsn === undefined) return 'wait';
  if (d.msn > lastMsn + 2) return 'too-far';
  if (d.part === undefined) return lastComplete !== undefined && lastComplete.msn >= d.msn ? 'ready' : 'wait';

  let msn = d.msn;
  let part = d.part;
  const asked = segments.find((s) => s.msn === msn);
  if (asked?.complete && part >= asked.parts) {
    msn += 1;
    part = 0;
  }
  if (lastWithParts === undefined) return 'wait';
  const last = { msn: lastWithParts.msn, part: lastWithParts.parts - 1 };
  if (msn < last.msn || (msn === last.msn && part <= last.part)) return 'ready';
  // Parts ahead of the last one listed: within the same segment exactly, beyond it at least part + 1.
  const ahead = msn === last.msn ? part - last.part : part + 1;
  return ahead > advancePartLimit(partTarget) ? 'too-far' : 'wait';
}

function lastOf<T>(items: readonly T[], ok: (item: T) => boolean): T | undefined {
  for (let i = items.length - 1; i >= 0; i--) if (ok(items[i]!)) return items[i];
  return undefined;
}
