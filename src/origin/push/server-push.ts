import type { Http2ServerRequest, Http2Session, ServerHttp2Stream, OutgoingHttpHeaders } from 'node:http2';
import { constants as h2 } from 'node:http2';

/** Which HTTP/2 pushes the origin makes; each can be switched off on its own. */
export interface PushPolicy {
  /** On an MPD request: the default renditions' init segments and newest complete segment. */
  onManifest: boolean;
  /** On a segment request: the next segment of the same rendition, once it exists. */
  nextSegment: boolean;
  /** `GET /live/<rendition>/push`: every new segment of that rendition, pushed chunk by chunk. */
  liveChannel: boolean;
  /** Large on-demand resources: push only this many first bytes as a 206 (0: push nothing of them). */
  partialBytes: number;
  /** Pushes open at once on one connection. */
  maxConcurrentPushes: number;
  /** Bytes of pushed responses not yet completed on one connection. */
  maxBytesInFlight: number;
}

export const DEFAULT_PUSH_POLICY: PushPolicy = {
  onManifest: true,
  nextSegment: true,
  liveChannel: true,
  partialBytes: 1 << 20,
  maxConcurrentPushes: 16,
  maxBytesInFlight: 16 << 20,
};

/** A body that is still being produced (a live segment): what exists now, and what comes later. */
export interface GrowingBody {
  readonly parts: readonly Uint8Array[];
  /** Calls `onPart` for each later part and `onEnd` when complete; returns an unsubscribe function. */
  follow(onPart: (part: Uint8Array) => void, onEnd: () => void): () => void;
}

/** A resource to push, exactly as the origin would answer a request for it. */
export interface PushResource {
  /** The same path a client would request, so that its cache matches the push. */
  path: string;
  /** Cache-relevant request headers of the promised request (e.g. `range` for a partial push). */
  requestHeaders?: Record<string, string>;
  status: 200 | 206;
  /** Response headers, as in a normal response: content-type, content-length, etag, cache-control, … */
  headers: Record<string, string>;
  body: Uint8Array | GrowingBody;
}

export type PushOutcome = 'sent' | 'not-h2' | 'disabled' | 'duplicate' | 'client-has' | 'limit' | 'closed';

/** How many pushes of one kind had one outcome; `cancelled`: the client reset a sent push. */
export interface PushCount {
  kind: string;
  outcome: PushOutcome | 'cancelled';
  count: number;
}

/** HTTP/2 push since the origin started, for metrics. */
export interface ServerPushStats {
  /** Pushes asked for, one row per kind (manifest, next-segment, channel, vod) and outcome seen. */
  pushes: PushCount[];
  /** Body bytes written on pushed streams, by kind. */
  bytesByKind: Record<string, number>;
}

/** Push outcomes and pushed bytes by kind; kinds are the origin's own labels. */
class PushCounts {
  private readonly outcomes = new Map<string, PushCount>();
  private readonly bytes = new Map<string, number>();

  outcome(kind: string, outcome: PushCount['outcome']): void {
    const key = `${kind} ${outcome}`;
    const row = this.outcomes.get(key);
    if (row) row.count++;
    else this.outcomes.set(key, { kind, outcome, count: 1 });
  }

  written(kind: string, n: number): void {
    this.bytes.set(kind, (this.bytes.get(kind) ?? 0) + n);
  }

  stats(): ServerPushStats {
    return {
      pushes: [...this.outcomes.values()].map((row) => ({ ...row })),
      bytesByKind: Object.fromEntries(this.bytes),
    };
  }
}

/** What one connection has been pushed and what its client says it holds; bounded. */
class ConnectionPushState {
  readonly pushed = new BoundedSet(4096);
  readonly clientHas = new BoundedSet(4096);
  active = 0;
  bytesInFlight = 0;
}

/** A set that forgets its oldest members beyond `limit`: per-connection memory must stay bounded. */
export class BoundedSet {
  private readonly items = new Set<string>();
  constructor(readonly limit: number) {}
  has(key: string): boolean {
    return this.items.has(key);
  }
  add(key: string): void {
    this.items.delete(key);
    this.items.add(key);
    if (this.items.size > this.limit) this.items.delete(this.items.values().next().value!);
  }
  get size(): number {
    return this.items.size;
  }
}

/** Request header in which a client lists the paths it already holds, so that the origin does not push them. */
export const CACHED_HEADER = 'pushcast-cached';
const CACHED_HEADER_MAX = 8192;
const CACHED_ENTRIES_MAX = 128;

/**
 * HTTP/2 server push (RFC 9113 §8.4) for the origin: one PUSH_PROMISE per resource on the request's stream,
 * then the pushed response on the promised stream. Never pushes what the connection already received or
 * what the client says it has, stops when the client disabled push (SETTINGS_ENABLE_PUSH = 0, §6.5.2),
 * stops a push the client resets (RST_STREAM), and bounds pushes and bytes in flight per connection.
 */
export class ServerPush {
  private readonly sessions = new WeakMap<Http2Session, ConnectionPushState>();
  private readonly counts = new PushCounts();

  constructor(readonly policy: PushPolicy) {}

  /** Push outcomes and pushed bytes, by kind, since the start. */
  stats(): ServerPushStats {
    return this.counts.stats();
  }

  private state(session: Http2Session): ConnectionPushState {
    let s = this.sessions.get(session);
    if (!s) this.sessions.set(session, (s = new ConnectionPushState()));
    return s;
  }

  /** Takes note of what the client of `req` says it holds (header `pushcast-cached: /a, /b`). */
  noteClientCache(req: Http2ServerRequest): void {
    const header = req.headers[CACHED_HEADER];
    if (typeof header !== 'string' || header.length > CACHED_HEADER_MAX || !req.stream?.session) return;
    const state = this.state(req.stream.session);
    for (const path of header.split(',').slice(0, CACHED_ENTRIES_MAX)) {
      const p = path.trim();
      if (p.startsWith('/')) state.clientHas.add(p);
    }
  }

  /** Whether a push on `req`'s connection could happen at all (HTTP/2, push enabled, stream open). */
  canPush(req: Http2ServerRequest | { httpVersion: string }): req is Http2ServerRequest {
    if (req.httpVersion !== '2.0') return false;
    const stream = (req as Http2ServerRequest).stream;
    return !!stream && !stream.destroyed && stream.pushAllowed;
  }

  /**
   * Pushes `resource` on the stream of `req`; `kind` labels its counts (manifest, next-segment, channel, vod).
   * The PUSH_PROMISE goes out at once (it must precede the response that makes the client want the
   * resource, RFC 9113 §8.4), but with `afterResponse` the pushed body waits until the response to `req`
   * has been sent: a client should not wait for the MPD behind the segments it announces.
   */
  push(
    req: Http2ServerRequest | { httpVersion: string },
    resource: PushResource,
    kind: string,
    afterResponse = true,
  ): PushOutcome {
    const outcome = this.tryPush(req, resource, kind, afterResponse);
    this.counts.outcome(kind, outcome);
    return outcome;
  }

  private tryPush(
    req: Http2ServerRequest | { httpVersion: string },
    resource: PushResource,
    kind: string,
    afterResponse: boolean,
  ): PushOutcome {
    if (req.httpVersion !== '2.0') return 'not-h2';
    const stream = (req as Http2ServerRequest).stream;
    if (!stream || stream.destroyed || stream.closed) return 'closed';
    if (!stream.pushAllowed) return 'disabled';
    const state = this.state(stream.session!);
    const range = resource.requestHeaders?.range;
    const key = range ? `${resource.path} ${range}` : resource.path;
    if (state.pushed.has(key)) return 'duplicate';
    if (state.clientHas.has(resource.path)) return 'client-has';
    const size =
      resource.body instanceof Uint8Array
        ? resource.body.byteLength
        : resource.body.parts.reduce((n, p) => n + p.byteLength, 0);
    if (state.active >= this.policy.maxConcurrentPushes || state.bytesInFlight + size > this.policy.maxBytesInFlight)
      return 'limit';

    const authority =
      (req as Http2ServerRequest).headers[':authority'] ?? (req as Http2ServerRequest).headers.host ?? 'localhost';
    const scheme = (req as Http2ServerRequest).headers[':scheme'] ?? 'https';
    const promised: OutgoingHttpHeaders = {
      [h2.HTTP2_HEADER_METHOD]: 'GET',
      [h2.HTTP2_HEADER_PATH]: resource.path,
      [h2.HTTP2_HEADER_AUTHORITY]: authority,
      [h2.HTTP2_HEADER_SCHEME]: scheme,
      ...resource.requestHeaders,
    };
    state.pushed.add(key);
    state.active++;
    state.bytesInFlight += size;
    const push = new PushedResponse(resource, kind, state, size, afterResponse ? stream : undefined, this.counts);
    try {
      stream.pushStream(promised, (err, pushed) => (err ? push.abandon() : push.attach(pushed)));
    } catch {
      // The parent stream closed between the checks and the promise (ERR_HTTP2_INVALID_STREAM and kin).
      push.abandon();
      return 'closed';
    }
    return 'sent';
  }
}

/**
 * One pushed response, from its PUSH_PROMISE to the end of its stream. A growing body is followed from the
 * moment of the promise, because the promised stream only opens a tick later and a chunk may arrive between.
 */
class PushedResponse {
  private stream?: ServerHttp2Stream;
  /** Body parts waiting for the pushed stream to open, or for the parent response to be sent. */
  private readonly early: Uint8Array[] = [];
  private flowing = false;
  private ended = false;
  private finished = false;
  private readonly unfollow: () => void = () => {};

  constructor(
    private readonly resource: PushResource,
    private readonly kind: string,
    private readonly state: ConnectionPushState,
    private reserved: number,
    /** The stream whose response must be sent before this push's body, if any. */
    private readonly parent: ServerHttp2Stream | undefined,
    private readonly counts: PushCounts,
  ) {
    const body = resource.body;
    if (body instanceof Uint8Array) {
      this.early.push(body);
      this.ended = true;
    } else {
      this.early.push(...body.parts);
      this.unfollow = body.follow(
        (part) => {
          this.reserved += part.byteLength;
          this.state.bytesInFlight += part.byteLength;
          this.write(part);
        },
        () => {
          this.ended = true;
          if (this.stream && this.flowing && !this.stream.destroyed) this.stream.end();
        },
      );
    }
  }

  attach(pushed: ServerHttp2Stream): void {
    this.stream = pushed;
    pushed.on('close', () => {
      this.finish();
      // RST_STREAM from the client (CANCEL or REFUSED_STREAM): it did not want this resource.
      if (pushed.rstCode !== undefined && pushed.rstCode !== h2.NGHTTP2_NO_ERROR)
        this.counts.outcome(this.kind, 'cancelled');
    });
    pushed.on('error', () => {});
    pushed.respond({ [h2.HTTP2_HEADER_STATUS]: this.resource.status, ...lowerCase(this.resource.headers) });
    const flow = () => {
      if (this.flowing) return;
      this.flowing = true;
      for (const part of this.early.splice(0)) this.write(part);
      if (this.ended && !pushed.destroyed) pushed.end();
    };
    // 'close', not 'finish': 'finish' means the response was handed to the session, where nghttp2 would
    // interleave it with the pushed DATA; 'close' comes once its last frame has gone out.
    const parent = this.parent;
    if (!parent || parent.closed || parent.destroyed) return flow();
    parent.once('close', flow);
  }

  abandon(): void {
    this.finish();
  }

  private write(part: Uint8Array): void {
    if (!this.stream || !this.flowing) {
      this.early.push(part);
      return;
    }
    if (this.stream.destroyed) return;
    this.stream.write(part);
    this.counts.written(this.kind, part.byteLength);
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.unfollow();
    this.state.active--;
    this.state.bytesInFlight -= this.reserved;
  }
}

/** HTTP/2 field names are lower case (RFC 9113 §8.2.1); origin code writes them as HTTP/1.1 does. */
function lowerCase(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
}
