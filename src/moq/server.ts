/**
 * MoQ sessions at `/moq` (docs/moq.md), so that `<moq-watch>` plays pushcast: moq-lite-03 when the
 * WebTransport protocol names it, else moq-lite-02 reached through the compatibility SETUP (`moql`, or no
 * protocol: the WebSocket fallback of `@moq/net`), on WebTransport over HTTP/3 and the fallback alike.
 *
 * - A broadcast per `WarpProducer` (`live` for `pushcast serve`), announced to every session that asks.
 * - Its tracks: `catalog.json` (the hang catalog: a group of one frame per version of it, a subscription
 *   before it comes is served when it does) and one per rendition;
 *   each GoP (pushcast segment) a group whose sequence is the segment number, each CMAF chunk a frame as
 *   soon as the packager emits it. A subscription starts with the group under way (from its start: its
 *   key frame), then each new one.
 * - Delivery: a session's group streams go through a `WarpSender` (strict priority by order, its own
 *   queue behind QUIC's eight urgencies, the resource limit): higher subscriber priority first (hang asks
 *   catalog 100, audio 80, video 60), and within a track the newest group first, so that under
 *   congestion the oldest groups are the ones left behind, and reset first at the limit.
 * - Bounds: sessions (`maxSessions`, 503), a SETUP within `setupTimeoutMs` (else the session is
 *   closed), control messages `maxMessageBytes`, subscriptions and announce streams per session
 *   (`maxSubscriptions`, `maxAnnounceStreams`: past them the stream is reset), the send backlog
 *   (bitrate × 2 s × 1.5 + 256 KiB, as Warp's); the peer's streams at once are the transport's bound.
 * - Tokens, when configured: `?token=` (401 missing, 403 wrong).
 */
import type { Session, SessionRefusal, SessionRequest, SessionRoute, SessionStream } from '../webtransport/index.js';
import { backlogLimit } from '../warp/fanout.js';
import type { BroadcastFeed } from '../warp/feed.js';
import { WarpSender, type StreamFraming, type WarpSenderStats } from '../warp/sender.js';
import { GrowingSource, type WarpSource } from '../warp/source.js';
import {
  MOQ_LITE_03_PROTOCOL,
  MOQ_SUBSCRIBE_OK_TYPE,
  MOQT_16_PROTOCOL,
  MoqLiteStream,
  MoqLiteVersion,
  type MoqLiteDraft,
  MoqStreamReader,
  WireError,
  concatBytes,
  decodeMoqAnnouncePlease,
  decodeMoqClientSetup,
  decodeMoqSubscribe,
  decodeMoqSubscribeUpdate,
  encodeMoqAnnounce,
  encodeMoqAnnounceInit,
  encodeMoqFrameHeader,
  encodeMoqGroupStreamStart,
  encodeMoqServerSetup,
  encodeMoqStreamStart,
  encodeMoqSubscribeOk,
  encodeVarint,
  frameMoqMessage,
  frameMoqtMessage,
  type MoqSubscribe,
} from '../wire/index.js';
import { HANG_CATALOG_TRACK, hangCatalog } from './catalog.js';
import { MoqtSession } from './ietf.js';
import {
  GroupSource,
  type MoqHost,
  type MoqSessionHandle,
  type Subscription,
  groupOrder,
  stripPrefix,
  trimPath,
} from './shared.js';
import type { MoqPublishIngest } from './publish-ingest.js';

export const MOQ_PATH = '/moq';
/** The WebTransport protocol of moq-lite whose version SETUP negotiates (`@moq/net` `Lite.ALPN`). */
export const MOQ_LITE_PROTOCOL = 'moql';
/** Every WebTransport protocol served, in the default order of preference. */
export const MOQ_PROTOCOLS: readonly string[] = [MOQ_LITE_03_PROTOCOL, MOQ_LITE_PROTOCOL, MOQT_16_PROTOCOL];

/** Session and stream error codes this server sends (application codes of the session's transport). */
export const MoqErrorCode = {
  /** A malformed or unexpected message. */
  PROTOCOL: 0x3,
  /** No version in common. */
  VERSION: 0x4,
  /** No SETUP in time. */
  TIMEOUT: 0x5,
  /** An unknown broadcast or track. */
  NOT_FOUND: 0x10,
  /** Past a bound of the session (subscriptions, announce streams). */
  TOO_MANY: 0x11,
  /** The broadcast ended or the server stops. */
  GOING_AWAY: 0x0,
} as const;

export interface MoqServerOptions {
  /**
   * WebTransport protocols answered, preferred first, among `moq-lite-03`, `moql` and `moqt-16`
   * (the default order). `<moq-watch>` offers all three; naming `moqt-16` first makes it speak IETF.
   */
  protocols?: readonly string[];
  /** Tokens a session must present (`?token=`); empty or absent = open. */
  tokens?: readonly string[];
  /** Sessions at once; more are refused 503. Default 10 000. */
  maxSessions?: number;
  /** Subscriptions open at once in a session. Default 64. */
  maxSubscriptions?: number;
  /** Announce streams open at once in a session. Default 8. */
  maxAnnounceStreams?: number;
  /** The largest control message. Default 16 KiB. */
  maxMessageBytes?: number;
  /** The SETUP must come within this. Default 10 s. */
  setupTimeoutMs?: number;
  /** A session's send backlog, bytes; default from the broadcast's bitrate (2 s of it × 1.5 + 256 KiB). */
  maxBacklogBytes?: number;
  /** Video frames per second and the CMAF chunk duration (ms), for the catalog. */
  framerate?: number;
  chunkMs?: number;
  /** Contribution: a session with its token is a publisher's, handed to it (publish-ingest.ts). */
  publish?: MoqPublishIngest;
  log?: (line: string) => void;
}

export interface MoqServerStats {
  sessions: number;
  sessionsAccepted: number;
  sessionsRefused: number;
  /** Sessions closed for a protocol error, no common version, or no SETUP in time. */
  sessionsFailed: number;
  subscriptions: number;
  subscriptionsRefused: number;
  groupsSent: number;
  /** Group streams, summed over every session so far (the closed ones included). */
  streamsOpened: number;
  streamsFinished: number;
  streamsCancelled: number;
  streamsStopped: number;
  bytesWritten: number;
  backlogBytes: number;
}

const DEFAULTS = {
  maxSessions: 10_000,
  maxSubscriptions: 64,
  maxAnnounceStreams: 8,
  maxMessageBytes: 16 * 1024,
  setupTimeoutMs: 10_000,
};

const GROUP_FRAMING: StreamFraming = {
  start: (source) => (source as GroupSource).start,
  part: (_source, part) => {
    const head = encodeMoqFrameHeader(part.length);
    const out = new Uint8Array(head.length + part.length);
    out.set(head);
    out.set(part, head.length);
    return out;
  },
};

interface Announcing {
  readonly prefix: string;
  readonly stream: SessionStream;
}

class MoqSession implements MoqSessionHandle {
  setUp = false;
  readonly subscriptions = new Map<number, Subscription>();
  readonly announcing = new Set<Announcing>();
  readonly sender: WarpSender;
  private readonly setupTimer: ReturnType<typeof setTimeout>;

  constructor(
    readonly server: MoqServer,
    readonly session: Session,
    maxBacklogBytes: number,
    /** 3 when the WebTransport protocol named moq-lite-03 (no SETUP); else 2, reached through the SETUP. */
    readonly draft: MoqLiteDraft,
  ) {
    this.sender = new WarpSender(session, { maxBacklogBytes, framing: GROUP_FRAMING });
    this.setUp = draft >= 3;
    this.setupTimer = setTimeout(
      () => !this.setUp && this.fail(MoqErrorCode.TIMEOUT, 'no SETUP in time'),
      this.setUp ? 0 : server.o.setupTimeoutMs,
    );
    session.on('stream', (stream) => void this.read(stream));
    session.once('close', () => clearTimeout(this.setupTimer));
  }

  fail(code: number, reason: string): void {
    this.server.counters.sessionsFailed++;
    this.server.o.log?.(`moq: session closed: ${reason}`);
    void this.session.close(code, reason).catch(() => undefined);
  }

  private async read(stream: SessionStream): Promise<void> {
    if (!stream.bidirectional) {
      // A subscriber-only session: nothing is read from the peer's unidirectional streams.
      stream.stopSending(MoqErrorCode.PROTOCOL);
      return;
    }
    const reader = new MoqStreamReader({ maxMessage: this.server.o.maxMessageBytes });
    let type: number | undefined;
    let messages = 0;
    let done: (() => void) | undefined;
    let refused = false;
    try {
      for await (const chunk of stream) {
        reader.push(chunk);
        if (type === undefined) {
          type = reader.varint();
          if (type === undefined) continue;
          if (type !== MoqLiteStream.CLIENT_COMPAT && !this.setUp)
            throw new MoqRefusal(MoqErrorCode.PROTOCOL, 'before SETUP');
        }
        const framing = type === MoqLiteStream.CLIENT_COMPAT && messages === 0 ? 'u16' : 'varint';
        for (let m = reader.message(framing); m !== undefined; m = reader.message('varint')) {
          messages++;
          if (messages > 1) {
            // The session stream may carry SESSION_INFO, which this server has no use for; a moq-lite-03
            // subscription its SUBSCRIBE_UPDATEs; nothing else follows the first message of a stream.
            if (type === MoqLiteStream.CLIENT_COMPAT) continue;
            if (type === MoqLiteStream.SUBSCRIBE && this.draft >= 3) {
              this.update(stream, decodeMoqSubscribeUpdate(m).priority);
              continue;
            }
            throw new MoqRefusal(MoqErrorCode.PROTOCOL, `a second message on a stream of type ${type}`);
          }
          done = this.first(type, m, stream);
        }
      }
    } catch (error) {
      refused = true;
      if (error instanceof MoqRefusal) {
        if (error.session) this.fail(error.code, error.message);
        else stream.reset(error.code), stream.stopSending(error.code);
      } else if (error instanceof WireError) this.fail(MoqErrorCode.PROTOCOL, `malformed message: ${error.message}`);
      // else: the peer reset the stream, or the session is gone
    } finally {
      done?.();
    }
    // The peer ended its side (the subscription or the announce interest is over): so does this one.
    if (!refused) await stream.end().catch(() => undefined);
  }

  /** The first message of a stream; returns what to do when the stream ends. */
  private first(type: number, payload: Uint8Array, stream: SessionStream): (() => void) | undefined {
    switch (type) {
      case MoqLiteStream.CLIENT_COMPAT: {
        if (this.setUp) throw new MoqRefusal(MoqErrorCode.PROTOCOL, 'a second SETUP', true);
        const setup = decodeMoqClientSetup(payload);
        if (!setup.versions.includes(MoqLiteVersion.LITE_02))
          throw new MoqRefusal(
            MoqErrorCode.VERSION,
            `no version in common: offered ${setup.versions.map((v) => `0x${v.toString(16)}`).join(', ')}, served moq-lite-02`,
            true,
          );
        this.setUp = true;
        clearTimeout(this.setupTimer);
        void stream
          .write(
            encodeMoqStreamStart(
              MoqLiteStream.SERVER_COMPAT,
              frameMoqtMessage(encodeMoqServerSetup({ version: MoqLiteVersion.LITE_02, parameters: new Map() })),
            ),
          )
          .catch(() => undefined);
        return undefined;
      }
      case MoqLiteStream.ANNOUNCE: {
        if (this.announcing.size >= this.server.o.maxAnnounceStreams)
          throw new MoqRefusal(MoqErrorCode.TOO_MANY, 'too many announce streams');
        const { prefix } = decodeMoqAnnouncePlease(payload);
        const a: Announcing = { prefix: trimPath(prefix), stream };
        this.announcing.add(a);
        const suffixes = this.server.broadcastNames().flatMap((name) => {
          const s = stripPrefix(a.prefix, name);
          return s === undefined ? [] : [s];
        });
        const answer =
          this.draft >= 3
            ? suffixes.map((suffix) => frameMoqMessage(encodeMoqAnnounce({ active: true, suffix }, 3)))
            : [frameMoqMessage(encodeMoqAnnounceInit(suffixes))];
        void stream.write(concatBytes(answer)).catch(() => undefined);
        return () => this.announcing.delete(a);
      }
      case MoqLiteStream.SUBSCRIBE: {
        const m: MoqSubscribe = decodeMoqSubscribe(payload, this.draft);
        if (this.subscriptions.has(m.id))
          throw new MoqRefusal(MoqErrorCode.PROTOCOL, `subscription ${m.id} again`, true);
        if (this.subscriptions.size >= this.server.o.maxSubscriptions) {
          this.server.counters.subscriptionsRefused++;
          throw new MoqRefusal(MoqErrorCode.TOO_MANY, 'too many subscriptions');
        }
        const broadcast = trimPath(m.broadcast);
        if (!this.server.has(broadcast, m.track)) {
          this.server.counters.subscriptionsRefused++;
          throw new MoqRefusal(MoqErrorCode.NOT_FOUND, `no track ${m.track} in ${broadcast}`);
        }
        const sub: Subscription = { id: m.id, broadcast, track: m.track, priority: m.priority, stream };
        this.subscriptions.set(m.id, sub);
        // moq-lite-03: what is granted is the priority and latency asked; groups go newest first whatever
        // the order asked, so that congestion leaves the oldest behind.
        const ok =
          this.draft >= 3
            ? concatBytes([
                encodeVarint(MOQ_SUBSCRIBE_OK_TYPE),
                frameMoqMessage(
                  encodeMoqSubscribeOk(3, {
                    priority: m.priority,
                    ordered: false,
                    maxLatency: m.maxLatency ?? 0,
                    startGroup: m.startGroup,
                    endGroup: m.endGroup,
                  }),
                ),
              ])
            : frameMoqMessage(encodeMoqSubscribeOk());
        void stream.write(ok).catch(() => undefined);
        this.server.start(this, sub);
        return () => this.subscriptions.delete(m.id);
      }
      default:
        throw new MoqRefusal(MoqErrorCode.PROTOCOL, `unknown stream type ${type}`);
    }
  }

  /** A moq-lite-03 SUBSCRIBE_UPDATE: the subscription's new priority, for the groups sent from now on. */
  private update(stream: SessionStream, priority: number): void {
    for (const sub of this.subscriptions.values()) if (sub.stream === stream) sub.priority = priority;
  }

  /** Sends a segment of the subscription's track as a group. */
  sendGroup(sub: Subscription, source: WarpSource, sequence: number): void {
    const start = encodeMoqGroupStreamStart({ subscribe: sub.id, sequence });
    this.server.counters.groupsSent++;
    this.sender.send(new GroupSource(source, start, groupOrder(sub.priority, sequence)));
  }

  announce(name: string, active: boolean): void {
    for (const a of this.announcing) {
      const suffix = stripPrefix(a.prefix, name);
      if (suffix === undefined) continue;
      void a.stream.write(frameMoqMessage(encodeMoqAnnounce({ active, suffix }, this.draft))).catch(() => undefined);
    }
  }
}

class MoqRefusal extends Error {
  constructor(
    readonly code: number,
    message: string,
    /** The whole session ends, not only the stream. */
    readonly session = false,
  ) {
    super(message);
  }
}

export class MoqServer implements SessionRoute, MoqHost {
  /**
   * WebTransport protocols answered, preferred first: `moq-lite-03` (no SETUP), then `moql`, moq-lite
   * with its version chosen in SETUP (the compatibility handshake, moq-lite-02), which every `@moq/net`
   * offers, as does a session without a protocol (the WebSocket fallback); then `moqt-16`
   * (draft-ietf-moq-transport-16, ietf.ts). `MoqServerOptions.protocols` may reorder them.
   */
  readonly protocols: readonly string[];
  readonly o: Required<Pick<MoqServerOptions, keyof typeof DEFAULTS>> & MoqServerOptions;
  private readonly broadcasts = new Map<string, BroadcastFeed>();
  /** Each broadcast's catalog as last sent: its JSON, its group and that group's sequence. */
  private readonly catalogs = new Map<string, { json: string; source: WarpSource; sequence: number }>();
  private readonly sessions = new Set<MoqSessionHandle>();
  private readonly unsubscribe: (() => void)[] = [];
  readonly counters = {
    sessionsAccepted: 0,
    sessionsRefused: 0,
    sessionsFailed: 0,
    subscriptionsRefused: 0,
    groupsSent: 0,
  };
  private readonly retired = {
    streamsOpened: 0,
    streamsFinished: 0,
    streamsCancelled: 0,
    streamsStopped: 0,
    bytesWritten: 0,
  };

  constructor(o: MoqServerOptions = {}) {
    this.o = { ...DEFAULTS, ...o };
    this.protocols = o.protocols ?? MOQ_PROTOCOLS;
    const unknown = this.protocols.filter((p) => !MOQ_PROTOCOLS.includes(p));
    if (unknown.length > 0) throw new Error(`MoQ protocols not served: ${unknown.join(', ')}`);
  }

  /** Serves a broadcast (`WarpProducer.feed()`, `WarpRelay.feed()`) and announces it. */
  add(feed: BroadcastFeed): void {
    const name = feed.name;
    this.broadcasts.set(name, feed);
    this.unsubscribe.push(
      feed.onSegment((source) => {
        if (source.segment === undefined) return;
        for (const s of this.sessions)
          for (const sub of s.subscriptions.values())
            if (sub.broadcast === name && sub.track === source.track) s.sendGroup(sub, source, source.segment);
      }),
    );
    const off = feed.onCatalog?.(() => this.catalogChanged(name));
    if (off) this.unsubscribe.push(off);
    for (const s of this.sessions) s.announce(name, true);
  }

  broadcastNames(): string[] {
    return [...this.broadcasts.keys()];
  }

  has(broadcast: string, track: string): boolean {
    const feed = this.broadcasts.get(broadcast);
    if (!feed) return false;
    // The catalog of a known broadcast is there to subscribe to even before it comes (a relay's, from upstream).
    if (track === HANG_CATALOG_TRACK) return true;
    return feed.catalog()?.tracks.some((t) => t.id === track) ?? false;
  }

  /** A new subscription: the catalog (now, or when it comes), or the track's group under way and each one after. */
  start(session: MoqSessionHandle, sub: Subscription): void {
    const feed = this.broadcasts.get(sub.broadcast)!;
    if (sub.track === HANG_CATALOG_TRACK) {
      const group = this.catalogGroup(sub.broadcast);
      if (group) session.sendGroup(sub, group.source, group.sequence);
      return;
    }
    for (const source of feed.current())
      if (source.track === sub.track && source.segment !== undefined) session.sendGroup(sub, source, source.segment);
  }

  /** The hang catalog of a broadcast as a group: one frame, a new group (sequence) each time it changes. */
  private catalogGroup(name: string): { source: WarpSource; sequence: number } | undefined {
    const feed = this.broadcasts.get(name)!;
    const warp = feed.catalog();
    if (!warp) return undefined;
    const json = JSON.stringify(
      hangCatalog(warp, { init: (id) => feed.init(id), framerate: this.o.framerate, chunkMs: this.o.chunkMs }),
    );
    const known = this.catalogs.get(name);
    if (known?.json === json) return known;
    const source = new GrowingSource({ kind: 'headers' }, HANG_CATALOG_TRACK, false);
    source.append(new TextEncoder().encode(json));
    source.end();
    const group = { json, source, sequence: known ? known.sequence + 1 : 0 };
    this.catalogs.set(name, group);
    return group;
  }

  /** The catalog came or changed: to every subscriber of it, as a new group. */
  private catalogChanged(name: string): void {
    const before = this.catalogs.get(name);
    const group = this.catalogGroup(name);
    if (!group || group === before) return;
    for (const s of this.sessions)
      for (const sub of s.subscriptions.values())
        if (sub.broadcast === name && sub.track === HANG_CATALOG_TRACK) s.sendGroup(sub, group.source, group.sequence);
  }

  authorize(request: SessionRequest): SessionRefusal | undefined {
    const refuse = (status: number, reason: string): SessionRefusal => {
      this.counters.sessionsRefused++;
      return { status, reason };
    };
    const url = new URL(request.path, 'https://moq.invalid');
    if (trimPath(url.pathname) !== trimPath(MOQ_PATH)) return refuse(404, `MoQ is served at ${MOQ_PATH}`);
    const tokens = this.o.tokens ?? [];
    if (this.o.publish?.accepts(request.path)) return undefined;
    // Where publishers come with a token, a token that is no one's is refused even if watching is open.
    const given = url.searchParams.get('token');
    if (this.o.publish && given !== null && !tokens.includes(given)) {
      this.o.log?.("moq: session refused (403): a token that is neither the publisher's nor a viewer's");
      return refuse(403, 'wrong token');
    }
    if (tokens.length > 0) {
      const token = url.searchParams.get('token');
      if (token === null) return refuse(401, 'a token is needed (?token=)');
      if (!tokens.includes(token)) return refuse(403, 'wrong token');
    }
    if (this.sessions.size >= this.o.maxSessions) return refuse(503, `at most ${this.o.maxSessions} MoQ sessions`);
    return undefined;
  }

  session(session: Session, request: SessionRequest): void {
    const draft = request.protocol === MOQ_LITE_03_PROTOCOL ? 3 : 2;
    if (this.o.publish?.accepts(request.path)) {
      this.counters.sessionsAccepted++;
      return this.o.publish.session(session, draft);
    }
    const bits = [...this.broadcasts.values()].reduce(
      (n, p) => n + (p.catalog()?.tracks.reduce((m, t) => m + t.bandwidth, 0) ?? 0),
      0,
    );
    const backlog = this.o.maxBacklogBytes ?? backlogLimit(bits, 2000);
    const s =
      request.protocol === MOQT_16_PROTOCOL
        ? new MoqtSession(this, session, backlog)
        : new MoqSession(this, session, backlog, draft);
    this.sessions.add(s);
    this.counters.sessionsAccepted++;
    session.once('close', () => {
      this.sessions.delete(s);
      const st = s.sender.stats();
      for (const k of Object.keys(this.retired) as (keyof typeof this.retired)[]) this.retired[k] += st[k];
    });
  }

  stats(): MoqServerStats {
    const senders: WarpSenderStats[] = [...this.sessions].map((s) => s.sender.stats());
    const sum = (k: keyof typeof this.retired) => this.retired[k] + senders.reduce((n, s) => n + s[k], 0);
    return {
      sessions: this.sessions.size,
      ...this.counters,
      subscriptions: [...this.sessions].reduce((n, s) => n + s.subscriptions.size, 0),
      streamsOpened: sum('streamsOpened'),
      streamsFinished: sum('streamsFinished'),
      streamsCancelled: sum('streamsCancelled'),
      streamsStopped: sum('streamsStopped'),
      bytesWritten: sum('bytesWritten'),
      backlogBytes: senders.reduce((n, s) => n + s.backlogBytes, 0),
    };
  }

  /** Every session is closed (code 0: the broadcast is over). */
  async close(): Promise<void> {
    this.o.publish?.close();
    for (const off of this.unsubscribe.splice(0)) off();
    for (const name of this.broadcasts.keys()) for (const s of this.sessions) s.announce(name, false);
    await Promise.all(
      [...this.sessions].map((s) => s.session.close(MoqErrorCode.GOING_AWAY, 'broadcast over').catch(() => undefined)),
    );
  }
}
