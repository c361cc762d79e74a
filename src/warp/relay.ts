/**
 * A Warp relay (draft-lcurley-warp-00 §2.3, §4.5): one subscription upstream per broadcast, fanned out
 * to any number of downstream sessions. Relays chain: origin → relay → relay → viewers.
 *
 * - **Upstream.** One WebTransport session to the upstream URL (an origin's or another relay's
 *   `/warp/<broadcast>?token=…`). Each upstream stream's HEADERS are parsed (§4.5: "at the start of
 *   each stream so it is easy for a relay to parse"); the bytes after them are passed on untouched,
 *   chunk by chunk as they arrive (a `GrowingSource` of kind `raw`), not at message or segment ends.
 *   Every chunk also goes through a `WarpStreamReader` before it is passed on: a malformed stream is
 *   aborted downstream (RESET_STREAM) and counted, and nothing else is affected.
 * - **Streams without an ID** are the upstream's hop-by-hop control streams (pushcast's GOAWAY stream,
 *   §5.4): read here, never forwarded. A GOAWAY is followed: a new session to its URL, in parallel
 *   (§5.4), while the old one drains. The catalog (HEADERS id 0, one APP message, §5.3) is taken as
 *   soon as its APP message is whole (not at FIN).
 * - **Dedup and takeover by ID** (§5.1). A stream whose ID is already known and complete is stopped
 *   (STOP_SENDING). A second copy of a stream still under way (the new session after a GOAWAY, or the
 *   same upstream after a reconnection, re-sending its newest GoP) is kept in reserve: when the copy
 *   feeding the segment is lost, the other one takes over where it stopped, after its bytes so far were
 *   checked against what was forwarded. A segment whose copy is lost and that gets no other copy within
 *   `resumeMs` is aborted downstream.
 * - **Downstream.** Every session gets a `WarpSender` of its own (strict priority by delivery order and
 *   a resource limit per subscriber, §4.3, §4.4, §6.1: a stalled subscriber has its lowest-priority
 *   streams reset and nobody else notices), then the catalog, the init segments and the cached newest
 *   GoP, then every new stream. The route is `/warp/<broadcast>` with the relay's own tokens (401/403).
 *   A session joins `initialDelayMs` (20 ms) after it is accepted, so its first streams do not reach a
 *   Node client before that client could take the session (see the option).
 * - **Cache.** The catalog, every init segment (streams without dependencies, §5.2, §9.1.4), and per
 *   track (per dependency list: the init ID) the newest `cacheSegmentsPerTrack` segment streams, so a
 *   late joiner starts at the newest GoP. Bounded in bytes: past the bound the oldest cached segment
 *   goes first (inits are bounded by count).
 * - **Order rewrite** (§4.5: "A relay MAY change the delivery order, in which case it SHOULD update the
 *   value on the wire for future hops"), `reorder: <policy>`, one of `WARP_ORDER_POLICIES`. The relay
 *   cannot see presentation times without parsing media, but pushcast's catalog names the upstream's
 *   policy, and each policy is a known function of (kind, PTS) (src/warp/order.ts): the relay inverts
 *   it to recover the PTS of a segment from its upstream order and applies its own policy. The new
 *   order goes into the HEADERS it writes (`WarpSender`'s `reorder`), and the catalog it forwards names
 *   the new policy, so the next hop can do the same. Inits and the catalog keep their order (§3.2: a
 *   segment is never ordered before what it depends on). Unknown upstream policy: orders pass unchanged.
 *   Media that arrives before the catalog is held until it comes (it is what the order depends on).
 * - **Upstream loss**: reconnection with exponential backoff (250 ms … 8 s, ±20%); downstream
 *   sessions stay up throughout. A close with code 0 (§4.7: broadcast terminated) is treated the same,
 *   since an origin restart looks like that too. An upstream session after which the catalog or a
 *   track's init is still missing after `startupTimeoutMs` is replaced (a transport can lose the first
 *   streams of a session: a client session hands over streams that came before its CONNECT response
 *   before anyone listens).
 * - **Bounds** (§6.1): subscribers (`maxSubscribers`, 503), cache bytes / segments per track / tracks /
 *   inits, bytes per upstream stream, upstream streams relayed at once (lowest priority stopped, §4.4)
 *   and read at once, remembered IDs, per-subscriber backlog (the sender's resource limit); a control
 *   stream 64 KiB, a catalog 256 KiB, media held for the catalog 256 streams.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import {
  StreamAbortedError,
  connectWebTransport,
  type Session,
  type SessionRefusal,
  type SessionRequest,
  type SessionRoute,
  type SessionStream,
} from '../webtransport/index.js';
import {
  WarpCloseCode,
  WarpStreamReader,
  WireError,
  concatBytes,
  encodeWarpMessage,
  type WarpHeaders,
} from '../wire/index.js';
import { CATALOG_ID, parseCatalog, type WarpCatalog } from './catalog.js';
import { INIT_ORDER, WARP_ORDER_POLICIES, segmentOrder, type WarpOrderPolicy } from './order.js';
import { WARP_PATH, parseWarpPath } from './server.js';
import { WarpSender, type WarpSenderStats } from './sender.js';
import { GrowingSource } from './source.js';

export interface WarpRelayOptions {
  /** The upstream broadcast: an origin's or another relay's Warp URL, e.g. https://origin:8443/warp/live?token=… */
  upstream: string;
  /** Opens an upstream session; default WebTransport over HTTP/3 with `ca` / `verifyPeer`. */
  connect?: (url: string) => Promise<Session>;
  ca?: string;
  verifyPeer?: boolean;
  /** Tokens a downstream session must present (?token=…); none = open. */
  tokens?: readonly string[];
  /** Downstream sessions at once; more are refused 503. Default 1000. */
  maxSubscribers?: number;
  /** Rewrite delivery orders with this policy (§4.5); default: orders pass unchanged. */
  reorder?: WarpOrderPolicy;
  /** Per-subscriber resource limit (§4.4, §6.1); default from the catalog's bandwidth and the viewer's `latency`. */
  maxBacklogBytes?: number;
  /** Bytes of cached streams (catalog, inits, newest segments). Default 64 MiB. */
  maxCacheBytes?: number;
  /** Newest segment streams cached per track. Default 1 (a late joiner starts at the newest GoP). */
  cacheSegmentsPerTrack?: number;
  /** Tracks (dependency lists) cached; past it the least recently updated one goes. Default 64. */
  maxTracks?: number;
  /** Init streams cached (streams without dependencies). Default 64. */
  maxInits?: number;
  /** Bytes one upstream stream may carry; past it, it is aborted. Default 32 MiB. */
  maxStreamBytes?: number;
  /** Upstream streams relayed at once; past it the lowest-priority one is stopped (§4.4). Default 256. */
  maxUpstreamStreams?: number;
  /**
   * A new session's first streams wait this long: a Node client built on src/webtransport loses the
   * streams that reach it before it handled the CONNECT response, and a relay has its first streams
   * (cached) at hand at once. Default 20 ms; 0 = none.
   */
  initialDelayMs?: number;
  /** With `reorder`: media streams that came before the catalog, held until it comes. Default 256. */
  maxHeldForCatalog?: number;
  /** Stream IDs remembered for dedup. Default 4096. */
  maxRememberedIds?: number;
  /** How long a segment whose upstream copy was lost waits for another copy. Default 2000 ms. */
  resumeMs?: number;
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /**
   * An upstream session after which the relay still lacks the catalog or an init of the catalog's
   * tracks this long is replaced by a new one. Default 3000 ms.
   */
  startupTimeoutMs?: number;
  /** Prometheus metrics `pushcast_relay_*` are registered here. */
  registry?: Registry;
  log?: (line: string) => void;
}

export interface WarpRelayStats {
  broadcast: string;
  upstreamUrl: string;
  upstreamSessions: number;
  upstreamConnects: number;
  /** Sessions opened again after the upstream was lost. */
  upstreamReconnects: number;
  upstreamFailures: number;
  /** Upstream sessions replaced because the catalog and inits did not come within `startupTimeoutMs`. */
  upstreamIncomplete: number;
  goaways: number;
  /** Upstream streams: read, relayed as new, duplicates stopped, copies that took over a segment. */
  streamsReceived: number;
  streamsForwarded: number;
  duplicates: number;
  takeovers: number;
  /** Upstream streams dropped: malformed, past `maxStreamBytes`, past `maxUpstreamStreams`, lost. */
  malformed: number;
  oversize: number;
  limited: number;
  lost: number;
  /** Segments aborted downstream (their upstream copy failed with no other copy). */
  aborted: number;
  controlStreams: number;
  bytesReceived: number;
  subscribers: number;
  sessionsAccepted: number;
  sessionsRefused: number;
  /** Over every downstream session, closed ones included. */
  bytesSent: number;
  streamsSent: number;
  streamsCancelled: number;
  streamsStopped: number;
  cacheBytes: number;
  cachedSegments: number;
  cachedTracks: number;
  cachedInits: number;
  cacheEvictions: number;
  rememberedIds: number;
  upstreamStreamsActive: number;
  /** Media streams waiting for the catalog (with `reorder`). */
  heldForCatalog: number;
  senders: WarpSenderStats[];
}

type DropReason = 'lost' | 'malformed' | 'mismatch' | 'oversize' | 'limit' | 'duplicate';

/** The relay gives up on an upstream stream. */
class RelayDrop extends Error {
  constructor(
    readonly why: DropReason,
    detail: string,
  ) {
    super(detail);
  }
}

/** One upstream stream carrying a relayed stream (there may be two copies of one ID). */
class Copy {
  /** Bytes of this copy after HEADERS consumed: checked against or appended to the source. */
  offset = 0;
  /** Validated bytes not yet consumed (a reserve copy ahead of the one feeding the source). */
  readonly pending: Uint8Array[] = [];
  pendingBytes = 0;
  /** FIN seen, every byte validated. */
  done = false;
  dropped = false;
  /** Where `offset` is in the source's parts, while this copy is being checked. */
  readonly cursor = { part: 0, at: 0 };

  constructor(
    readonly stream: SessionStream,
    readonly order: number,
    readonly seq: number,
  ) {}
}

/** A relayed stream (by ID): the source subscribers follow, fed by one upstream copy at a time. */
class Relayed {
  primary: Copy | undefined;
  reserve: Copy | undefined;
  orphanTimer: ReturnType<typeof setTimeout> | undefined;
  cached = false;

  constructor(
    readonly id: number,
    readonly source: GrowingSource,
    readonly seq: number,
    /** Media: the dependency list (the track); undefined for inits. */
    readonly trackKey: string | undefined,
  ) {}

  get finished(): boolean {
    return this.source.complete || this.source.aborted;
  }
}

interface Upstream {
  session: Session;
  url: string;
  movedAway: boolean;
  /** The session is gone: its streams end (abandoned, draft-02 §4.3) whether they were whole or not. */
  closed: boolean;
  watchdog?: ReturnType<typeof setTimeout>;
}

interface Subscriber {
  session: Session;
  sender: WarpSender;
  /** Its first streams went out (after `initialDelayMs`): it joins then, and gets nothing before. */
  ready: boolean;
  timer?: ReturnType<typeof setTimeout>;
}

const MAX_CONTROL_STREAM_BYTES = 64 * 1024;
const MAX_CATALOG_BYTES = 256 * 1024;
/** Upstream streams being read before their HEADERS / as control streams, beyond the relayed ones. */
const EXTRA_READING = 64;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/** Compares `n` bytes of `bytes` with the source's parts from `cursor`, and moves the cursor on. */
function matchesAt(
  parts: readonly Uint8Array[],
  cursor: { part: number; at: number },
  bytes: Uint8Array,
  n: number,
): boolean {
  let i = 0;
  while (i < n) {
    const p = parts[cursor.part];
    if (!p) return false;
    if (cursor.at >= p.length) {
      cursor.part++;
      cursor.at = 0;
      continue;
    }
    const k = Math.min(p.length - cursor.at, n - i);
    if (Buffer.compare(p.subarray(cursor.at, cursor.at + k), bytes.subarray(i, i + k)) !== 0) return false;
    cursor.at += k;
    i += k;
  }
  return true;
}

const isPolicy = (p: unknown): p is WarpOrderPolicy => (WARP_ORDER_POLICIES as readonly unknown[]).includes(p);

/**
 * The presentation time (µs) behind an order made by `policy` for a segment of `kind`: every policy
 * of src/warp/order.ts is base + sign · PTS per kind (before the raise to its dependencies' orders).
 */
export function ptsFromOrder(policy: WarpOrderPolicy, kind: 'video' | 'audio', order: number): number {
  const base = segmentOrder(policy, kind, 0);
  const sign = segmentOrder(policy, kind, 1) - base;
  return (order - base) * sign;
}

export class WarpRelay implements SessionRoute {
  readonly broadcast: string;
  private url: string;
  private readonly upstreams = new Set<Upstream>();
  private connecting = 0;
  private attempts = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private started = false;
  private closed = false;

  private readonly subscribers = new Set<Subscriber>();
  /** Known stream IDs: the relayed stream, or what became of it. */
  private readonly entries = new Map<number, Relayed | 'complete' | 'aborted'>();
  private readonly copies = new Set<Copy>();
  private readonly orphans = new Set<Relayed>();
  private reading = 0;
  private seq = 0;

  private upstreamCatalog: { payload: Uint8Array; catalog: WarpCatalog } | undefined;
  private catalogOut: GrowingSource | undefined;
  private readonly inits = new Map<number, Relayed>();
  private readonly tracks = new Map<string, Relayed[]>();
  /** Media that came before the catalog, with `reorder` (see `holdingMedia`). */
  private readonly heldForCatalog: GrowingSource[] = [];
  private cacheBytes = 0;

  private readonly counters = {
    upstreamConnects: 0,
    upstreamReconnects: 0,
    upstreamFailures: 0,
    upstreamIncomplete: 0,
    goaways: 0,
    streamsReceived: 0,
    streamsForwarded: 0,
    duplicates: 0,
    takeovers: 0,
    malformed: 0,
    oversize: 0,
    limited: 0,
    lost: 0,
    aborted: 0,
    controlStreams: 0,
    bytesReceived: 0,
    sessionsAccepted: 0,
    sessionsRefused: 0,
    cacheEvictions: 0,
  };
  /** Sender counters of sessions that are gone. */
  private readonly retired = { bytesWritten: 0, streamsOpened: 0, streamsCancelled: 0, streamsStopped: 0 };

  private readonly maxCacheBytes: number;
  private readonly perTrack: number;
  private readonly maxStreamBytes: number;

  constructor(private readonly o: WarpRelayOptions) {
    const u = new URL(o.upstream);
    if (u.protocol !== 'https:') throw new Error(`the upstream must be an https:// Warp URL: ${o.upstream}`);
    const target = parseWarpPath(`${u.pathname}${u.search}`);
    if (!target) throw new Error(`the upstream URL's path must be ${WARP_PATH}/<broadcast>: ${o.upstream}`);
    this.broadcast = target.broadcast;
    this.url = u.href;
    this.maxCacheBytes = o.maxCacheBytes ?? 64 * 1024 * 1024;
    this.perTrack = Math.max(1, o.cacheSegmentsPerTrack ?? 1);
    this.maxStreamBytes = o.maxStreamBytes ?? 32 * 1024 * 1024;
    if (o.registry) this.registerMetrics(o.registry);
  }

  /** The upstream URL now (it changes when a GOAWAY is followed). */
  get upstreamUrl(): string {
    return this.url;
  }

  /** Subscribes upstream (once; it reconnects by itself). */
  start(): this {
    if (this.started || this.closed) return this;
    this.started = true;
    void this.open(this.url, 'start');
    return this;
  }

  // ─── upstream ────────────────────────────────────────────────────────────────────────────────

  private connectUpstream(url: string): Promise<Session> {
    return this.o.connect
      ? this.o.connect(url)
      : connectWebTransport(url, { ca: this.o.ca, verifyPeer: this.o.verifyPeer });
  }

  private async open(url: string, why: 'start' | 'reconnect' | 'goaway'): Promise<void> {
    this.connecting++;
    let session: Session;
    try {
      session = await this.connectUpstream(url);
    } catch (error) {
      this.connecting--;
      this.counters.upstreamFailures++;
      this.o.log?.(`relay: upstream ${url}: ${error instanceof Error ? error.message : String(error)}`);
      if (!this.closed && this.upstreams.size === 0 && this.connecting === 0) this.scheduleReconnect();
      return;
    }
    this.connecting--;
    if (this.closed) {
      void session.close(0, 'relay stopped');
      return;
    }
    this.counters.upstreamConnects++;
    if (why === 'reconnect') this.counters.upstreamReconnects++;
    const up: Upstream = { session, url, movedAway: false, closed: false };
    this.upstreams.add(up);
    this.o.log?.(`relay: subscribed to ${url}${why === 'start' ? '' : ` (${why})`}`);
    session.on('stream', (stream) => void this.readUpstream(stream, up));
    // A session is of no use without the catalog and the inits; a new one gets them again (the first
    // streams of a session are the ones a transport is most likely to lose track of at its start).
    up.watchdog = setTimeout(() => {
      if (this.closed || up.closed || this.startupComplete()) return;
      this.counters.upstreamIncomplete++;
      this.o.log?.(
        `relay: no ${this.upstreamCatalog ? 'init segments' : 'catalog'} from ${url} after ${this.o.startupTimeoutMs ?? 3000} ms; subscribing again`,
      );
      void session.close(0, 'no catalog');
    }, this.o.startupTimeoutMs ?? 3000);
    session.once('close', (info) => {
      up.closed = true;
      clearTimeout(up.watchdog);
      this.upstreams.delete(up);
      if (this.closed) return;
      this.o.log?.(`relay: upstream session closed (code ${info.code}${info.reason ? `: ${info.reason}` : ''})`);
      if (this.upstreams.size === 0 && this.connecting === 0) this.scheduleReconnect();
    });
  }

  /** The catalog and the init stream of each of its tracks are here (whole or still arriving). */
  private startupComplete(): boolean {
    const catalog = this.upstreamCatalog?.catalog;
    return catalog?.tracks.every((t) => this.inits.has(t.initId)) === true;
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer || this.closed) return;
    const min = this.o.reconnectMinMs ?? 250;
    const max = this.o.reconnectMaxMs ?? 8000;
    const delay = Math.min(max, min * 2 ** Math.min(this.attempts, 16)) * (0.8 + 0.4 * Math.random());
    this.attempts++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.closed && this.upstreams.size === 0) void this.open(this.url, 'reconnect');
    }, delay);
  }

  /** §5.4: a new session to `url`, on a new connection, while the old one drains. */
  private followGoaway(url: string, up: Upstream): void {
    if (up.movedAway || this.closed) return;
    up.movedAway = true;
    let next: URL;
    try {
      next = new URL(url, up.url);
    } catch {
      this.o.log?.(`relay: ignoring a GOAWAY to ${JSON.stringify(url)}: not a URL`);
      return;
    }
    this.counters.goaways++;
    this.url = next.href;
    this.o.log?.(`relay: GOAWAY from upstream, moving to ${this.url}`);
    void this.open(this.url, 'goaway');
  }

  private roleOf(h: WarpHeaders): 'control' | 'catalog' | 'refresh' | 'relay' {
    if (h.id === undefined) return 'control';
    const media = (h.depends?.length ?? 0) > 0;
    if (!media && h.id === CATALOG_ID) return 'catalog';
    const known = this.entries.get(h.id);
    if (!media && (known === 'complete' || (known instanceof Relayed && known.source.complete))) return 'refresh';
    return 'relay';
  }

  /** Reads one upstream stream: HEADERS, then each chunk validated and passed on as it comes. Never throws. */
  private async readUpstream(stream: SessionStream, up: Upstream): Promise<void> {
    this.counters.streamsReceived++;
    if (this.closed || this.reading >= (this.o.maxUpstreamStreams ?? 256) + EXTRA_READING) {
      this.counters.limited++;
      stream.stopSending(0);
      return;
    }
    this.attempts = 0; // the upstream serves: the next loss starts the backoff afresh
    this.reading++;
    const reader = new WarpStreamReader();
    let pre: Uint8Array[] = [];
    let headers: WarpHeaders | undefined;
    let role: ReturnType<WarpRelay['roleOf']> | undefined;
    let rel: Relayed | undefined;
    let copy: Copy | undefined;
    const whole: Uint8Array[] = [];
    let wholeBytes = 0;
    const app: Uint8Array[] = [];
    let catalogDone = false;
    try {
      for await (const chunk of stream) {
        this.counters.bytesReceived += chunk.length;
        reader.push(chunk);
        let part = chunk;
        if (!headers) {
          pre.push(chunk);
          const first = reader.next();
          if (first === undefined) continue;
          if (first.kind !== 'headers') throw new RelayDrop('malformed', 'no HEADERS first'); // the reader enforces §4.2
          headers = first;
          part = concatBytes(pre).subarray(reader.offset);
          pre = [];
          role = this.roleOf(headers);
        }
        // Validate the chunk before a byte of it goes on: cut-through, but nothing malformed downstream.
        let goaway: string | undefined;
        let catalogEnd = false;
        for (let e; (e = reader.next()) !== undefined; ) {
          if (e.kind === 'goaway') goaway = e.url;
          else if (e.kind === 'app-data' && role === 'catalog' && !catalogDone) {
            app.push(e.data);
            catalogEnd ||= e.end;
          }
        }
        if (goaway !== undefined) {
          this.followGoaway(goaway, up);
          if (role !== 'control') throw new RelayDrop('malformed', 'a GOAWAY on a stream with an ID');
        }
        if (role === 'relay') {
          if (!copy) {
            const attached = this.attach(headers, stream);
            if (!attached) return;
            ({ rel, copy } = attached);
          }
          if (part.length > 0) this.feed(rel!, copy, part);
          if (copy.dropped) return;
          continue;
        }
        wholeBytes += part.length;
        const limit =
          role === 'control' ? MAX_CONTROL_STREAM_BYTES : role === 'catalog' ? MAX_CATALOG_BYTES : this.maxStreamBytes;
        if (wholeBytes > limit) throw new RelayDrop('oversize', `a ${role} stream of more than ${limit} bytes`);
        if (role === 'refresh' && part.length > 0) whole.push(part);
        // The catalog is its APP message (§5.3): taken when that ends, not at FIN, so nothing waits for a FIN.
        if (catalogEnd) {
          catalogDone = true;
          this.setCatalog(headers, concatBytes(app));
        }
      }
      if (copy?.dropped) return;
      // A stream of a closed session ends without telling whether it was whole: it counts as lost.
      if (up.closed || this.closed) throw new RelayDrop('lost', 'the upstream session closed');
      reader.end();
      if (role === 'control') this.counters.controlStreams++;
      else if (role === 'catalog' && !catalogDone)
        throw new RelayDrop('malformed', 'a catalog stream without an APP message');
      else if (role === 'refresh') this.refreshInit(headers!, concatBytes(whole));
      else if (rel && copy) this.copyEnded(rel, copy);
    } catch (error) {
      const why: DropReason =
        error instanceof RelayDrop
          ? error.why
          : error instanceof WireError
            ? 'malformed'
            : error instanceof StreamAbortedError || up.closed || this.closed
              ? 'lost'
              : 'malformed';
      // `lost` counts relayed copies only (a control or catalog stream cut by its session's end is no loss).
      if (!copy?.dropped && (why !== 'lost' || copy)) {
        if (why === 'malformed' || why === 'oversize') {
          this.o.log?.(
            `relay: upstream stream${headers?.id === undefined ? '' : ` ${headers.id}`} dropped (${why}): ${error instanceof Error ? error.message : String(error)}`,
          );
        }
        this.count(why);
      }
      if (rel && copy) this.dropCopy(rel, copy, why);
      else if (why !== 'lost') stopQuietly(stream);
    } finally {
      this.reading--;
    }
  }

  private count(why: DropReason): void {
    if (why === 'malformed' || why === 'mismatch') this.counters.malformed++;
    else if (why === 'oversize') this.counters.oversize++;
    else if (why === 'limit') this.counters.limited++;
    else if (why === 'lost') this.counters.lost++;
    else this.counters.duplicates++;
  }

  /** A relayed stream's first validated chunk: a new segment, a second copy of one, or a duplicate. */
  private attach(headers: WarpHeaders, stream: SessionStream): { rel: Relayed; copy: Copy } | undefined {
    const id = headers.id!;
    const copy = new Copy(stream, headers.order ?? 0, this.seq++);
    const known = this.entries.get(id);
    if (known instanceof Relayed && !known.finished && (!known.primary || !known.reserve)) {
      if (!this.makeRoom(copy)) return undefined;
      if (known.finished) {
        stopQuietly(stream); // making room aborted it
        return undefined;
      }
      this.copies.add(copy);
      if (!known.primary) {
        // The copy that fed it was lost: this one takes over (after its bytes are checked, `advance`).
        clearTimeout(known.orphanTimer);
        this.orphans.delete(known);
        known.primary = copy;
        this.counters.takeovers++;
      } else known.reserve = copy;
      return { rel: known, copy };
    }
    if (known === 'complete' || (known instanceof Relayed && !known.source.aborted)) {
      // Complete, or under way with two copies already.
      this.counters.duplicates++;
      stopQuietly(stream);
      return undefined;
    }
    if (!this.makeRoom(copy)) return undefined;
    // New (or in place of one that was aborted: subscribers that saw that one keep their reset; §5.1 IDs are unique).
    const media = (headers.depends?.length ?? 0) > 0;
    const trackKey = media ? headers.depends!.join(',') : undefined;
    const source = new GrowingSource({ ...headers }, this.trackIdOf(headers) ?? '', !media, 'raw');
    const rel = new Relayed(id, source, copy.seq, trackKey);
    rel.primary = copy;
    this.copies.add(copy);
    this.remember(id, rel);
    this.counters.streamsForwarded++;
    this.cache(rel);
    if (media && this.holdingMedia()) this.holdForCatalog(source);
    else for (const s of this.subscribers) this.deliver(s, source);
    return { rel, copy };
  }

  /** §4.4 at the relay's own limit: the lowest-priority copy is stopped, which may be the new one. */
  private makeRoom(copy: Copy): boolean {
    const max = this.o.maxUpstreamStreams ?? 256;
    while (this.copies.size >= max) {
      let victim: Copy | undefined;
      for (const c of this.copies)
        if (!victim || c.order > victim.order || (c.order === victim.order && c.seq > victim.seq)) victim = c;
      if (!victim || victim.order < copy.order || (victim.order === copy.order && victim.seq < copy.seq)) {
        this.counters.limited++;
        stopQuietly(copy.stream);
        return false;
      }
      this.counters.limited++;
      const rel = this.relayedOf(victim);
      if (rel) this.dropCopy(rel, victim, 'limit');
      else this.copies.delete(victim);
    }
    return true;
  }

  private relayedOf(copy: Copy): Relayed | undefined {
    for (const e of this.entries.values())
      if (e instanceof Relayed && (e.primary === copy || e.reserve === copy)) return e;
    return undefined;
  }

  private feed(rel: Relayed, copy: Copy, bytes: Uint8Array): void {
    if (copy.dropped) return;
    if (copy.offset + copy.pendingBytes + bytes.length > this.maxStreamBytes)
      throw new RelayDrop('oversize', `a stream of more than ${this.maxStreamBytes} bytes`);
    copy.pending.push(bytes);
    copy.pendingBytes += bytes.length;
    this.advance(rel, copy);
  }

  /**
   * Consumes a copy's pending bytes: those the source already has are checked (a copy taking over must
   * carry the same bytes), the rest is appended by the copy feeding the source, or waits in a reserve copy.
   */
  private advance(rel: Relayed, copy: Copy): void {
    const src = rel.source;
    while (copy.pending.length > 0 && !copy.dropped) {
      const head = copy.pending[0]!;
      if (copy.offset < src.byteLength) {
        const n = Math.min(head.length, src.byteLength - copy.offset);
        if (!matchesAt(src.parts, copy.cursor, head, n)) {
          this.count('mismatch');
          this.o.log?.(`relay: a copy of stream ${rel.id} differs from the bytes already forwarded; dropped`);
          return this.dropCopy(rel, copy, 'mismatch');
        }
        copy.offset += n;
        copy.pendingBytes -= n;
        if (n === head.length) copy.pending.shift();
        else copy.pending[0] = head.subarray(n);
        continue;
      }
      if (copy !== rel.primary || rel.finished) return; // a reserve ahead of the copy feeding the source waits
      copy.pending.shift();
      copy.pendingBytes -= head.length;
      copy.offset += head.length;
      src.append(head);
      if (rel.cached) {
        this.cacheBytes += head.length;
        this.enforceCacheBytes();
      }
    }
    if (copy === rel.primary && copy.done && !copy.dropped && !rel.finished) {
      if (copy.offset === src.byteLength && copy.pending.length === 0) this.complete(rel);
      else {
        this.count('mismatch');
        this.dropCopy(rel, copy, 'mismatch'); // shorter than what was forwarded already
      }
    }
  }

  private copyEnded(rel: Relayed, copy: Copy): void {
    copy.done = true;
    if (copy === rel.primary) this.advance(rel, copy);
  }

  private complete(rel: Relayed): void {
    if (rel.finished) return;
    rel.source.end();
    this.release(rel);
    if (!rel.cached) this.remember(rel.id, 'complete');
  }

  private abort(rel: Relayed): void {
    if (rel.finished) return;
    this.counters.aborted++;
    rel.source.end(true);
    this.release(rel);
    if (rel.cached) this.uncache(rel, false);
    this.remember(rel.id, 'aborted');
  }

  /** A finished stream lets go of its copies (a reserve still reading is stopped). */
  private release(rel: Relayed): void {
    clearTimeout(rel.orphanTimer);
    this.orphans.delete(rel);
    for (const c of [rel.primary, rel.reserve]) {
      if (!c) continue;
      this.copies.delete(c);
      if (!c.done && !c.dropped) {
        c.dropped = true;
        stopQuietly(c.stream);
      }
    }
    rel.primary = undefined;
    rel.reserve = undefined;
  }

  private dropCopy(rel: Relayed, copy: Copy, why: DropReason): void {
    if (copy.dropped) return;
    copy.dropped = true;
    this.copies.delete(copy);
    if (why !== 'lost') stopQuietly(copy.stream);
    if (rel.reserve === copy) {
      rel.reserve = undefined;
      return;
    }
    if (rel.primary !== copy) return;
    rel.primary = undefined;
    if (rel.finished) return;
    const next = rel.reserve;
    if (next) {
      rel.reserve = undefined;
      rel.primary = next;
      this.counters.takeovers++;
      this.advance(rel, next);
      return;
    }
    if (why === 'lost' && !this.closed) {
      // Another copy may come (the upstream again after a reconnection, or the session a GOAWAY names).
      this.orphans.add(rel);
      rel.orphanTimer = setTimeout(() => {
        this.orphans.delete(rel);
        if (!rel.primary) this.abort(rel);
      }, this.o.resumeMs ?? 2000);
      return;
    }
    this.abort(rel);
  }

  /** Remembers what became of an ID, bounded: the oldest finished entries are forgotten first. */
  private remember(id: number, value: Relayed | 'complete' | 'aborted'): void {
    this.entries.delete(id);
    this.entries.set(id, value);
    const max = this.o.maxRememberedIds ?? 4096;
    if (this.entries.size <= max) return;
    for (const [key, e] of this.entries) {
      if (this.entries.size <= max) break;
      if (!(e instanceof Relayed) || (e.finished && !e.cached)) this.entries.delete(key);
    }
  }

  // ─── catalog, inits, cache ───────────────────────────────────────────────────────────────────

  private trackIdOf(h: WarpHeaders): string | undefined {
    const tracks = this.upstreamCatalog?.catalog.tracks ?? [];
    const ids = h.depends?.length ? h.depends : h.id === undefined ? [] : [h.id];
    return tracks.find((t) => ids.includes(t.initId))?.id;
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
      for (const s of this.subscribers) this.deliver(s, oldest);
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
    this.upstreamCatalog = { payload, catalog };
    const rewrite =
      this.o.reorder !== undefined && isPolicy(catalog.orderPolicy) && catalog.orderPolicy !== this.o.reorder;
    const bytes = encodeWarpMessage({
      kind: 'app',
      data: rewrite ? new TextEncoder().encode(JSON.stringify({ ...catalog, orderPolicy: this.o.reorder })) : payload,
    });
    const source = new GrowingSource({ ...headers }, '', true, 'raw');
    source.append(bytes);
    source.end();
    if (this.catalogOut) this.cacheBytes -= this.catalogOut.byteLength;
    this.catalogOut = source;
    this.cacheBytes += source.byteLength;
    this.counters.streamsForwarded++;
    // Sessions that joined before it get it now (a sender sends one stream per ID: the first catalog only),
    // and the media held for it (with `reorder`), the newest GoP first in line.
    const held = this.heldForCatalog.splice(0);
    for (const s of this.subscribers) {
      this.deliver(s, source);
      for (const h of [...this.cachedSegments().map((r) => r.source), ...held]) this.deliver(s, h);
    }
  }

  /** An init stream with a known ID again: kept for new joiners when its bytes changed (e.g. an encoder restart). */
  private refreshInit(headers: WarpHeaders, bytes: Uint8Array): void {
    const id = headers.id!;
    const known = this.inits.get(id);
    if (known && sameBytes(known.source.bytes(), bytes)) {
      this.counters.duplicates++;
      return;
    }
    const source = new GrowingSource({ ...headers }, this.trackIdOf(headers) ?? '', true, 'raw');
    source.append(bytes);
    source.end();
    if (known) this.uncache(known, false);
    const rel = new Relayed(id, source, this.seq++, undefined);
    this.remember(id, rel);
    this.counters.streamsForwarded++;
    this.cache(rel);
    for (const s of this.subscribers) this.deliver(s, source);
  }

  private cache(rel: Relayed): void {
    rel.cached = true;
    this.cacheBytes += rel.source.byteLength;
    if (rel.trackKey === undefined) {
      const previous = this.inits.get(rel.id);
      if (previous && previous !== rel) this.uncache(previous, false);
      this.inits.set(rel.id, rel);
      const max = this.o.maxInits ?? 64;
      while (this.inits.size > max) this.uncache(this.inits.values().next().value!, true);
    } else {
      const list = this.tracks.get(rel.trackKey) ?? [];
      this.tracks.delete(rel.trackKey); // most recently updated last
      this.tracks.set(rel.trackKey, list);
      list.push(rel);
      while (list.length > this.perTrack) this.uncache(list[0]!, true);
      const max = this.o.maxTracks ?? 64;
      while (this.tracks.size > max) {
        const [key, oldest] = this.tracks.entries().next().value!;
        for (const r of [...oldest]) this.uncache(r, true);
        this.tracks.delete(key);
      }
    }
    this.enforceCacheBytes();
  }

  private uncache(rel: Relayed, evicted: boolean): void {
    if (!rel.cached) return;
    rel.cached = false;
    this.cacheBytes -= rel.source.byteLength;
    if (evicted) this.counters.cacheEvictions++;
    if (rel.trackKey === undefined) {
      if (this.inits.get(rel.id) === rel) this.inits.delete(rel.id);
    } else {
      const list = this.tracks.get(rel.trackKey);
      const i = list?.indexOf(rel) ?? -1;
      if (i >= 0) list!.splice(i, 1);
      if (list && list.length === 0) this.tracks.delete(rel.trackKey);
    }
    if (rel.finished && this.entries.get(rel.id) === rel)
      this.remember(rel.id, rel.source.complete ? 'complete' : 'aborted');
  }

  /** Past the byte bound, the oldest cached segment goes first (then the next oldest…). */
  private enforceCacheBytes(): void {
    while (this.cacheBytes > this.maxCacheBytes) {
      let oldest: Relayed | undefined;
      for (const list of this.tracks.values()) if (list[0] && (!oldest || list[0].seq < oldest.seq)) oldest = list[0];
      if (!oldest) return;
      this.uncache(oldest, true);
    }
  }

  /** Cached media segments, oldest first. */
  private cachedSegments(): Relayed[] {
    return [...this.tracks.values()].flat().sort((a, b) => a.seq - b.seq);
  }

  // ─── order rewrite (§4.5) ────────────────────────────────────────────────────────────────────

  /** The order this relay writes for a stream: the upstream's, or recomputed with `reorder`. */
  reorderOf(h: WarpHeaders): number {
    const order = h.order ?? 0;
    const policy = this.o.reorder;
    const catalog = this.upstreamCatalog?.catalog;
    if (!policy || !h.depends?.length || !catalog || !isPolicy(catalog.orderPolicy)) return order;
    const track = catalog.tracks.find((t) => h.depends!.includes(t.initId));
    if (!track) return order;
    const pts = ptsFromOrder(catalog.orderPolicy, track.kind, order);
    return segmentOrder(policy, track.kind, pts, [INIT_ORDER]);
  }

  // ─── downstream ──────────────────────────────────────────────────────────────────────────────

  authorize(request: SessionRequest): SessionRefusal | undefined {
    const refuse = (status: number, reason: string): SessionRefusal => {
      this.counters.sessionsRefused++;
      return { status, reason };
    };
    const target = parseWarpPath(request.path);
    if (!target) return refuse(404, `a Warp path is ${WARP_PATH}/<broadcast>`);
    if (target.broadcast !== this.broadcast) return refuse(404, `no broadcast named ${target.broadcast}`);
    const tokens = this.o.tokens ?? [];
    if (tokens.length > 0) {
      if (target.token === undefined) return refuse(401, 'this broadcast needs a token (?token=…)');
      if (!tokens.includes(target.token)) return refuse(403, 'wrong token');
    }
    if (this.closed) return refuse(503, 'the relay is stopping');
    if (this.subscribers.size >= (this.o.maxSubscribers ?? 1000))
      return refuse(503, 'too many subscribers at this relay');
    return undefined;
  }

  session(session: Session, request: SessionRequest): void {
    const target = parseWarpPath(request.path);
    const sender = new WarpSender(session, {
      maxBacklogBytes: this.backlogFor(target?.latencyMs),
      reorder: this.o.reorder ? (h) => this.reorderOf(h) : undefined,
    });
    const subscriber: Subscriber = { session, sender, ready: false };
    this.subscribers.add(subscriber);
    this.counters.sessionsAccepted++;
    session.once('close', () => {
      clearTimeout(subscriber.timer);
      if (!this.subscribers.delete(subscriber)) return;
      const s = sender.stats();
      this.retired.bytesWritten += s.bytesWritten;
      this.retired.streamsOpened += s.streamsOpened;
      this.retired.streamsCancelled += s.streamsCancelled;
      this.retired.streamsStopped += s.streamsStopped;
    });
    session.on('stream', (stream) => stream.stopSending(0)); // §4.2: not part of Warp here
    const delay = this.o.initialDelayMs ?? 20;
    if (delay > 0) subscriber.timer = setTimeout(() => this.startSubscriber(subscriber), delay);
    else this.startSubscriber(subscriber);
    this.o.log?.(`relay: session for ${this.broadcast} over ${session.transport} (${this.subscribers.size} now)`);
  }

  /**
   * A subscriber joins: the catalog, the inits, the newest GoP (what the cache holds now), then every
   * new stream (`attach`). Joining after `initialDelayMs` rather than at the session's start changes
   * nothing else: what came in between is in the cache, or older than what it holds.
   */
  private startSubscriber(subscriber: Subscriber): void {
    if (!this.subscribers.has(subscriber) || this.closed) return;
    subscriber.ready = true;
    const { sender } = subscriber;
    if (this.catalogOut) sender.send(this.catalogOut);
    for (const init of this.inits.values()) sender.send(init.source);
    if (!this.holdingMedia()) for (const rel of this.cachedSegments()) sender.send(rel.source);
  }

  private deliver(subscriber: Subscriber, source: GrowingSource): void {
    if (subscriber.ready) subscriber.sender.send(source);
  }

  private backlogFor(latencyMs: number | undefined): number {
    if (this.o.maxBacklogBytes !== undefined) return this.o.maxBacklogBytes;
    const bandwidth =
      this.upstreamCatalog?.catalog.tracks.reduce((n, t) => n + (Number.isFinite(t.bandwidth) ? t.bandwidth : 0), 0) ??
      0;
    if (bandwidth <= 0) return 4 * 1024 * 1024;
    const seconds = Math.min(10, Math.max(0.5, (latencyMs ?? 2000) / 1000));
    return Math.ceil((bandwidth / 8) * seconds * 1.5) + 256 * 1024;
  }

  /** §5.4: every downstream session is told to connect to `url`, then closed with code 1 after `graceMs`. */
  async goaway(url: string, graceMs: number): Promise<void> {
    const subscribers = [...this.subscribers];
    await Promise.all(subscribers.map((s) => s.sender.goaway(url)));
    await new Promise((r) => setTimeout(r, graceMs));
    for (const s of subscribers) s.sender.close(WarpCloseCode.GOAWAY, 'GOAWAY');
  }

  stats(): WarpRelayStats {
    const senders = [...this.subscribers].map((s) => s.sender.stats());
    const sum = (k: 'bytesWritten' | 'streamsOpened' | 'streamsCancelled' | 'streamsStopped') =>
      senders.reduce((n, s) => n + s[k], this.retired[k]);
    return {
      broadcast: this.broadcast,
      upstreamUrl: this.url,
      upstreamSessions: this.upstreams.size,
      ...this.counters,
      subscribers: this.subscribers.size,
      bytesSent: sum('bytesWritten'),
      streamsSent: sum('streamsOpened'),
      streamsCancelled: sum('streamsCancelled'),
      streamsStopped: sum('streamsStopped'),
      cacheBytes: this.cacheBytes,
      cachedSegments: [...this.tracks.values()].reduce((n, l) => n + l.length, 0),
      cachedTracks: this.tracks.size,
      cachedInits: this.inits.size,
      rememberedIds: this.entries.size,
      upstreamStreamsActive: this.copies.size,
      heldForCatalog: this.heldForCatalog.length,
      senders,
    };
  }

  private registerMetrics(registry: Registry): void {
    const registers = [registry];
    const relay = this;
    const counter = (name: string, help: string, read: (s: WarpRelayStats) => number) => {
      let exported = 0;
      new Counter({
        name,
        help,
        registers,
        collect() {
          const value = read(relay.stats());
          if (value > exported) this.inc(value - exported);
          exported = Math.max(exported, value);
        },
      });
    };
    const gauge = (name: string, help: string, read: (s: WarpRelayStats) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read(relay.stats()));
        },
      });
    gauge('pushcast_relay_subscribers', 'Downstream Warp sessions now', (s) => s.subscribers);
    gauge(
      'pushcast_relay_upstream_sessions',
      'Upstream sessions now (2 while a GOAWAY is followed)',
      (s) => s.upstreamSessions,
    );
    gauge(
      'pushcast_relay_cache_bytes',
      'Bytes of cached streams (catalog, inits, newest segments)',
      (s) => s.cacheBytes,
    );
    counter('pushcast_relay_sessions_accepted_total', 'Downstream sessions accepted', (s) => s.sessionsAccepted);
    counter(
      'pushcast_relay_sessions_refused_total',
      'Downstream session requests refused (401, 403, 404, 503)',
      (s) => s.sessionsRefused,
    );
    counter('pushcast_relay_upstream_streams_total', 'Upstream streams read', (s) => s.streamsReceived);
    counter(
      'pushcast_relay_streams_forwarded_total',
      'Upstream streams relayed as new (fanned out and cached)',
      (s) => s.streamsForwarded,
    );
    counter(
      'pushcast_relay_upstream_duplicates_total',
      'Upstream streams with an ID already relayed, stopped',
      (s) => s.duplicates,
    );
    counter(
      'pushcast_relay_upstream_takeovers_total',
      'Segments continued from another upstream copy after the first was lost',
      (s) => s.takeovers,
    );
    counter('pushcast_relay_upstream_malformed_total', 'Upstream streams dropped as malformed', (s) => s.malformed);
    counter(
      'pushcast_relay_upstream_oversize_total',
      'Upstream streams dropped past the per-stream byte bound',
      (s) => s.oversize,
    );
    counter(
      'pushcast_relay_upstream_limited_total',
      "Upstream streams stopped at the relay's stream limit",
      (s) => s.limited,
    );
    counter(
      'pushcast_relay_segments_aborted_total',
      'Relayed streams aborted downstream (upstream copy failed)',
      (s) => s.aborted,
    );
    counter('pushcast_relay_upstream_bytes_total', 'Stream bytes received upstream', (s) => s.bytesReceived);
    counter('pushcast_relay_downstream_bytes_total', 'Stream bytes handed to downstream sessions', (s) => s.bytesSent);
    counter('pushcast_relay_downstream_streams_total', 'Streams opened downstream', (s) => s.streamsSent);
    counter(
      'pushcast_relay_downstream_cancelled_total',
      'Downstream streams reset by the relay (resource limit, or upstream aborted)',
      (s) => s.streamsCancelled,
    );
    counter(
      'pushcast_relay_downstream_stopped_total',
      'Downstream streams stopped by the viewer (STOP_SENDING)',
      (s) => s.streamsStopped,
    );
    counter(
      'pushcast_relay_upstream_reconnects_total',
      'Upstream sessions opened again after the upstream was lost',
      (s) => s.upstreamReconnects,
    );
    counter(
      'pushcast_relay_upstream_failures_total',
      'Upstream connection attempts that failed',
      (s) => s.upstreamFailures,
    );
    counter('pushcast_relay_upstream_goaways_total', 'GOAWAYs followed', (s) => s.goaways);
    counter(
      'pushcast_relay_upstream_incomplete_total',
      'Upstream sessions replaced because the catalog or an init did not come in time',
      (s) => s.upstreamIncomplete,
    );
    counter(
      'pushcast_relay_cache_evictions_total',
      'Cached streams evicted by the cache bounds',
      (s) => s.cacheEvictions,
    );
  }

  /** Stops: downstream sessions closed, upstream sessions closed, nothing reconnects. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    for (const up of this.upstreams) clearTimeout(up.watchdog);
    for (const rel of this.orphans) clearTimeout(rel.orphanTimer);
    this.orphans.clear();
    for (const s of this.subscribers) {
      clearTimeout(s.timer);
      s.sender.close(WarpCloseCode.BROADCAST_TERMINATED, 'relay stopped');
    }
    await Promise.all([...this.upstreams].map((u) => u.session.close(0, 'relay stopped').catch(() => undefined)));
  }
}

function stopQuietly(stream: SessionStream): void {
  try {
    stream.stopSending(0);
  } catch {
    // already gone
  }
}
