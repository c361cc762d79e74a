/**
 * The downstream half every Warp server has, the origin's (`WarpServer`) and a relay's (`WarpRelay`):
 * viewers' sessions, each with a `WarpSender` of its own (draft-lcurley-warp-00 §4.3, §4.4, §6.1).
 *
 * - **Authorization** (§4.1): a Warp path (404), a broadcast served here (404), the token when tokens
 *   are configured (401 missing, 403 wrong), room (503 past `maxSessions`), the delivery order the
 *   viewer asks for (`order=`, §2.2: 400 unless a known policy among `ordersAllowed`), then the route's
 *   own checks; each refusal has a one-line reason and is counted by status.
 * - **Resource limit** (§4.4, §6.1): a session's sender resets its lowest-priority stream past a backlog
 *   of the media bitrate × the viewer's latency (`latency=` in the path, 0.5 s to `maxLatencyMs`,
 *   default 2 s) × 1.5 + 256 KiB; 4 MiB when the bitrate is not known; `maxBacklogBytes` instead when given.
 * - Streams a viewer opens are not part of Warp (§4.2 allows other uses): a unidirectional one is read as a
 *   SELECT (src/warp/select.ts) when the route switches renditions, every other one is stopped.
 * - **Totals** cover every session so far: a closed session's sender counts are carried over (retired),
 *   so they never go down.
 * - `goaway(url)` (§5.4) and `close()` (§4.7, code 0 unless told otherwise) for every session.
 * - **Drain** (`drain(successor, timeoutMs)`, an operator's GOAWAY): every session, and any that was being
 *   accepted meanwhile, is sent a GOAWAY to the successor (`goawayUrl`: its own path and query kept),
 *   finishes its segments under way and is closed; new sessions are refused 503 with `Retry-After` (the
 *   time left) and the successor in the reason. It ends when the last session has gone, or at the bound,
 *   where the sessions still there are closed (cut).
 */
import type {
  Session,
  SessionRefusal,
  SessionRequest,
  SessionStream,
  SessionTransport,
} from '../webtransport/index.js';
import { WarpCloseCode, WarpStreamReader, type WarpHeaders, type WarpSelect } from '../wire/index.js';
import { WARP_ORDER_POLICIES, isOrderPolicy, type WarpOrderPolicy } from './order.js';
import { WARP_PATH, goawayUrl, parseWarpPath, type WarpTarget } from './path.js';
import { MAX_SELECT_STREAM_BYTES } from './select.js';
import { WarpSender, type WarpSenderStats } from './sender.js';

export interface WarpFanoutOptions {
  /** Tokens a session must present (?token=…); empty or absent = open. */
  tokens?: readonly string[];
  /** Sessions at once; more are refused 503. Default 10 000. */
  maxSessions?: number;
  /** Each session's resource limit, bytes; default from the media bitrate and the viewer's latency. */
  maxBacklogBytes?: number;
  /** The delivery orders a session may ask for with `order=` (§2.2); default every known policy. */
  ordersAllowed?: readonly WarpOrderPolicy[];
  /** The largest latency target (`latency=`, ms) a session's resource limit follows. Default 10 000. */
  maxLatencyMs?: number;
  log?: (line: string) => void;
}

export const DEFAULT_MAX_WARP_SESSIONS = 10_000;
export const DEFAULT_MAX_WARP_LATENCY_MS = 10_000;
/** The smallest latency target a session's resource limit follows. */
const MIN_LATENCY_MS = 500;
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

/** Sessions sent away (GOAWAY, §5.4): by a drain or `goaway()`. */
export interface WarpGoawayStats {
  /** A drain is under way or done: new sessions are refused (503). */
  draining: boolean;
  /** Sessions the drain still waits for; 0 without a drain. */
  drainRemaining: number;
  /** Sessions sent a GOAWAY and closed since, over the server's life: after their segments under way were sent (or they left first), or cut at the bound with some still under way. */
  goawaySessionsMoved: number;
  goawaySessionsCut: number;
}

/** What a drain did. */
export interface WarpDrainReport {
  /** The successor as given; each session was sent `goawayUrl(successor, its path)`. */
  successor: string;
  /** Sessions sent away, by transport, and how they ended. */
  sessions: number;
  byTransport: Record<SessionTransport, number>;
  moved: number;
  cut: number;
  /** From the start of the drain until the last session had gone. */
  durationMs: number;
}

export interface WarpFanoutStats extends WarpStreamTotals, WarpGoawayStats {
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
  /** The delivery order the viewer asked for (checked), or undefined: the route's own. */
  readonly order: WarpOrderPolicy | undefined;
  readonly data: T;
}

/**
 * §6.1: the bytes a session may have waiting before its lowest-priority stream is reset; the viewer's
 * latency counts between 0.5 s and `maxLatencyMs`.
 */
export function backlogLimit(
  bitsPerSecond: number,
  latencyMs: number | undefined,
  maxLatencyMs = DEFAULT_MAX_WARP_LATENCY_MS,
): number {
  if (!(bitsPerSecond > 0) || !Number.isFinite(bitsPerSecond)) return UNKNOWN_BITRATE_BACKLOG;
  const seconds = Math.max(MIN_LATENCY_MS, Math.min(maxLatencyMs, latencyMs ?? 2000)) / 1000;
  return Math.ceil((bitsPerSecond / 8) * seconds * 1.5) + 256 * 1024;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** True when `p` settles within `ms`, false when it has not by then. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, ms));
  });
  try {
    return await Promise.race([p.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

interface Drain {
  readonly successor: string;
  readonly started: number;
  readonly deadline: number;
  /** Each session's move, until it is over. */
  readonly moves: Set<Promise<void>>;
  readonly report: WarpDrainReport;
  done?: Promise<WarpDrainReport>;
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
  private readonly counters = {
    sessionsAccepted: 0,
    sessionsRefused: 0,
    selectsReceived: 0,
    selectsRefused: 0,
    goawaySessionsMoved: 0,
    goawaySessionsCut: 0,
  };
  private drainState: Drain | undefined;
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
  refuse(status: WarpRefusalStatus, reason: string, retryAfterSeconds?: number): SessionRefusal {
    this.counters.sessionsRefused++;
    this.refused[status]++;
    return retryAfterSeconds === undefined ? { status, reason } : { status, reason, retryAfterSeconds };
  }

  /**
   * The checks every Warp route makes, in order: a Warp path, a broadcast `serves` (404), the token
   * (401, 403), a drain (503 with Retry-After: the time it has left), room (503); then the route's own
   * (`more`). Undefined accepts.
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
    const drain = this.drainState;
    if (drain) {
      const successor = goawayUrl(drain.successor, request.path.split('?')[0]!);
      return this.refuse(
        503,
        `this server is draining: connect to ${successor}`,
        Math.max(1, Math.ceil((drain.deadline - Date.now()) / 1000)),
      );
    }
    if (this.viewers.size >= (this.o.maxSessions ?? DEFAULT_MAX_WARP_SESSIONS))
      return this.refuse(503, 'too many Warp sessions');
    if (target.order !== undefined) {
      const allowed = this.o.ordersAllowed ?? WARP_ORDER_POLICIES;
      if (!isOrderPolicy(target.order))
        return this.refuse(
          400,
          `no delivery order named ${JSON.stringify(target.order.slice(0, 40))} (known: ${WARP_ORDER_POLICIES.join(', ')})`,
        );
      if (!allowed.includes(target.order))
        return this.refuse(400, `delivery order ${target.order} is not allowed here (allowed: ${allowed.join(', ')})`);
    }
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
      maxBacklogBytes: this.o.maxBacklogBytes ?? backlogLimit(o.bitsPerSecond, target.latencyMs, this.o.maxLatencyMs),
      reorder: o.reorder,
    });
    const order = isOrderPolicy(target.order) ? target.order : undefined;
    const viewer: Viewer<T> = { session, sender, target, order, data };
    this.viewers.add(viewer);
    this.counters.sessionsAccepted++;
    this.accepted[session.transport]++;
    session.once('close', () => this.retire(viewer));
    const select = o.select;
    session.on('stream', (stream) =>
      select && !stream.bidirectional ? void this.readSelect(stream, select) : stream.stopSending(0),
    );
    this.o.log?.(
      `${this.label}: session for ${target.broadcast} over ${session.transport}${order ? `, order ${order}` : ''} (${this.viewers.size} now)`,
    );
    // Accepted while a drain began: it goes too, after what the route sends it now.
    if (this.drainState) queueMicrotask(() => this.drainOne(viewer));
    return viewer;
  }

  /** The media a viewer receives changed (a rendition switch): its resource limit follows, unless one is configured. */
  resize(viewer: Viewer<T>, bitsPerSecond: number): void {
    viewer.sender.maxBacklogBytes =
      this.o.maxBacklogBytes ?? backlogLimit(bitsPerSecond, viewer.target.latencyMs, this.o.maxLatencyMs);
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
   * §5.4: every session is told to connect to `url`; each finishes the segments under way, then is
   * closed with code 1 (§4.7). `graceMs` bounds each wait, so a dead session cannot hold the others.
   */
  async goaway(url: string, graceMs: number): Promise<void> {
    await Promise.all([...this.viewers].map((v) => this.moveAway(v, url, () => graceMs)));
  }

  /**
   * One session sent away (§5.4): the GOAWAY, then the segments under way finish ("SHOULD wait until
   * … any pending streams have been fully acknowledged"), then the close with code 1 (§4.7). Each wait
   * ends after `bound()` ms; a session still sending then is cut.
   */
  private async moveAway(v: Viewer<T>, url: string, bound: () => number): Promise<'moved' | 'cut'> {
    const finished =
      (await settlesWithin(v.sender.goaway(url), bound())) && (await settlesWithin(v.sender.drained(), bound()));
    if (finished) await sleep(100); // the last bytes' acknowledgements
    const outcome = finished ? 'moved' : 'cut';
    this.counters[finished ? 'goawaySessionsMoved' : 'goawaySessionsCut']++;
    v.sender.close(WarpCloseCode.GOAWAY, finished ? 'GOAWAY' : 'GOAWAY: drain bound reached');
    this.retire(v);
    return outcome;
  }

  /**
   * The operator's GOAWAY: every session is sent to `successor` (with its own path and query,
   * `goawayUrl`), new ones are refused (503) from now on; resolves once the last session has gone, within
   * `timeoutMs` (then the ones left are cut). A second call gets the first drain's outcome.
   */
  drain(successor: string, timeoutMs: number): Promise<WarpDrainReport> {
    if (this.drainState?.done) return this.drainState.done;
    const started = Date.now();
    const drain: Drain = {
      successor,
      started,
      deadline: started + timeoutMs,
      moves: new Set(),
      report: {
        successor,
        sessions: 0,
        byTransport: { webtransport: 0, websocket: 0 },
        moved: 0,
        cut: 0,
        durationMs: 0,
      },
    };
    this.drainState = drain;
    this.o.log?.(`${this.label}: draining ${this.viewers.size} session(s) to ${successor}`);
    for (const v of this.viewers) this.drainOne(v);
    drain.done = (async () => {
      // Sessions accepted while it runs join the set; each move ends by the deadline.
      while (drain.moves.size > 0) await Promise.all(drain.moves);
      drain.report.durationMs = Date.now() - started;
      return drain.report;
    })();
    return drain.done;
  }

  private drainOne(v: Viewer<T>): void {
    const drain = this.drainState;
    if (!drain || !this.viewers.has(v)) return;
    drain.report.sessions++;
    drain.report.byTransport[v.session.transport]++;
    const move = this.moveAway(v, goawayUrl(drain.successor, v.session.path), () => drain.deadline - Date.now()).then(
      (outcome) => {
        drain.report[outcome]++;
        drain.moves.delete(move);
      },
    );
    drain.moves.add(move);
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
      draining: this.drainState !== undefined,
      drainRemaining: this.drainState ? this.viewers.size : 0,
      sessionsAcceptedByTransport: { ...this.accepted },
      sessionsRefusedByStatus: { ...this.refused },
      ...totals,
      backlogBytes,
      senders,
    };
  }

  /**
   * §4.7: every session is closed with `code`, by default 0 (the broadcast is over here); resolves once
   * each close is sent.
   */
  async close(
    reason: string,
    code: (typeof WarpCloseCode)[keyof typeof WarpCloseCode] = WarpCloseCode.BROADCAST_TERMINATED,
  ): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const v of [...this.viewers]) {
      closing.push(v.session.close(code, reason).catch(() => undefined));
      v.sender.close();
      this.retire(v);
    }
    await Promise.all(closing);
  }
}
