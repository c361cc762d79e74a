/**
 * A relay's sessions upstream (draft-lcurley-warp-00 §2.3, §5.4): one WebTransport session to the
 * upstream URL (an origin's or another relay's `/warp/<broadcast>?token=…`), whose streams go to
 * `onStream`.
 *
 * - **Loss**: reconnection with exponential backoff (250 ms … 8 s, ±20%), started afresh once the
 *   upstream serves streams again. A loss is a connection that failed or ended without the upstream's
 *   word, or a close with any code but 0.
 * - **End** (§4.7): the upstream's own close with code 0, broadcast terminated, is final: nothing
 *   reconnects, and `ended` passes it on (the relay closes its viewers' sessions the same way).
 * - **GOAWAY** (§5.4): a new session to its URL, in parallel, while the old one drains; the URL is the
 *   upstream from then on.
 * - **Startup**: a session after which the relay still lacks the catalog or a track's init
 *   `startupTimeoutMs` after it opened is of no use to new viewers; it is closed, and a new one
 *   subscribes again (an upstream that has them sends them first on every session).
 */
import {
  connectWebTransport,
  type Session,
  type SessionCloseInfo,
  type SessionStream,
} from '../../webtransport/index.js';
import { WarpCloseCode } from '../../wire/index.js';
import type { RelayUpstreamStats } from './stats.js';

export interface RelayUpstreamOptions {
  /** Opens an upstream session; default WebTransport over HTTP/3 with `ca` / `verifyPeer`. */
  connect?: (url: string) => Promise<Session>;
  ca?: string;
  verifyPeer?: boolean;
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /**
   * An upstream session after which the relay still lacks the catalog or an init of the catalog's
   * tracks this long is replaced by a new one. Default 3000 ms.
   */
  startupTimeoutMs?: number;
  log?: (line: string) => void;
}

/** One upstream session. */
export interface Upstream {
  readonly session: Session;
  readonly url: string;
  movedAway: boolean;
  /** The session is gone: its streams end (abandoned, draft-02 §4.3) whether they were whole or not. */
  closed: boolean;
  watchdog?: ReturnType<typeof setTimeout>;
}

export interface RelayUpstreamHooks {
  /** A stream of an upstream session. */
  onStream(stream: SessionStream, up: Upstream): void;
  /** What is still missing for new viewers (the catalog, an init), or undefined when nothing is. */
  missing(): string | undefined;
  /** The upstream ended the broadcast (§4.7, code 0): nothing reconnects from now on. */
  ended(info: SessionCloseInfo): void;
}

export class RelayUpstream {
  private current: string;
  private readonly upstreams = new Set<Upstream>();
  private connecting = 0;
  private attempts = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private started = false;
  private closed = false;
  private readonly counters: RelayUpstreamStats = {
    upstreamConnects: 0,
    upstreamReconnects: 0,
    upstreamFailures: 0,
    upstreamIncomplete: 0,
    goaways: 0,
  };

  constructor(
    url: string,
    private readonly o: RelayUpstreamOptions,
    private readonly hooks: RelayUpstreamHooks,
  ) {
    this.current = url;
  }

  /** The upstream URL now (it changes when a GOAWAY is followed). */
  get url(): string {
    return this.current;
  }

  /** Upstream sessions now. */
  get sessions(): number {
    return this.upstreams.size;
  }

  /** Subscribes (once; it reconnects by itself). */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    void this.open(this.current, 'start');
  }

  /** The upstream serves streams: the next loss starts the backoff afresh. */
  served(): void {
    this.attempts = 0;
  }

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
    session.on('stream', (stream) => this.hooks.onStream(stream, up));
    const startupMs = this.o.startupTimeoutMs ?? 3000;
    up.watchdog = setTimeout(() => {
      const missing = this.hooks.missing();
      if (this.closed || up.closed || missing === undefined) return;
      this.counters.upstreamIncomplete++;
      this.o.log?.(`relay: no ${missing} from ${url} after ${startupMs} ms; subscribing again`);
      void session.close(0, `no ${missing}`);
    }, startupMs);
    session.once('close', (info) => {
      up.closed = true;
      clearTimeout(up.watchdog);
      this.upstreams.delete(up);
      if (this.closed) return;
      this.o.log?.(
        `relay: upstream session closed by the ${info.by} (code ${info.code}${info.reason ? `: ${info.reason}` : ''})`,
      );
      // Only the upstream's own close says the broadcast is over; a session it moved away from (GOAWAY)
      // ends while the next one goes on.
      if (info.by === 'peer' && info.code === WarpCloseCode.BROADCAST_TERMINATED && !up.movedAway)
        return void this.end(info);
      if (this.upstreams.size === 0 && this.connecting === 0) this.scheduleReconnect();
    });
  }

  /** §4.7: the broadcast is over upstream; the other sessions (if any) are closed, nothing reconnects. */
  private async end(info: SessionCloseInfo): Promise<void> {
    this.o.log?.(`relay: the upstream ended the broadcast${info.reason ? ` (${info.reason})` : ''}`);
    const others = this.close();
    this.hooks.ended(info);
    await others;
  }

  private scheduleReconnect(): void {
    if (this.reconnectTimer || this.closed) return;
    const min = this.o.reconnectMinMs ?? 250;
    const max = this.o.reconnectMaxMs ?? 8000;
    const delay = Math.min(max, min * 2 ** Math.min(this.attempts, 16)) * (0.8 + 0.4 * Math.random());
    this.attempts++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.closed && this.upstreams.size === 0) void this.open(this.current, 'reconnect');
    }, delay);
  }

  /** §5.4: a new session to `url`, on a new connection, while the old one drains. */
  followGoaway(url: string, up: Upstream): void {
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
    this.current = next.href;
    this.o.log?.(`relay: GOAWAY from upstream, moving to ${this.current}`);
    void this.open(this.current, 'goaway');
  }

  stats(): RelayUpstreamStats {
    return { ...this.counters };
  }

  /** Every upstream session closed; nothing reconnects. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    for (const up of this.upstreams) clearTimeout(up.watchdog);
    await Promise.all([...this.upstreams].map((u) => u.session.close(0, 'relay stopped').catch(() => undefined)));
  }
}
