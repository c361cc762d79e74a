/**
 * The congestion lab: one live stream watched in Chromium over LL-DASH and over Warp at once,
 * on one link whose rate steps down below the stream's bitrate and back:
 *   npm run bench:latency   (as root: it creates network namespaces; about 6 minutes)
 * writes docs/latency.md and docs/latency.svg, and the raw samples to build/bench/latency-results.json.
 *
 * Layout (bench/latency/network.ts): `pushcast serve` in the origin namespace; Chromium with both pages in
 * the client namespace, on one link; a Node Warp viewer in the node namespace, on a link of its own with
 * the same per-viewer rate. Each run steps the rate per viewer through 2×, 0.7×, 0.4× and 2× the stream's bitrate. Runs
 * (PCL_RUNS, comma-separated, in order):
 *   shared   the two browser viewers share one token bucket and queue (the headline)
 *   split    the same, but each transport gets its own token bucket and queue of one viewer's share (control)
 *   abr      shared, with pushcast's default 3-rendition ladder (both players switch renditions)
 *   adaptive split, with the default ladder: both players choose their rendition (Warp: SELECT); the report
 *            shows per phase the renditions played, frames shown, frame latency p99, stalls and the time
 *            back at the top rendition
 * Other options through env:
 *   PCL_RUNS (shared,split,adaptive)    PCL_PHASE_S (40) seconds per phase    PCL_TARGET_MS (2000) both players' latency target
 *   PCL_QUEUE_MS (300) queue, ms of bytes at the rate    PCL_DELAY_MS (20) one-way delay
 *   PCL_LADDER (640x360@1M) ladder of shared/split    PCL_WARP_TRANSPORT (webtransport | websocket)
 *   PCL_WARP_ORDER (audio-first, serve's default) the origin's --warp-order
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM } from '../test/support/browser.js';
import { until } from '../test/support/wait.js';
import { mean } from './figures.js';
import { openViewers, type PlayerKind, type SegmentSeen, type Viewers } from './latency/browser.js';
import { machine, machineFacts, toolVersion } from './machine.js';
import { createLab, type Lab, type LinkShape } from './latency/network.js';
import { onLines } from './latency/lines.js';
import type { ViewerEvent } from './latency/node-viewer.js';
import { HTTP_BASE, NODE_HTTPS_BASE, REPO, startOrigin, type Origin } from './latency/origin.js';
import {
  chartSvg,
  markdown,
  verdict,
  type PhaseRun,
  type PhaseSpec,
  type Results,
  type RunResult,
  type RunSpec,
} from './latency/report.js';

const env = (name: string, fallback: string) => process.env[name] ?? fallback;
const PHASE_S = Number(env('PCL_PHASE_S', '40'));
const TARGET_MS = Number(env('PCL_TARGET_MS', '2000'));
const QUEUE_MS = Number(env('PCL_QUEUE_MS', '300'));
const DELAY_MS = Number(env('PCL_DELAY_MS', '20'));
const LADDER = env('PCL_LADDER', '640x360@1M');
const WARP_TRANSPORT = env('PCL_WARP_TRANSPORT', 'webtransport');
const WARP_ORDER = env('PCL_WARP_ORDER', 'audio-first');
const SAMPLE_MS = 500;
/** Steady playback of both pages before the phases begin. */
const SETTLE_MS = 5000;
const AUDIO_BPS = 128_000;
/** pushcast serve's default ladder (README), for the abr run. */
const DEFAULT_LADDER = '640x360@800k,960x540@1.6M,1280x720@3M';
const PHASES: PhaseSpec[] = [
  { name: 'warm-up', factor: 2, seconds: PHASE_S },
  { name: '70 %', factor: 0.7, seconds: PHASE_S },
  { name: '40 %', factor: 0.4, seconds: PHASE_S },
  { name: 'recovered', factor: 2, seconds: PHASE_S },
];
const RUN_SPECS: Record<string, RunSpec> = {
  shared: { key: 'shared', label: 'Shared link', ladder: LADDER, sharing: 'shared' },
  split: { key: 'split', label: 'Control: a share per transport', ladder: LADDER, sharing: 'split' },
  abr: {
    key: 'abr',
    label: 'Shared link, default ladder (both players switch renditions)',
    ladder: DEFAULT_LADDER,
    sharing: 'shared',
    adaptive: true,
  },
  adaptive: {
    key: 'adaptive',
    label: 'Adaptive: split link, full ladder (360p/540p/720p), Warp and dash.js choosing renditions',
    ladder: DEFAULT_LADDER,
    sharing: 'split',
    adaptive: true,
  },
};
const RUNS = env('PCL_RUNS', 'shared,split,adaptive')
  .split(',')
  .map((r) => {
    const spec = RUN_SPECS[r.trim()];
    if (!spec) throw new Error(`PCL_RUNS: no run named ${r} (${Object.keys(RUN_SPECS).join(', ')})`);
    return spec;
  });

const NODE_VIEWER_JS = fileURLToPath(new URL('./latency/node-viewer.js', import.meta.url));
const DOC = join(REPO, 'docs/latency.md');
const SVG = join(REPO, 'docs/latency.svg');
const RAW = fileURLToPath(new URL('./latency-results.json', import.meta.url));

// Everything that must be undone on exit, on an error or on a signal.
let lab: Lab | undefined;
let origin: Origin | undefined;
let viewers: Viewers | undefined;
let nodeViewer: ChildProcess | undefined;
let stateDir: string | undefined;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * CPU time in clock ticks: of the whole machine (/proc/stat: busy, and total including idle, over all
 * cores) and of each process of the lab (/proc/<pid>/stat utime + stime), so that the report can tell
 * the lab's own load from other work on the machine.
 */
function cpuTimes(pids: number[]): { busy: number; total: number; byPid: Map<number, number> } {
  const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
  const n = fields.map(Number);
  const total = n.slice(0, 8).reduce((a, b) => a + b, 0);
  const byPid = new Map<number, number>();
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const after = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      byPid.set(pid, Number(after[11]) + Number(after[12]));
    } catch {
      // exited
    }
  }
  return { busy: total - n[3]! - n[4]!, total, byPid };
}

/** Shares of the machine's CPU capacity between two readings: all busy, and the lab's processes. */
function cpuShares(
  a: ReturnType<typeof cpuTimes>,
  b: ReturnType<typeof cpuTimes>,
): { cpuBusy: number; cpuLab: number } {
  const span = b.total - a.total;
  if (span <= 0) return { cpuBusy: 0, cpuLab: 0 };
  let lab = 0;
  for (const [pid, ticks] of b.byPid) if (a.byPid.has(pid)) lab += ticks - a.byPid.get(pid)!;
  return { cpuBusy: (b.busy - a.busy) / span, cpuLab: Math.min(1, lab / span) };
}

/** Nominal top video bitrate of a ladder spec, bit/s. */
function topVideoBps(ladder: string): number {
  return Math.max(
    ...ladder.split(',').map((r) => {
      const m = /@(\d+(?:\.\d+)?)([kKmM]?)$/.exec(r.trim());
      if (!m) throw new Error(`ladder entry ${r} has no bitrate`);
      return Number(m[1]) * (m[2]!.toLowerCase() === 'm' ? 1e6 : m[2]!.toLowerCase() === 'k' ? 1e3 : 1);
    }),
  );
}

/** The Node Warp viewer in its namespace, over its own link; its events, as they come. */
function startNodeViewer(events: ViewerEvent[]): ChildProcess {
  const url = `${NODE_HTTPS_BASE}/warp/live?latency=${TARGET_MS}`;
  // A 64 MiB connection window: with QUIC's default 16 MiB, the viewer's session stopped receiving once about
  // 16 MiB had arrived, in both runs of a full run (a session of the same schedule on its own did not).
  const args = { url, bufferMs: TARGET_MS };
  const [ip, ...argv] = lab!.node.command(process.execPath, NODE_VIEWER_JS, JSON.stringify(args));
  const child = spawn(ip!, argv, {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  onLines(child.stdout!, (line) => line && events.push(JSON.parse(line) as ViewerEvent));
  // Its complaints become events too, so that they reach the report.
  onLines(child.stderr!, (line) => line && events.push({ type: 'error', t: Date.now(), message: line.slice(0, 300) }));
  child.on('exit', (code, signal) => {
    if (nodeViewer === child && code !== 0) console.error(`  Node viewer exited (${code ?? signal})`);
  });
  return child;
}

async function stopNodeViewer(): Promise<void> {
  const child = nodeViewer;
  nodeViewer = undefined;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.stdin!.end();
  await Promise.race([new Promise((r) => child.once('exit', r)), sleep(3000)]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

/** Origin counters about Warp, WebTransport or QUIC, read inside the origin namespace (not over a link). */
function originMetrics(): Record<string, number> {
  const values: Record<string, number> = {};
  try {
    const text = lab!.origin.run('curl', '-sf', '--max-time', '2', `${HTTP_BASE}/metrics`);
    for (const line of text.split('\n')) {
      const m = /^(\S*(?:warp|webtransport|quic)\S*)\s+(\S+)$/i.exec(line);
      if (m && !/route="webtransport-info"/.test(m[1]!)) values[m[1]!] = Number(m[2]);
    }
  } catch {
    // a missed reading is left out
  }
  return values;
}

/**
 * Until both pages have played SETTLE_MS on end — playing, with a latency, the picture never frozen — so
 * that the warm-up measures steady playback rather than each player's start.
 */
async function waitForPlayback(v: Viewers): Promise<void> {
  let since: number | undefined;
  let frozen = { dash: -1, warp: -1 };
  let last = '';
  await until(
    `both players to play steadily for ${SETTLE_MS} ms`,
    async () => {
      const [d, w] = await Promise.all([v.sample('dash'), v.sample('warp')]);
      const steady =
        [d, w].every((x) => x.sample.latencyMs !== null && x.sample.playing) &&
        d.sample.frozenMs === frozen.dash &&
        w.sample.frozenMs === frozen.warp;
      frozen = { dash: d.sample.frozenMs, warp: w.sample.frozenMs };
      last = `DASH ${JSON.stringify({ playing: d.sample.playing, errors: d.sample.errors })}, Warp ${JSON.stringify({ playing: w.sample.playing, transport: w.sample.transport, errors: w.sample.errors })}`;
      since = steady ? (since ?? Date.now()) : undefined;
      return since !== undefined && Date.now() - since >= SETTLE_MS;
    },
    { timeoutMs: 60_000, intervalMs: 500, detail: () => last },
  );
}

/** The viewers' link for one viewer's share `perViewerBps`: both browser viewers in one queue, or one each. */
function viewersLink(spec: RunSpec, perViewerBps: number): LinkShape {
  return spec.sharing === 'shared'
    ? { kind: 'shared', rateBps: 2 * perViewerBps, queueMs: QUEUE_MS }
    : { kind: 'split', tcpBps: perViewerBps, udpBps: perViewerBps, queueMs: QUEUE_MS };
}

function setLinks(spec: RunSpec, perViewerBps: number): void {
  lab!.shape('viewers', viewersLink(spec, perViewerBps));
  lab!.shape('node', { kind: 'shared', rateBps: perViewerBps, queueMs: QUEUE_MS });
}

async function runOnce(spec: RunSpec): Promise<RunResult> {
  const streamBps = topVideoBps(spec.ladder) + AUDIO_BPS;
  console.log(
    `\n${spec.label}: ladder ${spec.ladder} + audio; per viewer ${PHASES.map((p) => `${((p.factor * streamBps) / 1e6).toFixed(2)}`).join(' → ')} Mbit/s, ${PHASE_S} s each`,
  );
  setLinks(spec, PHASES[0]!.factor * streamBps);
  origin = await startOrigin(
    lab!.origin,
    ['--ladder', spec.ladder, '--target-latency', String(TARGET_MS / 1000), '--warp-order', WARP_ORDER],
    stateDir!,
  );
  const events: ViewerEvent[] = [];
  nodeViewer = startNodeViewer(events);
  const warpPath = `/warp/?latency=${TARGET_MS}&transport=${WARP_TRANSPORT}`;
  viewers = await openViewers({ ns: lab!.client, httpBase: HTTP_BASE, dashPath: '/?mode=dash', warpPath });
  await waitForPlayback(viewers);

  const result: RunResult = {
    ...spec,
    originArgs: origin.args,
    warpPath,
    streamBps,
    measuredBps: { video: null, audio: null },
    phases: [],
    samples: { dash: [], warp: [] },
    segments: { dash: [], warp: [] },
    node: events,
    originLog: [],
    link: [],
    metrics: [],
    pageErrors: { dash: [], warp: [] },
    notes: [],
  };
  const seen: Record<PlayerKind, Map<string, SegmentSeen>> = { dash: new Map(), warp: new Map() };
  const t0 = Date.now();
  let at = t0;
  for (const p of PHASES) {
    result.phases.push({ ...p, start: at, end: at + p.seconds * 1000, perViewerBps: p.factor * streamBps });
    at += p.seconds * 1000;
  }
  const transports = new Set<string>();
  let phaseIndex = -1;
  const labPids = () => [process.pid, ...lab!.pids()];
  let pids = labPids();
  let cpu = cpuTimes(pids);
  for (let tick = 0; ; tick++) {
    const now = Date.now();
    const phase = result.phases.findIndex((p) => now >= p.start && now < p.end);
    if (phase < 0) break;
    if (phase !== phaseIndex) {
      phaseIndex = phase;
      const p: PhaseRun = result.phases[phase]!;
      setLinks(spec, p.perViewerBps);
      result.metrics.push({ t: now, values: originMetrics() });
      console.log(
        `  ${((now - t0) / 1000).toFixed(0).padStart(3)} s: ${p.name}, ${(p.perViewerBps / 1e6).toFixed(2)} Mbit/s per viewer`,
      );
    }
    const [d, w] = await Promise.all([viewers.sample('dash'), viewers.sample('warp')]);
    for (const [kind, s] of [
      ['dash', d],
      ['warp', w],
    ] as const) {
      result.samples[kind].push(s.sample);
      if (s.sample.transport && s.sample.transport !== 'unknown')
        transports.add(`${kind === 'dash' ? 'LL-DASH' : 'Warp'} ${s.sample.transport}`);
      // The newest listing of a segment wins (the Warp page updates a segment's state as it goes); first seen stays its time.
      for (const seg of s.segments) seen[kind].set(seg.key, { ...seg, t: seen[kind].get(seg.key)?.t ?? seg.t });
    }
    if (tick % 2 === 0) {
      const c = cpuTimes(pids);
      result.link.push({ t: Date.now(), ...lab!.counters(), ...cpuShares(cpu, c) });
      // Processes come and go (Chromium's); the next interval counts those alive at both ends.
      if (tick % 20 === 0) pids = labPids();
      cpu = cpuTimes(pids);
    }
    if (tick % 10 === 0) {
      const lat = (x: number | null) => (x === null ? '–' : (x / 1000).toFixed(2));
      const node = events
        .filter((e): e is Extract<ViewerEvent, { type: 'fragment' }> => e.type === 'fragment' && e.kind === 'video')
        .at(-1);
      console.log(
        `  ${((now - t0) / 1000).toFixed(0).padStart(3)} s  latency: DASH ${lat(d.sample.latencyMs)} s (stalls ${d.sample.stalls}), Warp ${lat(w.sample.latencyMs)} s (stalls ${w.sample.stalls}, skipped ${w.sample.segmentsSkipped}), Node arrival ${node ? lat(node.latencyMs) : '–'} s; CPU ${Math.round((result.link.at(-1)?.cpuBusy ?? 0) * 100)} % (lab ${Math.round((result.link.at(-1)?.cpuLab ?? 0) * 100)} %)`,
      );
      // A Warp page that is not playing: what its media element holds, for whoever reads the log.
      if (!w.sample.playing) {
        const media = await viewers!.warp
          .evaluate(() => {
            const s = (
              window as unknown as {
                pushcastStats: () => {
                  currentTime: number;
                  media: unknown;
                  tracks: { id: string; buffered: unknown; queuedBytes: number }[];
                };
              }
            ).pushcastStats();
            return JSON.stringify({
              currentTime: s.currentTime,
              media: s.media,
              tracks: s.tracks.map((t) => ({ id: t.id, buffered: t.buffered, queued: t.queuedBytes })),
            });
          })
          .catch((error: Error) => error.message);
        console.log(`        Warp page not playing: ${media}`);
      }
    }
    await sleep(Math.max(0, t0 + (tick + 1) * SAMPLE_MS - Date.now()));
  }
  result.link.push({ t: Date.now(), ...lab!.counters(), ...cpuShares(cpu, cpuTimes(pids)) });
  result.metrics.push({ t: Date.now(), values: originMetrics() });
  result.segments = { dash: [...seen.dash.values()], warp: [...seen.warp.values()] };
  result.originLog = [...origin.lines];

  // What the stream actually weighed: whole segments dash.js loaded during the warm-up (2 s each).
  const warm = result.phases[0]!;
  for (const kind of ['video', 'audio'] as const) {
    const sizes = result.segments.dash
      .filter((s) => s.kind === kind && s.t >= warm.start && s.t < warm.end && s.bytes > 0)
      .map((s) => s.bytes);
    const m = mean(sizes);
    result.measuredBps[kind] = m === undefined ? null : (m * 8) / 2;
  }
  result.notes.push(
    `Transports: ${[...transports].sort().join(', ') || 'none'} (LL-DASH: Resource Timing \`nextHopProtocol\` of its segments; Warp: the page's session).`,
  );
  result.pageErrors = { dash: [...viewers.pageErrors.dash], warp: [...viewers.pageErrors.warp] };
  for (const kind of ['dash', 'warp'] as const) {
    const thrown = result.pageErrors[kind];
    if (thrown.length)
      result.notes.push(
        `**The ${kind === 'dash' ? 'LL-DASH' : 'Warp'} page had ${thrown.length} page error(s)** (the run fails; first 3): ${thrown
          .slice(0, 3)
          .map((e) => `${e.source} at ${((e.t - t0) / 1000).toFixed(0)} s: ${e.text}`)
          .join(' | ')}`,
      );
    const errors = result.samples[kind].at(-1)?.errors ?? [];
    if (errors.length)
      result.notes.push(
        `${kind === 'dash' ? 'LL-DASH' : 'Warp'} page errors (last ${Math.min(3, errors.length)} of ${errors.length}): ${errors.slice(-3).join(' | ')}`,
      );
    const hidden = result.samples[kind].filter((s) => s.hidden).length;
    if (hidden) result.notes.push(`The ${kind} page was hidden in ${hidden} samples (its timers throttled).`);
  }
  const played = (kind: PlayerKind) =>
    [...new Set(result.samples[kind].map((s) => s.rendition).filter(Boolean))].join(', ') || '–';
  result.notes.push(`Renditions played: dash.js ${played('dash')}; the Warp page ${played('warp')}.`);
  const complaints = events.filter(
    (e): e is Extract<ViewerEvent, { type: 'error' }> => e.type === 'error' && !/viewer left/.test(e.message),
  );
  if (complaints.length)
    result.notes.push(
      `Node viewer messages (${complaints.length}, first 3): ${complaints
        .slice(0, 3)
        .map((e) => e.message)
        .join(' | ')}`,
    );
  const lastChunk = events.filter((e) => e.type === 'fragment').at(-1);
  if (lastChunk && result.phases.at(-1)!.end - lastChunk.t > 5000)
    result.notes.push(
      `The Node viewer's last chunk arrived ${((result.phases.at(-1)!.end - lastChunk.t) / 1000).toFixed(0)} s before the run ended: its session stopped receiving.`,
    );
  if (!events.some((e) => e.type === 'fragment'))
    result.notes.push(
      'The Node viewer received no media in this run (its session opened, but no segment reached its consumer).',
    );
  const catalog = events.find((e) => e.type === 'catalog');
  if (catalog?.type === 'catalog')
    result.notes.push(
      `Warp catalog (Node viewer): order policy \`${catalog.orderPolicy}\`, tracks ${catalog.tracks.join(', ')}.`,
    );

  await viewers.close();
  viewers = undefined;
  await stopNodeViewer();
  await origin.stop();
  origin = undefined;
  return result;
}

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    const viewer = nodeViewer;
    nodeViewer = undefined;
    viewer?.kill('SIGKILL');
    // Chromium and the origin first, so that nothing is left in the namespaces when they are deleted.
    await Promise.race([viewers?.close(), sleep(5000)]);
    await Promise.race([origin?.stop(), sleep(5000)]);
    origin?.kill();
    lab?.close();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  })();
  return cleaning;
}

const interrupted = (signal: NodeJS.Signals) => {
  console.error(`\n${signal}: cleaning up`);
  void cleanup().finally(() => process.exit(130));
};
process.once('SIGINT', interrupted).once('SIGTERM', interrupted);
// Last resort (an exit from anywhere): the namespaces, and everything in them, go synchronously.
process.on('exit', () => lab?.close());

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench:latency creates network namespaces: run it as root');
  const started = new Date();
  const m: Results['machine'] = {
    ...machineFacts(),
    chromium: toolVersion(CHROMIUM),
    ffmpeg: toolVersion('ffmpeg', ['-version']),
  };
  console.log(`machine: ${machine(m)}, ${m.chromium}, ${m.ffmpeg}`);
  lab = await createLab(DELAY_MS);
  if (lab.stale.length) console.log(`removed what interrupted runs left: ${lab.stale.join(', ')}`);
  stateDir = mkdtempSync(join(os.tmpdir(), 'pcl-state-'));
  console.log(
    `links: ${DELAY_MS} ms one way (user-space delay lines), queue ${QUEUE_MS} ms of bytes; latency target ${TARGET_MS} ms; runs ${RUNS.map((r) => r.key).join(', ')}`,
  );
  const runs: RunResult[] = [];
  try {
    for (const spec of RUNS) runs.push(await runOnce(spec));
  } finally {
    await cleanup();
  }
  const results: Results = {
    startedAt: `${started.toISOString().slice(0, 19)}Z`,
    durationS: (Date.now() - started.getTime()) / 1000,
    machine: m,
    config: {
      oneWayDelayMs: DELAY_MS,
      queueMs: QUEUE_MS,
      targetMs: TARGET_MS,
      sampleMs: SAMPLE_MS,
      warpTransport: WARP_TRANSPORT,
      warpOrder: WARP_ORDER,
      runs: RUNS.map((r) => r.key),
    },
    runs,
  };
  mkdirSync(dirname(RAW), { recursive: true });
  writeFileSync(RAW, `${JSON.stringify(results)}\n`);
  writeFileSync(DOC, markdown(results));
  writeFileSync(SVG, chartSvg(results));
  for (const run of runs) {
    console.log(`\n${run.label}:`);
    for (const line of verdict(run, TARGET_MS)) console.log(`  ${line.replaceAll('**', '')}`);
  }
  console.log(`\nwrote ${DOC}, ${SVG} and ${RAW} in ${(results.durationS / 60).toFixed(1)} min`);
  // A page that throws or logs errors is broken whatever its figures say: the run fails, with the report written.
  const failed = runs.flatMap((run) =>
    (['dash', 'warp'] as const).flatMap((kind) =>
      run.pageErrors[kind].map((e) => `${run.label}, ${kind} page, ${e.source}: ${e.text}`),
    ),
  );
  if (failed.length) throw new Error(`${failed.length} page error(s):\n  ${failed.slice(0, 10).join('\n  ')}`);
}

try {
  await main();
  process.exit(0);
} catch (err) {
  console.error(`bench:latency: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  await cleanup();
  process.exit(1);
}
