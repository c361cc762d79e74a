/**
 * Soak: does the memory of `pushcast serve` level off under steady viewers and repeated abuse?
 *   npm run bench:soak                      (30 minutes; writes the generated part of docs/soak.md)
 *   node build/bench/soak.js --minutes 3 --bursts 1 --ladder 320x180@300k --doc none
 *
 * - Server: `pushcast serve` (test pattern, real ffmpeg) on free loopback ports, HTTP/3 and multicast on,
 *   a Warp token required, its development certificate in a temporary state directory.
 * - Viewers (bench/soak/viewers.ts, a process of their own): `--viewers` of each mode for the whole run:
 *   LL-DASH over HTTP/1.1, HTTP/2 and HTTP/3, Warp over WebTransport and over the WebSocket fallback,
 *   multicast through the origin's gateway.
 * - Bursts (bench/soak/abuse.ts, a process per burst, killed at its end so that what it left open is
 *   abandoned): after a warm-up of `--burst-every` seconds, every `--burst-every` seconds a burst of
 *   `--burst-seconds`, for as long as a whole idle period follows it (at most `--bursts`).
 * - Readings every `--sample-every` seconds: RSS (/proc/<pid>/status), V8 heap used and committed and
 *   external memory (/metrics), open descriptors, sessions and held requests. With `--inspect` the server
 *   runs under `--inspect=127.0.0.1:0`, and at the end of each idle period a full collection is forced
 *   and the memory read again; with `--snapshots`, a heap snapshot too, compared with the previous one
 *   by kind of object. `--malloc-trim` calls glibc's malloc_trim(0) in the server through gdb at the end.
 * - Report: start, peak, end and slope over the last third of each memory series, whether memory levels
 *   off (criterion in bench/soak/report.ts), the viewers' health by mode and the machine; printed, written
 *   to build/bench/soak-results.json and between the markers of docs/soak.md (`--doc <file>`, `none`).
 * Other options: `--burst-scale` multiplies every count of a burst; `--server-env NAME=VALUE` (repeatable)
 * sets an environment variable of the server (e.g. MALLOC_ARENA_MAX=2); `--segment-duration` (2).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startServe, type RunningServe } from '../test/support/pushcast-process.js';
import { writeDocSection } from './doc-section.js';
import { machine } from './machine.js';
import type { AbuseArgs, AbuseReport } from './soak/abuse.js';
import { Inspector, growth, type HeapSummary } from './soak/inspector.js';
import {
  health,
  lastThirdFrom,
  levelsOff,
  markdown,
  series,
  soakMachine,
  type AfterGc,
  type BurstRecord,
  type Phase,
  type Results,
  type Sample,
} from './soak/report.js';
import type { MulticastSession, StatusLine, ViewersArgs } from './soak/viewers.js';

const { values: opts } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    ladder: { type: 'string' },
    viewers: { type: 'string', default: '2' },
    'burst-every': { type: 'string', default: '60' },
    'burst-seconds': { type: 'string', default: '20' },
    'burst-scale': { type: 'string', default: '1' },
    bursts: { type: 'string' },
    'sample-every': { type: 'string', default: '5' },
    'segment-duration': { type: 'string', default: '2' },
    inspect: { type: 'boolean', default: false },
    snapshots: { type: 'boolean', default: false },
    'malloc-trim': { type: 'boolean', default: false },
    'server-env': { type: 'string', multiple: true, default: [] },
    doc: { type: 'string', default: 'docs/soak.md' },
  },
});

function positive(name: string, value: string | undefined): number {
  const x = Number(value);
  if (!Number.isFinite(x) || x <= 0) throw new Error(`--${name}: ${value} is not a positive number`);
  return x;
}

const MINUTES = positive('minutes', opts.minutes);
const VIEWERS = Math.round(positive('viewers', opts.viewers));
const BURST_EVERY = positive('burst-every', opts['burst-every']);
const BURST_SECONDS = positive('burst-seconds', opts['burst-seconds']);
const BURST_SCALE = positive('burst-scale', opts['burst-scale']);
const MAX_BURSTS = opts.bursts === undefined ? Infinity : Math.round(positive('bursts', opts.bursts));
const SAMPLE_SECONDS = positive('sample-every', opts['sample-every']);
const SEGMENT_SECONDS = positive('segment-duration', opts['segment-duration']);
const SNAPSHOTS = opts.snapshots;
const INSPECT = opts.inspect || SNAPSHOTS;
if (BURST_SECONDS >= BURST_EVERY) throw new Error('--burst-seconds must be shorter than --burst-every');
const TOKEN = 'soak-token';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const VIEWERS_JS = fileURLToPath(new URL('./soak/viewers.js', import.meta.url));
const ABUSE_JS = fileURLToPath(new URL('./soak/abuse.js', import.meta.url));
const RAW = fileURLToPath(new URL('./soak-results.json', import.meta.url));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mib = (bytes: number) => bytes / 2 ** 20;
const log = (line: string) => console.log(`soak ${new Date().toISOString().slice(11, 19)} ${line}`);

function commandLine(): string {
  const given = process.argv.slice(2).join(' ');
  return process.env.npm_lifecycle_event === 'bench:soak'
    ? `npm run bench:soak${given ? ` -- ${given}` : ''}`
    : `node build/bench/soak.js${given ? ` ${given}` : ''}`;
}

// ─── the server ───────────────────────────────────────────────────────────────────────────────

function rssMiB(pid: number): number {
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) / 1024;
}

function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

/** The value of an unlabelled Prometheus series, or the sum of a labelled one's. */
function metric(text: string, name: string): number | null {
  let found = false;
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'gm'))) {
    found = true;
    sum += Number(m[1]);
  }
  return found ? sum : null;
}

async function startServer(stateDir: string): Promise<{ serve: RunningServe; inspectorUrl?: string }> {
  const group = `232.112.${100 + Math.floor(Math.random() * 100)}.1`;
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const serveArgs = [
    '--state-dir',
    stateDir,
    '--warp-token',
    TOKEN,
    '--segment-duration',
    String(SEGMENT_SECONDS),
    '--multicast-group',
    group,
    '--multicast-port',
    String(port),
    ...(opts.ladder ? ['--ladder', opts.ladder] : []),
  ];
  // startServe spawns at once, with this process's environment: the server's own variables are set
  // around that call only, so that the viewers and bursts started later do not get them.
  const saved = { ...process.env };
  for (const pair of opts['server-env']) {
    const eq = pair.indexOf('=');
    if (eq < 1) throw new Error(`--server-env ${pair}: NAME=VALUE expected`);
    process.env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  if (INSPECT) process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --inspect=127.0.0.1:0`.trim();
  const starting = startServe(serveArgs, { timeoutMs: 120_000 });
  for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
  Object.assign(process.env, saved);
  const serve = await starting;
  const inspectorUrl = INSPECT
    ? /ws:\/\/\S+/.exec(await serve.waitForLine(/^Debugger listening on ws:/))?.[0]
    : undefined;
  return { serve, inspectorUrl };
}

// ─── the children ─────────────────────────────────────────────────────────────────────────────

interface Viewers {
  child: ChildProcess;
  status(): Promise<StatusLine>;
  quit(): Promise<void>;
}

function startViewers(a: ViewersArgs): Viewers {
  const child = spawn(process.execPath, [VIEWERS_JS, JSON.stringify(a)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting: ((line: StatusLine) => void)[] = [];
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    const parsed = JSON.parse(line) as StatusLine;
    waiting.shift()?.(parsed);
  });
  return {
    child,
    status: () =>
      new Promise((resolve, reject) => {
        waiting.push(resolve);
        child.stdin!.write(`${JSON.stringify({ cmd: 'status' })}\n`);
        setTimeout(() => reject(new Error('the viewers did not answer within 10 s')), 10_000);
      }),
    quit: async () => {
      child.stdin!.end(`${JSON.stringify({ cmd: 'quit' })}\n`);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
      clearTimeout(timer);
    },
  };
}

/** One burst: its process runs `seconds`, reports, and is killed (what it left open is abandoned). */
async function burst(a: AbuseArgs): Promise<AbuseReport | undefined> {
  const child = spawn(process.execPath, [ABUSE_JS, JSON.stringify(a)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (t: string) => (out += t));
  const exited = new Promise((r) => child.once('exit', r));
  await Promise.race([exited, sleep((a.seconds + 3) * 1000)]);
  child.kill('SIGKILL');
  await exited;
  try {
    return JSON.parse(out.trim().split('\n')[0] ?? '') as AbuseReport;
  } catch {
    log(`burst: no report (${out.slice(0, 200)})`);
    return undefined;
  }
}

// ─── the run ──────────────────────────────────────────────────────────────────────────────────

const stateDir = mkdtempSync(join(os.tmpdir(), 'pushcast-soak-'));
const startedAt = new Date().toISOString();
const m = soakMachine();
log(`machine: ${machine(m)}; load ${m.loadAtStart.toFixed(2)}`);
const { serve, inspectorUrl } = await startServer(stateDir);
const pid = serve.child.pid!;
const SERVER_LOG = fileURLToPath(new URL('./soak-server.log', import.meta.url));
let stopping = false;
serve.child.once('exit', (code, signal) => {
  writeFileSync(SERVER_LOG, `${serve.lines.join('\n')}\n`);
  if (stopping) return;
  log(`the server exited (${signal ?? code}) during the run; its output: ${SERVER_LOG}`);
  for (const line of serve.lines.slice(-15)) log(`  server: ${line}`);
  void cleanup().then(() => process.exit(1));
});
let viewers: Viewers | undefined;
let inspector: Inspector | undefined;
const cleanup = async () => {
  stopping = true;
  viewers?.child.kill('SIGKILL');
  inspector?.close();
  await serve.stop();
  rmSync(stateDir, { recursive: true, force: true });
};
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));

try {
  const httpBase = new URL(serve.player).origin;
  const httpPort = Number(new URL(serve.player).port);
  const tlsPort = Number(new URL(serve.httpsPlayer!).port);
  const caFile = join(stateDir, 'tls', 'dev-cert.pem');
  const multicast: MulticastSession[] = serve.lines.flatMap((line) => {
    const x = /^multicast: (\S+) (\S+):(\d+) source (\S+) session-id ([0-9a-f]+)/.exec(line);
    return x ? [{ track: x[1]!, group: x[2]!, port: Number(x[3]), source: x[4]!, sessionId: x[5]! }] : [];
  });
  const mpd = await (await fetch(`${httpBase}/live/manifest.mpd`)).text();
  const representations = [...mpd.matchAll(/<Representation\b[^>]*\sid="([^"]+)"/g)].map((x) => x[1]!);
  const ladder = opts.ladder ?? 'default (640x360@800k, 960x540@1.6M, 1280x720@3M)';
  log(
    `server pid ${pid} live at ${httpBase} and https://127.0.0.1:${tlsPort}; ${representations.join(', ')}; multicast ${multicast.length ? multicast.map((s) => s.track).join(', ') : 'off'}${inspectorUrl ? '; inspector attached' : ''}`,
  );
  if (inspectorUrl) inspector = await Inspector.connect(inspectorUrl);

  viewers = startViewers({
    http: httpBase,
    tlsPort,
    caFile,
    token: TOKEN,
    perMode: VIEWERS,
    segmentSeconds: SEGMENT_SECONDS,
    multicast,
  });

  const t0 = Date.now();
  const elapsed = () => (Date.now() - t0) / 1000;
  const samples: Sample[] = [];
  const bursts: BurstRecord[] = [];
  const afterGc: AfterGc[] = [];
  let phase: Phase = 'warm-up';

  const sample = async (): Promise<void> => {
    const t = elapsed();
    const rss = rssMiB(pid);
    const fds = openFds(pid);
    let text = '';
    try {
      text = await (await fetch(`${httpBase}/metrics`, { signal: AbortSignal.timeout(4000) })).text();
    } catch {
      // a reading without the metrics: RSS and descriptors still count
    }
    const bytes = (name: string) => {
      const v = metric(text, name);
      return v === null ? null : mib(v);
    };
    samples.push({
      t,
      phase,
      rss,
      heapUsed: bytes('pushcast_nodejs_heap_size_used_bytes'),
      heapTotal: bytes('pushcast_nodejs_heap_size_total_bytes'),
      external: bytes('pushcast_nodejs_external_memory_bytes'),
      fds,
      quicConnections: metric(text, 'pushcast_quic_connections'),
      warpSessions: metric(text, 'pushcast_warp_sessions'),
      webSocketSessions: metric(text, 'pushcast_websocket_sessions'),
      heldRequests: metric(text, 'pushcast_held_segment_requests'),
    });
  };
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const next = Date.now() + SAMPLE_SECONDS * 1000;
      await sample().catch((e) => log(`reading failed: ${e instanceof Error ? e.message : String(e)}`));
      const s = samples[samples.length - 1];
      if (s && Math.round(s.t) % 30 < SAMPLE_SECONDS)
        log(
          `${s.t.toFixed(0)} s ${s.phase}: RSS ${s.rss.toFixed(1)} MiB, heap ${s.heapUsed?.toFixed(1)} / ${s.heapTotal?.toFixed(1)} MiB, external ${s.external?.toFixed(1)} MiB, fds ${s.fds}, QUIC ${s.quicConnections}, Warp ${s.warpSessions}, held ${s.heldRequests}`,
        );
      await sleep(Math.max(0, next - Date.now()));
    }
  })();

  let previousSummary: HeapSummary | undefined;
  const readAfterGc = (): Promise<void> =>
    readAfterGcOnce().catch((e) => log(`after GC: no reading (${e instanceof Error ? e.message : String(e)})`));
  const readAfterGcOnce = async (): Promise<void> => {
    if (!inspector) return;
    await inspector.collectGarbage();
    const u = await inspector.memoryUsage();
    const entry: AfterGc = {
      t: elapsed(),
      bursts: bursts.length,
      rss: mib(u.rss),
      heapUsed: mib(u.heapUsed),
      heapTotal: mib(u.heapTotal),
      external: mib(u.external),
    };
    if (SNAPSHOTS) {
      const summary = await inspector.heapSummary();
      entry.snapshotNodes = summary.nodes;
      if (previousSummary) entry.grew = growth(previousSummary, summary);
      previousSummary = summary;
    }
    afterGc.push(entry);
    log(
      `after GC (${entry.bursts} bursts): RSS ${entry.rss.toFixed(1)}, heap ${entry.heapUsed.toFixed(1)} / ${entry.heapTotal.toFixed(1)}, external ${entry.external.toFixed(1)} MiB${entry.snapshotNodes ? `; snapshot ${entry.snapshotNodes} objects` : ''}`,
    );
    for (const g of entry.grew?.slice(0, 10) ?? [])
      log(`  grew: ${g.kind} ${g.count >= 0 ? '+' : ''}${g.count} objects, ${(g.bytes / 1024).toFixed(0)} KiB`);
  };

  const end = MINUTES * 60;
  for (let k = 0; k < MAX_BURSTS; k++) {
    const at = BURST_EVERY * (k + 1);
    if (at + BURST_EVERY > end) break;
    await sleep(Math.max(0, at * 1000 - (Date.now() - t0)));
    await readAfterGc();
    phase = 'burst';
    log(`burst ${k + 1}: ${BURST_SECONDS} s`);
    const started = elapsed();
    const report = await burst({
      httpPort,
      tlsPort,
      caFile,
      token: TOKEN,
      representations,
      segmentSeconds: SEGMENT_SECONDS,
      multicast,
      seconds: BURST_SECONDS,
      scale: BURST_SCALE,
    });
    bursts.push({ at: started, seconds: elapsed() - started, report });
    phase = 'idle';
  }
  await sleep(Math.max(0, end * 1000 - (Date.now() - t0)));
  sampling = false;
  await sampler;
  await readAfterGc();
  let afterTrim: Results['afterTrim'];
  if (opts['malloc-trim']) {
    const rssBefore = rssMiB(pid);
    const gdb = spawnSync('gdb', ['-p', String(pid), '-batch', '-ex', 'call (int) malloc_trim(0)'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    if (gdb.status !== 0) log(`gdb: ${gdb.stderr?.slice(0, 300)}`);
    await sleep(1000);
    afterTrim = { rssBefore, rss: rssMiB(pid) };
    log(`malloc_trim(0): RSS ${rssBefore.toFixed(1)} → ${afterTrim.rss.toFixed(1)} MiB`);
  }
  const status = await viewers.status();
  await viewers.quit();
  viewers = undefined;

  const results: Results = {
    command: commandLine(),
    startedAt,
    machine: m,
    options: {
      minutes: MINUTES,
      ladder,
      viewersPerMode: VIEWERS,
      burstEverySeconds: BURST_EVERY,
      burstSeconds: BURST_SECONDS,
      burstScale: BURST_SCALE,
      sampleSeconds: SAMPLE_SECONDS,
    },
    samples,
    bursts,
    afterGc,
    viewers: status.viewers,
    afterTrim,
  };
  mkdirSync(dirname(RAW), { recursive: true });
  writeFileSync(RAW, `${JSON.stringify(results, null, 1)}\n`);

  const from = lastThirdFrom(samples, bursts);
  const rss = series(samples, (s) => s.rss, from);
  const heap = series(samples, (s) => s.heapUsed, from);
  log(
    `RSS start ${rss.start.toFixed(1)}, peak ${rss.peak.toFixed(1)} at ${rss.peakAt.toFixed(0)} s, end ${rss.end.toFixed(1)} MiB, last third ${rss.slope.toFixed(2)} MiB/min`,
  );
  log(
    `heap used start ${heap.start.toFixed(1)}, peak ${heap.peak.toFixed(1)}, end ${heap.end.toFixed(1)} MiB, last third ${heap.slope.toFixed(2)} MiB/min`,
  );
  log(`levels off: ${levelsOff(rss, heap) ? 'yes' : 'no'}`);
  for (const h of health(status.viewers, MINUTES))
    log(
      `viewers ${h.mode}: ${h.viewers}, ${h.segments} segments (${h.perViewerPerMinute.toFixed(1)} per viewer-minute), ${h.errors} errors, ${h.reconnects} reconnects, longest gap ${h.longestGapSeconds.toFixed(1)} s`,
    );
  for (const v of status.viewers.filter((x) => x.lastError)) log(`  ${v.mode} #${v.index} last error: ${v.lastError}`);
  log(`raw results: ${RAW}`);

  if (opts.doc !== 'none') {
    const doc = join(REPO, opts.doc);
    writeDocSection({ file: doc, name: 'soak', writer: 'bench/soak.ts', body: markdown(results), title: 'Soak' });
    log(`wrote ${doc}`);
  }
} finally {
  await cleanup();
}
