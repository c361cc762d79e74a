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
import type { Session, SessionRefusal, SessionRequest, SessionRoute, SessionTransport } from '../webtransport/index.js';
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

/** The HTTP statuses a session request is refused with (see `authorize`). */
export const WARP_REFUSAL_STATUSES = [400, 401, 403, 404, 503] as const;
export type WarpRefusalStatus = (typeof WARP_REFUSAL_STATUSES)[number];

/** Stream outcomes of every session, summed. */
interface WarpStreamTotals {
  streamsOpened: number;
  streamsFinished: number;
  streamsCancelled: number;
  streamsStopped: number;
  bytesWritten: number;
}

/**
 * A WarpServer's counts. The stream and byte totals cover every session so far, the closed ones
 * included (they are kept when a session closes), so they never go down; backlogBytes is now.
 */
export interface WarpServerStats extends WarpStreamTotals {
  /** Sessions now. */
  sessions: number;
  sessionsAccepted: number;
  sessionsAcceptedByTransport: Record<SessionTransport, number>;
  sessionsRefused: number;
  sessionsRefusedByStatus: Record<WarpRefusalStatus, number>;
  /** Bytes waiting for the transport now (queued, or handed to a stream and not yet taken), over every session. */
  backlogBytes: number;
  /** Each open session's sender. */
  senders: WarpSenderStats[];
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
export function parseWarpPath(
  path: string,
): { broadcast: string; token?: string; latencyMs?: number; tracks?: string[] } | undefined {
  const url = new URL(path, 'https://warp.invalid');
  const m = /^\/warp\/([A-Za-z0-9_-]{1,64})$/.exec(url.pathname);
  if (!m) return undefined;
  const latency = Number(url.searchParams.get('latency'));
  const tracks = url.searchParams
    .get('tracks')
    ?.split(',')
    .filter((t) => t.length > 0);
  return {
    broadcast: m[1]!,
    token: url.searchParams.get('token') ?? undefined,
    latencyMs: Number.isFinite(latency) && latency > 0 ? latency : undefined,
    tracks,
  };
}

export class WarpServer implements SessionRoute {
  private readonly broadcasts = new Map<string, WarpProducer>();
  private readonly subscribers = new Set<Subscriber>();
  private readonly counters = { sessionsAccepted: 0, sessionsRefused: 0 };
  private readonly accepted: Record<SessionTransport, number> = { webtransport: 0, websocket: 0 };
  private readonly refused: Record<WarpRefusalStatus, number> = { 400: 0, 401: 0, 403: 0, 404: 0, 503: 0 };
  /** The stream and byte counts of the sessions that closed. */
  private readonly retired: WarpStreamTotals = {
    streamsOpened: 0,
    streamsFinished: 0,
    streamsCancelled: 0,
    streamsStopped: 0,
    bytesWritten: 0,
  };

  constructor(private readonly o: WarpServerOptions = {}) {}

  add(producer: WarpProducer): void {
    this.broadcasts.set(producer.o.broadcast, producer);
    producer.on('segment', (source) => {
      for (const s of this.subscribers)
        if (s.broadcast === producer.o.broadcast && s.tracks.has(source.track)) s.sender.send(source);
    });
  }

  authorize(request: SessionRequest): SessionRefusal | undefined {
    const refuse = (status: WarpRefusalStatus, reason: string): SessionRefusal => {
      this.counters.sessionsRefused++;
      this.refused[status]++;
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
    if (unknown?.length)
      return refuse(
        400,
        `no track named ${unknown.join(', ')} (tracks: ${catalog.tracks.map((t) => t.id).join(', ')})`,
      );
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
    const sender = new WarpSender(session, {
      maxBacklogBytes: Math.ceil((bitsPerSecond / 8) * seconds * 1.5) + 256 * 1024,
    });
    const subscriber: Subscriber = { session, sender, broadcast: target.broadcast, tracks: chosen };
    this.subscribers.add(subscriber);
    this.counters.sessionsAccepted++;
    this.accepted[session.transport]++;
    session.once('close', () => this.retire(subscriber));
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

  /** A session is gone: its sender's counts join those of the sessions closed before (once). */
  private retire(subscriber: Subscriber): void {
    if (!this.subscribers.delete(subscriber)) return;
    const s = subscriber.sender.stats();
    const r = this.retired;
    r.streamsOpened += s.streamsOpened;
    r.streamsFinished += s.streamsFinished;
    r.streamsCancelled += s.streamsCancelled;
    r.streamsStopped += s.streamsStopped;
    r.bytesWritten += s.bytesWritten;
  }

  /** Counts for metrics; it walks the open sessions, so it is for a scrape, not for a hot path. */
  stats(): WarpServerStats {
    const senders = [...this.subscribers].map((s) => s.sender.stats());
    const totals = { ...this.retired, backlogBytes: 0 };
    for (const s of senders) {
      totals.streamsOpened += s.streamsOpened;
      totals.streamsFinished += s.streamsFinished;
      totals.streamsCancelled += s.streamsCancelled;
      totals.streamsStopped += s.streamsStopped;
      totals.bytesWritten += s.bytesWritten;
      totals.backlogBytes += s.backlogBytes;
    }
    return {
      sessions: this.subscribers.size,
      ...this.counters,
      sessionsAcceptedByTransport: { ...this.accepted },
      sessionsRefusedByStatus: { ...this.refused },
      ...totals,
      senders,
    };
  }

  /** §4.7: code 0, the broadcast is over. */
  close(): void {
    for (const s of [...this.subscribers]) {
      s.sender.close(WarpCloseCode.BROADCAST_TERMINATED, 'broadcast terminated');
      this.retire(s);
    }
  }
}
