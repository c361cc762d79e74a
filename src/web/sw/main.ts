/**
 * The multicast Service Worker (WHP 336 §4.3 to §5.3). It may control any page of the origin (it is
 * served at `/player/sw.js` with `Service-Worker-Allowed: /`, and at `/multicast/sw.js` for the
 * `/multicast/` page) and acts only on requests marked for multicast (`?delivery=multicast`,
 * src/media/live/url-scheme.ts): a player in the same page that asks without the marker, plain DASH
 * beside a multicast player, goes straight to the network, untouched. For marked requests it turns the
 * player's ordinary segment requests into multicast deliveries:
 *
 * 1. A marked MPD request: the MPD is fetched without the marker, each representation probed with a HEAD
 *    for its init segment to read the origin's `Alt-Svc` multicast advertisement (src/wire/alt-svc.ts). The
 *    SegmentTemplate is rewritten so that the player's init and segment requests carry the marker too; if
 *    any representation is advertised, the MPD also opens a reception window (mpd-window.ts) and is kept
 *    in Cache Storage.
 * 2. A marked segment request of an advertised representation opens (or keeps) that representation's
 *    WebSocket to the gateway; representations the player stops asking for are dropped after they go idle,
 *    so the pool follows ABR switches. Packets go into a `MulticastReassembler`, verified with the origin's
 *    keys (from this Service Worker's own origin, which it trusts as it trusts its own code).
 * 3. Each verified push is stored in Cache Storage under its URL (bounded per representation to the
 *    time-shift window). A push that fails is repaired at once with range requests for exactly the
 *    missing bytes (src/push/repair.ts), or fetched whole.
 * 4. The player's request is answered from the cache; if the push is under way it waits for it (bounded);
 *    anything else goes to the network: unicast always works. A session that pushes segments chunk by
 *    chunk (Alt-Svc `chunks=1`) answers a request for a segment still growing at once, with a streaming
 *    response whose body releases each chunk once verified; a packet lost meanwhile is fetched by range
 *    while the segment grows. Its MPD keeps its low-latency attributes and moves by a short window only. A failing gateway, WebSocket or advertisement
 *    only means unicast until it comes back (reconnection with backoff).
 * 5. Whatever reaches the network, Cache Storage keys and the statistics' URLs are the unmarked URLs: a
 *    marked and an unmarked player share the origin's, the CDN's and this cache's entries.
 * 6. The page can turn multicast off and on (`postMessage({ type: 'multicast', enabled })`: off, no
 *    session is opened and marked requests go to the network) and asks for the statistics
 *    (`{ type: 'stats' }` with a MessagePort).
 */
/// <reference lib="webworker" />
import {
  FEC_REORDER_MS,
  FecDecoder,
  MulticastReassembler,
  PushSignatureVerifier,
  RESOURCE_PUSH,
  rangeFetcher,
  repairPush,
  type ResourcePushEvent,
} from '../../push/index.js';
import { multicastAdvertisement, type MulticastAdvertisement } from '../../wire/alt-svc.js';
import { concatBytes } from '../../wire/bytes.js';
import { fromHex } from '../../wire/encoding.js';
import {
  MULTICAST_KEYS_PATH,
  initPath,
  isMulticastMarked,
  parseLivePath,
  unmarkMulticast,
} from '../../media/live/url-scheme.js';
import { markSegmentTemplate, openReceptionWindow, readTemplate } from './mpd-window.js';
import type { MulticastSegmentRecord, MulticastStats, SessionStats } from './stats.js';

declare const self: ServiceWorkerGlobalScope;

const PUSH_CACHE = 'pushcast-multicast-v1';
/** How long a request waits for a push that is promised or expected; then unicast. */
const PUSH_WAIT_MS = 2500;
/** Requests of one growing push whose records are corrected if it turns out repaired (a player asks once or twice). */
const MAX_RECORDS_PER_DELIVERY = 8;
/** How long a request for the next segment waits for its promise before going to unicast. */
const PROMISE_WAIT_MS = 1200;
const RECENT_RECORDS = 40;
const MAX_WAITERS = 256;
const MAX_DELIVERIES = 512;
/** The reception window of sessions that push chunk by chunk, seconds (see receptionWindow). */
const PROGRESSIVE_WINDOW_S = 0.2;

interface Session {
  rep: string;
  ad: MulticastAdvertisement;
  url: string;
  ws?: WebSocket;
  reassembler: MulticastReassembler;
  state: SessionStats['state'];
  lastUsed: number;
  retry: number;
  retryTimer?: ReturnType<typeof setTimeout>;
  packets: number;
  /** Cached URLs in arrival order, for the per-representation bound. */
  cached: string[];
  /** The newest media segment number promised in this session. */
  newestPromised?: number;
  /** Forward error correction (Alt-Svc `fec`): repair packets recover lost ones before the reassembler. */
  fec?: FecDecoder;
}

interface Delivery {
  promise: Promise<Response | undefined>;
  settled: boolean;
  /** A progressive push's response while its body still arrives: each request gets a clone. */
  live?: Response;
  route?: MulticastSegmentRecord['route'];
  repairBytes: number;
  arrivedAt?: number;
  /** What requests served from it recorded, corrected if a growing push turns out repaired. */
  records: MulticastSegmentRecord[];
}

let enabled = true;
let segmentDuration = 2;
let maxCachedPerRep = 32;
let verifier: Promise<PushSignatureVerifier | undefined> | undefined;
const advertised = new Map<string, { ad: MulticastAdvertisement; base: string }>();
const sessions = new Map<string, Session>();
const deliveries = new Map<string, Delivery>();
const waiters = new Map<string, (() => void)[]>();
const counts = { push: 0, repaired: 0, unicast: 0, repairBytes: 0, refusedSessions: 0, pushBytes: 0, unicastBytes: 0 };
const records: MulticastSegmentRecord[] = [];
const failures: string[] = [];

async function readAll(body: ReadableStream<Uint8Array>): Promise<Uint8Array<ArrayBuffer>> {
  const parts: Uint8Array[] = [];
  const reader = body.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) parts.push(r.value);
  return concatBytes(parts);
}

function failed(url: string, error: unknown): void {
  failures.unshift(
    `${new Date().toISOString().slice(11, 23)} ${new URL(url).pathname}: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
  );
  failures.length = Math.min(failures.length, 10);
}

self.addEventListener('install', () => void self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('message', (event) => {
  const data = event.data as { type?: string; enabled?: boolean } | undefined;
  if (data?.type === 'multicast' && typeof data.enabled === 'boolean') {
    enabled = data.enabled;
    if (!enabled) for (const s of sessions.values()) closeSession(s);
  }
  if (data?.type === 'stats') event.ports[0]?.postMessage(stats());
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  // Unmarked requests are never touched, not even passed through respondWith: the browser fetches them.
  if (request.method !== 'GET' || !isMulticastMarked(request.url)) return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  const unmarked = unmarkMulticast(request.url);
  // Whatever goes wrong in here, the request still goes to the network: unicast always works.
  const safely = (work: Promise<Response>) =>
    event.respondWith(work.catch(() => fetch(networkRequest(request, unmarked))));
  if (url.pathname.endsWith('.mpd')) return safely(manifest(unmarked));
  const resource = parseLivePath(url.pathname);
  if (!resource) return;
  if (advertised.has(resource.trackId))
    return safely(
      segment(request, unmarked, resource.trackId, resource.kind === 'segment' ? resource.number : undefined),
    );
  // Not advertised (or multicast never on): unicast, without the marker, so it meets the CDN's entry.
  safely(fetch(networkRequest(request, unmarked)));
});

/** The player's request as it goes to the network: without the marker, so that it meets every cache. */
function networkRequest(request: Request, unmarked: string): Request {
  return new Request(unmarked, {
    headers: request.headers,
    credentials: request.credentials,
    redirect: request.redirect,
    signal: request.signal,
  });
}

// ---------------------------------------------------------------------------------------------------
// MPD

/**
 * The MPD for a marked request, fetched from `url` (unmarked). Its segment URLs are marked whether or not
 * multicast is on and anything is advertised: the player's segment URLs stay the same from one MPD update
 * to the next, and marked requests of representations without a session simply go to the network.
 */
async function manifest(url: string): Promise<Response> {
  const response = await fetch(url, { cache: 'no-store' });
  if (response.status !== 200) return response;
  const text = await response.text();
  const template = readTemplate(text);
  if (!template) return new Response(text, { status: 200, headers: mpdHeaders(response.headers) });
  const marked = markSegmentTemplate(text);
  if (!enabled) return new Response(marked, { status: 200, headers: mpdHeaders(response.headers) });
  segmentDuration = template.segmentDuration;
  const depth = /timeShiftBufferDepth="PT(\d+(?:\.\d+)?)S"/.exec(text);
  maxCachedPerRep = Math.min(64, Math.max(4, Math.ceil((depth ? Number(depth[1]) : 60) / segmentDuration)));
  // Probe each representation's advertisement (WHP 336 §5.2: a HEAD for a segment of it).
  await Promise.all(
    template.representations.map(async (rep) => {
      const probe = new URL(initPath(rep), url);
      try {
        const head = await fetch(probe, { method: 'HEAD', cache: 'no-store' });
        const value = head.headers.get('alt-svc');
        const ad = value ? multicastAdvertisement(value) : undefined;
        if (ad?.gateway) advertised.set(rep, { ad, base: probe.href });
        else advertised.delete(rep);
      } catch {
        advertised.delete(rep); // no advertisement: this representation stays unicast
      }
    }),
  );
  if (advertised.size === 0) return new Response(marked, { status: 200, headers: mpdHeaders(response.headers) });
  const rewritten = openReceptionWindow(marked, receptionWindow(), { lowLatency: progressiveOnly() });
  const out = new Response(rewritten, {
    status: 200,
    headers: { 'content-type': 'application/dash+xml', 'cache-control': 'no-store' },
  });
  void caches
    .open(PUSH_CACHE)
    .then((cache) => cache.put(new URL('/.pushcast/multicast.mpd', self.location.origin).href, out.clone()));
  return out;
}

/** The origin's MPD headers for a rewritten body: its length and encoding are no longer the origin's. */
function mpdHeaders(from: Headers): Headers {
  const headers = new Headers(from);
  headers.delete('content-length');
  headers.delete('content-encoding');
  return headers;
}

/**
 * How much later than the origin's timeline the player asks for segments. Whole pushes: time to push (the
 * sender paces a segment over about half its duration), verify and repair a segment. Chunk by chunk:
 * only the time to notice a lost packet and fetch its bytes (progressive-body.ts: at most 150 ms, then a
 * round trip), as the segment is answered while it grows.
 */
function receptionWindow(): number {
  return progressiveOnly() ? PROGRESSIVE_WINDOW_S : segmentDuration + 0.5;
}

function progressiveOnly(): boolean {
  return advertised.size > 0 && [...advertised.values()].every((a) => a.ad.progressive);
}

// ---------------------------------------------------------------------------------------------------
// Sessions

function keys(): Promise<PushSignatureVerifier | undefined> {
  verifier ??= fetch(MULTICAST_KEYS_PATH, { cache: 'no-store' })
    .then(async (r) => (r.status === 200 ? PushSignatureVerifier.fromJwks(await r.json()) : undefined))
    .catch(() => undefined);
  return verifier;
}

function gatewayUrl(ad: MulticastAdvertisement, base: string): string {
  const url = new URL(ad.gateway!, base);
  if (url.protocol === 'https:') url.protocol = 'wss:';
  else if (url.protocol === 'http:') url.protocol = 'ws:';
  url.search = new URLSearchParams({
    group: ad.group,
    port: String(ad.port),
    ...(ad.source ? { source: ad.source } : {}),
    'session-id': ad.sessionId,
    ...(ad.fec ? { fec: '1' } : {}),
  }).toString();
  return url.href;
}

async function session(rep: string): Promise<Session | undefined> {
  const found = advertised.get(rep);
  if (!found || !enabled) return undefined;
  let s = sessions.get(rep);
  if (s && s.ad.sessionId !== found.ad.sessionId) {
    closeSession(s);
    s = undefined;
  }
  if (!s) {
    const v = await keys();
    if (!v) {
      counts.refusedSessions++;
      return undefined; // no keys: nothing pushed could be trusted
    }
    const sessionId = fromHex(found.ad.sessionId);
    const reassembler = new MulticastReassembler({
      sessionId,
      verifier: v,
      // Whole pushes: the time to push one; chunk by chunk: the longest wait for the next chunk.
      timeoutMs: Math.round(segmentDuration * 1000),
      // With FEC, a hole waits for the block's repair packets before it is fetched.
      reorderMs: found.ad.fec ? FEC_REORDER_MS : undefined,
      repair: async (request, range) => {
        const bytes = await fetchRange(request, range);
        counts.repairBytes += bytes.byteLength;
        const delivery = deliveries.get(servedUrl(request.url));
        if (delivery) delivery.repairBytes += bytes.byteLength;
        return bytes;
      },
    });
    s = {
      rep,
      ad: found.ad,
      url: gatewayUrl(found.ad, found.base),
      reassembler,
      state: 'connecting',
      lastUsed: Date.now(),
      retry: 0,
      packets: 0,
      cached: [],
      fec: found.ad.fec ? new FecDecoder({ sessionId, output: (d) => reassembler.enqueuePacket(d) }) : undefined,
    };
    sessions.set(rep, s);
    reassembler.addEventListener(RESOURCE_PUSH, (e) => onPush(s!, e as ResourcePushEvent));
    connect(s);
  }
  s.lastUsed = Date.now();
  if (s.state === 'closed' && s.retryTimer === undefined) connect(s);
  return s;
}

function connect(s: Session): void {
  s.retryTimer = undefined;
  if (!enabled || sessions.get(s.rep) !== s) return;
  s.state = 'connecting';
  const ws = new WebSocket(s.url);
  ws.binaryType = 'arraybuffer';
  s.ws = ws;
  ws.onopen = () => {
    s.state = 'open';
    s.retry = 0;
  };
  ws.onmessage = (event) => {
    s.packets++;
    if (event.data instanceof ArrayBuffer) {
      counts.pushBytes += event.data.byteLength;
      if (s.fec) s.fec.enqueue(new Uint8Array(event.data));
      else s.reassembler.enqueuePacket(new Uint8Array(event.data));
    }
  };
  ws.onclose = () => {
    if (s.ws !== ws) return;
    s.ws = undefined;
    s.state = 'closed';
    // Unicast meanwhile; try again with backoff while the player still uses this representation.
    if (enabled && sessions.get(s.rep) === s && Date.now() - s.lastUsed < 4 * segmentDuration * 1000) {
      const delay = Math.min(10_000, 500 * 2 ** s.retry++);
      s.retryTimer = setTimeout(() => connect(s), delay);
    }
  };
}

function closeSession(s: Session): void {
  sessions.delete(s.rep);
  if (s.retryTimer !== undefined) clearTimeout(s.retryTimer);
  s.state = 'closed';
  s.ws?.close(1000, 'not used');
  s.ws = undefined;
}

// Representations the player stopped using (an ABR switch) are dropped once idle.
setInterval(() => {
  for (const s of sessions.values()) if (Date.now() - s.lastUsed > 3 * segmentDuration * 1000) closeSession(s);
}, 1000);

/** A pushed URL as this origin serves it. */
const servedUrl = (url: string) => url.replace(/^[a-z]+:\/\/[^/]+/, self.location.origin);

/** Exactly the missing bytes of a growing push, from this origin. */
const fetchRange = rangeFetcher(
  (u, init) => fetch(u, { ...init, cache: 'no-store' }),
  (request) => servedUrl(request.url),
);

function onPush(s: Session, event: ResourcePushEvent): void {
  const url = servedUrl(event.request.url);
  const path = new URL(url).pathname;
  const resource = parseLivePath(path);
  if (!resource || deliveries.get(url)?.settled === false) return;
  if (resource.kind === 'segment') s.newestPromised = Math.max(s.newestPromised ?? -1, resource.number);
  const delivery: Delivery = { settled: false, repairBytes: 0, records: [], promise: Promise.resolve(undefined) };
  delivery.promise = (async () => {
    let response: Response;
    try {
      response = await event.response;
      delivery.route = 'push';
    } catch (error) {
      failed(url, error);
      try {
        const repaired = await repairPush(url, error, {
          fetch: (u, init) => fetch(u, { ...init, cache: 'no-store' }),
          verifier: await keys(),
        });
        response = repaired.response;
        delivery.route = repaired.route === 'repaired' ? 'repaired' : 'unicast';
        delivery.repairBytes = repaired.unicastBytes;
        counts.repairBytes += repaired.unicastBytes;
      } catch {
        return undefined;
      }
    }
    delivery.arrivedAt = Date.now();
    const cache = await caches.open(PUSH_CACHE);
    const store = async () => {
      // Read here, by a reader, rather than by Cache.put or arrayBuffer(), which report any failure of the
      // body as a bare "Failed to fetch": a reader sees the body's own error.
      const whole = response.headers.has('content-length')
        ? response.clone()
        : new Response(await readAll(response.clone().body!), { status: response.status, headers: response.headers });
      await cache.put(url, whole);
      if (resource.kind !== 'init') s.cached.push(url); // one init per representation, replaced in place
      while (s.cached.length > maxCachedPerRep) {
        const old = s.cached.shift()!;
        void cache.delete(old);
        deliveries.delete(old);
      }
    };
    if (response.headers.has('content-length')) {
      await store();
      return response;
    }
    // Still growing: requests get clones of it until it is whole in the cache. A body that fails (a repair
    // that could not be made) leaves no entry: the player's retry goes to the network.
    delivery.live = response;
    store().then(
      () => {
        delivery.live = undefined;
        // Completed with ranges fetched while it grew: what was already recorded as pushed was repaired.
        if (delivery.repairBytes === 0 || delivery.route !== 'push') return;
        delivery.route = 'repaired';
        for (const r of delivery.records) {
          counts.push--;
          counts.repaired++;
          r.route = 'repaired';
          r.repairBytes = delivery.repairBytes;
        }
      },
      (error: unknown) => {
        failed(url, error);
        delivery.live = undefined;
        delivery.route = undefined;
      },
    );
    return response;
  })().finally(() => (delivery.settled = true));
  deliveries.set(url, delivery);
  // Bounded: deliveries leave with their cache entry, and failed ones (nothing cached) age out here.
  while (deliveries.size > MAX_DELIVERIES) deliveries.delete(deliveries.keys().next().value!);
  for (const wake of waiters.get(url) ?? []) wake();
  waiters.delete(url);
}

// ---------------------------------------------------------------------------------------------------
// Segment requests

/** A marked segment request of an advertised representation; `key` is its unmarked URL. */
async function segment(request: Request, key: string, rep: string, number: number | undefined): Promise<Response> {
  const requestedAt = Date.now();
  const s = await session(rep).catch(() => undefined);
  let delivery = deliveries.get(key);
  // A segment after the newest promised may not be promised yet: wait a little for its promise. One at or
  // before it was promised before this session joined (or its promise was lost), and an init segment is
  // pushed only before a media segment: those go to the network at once.
  const coming = number !== undefined && s?.newestPromised !== undefined && number > s.newestPromised;
  if (!delivery && coming && s?.state === 'open' && waiters.size < MAX_WAITERS) {
    await new Promise<void>((resolve) => {
      const list = waiters.get(key) ?? [];
      list.push(resolve);
      waiters.set(key, list);
      setTimeout(resolve, PROMISE_WAIT_MS);
    });
    delivery = deliveries.get(key);
  }
  if (delivery) {
    const response = await Promise.race([
      delivery.promise,
      new Promise<undefined>((r) => setTimeout(() => r(undefined), PUSH_WAIT_MS)),
    ]);
    const live = delivery.live;
    if (response && live && delivery.route) {
      const r = record(key, rep, delivery.route, delivery.repairBytes, requestedAt, delivery.arrivedAt);
      if (r && delivery.records.length < MAX_RECORDS_PER_DELIVERY) delivery.records.push(r);
      return continued(live.clone(), key);
    }
    const cached = response ? await (await caches.open(PUSH_CACHE)).match(key) : undefined;
    if (cached && delivery.route) {
      record(key, rep, delivery.route, delivery.repairBytes, requestedAt, delivery.arrivedAt);
      return cached;
    }
  }
  const response = await fetch(networkRequest(request, key));
  counts.unicastBytes += Number(response.headers.get('content-length') ?? 0) || 0;
  record(key, rep, 'unicast', 0, requestedAt, undefined);
  return response;
}

/**
 * A growing push as the player gets it: should the push fail part way (its repair could not be made, or
 * its end never came), the rest comes from the origin, from the first byte the player has not had
 * (`Range: bytes=n-`, RFC 9110 §14.2), so that the player sees one whole response and no error.
 */
function continued(live: Response, url: string): Response {
  const source = live.body!.getReader();
  let delivered = 0;
  let rest: ReadableStreamDefaultReader<Uint8Array> | undefined;
  const body = new ReadableStream<Uint8Array>({
    pull: async (controller) => {
      if (!rest) {
        try {
          const r = await source.read();
          if (r.done) return controller.close();
          delivered += r.value.length;
          return controller.enqueue(r.value);
        } catch (error) {
          try {
            rest = await restFrom(url, delivered);
          } catch (fallback) {
            failed(url, fallback);
            return controller.error(error);
          }
        }
      }
      const r = await rest.read();
      if (r.done) return controller.close();
      counts.repairBytes += r.value.length;
      controller.enqueue(r.value);
    },
    cancel: (reason) => void (rest ?? source).cancel(reason).catch(() => undefined),
  });
  return new Response(body, { status: live.status, headers: live.headers });
}

/** The bytes of `url` from `offset` on, from the origin. */
async function restFrom(url: string, offset: number): Promise<ReadableStreamDefaultReader<Uint8Array>> {
  const response = await fetch(url, { headers: { range: `bytes=${offset}-` }, cache: 'no-store' });
  const range = response.headers.get('content-range') ?? '';
  // Every byte was had already; only the push's end was missing.
  if (response.status === 416 && range === `bytes */${offset}`)
    return new ReadableStream<Uint8Array>({ start: (c) => c.close() }).getReader();
  if (response.status !== 206 || !range.startsWith(`bytes ${offset}-`))
    throw new Error(`${url}: the rest from byte ${offset} answered ${response.status} ${range}`);
  return response.body!.getReader();
}

function record(
  url: string,
  rep: string,
  route: MulticastSegmentRecord['route'],
  repairBytes: number,
  requestedAt: number,
  arrivedAt: number | undefined,
): MulticastSegmentRecord | undefined {
  if (url.endsWith('init.mp4')) return undefined;
  counts[route]++;
  const r: MulticastSegmentRecord = {
    url,
    representation: rep,
    route,
    repairBytes,
    requestedAt,
    arrivedAt: arrivedAt ?? null,
  };
  records.unshift(r);
  records.length = Math.min(records.length, RECENT_RECORDS);
  return r;
}

function stats(): MulticastStats {
  return {
    enabled,
    advertised: [...advertised.keys()],
    receptionWindow: receptionWindow(),
    segments: { push: counts.push, repaired: counts.repaired, unicast: counts.unicast },
    // Whole pushes repaired after they failed, and growing ones repaired by range as they arrived.
    repairBytes: counts.repairBytes,
    bytes: { push: counts.pushBytes, unicast: counts.unicastBytes },
    sessions: [...sessions.values()].map((s) => {
      const r = s.reassembler.stats;
      return {
        representation: s.rep,
        state: s.state,
        packets: s.packets,
        lost: r.lost,
        forged: r.forged,
        pushesCompleted: r.pushesCompleted,
        pushesFailed: r.pushesFailed,
        repairedBytes: r.repairedBytes,
        requestStreamSkips: r.requestStreamSkips,
      };
    }),
    cachedEntries: [...sessions.values()].reduce((n, s) => n + s.cached.length, 0),
    recent: records.slice(),
    failures: failures.slice(),
  };
}
