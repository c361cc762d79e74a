/**
 * The downstream half every Warp server has, the origin's (`WarpServer`) and a relay's (`WarpRelay`):
 * viewers' sessions, each with a `WarpSender` of its own (draft-lcurley-warp-00 §4.3, §4.4, §6.1).
 *
 * - **Authorization** (§4.1): a Warp path (404), a broadcast served here (404), the token when tokens
 *   are configured (401 missing, 403 wrong), room (503 past `maxSessions`), then the
 *   route's own checks; each refusal has a one-line reason and is counted by status.
 * - **Resource limit** (§4.4, §6.1): a session's sender resets its lowest-priority stream past a backlog
 *   of the media bitrate × the viewer's latency (`latency=` in the path, 0.5–10 s, default 2 s) × 1.5 +
 *   256 KiB; 4 MiB when the bitrate is not known; `maxBacklogBytes` instead when given.
 * - Streams a viewer opens are not part of Warp (§4.2 allows other uses): a unidirectional one is read as a
 *   SELECT (src/warp/select.ts) when the route switches renditions, every other one is stopped.
 * - **Totals** cover every session so far: a closed session's sender counts are carried over (retired),
 *   so they never go down.
 * - `goaway(url)` (§5.4) and `close()` (§4.7, code 0) for every session.
 */
import type {
  Session,
  SessionRefusal,
  SessionRequest,
  SessionStream,
  SessionTransport,
} from '../webtransport/index.js';
import { WarpCloseCode, WarpStreamReader, type WarpHeaders, type WarpSelect } from '../wire/index.js';
import { WARP_PATH, parseWarpPath, type WarpTarget } from './path.js';
import { MAX_SELECT_STREAM_BYTES } from './select.js';
import { WarpSender, type WarpSenderStats } from './sender.js';

export interface WarpFanoutOptions {
  /** Tokens a session must present (?token=…); empty or absent = open. */
  tokens?: readonly string[];
  /** Sessions at once; more are refused 503. Default 10 000. */
  maxSessions?: number;
  /** Each session's resource limit, bytes; default from the media bitrate and the viewer's latency. */
  maxBacklogBytes?: number;
  log?: (line: string) => void;
}

export const DEFAULT_MAX_WARP_SESSIONS = 10_000;
/** A session's resource limit when the media bitrate is not known. */
const UNKNOWN_BITRATE_BACKLOG = 4 * 1024 * 1024;

/** The HTTP statuses a session request is refused with. */
export const WARP_REFUSAL_STATUSES = [400, 401, 403, 404, 503] as const;
export type WarpRefusalStatus = (typeof WARP_REFUSAL_STATUSES)[number];

/** What every session's sender did, summed over the open sessions and those that closed. */
export interface WarpStreamTotals {
  /** Streams opened, and of them: sent whole (FIN), reset (resource limit, or aborted upstream), stopped by the viewer. */
  streamsOpened: number;
  streamsFinished: number;
  streamsCancelled: number;
  streamsStopped: number;
  bytesWritten: number;
}

export interface WarpFanoutStats extends WarpStreamTotals {
  /** Sessions now. */
  sessions: number;
  sessionsAccepted: number;
  sessionsAcceptedByTransport: Record<SessionTransport, number>;
  sessionsRefused: number;
  sessionsRefusedByStatus: Record<WarpRefusalStatus, number>;
  /** Bytes waiting for the transport now (queued, or handed to a stream and not yet taken), over every session. */
  backlogBytes: number;
  /** SELECT requests read from viewers, and streams refused as not one (malformed, too long). */
  selectsReceived: number;
  selectsRefused: number;
  /** Each open session's sender. */
  senders: WarpSenderStats[];
}

/** One viewer's session, its sender, and what the route keeps of it. */
export interface Viewer<T> {
  readonly session: Session;
  readonly sender: WarpSender;
  readonly target: WarpTarget;
  readonly data: T;
}

/** §6.1: the bytes a session may have waiting before its lowest-priority stream is reset. */
export function backlogLimit(bitsPerSecond: number, latencyMs: number | undefined): number {
  if (!(bitsPerSecond > 0) || !Number.isFinite(bitsPerSecond)) return UNKNOWN_BITRATE_BACKLOG;
  const seconds = Math.min(10, Math.max(0.5, (latencyMs ?? 2000) / 1000));
  return Math.ceil((bitsPerSecond / 8) * seconds * 1.5) + 256 * 1024;
}

const sumTotals = (into: WarpStreamTotals, s: WarpStreamTotals): void => {
  into.streamsOpened += s.streamsOpened;
  into.streamsFinished += s.streamsFinished;
  into.streamsCancelled += s.streamsCancelled;
  into.streamsStopped += s.streamsStopped;
  into.bytesWritten += s.bytesWritten;
};

export class WarpFanout<T = undefined> {
  private readonly viewers = new Set<Viewer<T>>();
  private readonly counters = { sessionsAccepted: 0, sessionsRefused: 0, selectsReceived: 0, selectsRefused: 0 };
  private readonly accepted: Record<SessionTransport, number> = { webtransport: 0, websocket: 0 };
  private readonly refused: Record<WarpRefusalStatus, number> = { 400: 0, 401: 0, 403: 0, 404: 0, 503: 0 };
  /** The sender counts of the sessions that closed. */
  private readonly retired: WarpStreamTotals = {
    streamsOpened: 0,
    streamsFinished: 0,
    streamsCancelled: 0,
    streamsStopped: 0,
    bytesWritten: 0,
  };
  /** `label` starts the log lines (`warp`, `relay`). */
  constructor(
    private readonly o: WarpFanoutOptions,
    private readonly label: string,
  ) {}

  /** Sessions now. */
  get size(): number {
    return this.viewers.size;
  }

  [Symbol.iterator](): IterableIterator<Viewer<T>> {
    return this.viewers.values();
  }

  /** A refusal, counted by status. */
  refuse(status: WarpRefusalStatus, reason: string): SessionRefusal {
    this.counters.sessionsRefused++;
    this.refused[status]++;
    return { status, reason };
  }

  /**
   * The checks every Warp route makes, in order: a Warp path, a broadcast `serves` (404), the token
   * (401, 403), room (503); then the route's own (`more`). Undefined accepts.
   */
  authorize(
    request: SessionRequest,
    serves: (broadcast: string) => boolean,
    more?: (target: WarpTarget) => SessionRefusal | undefined,
  ): SessionRefusal | undefined {
    const target = parseWarpPath(request.path);
    if (!target) return this.refuse(404, `a Warp path is ${WARP_PATH}/<broadcast>`);
    if (!serves(target.broadcast)) return this.refuse(404, `no broadcast named ${target.broadcast}`);
    const tokens = this.o.tokens ?? [];
    if (tokens.length > 0) {
      if (target.token === undefined) return this.refuse(401, 'this broadcast needs a token (?token=…)');
      if (!tokens.includes(target.token)) return this.refuse(403, 'wrong token');
    }
    if (this.viewers.size >= (this.o.maxSessions ?? DEFAULT_MAX_WARP_SESSIONS))
      return this.refuse(503, 'too many Warp sessions');
    return more?.(target);
  }

  /**
   * An accepted session: its sender, with the resource limit for `bitsPerSecond` of media and the
   * viewer's latency; `reorder` rewrites delivery orders (a relay, §4.5); `select` hears the viewer's
   * SELECT requests (without it, the viewer's streams are stopped).
   */
  add(
    session: Session,
    request: SessionRequest,
    o: {
      bitsPerSecond: number;
      reorder?: (headers: WarpHeaders) => number;
      select?: (request: WarpSelect) => void;
    },
    data: T,
  ): Viewer<T> {
    const target = parseWarpPath(request.path) ?? { broadcast: '' };
    const sender = new WarpSender(session, {
      maxBacklogBytes: this.o.maxBacklogBytes ?? backlogLimit(o.bitsPerSecond, target.latencyMs),
      reorder: o.reorder,
    });
    const viewer: Viewer<T> = { session, sender, target, data };
    this.viewers.add(viewer);
    this.counters.sessionsAccepted++;
    this.accepted[session.transport]++;
    session.once('close', () => this.retire(viewer));
    const select = o.select;
    session.on('stream', (stream) =>
      select && !stream.bidirectional ? void this.readSelect(stream, select) : stream.stopSending(0),
    );
    this.o.log?.(`${this.label}: session for ${target.broadcast} over ${session.transport} (${this.viewers.size} now)`);
    return viewer;
  }

  /** The media a viewer receives changed (a rendition switch): its resource limit follows, unless one is configured. */
  resize(viewer: Viewer<T>, bitsPerSecond: number): void {
    viewer.sender.maxBacklogBytes = this.o.maxBacklogBytes ?? backlogLimit(bitsPerSecond, viewer.target.latencyMs);
  }

  /** One SELECT stream: HEADERS, one SELECT, FIN, at most MAX_SELECT_STREAM_BYTES; anything else is refused. */
  private async readSelect(stream: SessionStream, select: (request: WarpSelect) => void): Promise<void> {
    const reader = new WarpStreamReader({ maxControlPayload: MAX_SELECT_STREAM_BYTES });
    let request: WarpSelect | undefined;
    let bytes = 0;
    try {
      for await (const chunk of stream) {
        bytes += chunk.length;
        if (bytes > MAX_SELECT_STREAM_BYTES) throw new Error('too long');
        reader.push(chunk);
        for (let e; (e = reader.next()) !== undefined; ) {
          if (e.kind === 'select' && !request) request = e;
          else if (e.kind !== 'headers') throw new Error(`unexpected ${e.kind}`);
        }
      }
      reader.end();
      if (!request) throw new Error('no SELECT');
    } catch {
      this.counters.selectsRefused++;
      stream.stopSending(0);
      return;
    }
    this.counters.selectsReceived++;
    select(request);
  }

  /** A session is gone: its sender's counts join those of the sessions closed before (once). */
  private retire(viewer: Viewer<T>): void {
    if (this.viewers.delete(viewer)) sumTotals(this.retired, viewer.sender.stats());
  }

  /**
   * §5.4: every session is told to connect to `url`; each finishes the segments under way ("SHOULD wait
   * until … any pending streams have been fully acknowledged"), then is closed with code 1 (§4.7).
   * `graceMs` bounds each wait, so a dead session cannot hold the others.
   */
  async goaway(url: string, graceMs: number): Promise<void> {
    const within = (p: Promise<void>) => Promise.race([p, new Promise<void>((r) => setTimeout(r, graceMs))]);
    await Promise.all(
      [...this.viewers].map(async (v) => {
        await within(v.sender.goaway(url));
        await within(v.sender.drained());
        await new Promise((r) => setTimeout(r, 100)); // the last bytes' acknowledgements
        v.sender.close(WarpCloseCode.GOAWAY, 'GOAWAY');
      }),
    );
  }

  /** Counts for metrics; it walks the open sessions, so it is for a scrape, not for a hot path. */
  stats(): WarpFanoutStats {
    const senders = [...this.viewers].map((v) => v.sender.stats());
    const totals = { ...this.retired };
    let backlogBytes = 0;
    for (const s of senders) {
      sumTotals(totals, s);
      backlogBytes += s.backlogBytes;
    }
    return {
      sessions: this.viewers.size,
      ...this.counters,
      sessionsAcceptedByTransport: { ...this.accepted },
      sessionsRefusedByStatus: { ...this.refused },
      ...totals,
      backlogBytes,
      senders,
    };
  }

  /** §4.7: every session is closed with code 0 (the broadcast is over here). */
  close(reason: string): void {
    for (const v of [...this.viewers]) {
      v.sender.close(WarpCloseCode.BROADCAST_TERMINATED, reason);
      this.retire(v);
    }
  }
}
