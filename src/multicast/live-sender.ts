/**
 * `pushcast multicast send`, in process: every rendition of the live window that has a multicast
 * session gets each new segment as a signed server push into that session (WHP 336 §4).
 *
 * - One session per rendition: its own group, port and session ID (so a receiver joins exactly the
 *   renditions it wants, and the Alt-Svc of a rendition's segments names one session).
 * - Progressive (the default): a segment's push starts with the segment (`segmentstarted`: promise and
 *   response HEADERS) and each CMAF chunk follows as the packager emits it, authenticated by its own
 *   CHUNK_DIGEST (docs/multicast.md, "Progressive pushes"), so that a receiver plays a segment while it is
 *   still being produced, as a unicast LL-DASH player does. A segment cut short (an encoder that died
 *   mid-segment) is left unfinished: its receivers give it up and fetch it by unicast.
 * - Whole (`progressive: false`): a segment is pushed once complete (`segmentcompleted`), with `digest`
 *   and `content-length` in its HEADERS, for receivers that take no trailers. Truncated segments are not
 *   pushed.
 * - Either way, under the URL and with the headers of its unicast response, so that a pushed response and
 *   a fetched one are interchangeable in a cache.
 * - The init segment is pushed before the first media segment and again before a media segment once
 *   `initIntervalMs` has passed, so that a receiver joining late can decode within that interval.
 * - One DATA frame per push (or per chunk), so that losses map to exact byte ranges (see below).
 * - Pacing: each session's token bucket runs at the rendition's bandwidth × `headroom` (so a segment
 *   leaves within about 1/headroom of its duration); a segment larger than the queue bound is dropped
 *   whole and counted (receivers repair by unicast), never sent half.
 * - `close()` ends each session with a signed goaway (draft-pardue-quic-http-mcast §5.5).
 */
import type { LiveTrack, LiveWindow, Segment } from '../media/index.js';
import { MAX_MULTICAST_DATAGRAM, toHex } from '../wire/index.js';
import { MulticastUdpSender, QueueFullError, SenderClosedError } from './udp-sender.js';
import { PushPacketizer, type ProgressivePush, type PushFieldSigner } from './push-packetizer.js';
import { fecSourceDatagramSize, type FecOptions } from './fec-encoder.js';

/** A resource as its unicast response has it. */
export interface LiveResource {
  path: string;
  /** Response header fields (lowercase names), without content-length and digest. */
  headers: Record<string, string>;
  body: Uint8Array;
}

export interface LiveSessionConfig {
  trackId: string;
  group: string;
  port: number;
  sessionId: Uint8Array;
  /** Forward error correction: repair packets on `fec.port` (default port + 1); default none. */
  fec?: FecOptions;
}

export interface LiveMulticastSenderOptions {
  window: LiveWindow;
  sessions: LiveSessionConfig[];
  /** The unicast response of a track's init segment or of a complete media segment. */
  resource(track: LiveTrack, segment: Segment | 'init'): LiveResource | undefined;
  /** The URL and header fields of a segment's unicast response while it grows (no body, no length). */
  growing?(track: LiveTrack, segment: Segment): Omit<LiveResource, 'body'> | undefined;
  /** Push each segment chunk by chunk as it is produced (needs `growing`); default true when `growing` is given. */
  progressive?: boolean;
  /** `:authority` of the promised requests: the origin's public host:port. */
  authority: string;
  /** `:scheme` of the promised requests; default https. */
  scheme?: string;
  signer: PushFieldSigner;
  /** Outgoing interface address; it is the source address receivers join (RFC 4607). */
  interfaceAddress?: string;
  ttl?: number;
  /** Deliver to members on this host too; default true (receivers on the same machine). */
  loopback?: boolean;
  /** Pacing rate = bandwidth × headroom; default 2. */
  headroom?: number;
  /** Longest time between init pushes, ms; default 0 (before every media segment). */
  initIntervalMs?: number;
  maxDatagramSize?: number;
  log?: (line: string) => void;
}

export interface LiveSessionStats {
  trackId: string;
  group: string;
  port: number;
  sessionId: string;
  rateBitsPerSecond: number;
  segments: number;
  inits: number;
  dropped: number;
  packets: number;
  bytes: number;
  /** FEC repair packets and their bytes (0 without FEC). */
  repairPackets: number;
  repairBytes: number;
}

/** One multicast session as the live senders use it: signed pushes, the init repeated for late joiners, pacing, stats. */
export interface MulticastPushSessionOptions {
  name: string;
  group: string;
  port: number;
  sessionId: Uint8Array;
  rateBitsPerSecond: number;
  authority: string;
  scheme?: string;
  signer: PushFieldSigner;
  interfaceAddress?: string;
  ttl?: number;
  loopback?: boolean;
  initIntervalMs?: number;
  maxDatagramSize?: number;
  /** Forward error correction: repair packets on `fec.port` (default port + 1); default none. */
  fec?: FecOptions;
  log?: (line: string) => void;
}

/** A segment being pushed chunk by chunk; each call is sent in call order after the ones before. */
export interface LiveProgressivePush {
  chunk(bytes: Uint8Array): Promise<void>;
  end(): Promise<void>;
}

export class MulticastPushSession {
  private lastInitAt = -Infinity;
  private segments = 0;
  private inits = 0;
  private dropped = 0;

  private constructor(
    readonly o: MulticastPushSessionOptions,
    private readonly packetizer: PushPacketizer,
    private readonly sender: MulticastUdpSender,
  ) {}

  static async open(o: MulticastPushSessionOptions): Promise<MulticastPushSession> {
    const sender = await MulticastUdpSender.open({
      group: o.group,
      port: o.port,
      rateBitsPerSecond: o.rateBitsPerSecond,
      ttl: o.ttl,
      loopback: o.loopback ?? true,
      multicastInterface: o.interfaceAddress,
      bindAddress: o.interfaceAddress,
      maxQueuedBytes: 16 * 1024 * 1024,
      fec: o.fec && { ...o.fec, port: o.fec.port ?? o.port + 1, sessionId: o.sessionId },
    });
    const packetizer = new PushPacketizer({
      sessionId: o.sessionId,
      authority: o.authority,
      scheme: o.scheme,
      signer: o.signer,
      maxDatagramSize: o.fec
        ? fecSourceDatagramSize(o.maxDatagramSize ?? MAX_MULTICAST_DATAGRAM, o.sessionId.length)
        : o.maxDatagramSize,
      // One DATA frame per segment (RFC 9114 §7.2.1 sets no size limit): its only frame header sits
      // in the first packet, so a receiver maps every later lost packet to exact body bytes and
      // repairs just those; with 16 KB frames a lost frame header would cost the rest of the body.
      maxDataFrameSize: 64 * 1024 * 1024,
    });
    return new MulticastPushSession(o, packetizer, sender);
  }

  get stats(): LiveSessionStats {
    return {
      trackId: this.o.name,
      group: this.o.group,
      port: this.o.port,
      sessionId: toHex(this.o.sessionId),
      rateBitsPerSecond: this.o.rateBitsPerSecond,
      segments: this.segments,
      inits: this.inits,
      dropped: this.dropped,
      packets: this.sender.stats.packets,
      bytes: this.sender.stats.bytes,
      repairPackets: this.sender.stats.repairPackets,
      repairBytes: this.sender.stats.repairBytes,
    };
  }

  /** The source address the session sends from. */
  get sourceAddress(): string {
    return this.sender.address().address;
  }

  /** Pushes a media segment, preceded by the init segment when `initIntervalMs` has passed since the last. */
  async pushSegment(init: LiveResource | undefined, segment: LiveResource): Promise<void> {
    await this.pushInit(init);
    if (await this.send(segment)) this.segments++;
  }

  private async pushInit(init: LiveResource | undefined): Promise<void> {
    const now = Date.now();
    if (init && now - this.lastInitAt >= (this.o.initIntervalMs ?? 0) && (await this.send(init))) {
      this.lastInitAt = now;
      this.inits++;
    }
  }

  /**
   * Starts a progressive push of a segment (preceded by the init segment as in `pushSegment`): the returned
   * push takes its chunks as they are produced. Every call on every push of the session is sent in call
   * order. Undefined when the push cannot start (session closed, or the promise could not be sent).
   */
  async startSegment(
    init: LiveResource | undefined,
    segment: Omit<LiveResource, 'body'>,
  ): Promise<LiveProgressivePush | undefined> {
    await this.pushInit(init);
    const { 'content-length': _length, ...headers } = segment.headers;
    let opened: { datagrams: Uint8Array[]; push: ProgressivePush };
    try {
      opened = await this.packetizer.openPush({ path: segment.path, responseHeaders: headers });
    } catch (error) {
      if (!this.packetizer.isClosed) this.fail(segment.path, error);
      return undefined;
    }
    if (!(await this.transmit(segment.path, opened.datagrams))) return undefined;
    let failed = false;
    const carry = async (datagrams: Promise<Uint8Array[]>, last: boolean) => {
      if (failed) return;
      try {
        failed = !(await this.transmit(segment.path, await datagrams));
      } catch (error) {
        failed = true;
        this.fail(segment.path, error);
      }
      if (last && !failed) this.segments++;
    };
    return {
      chunk: (bytes) => carry(opened.push.chunk(bytes), false),
      end: () => carry(opened.push.end(), true),
    };
  }

  /** Sends datagrams; false (counted as dropped unless the session closed) when they could not be queued. */
  private async transmit(path: string, datagrams: Uint8Array[]): Promise<boolean> {
    try {
      await this.sender.send(datagrams);
      return true;
    } catch (error) {
      if (error instanceof SenderClosedError || this.packetizer.isClosed) return false;
      this.fail(path, error);
      return false;
    }
  }

  private fail(path: string, error: unknown): void {
    this.dropped++;
    if (error instanceof QueueFullError) this.o.log?.(`multicast ${this.o.name}: ${path} dropped: ${error.message}`);
    else
      this.o.log?.(
        `multicast ${this.o.name}: ${path} not sent: ${error instanceof Error ? error.message : String(error)}`,
      );
  }

  private async send(resource: LiveResource): Promise<boolean> {
    try {
      const { 'content-length': _length, ...headers } = resource.headers;
      const datagrams = await this.packetizer.push({
        path: resource.path,
        responseHeaders: headers,
        body: resource.body,
      });
      return await this.transmit(resource.path, datagrams);
    } catch (error) {
      if (error instanceof SenderClosedError || this.packetizer.isClosed) return false;
      this.fail(resource.path, error);
      return false;
    }
  }

  /** Ends the session with a goaway (draft-pardue-quic-http-mcast §5.5), then closes the socket. */
  async close(): Promise<void> {
    try {
      await this.sender.send(await this.packetizer.goaway());
      await this.sender.flush();
    } catch {
      // closing anyway
    }
    await this.sender.close();
  }
}

export class LiveMulticastSender {
  private readonly offs: (() => void)[] = [];

  private constructor(private readonly sessions: MulticastPushSession[]) {}

  static async start(o: LiveMulticastSenderOptions): Promise<LiveMulticastSender> {
    const headroom = o.headroom ?? 2;
    const sessions: MulticastPushSession[] = [];
    const tracks: LiveTrack[] = [];
    try {
      for (const config of o.sessions) {
        const track = o.window.track(config.trackId);
        if (!track) throw new Error(`no track ${config.trackId} for a multicast session`);
        tracks.push(track);
        sessions.push(
          await MulticastPushSession.open({
            name: config.trackId,
            group: config.group,
            port: config.port,
            sessionId: config.sessionId,
            rateBitsPerSecond: Math.max(64_000, track.info.bandwidth * headroom),
            authority: o.authority,
            scheme: o.scheme,
            signer: o.signer,
            interfaceAddress: o.interfaceAddress,
            ttl: o.ttl,
            loopback: o.loopback,
            initIntervalMs: o.initIntervalMs,
            maxDatagramSize: o.maxDatagramSize,
            fec: config.fec,
            log: o.log,
          }),
        );
      }
    } catch (error) {
      await Promise.all(sessions.map((s) => s.close()));
      throw error;
    }
    const live = new LiveMulticastSender(sessions);
    const progressive = (o.progressive ?? true) && o.growing !== undefined;
    for (const [i, session] of sessions.entries()) {
      const track = tracks[i]!;
      if (progressive) live.followProgressively(track, session, o);
      else
        live.offs.push(
          track.on('segmentcompleted', (segment) => {
            if (segment.truncated) return;
            const resource = o.resource(track, segment);
            if (resource) void session.pushSegment(o.resource(track, 'init'), resource);
          }),
        );
    }
    return live;
  }

  get stats(): LiveSessionStats[] {
    return this.sessions.map((s) => s.stats);
  }

  /**
   * Each segment of `track` as a progressive push: opened when it starts, a chunk per packager chunk,
   * ended when it completes. The calls are chained in event order (chunks may come before the push has
   * opened); a truncated segment's push is left unfinished.
   */
  private followProgressively(track: LiveTrack, session: MulticastPushSession, o: LiveMulticastSenderOptions): void {
    const pushes = new Map<Segment, Promise<LiveProgressivePush | undefined>>();
    // Every step of the track's pushes, in event order: a segment's push starts on the wire after the one
    // before it ended, so that a receiver that sees a push promised knows the earlier ones are over.
    let tail: Promise<unknown> = Promise.resolve();
    const step = (segment: Segment, next: Promise<LiveProgressivePush | undefined>) => {
      pushes.set(segment, next);
      tail = next.catch(() => undefined);
    };
    this.offs.push(
      track.on('segmentstarted', (segment) => {
        const resource = o.growing!(track, segment);
        if (!resource) return;
        step(
          segment,
          tail.then(() => session.startSegment(o.resource(track, 'init'), resource)),
        );
      }),
      track.on('chunk', (segment, chunk) => {
        if (pushes.has(segment))
          step(
            segment,
            then(segment, (p) => p.chunk(chunk.bytes)),
          );
      }),
      track.on('segmentcompleted', (segment) => {
        if (!segment.truncated && pushes.has(segment))
          step(
            segment,
            then(segment, (p) => p.end()),
          );
        pushes.delete(segment);
      }),
      track.on('segmentevicted', (segment) => pushes.delete(segment)),
    );
    const then = (segment: Segment, step: (p: LiveProgressivePush) => Promise<void>) =>
      pushes.get(segment)!.then(async (p) => {
        if (p) await step(p);
        return p;
      });
  }

  /** Ends every session with a goaway, then closes the sockets. */
  async close(): Promise<void> {
    for (const off of this.offs) off();
    await Promise.all(this.sessions.map((s) => s.close()));
  }
}
