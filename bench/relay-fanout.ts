/**
 * Relay fan-out: N Warp subscribers (10, 100, 500) on `pushcast relay`, and as the baseline, in the same
 * run, the same N directly on the origin's own Warp sessions; the serving process's CPU and the Mbit/s
 * delivered, on the loopback.
 *   npm run bench:relay   (alone: node build/bench/relay-fanout.js; about 5 minutes)
 * writes docs/relay-fanout.md and the raw results to build/bench/relay-fanout-results.json.
 *
 * - Source: `pushcast serve --no-multicast --ladder 320x180@300k` (real ffmpeg, plus its audio) as a
 *   child process, on 127.0.0.1, with a state directory in a temporary folder.
 * - Relay: `pushcast relay --upstream https://localhost:<port>/warp/live` as a child process of its own
 *   (started for each relay row), so that its CPU is read from /proc/<pid>/stat over the window.
 * - Subscribers: N `WarpClient` sessions in one or two child processes (bench/relay-fanout/subscribers.ts).
 *
 * Options through env:
 *   PCL_FANOUT_N (10,100,500)   PCL_FANOUT_SECONDS (20) measured window   PCL_FANOUT_WARMUP_S (8)
 *   PCL_FANOUT_MODES (relay,origin)   PCL_FANOUT_LADDER (320x180@300k)   PCL_FANOUT_BUFFER_MS (3000)
 *   PCL_FANOUT_PROCS subscriber processes (default 1 below 100 subscribers, else 2)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createNodeFetch } from '../src/client/index.js';
import { BIN, startServe, type RunningServe } from '../test/support/pushcast-process.js';
import { childPids, killQuietly } from '../test/support/processes.js';
import { median, percentile } from './figures.js';
import { machine, machineFacts, toolVersion } from './machine.js';
import {
  findings,
  mainTable,
  machineTable,
  markdown,
  type FanoutMachine,
  type Mode,
  type Results,
  type Row,
} from './relay-fanout/report.js';
import type { MarkLine, ReadyLine, ReportLine, SubscribersArgs } from './relay-fanout/subscribers.js';

const env = (name: string, fallback: string) => process.env[name] ?? fallback;
const list = (value: string) =>
  value
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
const NS = list(env('PCL_FANOUT_N', '10,100,500')).map((x) => {
  const n = Number(x);
  if (!Number.isInteger(n) || n < 1) throw new Error(`PCL_FANOUT_N: ${x} is not a number of subscribers`);
  return n;
});
const MODES = list(env('PCL_FANOUT_MODES', 'relay,origin')).map((x) => {
  if (x !== 'relay' && x !== 'origin') throw new Error(`PCL_FANOUT_MODES: ${x} is neither relay nor origin`);
  return x as Mode;
});
const SECONDS = Number(env('PCL_FANOUT_SECONDS', '20'));
const WARMUP_S = Number(env('PCL_FANOUT_WARMUP_S', '8'));
const LADDER = env('PCL_FANOUT_LADDER', '320x180@300k');
const BUFFER_MS = Number(env('PCL_FANOUT_BUFFER_MS', '3000'));
const PROCS = process.env.PCL_FANOUT_PROCS;
const processesFor = (n: number) => Math.max(1, Math.min(n, PROCS ? Number(PROCS) : n < 100 ? 1 : 2));
/** After the window: segments under way at its end may still end whole (the consumer waits up to its buffer). */
const GRACE_S = Math.ceil(BUFFER_MS / 1000) + 1;

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SUBSCRIBERS_JS = fileURLToPath(new URL('./relay-fanout/subscribers.js', import.meta.url));
const DOC = join(REPO, 'docs/relay-fanout.md');
const RAW = fileURLToPath(new URL('./relay-fanout-results.json', import.meta.url));
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function fanoutMachine(): FanoutMachine {
  return { ...machineFacts(), ffmpeg: toolVersion('ffmpeg', ['-version']) };
}

// ─── processes ─────────────────────────────────────────────────────────────────────────────────

/** CPU time of a process so far, clock ticks (utime + stime), and its name; undefined once it is gone. */
function ticks(pid: number): { ticks: number; comm: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const after = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return {
      ticks: Number(after[11]) + Number(after[12]),
      comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')),
    };
  } catch {
    return undefined;
  }
}

function rssMiB(pid: number): number | null {
  try {
    const kb = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? null : Number(kb) / 1024;
  } catch {
    return null;
  }
}

/** The whole machine: busy and total ticks over all cores (/proc/stat). */
function machineTicks(): { busy: number; total: number } {
  const n = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = n.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - n[3]! - n[4]!, total };
}

interface CpuSnapshot {
  t: number;
  /** Every process on the machine: its CPU ticks so far and its name. */
  byPid: Map<number, { ticks: number; comm: string }>;
  machine: { busy: number; total: number };
}

function snapshot(): CpuSnapshot {
  const byPid = new Map<number, { ticks: number; comm: string }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const v = ticks(Number(name));
    if (v !== undefined) byPid.set(Number(name), v);
  }
  return { t: Date.now(), byPid, machine: machineTicks() };
}

/** CPU seconds of `pids` between two snapshots (processes alive at both). */
function cpuSeconds(a: CpuSnapshot, b: CpuSnapshot, pids: number[]): number {
  let t = 0;
  for (const pid of pids)
    if (a.byPid.has(pid) && b.byPid.has(pid)) t += b.byPid.get(pid)!.ticks - a.byPid.get(pid)!.ticks;
  return t / CLK_TCK;
}

/** The busiest processes other than `ours` between two snapshots (one that started in between counts whole), % of one core. */
function otherProcesses(a: CpuSnapshot, b: CpuSnapshot, ours: Set<number>): string[] {
  const byName = new Map<string, number>();
  for (const [pid, end] of b.byPid) {
    if (ours.has(pid)) continue;
    const used = end.ticks - (a.byPid.get(pid)?.ticks ?? 0);
    if (used > 0) byName.set(end.comm, (byName.get(end.comm) ?? 0) + used);
  }
  const seconds = (b.t - a.t) / 1000;
  return [...byName]
    .sort((x, y) => y[1] - x[1])
    .filter(([, used]) => (used / CLK_TCK / seconds) * 100 >= 2)
    .slice(0, 4)
    .map(([comm, used]) => `${comm} ${((used / CLK_TCK / seconds) * 100).toFixed(0)} %`);
}

/** Lines of a child's output, handed to `onLine`; the last `keep` kept for error messages. */
function lines(child: ChildProcess, onLine: (line: string, from: 'stdout' | 'stderr') => void): void {
  readline.createInterface({ input: child.stdout! }).on('line', (l) => onLine(l, 'stdout'));
  readline.createInterface({ input: child.stderr! }).on('line', (l) => onLine(l, 'stderr'));
}

/** The soft limit on open files of this process (children inherit it). */
function openFilesLimit(): { soft: number; hard: number } {
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  const n = (x: string | undefined) => (x === undefined || x === 'unlimited' ? Infinity : Number(x));
  return { soft: n(m?.[1]), hard: n(m?.[2]) };
}

interface Relay {
  child: ChildProcess;
  url: string;
  metrics: string;
  lines: string[];
  stop(): Promise<void>;
}

/** `pushcast relay` on a free port of 127.0.0.1; resolves with its printed URLs (named localhost: the certificate's name). */
async function startRelay(upstream: string, caFile: string, stateDir: string, maxSubscribers: number): Promise<Relay> {
  const args = [
    BIN,
    'relay',
    '--upstream',
    upstream,
    '--ca',
    caFile,
    '--state-dir',
    stateDir,
    '--port',
    '0',
    '--host',
    '127.0.0.1',
    '--max-subscribers',
    String(Math.max(1000, maxSubscribers)),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const seen: Record<string, string> = {};
  const exited = once(child, 'exit');
  const found = new Promise<void>((resolve, reject) => {
    lines(child, (line) => {
      output.push(line);
      if (output.length > 200) output.splice(0, 50);
      const m = /^(relay|metrics): (\S+)$/.exec(line);
      if (m) seen[m[1]!] = m[2]!.replace('//127.0.0.1:', '//localhost:');
      if (seen.relay && seen.metrics) resolve();
    });
    void exited.then(() => reject(new Error(`pushcast relay exited early:\n${output.join('\n')}`)));
    setTimeout(
      () => reject(new Error(`pushcast relay printed no relay: line within 20 s:\n${output.join('\n')}`)),
      20_000,
    ).unref();
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await found;
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return { child, url: seen.relay!, metrics: seen.metrics!, lines: output, stop };
}

interface Subscribers {
  child: ChildProcess;
  ready: ReadyLine;
  mark(): Promise<MarkLine>;
  report(from: number, to: number): Promise<ReportLine>;
  quit(): Promise<void>;
}

/** `count` subscribers in a child process of their own; resolves once every session is up (or given up on). */
async function startSubscribers(url: string, count: number, caFile: string): Promise<Subscribers> {
  const args: SubscribersArgs = { url, count, caFile, bufferMs: BUFFER_MS };
  const command = [process.execPath, SUBSCRIBERS_JS, JSON.stringify(args)];
  // One UDP socket per session: where the soft limit on open files is short of that, the child raises
  // its own (up to the hard limit) before it starts.
  const limit = openFilesLimit();
  const needed = count + 256;
  const [file, ...argv] =
    limit.soft >= needed
      ? command
      : [
          'sh',
          '-c',
          `ulimit -n ${Number.isFinite(limit.hard) ? Math.max(needed, Math.min(limit.hard, 65536)) : 65536} && exec "$@"`,
          'sh',
          ...command,
        ];
  const child = spawn(file!, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin!.on('error', () => {});
  const waiting: ((line: string) => void)[] = [];
  const complaints: string[] = [];
  let first: ((line: string) => void) | undefined;
  lines(child, (line, from) => {
    if (from === 'stderr') {
      complaints.push(line);
      if (complaints.length > 20) complaints.shift();
      return;
    }
    if (first) {
      const f = first;
      first = undefined;
      return f(line);
    }
    waiting.shift()?.(line);
  });
  const exited = once(child, 'exit');
  const readyLine = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${count} subscribers not connected within ${60 + count} s:\n${complaints.join('\n')}`)),
      (60 + count) * 1000,
    );
    first = (line) => {
      clearTimeout(timer);
      resolve(line);
    };
    void exited.then(() => {
      clearTimeout(timer);
      reject(
        new Error(`the subscriber process exited (${child.exitCode ?? child.signalCode}):\n${complaints.join('\n')}`),
      );
    });
  }).catch((error: unknown) => {
    child.kill('SIGKILL');
    throw error;
  });
  const ask = <T>(command: object): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (child.exitCode !== null || child.signalCode !== null)
        return reject(new Error(`the subscriber process is gone:\n${complaints.join('\n')}`));
      waiting.push((line) => resolve(JSON.parse(line) as T));
      child.stdin!.write(`${JSON.stringify(command)}\n`);
    });
  return {
    child,
    ready: JSON.parse(readyLine) as ReadyLine,
    mark: () => ask<MarkLine>({ cmd: 'mark' }),
    report: (from, to) => ask<ReportLine>({ cmd: 'report', from, to }),
    quit: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.stdin!.end(`${JSON.stringify({ cmd: 'quit' })}\n`);
      const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
      await exited;
      clearTimeout(timer);
    },
  };
}

// Everything that must be undone on exit, on an error or on a signal.
let serve: RunningServe | undefined;
let relay: Relay | undefined;
let subscribers: Subscribers[] = [];
let stateDir: string | undefined;

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const s of subscribers) s.child.kill('SIGKILL');
    subscribers = [];
    relay?.child.kill('SIGKILL');
    relay = undefined;
    if (serve) {
      const encoders = serve.child.pid === undefined ? [] : childPids(serve.child.pid);
      await Promise.race([serve.stop(), sleep(5000)]);
      for (const pid of encoders) killQuietly(pid);
      if (serve.child.pid !== undefined) killQuietly(serve.child.pid);
      serve = undefined;
    }
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    stateDir = undefined;
  })();
  return cleaning;
}

const interrupted = (signal: NodeJS.Signals) => {
  console.error(`\n${signal}: cleaning up`);
  void cleanup().finally(() => process.exit(130));
};
process.once('SIGINT', interrupted).once('SIGTERM', interrupted);
// Last resort (an exit from anywhere): no child outlives the bench.
process.on('exit', () => {
  for (const s of subscribers) s.child.kill('SIGKILL');
  relay?.child.kill('SIGKILL');
  if (serve?.child.pid !== undefined) {
    for (const pid of childPids(serve.child.pid)) killQuietly(pid);
    killQuietly(serve.child.pid);
  }
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

// ─── one row ───────────────────────────────────────────────────────────────────────────────────

/** The relay's counters (pushcast_relay_*_total), by name without the prefix. */
async function relayCounters(
  fetchText: (url: string) => Promise<string>,
  url: string,
): Promise<Record<string, number>> {
  const values: Record<string, number> = {};
  try {
    for (const line of (await fetchText(url)).split('\n')) {
      const m = /^pushcast_relay_(\S+_total) (\S+)$/.exec(line);
      if (m) values[m[1]!] = Number(m[2]);
    }
  } catch {
    // a missed reading is left out
  }
  return values;
}

async function measure(
  n: number,
  mode: Mode,
  url: string,
  serverPid: number,
  caFile: string,
  fetchText: (url: string) => Promise<string>,
): Promise<Row> {
  const procs = processesFor(n);
  const counts = Array.from({ length: procs }, (_, i) => Math.floor(n / procs) + (i < n % procs ? 1 : 0));
  process.stdout.write(
    `  N = ${n}, ${mode === 'relay' ? 'relay' : 'origin direct'}: connecting ${n} subscriber(s) in ${procs} process(es)… `,
  );
  subscribers = await Promise.all(counts.map((c) => startSubscribers(url, c, caFile)));
  const ready = subscribers.map((s) => s.ready);
  const connected = ready.reduce((a, r) => a + r.connected, 0);
  const failed = ready.reduce((a, r) => a + r.failed, 0);
  const connectSeconds = Math.max(...ready.map((r) => r.connectSeconds));
  console.log(
    `${connected} up in ${connectSeconds.toFixed(1)} s${
      failed
        ? `, ${failed} failed (${ready
            .flatMap((r) => r.errors)
            .slice(0, 2)
            .join('; ')})`
        : ''
    }`,
  );
  const catalog = ready.find((r) => r.catalog)?.catalog;
  if (!catalog) throw new Error(`no subscriber got a catalog from ${url}`);

  await sleep(WARMUP_S * 1000);
  const originPid = serve!.child.pid!;
  const ffmpeg = childPids(originPid, 'ffmpeg');
  const subscriberPids = subscribers.map((s) => s.child.pid!);
  const pids = [...new Set([serverPid, originPid, ...ffmpeg, ...subscriberPids])];
  const counters0 = mode === 'relay' ? await relayCounters(fetchText, relay!.metrics) : undefined;
  const c0 = snapshot();
  const m0 = await Promise.all(subscribers.map((s) => s.mark()));
  await sleep(SECONDS * 1000);
  const c1 = snapshot();
  const m1 = await Promise.all(subscribers.map((s) => s.mark()));
  const counters1 = mode === 'relay' ? await relayCounters(fetchText, relay!.metrics) : undefined;
  const serverRss = rssMiB(serverPid);
  await sleep(GRACE_S * 1000);
  const reports = await Promise.all(subscribers.map((s) => s.report(c0.t, c1.t)));
  await Promise.all(subscribers.map((s) => s.quit()));
  subscribers = [];

  // Bytes: per viewer, over its process's marks.
  const perViewerMbps: number[] = [];
  let bits = 0;
  let mbps = 0;
  let mediaMbps = 0;
  m0.forEach((a, p) => {
    const b = m1[p]!;
    const s = (b.t - a.t) / 1000;
    a.bytes.forEach((x, i) => {
      const v = ((b.bytes[i]! - x) * 8) / s / 1e6;
      perViewerMbps.push(v);
      mbps += v;
      bits += (b.bytes[i]! - x) * 8;
    });
    a.mediaBytes.forEach((x, i) => {
      mediaMbps += ((b.mediaBytes[i]! - x) * 8) / s / 1e6;
    });
  });
  perViewerMbps.sort((x, y) => x - y);

  // Whole segments: the reference is every segment some subscriber got whole within the window.
  const viewers = reports.flatMap((r) => r.viewers);
  const reference = new Map<string, { bytes: number; kind: 'video' | 'audio' }>();
  for (const v of viewers)
    for (const [path, t, bytes, kind] of v.whole)
      if (t >= c0.t && t <= c1.t && !reference.has(path)) reference.set(path, { bytes, kind });
  const shares = viewers.map((v) => {
    if (reference.size === 0) return 0;
    const got = new Set(v.whole.map((w) => w[0]));
    let k = 0;
    for (const path of reference.keys()) if (got.has(path)) k++;
    return k / reference.size;
  });
  // What the stream weighs: per track kind, the whole segments' bytes over their nominal duration.
  let measured: number | null = 0;
  for (const kind of ['video', 'audio'] as const) {
    const sizes = [...reference.values()].filter((x) => x.kind === kind).map((x) => x.bytes);
    if (sizes.length)
      measured += (sizes.reduce((a, b) => a + b, 0) * 8) / (sizes.length * catalog.segmentDuration) / 1e6;
    else if (catalog.tracks.some((t) => t.kind === kind)) measured = null;
    if (measured === null) break;
  }
  const delays = viewers.flatMap((v) => v.firstFragmentMs);
  const skipped: Record<string, number> = {};
  for (const v of viewers) for (const [why, k] of Object.entries(v.skipped)) skipped[why] = (skipped[why] ?? 0) + k;

  const windowS = (c1.t - c0.t) / 1000;
  const serverCpu = cpuSeconds(c0, c1, [serverPid]);
  const span = c1.machine.total - c0.machine.total;
  const row: Row = {
    n,
    mode,
    subscriberProcesses: procs,
    connected,
    failed,
    retries: ready.reduce((a, r) => a + r.retries, 0),
    connectSeconds,
    windowS,
    server: {
      cpuPct: (serverCpu / windowS) * 100,
      cpuSecondsPerGbit: bits > 0 ? serverCpu / (bits / 1e9) : null,
      rssMiB: serverRss,
    },
    originCpuPct: (cpuSeconds(c0, c1, [originPid]) / windowS) * 100,
    ffmpegCpuPct: (cpuSeconds(c0, c1, ffmpeg) / windowS) * 100,
    subscribersCpuPct: (cpuSeconds(c0, c1, subscriberPids) / windowS) * 100,
    machineBusyPct: span > 0 ? ((c1.machine.busy - c0.machine.busy) / span) * 100 : 0,
    othersCpuPct:
      span > 0
        ? Math.max(
            0,
            ((c1.machine.busy - c0.machine.busy) / CLK_TCK / windowS -
              cpuSeconds(c0, c1, [...new Set([...pids, process.pid])]) / windowS) *
              100,
          )
        : 0,
    others: otherProcesses(c0, c1, new Set([...pids, process.pid])),
    deliveredMbps: mbps,
    mediaMbps,
    perSubscriberMbps: {
      median: perViewerMbps.length ? median(perViewerMbps) : 0,
      min: perViewerMbps[0] ?? 0,
      max: perViewerMbps.at(-1) ?? 0,
    },
    streamMbps: { nominal: catalog.tracks.reduce((a, t) => a + t.bandwidth, 0) / 1e6, measured },
    whole: {
      mean: shares.reduce((a, b) => a + b, 0) / Math.max(1, shares.length),
      min: Math.min(...shares),
      segments: reference.size,
    },
    cut: viewers.reduce((a, v) => a + v.cut, 0),
    skipped,
    firstFragmentMs: {
      p50: percentile(delays, 50) ?? null,
      p95: percentile(delays, 95) ?? null,
      samples: delays.length,
    },
    openAtEnd: viewers.filter((v) => v.open).length,
    loopDelayMs: { p99: Math.max(...m1.map((m) => m.loopDelay.p99)), max: Math.max(...m1.map((m) => m.loopDelay.max)) },
  };
  if (counters0 && counters1) {
    row.relayCounters = Object.fromEntries(Object.entries(counters1).map(([k, v]) => [k, v - (counters0[k] ?? 0)]));
  }
  console.log(
    `    server CPU ${row.server.cpuPct.toFixed(1)} % of a core, ${row.deliveredMbps.toFixed(1)} Mbit/s delivered (${(row.server.cpuSecondsPerGbit ?? NaN).toFixed(2)} CPU-s/Gbit), ` +
      `per subscriber median ${row.perSubscriberMbps.median.toFixed(3)} Mbit/s, ${(row.whole.mean * 100).toFixed(1)} % of ${row.whole.segments} segments whole; machine ${row.machineBusyPct.toFixed(0)} % busy (other work ${row.othersCpuPct.toFixed(0)} % of a core)`,
  );
  return row;
}

// ─── main ──────────────────────────────────────────────────────────────────────────────────────

async function main(): Promise<void> {
  const started = new Date();
  const m = fanoutMachine();
  console.log(`machine: ${machine(m)}, ${m.ffmpeg}`);
  console.log(
    `relay fan-out: N = ${NS.join(', ')}; modes ${MODES.join(', ')}; ${WARMUP_S} s warm-up + ${SECONDS} s window per row; ladder ${LADDER} + audio`,
  );
  stateDir = mkdtempSync(join(os.tmpdir(), 'pushcast-bench-relay-'));
  serve = await startServe(['--no-multicast', '--ladder', LADDER, '--state-dir', stateDir]);
  const https =
    serve.httpsPlayer ?? serve.lines.find((l) => l.startsWith('https player: '))?.slice('https player: '.length);
  if (!https) throw new Error(`pushcast serve printed no https player line:\n${serve.lines.join('\n')}`);
  const originWarp = `https://localhost:${new URL(https).port}/warp/live`;
  const caFile = join(stateDir, 'tls', 'dev-cert.pem');
  const fetch = createNodeFetch({ ca: readFileSync(caFile, 'utf8') });
  const fetchText = async (url: string) => (await fetch(url)).text();
  console.log(`origin: ${originWarp} (pid ${serve.child.pid})`);

  const rows: Row[] = [];
  const notes: string[] = [];
  for (const n of NS) {
    for (const mode of MODES) {
      if (mode === 'relay') {
        relay = await startRelay(originWarp, caFile, stateDir, n);
        rows.push(await measure(n, mode, `${relay.url}?latency=${BUFFER_MS}`, relay.child.pid!, caFile, fetchText));
        const upstream = relay.lines.filter(
          (l) => /upstream|error|warning/i.test(l) && !/relay: upstream https/.test(l),
        );
        if (upstream.length)
          notes.push(
            `N = ${n}, relay: the relay logged ${upstream.length} line(s) about its upstream or errors, e.g. \`${upstream[0]!.slice(0, 200)}\``,
          );
        await relay.stop();
        relay = undefined;
      } else {
        rows.push(await measure(n, mode, `${originWarp}?latency=${BUFFER_MS}`, serve.child.pid!, caFile, fetchText));
      }
      await sleep(2000);
    }
  }
  const restarts = serve.lines.filter((l) => /encoder run [2-9]\d* started|warning: the encoder is slower/.test(l));
  if (restarts.length)
    notes.push(
      `\`pushcast serve\`: ${restarts
        .map((l) => l.replace(/^\d\d:\d\d:\d\d /, ''))
        .join('; ')
        .slice(0, 400)}`,
    );
  await cleanup();

  const results: Results = {
    startedAt: `${started.toISOString().slice(0, 19)}Z`,
    durationS: (Date.now() - started.getTime()) / 1000,
    command: `${[
      'PCL_FANOUT_N',
      'PCL_FANOUT_SECONDS',
      'PCL_FANOUT_WARMUP_S',
      'PCL_FANOUT_MODES',
      'PCL_FANOUT_LADDER',
      'PCL_FANOUT_BUFFER_MS',
      'PCL_FANOUT_PROCS',
    ]
      .filter((k) => process.env[k] !== undefined)
      .map((k) => `${k}=${process.env[k]} `)
      .join('')}npm run bench:relay`,
    machine: m,
    config: {
      ns: NS,
      modes: MODES,
      seconds: SECONDS,
      warmupS: WARMUP_S,
      graceS: GRACE_S,
      ladder: LADDER,
      bufferMs: BUFFER_MS,
      subscriberProcesses: PROCS ? `${PROCS} per row` : '1 below 100 subscribers, else 2',
    },
    rows,
    notes,
  };
  mkdirSync(dirname(RAW), { recursive: true });
  writeFileSync(RAW, `${JSON.stringify(results, null, 1)}\n`);
  writeFileSync(DOC, markdown(results));
  console.log('');
  console.log(mainTable(rows).join('\n'));
  console.log('');
  console.log(machineTable(rows, m.cores).join('\n'));
  for (const line of [...findings(rows, m.cores), ...notes]) console.log(`- ${line}`);
  console.log(`\nwrote ${DOC} and ${RAW} in ${(results.durationS / 60).toFixed(1)} min`);
}

try {
  await main();
  process.exit(0);
} catch (err) {
  console.error(`bench:relay: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  await cleanup();
  process.exit(1);
}
