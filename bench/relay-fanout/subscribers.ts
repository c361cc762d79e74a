/**
 * The subscribers of bench/relay-fanout.ts: `count` Warp viewers (WarpClient, WebTransport over
 * HTTP/3 and QUIC, each on its own connection and UDP socket) in one process of their own, so that their
 * CPU is never counted as the server's. Started by the bench:
 *   node build/bench/relay-fanout/subscribers.js '{"url":"https://localhost:8445/warp/live?latency=3000","count":250,"caFile":"…/dev-cert.pem","bufferMs":3000}'
 * Each viewer counts the stream bytes its session receives (every byte of every Warp stream, as the
 * consumer reads them), the media bytes handed over in decode order, the segments handed over whole
 * (by path, with the time they ended), those cut short or skipped, and for video segments the delay of
 * the first fragment: its arrival minus the wall-clock time of its first sample on the catalog's
 * timeline (availabilityStartTime + baseMediaDecodeTime / timescale).
 *
 * One JSON object a line. Out, once connected: a `ready` line. Then commands on stdin, answered in order:
 *   {"cmd":"mark"}                    → {"type":"mark", …}: counters now, and the event-loop delay since the last mark
 *   {"cmd":"report","from":t,"to":t}  → {"type":"report", …}: per viewer, what happened around [from, to]
 *   {"cmd":"quit"}                    → sessions closed, exit 0 (also when stdin ends)
 */
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import readline from 'node:readline';
import { WarpClient, type SegmentRef, type WarpCatalog } from '../../src/warp/index.js';
import { connectWebTransport, type Session, type SessionStream } from '../../src/webtransport/index.js';
import { until } from '../../test/support/wait.js';

export interface SubscribersArgs {
  url: string;
  count: number;
  caFile: string;
  bufferMs: number;
  /** Sessions being opened at once. */
  concurrency?: number;
}

export interface ReadyLine {
  type: 'ready';
  connected: number;
  failed: number;
  /** Sessions opened again: the one before failed, or had no catalog within CATALOG_WAIT_MS. */
  retries: number;
  connectSeconds: number;
  errors: string[];
  catalog?: { segmentDuration: number; tracks: { id: string; kind: 'video' | 'audio'; bandwidth: number }[] };
}

export interface MarkLine {
  type: 'mark';
  t: number;
  /** Per viewer: stream bytes received so far, media bytes handed over so far. */
  bytes: number[];
  mediaBytes: number[];
  /** Event-loop delay of this process since the previous mark, ms. */
  loopDelay: { p50: number; p99: number; max: number };
}

export interface ViewerReport {
  /** Segments handed over whole, ended since `from` − 15 s: [path, time, bytes, track kind]. */
  whole: [string, number, number, 'video' | 'audio'][];
  /** Within [from, to]: segments cut short, skipped (by reason), and video first-fragment delays (ms). */
  cut: number;
  skipped: Record<string, number>;
  firstFragmentMs: number[];
  open: boolean;
  sessionsOpened: number;
  lastClose?: string;
}

export interface ReportLine {
  type: 'report';
  viewers: ViewerReport[];
}

const CATALOG_WAIT_MS = 10_000;
const ATTEMPTS = 3;
/** Records older than this are dropped (a report looks at most a window plus a margin back). */
const KEEP_MS = 180_000;

interface Viewer {
  client: WarpClient | undefined;
  bytes: number;
  mediaBytes: number;
  whole: { path: string; t: number; bytes: number; kind: 'video' | 'audio' }[];
  cut: number[];
  skipped: { t: number; why: string }[];
  firstFragment: { t: number; ms: number }[];
  /** Bytes handed over per segment under way. */
  segments: Map<SegmentRef, number>;
}

const args = JSON.parse(process.argv[2] ?? '{}') as SubscribersArgs;
const ca = readFileSync(args.caFile, 'utf8');
const emit = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);
const log = (line: string) => process.stderr.write(`subscribers: ${line}\n`);

/** Every byte of every stream the session hands over is counted on its way to the consumer. */
function counted(session: Session, viewer: Viewer): Session {
  const emitEvent = session.emit.bind(session) as (event: string, ...rest: unknown[]) => boolean;
  (session as unknown as { emit: typeof emitEvent }).emit = (event, ...rest) => {
    if (event === 'stream') {
      const stream = rest[0] as SessionStream;
      const inner = stream[Symbol.asyncIterator].bind(stream) as () => AsyncGenerator<Uint8Array>;
      Object.defineProperty(stream, Symbol.asyncIterator, {
        configurable: true,
        value: async function* () {
          for await (const chunk of inner()) {
            viewer.bytes += chunk.length;
            yield chunk;
          }
        },
      });
    }
    return emitEvent(event, ...rest);
  };
  return session;
}

function newViewer(): Viewer {
  return {
    client: undefined,
    bytes: 0,
    mediaBytes: 0,
    whole: [],
    cut: [],
    skipped: [],
    firstFragment: [],
    segments: new Map(),
  };
}

async function connectViewer(viewer: Viewer): Promise<{ retries: number }> {
  let retries = 0;
  for (let attempt = 1; ; attempt++) {
    let catalog: WarpCatalog | undefined;
    const connecting = WarpClient.connect(args.url, {
      bufferMs: args.bufferMs,
      connect: async (url) => counted(await connectWebTransport(url, { ca, timeoutMs: 15_000 }), viewer),
      log,
      sink: {
        catalog: (c) => (catalog = c),
        init: (_track, bytes) => (viewer.mediaBytes += bytes.length),
        data: (segment, bytes) => {
          viewer.mediaBytes += bytes.length;
          const before = viewer.segments.get(segment);
          viewer.segments.set(segment, (before ?? 0) + bytes.length);
          if (before !== undefined) return;
          const track = catalog?.tracks.find((t) => t.id === segment.track);
          if (catalog && track?.kind === 'video') {
            const t = Date.now();
            viewer.firstFragment.push({
              t,
              ms: t - (catalog.availabilityStartTime + (segment.decodeTime / track.timescale) * 1000),
            });
          }
        },
        end: (segment, complete) => {
          const bytes = viewer.segments.get(segment) ?? 0;
          viewer.segments.delete(segment);
          const kind = catalog?.tracks.find((t) => t.id === segment.track)?.kind ?? 'video';
          if (complete && segment.path !== undefined)
            viewer.whole.push({ path: segment.path, t: Date.now(), bytes, kind });
          else viewer.cut.push(Date.now());
        },
        skip: (_track, _time, why) => viewer.skipped.push({ t: Date.now(), why }),
      },
    });
    let client: WarpClient;
    try {
      client = await connecting;
    } catch (error) {
      // A handshake that timed out, a refusal: tried again, up to ATTEMPTS in all.
      if (attempt === ATTEMPTS) throw error;
      retries++;
      await new Promise((r) => setTimeout(r, 500));
      continue;
    }
    const arrived = await until('the catalog', () => catalog !== undefined, {
      timeoutMs: CATALOG_WAIT_MS,
      intervalMs: 50,
    }).catch(() => false);
    if (arrived || attempt === ATTEMPTS) {
      viewer.client = client;
      if (!arrived) throw new Error(`no catalog within ${CATALOG_WAIT_MS} ms, ${ATTEMPTS} times`);
      return { retries };
    }
    retries++;
    await client.close();
  }
}

const viewers = Array.from({ length: args.count }, newViewer);
const started = Date.now();
const errors: string[] = [];
let failed = 0;
let retries = 0;
let next = 0;
await Promise.all(
  Array.from({ length: Math.min(args.count, args.concurrency ?? 16) }, async () => {
    while (next < viewers.length) {
      const viewer = viewers[next++]!;
      try {
        retries += (await connectViewer(viewer)).retries;
      } catch (error) {
        failed++;
        if (errors.length < 5) errors.push(error instanceof Error ? error.message : String(error));
      }
    }
  }),
);
const catalog = viewers.find((v) => v.client?.consumer.catalog)?.client?.consumer.catalog;
emit({
  type: 'ready',
  connected: viewers.length - failed,
  failed,
  retries,
  connectSeconds: (Date.now() - started) / 1000,
  errors,
  catalog: catalog && {
    segmentDuration: catalog.segmentDuration,
    tracks: catalog.tracks.map((t) => ({ id: t.id, kind: t.kind, bandwidth: t.bandwidth })),
  },
} satisfies ReadyLine);

const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();
const prune = setInterval(() => {
  const old = Date.now() - KEEP_MS;
  for (const v of viewers) {
    v.whole = v.whole.filter((w) => w.t >= old);
    v.cut = v.cut.filter((t) => t >= old);
    v.skipped = v.skipped.filter((s) => s.t >= old);
    v.firstFragment = v.firstFragment.filter((f) => f.t >= old);
  }
}, 30_000);

function report(from: number, to: number): ReportLine {
  const inWindow = (t: number) => t >= from && t <= to;
  return {
    type: 'report',
    viewers: viewers.map((v) => {
      const skipped: Record<string, number> = {};
      for (const s of v.skipped) if (inWindow(s.t)) skipped[s.why] = (skipped[s.why] ?? 0) + 1;
      return {
        whole: v.whole.filter((w) => w.t >= from - 15_000).map((w) => [w.path, w.t, w.bytes, w.kind]),
        cut: v.cut.filter(inWindow).length,
        skipped,
        firstFragmentMs: v.firstFragment.filter((f) => inWindow(f.t)).map((f) => Math.round(f.ms)),
        open: (v.client?.openSessions ?? 0) > 0,
        sessionsOpened: v.client?.sessionsOpened ?? 0,
        lastClose: v.client?.lastClose && `${v.client.lastClose.code} ${v.client.lastClose.reason}`,
      };
    }),
  };
}

let quitting = false;
async function quit(): Promise<void> {
  if (quitting) return;
  quitting = true;
  clearInterval(prune);
  await Promise.race([Promise.all(viewers.map((v) => v.client?.close())), new Promise((r) => setTimeout(r, 3000))]);
  process.exit(0);
}

const commands = readline.createInterface({ input: process.stdin });
commands.on('line', (line) => {
  const command = JSON.parse(line) as { cmd: 'mark' } | { cmd: 'report'; from: number; to: number } | { cmd: 'quit' };
  if (command.cmd === 'mark') {
    emit({
      type: 'mark',
      t: Date.now(),
      bytes: viewers.map((v) => v.bytes),
      mediaBytes: viewers.map((v) => v.mediaBytes),
      loopDelay: { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 },
    } satisfies MarkLine);
    loop.reset();
  } else if (command.cmd === 'report') {
    emit(report(command.from, command.to));
  } else {
    void quit();
  }
});
commands.on('close', () => void quit());
process.on('SIGTERM', () => void quit());
process.on('SIGINT', () => void quit());
