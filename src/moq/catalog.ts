/**
 * A Warp catalog as the hang catalog `<moq-watch>` reads (`@moq/hang`'s `RootSchema`, the `catalog.json`
 * track): each rendition under `video.renditions` / `audio.renditions` by its track name, with its codec,
 * `container: { kind: "cmaf", init }` (the init segment, base64) and what the decoder is configured from.
 * Isomorphic.
 */
import type { WarpCatalog } from '../warp/catalog.js';
import { toBase64 } from '../wire/index.js';

/** The catalog track's name (`@moq/hang` `TRACK`). */
export const HANG_CATALOG_TRACK = 'catalog.json';

export interface HangCmafContainer {
  kind: 'cmaf';
  init: string;
}

export interface HangVideoRendition {
  codec: string;
  container: HangCmafContainer;
  codedWidth?: number;
  codedHeight?: number;
  bitrate?: number;
  framerate?: number;
  /** The largest wait, ms, before a frame is emitted: one CMAF chunk. */
  jitter?: number;
}

export interface HangAudioRendition {
  codec: string;
  container: HangCmafContainer;
  sampleRate: number;
  numberOfChannels: number;
  bitrate?: number;
  jitter?: number;
}

export interface HangCatalog {
  video?: { renditions: Record<string, HangVideoRendition>; display?: { width: number; height: number } };
  audio?: { renditions: Record<string, HangAudioRendition> };
}

export interface HangCatalogOptions {
  /** Each track's init segment (ftyp+moov). A track without one is left out. */
  init: (trackId: string) => Uint8Array | undefined;
  /** Video frames per second, when known. */
  framerate?: number;
  /** The duration of a CMAF chunk, ms: the jitter a player should allow for. */
  chunkMs?: number;
}

export function hangCatalog(catalog: WarpCatalog, o: HangCatalogOptions): HangCatalog {
  const out: HangCatalog = {};
  let widest: { width: number; height: number } | undefined;
  for (const t of catalog.tracks) {
    const init = o.init(t.id);
    if (!init) continue;
    const container: HangCmafContainer = { kind: 'cmaf', init: toBase64(init) };
    const bitrate = t.bandwidth > 0 ? Math.round(t.bandwidth) : undefined;
    const jitter = o.chunkMs === undefined ? undefined : Math.max(1, Math.ceil(o.chunkMs));
    if (t.kind === 'video') {
      out.video ??= { renditions: {} };
      out.video.renditions[t.id] = {
        codec: t.codec,
        container,
        codedWidth: t.width,
        codedHeight: t.height,
        bitrate,
        framerate: o.framerate,
        jitter,
      };
      if (t.width && t.height && (!widest || t.width > widest.width)) widest = { width: t.width, height: t.height };
    } else {
      if (!t.sampleRate || !t.channels) continue;
      out.audio ??= { renditions: {} };
      out.audio.renditions[t.id] = {
        codec: t.codec,
        container,
        sampleRate: t.sampleRate,
        numberOfChannels: t.channels,
        bitrate,
        jitter,
      };
    }
  }
  if (out.video && widest) out.video.display = widest;
  return out;
}
