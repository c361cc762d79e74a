/**
 * Benchmark: on-demand, prefetch, 103 Early Hints and HTTP/2 push, for the same live stream, at
 * several round-trip times, measured with real clients over a real (namespaced) network link:
 *   npm run bench:push   (as root; about 10 minutes)
 * writes docs/push-comparison.md and docs/push-comparison.svg, and the raw results to
 * build/bench/push-comparison-results.json. Options through env: PCB_RTTS (0,50,150), PCB_NODE_REPS (5),
 * PCB_BROWSER_REPS (3), PCB_LIVE_SEGMENTS (8).
 *
 * Layout: `pushcast serve` in an origin namespace, every client in a client namespace (a Node process per run, or
 * Chromium through a wrapper), one link between them whose RTT is set per level (see push/network.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  browserBytes,
  browserRun,
  CHROMIUM,
  launchInClientNamespace,
  unknownSizes,
  type BrowserMode,
  type LaunchedChromium,
} from './push/chromium.js';
import { sleepUntil, wallClock } from '../test/support/wait.js';
import { summarize } from './figures.js';
import { machine, machineFacts, toolVersion } from './machine.js';
import { nextPhase, type LiveTiming } from './push/mpd.js';
import { createNetwork, type Network } from './push/network.js';
import type { LiveMode, LiveResult, ProbeResult, StartupMode, StartupResult, Task } from './push/node-client.js';
import { LADDER, ORIGIN_URL, REPO, SEGMENT_DURATION, startOrigin, type OriginProcess } from './push/origin-process.js';
import { bytes, chartSvg, markdown, ms, table, type BrowserSample, type Results, type RowKey } from './push/report.js';

const RTTS = (process.env.PCB_RTTS ?? '0,50,150').split(',').map(Number);
const NODE_REPS = Number(process.env.PCB_NODE_REPS ?? 5);
const BROWSER_REPS = Number(process.env.PCB_BROWSER_REPS ?? 3);
const LIVE_SEGMENTS = Number(process.env.PCB_LIVE_SEGMENTS ?? 8);
/** Seconds after a segment boundary at which every startup run begins (see the report's method notes). */
const PHASE = 0.5;
/** How long Chromium keeps playing after the first frame, so that unused preloads show. */
const SETTLE_MS = 2500;
/** Segments published before measuring: the origin must have a newest complete segment to push or hint. */
const WARM_SECONDS = 7;

const CLIENT = fileURLToPath(new URL('./push/node-client.js', import.meta.url));
const DOC = join(REPO, 'docs/push-comparison.md');
const SVG = join(REPO, 'docs/push-comparison.svg');
const RAW = fileURLToPath(new URL('./push-comparison-results.json', import.meta.url));
const CERT = join(REPO, '.pushcast/tls/dev-cert.pem');

/** Origin A serves the modes that must not see a 103 or a push; origin B has both on (the defaults). */
const ORIGIN_A = ['--no-push', '--no-early-hints'];
const ORIGIN_B: string[] = [];

// Everything that must be undone on exit or on a signal.
const children = new Set<ChildProcess>();
let network: Network | undefined;
let origin: OriginProcess | undefined;
let browser: LaunchedChromium | undefined;
let retries = 0;

/** One client run in the client namespace; its JSON answer. One retry: a 10-minute run should not die of one hiccup. */
async function client<T>(task: Task): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await clientOnce<T>(task);
    } catch (err) {
      if (attempt >= 2) throw err;
      retries++;
      console.error(`  retrying after: ${(err as Error).message.split('\n')[0]}`);
    }
  }
}

function clientOnce<T>(task: Task): Promise<T> {
  return new Promise((resolve, reject) => {
    const [ip, ...argv] = network!.client.command(process.execPath, CLIENT, JSON.stringify(task));
    const child = spawn(ip!, argv, {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      if (code === 0) resolve(JSON.parse(out) as T);
      else
        reject(
          new Error(
            `node-client ${task.task}${'mode' in task ? ` ${task.mode}` : ''} failed (${code ?? signal}): ${err.trim()}`,
          ),
        );
    });
  });
}

async function counters(): Promise<Record<string, number>> {
  return client<Record<string, number>>({ task: 'metrics', origin: ORIGIN_URL });
}

/** Runs `f` and records how the origin's counters changed meanwhile (this bench is the origin's only client). */
async function counted<T>(results: Results, label: string, rtt: number, f: () => Promise<T>): Promise<T> {
  const before = await counters();
  const value = await f();
  const after = await counters();
  const delta: Record<string, number> = {};
  for (const [k, v] of Object.entries(after))
    if (v !== (before[k] ?? 0) && !/^pushcast_(nodejs_|process_)/.test(k)) delta[k] = v - (before[k] ?? 0);
  results.counters.push({ label, rtt, delta });
  return value;
}

async function startupRun(mode: StartupMode, timing: LiveTiming, rtt: number): Promise<StartupResult> {
  return client<StartupResult>({ task: 'startup', mode, origin: ORIGIN_URL, timing, phase: PHASE, rttMs: rtt });
}

const BROWSER_URL: Record<BrowserMode, string> = {
  'on-demand': '/?mode=dash',
  prefetch: '/?mode=prefetch',
  'early-hints': '/?mode=dash',
};

/**
 * One Chromium run, navigating `phase` seconds after a segment boundary. Unlike the Node client, dash.js
 * picks its first segment from its latency target and its own clock, so whether a hinted segment is the one
 * it wants depends on the phase: the repetitions spread over the segment cycle, the same phases for every mode.
 */
async function chromiumRun(mode: BrowserMode, timing: LiveTiming, phase: number): Promise<BrowserSample> {
  const run = await browserRun(browser!.browser, ORIGIN_URL + BROWSER_URL[mode], mode, SETTLE_MS, () =>
    sleepUntil(nextPhase(timing, wallClock(), phase, 300)),
  );
  const missing = unknownSizes(run);
  const sizes = missing.length
    ? await client<Record<string, number>>({ task: 'sizes', origin: ORIGIN_URL, paths: missing })
    : {};
  return { run, bytes: browserBytes(run, sizes) };
}

function line(label: string, values: number[], unit = 'ms'): string {
  const s = summarize(values);
  return s
    ? `${label} ${unit === 'ms' ? ms(s.median) : bytes(s.median)}${unit === 'ms' ? ` ms (${ms(s.min)}–${ms(s.max)})` : ''}`
    : `${label} –`;
}

interface Phase {
  name: 'A' | 'B';
  args: string[];
  /** Startup modes of the Node client: [table row, client mode]. */
  node: [RowKey, StartupMode][];
  browser: BrowserMode[];
  live: LiveMode[];
}

/**
 * Node clients ignore a 103 unless they are the early-hints client, and refuse pushes unless they are the
 * push client, so all four Node modes share origin B and are compared within one origin process (the
 * live-edge latency especially: each origin process anchors its availability times on its own encoder
 * start). Chromium acts on every 103 of a page, so its on-demand and prefetch runs need origin A; the Node
 * on-demand client runs there too, as a control of how much the two origin processes differ.
 */
const PHASES: Phase[] = [
  { name: 'A', args: ORIGIN_A, node: [['control', 'on-demand']], browser: ['on-demand', 'prefetch'], live: [] },
  {
    name: 'B',
    args: ORIGIN_B,
    node: [
      ['on-demand', 'on-demand'],
      ['prefetch', 'prefetch'],
      ['early-hints', 'early-hints'],
      ['push', 'push'],
    ],
    browser: ['early-hints'],
    live: ['on-demand', 'prefetch', 'push'],
  },
];

async function runPhase(p: Phase, results: Results): Promise<void> {
  console.log(`\norigin ${p.name}: pushcast ${['serve', ...p.args].join(' ')}`);
  origin = await startOrigin(network!.origin, p.args);
  await network!.setRtt(0);
  await new Promise((r) => setTimeout(r, WARM_SECONDS * 1000));
  const probe = await client<ProbeResult>({ task: 'probe', origin: ORIGIN_URL });
  if (probe.protocol !== 'h2') throw new Error(`the origin answered over ${probe.protocol}, not h2`);
  const timing = probe.timing;
  results.timings[p.name] = timing;
  const rendition = timing.video.at(-1)!;
  browser = await launchInClientNamespace(network!.client, CERT);

  for (const [i, rtt] of RTTS.entries()) {
    await network!.setRtt(rtt);
    if (i === 0) {
      // Warm-up, discarded: JIT of origin and client paths, Chromium's first context.
      for (const [, mode] of p.node) await startupRun(mode, timing, rtt);
      for (const mode of p.browser) await chromiumRun(mode, timing, PHASE);
    }
    // Modes alternate within each repetition, so that drift over time touches them alike.
    const startup = (results.startup[rtt] ??= {});
    for (const [key] of p.node) startup[key] = [];
    await counted(results, `node startup, origin ${p.name}`, rtt, async () => {
      for (let rep = 0; rep < NODE_REPS; rep++)
        for (const [key, mode] of p.node) startup[key]!.push(await startupRun(mode, timing, rtt));
    });
    for (const [key] of p.node)
      console.log(
        `  RTT ${rtt} ms, Node startup: ${line(
          key,
          startup[key]!.map((x) => x.startupMs),
        )}, not used ${line(
          '',
          startup[key]!.map((x) => x.wastedBytes),
          'B',
        )}`,
      );

    const frames = (results.browser[rtt] ??= {});
    for (const mode of p.browser) frames[mode] = [];
    await counted(results, `chromium, origin ${p.name}`, rtt, async () => {
      for (let rep = 0; rep < BROWSER_REPS; rep++) {
        const phase = ((rep + 0.5) / BROWSER_REPS) * timing.duration;
        for (const mode of p.browser) frames[mode]!.push(await chromiumRun(mode, timing, phase));
      }
    });
    for (const mode of p.browser) {
      const runs = frames[mode]!;
      console.log(
        `  RTT ${rtt} ms, Chromium first frame: ${line(
          mode,
          runs.map((x) => x.run.firstFrameMs),
        )}; protocol ${[...new Set(runs.map((x) => x.run.protocol))].join('/')}; 103 in ${runs.filter((x) => x.run.interimMs > 0).length}/${runs.length}; hints used ${runs.reduce((n, x) => n + x.bytes.hintsUsed.length, 0)}/${runs.reduce((n, x) => n + x.run.hinted.length, 0)}; not used ${line(
          '',
          runs.map((x) => x.bytes.wasted),
          'B',
        )}`,
      );
    }

    const live = (results.live[rtt] ??= {});
    for (const mode of p.live) {
      live[mode] = await counted(results, `live ${mode}`, rtt, () =>
        client<LiveResult>({
          task: 'live',
          mode,
          origin: ORIGIN_URL,
          timing,
          rendition,
          segments: LIVE_SEGMENTS,
          rttMs: rtt,
        }),
      );
      console.log(
        `  RTT ${rtt} ms, live edge ${rendition}: ${line(
          mode,
          live[mode]!.segments.map((x) => x.latencyMs),
        )}, extra ${bytes(live[mode]!.extraBytes)}`,
      );
    }
  }
  await browser.close();
  browser = undefined;
  await origin.stop();
  origin = undefined;
}

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const c of children) c.kill('SIGKILL');
    // Chromium and the origin first, so that nothing is left in the namespaces when they are deleted.
    await Promise.race([browser?.close(), new Promise((r) => setTimeout(r, 5000))]);
    await Promise.race([origin?.stop(), new Promise((r) => setTimeout(r, 5000))]);
    origin?.kill();
    network?.close();
  })();
  return cleaning;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    console.error(`\n${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench:push creates network namespaces: run it as root');
  const started = Date.now();
  const results: Results = {
    startedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    durationS: 0,
    machine: { ...machineFacts(), chromium: toolVersion(CHROMIUM), ffmpeg: toolVersion('ffmpeg', ['-version']) },
    network: 'delay-line',
    config: {
      rtts: RTTS,
      nodeReps: NODE_REPS,
      browserReps: BROWSER_REPS,
      liveSegments: LIVE_SEGMENTS,
      phase: PHASE,
      settleMs: SETTLE_MS,
      ladder: LADDER,
      segmentDuration: SEGMENT_DURATION,
    },
    origins: { a: ['pushcast serve', ...ORIGIN_A].join(' '), b: ['pushcast serve', ...ORIGIN_B].join(' ') },
    timings: {},
    startup: {},
    browser: {},
    live: {},
    counters: [],
    retries: 0,
  };
  const m = results.machine;
  console.log(`machine: ${machine(m)}, ${m.chromium}, ${m.ffmpeg}`);
  network = await createNetwork();
  if (network.stale.length) console.log(`removed what interrupted runs left: ${network.stale.join(', ')}`);
  results.network = network.kind;
  console.log(
    `network: namespaces ${network.origin.name} / ${network.client.name}, RTT by ${network.kind === 'netem' ? 'netem' : 'user-space delay line (no sch_netem in this kernel)'}; RTTs ${RTTS.join(', ')} ms`,
  );
  try {
    for (const p of PHASES) await runPhase(p, results);
  } finally {
    await cleanup();
  }
  results.durationS = (Date.now() - started) / 1000;
  results.retries = retries;
  mkdirSync(dirname(RAW), { recursive: true });
  writeFileSync(RAW, `${JSON.stringify(results, null, 1)}\n`);
  writeFileSync(DOC, markdown(results));
  writeFileSync(SVG, chartSvg(results));
  console.log(`\n${table(results)}\n`);
  console.log(`wrote ${DOC}, ${SVG} and ${RAW} in ${(results.durationS / 60).toFixed(1)} min`);
}

main().then(
  () => process.exit(0),
  async (err: Error) => {
    console.error(`bench:push: ${err.stack ?? err.message}`);
    await cleanup();
    process.exit(1);
  },
);
