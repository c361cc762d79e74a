/**
 * The URL space of a pushcast origin: one place that names every resource, shared by the origin that
 * serves them, every delivery mode that carries them (HTTP/2 push, multicast push, Warp) and the clients
 * and pages that ask for them. Isomorphic: plain strings, no URL parsing beyond paths.
 *
 * Media resources live under `/live/`: the MPD, and per track (a DASH Representation) its init segment and
 * its numbered media segments. Numbers count from the Unix epoch in segment durations, so a path names one
 * segment forever.
 */

/** Where the live presentation's resources live; the MPD's BaseURL is this folder. */
export const LIVE_PREFIX = '/live/';
/** The live MPD. */
export const MANIFEST_PATH = '/live/manifest.mpd';
/**
 * The LL-HLS multivariant playlist (RFC 8216 §4.3.4) beside the MPD. Its media playlists are
 * `/live/<track>/index.m3u8` ({@link mediaPlaylistPath}); their segments are the DASH segments and their
 * partial segments the CMAF chunks of those segments ({@link partPath}).
 */
export const HLS_MULTIVARIANT_PATH = '/live/master.m3u8';
/** The delivery description beside the MPD: the modes a player may use (src/media/live/delivery.ts). */
export const DELIVERY_PATH = '/live/delivery.json';
/** The origin's clock for the MPD's UTCTiming (ISO 8601, `urn:mpeg:dash:utc:http-iso:2014`). */
export const TIME_PATH = '/time';
/** Prometheus metrics of a server. */
export const METRICS_PATH = '/metrics';
/** The HTTP/3 port and certificate hashes a page needs to open a WebTransport session (JSON). */
export const WEBTRANSPORT_INFO_PATH = '/.well-known/pushcast/webtransport.json';
/** The public keys that sign multicast pushes (JSON key set). */
export const MULTICAST_KEYS_PATH = '/.well-known/pushcast/multicast-keys.json';
/**
 * The multicast Service Worker, served with `Service-Worker-Allowed: /` so that a page may register it
 * for the whole origin; it acts only on requests marked for multicast ({@link MULTICAST_DELIVERY_PARAM}).
 */
export const PLAYER_SW_PATH = '/player/sw.js';

/**
 * The query parameter, and its value, that mark a request for multicast delivery: the multicast Service
 * Worker answers only marked requests (an MPD, and the init and media segments its rewritten template
 * names), so a player in the same page that asks without the marker goes straight to the network. The
 * origin ignores the query; the Service Worker drops the marker before anything reaches the network.
 */
export const MULTICAST_DELIVERY_PARAM = 'delivery';
export const MULTICAST_DELIVERY_VALUE = 'multicast';
const MULTICAST_MARKER = `${MULTICAST_DELIVERY_PARAM}=${MULTICAST_DELIVERY_VALUE}`;

/** A URL (absolute or relative) cut into what comes before its query, its query pairs, and its fragment. */
function splitQuery(url: string): { head: string; pairs: string[]; fragment: string } {
  const hash = url.indexOf('#');
  const fragment = hash < 0 ? '' : url.slice(hash);
  const rest = hash < 0 ? url : url.slice(0, hash);
  const q = rest.indexOf('?');
  if (q < 0) return { head: rest, pairs: [], fragment };
  return {
    head: rest.slice(0, q),
    pairs: rest
      .slice(q + 1)
      .split('&')
      .filter(Boolean),
    fragment,
  };
}

function joinQuery(head: string, pairs: string[], fragment: string): string {
  return `${head}${pairs.length > 0 ? `?${pairs.join('&')}` : ''}${fragment}`;
}

/** Whether `url`'s query carries the multicast marker. */
export function isMulticastMarked(url: string): boolean {
  return splitQuery(url).pairs.includes(MULTICAST_MARKER);
}

/** `url` with the multicast marker added to its query (once; other parameters and the fragment kept). */
export function markMulticast(url: string): string {
  const { head, pairs, fragment } = splitQuery(url);
  return pairs.includes(MULTICAST_MARKER) ? url : joinQuery(head, [...pairs, MULTICAST_MARKER], fragment);
}

/** `url` without the multicast marker (other parameters and the fragment kept); unmarked URLs unchanged. */
export function unmarkMulticast(url: string): string {
  const { head, pairs, fragment } = splitQuery(url);
  return pairs.includes(MULTICAST_MARKER)
    ? joinQuery(
        head,
        pairs.filter((p) => p !== MULTICAST_MARKER),
        fragment,
      )
    : url;
}

/** Track ids are URL path segments: letters, digits, `_` and `-`, at most 64. */
export const TRACK_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** The MPD's SegmentTemplate, relative to {@link LIVE_PREFIX} (ISO/IEC 23009-1 §5.3.9.4.4). */
export const SEGMENT_TEMPLATE = {
  initialization: '$RepresentationID$/init.mp4',
  media: '$RepresentationID$/$Number$.m4s',
} as const;

/** `/live/<track>/init.mp4` */
export function initPath(trackId: string): string {
  return `${LIVE_PREFIX}${trackId}/init.mp4`;
}

/** `/live/<track>/<number>.m4s` */
export function segmentPath(trackId: string, number: number): string {
  return `${LIVE_PREFIX}${trackId}/${number}.m4s`;
}

/** `/live/<track>/index.m3u8`: the LL-HLS media playlist of a track. */
export function mediaPlaylistPath(trackId: string): string {
  return `${LIVE_PREFIX}${trackId}/index.m3u8`;
}

/**
 * `/live/<track>/<number>.<part>.m4s`: chunk `part` (from 0) of segment `number`, an LL-HLS partial
 * segment. Its bytes are the segment's bytes of that chunk, so the parts of a segment end to end are the
 * segment; a part has its own URL (not a byte range of the segment) so that caches key it by URL alone.
 */
export function partPath(trackId: string, number: number, part: number): string {
  return `${LIVE_PREFIX}${trackId}/${number}.${part}.m4s`;
}

/** `/live/<track>/push`: the HTTP/2 live push channel of a track. */
export function pushChannelPath(trackId: string): string {
  return `${LIVE_PREFIX}${trackId}/push`;
}

/** A live media resource named by its path. */
export type LiveResource =
  | { readonly kind: 'init'; readonly trackId: string }
  | { readonly kind: 'segment'; readonly trackId: string; readonly number: number };

const LIVE_RESOURCE = /^\/live\/([A-Za-z0-9_-]{1,64})\/(?:init\.mp4|(\d{1,15})\.m4s)$/;

/**
 * The init or media segment a path names (`/live/<track>/init.mp4`, `/live/<track>/<n>.m4s`), or
 * undefined for any other path. `pathname` is a URL's path without its query.
 */
export function parseLivePath(pathname: string): LiveResource | undefined {
  const m = LIVE_RESOURCE.exec(pathname);
  if (!m) return undefined;
  const [, trackId, number] = m as unknown as [string, string, string | undefined];
  return number === undefined ? { kind: 'init', trackId } : { kind: 'segment', trackId, number: Number(number) };
}

/** The segment number at the end of a resource path or URL (`…/<n>.m4s`, a query allowed), if it names one. */
export function segmentNumberOf(pathOrUrl: string): number | undefined {
  const m = /\/(\d{1,15})\.m4s(?:$|\?)/.exec(pathOrUrl);
  return m ? Number(m[1]) : undefined;
}

/** An LL-HLS resource named by its path: the multivariant playlist, a media playlist, a partial segment. */
export type HlsResource =
  | { readonly kind: 'multivariant' }
  | { readonly kind: 'playlist'; readonly trackId: string }
  | { readonly kind: 'part'; readonly trackId: string; readonly number: number; readonly part: number };

const HLS_RESOURCE = /^\/live\/([A-Za-z0-9_-]{1,64})\/(?:index\.m3u8|(\d{1,15})\.(\d{1,6})\.m4s)$/;

/**
 * The LL-HLS resource a path names, or undefined for any other path (segments and init segments are
 * the DASH ones: {@link parseLivePath}). `pathname` is a URL's path without its query.
 */
export function parseHlsPath(pathname: string): HlsResource | undefined {
  if (pathname === HLS_MULTIVARIANT_PATH) return { kind: 'multivariant' };
  const m = HLS_RESOURCE.exec(pathname);
  if (!m) return undefined;
  const [, trackId, number, part] = m as unknown as [string, string, string | undefined, string | undefined];
  return number === undefined
    ? { kind: 'playlist', trackId }
    : { kind: 'part', trackId, number: Number(number), part: Number(part) };
}
