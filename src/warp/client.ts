/**
 * A Warp viewer for Node: a session to a server or relay, its streams fed to a WarpConsumer, and
 * GOAWAY followed (draft-lcurley-warp-00 §5.4): the client connects to the new URL in parallel, on a
 * new QUIC connection, takes segments from both sessions until the old one closes (the consumer keeps
 * one copy of each segment), and goes on without a gap; a GOAWAY that cannot be followed at once (the
 * successor not up yet) is tried again, with backoff, a few times. Used by tests, benchmarks and relays' checks.
 * `select(track)` asks for another rendition (SELECT); with `adaptive`, a RenditionChooser (./abr.ts) asks
 * from what the consumer measures of each video GoP.
 */
import { connectWebTransport, type Session } from '../webtransport/index.js';
import { RenditionChooser, type RenditionChooserOptions } from './abr.js';
import { WarpConsumer, type IncomingWarpStream, type WarpConsumerSink } from './consumer.js';
import { encodeSelectStream } from './select.js';

/** Attempts at a GOAWAY's URL, the first at once, then after 0.5, 1, 2 and 4 s. */
const GOAWAY_ATTEMPTS = 5;
const GOAWAY_RETRY_MS = 500;

export interface WarpClientOptions {
  sink: WarpConsumerSink;
  /** The viewer's latency target: how long to wait for a late segment (§3.4), ms. */
  bufferMs: number;
  /** PEM certificates to trust; `verifyPeer: false` accepts any (development). */
  ca?: string;
  verifyPeer?: boolean;
  /** Opens a session some other way (e.g. the WebSocket fallback). Default: WebTransport over HTTP/3. */
  connect?: (url: string) => Promise<Session>;
  log?: (line: string) => void;
  /** Choose the video rendition from measurements (true: the chooser's defaults). */
  adaptive?: boolean | RenditionChooserOptions;
  /** A rendition was asked for (by `select` or the chooser). */
  onSelect?: (track: string, why: string) => void;
}

export class WarpClient {
  readonly consumer: WarpConsumer;
  private readonly sessions = new Set<Session>();
  private closing = false;
  /** Sessions opened, including those after GOAWAY. */
  sessionsOpened = 0;
  lastClose: { code: number; reason: string } | undefined;
  /** With `adaptive`, once the catalog is known. */
  chooser: RenditionChooser | undefined;
  private newest: Session | undefined;
  private selectSeq = 0;

  private constructor(private readonly o: WarpClientOptions) {
    this.consumer = new WarpConsumer(
      {
        ...o.sink,
        catalog: (catalog) => {
          o.sink.catalog?.(catalog);
          const video = catalog.tracks.filter((t) => t.kind === 'video');
          if (!o.adaptive || video.length < 2) return;
          const audio = catalog.tracks.filter((t) => t.kind === 'audio').reduce((n, t) => n + t.bandwidth, 0);
          this.chooser = new RenditionChooser(video, undefined, {
            otherBps: audio,
            ...(o.adaptive === true ? {} : o.adaptive),
          });
        },
        arrived: (segment, arrival) => {
          o.sink.arrived?.(segment, arrival);
          const choice = this.chooser?.arrived(segment.track, arrival, Date.now());
          if (choice) this.select(choice.track, choice.why);
        },
        progress: (segment, bytes, elapsedMs) => {
          o.sink.progress?.(segment, bytes, elapsedMs);
          const duration = (this.consumer.catalog?.segmentDuration ?? 2) * 1000;
          const choice = this.chooser?.progress(segment.track, bytes, elapsedMs, duration, Date.now(), segment);
          if (choice) this.select(choice.track, choice.why);
        },
        skip: (track, decodeTime, why) => {
          o.sink.skip?.(track, decodeTime, why);
          const choice = why === 'old' ? undefined : this.chooser?.cut(track, Date.now());
          if (choice) this.select(choice.track, choice.why);
        },
        goaway: (url) => {
          o.sink.goaway?.(url);
          void this.follow(url);
        },
      },
      { bufferMs: o.bufferMs },
    );
  }

  static async connect(url: string, o: WarpClientOptions): Promise<WarpClient> {
    const client = new WarpClient(o);
    try {
      await client.open(url);
    } catch (error) {
      client.consumer.close();
      throw error;
    }
    return client;
  }

  private async open(url: string): Promise<void> {
    const session = await (
      this.o.connect ?? ((u: string) => connectWebTransport(u, { ca: this.o.ca, verifyPeer: this.o.verifyPeer }))
    )(url);
    this.sessionsOpened++;
    this.sessions.add(session);
    this.newest = session;
    // A session after GOAWAY starts with the default tracks: it is told the rendition asked for.
    if (this.chooser && this.sessionsOpened > 1) this.sendSelect(session, this.chooser.current);
    session.on('stream', (stream) => {
      const incoming: IncomingWarpStream = Object.assign(stream, { stop: (code: number) => stream.stopSending(code) });
      void this.consumer.addStream(incoming);
    });
    session.once('close', (info) => {
      this.sessions.delete(session);
      this.lastClose = info;
    });
  }

  /** Opens a session at a GOAWAY's URL, trying again with backoff while the client is open. */
  private async follow(url: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.open(url);
      } catch (error) {
        const why = error instanceof Error ? error.message : String(error);
        if (attempt === GOAWAY_ATTEMPTS || this.closing) {
          this.o.log?.(`warp: GOAWAY to ${url} failed ${attempt} times (${why}); staying until the session closes`);
          return;
        }
        this.o.log?.(`warp: GOAWAY to ${url} failed (${why}); trying again`);
        await new Promise((resolve) => setTimeout(resolve, GOAWAY_RETRY_MS * 2 ** (attempt - 1)));
        if (this.closing) return;
      }
    }
  }

  /** Asks for `track` instead of the session's track of its kind, from the next GoP on (SELECT). */
  select(track: string, why = 'asked'): void {
    this.o.onSelect?.(track, why);
    if (this.newest) this.sendSelect(this.newest, track);
  }

  private sendSelect(session: Session, track: string): void {
    try {
      void session
        .openStream({ bidirectional: false })
        .end(encodeSelectStream(this.selectSeq++, track))
        .catch(() => undefined);
    } catch (error) {
      this.o.log?.(`warp: SELECT ${track} not sent: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  get openSessions(): number {
    return this.sessions.size;
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.consumer.close();
    await Promise.all([...this.sessions].map((s) => s.close(0, 'viewer left')));
  }
}
