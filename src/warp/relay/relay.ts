/**
 * A Warp relay (draft-lcurley-warp-00 §2.3, §4.5): one subscription upstream per broadcast, fanned out
 * to any number of downstream sessions. Relays chain: origin → relay → relay → viewers.
 *
 * - **Upstream** (`RelayUpstream`): one session, reconnected after a loss, moved on GOAWAY.
 * - **Upstream streams** (`UpstreamStreamReader`): each stream's HEADERS are parsed, its bytes validated
 *   and passed on cut-through; control streams and the catalog are read here.
 * - **Relayed streams** (`RelayedStreams`): dedup by ID, a second copy's takeover, upstream streams at once.
 * - **Cache** (`RelayCache`): the catalog, the inits and each track's newest segments, for late joiners.
 * - **Downstream** (`WarpFanout`, shared with the origin's `WarpServer`): the route `/warp/<broadcast>`
 *   with the relay's own tokens (401/403), a `WarpSender` per session (strict priority by delivery order
 *   and a resource limit per subscriber, §4.3, §4.4, §6.1: a stalled subscriber has its lowest-priority
 *   streams reset and nobody else notices). A session gets the catalog, the inits and the cached newest
 *   GoP at once, then every new stream.
 * - **Order rewrite** (§4.5, `reorder`, src/warp/relay/reorder.ts). Media that arrives before the catalog
 *   is held until it comes (it is what the order depends on), at most `maxHeldForCatalog` streams.
 *   A session may ask for its own order (`order=`, §2.2, among `ordersAllowed`): its streams are
 *   rewritten the same way and its catalog names that order (before the catalog, orders pass unchanged).
 * - **Catalog changes** (a rendition added or removed upstream): the new catalog goes to every session
 *   (a stream with the catalog's ID again), and a session joining later gets only the inits and cached
 *   segments of the tracks it lists.
 * - **End of the broadcast** (§4.7): the upstream's close with code 0 is passed on to every session with
 *   code 0; nothing reconnects, new sessions are refused (404), and `ended` resolves. `close()` (the relay
 *   stops, the broadcast goes on) closes sessions with pushcast's code 2 instead, so that a relay
 *   downstream reconnects rather than ending the broadcast.
 * - **Renditions**: the relay subscribes to every track (`tracks=*`, unless the upstream URL names some),
 *   and each subscriber gets the tracks it chose (`tracks=`, default the best video rendition and every
 *   audio track) and switches with SELECT as at the origin (src/warp/select.ts): from the segment number
 *   after the newest one seen, the new rendition's init sent at once. One subscription upstream serves
 *   every subscriber's rendition, and a switch waits for nothing upstream.
 */
import type {
  Session,
  SessionCloseInfo,
  SessionRefusal,
  SessionRequest,
  SessionRoute,
} from '../../webtransport/index.js';
import { WarpCloseCode, encodeWarpMessage, type WarpHeaders } from '../../wire/index.js';
import { parseCatalog, type WarpCatalog } from '../catalog.js';
import { WarpFanout, type WarpDrainReport, type WarpFanoutOptions } from '../fanout.js';
import { isOrderPolicy, type WarpOrderPolicy } from '../order.js';
import type { BroadcastFeed } from '../feed.js';
import { WARP_PATH, parseWarpPath } from '../path.js';
import { segmentPayloads } from '../segment-payloads.js';
import { TrackSelection } from '../select.js';
import { ALL_TRACKS, defaultTracks } from '../server.js';
import { GrowingSource, type WarpSource } from '../source.js';
import { RelayCache, type RelayCacheOptions } from './cache.js';
import type { Relayed } from './relayed.js';
import { RelayedStreams, type RelayedStreamsOptions } from './relayed-streams.js';
import { forwardedCatalog, relayOrder } from './reorder.js';
import { relayStreamCounters, type WarpRelayStats } from './stats.js';
import { RelayUpstream, type RelayUpstreamOptions } from './upstream.js';
import { UpstreamStreamReader, type UpstreamStreamContext } from './upstream-stream.js';

export interface WarpRelayOptions
  extends WarpFanoutOptions,
    RelayUpstreamOptions,
    RelayCacheOptions,
    RelayedStreamsOptions {
  /** The upstream broadcast: an origin's or another relay's Warp URL, e.g. https://origin:8443/warp/live?token=… */
  upstream: string;
  /** Rewrite delivery orders with this policy (§4.5); default: orders pass unchanged. */
  reorder?: WarpOrderPolicy;
  /** With `reorder`: media streams that came before the catalog, held until it comes. Default 256. */
  maxHeldForCatalog?: number;
}

/** A subscriber's tracks: known once the upstream catalog is (until then everything goes to it). */
interface Subscriber {
  selection: TrackSelection | undefined;
  /** What the session asked for: `tracks=` (or `*`), else the default. */
  tracks: string[] | undefined;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

export class WarpRelay implements SessionRoute {
  readonly broadcast: string;
  private readonly counters = relayStreamCounters();
  private readonly upstream: RelayUpstream;
  private readonly reader: UpstreamStreamReader;
  private readonly streams: RelayedStreams;
  private readonly cache: RelayCache;
  private readonly fanout: WarpFanout<Subscriber>;
  /** The newest segment number relayed: a subscriber's switch is made after it. */
  private newestSegment: number | undefined;
  private upstreamCatalog: { payload: Uint8Array; catalog: WarpCatalog } | undefined;
  /** Media that came before the catalog, with `reorder` (see `holdingMedia`). */
  private readonly heldForCatalog: GrowingSource[] = [];
  private readonly feedListeners = new Set<(source: WarpSource) => void>();
  private readonly catalogListeners = new Set<() => void>();
  private closed = false;
  /** The upstream ended the broadcast (§4.7). */
  private over: SessionCloseInfo | undefined;
  private resolveEnded!: (info: SessionCloseInfo) => void;
  /** Resolves when the upstream has ended the broadcast and every session here was told (code 0). */
  readonly ended = new Promise<SessionCloseInfo>((resolve) => (this.resolveEnded = resolve));

  constructor(private readonly o: WarpRelayOptions) {
    const u = new URL(o.upstream);
    if (u.protocol !== 'https:') throw new Error(`the upstream must be an https:// Warp URL: ${o.upstream}`);
    const target = parseWarpPath(`${u.pathname}${u.search}`);
    if (!target) throw new Error(`the upstream URL's path must be ${WARP_PATH}/<broadcast>: ${o.upstream}`);
    this.broadcast = target.broadcast;
    if (!u.searchParams.has('tracks')) u.searchParams.set('tracks', ALL_TRACKS);
    this.fanout = new WarpFanout<Subscriber>(o, 'relay');
    this.cache = new RelayCache(o, (rel) => this.streams.uncached(rel));
    this.streams = new RelayedStreams(o, this.counters, {
      created: (rel) => this.created(rel),
      grew: (rel, n) => this.cache.grew(rel, n),
      aborted: (rel) => this.cache.remove(rel, false),
      trackIdOf: (h) => this.trackIdOf(h),
    });
    const relay = this;
    const context: UpstreamStreamContext = {
      counters: this.counters,
      streams: this.streams,
      get stopping() {
        return relay.closed;
      },
      served: () => this.upstream.served(),
      followGoaway: (url, up) => this.upstream.followGoaway(url, up),
      catalog: (headers, payload) => this.setCatalog(headers, payload),
      refreshInit: (headers, bytes) => this.refreshInit(headers, bytes),
      log: o.log,
    };
    this.reader = new UpstreamStreamReader(o.maxUpstreamStreams ?? 256, context);
    this.upstream = new RelayUpstream(u.href, o, {
      onStream: (stream, up) => void this.reader.read(stream, up),
      missing: () => this.missing(),
      ended: (info) => void this.broadcastEnded(info),
    });
  }

  /** §4.7: the upstream's code 0 goes on to every session here; the relay serves nothing from now on. */
  private async broadcastEnded(info: SessionCloseInfo): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.over = info;
    this.streams.close();
    this.o.log?.(
      `relay: broadcast ${this.broadcast} ended upstream; closing ${this.fanout.size} session(s) with code 0`,
    );
    await this.fanout.close(info.reason || 'broadcast terminated', WarpCloseCode.BROADCAST_TERMINATED);
    this.resolveEnded(info);
  }

  /** The upstream URL now (it changes when a GOAWAY is followed). */
  get upstreamUrl(): string {
    return this.upstream.url;
  }

  /** Subscribes upstream (once; it reconnects by itself). */
  start(): this {
    if (!this.closed) this.upstream.start();
    return this;
  }

  /** What a new viewer would lack: the catalog, or an init of one of its tracks. */
  private missing(): string | undefined {
    const catalog = this.upstreamCatalog?.catalog;
    if (!catalog) return 'catalog';
    return catalog.tracks.every((t) => this.cache.init(t.initId)) ? undefined : 'init segments';
  }

  // ─── what the upstream streams bring ─────────────────────────────────────────────────────────

  private trackIdOf(h: WarpHeaders): string | undefined {
    const tracks = this.upstreamCatalog?.catalog.tracks ?? [];
    const ids = h.depends?.length ? h.depends : h.id === undefined ? [] : [h.id];
    return tracks.find((t) => ids.includes(t.initId))?.id;
  }

  /** A new relayed stream: cached, and on its way to every subscriber (or held for the catalog). */
  private created(rel: Relayed): void {
    this.cache.add(rel);
    if (rel.trackKey !== undefined && rel.source.segment !== undefined)
      for (const listener of this.feedListeners) listener(segmentPayloads(rel.source));
    const n = rel.source.segment;
    if (n !== undefined && (this.newestSegment === undefined || n > this.newestSegment)) this.newestSegment = n;
    if (rel.trackKey !== undefined && this.holdingMedia()) this.holdForCatalog(rel.source);
    else for (const v of this.fanout) this.deliver(v, rel.source);
  }

  /** A stream to a subscriber: media of the tracks it receives; the rest (catalog, inits) always. */
  private deliver(v: { sender: { send(source: WarpSource): void }; data: Subscriber }, source: WarpSource): void {
    if (!source.init && source.track && v.data.selection && !v.data.selection.wants(source.track, source.segment))
      return;
    v.sender.send(source);
  }

  /** A subscriber's selection, once the catalog is known. */
  private select(data: Subscriber): TrackSelection | undefined {
    const catalog = this.upstreamCatalog?.catalog;
    if (!data.selection && catalog)
      data.selection = new TrackSelection(
        catalog,
        data.tracks?.includes(ALL_TRACKS) ? catalog.tracks.map((t) => t.id) : (data.tracks ?? defaultTracks(catalog)),
      );
    return data.selection;
  }

  /** With `reorder`, media waits for the catalog: without it there is no order to recompute (§4.5). */
  private holdingMedia(): boolean {
    return this.o.reorder !== undefined && this.upstreamCatalog === undefined;
  }

  private holdForCatalog(source: GrowingSource): void {
    this.heldForCatalog.push(source);
    // Bounded: past it the oldest goes on with the upstream's order.
    while (this.heldForCatalog.length > (this.o.maxHeldForCatalog ?? 256)) {
      const oldest = this.heldForCatalog.shift()!;
      for (const v of this.fanout) this.deliver(v, oldest);
    }
  }

  private setCatalog(headers: WarpHeaders, payload: Uint8Array): void {
    if (this.upstreamCatalog && sameBytes(payload, this.upstreamCatalog.payload)) {
      this.counters.duplicates++;
      return;
    }
    let catalog: WarpCatalog;
    try {
      catalog = parseCatalog(payload);
    } catch (error) {
      this.counters.malformed++;
      this.o.log?.(`relay: upstream catalog refused: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    const update = this.upstreamCatalog !== undefined;
    this.upstreamCatalog = { payload, catalog };
    const source = new GrowingSource({ ...headers }, '', true, 'raw');
    source.append(encodeWarpMessage({ kind: 'app', data: forwardedCatalog(payload, catalog, this.o.reorder) }));
    source.end();
    this.cache.catalog = source;
    this.counters.streamsForwarded++;
    for (const listener of this.catalogListeners) listener();
    if (update) {
      // A rendition added or removed upstream: every session gets the new catalog (the catalog's ID again);
      // an added track's init and segments come as new streams.
      this.o.log?.(`relay: the upstream catalog changed: tracks ${catalog.tracks.map((t) => t.id).join(', ')}`);
      for (const v of this.fanout) {
        v.data.selection?.setCatalog(catalog);
        v.sender.send(this.catalogFor(v.order)!, { again: true });
      }
      return;
    }
    // Sessions that joined before it get it now, and the media held for it (with `reorder`), the newest
    // GoP first in line.
    const held = this.heldForCatalog.splice(0);
    for (const v of this.fanout) {
      v.sender.send(this.catalogFor(v.order)!);
      this.select(v.data);
      for (const h of [...this.cache.segments().map((r) => r.source), ...held]) this.deliver(v, h);
    }
  }

  /** An init stream with a known ID again: kept for new joiners when its bytes changed (e.g. an encoder restart). */
  private refreshInit(headers: WarpHeaders, bytes: Uint8Array): void {
    const id = headers.id!;
    const known = this.cache.init(id);
    if (known && sameBytes(known.source.bytes(), bytes)) {
      this.counters.duplicates++;
      return;
    }
    const source = new GrowingSource({ ...headers }, this.trackIdOf(headers) ?? '', true, 'raw');
    source.append(bytes);
    source.end();
    if (known) this.cache.remove(known, false);
    this.cache.add(this.streams.adopt(id, source));
    for (const v of this.fanout) v.sender.send(source);
  }

  // ─── downstream ──────────────────────────────────────────────────────────────────────────────

  authorize(request: SessionRequest): SessionRefusal | undefined {
    return this.fanout.authorize(
      request,
      (broadcast) => broadcast === this.broadcast,
      () =>
        this.over
          ? this.fanout.refuse(404, `broadcast ${this.broadcast} has ended`)
          : this.closed
            ? this.fanout.refuse(503, 'the relay is stopping')
            : undefined,
    );
  }

  /**
   * The catalog as a session with `order` (its own, or undefined: the relay's) gets it: naming the order
   * its streams are rewritten to. Undefined before the upstream's catalog came.
   */
  private catalogFor(order: WarpOrderPolicy | undefined): GrowingSource | undefined {
    const cached = this.cache.catalog;
    const upstream = this.upstreamCatalog;
    if (!cached || !upstream || order === undefined || order === this.o.reorder) return cached;
    const source = new GrowingSource({ ...cached.headers }, '', true, 'raw');
    source.append(
      encodeWarpMessage({ kind: 'app', data: forwardedCatalog(upstream.payload, upstream.catalog, order) }),
    );
    source.end();
    return source;
  }

  /** A subscriber joins: the catalog, the inits, the newest GoP (what the cache holds now), then every new stream. */
  session(session: Session, request: SessionRequest): void {
    const bitsPerSecond =
      this.upstreamCatalog?.catalog.tracks.reduce((n, t) => n + (Number.isFinite(t.bandwidth) ? t.bandwidth : 0), 0) ??
      0;
    const asked = parseWarpPath(request.path)?.order; // checked in authorize
    const policy = isOrderPolicy(asked) ? asked : this.o.reorder;
    const data: Subscriber = { selection: undefined, tracks: parseWarpPath(request.path)?.tracks };
    const selection = this.select(data);
    const rate = (s: TrackSelection | undefined) => (s ? s.bitsPerSecond() : bitsPerSecond);
    const viewer = this.fanout.add(
      session,
      request,
      {
        bitsPerSecond: rate(selection),
        reorder: policy ? (h) => relayOrder(policy, this.upstreamCatalog?.catalog, h) : undefined,
        select: (r) => {
          const track = this.select(data)?.select(r, this.newestSegment);
          if (!track) return;
          // The new rendition's init goes ahead of its first segment, which depends on it (§3.3).
          const init = this.cache.init(track.initId);
          if (init) viewer.sender.send(init.source);
          this.fanout.resize(viewer, rate(data.selection));
        },
      },
      data,
    );
    const { sender, order } = viewer;
    const catalogSent = this.catalogFor(order);
    if (catalogSent) sender.send(catalogSent);
    // Once a catalog is known, only what its tracks need (a track removed upstream may still be cached),
    // and of those, the inits of the tracks this subscriber receives.
    const catalog = this.upstreamCatalog?.catalog;
    const wanted = new Set(selection?.tracks());
    for (const init of this.cache.inits())
      if (
        (!catalog || catalog.tracks.some((t) => t.initId === init.id)) &&
        (!selection || !init.source.track || wanted.has(init.source.track))
      )
        sender.send(init.source);
    if (!this.holdingMedia())
      for (const rel of this.cache.segments())
        if (!catalog || this.trackIdOf(rel.source.headers) !== undefined) this.deliver(viewer, rel.source);
  }

  /** §5.4: every downstream session is told to move to `url`, finishes what is under way, then is closed with code 1. */
  goaway(url: string, graceMs: number): Promise<void> {
    return this.fanout.goaway(url, graceMs);
  }

  /**
   * The operator's GOAWAY: every downstream session is sent to `successor`, new ones are refused (503);
   * the upstream stays until `close()`, so the segments under way finish. Resolves once the last
   * session has gone, or at `timeoutMs` with the rest cut.
   */
  drain(successor: string, timeoutMs: number): Promise<WarpDrainReport> {
    return this.fanout.drain(successor, timeoutMs);
  }

  /**
   * The relayed broadcast for another protocol (src/moq): the upstream catalog, the cached inits and
   * newest GoP, every new media stream; a part per CMAF chunk (`segmentPayloads`).
   */
  feed(): BroadcastFeed {
    const initOf = (trackId: string) => {
      const track = this.upstreamCatalog?.catalog.tracks.find((t) => t.id === trackId);
      const init = track && this.cache.init(track.initId);
      if (!init?.source.complete) return undefined;
      const parts = segmentPayloads(init.source).parts;
      return parts.length === 1 ? parts[0] : undefined;
    };
    return {
      name: this.broadcast,
      catalog: () => this.upstreamCatalog?.catalog,
      init: initOf,
      current: () => {
        // The newest cached segment of each track.
        const newest = new Map<string, WarpSource>();
        for (const rel of this.cache.segments()) {
          const s = rel.source;
          if (!s.track || s.segment === undefined || s.aborted) continue;
          const known = newest.get(s.track);
          if (!known || known.segment! < s.segment) newest.set(s.track, s);
        }
        return [...newest.values()].map(segmentPayloads);
      },
      onSegment: (listener) => {
        this.feedListeners.add(listener);
        return () => this.feedListeners.delete(listener);
      },
      onCatalog: (listener) => {
        this.catalogListeners.add(listener);
        return () => this.catalogListeners.delete(listener);
      },
    };
  }

  stats(): WarpRelayStats {
    return {
      broadcast: this.broadcast,
      upstreamUrl: this.upstream.url,
      upstreamSessions: this.upstream.sessions,
      ...this.upstream.stats(),
      ...this.counters,
      ...this.cache.stats(),
      ...this.fanout.stats(),
      rememberedIds: this.streams.rememberedIds,
      upstreamStreamsActive: this.streams.activeCopies,
      heldForCatalog: this.heldForCatalog.length,
    };
  }

  /**
   * Stops: downstream sessions closed with code 2 (this relay stops, not the broadcast), upstream
   * sessions closed, nothing reconnects.
   */
  async close(): Promise<void> {
    if (this.closed) return void (await this.upstream.close());
    this.closed = true;
    this.streams.close();
    await Promise.all([this.fanout.close('relay stopped', WarpCloseCode.SERVER_STOPPED), this.upstream.close()]);
  }
}
