/**
 * `pushcast multicast send`, in process: every rendition of the live window that has a multicast
 * session gets each new segment as a signed server push into that session (WHP 336 §4; issue 4 item 2).
 *
 * - One session per rendition: its own group, port and session ID (so a receiver joins exactly the
 *   renditions it wants, and the Alt-Svc of a rendition's segments names one session).
 * - A segment is pushed once complete (`segmentcompleted`), under the URL and with the headers of its
 *   unicast response, so that a pushed response and a fetched one are interchangeable in a cache.
 *   Truncated segments (an encoder that died mid-segment) are not pushed.
 * - The init segment is pushed before the first media segment and again before a media segment once
 *   `initIntervalMs` has passed, so that a receiver joining late can decode within that interval.
 * - One DATA frame per push, so that losses map to exact byte ranges (see below).
 * - Pacing: each session's token bucket runs at the rendition's bandwidth × `headroom` (so a segment
 *   leaves within about 1/headroom of its duration); a segment larger than the queue bound is dropped
 *   whole and counted (receivers repair by unicast), never sent half.
 * - `close()` ends each session with a signed goaway (draft-pardue-quic-http-mcast §5.5).
 */
import type { LiveTrack, LiveWindow, Segment } from '../media/index.js';
import { MulticastUdpSender, QueueFullError, SenderClosedError } from './udp-sender.js';
import { PushPacketizer, type PushFieldSigner } from './push-packetizer.js';

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
}

export interface LiveMulticastSenderOptions {
  window: LiveWindow;
  sessions: LiveSessionConfig[];
  /** The unicast response of a track's init segment or of a complete media segment. */
  resource(track: LiveTrack, segment: Segment | 'init'): LiveResource | undefined;
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
}

interface Session {
  config: LiveSessionConfig;
  track: LiveTrack;
  packetizer: PushPacketizer;
  sender: MulticastUdpSender;
  rate: number;
  lastInitAt: number;
  segments: number;
  inits: number;
  dropped: number;
  off: () => void;
}

export function hex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export class LiveMulticastSender {
  private constructor(
    private readonly o: LiveMulticastSenderOptions,
    private readonly sessions: Session[],
  ) {}

  static async start(o: LiveMulticastSenderOptions): Promise<LiveMulticastSender> {
    const headroom = o.headroom ?? 2;
    const sessions: Session[] = [];
    try {
      for (const config of o.sessions) {
        const track = o.window.track(config.trackId);
        if (!track) throw new Error(`no track ${config.trackId} for a multicast session`);
        const rate = Math.max(64_000, track.info.bandwidth * headroom);
        const sender = await MulticastUdpSender.open({
          group: config.group,
          port: config.port,
          rateBitsPerSecond: rate,
          ttl: o.ttl,
          loopback: o.loopback ?? true,
          multicastInterface: o.interfaceAddress,
          bindAddress: o.interfaceAddress,
          maxQueuedBytes: 16 * 1024 * 1024,
        });
        const packetizer = new PushPacketizer({
          sessionId: config.sessionId,
          authority: o.authority,
          scheme: o.scheme,
          signer: o.signer,
          maxDatagramSize: o.maxDatagramSize,
          // One DATA frame per segment (RFC 9114 §7.2.1 sets no size limit): its only frame header sits
          // in the first packet, so a receiver maps every later lost packet to exact body bytes and
          // repairs just those; with 16 KB frames a lost frame header would cost the rest of the body.
          maxDataFrameSize: 64 * 1024 * 1024,
        });
        sessions.push({ config, track, packetizer, sender, rate, lastInitAt: -Infinity, segments: 0, inits: 0, dropped: 0, off: () => undefined });
      }
    } catch (error) {
      await Promise.all(sessions.map((s) => s.sender.close()));
      throw error;
    }
    const live = new LiveMulticastSender(o, sessions);
    for (const s of sessions) s.off = s.track.on('segmentcompleted', (segment) => void live.onSegment(s, segment));
    return live;
  }

  get stats(): LiveSessionStats[] {
    return this.sessions.map((s) => ({
      trackId: s.config.trackId,
      group: s.config.group,
      port: s.config.port,
      sessionId: hex(s.config.sessionId),
      rateBitsPerSecond: s.rate,
      segments: s.segments,
      inits: s.inits,
      dropped: s.dropped,
      packets: s.sender.stats.packets,
      bytes: s.sender.stats.bytes,
    }));
  }

  /** The source address each session sends from. */
  sourceAddress(trackId: string): string | undefined {
    return this.sessions.find((s) => s.config.trackId === trackId)?.sender.address().address;
  }

  private async onSegment(s: Session, segment: Segment): Promise<void> {
    if (segment.truncated) return;
    const now = Date.now();
    if (now - s.lastInitAt >= (this.o.initIntervalMs ?? 0)) {
      const init = this.o.resource(s.track, 'init');
      if (init && (await this.send(s, init))) {
        s.lastInitAt = now;
        s.inits++;
      }
    }
    const resource = this.o.resource(s.track, segment);
    if (resource && (await this.send(s, resource))) s.segments++;
  }

  private async send(s: Session, resource: LiveResource): Promise<boolean> {
    try {
      const { 'content-length': _length, ...headers } = resource.headers;
      const datagrams = await s.packetizer.push({ path: resource.path, responseHeaders: headers, body: resource.body });
      await s.sender.send(datagrams);
      return true;
    } catch (error) {
      if (error instanceof SenderClosedError || s.packetizer.isClosed) return false;
      s.dropped++;
      if (error instanceof QueueFullError) this.o.log?.(`multicast ${s.config.trackId}: ${resource.path} dropped: ${error.message}`);
      else this.o.log?.(`multicast ${s.config.trackId}: ${resource.path} not sent: ${error instanceof Error ? error.message : String(error)}`);
      return false;
    }
  }

  /** Ends every session with a goaway, then closes the sockets. */
  async close(): Promise<void> {
    await Promise.all(
      this.sessions.map(async (s) => {
        s.off();
        try {
          await s.sender.send(await s.packetizer.goaway());
          await s.sender.flush();
        } catch {
          // closing anyway
        }
        await s.sender.close();
      }),
    );
  }
}
