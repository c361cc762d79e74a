import { randomBytes, createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import http2, { type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { H3_ALPN, type Http3ServerRequest, type Http3ServerResponse } from '../http3/index.js';
import { buildLiveMpd, type LiveTimeline, type LiveTrack, type LiveWindow, type Segment } from '../media/index.js';
import { QuicEndpoint } from '../quic/index.js';
import { SessionRouter, serveHttp3Sessions } from '../webtransport/index.js';
import { certificateHashes, type Certificate } from './dev-certificate.js';
import { parseRange } from './http-range.js';
import type { OriginMetrics } from './metrics.js';
import { ServerPush, type GrowingBody, type PushPolicy, type PushResource } from './push/server-push.js';

export type Request = IncomingMessage | Http2ServerRequest;
export type Response = ServerResponse | Http2ServerResponse;

/** What the origin offers to routes mounted beside its own (e.g. on-demand items). */
export interface RouteContext {
  push: ServerPush;
  /** Headers every origin response carries (CORS, Timing-Allow-Origin), for responses a route writes itself. */
  headers(): Record<string, string>;
  /** Answers with headers common to every response (CORS) and counts the bytes. */
  send(
    res: Response,
    status: number,
    type: string,
    body: string | Uint8Array,
    headers: Record<string, string>,
    req: Request,
    route: string,
  ): void;
}

/** An extra route: answers a request of its own and returns its label for metrics, or false when it is not its own. */
export type Route = (req: Request, res: Response, ctx: RouteContext) => string | false;

export interface OriginOptions {
  window: LiveWindow;
  timeline: LiveTimeline;
  metrics: OriginMetrics;
  /** Folder with the built player page (index.html, player.js). */
  webRoot: string;
  lowLatency: boolean;
  /** CMAF chunk duration, seconds. */
  chunkDuration: number;
  /** Latency the player should hold, seconds (ServiceDescription, suggestedPresentationDelay). */
  targetLatency: number;
  minimumUpdatePeriod?: number;
  frameRate?: number;
  /** Responses that may wait for or stream an in-progress segment at once; more get 503. */
  maxHeldRequests?: number;
  /** Host used in absolute URLs when a request's Host header is missing or unusable. */
  defaultHost?: string;
  /**
   * The origin's public base URL (e.g. https://cdn.example.com) for absolute URLs in the MPD. Without it
   * they follow the request's Host and scheme, which is wrong behind a TLS-terminating cache and makes the
   * MPD vary by Host.
   */
  publicUrl?: string;
  /** HTTP/2 server push; absent = no push. */
  push?: PushPolicy;
  /** Send 103 Early Hints (RFC 8297) with the MPD, init and newest segments on player-page and MPD requests over HTTP/2. */
  earlyHints?: boolean;
  /** Routes tried before the origin's own. */
  routes?: Route[];
  /**
   * An `Alt-Svc` value (RFC 7838) for the init and media segment responses of a track, e.g. the
   * track's multicast session (WHP 336 §4); undefined for none.
   */
  altSvc?: (trackId: string) => string | undefined;
  /**
   * HTTP/1.1 upgrade requests (RFC 9110 §7.8), e.g. the multicast gateway's WebSockets: true when
   * handled; anything not handled is answered 404 and closed.
   */
  upgrade?: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => boolean;
  /** WebTransport sessions on the HTTP/3 port, by path (e.g. Warp); none without. */
  webTransport?: SessionRouter;
}

export interface ListenOptions {
  host?: string;
  /** Cleartext HTTP/1.1; 0 picks a free port; null disables. */
  port: number | null;
  /** HTTPS with HTTP/2 and HTTP/1.1 (ALPN); 0 picks a free port; null disables. */
  tlsPort: number | null;
  certificate?: Certificate;
  /** Connections open at once per port; more are closed as they arrive (node's server.maxConnections). */
  maxConnections?: number;
  /**
   * HTTP/3 (RFC 9114) on the UDP port with the HTTPS port's number, advertised on every HTTPS response
   * with `Alt-Svc: h3=":<port>"` (RFC 7838), with WebTransport sessions when the origin has a router.
   */
  http3?: boolean;
}

export interface OriginAddresses {
  http?: string;
  https?: string;
  /** The HTTP/3 endpoint (same URL as https, over UDP). */
  http3?: string;
}

const MEDIA_SEGMENT = /^\/live\/([A-Za-z0-9_-]{1,64})\/(\d{1,15})\.m4s$/;
const PUSH_CHANNEL = /^\/live\/([A-Za-z0-9_-]{1,64})\/push$/;
const INIT_SEGMENT = /^\/live\/([A-Za-z0-9_-]{1,64})\/init\.mp4$/;
const MANIFEST_PATH = '/live/manifest.mpd';
/** Where a page learns how to open WebTransport to this origin (the certificate hashes it may trust). */
export const WEBTRANSPORT_INFO_PATH = '/.well-known/pushcast/webtransport.json';

/** Static files of the player page: an allow-list, never a path taken from the request. */
const WEB_FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/index.html': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/player.js': { file: 'player.js', type: 'text/javascript; charset=utf-8' },
  '/player.css': { file: 'player.css', type: 'text/css; charset=utf-8' },
  // The multicast player: the same page under /multicast/, controlled by the Service Worker beside it.
  '/multicast/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/multicast/sw.js': { file: 'sw.js', type: 'text/javascript; charset=utf-8' },
  // The Warp player page (src/web/warp): MSE fed by a Warp session over WebTransport or its WebSocket fallback.
  '/warp/': { file: 'warp.html', type: 'text/html; charset=utf-8' },
  '/warp/player.js': { file: 'warp-player.js', type: 'text/javascript; charset=utf-8' },
};

/** Segments are immutable: a number names one segment forever (see LiveTimeline), so caches may keep them. */
const CACHE_SEGMENT = 'public, max-age=31536000, immutable';
/** The MPD of an @duration template changes only when the presentation is restarted; a CDN may coalesce for a second. */
const CACHE_MPD = 'public, max-age=1';
const CACHE_INIT = 'public, max-age=60';
/** A segment that does not exist yet must not be remembered as missing by any cache. */
const CACHE_NONE = 'no-store';

/**
 * The live DASH origin (ISO/IEC 23009-1): the MPD, init and media segments of the live window, the
 * player page, the clock for UTCTiming and metrics, over HTTP/1.1 and HTTP/2.
 */
export class Origin {
  private readonly instance = randomBytes(4).toString('hex');
  private readonly servers: (http.Server | http2.Http2SecureServer)[] = [];
  private readonly sessions = new Set<Http2Session>();
  private readonly sockets = new Set<Socket>();
  private readonly heldResponses = new Set<Response>();
  private quic: QuicEndpoint | undefined;
  private webTransportInfo: string | undefined;
  /** `Alt-Svc` for HTTP/3 on HTTPS responses (RFC 7838 §3), once HTTP/3 listens. */
  private h3AltSvc: string | undefined;
  private readonly maxHeld: number;
  private closing = false;
  readonly push: ServerPush;
  private readonly pushPolicy?: PushPolicy;

  constructor(private readonly o: OriginOptions) {
    this.maxHeld = o.maxHeldRequests ?? 2000;
    this.pushPolicy = o.push;
    // With push off, the policy allows nothing: every push helper below can ask it without special cases.
    this.push = new ServerPush(
      o.push ?? {
        onManifest: false,
        nextSegment: false,
        liveChannel: false,
        partialBytes: 0,
        maxConcurrentPushes: 0,
        maxBytesInFlight: 0,
      },
      o.metrics.pushes,
      o.metrics.pushedBytes,
    );
    this.routeContext = { push: this.push, headers: () => this.commonHeaders(), send: (...args) => this.send(...args) };
  }

  private readonly routeContext: RouteContext;

  /** Request handler usable by node:http and node:http2 (compatibility API) servers alike. */
  readonly handle = (req: Request, res: Response): void => {
    let route = 'other';
    const protocol = req.httpVersion === '3.0' ? 'h3' : req.httpVersion === '2.0' ? 'h2' : 'http/1.1';
    // Over HTTPS (TCP), every response names the HTTP/3 alternative; over HTTP/3 there is nothing to add.
    if (this.h3AltSvc && protocol !== 'h3' && this.schemeOf(req) === 'https') res.setHeader('Alt-Svc', this.h3AltSvc);
    res.on('finish', () => {
      this.o.metrics.requests.inc({ route, method: req.method ?? '', status: String(res.statusCode), protocol });
    });
    const path = (req.url ?? '/').split('?')[0];
    try {
      if (this.pushPolicy && req.httpVersion === '2.0') this.push.noteClientCache(req as Http2ServerRequest);
      for (const r of this.o.routes ?? []) {
        const label = r(req, res, this.routeContext);
        if (label !== false) {
          route = label;
          return;
        }
      }
      if (req.method === 'OPTIONS') {
        route = 'preflight';
        return this.preflight(res);
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        route = 'method';
        return this.send(res, 405, 'text/plain', 'method not allowed\n', { Allow: 'GET, HEAD, OPTIONS' }, req, route);
      }
      let m: RegExpExecArray | null;
      if ((m = MEDIA_SEGMENT.exec(path))) {
        route = 'segment';
        return this.serveMediaSegment(req, res, m[1], Number(m[2]));
      }
      if ((m = PUSH_CHANNEL.exec(path))) {
        route = 'push-channel';
        return this.servePushChannel(req, res, m[1]);
      }
      if ((m = INIT_SEGMENT.exec(path))) {
        route = 'init';
        return this.serveInitSegment(req, res, m[1]);
      }
      if (path === MANIFEST_PATH) {
        route = 'mpd';
        return this.serveMpd(req, res);
      }
      if (path === '/time') {
        route = 'time';
        // UTCTiming urn:mpeg:dash:utc:http-iso:2014 — an ISO 8601 instant with milliseconds.
        return this.send(
          res,
          200,
          'text/plain; charset=utf-8',
          new Date().toISOString(),
          { 'Cache-Control': CACHE_NONE },
          req,
          route,
        );
      }
      if (path === WEBTRANSPORT_INFO_PATH) {
        route = 'webtransport-info';
        if (!this.webTransportInfo)
          return this.send(
            res,
            404,
            'text/plain',
            'no HTTP/3 here (--no-http3 or --tls-port off)\n',
            { 'Cache-Control': CACHE_NONE },
            req,
            route,
          );
        return this.send(
          res,
          200,
          'application/json',
          this.webTransportInfo,
          { 'Cache-Control': CACHE_NONE },
          req,
          route,
        );
      }
      if (path === '/metrics') {
        route = 'metrics';
        void this.o.metrics.registry
          .metrics()
          .then((text) =>
            this.send(res, 200, this.o.metrics.registry.contentType, text, { 'Cache-Control': CACHE_NONE }, req, route),
          );
        return;
      }
      if (WEB_FILES[path]) {
        route = 'page';
        if (path === '/' || path === '/index.html') this.sendEarlyHints(req, res, 'page');
        return void this.serveWebFile(req, res, WEB_FILES[path]);
      }
      route = 'not-found';
      this.send(res, 404, 'text/plain', 'not found\n', { 'Cache-Control': CACHE_NONE }, req, route);
    } catch (err) {
      console.error('pushcast origin: request failed:', err);
      if (!res.headersSent)
        this.send(res, 500, 'text/plain', 'internal error\n', { 'Cache-Control': CACHE_NONE }, req, route);
      else res.destroy();
    }
  };

  /**
   * HTTP/3 requests through the same handler: Http3ServerRequest/Response implement the part of node's
   * compatibility API that the origin and its routes use (method, url, headers, socket.encrypted;
   * writeHead, setHeader, getHeader, write, end, destroy, writeEarlyHints, 'finish', 'close').
   */
  private readonly handleHttp3 = (req: Http3ServerRequest, res: Http3ServerResponse): void =>
    this.handle(req as unknown as Request, res as unknown as Response);

  private commonHeaders(): Record<string, string> {
    return {
      'Access-Control-Allow-Origin': '*',
      'Access-Control-Expose-Headers': 'Content-Length, Content-Range, ETag, Date, Age, Alt-Svc',
      'Timing-Allow-Origin': '*',
    };
  }

  private preflight(res: Response): void {
    res.writeHead(204, {
      ...this.commonHeaders(),
      'Access-Control-Allow-Methods': 'GET, HEAD, OPTIONS',
      'Access-Control-Allow-Headers': 'Range, If-None-Match, If-Range, If-Modified-Since, Cache-Control',
      'Access-Control-Max-Age': '86400',
    });
    res.end();
  }

  private send(
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
      ...this.commonHeaders(),
      'Content-Type': type,
      'Content-Length': String(bytes.byteLength),
      ...headers,
    });
    if (req.method === 'HEAD' || status === 304) {
      res.end();
      return;
    }
    res.end(bytes);
    this.o.metrics.responseBytes.inc({ route }, bytes.byteLength);
  }

  /** The Host a client used, if it is a plain host[:port]; anything else falls back to the configured one. */
  private hostOf(req: Request): string {
    const host = (req.headers[':authority'] as string | undefined) ?? req.headers.host;
    if (host && /^[A-Za-z0-9.-]{1,253}(:\d{1,5})?$|^\[[0-9A-Fa-f:.]{2,45}\](:\d{1,5})?$/.test(host)) return host;
    return this.o.defaultHost ?? 'localhost';
  }

  private schemeOf(req: Request): string {
    return (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
  }

  private serveMpd(req: Request, res: Response): void {
    const tracks = [...this.o.window.tracks.values()];
    const ast = this.o.timeline.availabilityStartTime;
    if (ast === undefined || tracks.some((t) => !t.init)) {
      // Not live yet: ask the player to come back shortly rather than give it an empty presentation.
      return this.send(
        res,
        503,
        'text/plain',
        'the live stream is starting\n',
        { 'Retry-After': '1', 'Cache-Control': CACHE_NONE },
        req,
        'mpd',
      );
    }
    this.sendEarlyHints(req, res, 'mpd');
    if (this.push.policy.onManifest && this.push.canPush(req)) {
      for (const track of this.defaultTracks()) {
        this.push.push(req, this.initResource(track), 'manifest');
        const newest = track.newestComplete();
        if (newest) this.push.push(req, this.segmentResource(track, newest), 'manifest');
      }
    }
    const mpd = buildLiveMpd({
      tracks: tracks.map((t) => t.info),
      availabilityStartTime: ast,
      segmentDuration: this.o.timeline.segmentDuration,
      startNumber: this.o.timeline.startNumber,
      chunkDuration: this.o.chunkDuration,
      lowLatency: this.o.lowLatency,
      timeShiftBufferDepth: this.o.window.options.timeShiftBufferDepth,
      minimumUpdatePeriod: this.o.minimumUpdatePeriod ?? this.o.timeline.segmentDuration * 5,
      targetLatency: this.o.targetLatency,
      utcTimingUrl: `${this.o.publicUrl ?? `${this.schemeOf(req)}://${this.hostOf(req)}`}/time`,
      frameRate: this.o.frameRate,
    });
    this.send(res, 200, 'application/dash+xml', mpd, { 'Cache-Control': CACHE_MPD }, req, 'mpd');
  }

  /** A track's own alternatives (its multicast session), after the origin's HTTP/3 (RFC 7838 §3: a list). */
  private advertise(res: Response, trackId: string): void {
    const value = this.o.altSvc?.(trackId);
    if (value === undefined) return;
    const h3 = res.getHeader('Alt-Svc');
    res.setHeader('Alt-Svc', typeof h3 === 'string' ? `${h3}, ${value}` : value);
  }

  /**
   * A track's init segment, or a complete media segment, with the header fields of its unicast 200
   * response (lowercase names, no content-length): what another delivery mode sends in its place.
   */
  completeResource(
    trackId: string,
    which: number | 'init',
  ): { path: string; headers: Record<string, string>; body: Uint8Array } | undefined {
    const track = this.o.window.track(trackId);
    if (!track?.init) return undefined;
    if (which === 'init') {
      return {
        path: `/live/${track.id}/init.mp4`,
        headers: {
          'content-type': mediaType(track),
          etag: initEtag(track.init),
          'cache-control': CACHE_INIT,
          'accept-ranges': 'bytes',
        },
        body: track.init,
      };
    }
    const segment = track.get(which);
    if (!segment?.complete || segment.truncated) return undefined;
    return {
      path: `/live/${track.id}/${segment.number}.m4s`,
      headers: {
        'content-type': mediaType(track),
        etag: this.segmentEtag(track.id, segment.number),
        'cache-control': CACHE_SEGMENT,
        'accept-ranges': 'bytes',
      },
      body: segment.bytes(),
    };
  }

  private serveInitSegment(req: Request, res: Response, trackId: string): void {
    const track = this.o.window.track(trackId);
    if (!track?.init)
      return this.send(res, 404, 'text/plain', 'no such track\n', { 'Cache-Control': CACHE_NONE }, req, 'init');
    this.advertise(res, trackId);
    this.serveBytes(req, res, track.init, mediaType(track), initEtag(track.init), CACHE_INIT, 'init');
  }

  /** Complete bytes with ETag / If-None-Match (RFC 9110 §13.1.2), If-Range (§13.1.5) and single ranges (§14). */
  private serveBytes(
    req: Request,
    res: Response,
    bytes: Uint8Array,
    type: string,
    etag: string,
    cacheControl: string,
    route: string,
  ): void {
    const headers: Record<string, string> = { ETag: etag, 'Cache-Control': cacheControl, 'Accept-Ranges': 'bytes' };
    const inm = req.headers['if-none-match'];
    if (typeof inm === 'string' && inm.split(',').some((t) => t.trim() === etag || t.trim() === '*')) {
      res.writeHead(304, { ...this.commonHeaders(), ...headers });
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

  private segmentEtag(trackId: string, number: number): string {
    return `"${this.instance}-${trackId}-${number}"`;
  }

  private serveMediaSegment(req: Request, res: Response, trackId: string, number: number): void {
    const track = this.o.window.track(trackId);
    const notFound = (why: string) =>
      this.send(
        res,
        404,
        'text/plain',
        req.method === 'HEAD' ? '' : `${why}\n`,
        { 'Cache-Control': CACHE_NONE },
        req,
        'segment',
      );
    if (!track) return notFound('no such track');
    this.advertise(res, trackId);
    const etag = this.segmentEtag(trackId, number);
    const segment = track.get(number);
    if (segment?.complete) {
      // Push first: the PUSH_PROMISE must precede the end of the response that carries it (RFC 9113 §8.4.1).
      this.pushNextSegment(req, track, number);
      return this.serveBytes(req, res, segment.bytes(), mediaType(track), etag, CACHE_SEGMENT, 'segment');
    }
    if (segment) return this.serveGrowingSegment(req, res, track, segment, etag);

    const newest = track.newest();
    // The next segment, already announced to low-latency clients (availabilityTimeOffset): wait for its first chunk.
    const announced =
      this.o.lowLatency &&
      newest &&
      number === newest.number + 1 &&
      this.o.timeline.now() >= this.announcedAt(number) - 250;
    if (!announced)
      return notFound(
        newest && number > newest.number ? 'segment not available yet' : 'segment not in the live window',
      );
    if (!this.hold(res)) return this.refuseHold(req, res);
    const giveUp = setTimeout(() => finish(undefined), (this.o.timeline.segmentDuration + 1) * 1000);
    const off = track.on('segmentstarted', (s) => {
      if (s.number >= number) finish(s.number === number ? s : undefined);
    });
    const onClose = () => finish(undefined, true);
    res.on('close', onClose);
    const finish = (started: Segment | undefined, closed = false) => {
      clearTimeout(giveUp);
      off();
      res.off('close', onClose);
      this.release(res);
      if (closed) return;
      if (!started) return notFound('segment did not start in time');
      this.serveGrowingSegment(req, res, track, started, etag);
    };
  }

  /** When a low-latency client may first ask for `number`: availabilityStartTime + start + chunk (§5.3.9.5.3 with ATO). */
  private announcedAt(number: number): number {
    const ast = this.o.timeline.availabilityStartTime ?? 0;
    return ast + (this.o.timeline.segmentStart(number) + this.o.chunkDuration) * 1000;
  }

  /**
   * A segment still being produced: LL-DASH delivery sends its chunks as they arrive (chunked transfer on
   * HTTP/1.1, DATA frames on HTTP/2) and ends the response when the segment completes. A range request
   * waits for the whole segment, because its length is not known before; so does an HTTP/1.0 request,
   * which has no chunked coding: its response would end by closing the connection, which a cache cannot
   * tell from an origin dying mid-segment, and it would keep the truncated segment as immutable.
   */
  private serveGrowingSegment(req: Request, res: Response, track: LiveTrack, segment: Segment, etag: string): void {
    if (!this.hold(res)) return this.refuseHold(req, res);
    const wantsRange = req.headers.range !== undefined || req.httpVersion === '1.0';
    const offChunk = wantsRange
      ? () => {}
      : track.on('chunk', (s, chunk) => {
          if (s === segment && req.method !== 'HEAD') this.write(res, chunk.bytes);
        });
    const offComplete = track.on('segmentcompleted', (s) => {
      if (s !== segment) return;
      done();
      // The next segment starts right after this one completes (LiveTrack.startSegment): push it, then end.
      setImmediate(() => {
        this.pushNextSegment(req, track, segment.number);
        if (wantsRange) this.serveBytes(req, res, segment.bytes(), mediaType(track), etag, CACHE_SEGMENT, 'segment');
        else res.end();
      });
    });
    const onClose = () => done();
    res.on('close', onClose);
    const done = () => {
      offChunk();
      offComplete();
      res.off('close', onClose);
      this.release(res);
    };
    if (wantsRange) return;
    res.writeHead(200, { ...this.commonHeaders(), ...segmentHeaders(track, etag) });
    if (req.method === 'HEAD') {
      done();
      res.end();
      return;
    }
    for (const chunk of segment.chunks) this.write(res, chunk.bytes);
  }

  /** Push policy "next segment": on a request for segment N, push N+1 of the same rendition if it exists. */
  private pushNextSegment(req: Request, track: LiveTrack, number: number): void {
    if (!this.push.policy.nextSegment || req.method !== 'GET' || !this.push.canPush(req)) return;
    const next = track.get(number + 1);
    if (next) this.push.push(req, this.segmentResource(track, next), 'next-segment');
  }

  /**
   * The live push channel: a client holds `GET /live/<rendition>/push` open and receives every segment of
   * the rendition as a push, from its first chunk, so it never has to ask for a segment again. The channel's
   * own body is a log, one JSON line per push, so that a client can see what was skipped and why.
   */
  private servePushChannel(req: Request, res: Response, trackId: string): void {
    const track = this.o.window.track(trackId);
    if (!track?.init)
      return this.send(res, 404, 'text/plain', 'no such track\n', { 'Cache-Control': CACHE_NONE }, req, 'push-channel');
    if (!this.push.policy.liveChannel)
      return this.send(
        res,
        404,
        'text/plain',
        'the live push channel is off\n',
        { 'Cache-Control': CACHE_NONE },
        req,
        'push-channel',
      );
    if (!this.push.canPush(req)) {
      return this.send(
        res,
        400,
        'text/plain',
        'the live push channel needs HTTP/2 with server push enabled\n',
        { 'Cache-Control': CACHE_NONE },
        req,
        'push-channel',
      );
    }
    res.writeHead(200, {
      ...this.commonHeaders(),
      'Content-Type': 'application/x-ndjson',
      'Cache-Control': CACHE_NONE,
    });
    const log = (path: string, outcome: string, number?: number) => {
      if (!res.writableEnded)
        this.write(res, Buffer.from(`${JSON.stringify({ path, number, outcome })}\n`), 'push-channel');
    };
    const pushSegment = (segment: Segment) => {
      const resource = this.segmentResource(track, segment);
      // The channel's response never ends: its pushes flow at once.
      log(resource.path, this.push.push(req, resource, 'channel', false), segment.number);
    };
    const init = this.initResource(track);
    log(init.path, this.push.push(req, init, 'channel', false));
    const current = track.newest();
    if (current && !current.complete) pushSegment(current);
    const off = track.on('segmentstarted', pushSegment);
    // A client that wants to stop closes the request; the origin ending (close()) ends it too.
    res.on('close', off);
  }

  private initResource(track: LiveTrack): PushResource {
    const init = track.init!;
    return {
      path: `/live/${track.id}/init.mp4`,
      status: 200,
      headers: {
        ...this.commonHeaders(),
        'content-type': mediaType(track),
        'content-length': String(init.byteLength),
        etag: initEtag(init),
        'cache-control': CACHE_INIT,
        'accept-ranges': 'bytes',
      },
      body: init,
    };
  }

  /** A segment as its pushed response: whole when complete, else growing chunk by chunk like a LL-DASH response. */
  private segmentResource(track: LiveTrack, segment: Segment): PushResource {
    const headers: Record<string, string> = {
      ...this.commonHeaders(),
      ...segmentHeaders(track, this.segmentEtag(track.id, segment.number)),
    };
    const path = `/live/${track.id}/${segment.number}.m4s`;
    if (segment.complete) {
      const bytes = segment.bytes();
      return {
        path,
        status: 200,
        headers: { ...headers, 'content-length': String(bytes.byteLength), 'accept-ranges': 'bytes' },
        body: bytes,
      };
    }
    const body: GrowingBody = {
      parts: segment.chunks.map((c) => c.bytes),
      follow: (onPart, onEnd) => {
        const offChunk = track.on('chunk', (s, chunk) => s === segment && onPart(chunk.bytes));
        const offEnd = track.on('segmentcompleted', (s) => s === segment && onEnd());
        const offEvicted = track.on('segmentevicted', (s) => s === segment && onEnd());
        return () => {
          offChunk();
          offEnd();
          offEvicted();
        };
      },
    };
    return { path, status: 200, headers, body };
  }

  /** The renditions a player starts with: the lowest-bandwidth video and every audio track. */
  private defaultTracks(): LiveTrack[] {
    const tracks = [...this.o.window.tracks.values()].filter((t) => t.init);
    const video = tracks.filter((t) => t.info.kind === 'video').sort((a, b) => a.info.bandwidth - b.info.bandwidth)[0];
    return [...(video ? [video] : []), ...tracks.filter((t) => t.info.kind === 'audio')];
  }

  /**
   * 103 Early Hints (RFC 8297): before the final response, `Link: rel=preload` (RFC 8288) for what a player
   * will fetch first — the MPD, the default renditions' init segments and newest segments — so that a
   * browser starts those fetches while the origin is still answering.
   */
  private sendEarlyHints(req: Request, res: Response, route: string): void {
    // HTTP/2 only: browsers act on 103 only over HTTP/2 and later, and HTTP/1.x caches in front of the origin
    // (nginx before 1.29) take an upstream 103 for the final response (docs/cdn-nginx.md).
    if (
      !this.o.earlyHints ||
      (req.httpVersion !== '2.0' && req.httpVersion !== '3.0') ||
      this.o.timeline.availabilityStartTime === undefined
    )
      return;
    const links = [`<${MANIFEST_PATH}>; rel=preload; as=fetch; crossorigin`];
    for (const track of this.defaultTracks()) {
      links.push(`</live/${track.id}/init.mp4>; rel=preload; as=fetch; crossorigin`);
      const newest = track.newestComplete();
      if (newest) links.push(`</live/${track.id}/${newest.number}.m4s>; rel=preload; as=fetch; crossorigin`);
    }
    res.writeEarlyHints({ link: links });
    this.o.metrics.earlyHints.inc({ route });
  }

  private write(res: Response, bytes: Uint8Array, route = 'segment'): void {
    (res as ServerResponse).write(bytes);
    this.o.metrics.responseBytes.inc({ route }, bytes.byteLength);
  }

  private hold(res: Response): boolean {
    if (this.heldResponses.has(res)) return true;
    if (this.heldResponses.size >= this.maxHeld || this.closing) return false;
    this.heldResponses.add(res);
    this.o.metrics.heldRequests.set(this.heldResponses.size);
    return true;
  }

  private release(res: Response): void {
    this.heldResponses.delete(res);
    this.o.metrics.heldRequests.set(this.heldResponses.size);
  }

  private refuseHold(req: Request, res: Response): void {
    this.o.metrics.heldRequestsRefused.inc();
    this.send(
      res,
      503,
      'text/plain',
      'too many requests waiting for live segments\n',
      { 'Retry-After': '1', 'Cache-Control': CACHE_NONE },
      req,
      'segment',
    );
  }

  private async serveWebFile(req: Request, res: Response, f: { file: string; type: string }): Promise<void> {
    try {
      const bytes = await readFile(join(this.o.webRoot, f.file));
      this.send(res, 200, f.type, bytes, { 'Cache-Control': 'no-cache' }, req, 'page');
    } catch {
      this.send(
        res,
        404,
        'text/plain',
        'player page not built (npm run build)\n',
        { 'Cache-Control': CACHE_NONE },
        req,
        'page',
      );
    }
  }

  async listen(l: ListenOptions): Promise<OriginAddresses> {
    const host = l.host ?? '0.0.0.0';
    const shown = host === '0.0.0.0' || host === '::' ? 'localhost' : host;
    const out: OriginAddresses = {};
    if (l.port !== null) {
      const server = http.createServer({ keepAliveTimeout: 30_000 }, this.handle);
      server.maxConnections = l.maxConnections ?? 10_000;
      server.on('connection', (s) => this.track(s));
      server.on('upgrade', this.onUpgrade);
      const port = await listenOn(server, l.port, host);
      this.servers.push(server);
      out.http = `http://${shown}:${port}`;
    }
    if (l.tlsPort !== null) {
      if (!l.certificate) throw new Error('an HTTPS port needs a certificate');
      const server = http2.createSecureServer(
        { key: l.certificate.key, cert: l.certificate.cert, allowHTTP1: true, settings: { enablePush: false } },
        this.handle,
      );
      server.on('session', (s) => {
        this.sessions.add(s);
        s.on('close', () => this.sessions.delete(s));
      });
      server.maxConnections = l.maxConnections ?? 10_000;
      server.on('secureConnection', (s) => this.track(s));
      server.on('upgrade', this.onUpgrade);
      const port = await listenOn(server, l.tlsPort, host);
      this.servers.push(server);
      out.https = `https://${shown}:${port}`;
      if (l.http3) {
        const quic = {
          alpn: [H3_ALPN],
          key: l.certificate.key,
          cert: l.certificate.cert,
          port,
          maxConnections: l.maxConnections ?? 10_000,
        };
        // "Any address" means IPv6 too where the host has it: browsers resolve localhost to ::1 first and,
        // unlike TCP, do not fall back to 127.0.0.1 for QUIC (a WebTransport session would just fail).
        this.quic =
          host === '0.0.0.0'
            ? await QuicEndpoint.listen({ ...quic, host: '::' }).catch(() => QuicEndpoint.listen({ ...quic, host }))
            : await QuicEndpoint.listen({ ...quic, host });
        this.o.metrics.observeQuic(this.quic);
        const router = this.o.webTransport ?? new SessionRouter();
        this.quic.on('connection', (conn) => serveHttp3Sessions(conn, { router, onRequest: this.handleHttp3 }));
        this.h3AltSvc = `h3=":${port}"; ma=86400`;
        // The port, not a URL: the page's own host name is the one its certificate check will use.
        this.webTransportInfo = JSON.stringify({ port, serverCertificateHashes: certificateHashes(l.certificate) });
        out.http3 = out.https;
      }
    }
    return out;
  }

  private readonly onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (this.closing || !this.o.upgrade?.(req, socket, head))
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  };

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
  }

  /**
   * Stops accepting and closes every connection. Responses still waiting for or streaming a live segment
   * are aborted, not ended: ending them would hand a client a truncated segment that looks complete.
   */
  async close(): Promise<void> {
    this.closing = true;
    for (const res of this.heldResponses) res.destroy();
    this.heldResponses.clear();
    const closed = [
      ...this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
      ...(this.quic ? [this.quic.close()] : []),
    ];
    for (const s of this.sessions) s.close();
    for (const s of this.servers) (s as http.Server).closeIdleConnections?.();
    const grace = setTimeout(() => {
      for (const s of this.sockets) s.destroy();
    }, 2000);
    await Promise.all(closed);
    clearTimeout(grace);
  }
}

function mediaType(track: LiveTrack): string {
  return track.info.kind === 'audio' ? 'audio/mp4' : 'video/mp4';
}

function initEtag(init: Uint8Array): string {
  return `"${createHash('sha256').update(init).digest('base64url').slice(0, 22)}"`;
}

/** Headers of a media segment response, whether requested or pushed. */
function segmentHeaders(track: LiveTrack, etag: string): Record<string, string> {
  return { 'Content-Type': mediaType(track), 'Cache-Control': CACHE_SEGMENT, ETag: etag };
}

function listenOn(server: http.Server | http2.Http2SecureServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
