/**
 * The catalog of a Warp broadcast: what a player needs before the first segment (tracks, codecs, the
 * wall-clock mapping). pushcast sends it as the APP message (draft-lcurley-warp-00 §5.3) of the first
 * stream of a session, HEADERS id 0 and order below everything; the draft leaves such metadata to APP.
 * Isomorphic.
 */
export interface WarpCatalogTrack {
  id: string;
  kind: 'video' | 'audio';
  /** RFC 6381 codec string, for MediaSource.isTypeSupported and addSourceBuffer. */
  codec: string;
  timescale: number;
  bandwidth: number;
  width?: number;
  height?: number;
  sampleRate?: number;
  channels?: number;
  /** Warp ID of the track's init segment, which its media segments depend on. */
  initId: number;
}

export interface WarpCatalog {
  version: 1;
  broadcast: string;
  /** Wall-clock time (ms since the epoch) of media time 0: latency = now − (this + PTS). */
  availabilityStartTime: number;
  /** Nominal segment (GoP) duration, seconds. */
  segmentDuration: number;
  orderPolicy: string;
  tracks: WarpCatalogTrack[];
}

/** Warp ID of the catalog stream. */
export const CATALOG_ID = 0;

export function parseCatalog(bytes: Uint8Array): WarpCatalog {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    throw new Error(`Warp catalog is not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  const c = value as WarpCatalog;
  if (c?.version !== 1 || typeof c.availabilityStartTime !== 'number' || !Array.isArray(c.tracks))
    throw new Error('Warp catalog: not version 1, or no tracks / availabilityStartTime');
  for (const t of c.tracks) {
    if (
      typeof t?.id !== 'string' ||
      (t.kind !== 'video' && t.kind !== 'audio') ||
      typeof t.codec !== 'string' ||
      typeof t.initId !== 'number' ||
      typeof t.timescale !== 'number'
    ) {
      throw new Error(`Warp catalog: malformed track ${JSON.stringify(t)?.slice(0, 200)}`);
    }
  }
  return c;
}
