import {
  LIVE_PREFIX,
  MANIFEST_PATH,
  TIME_PATH,
  TRACK_ID,
  buildLiveMpd,
  initPath,
  parseLivePath,
  pushChannelPath,
  segmentPath,
  type LiveTimeline,
  type LiveTrack,
  type LiveWindow,
  type Segment,
} from '../media/index.js';
import type { HeldResponses } from './held-responses.js';
import { initEtag, mediaType, segmentHeaders, type LiveResources } from './live-resources.js';
import type { ServerPush } from './push/server-push.js';
import { CACHE_INIT, CACHE_MPD, CACHE_NONE, CACHE_SEGMENT, type OriginResponses } from './responses.js';
import { schemeOf, type Request, type Response } from './route.js';

export interface DashRouteOptions {
  window: LiveWindow;
  timeline: LiveTimeline;
  lowLatency: boolean;
  /** CMAF chunk duration, seconds. */
  chunkDuration: number;
  /** Latency the player should hold, seconds (ServiceDescription, suggestedPresentationDelay). */
  targetLatency: number;
  minimumUpdatePeriod?: number;
  frameRate?: number;
  /** Host used in absolute URLs when a request's Host header is missing or unusable. */
  defaultHost?: string;
  /**
   * The origin's public base URL (e.g. https://cdn.example.com) for absolute URLs in the MPD. Without it
   * they follow the request's Host and scheme, which is wrong behind a TLS-terminating cache and makes the
   * MPD vary by Host.
   */
  publicUrl?: string;
  /** Send 103 Early Hints (RFC 8297) with the MPD, init and newest segments on player-page and MPD requests over HTTP/2. */
  earlyHints?: boolean;
  /**
   * An `Alt-Svc` value (RFC 7838) for the init and media segment responses of a track, e.g. the
   * track's multicast session (WHP 336 §4); undefined for none.
   */
  altSvc?: (trackId: string) => string | undefined;
}

/** The track whose live push channel `path` names (`pushChannelPath`), if it names one. */
function pushChannelTrack(path: string): string | undefined {
  const id = path.slice(LIVE_PREFIX.length, path.lastIndexOf('/'));
  return TRACK_ID.test(id) && pushChannelPath(id) === path ? id : undefined;
}

/**
 * The live DASH routes (ISO/IEC 23009-1): the MPD, init and media segments of the live window (complete,
 * growing, or announced and awaited), the live push channel, and the clock for UTCTiming.
 */
export class DashRoutes {
  private readonly earlyHints = new Map<string, number>();

  constructor(
    private readonly o: DashRouteOptions,
    private readonly responses: OriginResponses,
    private readonly resources: LiveResources,
    private readonly held: HeldResponses,
    private readonly push: ServerPush,
  ) {}

  /** Answers `path` if it is a DASH route, returning its label for metrics; false otherwise. */
  serve(req: Request, res: Response, path: string): string | false {
    const live = parseLivePath(path);
    if (live?.kind === 'segment') {
      this.serveMediaSegment(req, res, live.trackId, live.number);
      return 'segment';
    }
    if (live?.kind === 'init') {
      this.serveInitSegment(req, res, live.trackId);
      return 'init';
    }
    const channel = pushChannelTrack(path);
    if (channel !== undefined) {
      this.servePushChannel(req, res, channel);
      return 'push-channel';
    }
    if (path === MANIFEST_PATH) {
      this.serveMpd(req, res);
      return 'mpd';
    }
    if (path === TIME_PATH) {
      // UTCTiming urn:mpeg:dash:utc:http-iso:2014 — an ISO 8601 instant with milliseconds.
      this.responses.send(
        res,
        200,
        'text/plain; charset=utf-8',
        new Date().toISOString(),
        { 'Cache-Control': CACHE_NONE },
        req,
        'time',
      );
      return 'time';
    }
    return false;
  }

  /**
   * 103 Early Hints (RFC 8297): before the final response, `Link: rel=preload` (RFC 8288) for what a player
   * will fetch first — the MPD, the default renditions' init segments and newest segments — so that a
   * browser starts those fetches while the origin is still answering.
   */
  sendEarlyHints(req: Request, res: Response, route: string): void {
    // HTTP/2 only: browsers act on 103 only over HTTP/2 and later, and HTTP/1.x caches in front of the origin
    // (nginx before 1.29) take an upstream 103 for the final response (docs/cdn-nginx.md).
    if (
      !this.o.earlyHints ||
      (req.httpVersion !== '2.0' && req.httpVersion !== '3.0') ||
      this.o.timeline.availabilityStartTime === undefined
    )
      return;
    const links = [`<${MANIFEST_PATH}>; rel=preload; as=fetch; crossorigin`];
    for (const track of this.resources.defaultTracks()) {
      links.push(`<${initPath(track.id)}>; rel=preload; as=fetch; crossorigin`);
      const newest = track.newestComplete();
      if (newest) links.push(`<${segmentPath(track.id, newest.number)}>; rel=preload; as=fetch; crossorigin`);
    }
    res.writeEarlyHints({ link: links });
    this.earlyHints.set(route, (this.earlyHints.get(route) ?? 0) + 1);
  }

  /** 103 Early Hints responses sent, by route. */
  earlyHintsByRoute(): Record<string, number> {
    return Object.fromEntries(this.earlyHints);
  }

  /** The Host a client used, if it is a plain host[:port]; anything else falls back to the configured one. */
  private hostOf(req: Request): string {
    const host = (req.headers[':authority'] as string | undefined) ?? req.headers.host;
    if (host && /^[A-Za-z0-9.-]{1,253}(:\d{1,5})?$|^\[[0-9A-Fa-f:.]{2,45}\](:\d{1,5})?$/.test(host)) return host;
    return this.o.defaultHost ?? 'localhost';
  }

  private serveMpd(req: Request, res: Response): void {
    const tracks = [...this.o.window.tracks.values()];
    const ast = this.o.timeline.availabilityStartTime;
    const described = this.o.timeline.segmentTimeline;
    // A SegmentTimeline lists complete segments: a track needs one before the MPD can describe it.
    if (ast === undefined || tracks.some((t) => !t.init || (described && !t.newestComplete()))) {
      // Not live yet: ask the player to come back shortly rather than give it an empty presentation.
      return this.responses.send(
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
      for (const track of this.resources.defaultTracks()) {
        this.push.push(req, this.resources.initResource(track), 'manifest');
        const newest = track.newestComplete();
        if (newest) this.push.push(req, this.resources.segmentResource(track, newest), 'manifest');
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
      // A timeline names each new segment only in a newer MPD: players come back once per segment.
      minimumUpdatePeriod: this.o.minimumUpdatePeriod ?? this.o.timeline.segmentDuration * (described ? 1 : 5),
      targetLatency: this.o.targetLatency,
      utcTimingUrl: `${this.o.publicUrl ?? `${schemeOf(req)}://${this.hostOf(req)}`}${TIME_PATH}`,
      frameRate: this.o.frameRate,
      segmentTimelines: described
        ? new Map(
            tracks.map((t) => [
              t.id,
              t
                .list()
                .filter((s) => s.complete)
                .map((s) => ({ number: s.number, time: s.decodeTime, duration: s.duration })),
            ]),
          )
        : undefined,
    });
    this.responses.send(res, 200, 'application/dash+xml', mpd, { 'Cache-Control': CACHE_MPD }, req, 'mpd');
  }

  /** A track's own alternatives (its multicast session), after the origin's HTTP/3 (RFC 7838 §3: a list). */
  private advertise(res: Response, trackId: string): void {
    const value = this.o.altSvc?.(trackId);
    if (value === undefined) return;
    const h3 = res.getHeader('Alt-Svc');
    res.setHeader('Alt-Svc', typeof h3 === 'string' ? `${h3}, ${value}` : value);
  }

  private serveInitSegment(req: Request, res: Response, trackId: string): void {
    const track = this.o.window.track(trackId);
    if (!track?.init)
      return this.responses.send(
        res,
        404,
        'text/plain',
        'no such track\n',
        { 'Cache-Control': CACHE_NONE },
        req,
        'init',
      );
    this.advertise(res, trackId);
    this.responses.serveBytes(req, res, track.init, mediaType(track), initEtag(track.init), CACHE_INIT, 'init');
  }

  private serveMediaSegment(req: Request, res: Response, trackId: string, number: number): void {
    const track = this.o.window.track(trackId);
    const notFound = (why: string) =>
      this.responses.send(
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
    const etag = this.resources.segmentEtag(trackId, number);
    const segment = track.get(number);
    if (segment?.complete) {
      // Push first: the PUSH_PROMISE must precede the end of the response that carries it (RFC 9113 §8.4.1).
      this.pushNextSegment(req, track, number);
      return this.responses.serveBytes(req, res, segment.bytes(), mediaType(track), etag, CACHE_SEGMENT, 'segment');
    }
    if (segment) return this.serveGrowingSegment(req, res, track, segment, etag);

    const newest = track.newest();
    // The next segment, already announced to low-latency clients (availabilityTimeOffset): wait for its first chunk.
    // With a segment timeline the next number has no time before it starts: it may be asked for at once.
    const announced =
      this.o.lowLatency &&
      newest &&
      number === newest.number + 1 &&
      (this.o.timeline.segmentTimeline || this.o.timeline.now() >= this.announcedAt(number) - 250);
    if (!announced)
      return notFound(
        newest && number > newest.number ? 'segment not available yet' : 'segment not in the live window',
      );
    if (!this.held.hold(res)) return this.held.refuse(req, res);
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
      this.held.release(res);
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
   * HTTP/1.1, DATA frames on HTTP/2) and ends the response when the segment completes. A closed range
   * (`bytes=a-b`) is answered as soon as its bytes exist, with `Content-Range: bytes a-b/*` (RFC 9110 §14.4:
   * the complete length is not known yet): that is how a multicast receiver repairs a lost packet of a
   * segment still being pushed. Any other range waits for the whole segment, because its length is not
   * known before; so does an HTTP/1.0 request, which has no chunked coding: its response would end by
   * closing the connection, which a cache cannot tell from an origin dying mid-segment, and it would keep
   * the truncated segment as immutable.
   */
  private serveGrowingSegment(req: Request, res: Response, track: LiveTrack, segment: Segment, etag: string): void {
    if (!this.held.hold(res)) return this.held.refuse(req, res);
    const closed = req.httpVersion === '1.0' ? undefined : closedRange(req.headers.range);
    if (closed) return this.serveGrowingRange(req, res, track, segment, etag, closed);
    const wantsRange = req.headers.range !== undefined || req.httpVersion === '1.0';
    const offChunk = wantsRange
      ? () => {}
      : track.on('chunk', (s, chunk) => {
          if (s === segment && req.method !== 'HEAD') this.responses.write(res, chunk.bytes);
        });
    const offComplete = track.on('segmentcompleted', (s) => {
      if (s !== segment) return;
      done();
      // The next segment starts right after this one completes (LiveTrack.startSegment): push it, then end.
      setImmediate(() => {
        this.pushNextSegment(req, track, segment.number);
        if (wantsRange)
          this.responses.serveBytes(req, res, segment.bytes(), mediaType(track), etag, CACHE_SEGMENT, 'segment');
        else res.end();
      });
    });
    const onClose = () => done();
    res.on('close', onClose);
    const done = () => {
      offChunk();
      offComplete();
      res.off('close', onClose);
      this.held.release(res);
    };
    if (wantsRange) return;
    res.writeHead(200, { ...this.responses.headers(), ...segmentHeaders(track, etag) });
    if (req.method === 'HEAD') {
      done();
      res.end();
      return;
    }
    for (const chunk of segment.chunks) this.responses.write(res, chunk.bytes);
  }

  /** A closed range of a growing segment: sent once the segment holds its last byte (or whole once complete). */
  private serveGrowingRange(
    req: Request,
    res: Response,
    track: LiveTrack,
    segment: Segment,
    etag: string,
    range: { start: number; end: number },
  ): void {
    const answer = () => {
      done();
      if (segment.complete || segment.size <= range.end)
        return this.responses.serveBytes(req, res, segment.bytes(), mediaType(track), etag, CACHE_SEGMENT, 'segment');
      this.responses.send(
        res,
        206,
        mediaType(track),
        segment.bytes().subarray(range.start, range.end + 1),
        {
          ETag: etag,
          'Cache-Control': CACHE_SEGMENT,
          'Accept-Ranges': 'bytes',
          'Content-Range': `bytes ${range.start}-${range.end}/*`,
        },
        req,
        'segment',
      );
    };
    const offChunk = track.on('chunk', (s) => s === segment && segment.size > range.end && answer());
    const offComplete = track.on('segmentcompleted', (s) => s === segment && answer());
    const onClose = () => done();
    res.on('close', onClose);
    const done = () => {
      offChunk();
      offComplete();
      res.off('close', onClose);
      this.held.release(res);
    };
    if (segment.size > range.end) answer();
  }

  /** Push policy "next segment": on a request for segment N, push N+1 of the same rendition if it exists. */
  private pushNextSegment(req: Request, track: LiveTrack, number: number): void {
    if (!this.push.policy.nextSegment || req.method !== 'GET' || !this.push.canPush(req)) return;
    const next = track.get(number + 1);
    if (next) this.push.push(req, this.resources.segmentResource(track, next), 'next-segment');
  }

  /**
   * The live push channel: a client holds `GET /live/<rendition>/push` open and receives every segment of
   * the rendition as a push, from its first chunk, so it never has to ask for a segment again. The channel's
   * own body is a log, one JSON line per push, so that a client can see what was skipped and why.
   */
  private servePushChannel(req: Request, res: Response, trackId: string): void {
    const track = this.o.window.track(trackId);
    const refuse = (status: number, why: string) =>
      this.responses.send(res, status, 'text/plain', why, { 'Cache-Control': CACHE_NONE }, req, 'push-channel');
    if (!track?.init) return refuse(404, 'no such track\n');
    if (!this.push.policy.liveChannel) return refuse(404, 'the live push channel is off\n');
    if (!this.push.canPush(req)) return refuse(400, 'the live push channel needs HTTP/2 with server push enabled\n');
    res.writeHead(200, {
      ...this.responses.headers(),
      'Content-Type': 'application/x-ndjson',
      'Cache-Control': CACHE_NONE,
    });
    const log = (path: string, outcome: string, number?: number) => {
      if (!res.writableEnded)
        this.responses.write(res, Buffer.from(`${JSON.stringify({ path, number, outcome })}\n`), 'push-channel');
    };
    const pushSegment = (segment: Segment) => {
      const resource = this.resources.segmentResource(track, segment);
      // The channel's response never ends: its pushes flow at once.
      log(resource.path, this.push.push(req, resource, 'channel', false), segment.number);
    };
    const init = this.resources.initResource(track);
    log(init.path, this.push.push(req, init, 'channel', false));
    const current = track.newest();
    if (current && !current.complete) pushSegment(current);
    const off = track.on('segmentstarted', pushSegment);
    // A client that wants to stop closes the request; the origin ending (close()) ends it too.
    res.on('close', off);
  }
}

/** `bytes=a-b` with a ≤ b (RFC 9110 §14.1.2), the one range form a growing segment can answer before it completes. */
function closedRange(header: string | string[] | undefined): { start: number; end: number } | undefined {
  if (typeof header !== 'string' || header.length > 200) return undefined;
  const m = /^\s*bytes\s*=\s*(\d{1,15})\s*-\s*(\d{1,15})\s*$/i.exec(header);
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = Number(m[2]);
  return start <= end ? { start, end } : undefined;
}
