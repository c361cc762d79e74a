import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { parseRange } from './http-range.js';
import type { Request, Response } from './route.js';

/** Segments are immutable: a number names one segment forever (see LiveTimeline), so caches may keep them. */
export const CACHE_SEGMENT = 'public, max-age=31536000, immutable';
/** The MPD of an @duration template changes only when the presentation is restarted; a CDN may coalesce for a second. */
export const CACHE_MPD = 'public, max-age=1';
export const CACHE_INIT = 'public, max-age=60';
/** A segment that does not exist yet must not be remembered as missing by any cache. */
export const CACHE_NONE = 'no-store';
/** Representation digests kept, by ETag: the live window's segments and init segments, and some more. */
export const MAX_DIGESTS = 1024;

/**
 * How the origin answers: the headers every response carries, whole bodies and written chunks
 * counted by route, CORS preflight, and complete representations with validators and ranges.
 */
export class OriginResponses {
  private readonly bytes = new Map<string, number>();
  /** `Repr-Digest` values by ETag (an ETag names one representation), oldest first. */
  private readonly digests = new Map<string, string>();

  /** `Repr-Digest` values kept (at most MAX_DIGESTS). */
  get digestsKept(): number {
    return this.digests.size;
  }

  /** Body bytes written, by route (routes are the origin's own labels). */
  bytesByRoute(): Record<string, number> {
    return Object.fromEntries(this.bytes);
  }

  private countBytes(route: string, n: number): void {
    this.bytes.set(route, (this.bytes.get(route) ?? 0) + n);
  }

  /** Headers every origin response carries (CORS, Timing-Allow-Origin). */
  headers(): Record<string, string> {
    return {
      'Access-Control-Allow-Origin': '*',
      'Access-Control-Expose-Headers': 'Content-Length, Content-Range, ETag, Date, Age, Alt-Svc, Repr-Digest',
      'Timing-Allow-Origin': '*',
    };
  }

  /** A whole response; HEAD and 304 without the body. */
  send(
    res: Response,
    status: number,
    type: string,
    body: string | Uint8Array,
    headers: Record<string, string>,
    req: Request,
    route: string,
  ): void {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    res.writeHead(status, {
      ...this.headers(),
      'Content-Type': type,
      'Content-Length': String(bytes.byteLength),
      ...headers,
    });
    if (req.method === 'HEAD' || status === 304) {
      res.end();
      return;
    }
    res.end(bytes);
    this.countBytes(route, bytes.byteLength);
  }

  /** A part of a response being streamed (a chunk of a growing segment, a line of a log). */
  write(res: Response, bytes: Uint8Array, route = 'segment'): void {
    (res as ServerResponse).write(bytes);
    this.countBytes(route, bytes.byteLength);
  }

  preflight(res: Response): void {
    res.writeHead(204, {
      ...this.headers(),
      'Access-Control-Allow-Methods': 'GET, HEAD, OPTIONS',
      'Access-Control-Allow-Headers': 'Range, If-None-Match, If-Range, If-Modified-Since, Cache-Control',
      'Access-Control-Max-Age': '86400',
    });
    res.end();
  }

  /**
   * `Repr-Digest` (RFC 9530 §3): the SHA-256 of the whole representation, a Structured Field Dictionary
   * with a Byte Sequence (`sha-256=:<base64>:`). The same for a 206 as for the 200, so that a client that
   * splices ranges into what it has (a multicast receiver repairing a push) can check the result.
   */
  private reprDigest(etag: string, bytes: Uint8Array): string {
    let value = this.digests.get(etag);
    if (value === undefined) {
      value = `sha-256=:${createHash('sha256').update(bytes).digest('base64')}:`;
      this.digests.set(etag, value);
      if (this.digests.size > MAX_DIGESTS) this.digests.delete(this.digests.keys().next().value!);
    }
    return value;
  }

  /** Complete bytes with ETag / If-None-Match (RFC 9110 §13.1.2), If-Range (§13.1.5) and single ranges (§14). */
  serveBytes(
    req: Request,
    res: Response,
    bytes: Uint8Array,
    type: string,
    etag: string,
    cacheControl: string,
    route: string,
  ): void {
    const headers: Record<string, string> = {
      ETag: etag,
      'Cache-Control': cacheControl,
      'Accept-Ranges': 'bytes',
      'Repr-Digest': this.reprDigest(etag, bytes),
    };
    const inm = req.headers['if-none-match'];
    if (typeof inm === 'string' && inm.split(',').some((t) => t.trim() === etag || t.trim() === '*')) {
      res.writeHead(304, { ...this.headers(), ...headers });
      res.end();
      return;
    }
    const ifRange = req.headers['if-range'];
    const rangeHeader =
      typeof ifRange === 'string' && ifRange !== etag ? undefined : (req.headers.range as string | undefined);
    const range = parseRange(rangeHeader, bytes.byteLength);
    if (range === 'unsatisfiable') {
      return this.send(
        res,
        416,
        'text/plain',
        '',
        { ...headers, 'Content-Range': `bytes */${bytes.byteLength}` },
        req,
        route,
      );
    }
    if (range) {
      const part = bytes.subarray(range.start, range.end + 1);
      return this.send(
        res,
        206,
        type,
        part,
        { ...headers, 'Content-Range': `bytes ${range.start}-${range.end}/${bytes.byteLength}` },
        req,
        route,
      );
    }
    this.send(res, 200, type, bytes, headers, req, route);
  }
}
