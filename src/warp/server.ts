/**
 * Warp sessions for broadcasts (draft-lcurley-warp-00 §4.1, §4.7, §5.4): a SessionRoute for
 * `/warp/<broadcast>`, on WebTransport over HTTP/3 and on the WebSocket fallback alike.
 *
 * - The CONNECT path names the broadcast and carries the token (§4.1): `/warp/<broadcast>?token=…`;
 *   with tokens configured, a missing one is refused 401 and a wrong one 403, each with a one-line reason.
 * - A session gets the catalog, the init segments and each track's newest segment (the newest GoP), then
 *   every new segment as the producer makes it, through its own WarpSender (priorities, resource limit).
 * - `latency=<ms>` in the query is the viewer's buffer: the sender's resource limit follows it, since
 *   media the player would skip anyway is not worth queuing.
 * - `tracks=<id>,<id>` picks the tracks; by default the best video rendition and every audio track (Warp
 *   answers congestion by skipping, not by switching renditions). The session's catalog lists only these.
 * - `goaway(url)` (§5.4) tells every session to move, lets each finish the segments under way (the new
 *   server sends the next ones), then closes it with code 1; `graceMs` bounds each step.
 */
import type { Session, SessionRefusal, SessionRequest, SessionRoute } from '../webtransport/index.js';
import { WarpCloseCode } from '../wire/index.js';
import type { WarpCatalog } from './catalog.js';
import { catalogSource, type WarpProducer } from './producer.js';
import { WarpSender, type WarpSenderStats } from './sender.js';

export const WARP_PATH = '/warp';

export interface WarpServerOptions {
  /** Accepted tokens; empty or absent = no token needed. */
  tokens?: readonly string[];
  /** Sessions at once, over every broadcast; more are refused 503. */
  maxSessions?: number;
  log?: (line: string) => void;
}

interface Subscriber {
  session: Session;
  sender: WarpSender;
  broadcast: string;
  tracks: ReadonlySet<string>;
}

/** The best video rendition and every audio track. */
function defaultTracks(catalog: WarpCatalog): string[] {
  const video = catalog.tracks.filter((t) => t.kind === 'video').sort((a, b) => b.bandwidth - a.bandwidth)[0];
  return [...(video ? [video.id] : []), ...catalog.tracks.filter((t) => t.kind === 'audio').map((t) => t.id)];
}

/** Parses `/warp/<broadcast>?…`; undefined when the path is not one. */
export function parseWarpPath(path: string): { broadcast: string; token?: string; latencyMs?: number; tracks?: string[] } | undefined {
  const url = new URL(path, 'https://warp.invalid');
  const m = /^\/warp\/([A-Za-z0-9_-]{1,64})$/.exec(url.pathname);
  if (!m) return undefined;
  const latency = Number(url.searchParams.get('latency'));
  const tracks = url.searchParams.get('tracks')?.split(',').filter((t) => t.length > 0);
  return { broadcast: m[1]!, token: url.searchParams.get('token') ?? undefined, latencyMs: Number.isFinite(latency) && latency > 0 ? latency : undefined, tracks };
}

export class WarpServer implements SessionRoute {
  private readonly broadcasts = new Map<string, WarpProducer>();
  private readonly subscribers = new Set<Subscriber>();
  private readonly counters = { sessionsAccepted: 0, sessionsRefused: 0 };

  constructor(private readonly o: WarpServerOptions = {}) {}

  add(producer: WarpProducer): void {
    this.broadcasts.set(producer.o.broadcast, producer);
    producer.on('segment', (source) => {
      for (const s of this.subscribers) if (s.broadcast === producer.o.broadcast && s.tracks.has(source.track)) s.sender.send(source);
    });
  }

  authorize(request: SessionRequest): SessionRefusal | undefined {
    const refuse = (status: number, reason: string): SessionRefusal => {
      this.counters.sessionsRefused++;
      return { status, reason };
    };
    const target = parseWarpPath(request.path);
    if (!target) return refuse(404, `a Warp path is ${WARP_PATH}/<broadcast>`);
    if (!this.broadcasts.has(target.broadcast)) return refuse(404, `no broadcast named ${target.broadcast}`);
    const tokens = this.o.tokens ?? [];
    if (tokens.length > 0) {
      if (target.token === undefined) return refuse(401, 'this broadcast needs a token (?token=…)');
      if (!tokens.includes(target.token)) return refuse(403, 'wrong token');
    }
    if (this.subscribers.size >= (this.o.maxSessions ?? 10_000)) return refuse(503, 'too many Warp sessions');
    const catalog = this.broadcasts.get(target.broadcast)!.catalog();
    if (!catalog) return refuse(503, 'the broadcast is starting');
    const unknown = target.tracks?.filter((t) => !catalog.tracks.some((c) => c.id === t));
    if (unknown?.length) return refuse(400, `no track named ${unknown.join(', ')} (tracks: ${catalog.tracks.map((t) => t.id).join(', ')})`);
    return undefined;
  }

  session(session: Session, request: SessionRequest): void {
    const target = parseWarpPath(request.path)!;
    const producer = this.broadcasts.get(target.broadcast)!;
    const full = producer.catalog()!;
    const chosen = new Set(target.tracks ?? defaultTracks(full));
    const catalog = { ...full, tracks: full.tracks.filter((t) => chosen.has(t.id)) };
    // §6.1: the resource limit follows the media bitrate and the viewer's buffer.
    const seconds = Math.min(10, Math.max(0.5, (target.latencyMs ?? 2000) / 1000));
    const bitsPerSecond = catalog.tracks.reduce((n, t) => n + t.bandwidth, 0);
    const sender = new WarpSender(session, { maxBacklogBytes: Math.ceil((bitsPerSecond / 8) * seconds * 1.5) + 256 * 1024 });
    const subscriber: Subscriber = { session, sender, broadcast: target.broadcast, tracks: chosen };
    this.subscribers.add(subscriber);
    this.counters.sessionsAccepted++;
    session.once('close', () => this.subscribers.delete(subscriber));
    // Streams the viewer opens are not part of Warp here (§4.2 allows other uses): refused.
    session.on('stream', (stream) => stream.stopSending(0));
    sender.send(catalogSource(catalog));
    for (const track of catalog.tracks) {
      const init = producer.init(track.id);
      if (init) sender.send(init);
    }
    for (const source of producer.current()) if (chosen.has(source.track)) sender.send(source);
    this.o.log?.(`warp: session for ${target.broadcast} over ${session.transport} (${this.subscribers.size} now)`);
  }

  /**
   * §5.4: every session is told to connect to `url`; each finishes the segments under way ("SHOULD wait
   * until … any pending streams have been fully acknowledged"), then is closed with code 1 (§4.7).
   * `graceMs` bounds each wait, so a dead session cannot hold the others.
   */
  async goaway(url: string, graceMs: number): Promise<void> {
    const within = (p: Promise<void>) => Promise.race([p, new Promise<void>((r) => setTimeout(r, graceMs))]);
    await Promise.all(
      [...this.subscribers].map(async (s) => {
        await within(s.sender.goaway(url));
        await within(s.sender.drained());
        await new Promise((r) => setTimeout(r, 100)); // the last bytes' acknowledgements
        s.sender.close(WarpCloseCode.GOAWAY, 'GOAWAY');
      }),
    );
  }

  stats(): { sessions: number; sessionsAccepted: number; sessionsRefused: number; senders: WarpSenderStats[] } {
    return { sessions: this.subscribers.size, ...this.counters, senders: [...this.subscribers].map((s) => s.sender.stats()) };
  }

  /** §4.7: code 0, the broadcast is over. */
  close(): void {
    for (const s of this.subscribers) s.sender.close(WarpCloseCode.BROADCAST_TERMINATED, 'broadcast terminated');
    this.subscribers.clear();
  }
}
