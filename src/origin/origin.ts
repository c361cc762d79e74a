import type http from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { Http3ServerRequest, Http3ServerResponse } from '../http3/index.js';
import type { WebTransportInfo } from '../listen/index.js';
import type { QuicEndpointStats } from '../quic/index.js';
import { DELIVERY_PATH, METRICS_PATH, WEBTRANSPORT_INFO_PATH, type DeliveryDescription } from '../media/index.js';
import type { SessionRouter } from '../webtransport/index.js';
import { DashRoutes, type DashRouteOptions } from './dash-routes.js';
import { HeldResponses } from './held-responses.js';
import { HlsRoutes, type HlsStats } from './hls-routes.js';
import { LiveResources } from './live-resources.js';
import { playerFile, servePlayerFile } from './player-pages.js';
import { OriginPorts, type ListenOptions, type OriginAddresses } from './ports.js';
import { ServerPush, type PushPolicy, type ServerPushStats } from './push/server-push.js';
import { RequestCounts, type RequestCount } from './request-counts.js';
import { CACHE_NONE, OriginResponses } from './responses.js';
import { schemeOf, type Request, type Response, type Route, type RouteContext } from './route.js';

/** What the origin serves at /metrics: an exposition made elsewhere (e.g. Prometheus text). */
export interface MetricsExposition {
  readonly contentType: string;
  text(): Promise<string>;
}

/** The origin's counts since it started: plain numbers and counts by label, read by a metrics exposition. */
export interface OriginStats {
  /** Requests answered, one row per route, method, status and protocol seen. */
  requests: RequestCount[];
  /** Response body bytes written, by route. */
  responseBytesByRoute: Record<string, number>;
  /** Segment responses open now while their segment is still being produced. */
  heldRequests: number;
  /** Requests for in-progress segments refused with 503 at the hold limit. */
  heldRequestsRefused: number;
  /** 103 Early Hints responses sent, by route. */
  earlyHintsByRoute: Record<string, number>;
  push: ServerPushStats;
  /** LL-HLS: blocking playlist requests and part requests waiting, blocking reloads by outcome. */
  hls: HlsStats;
}

export interface OriginOptions extends DashRouteOptions {
  /** Folder with the built player page (index.html, player.js). */
  webRoot: string;
  /** Responses that may wait for or stream an in-progress segment (or wait for an LL-HLS part) at once; more get 503. */
  maxHeldRequests?: number;
  /** LL-HLS blocking playlist requests that may wait at once; more get 503. */
  maxHeldPlaylistRequests?: number;
  /** HTTP/2 server push; absent = no push. */
  push?: PushPolicy;
  /** Routes tried before the origin's own. */
  routes?: Route[];
  /**
   * HTTP/1.1 upgrade requests (RFC 9110 §7.8), e.g. the multicast gateway's WebSockets: true when
   * handled; anything not handled is answered 404 and closed.
   */
  upgrade?: (req: http.IncomingMessage, socket: Duplex, head: Buffer) => boolean;
  /** WebTransport sessions on the HTTP/3 port, by path (e.g. Warp); none without. */
  webTransport?: SessionRouter;
  /**
   * The delivery description served at DELIVERY_PATH, given the WebTransport details once HTTP/3 listens;
   * without it the path is not found (a player then plays the MPD by LL-DASH).
   */
  delivery?: (webTransport: WebTransportInfo | undefined) => DeliveryDescription;
  /** Served at /metrics; without it /metrics is not found. */
  metrics?: MetricsExposition;
}

/**
 * The live DASH origin (ISO/IEC 23009-1): the MPD, init and media segments of the live window, LL-HLS
 * playlists and parts over the same segments (`hls-routes.ts`), the player page, the clock for UTCTiming and metrics, over HTTP/1.1, HTTP/2 and HTTP/3. This class is
 * the face: it dispatches each request to the routes (`dash-routes.ts`, `player-pages.ts`, the extra
 * `routes`) and listens on its ports (`ports.ts`).
 */
export class Origin {
  readonly push: ServerPush;
  private readonly responses: OriginResponses;
  private readonly resources: LiveResources;
  private readonly held: HeldResponses;
  private readonly dash: DashRoutes;
  private readonly hls: HlsRoutes;
  private readonly heldPlaylists: HeldResponses;
  private readonly ports = new OriginPorts();
  private readonly routeContext: RouteContext;
  private readonly requests = new RequestCounts();
  private closing = false;

  constructor(private readonly o: OriginOptions) {
    this.responses = new OriginResponses();
    this.resources = new LiveResources(o.window, () => this.responses.headers());
    this.held = new HeldResponses(o.maxHeldRequests ?? 2000, this.responses);
    // With push off, the policy allows nothing: every push helper can ask it without special cases.
    this.push = new ServerPush(
      o.push ?? {
        onManifest: false,
        nextSegment: false,
        liveChannel: false,
        partialBytes: 0,
        maxConcurrentPushes: 0,
        maxBytesInFlight: 0,
      },
    );
    this.dash = new DashRoutes(o, this.responses, this.resources, this.held, this.push);
    this.heldPlaylists = new HeldResponses(o.maxHeldPlaylistRequests ?? 2000, this.responses, 'playlist updates');
    this.hls = new HlsRoutes(o, this.responses, this.resources, this.held, this.heldPlaylists);
    this.routeContext = {
      push: this.push,
      headers: () => this.responses.headers(),
      send: (...args) => this.responses.send(...args),
    };
  }

  /** Request handler usable by node:http and node:http2 (compatibility API) servers alike. */
  readonly handle = (req: Request, res: Response): void => {
    let route = 'other';
    const protocol = req.httpVersion === '3.0' ? 'h3' : req.httpVersion === '2.0' ? 'h2' : 'http/1.1';
    // Over HTTPS (TCP), every response names the HTTP/3 alternative; over HTTP/3 there is nothing to add.
    const h3AltSvc = this.ports.altSvc;
    if (h3AltSvc && protocol !== 'h3' && schemeOf(req) === 'https') res.setHeader('Alt-Svc', h3AltSvc);
    res.on('finish', () => {
      this.requests.count(route, req.method ?? '', res.statusCode, protocol);
    });
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const send = (status: number, type: string, body: string) =>
      this.responses.send(res, status, type, body, { 'Cache-Control': CACHE_NONE }, req, route);
    try {
      if (this.o.push && req.httpVersion === '2.0') this.push.noteClientCache(req as Http2ServerRequest);
      for (const r of this.o.routes ?? []) {
        const label = r(req, res, this.routeContext);
        if (label !== false) {
          route = label;
          return;
        }
      }
      if (req.method === 'OPTIONS') {
        route = 'preflight';
        return this.responses.preflight(res);
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        route = 'method';
        return this.responses.send(
          res,
          405,
          'text/plain',
          'method not allowed\n',
          { Allow: 'GET, HEAD, OPTIONS' },
          req,
          route,
        );
      }
      const dash = this.dash.serve(req, res, path);
      if (dash !== false) {
        route = dash;
        return;
      }
      const hls = this.hls.serve(req, res, path, q < 0 ? '' : url.slice(q + 1));
      if (hls !== false) {
        route = hls;
        return;
      }
      if (path === DELIVERY_PATH && this.o.delivery) {
        route = 'delivery';
        return send(200, 'application/json', JSON.stringify(this.o.delivery(this.ports.webTransportInfo)));
      }
      if (path === WEBTRANSPORT_INFO_PATH) {
        route = 'webtransport-info';
        const info = this.ports.webTransportInfo;
        if (!info) return send(404, 'text/plain', 'no HTTP/3 here (--no-http3 or --tls-port off)\n');
        return send(200, 'application/json', JSON.stringify(info));
      }
      const metrics = this.o.metrics;
      if (path === METRICS_PATH && metrics) {
        route = 'metrics';
        void metrics.text().then((text) => send(200, metrics.contentType, text));
        return;
      }
      const page = playerFile(path);
      if (page) {
        route = 'page';
        if (path === '/' || path === '/index.html') this.dash.sendEarlyHints(req, res, 'page');
        return void servePlayerFile(this.responses, this.o.webRoot, req, res, page);
      }
      route = 'not-found';
      send(404, 'text/plain', 'not found\n');
    } catch (err) {
      console.error('pushcast origin: request failed:', err);
      if (!res.headersSent) send(500, 'text/plain', 'internal error\n');
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

  private readonly onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): boolean =>
    !this.closing && (this.o.upgrade?.(req, socket, head) ?? false);

  /**
   * A track's init segment, or a complete media segment, with the header fields of its unicast 200
   * response (lowercase names, no content-length): what another delivery mode sends in its place.
   */
  completeResource(
    trackId: string,
    which: number | 'init',
  ): { path: string; headers: Record<string, string>; body: Uint8Array } | undefined {
    return this.resources.completeResource(trackId, which);
  }

  /** A media segment's URL and unicast header fields (no length) once it has started: a progressive push's head. */
  growingResource(trackId: string, number: number): { path: string; headers: Record<string, string> } | undefined {
    return this.resources.growingResource(trackId, number);
  }

  /** Opens the cleartext, HTTPS and HTTP/3 ports `l` asks for; returns their URLs. */
  async listen(l: ListenOptions): Promise<OriginAddresses> {
    return this.ports.listen(l, {
      onRequest: this.handle,
      onUpgrade: this.onUpgrade,
      onHttp3Request: this.handleHttp3,
      webTransport: this.o.webTransport,
    });
  }

  /** The counts of requests, bytes, held responses, Early Hints and pushes since the origin started. */
  stats(): OriginStats {
    return {
      requests: this.requests.list(),
      responseBytesByRoute: this.responses.bytesByRoute(),
      heldRequests: this.held.size,
      heldRequestsRefused: this.held.refused,
      earlyHintsByRoute: this.dash.earlyHintsByRoute(),
      push: this.push.stats(),
      hls: this.hls.stats(),
    };
  }

  /** The QUIC endpoint of HTTP/3 and WebTransport, once listening on it: its counts, for metrics. */
  get quic(): { readonly stats: QuicEndpointStats } | undefined {
    return this.ports.quic;
  }

  /**
   * Stops accepting and closes every connection. Responses still waiting for or streaming a live segment
   * are aborted, not ended: ending them would hand a client a truncated segment that looks complete.
   */
  async close(): Promise<void> {
    this.closing = true;
    this.held.abortAll();
    this.heldPlaylists.abortAll();
    await this.ports.close();
  }
}
