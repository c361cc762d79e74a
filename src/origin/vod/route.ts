/**
 * HTTP face of the on-demand library, mounted beside the live origin (OriginOptions.routes):
 *
 *   GET /vod, /vod/playlist.js   the playlist page
 *   GET /vod/items.json          the items: id, title, duration
 *   GET /video/<id>              an item's metadata; over HTTP/2 it pushes the first part of each track
 *   GET /media/<id>/<track>.mp4  a track file (CMAF header + segments), with byte ranges
 */
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseRange } from '../http-range.js';
import type { Request, Response, Route, RouteContext } from '../route.js';
import type { PushResource } from '../push/server-push.js';
import { ITEM_ID } from './catalog.js';
import { VodError, type VodLibrary, type VodPackage } from './library.js';
import { VOD_TRACK_IDS, trackFilePath, type IndexedSegment, type PackagedTrack, type VodTrackId } from './packaging.js';

/** `GET /video/<id>`: what a player needs to fetch and append an item's tracks by byte ranges. */
export interface VodMetadata {
  id: string;
  title: string;
  /** Seconds. */
  duration: number;
  tracks: VodTrackMetadata[];
}

export interface VodTrackMetadata {
  id: VodTrackId;
  kind: 'video' | 'audio';
  /** RFC 6381, for `MediaSource.isTypeSupported` / `addSourceBuffer`. */
  codec: string;
  bandwidth: number;
  width?: number;
  height?: number;
  /** The track file: `/media/<id>/<track>.mp4`. */
  url: string;
  size: number;
  /** The CMAF header at the start of the file. */
  init: { offset: 0; size: number };
  /**
   * The range a player should ask for first: the one the origin pushes (a segment boundary at or past the
   * push size), so that the player's request finds the pushed response in its cache.
   */
  firstRange: { start: 0; end: number };
  segments: IndexedSegment[];
}

export interface VodRouteOptions {
  /** Folder with the built playlist page (playlist.html, playlist.js). */
  webRoot: string;
  /**
   * Bytes read from track files for pushes and not yet handed to the push layer, over all requests (default
   * 64 MiB). Beyond it a metadata request pushes nothing: a push is only a head start, the player fetches
   * anyway.
   */
  maxPushReadBytes?: number;
}

/** The first range when the origin pushes nothing (push off, or HTTP/1.1): the seed's "first 1–2 MB". */
export const DEFAULT_FIRST_RANGE_BYTES = 1 << 20;

/** The metadata names the current package; it changes only when its file does, so caches may keep it briefly. */
const CACHE_METADATA = 'public, max-age=10';
/** A track file's bytes are fixed for its ETag; a changed source gives a new ETag and new bytes. */
const CACHE_MEDIA = 'public, max-age=86400';
const CACHE_NONE = 'no-store';
/** Reads of a track file go out in pieces of this size, with back-pressure: a large file is never held in memory. */
const STREAM_CHUNK_BYTES = 64 * 1024;

/** The playlist page: an allow-list, never a path from the request. */
const PAGE_FILES: Record<string, { file: string; type: string }> = {
  '/vod': { file: 'playlist.html', type: 'text/html; charset=utf-8' },
  '/vod/': { file: 'playlist.html', type: 'text/html; charset=utf-8' },
  '/vod/playlist.js': { file: 'playlist.js', type: 'text/javascript; charset=utf-8' },
  '/vod/playlist.js.map': { file: 'playlist.js.map', type: 'application/json' },
};
const ITEMS_PATH = '/vod/items.json';
const METADATA = /^\/video\/([^/]*)$/;
const MEDIA = /^\/media\/([^/]*)\/([^/]*)$/;

/**
 * The end (inclusive) of the first range of `track` for a push of `bytes`: the first `bytes` bytes rounded
 * up to the end of the segment (or CMAF header) holding the last of them, so that the pushed range ends on a
 * boundary a player's segment-aligned requests also end on. The whole file if it is smaller.
 */
export function firstRangeEnd(track: Pick<PackagedTrack, 'size' | 'initSize' | 'segments'>, bytes: number): number {
  if (bytes >= track.size) return track.size - 1;
  if (bytes <= track.initSize) return track.initSize - 1;
  const holder = track.segments.find((s) => s.offset + s.size >= bytes);
  return holder ? holder.offset + holder.size - 1 : track.size - 1;
}

/** The on-demand routes for `library`, to put into `OriginOptions.routes`. */
export function vodRoute(library: VodLibrary, o: VodRouteOptions): Route {
  const routes = new VodRoutes(library, o);
  return (req, res, ctx) => routes.handle(req, res, ctx);
}

class VodRoutes {
  /** Bytes read for pushes and still held here; bounded by maxPushReadBytes. */
  private pushReadBytes = 0;
  private readonly maxPushReadBytes: number;

  constructor(
    private readonly library: VodLibrary,
    private readonly o: VodRouteOptions,
  ) {
    this.maxPushReadBytes = o.maxPushReadBytes ?? 64 << 20;
  }

  /** Answers a request of its own and returns its metrics label; false for anyone else's. */
  handle(req: Request, res: Response, ctx: RouteContext): string | false {
    const [path = '/'] = (req.url ?? '/').split('?');
    const metadata = METADATA.exec(path);
    const media = MEDIA.exec(path);
    const page = PAGE_FILES[path];
    if (!metadata && !media && !page && path !== ITEMS_PATH && !path.startsWith('/vod/')) return false;
    if (req.method === 'OPTIONS') return false; // the origin answers CORS preflights
    const route = metadata ? 'vod-metadata' : media ? 'vod-media' : 'vod-page';
    const fail = (status: number, message: string, headers: Record<string, string> = {}) =>
      ctx.send(
        res,
        status,
        'text/plain; charset=utf-8',
        `${message}\n`,
        { 'Cache-Control': CACHE_NONE, ...headers },
        req,
        route,
      );
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      fail(405, 'method not allowed', { Allow: 'GET, HEAD, OPTIONS' });
      return route;
    }
    const answer = async (): Promise<void> => {
      if (metadata) return this.serveMetadata(req, res, ctx, metadata[1]!);
      if (media) return this.serveMedia(req, res, ctx, media[1]!, media[2]!);
      if (path === ITEMS_PATH) return this.serveItems(req, res, ctx);
      if (page) return this.servePage(req, res, ctx, page);
      fail(404, 'not found');
    };
    answer().catch((err: unknown) => {
      if (res.headersSent || res.destroyed) return void res.destroy();
      if (err instanceof VodError) {
        return fail(err.status, err.message, err.retryAfter ? { 'Retry-After': String(err.retryAfter) } : {});
      }
      console.error('pushcast vod: request failed:', err);
      fail(500, 'internal error');
    });
    return route;
  }

  /** Only ids of the catalog get past here: anything else, traversal attempts included, is 404. */
  private async packageFor(id: string, fresh: boolean): Promise<VodPackage> {
    if (!ITEM_ID.test(id) || !this.library.item(id)) throw new VodError(404, 'no such item');
    return (!fresh && this.library.ready(id)) || (await this.library.package(id));
  }

  private async serveMetadata(req: Request, res: Response, ctx: RouteContext, id: string): Promise<void> {
    const pkg = await this.packageFor(id, true);
    const partialBytes = ctx.push.policy.partialBytes;
    const metadata = metadataOf(pkg, partialBytes > 0 ? partialBytes : DEFAULT_FIRST_RANGE_BYTES);
    // The PUSH_PROMISEs must go out before the response that names the promised URLs (RFC 9113 §8.4).
    if (req.method === 'GET' && partialBytes > 0 && ctx.push.canPush(req))
      await this.pushFirstParts(req, ctx, pkg, metadata);
    if (res.destroyed) return;
    ctx.send(
      res,
      200,
      'application/json',
      JSON.stringify(metadata),
      { 'Cache-Control': CACHE_METADATA },
      req,
      'vod-metadata',
    );
  }

  /**
   * HTTP/2 server push (RFC 9113 §8.4) of each track's first range as a 206. The promised request carries the
   * same `range` header the player will send, so that the push is stored under the key (URL + Range) of the
   * request that will use it; the response is exactly what that request gets from `serveMedia`.
   */
  private async pushFirstParts(req: Request, ctx: RouteContext, pkg: VodPackage, metadata: VodMetadata): Promise<void> {
    const tracks = pkg.index.tracks.filter((t) => {
      const length = metadata.tracks.find((m) => m.id === t.id)!.firstRange.end + 1;
      return length <= ctx.push.policy.maxBytesInFlight;
    });
    const reads = tracks.map(async (track) => {
      const end = metadata.tracks.find((m) => m.id === track.id)!.firstRange.end;
      if (this.pushReadBytes + end + 1 > this.maxPushReadBytes) return undefined;
      this.pushReadBytes += end + 1;
      try {
        return { track, end, body: await readBytes(trackFilePath(pkg.dir, track.id), end + 1) };
      } catch {
        return undefined; // a push is a head start; without it the player simply asks
      } finally {
        this.pushReadBytes -= end + 1;
      }
    });
    for (const part of await Promise.all(reads)) {
      if (!part || part.body.byteLength !== part.end + 1) continue;
      const { track, end, body } = part;
      const resource: PushResource = {
        path: mediaUrl(pkg, track.id),
        requestHeaders: { range: `bytes=0-${end}` },
        status: 206,
        headers: {
          ...ctx.headers(),
          ...mediaHeaders(pkg, track),
          'Content-Length': String(end + 1),
          'Content-Range': `bytes 0-${end}/${track.size}`,
        },
        body,
      };
      ctx.push.push(req, resource, 'vod');
    }
  }

  /**
   * A track file: ETag / If-None-Match (RFC 9110 §13.1.2), If-Range (§13.1.5) and one byte range (§14.2),
   * answered 206 with Content-Range (§14.4) or 416 (§15.5.17), the body streamed from the file.
   */
  private async serveMedia(req: Request, res: Response, ctx: RouteContext, id: string, file: string): Promise<void> {
    const trackId = VOD_TRACK_IDS.find((t) => file === `${t}.mp4`);
    if (!trackId) throw new VodError(404, 'no such track');
    const pkg = await this.packageFor(id, false);
    const track = pkg.index.tracks.find((t) => t.id === trackId);
    if (!track) throw new VodError(404, 'no such track');
    const headers = mediaHeaders(pkg, track);
    const etag = headers.ETag;

    const inm = req.headers['if-none-match'];
    if (typeof inm === 'string' && inm.split(',').some((t) => t.trim() === etag || t.trim() === '*')) {
      res.writeHead(304, { ...ctx.headers(), ETag: etag, 'Cache-Control': CACHE_MEDIA });
      res.end();
      return;
    }
    // If-Range with anything but the current ETag (an old ETag, a date): the whole file, never a mixed one.
    const ifRange = req.headers['if-range'];
    const rangeHeader =
      typeof ifRange === 'string' && ifRange !== etag ? undefined : (req.headers.range as string | undefined);
    const range = parseRange(rangeHeader, track.size);
    if (range === 'unsatisfiable') {
      // Not cacheable: a repackaged file of another size would make the same range satisfiable.
      return ctx.send(
        res,
        416,
        'text/plain',
        '',
        { ETag: etag, 'Accept-Ranges': 'bytes', 'Cache-Control': CACHE_NONE, 'Content-Range': `bytes */${track.size}` },
        req,
        'vod-media',
      );
    }
    const { start, end } = range ?? { start: 0, end: track.size - 1 };
    const status = range ? 206 : 200;
    const responseHeaders = {
      ...ctx.headers(),
      ...headers,
      'Content-Length': String(end - start + 1),
      ...(range ? { 'Content-Range': `bytes ${start}-${end}/${track.size}` } : {}),
    };
    if (req.method === 'HEAD') {
      res.writeHead(status, responseHeaders);
      res.end();
      return;
    }
    const handle = await open(trackFilePath(pkg.dir, track.id), 'r');
    // Between `ready()` and here the item may have been repackaged: never answer with other bytes under this ETag.
    if ((await handle.stat()).ino !== pkg.inodes[track.id]) {
      await handle.close();
      throw new VodError(503, 'this item is being repackaged', 1);
    }
    if (res.destroyed) return void (await handle.close());
    const body = handle.createReadStream({ start, end, highWaterMark: STREAM_CHUNK_BYTES });
    res.writeHead(status, responseHeaders);
    body.on('error', () => res.destroy());
    res.on('close', () => body.destroy()); // client gone: stop reading (autoClose closes the file)
    body.pipe(res as NodeJS.WritableStream);
  }

  private async serveItems(req: Request, res: Response, ctx: RouteContext): Promise<void> {
    const items = this.library.items.map((item) => ({
      id: item.id,
      title: item.title,
      duration: this.library.ready(item.id)?.index.duration ?? item.duration,
    }));
    ctx.send(res, 200, 'application/json', JSON.stringify({ items }), { 'Cache-Control': 'no-cache' }, req, 'vod-page');
  }

  private async servePage(
    req: Request,
    res: Response,
    ctx: RouteContext,
    f: { file: string; type: string },
  ): Promise<void> {
    let bytes: Buffer;
    try {
      bytes = await readFile(join(this.o.webRoot, f.file));
    } catch {
      return ctx.send(
        res,
        404,
        'text/plain',
        'playlist page not built (npm run build)\n',
        { 'Cache-Control': CACHE_NONE },
        req,
        'vod-page',
      );
    }
    ctx.send(res, 200, f.type, bytes, { 'Cache-Control': 'no-cache' }, req, 'vod-page');
  }
}

function mediaUrl(pkg: VodPackage, track: VodTrackId): string {
  return `/media/${pkg.item.id}/${track}.mp4`;
}

/** Headers of a track file response, requested or pushed alike. */
function mediaHeaders(pkg: VodPackage, track: PackagedTrack): Record<string, string> & { ETag: string } {
  return {
    'Content-Type': track.kind === 'audio' ? 'audio/mp4' : 'video/mp4',
    ETag: `"${pkg.tag}-${track.id}"`,
    'Cache-Control': CACHE_MEDIA,
    'Accept-Ranges': 'bytes',
  };
}

function metadataOf(pkg: VodPackage, firstBytes: number): VodMetadata {
  return {
    id: pkg.item.id,
    title: pkg.item.title,
    duration: pkg.index.duration,
    tracks: pkg.index.tracks.map((t) => ({
      id: t.id,
      kind: t.kind,
      codec: t.codec,
      bandwidth: t.bandwidth,
      ...(t.width ? { width: t.width, height: t.height } : {}),
      url: mediaUrl(pkg, t.id),
      size: t.size,
      init: { offset: 0, size: t.initSize },
      firstRange: { start: 0, end: firstRangeEnd(t, firstBytes) },
      segments: t.segments,
    })),
  };
}

/** The first `length` bytes of a file. */
async function readBytes(path: string, length: number): Promise<Uint8Array> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(length);
    let filled = 0;
    while (filled < length) {
      const { bytesRead } = await handle.read(buffer, filled, length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return buffer.subarray(0, filled);
  } finally {
    await handle.close();
  }
}
