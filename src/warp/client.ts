/**
 * A Warp viewer for Node: a session to a server or relay, its streams fed to a WarpConsumer, and
 * GOAWAY followed (draft-lcurley-warp-00 §5.4): the client connects to the new URL in parallel, on a
 * new QUIC connection, takes segments from both sessions until the old one closes (the consumer keeps
 * one copy of each segment), and goes on without a gap. Used by tests, benchmarks and relays' checks.
 */
import { connectWebTransport, type Session } from '../webtransport/index.js';
import { WarpConsumer, type IncomingWarpStream, type WarpConsumerSink } from './consumer.js';

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
}

export class WarpClient {
  readonly consumer: WarpConsumer;
  private readonly sessions = new Set<Session>();
  private closing = false;
  /** Sessions opened, including those after GOAWAY. */
  sessionsOpened = 0;
  lastClose: { code: number; reason: string } | undefined;

  private constructor(private readonly o: WarpClientOptions) {
    this.consumer = new WarpConsumer(
      {
        ...o.sink,
        goaway: (url) => {
          o.sink.goaway?.(url);
          void this.open(url).catch((error) =>
            o.log?.(`warp: GOAWAY to ${url} failed: ${error instanceof Error ? error.message : String(error)}`),
          );
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
    session.on('stream', (stream) => {
      const incoming: IncomingWarpStream = Object.assign(stream, { stop: (code: number) => stream.stopSending(code) });
      void this.consumer.addStream(incoming);
    });
    session.once('close', (info) => {
      this.sessions.delete(session);
      this.lastClose = info;
    });
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
