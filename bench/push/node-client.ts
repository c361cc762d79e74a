/**
 * One measured client run over HTTP/2, started by push-comparison.ts inside the client namespace:
 *   ip netns exec <the client namespace> node build/bench/push/node-client.js '<json task>'
 * It prints one JSON object (a ProbeResult, StartupResult or LiveResult) on stdout.
 *
 * Every run is a fresh process with a fresh connection: nothing is cached, and connection setup (TCP, TLS,
 * HTTP/2 SETTINGS) is done before the clock starts, so the runs compare only what the modes change.
 */
import { once } from 'node:events';
import type { ClientHttp2Session, IncomingHttpHeaders } from 'node:http2';
import { Http2PushClient } from '../../src/client/index.js';
import { RESOURCE_PUSH, type ResourcePushEvent } from '../../src/push/index.js';
import { sleepUntil, wallClock } from '../../test/support/wait.js';
import { availableAt, newestAvailable, nextPhase, parseMpd, type LiveTiming } from './mpd.js';

export type StartupMode = 'on-demand' | 'prefetch' | 'early-hints' | 'push';
export type LiveMode = 'on-demand' | 'prefetch' | 'push';

export type Task =
  | { task: 'probe'; origin: string }
  | { task: 'metrics'; origin: string }
  | { task: 'sizes'; origin: string; paths: string[] }
  | { task: 'startup'; mode: StartupMode; origin: string; timing: LiveTiming; phase: number; rttMs: number }
  | {
      task: 'live';
      mode: LiveMode;
      origin: string;
      timing: LiveTiming;
      rendition: string;
      segments: number;
      rttMs: number;
    };

export interface ProbeResult {
  timing: LiveTiming;
  protocol: string;
}

export interface StartupResult {
  mode: StartupMode;
  /** From sending the MPD request to the MPD, inits and first segments all complete in hand, ms. */
  startupMs: number;
  /** When the MPD response was complete, ms after the clock started. */
  mpdMs: number;
  /** When the 103 arrived (early hints), ms after the clock started. */
  hintMs?: number;
  /** Segment number the client needed (newest available by the MPD's timing). */
  segment: number;
  /** What arrived unasked (pushed or early-hinted) and whether the client could use it. */
  offered: { path: string; used: boolean }[];
  /** Body bytes of every response, requested or pushed, in the run (until the drain period ends). */
  receivedBytes: number;
  /** Body bytes of one copy of each resource the client needed. */
  usedBytes: number;
  wastedBytes: number;
}

export interface LiveResult {
  mode: LiveMode;
  rendition: string;
  /** Per segment: ms from its availability time to its last byte in hand (negative: before availability). */
  segments: { number: number; latencyMs: number; bytes: number }[];
  receivedBytes: number;
  /** Body bytes of resources other than the init and the measured segments (push: join and leave). */
  extraBytes: number;
}

const MPD_PATH = '/live/manifest.mpd';
const STREAM_WINDOW = 6 << 20;
const CONNECTION_WINDOW = 15 << 20;

/** A timer for most of a wait, then a short spin for precision (the namespaces share the host's clock with the origin). */
const SPIN = { spinMs: 3 };

/** Counts the body bytes of every response on the connection, by path, requested or pushed. */
class ByteLedger {
  readonly byPath = new Map<string, number>();
  total = 0;
  add(path: string, n: number): void {
    this.byPath.set(path, (this.byPath.get(path) ?? 0) + n);
    this.total += n;
  }
}

interface Got {
  status: number;
  body: Buffer;
  /** performance.now() at the last byte. */
  doneAt: number;
}

/** A GET on the session; `onHints` sees the fields of a 103 response, if one comes. */
function get(
  session: ClientHttp2Session,
  path: string,
  ledger: ByteLedger,
  onHints?: (h: IncomingHttpHeaders) => void,
): Promise<Got> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path });
    let status = 0;
    const parts: Buffer[] = [];
    stream.on('headers', (h) => {
      if (Number(h[':status']) === 103) onHints?.(h);
    });
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('data', (d: Buffer) => {
      parts.push(d);
      ledger.add(path, d.byteLength);
    });
    stream.on('end', () => resolve({ status, body: Buffer.concat(parts), doneAt: performance.now() }));
    stream.on('error', reject);
    stream.end();
  });
}

async function ok(p: Promise<Got>, path: string): Promise<Got> {
  const g = await p;
  if (g.status !== 200) throw new Error(`${path}: HTTP ${g.status}`);
  return g;
}

/** A promise that may be dropped unawaited (an unused hint, a cancelled push) without crashing the run. */
function quietly<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

/** Paths listed as rel=preload in the Link fields of a 103 (RFC 8288 syntax as the origin writes it). */
function preloads(h: IncomingHttpHeaders): string[] {
  const link = ([] as string[]).concat(h.link ?? []).join(', ');
  return [...link.matchAll(/<([^>]*)>([^,]*)/g)]
    .filter((m) => /rel="?preload/.test(m[2]!))
    .map(([, path = '']) => path);
}

/**
 * Connects and waits until the server acknowledged our SETTINGS: from then on it knows whether it may push
 * (SETTINGS_ENABLE_PUSH, RFC 9113 §6.5.2), and nothing of the connection setup is left inside the clock.
 */
async function connect(origin: string, push: boolean): Promise<Http2PushClient> {
  // The origin's development certificate names localhost, not the namespace address: trust is not measured.
  const client = new Http2PushClient(origin, { insecure: true });
  await once(client.session, 'connect');
  // Chromium's flow-control windows (6 MiB per stream, 15 MiB per connection): with HTTP/2's default 64 KiB
  // the client, not the network, would limit every transfer at 50 and 150 ms RTT, and pushes most of all.
  client.session.setLocalWindowSize(CONNECTION_WINDOW);
  await new Promise<void>((resolve, reject) =>
    client.session.settings({ enablePush: push, initialWindowSize: STREAM_WINDOW }, (err) =>
      err ? reject(err) : resolve(),
    ),
  );
  // Node 20 loads its fetch classes on first use, tens of ms in a fresh process, and Http2PushClient makes a
  // Request and a Response per push: load them now, in every mode alike. One small request warms the
  // request path of client and origin the same way for every mode (it triggers no push).
  await new Response(new Request('https://warm.invalid/').url, { headers: new Headers({ a: 'b' }) }).arrayBuffer();
  await ok(get(client.session, '/time', new ByteLedger()), '/time');
  return client;
}

/** Counts pushed bytes too (Http2PushClient hands out whole responses only). */
function countPushes(client: Http2PushClient, ledger: ByteLedger): void {
  client.session.on('stream', (stream, headers) => {
    const path = String(headers[':path']);
    stream.on('data', (d: Buffer) => ledger.add(path, d.byteLength));
  });
}

async function probe(origin: string): Promise<ProbeResult> {
  const client = await connect(origin, false);
  const ledger = new ByteLedger();
  const mpd = await ok(get(client.session, MPD_PATH, ledger), MPD_PATH);
  const protocol = client.session.alpnProtocol ?? 'unknown';
  client.session.destroy();
  return { timing: parseMpd(mpd.body.toString('utf8')), protocol };
}

/** The origin's Prometheus counters (pushcast_* series), for the checks in the report. */
async function metrics(origin: string): Promise<Record<string, number>> {
  const client = await connect(origin, false);
  const got = await ok(get(client.session, '/metrics', new ByteLedger()), '/metrics');
  client.session.destroy();
  const out: Record<string, number> = {};
  for (const line of got.body.toString('utf8').split('\n')) {
    const m = /^(pushcast_[a-z0-9_]+(?:\{[^}]*\})?) ([0-9.e+-]+)$/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** Content-Length of each path (HEAD): sizes of resources a browser fetched where the page cannot see them. */
async function sizes(origin: string, paths: string[]): Promise<Record<string, number>> {
  const client = await connect(origin, false);
  const out: Record<string, number> = {};
  await Promise.all(
    paths.map(
      (path) =>
        new Promise<void>((resolve) => {
          const stream = client.session.request({ ':path': path, ':method': 'HEAD' });
          stream.on('response', (h) => {
            if (Number(h[':status']) === 200) out[path] = Number(h['content-length']);
          });
          stream.on('close', () => resolve());
          stream.on('error', () => resolve());
          stream.resume();
          stream.end();
        }),
    ),
  );
  client.session.destroy();
  return out;
}

/** The resources a player needs to start: init and newest segment of the lowest video and of the audio. */
function needed(t: LiveTiming, n: number): string[] {
  const reps = [t.video[0], ...t.audio.slice(0, 1)].filter(Boolean);
  return reps.flatMap((id) => [`/live/${id}/init.mp4`, `/live/${id}/${n}.m4s`]);
}

async function startup(task: Extract<Task, { task: 'startup' }>): Promise<StartupResult> {
  const { mode, timing } = task;
  const client = await connect(task.origin, mode === 'push');
  const ledger = new ByteLedger();
  countPushes(client, ledger);
  const session = client.session;
  /** Resources that arrived or are arriving unasked, by path: resolves with the body in hand. */
  const offered = new Map<string, Promise<Got>>();
  /** Once the client knows what it needs (the MPD is parsed), it cancels every other push (RST_STREAM). */
  let wanted: string[] | undefined;
  const pushRequests = new Map<string, Request>();
  client.addEventListener(RESOURCE_PUSH, (e) => {
    const event = e as ResourcePushEvent;
    const path = new URL(event.request.url).pathname;
    pushRequests.set(path, event.request);
    if (wanted && !wanted.includes(path)) return client.cancel(event.request);
    offered.set(
      path,
      quietly(
        event.response.then(async (r) => ({
          status: r.status,
          body: Buffer.from(await r.arrayBuffer()),
          doneAt: performance.now(),
        })),
      ),
    );
  });

  // Same phase of the segment cycle for every run and mode: the newest segment is then complete and the
  // next one far away, so every mode wants the same segment (see the report's method notes).
  await sleepUntil(nextPhase(timing, wallClock(), task.phase, 200), SPIN);
  const t0 = performance.now();
  let hintMs: number | undefined;
  const onHints =
    mode === 'early-hints'
      ? (h: IncomingHttpHeaders) => {
          hintMs ??= performance.now() - t0;
          // Start every hinted fetch now, as a browser does on a 103 (the MPD is already being fetched).
          for (const path of preloads(h))
            if (path !== MPD_PATH && !offered.has(path))
              offered.set(path, quietly(ok(get(session, path, ledger), path)));
        }
      : undefined;
  // Prefetch: the client knows the SegmentTemplate from an earlier visit and its clock, so it asks for the
  // newest segment and the inits at once, beside the MPD.
  if (mode === 'prefetch') {
    for (const path of needed(timing, newestAvailable(timing, wallClock())))
      offered.set(path, quietly(ok(get(session, path, ledger), path)));
  }
  const mpd = await ok(get(session, MPD_PATH, ledger, onHints), MPD_PATH);
  const mpdMs = mpd.doneAt - t0;
  const live = parseMpd(mpd.body.toString('utf8'));
  const n = newestAvailable(live, wallClock());
  const paths = needed(live, n);
  wanted = paths;
  for (const [path, request] of pushRequests) if (!paths.includes(path)) client.cancel(request);
  // What the client still lacks it requests now; what was offered it waits for.
  const results = await Promise.all(paths.map((p) => offered.get(p) ?? ok(get(session, p, ledger), p)));
  for (const [i, r] of results.entries()) if (r.status !== 200) throw new Error(`${paths[i]}: HTTP ${r.status}`);
  const startupMs = Math.max(mpd.doneAt, ...results.map((r) => r.doneAt)) - t0;

  // Let whatever else is on its way arrive, so that bytes sent for nothing are counted.
  await new Promise((r) => setTimeout(r, 300 + task.rttMs * 2));
  const usedBytes = mpd.body.byteLength + results.reduce((s, r) => s + r.body.byteLength, 0);
  const receivedBytes = ledger.total;
  session.destroy();
  return {
    mode,
    startupMs,
    mpdMs,
    hintMs,
    segment: n,
    offered: [...offered.keys()]
      .filter(() => mode !== 'prefetch')
      .map((path) => ({ path, used: paths.includes(path) })),
    receivedBytes,
    usedBytes,
    wastedBytes: receivedBytes - usedBytes,
  };
}

async function liveEdge(task: Extract<Task, { task: 'live' }>): Promise<LiveResult> {
  const { mode, timing, rendition } = task;
  const client = await connect(task.origin, mode === 'push');
  const ledger = new ByteLedger();
  countPushes(client, ledger);
  const session = client.session;
  // The first measured segment starts at least a second from now: every mode sees it from its first chunk.
  const d = timing.duration * 1000;
  const n0 = newestAvailable(timing, wallClock() + 1000 + d) + 1;
  const numbers = Array.from({ length: task.segments }, (_, i) => n0 + i);
  const done = new Map<number, { at: number; bytes: number }>();
  const initPath = `/live/${rendition}/init.mp4`;

  if (mode === 'push') {
    let allDone!: () => void;
    const finished = new Promise<void>((r) => (allDone = r));
    client.addEventListener(RESOURCE_PUSH, (e) => {
      const event = e as ResourcePushEvent;
      const m = /\/(\d+)\.m4s$/.exec(new URL(event.request.url).pathname);
      const number = m ? Number(m[1]) : NaN;
      // The channel also pushes the segment in progress when it opens and the one after the last measured:
      // a client that does not want them resets them; what still arrives counts as extra bytes.
      if (!m) return;
      if (!numbers.includes(number)) return client.cancel(event.request);
      void event.response.then(async (r) => {
        const bytes = (await r.arrayBuffer()).byteLength;
        done.set(number, { at: wallClock(), bytes });
        if (done.size === numbers.length) allDone();
      });
    });
    const channel = await client.request(`/live/${rendition}/push`);
    if (channel.status !== 200) throw new Error(`push channel: HTTP ${channel.status}`);
    channel.stream.resume(); // its body is a log of the pushes
    await finished;
    channel.stream.close();
  } else {
    await ok(get(session, initPath, ledger), initPath);
    // on-demand: a plain GET once the segment is complete by the MPD (availability time);
    // prefetch: a GET at the time the MPD announces it to low-latency clients (availability time minus
    // availabilityTimeOffset), as src/web/dash/prefetch.ts schedules it; the origin then streams the
    // segment chunk by chunk while it is produced.
    const lead = mode === 'prefetch' ? timing.ato * 1000 : 0;
    await Promise.all(
      numbers.map(async (n) => {
        await sleepUntil(availableAt(timing, n) - lead, SPIN);
        const path = `/live/${rendition}/${n}.m4s`;
        const g = await ok(get(session, path, ledger), path);
        done.set(n, { at: performance.timeOrigin + g.doneAt, bytes: g.body.byteLength });
      }),
    );
  }
  await new Promise((r) => setTimeout(r, 300 + task.rttMs * 2));
  const receivedBytes = ledger.total;
  session.destroy();
  const segments = numbers.map((n) => ({
    number: n,
    latencyMs: done.get(n)!.at - availableAt(timing, n),
    bytes: done.get(n)!.bytes,
  }));
  const initBytes = ledger.byPath.get(initPath) ?? 0;
  return {
    mode,
    rendition,
    segments,
    receivedBytes,
    extraBytes: receivedBytes - initBytes - segments.reduce((s, x) => s + x.bytes, 0),
  };
}

async function main(): Promise<void> {
  const task = JSON.parse(process.argv[2]!) as Task;
  const result =
    task.task === 'probe'
      ? await probe(task.origin)
      : task.task === 'metrics'
        ? await metrics(task.origin)
        : task.task === 'sizes'
          ? await sizes(task.origin, task.paths)
          : task.task === 'startup'
            ? await startup(task)
            : await liveEdge(task);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  // Open pushes or timers must not keep the process alive once the answer is out.
  process.exit(0);
}

main().catch((err: Error) => {
  console.error(`node-client: ${err.stack ?? err.message}`);
  process.exit(1);
});
