/** The Markdown of bench/relay-fanout.ts (docs/relay-fanout.md and stdout), from its raw results. */
import { machine, type Machine } from '../machine.js';

export type Mode = 'relay' | 'origin';

export interface FanoutMachine extends Machine {
  ffmpeg: string;
}

export interface Row {
  n: number;
  mode: Mode;
  subscriberProcesses: number;
  connected: number;
  failed: number;
  retries: number;
  connectSeconds: number;
  /** Length of the measured window, s. */
  windowS: number;
  /** The serving process: `pushcast relay` (relay), `pushcast serve` (origin direct). */
  server: { cpuPct: number; cpuSecondsPerGbit: number | null; rssMiB: number | null };
  /** `pushcast serve` (both modes; in relay mode it serves the relay's one session), its ffmpeg. */
  originCpuPct: number;
  ffmpegCpuPct: number;
  /** All subscriber processes together, % of one core. */
  subscribersCpuPct: number;
  /** Every process on the machine, % of all cores. */
  machineBusyPct: number;
  /** What the machine did besides this bench's processes (another benchmark, a build), % of one core. */
  othersCpuPct: number;
  /** The busiest of those other processes, by name: "chromium 40 %". */
  others: string[];
  /** Stream bytes received by all subscribers, Mbit/s. */
  deliveredMbps: number;
  /** Media handed over in decode order by the consumers, Mbit/s. */
  mediaMbps: number;
  perSubscriberMbps: { median: number; min: number; max: number };
  /** The stream's bitrate: nominal (catalog bandwidths) and measured (whole segments of the window). */
  streamMbps: { nominal: number; measured: number | null };
  /** Share of the window's segments each subscriber got whole: mean over subscribers, and the worst one. */
  whole: { mean: number; min: number; segments: number };
  /** Within the window, summed over subscribers. */
  cut: number;
  skipped: Record<string, number>;
  firstFragmentMs: { p50: number | null; p95: number | null; samples: number };
  /** Sessions still open at the end of the window. */
  openAtEnd: number;
  /** The subscriber processes' event-loop delay over the window (worst process), ms. */
  loopDelayMs: { p99: number; max: number };
  /** Deltas of the relay's own counters over the window (relay mode). */
  relayCounters?: Record<string, number>;
}

export interface Results {
  startedAt: string;
  durationS: number;
  command: string;
  machine: FanoutMachine;
  config: {
    ns: number[];
    modes: Mode[];
    seconds: number;
    warmupS: number;
    graceS: number;
    ladder: string;
    bufferMs: number;
    subscriberProcesses: string;
  };
  rows: Row[];
  notes: string[];
}

const f = (x: number | null | undefined, digits = 1) =>
  x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits);
/** A share in per cent; just short of 1 shows its decimals, so that it never reads as a round 100 %. */
const pct = (x: number) => `${(x * 100).toFixed(x >= 0.995 && x < 1 ? (x >= 0.9995 ? 2 : 1) : 0)} %`;
const MODE_LABEL: Record<Mode, string> = { relay: 'relay', origin: 'origin direct' };

/**
 * The origin's CPU for its N sessions alone: its CPU in the origin-direct row minus its CPU in the relay
 * row of the same N (where it serves one session, the relay's, and still encodes and packages), per
 * delivered Gbit.
 */
export function originMarginal(rows: Row[], row: Row): { cpuPct: number; cpuSecondsPerGbit: number | null } | null {
  const direct = rows.find((r) => r.n === row.n && r.mode === 'origin');
  const relayed = rows.find((r) => r.n === row.n && r.mode === 'relay');
  if (!direct || !relayed) return null;
  const cpuPct = direct.originCpuPct - relayed.originCpuPct;
  const gbits = (direct.deliveredMbps * direct.windowS) / 1000;
  return { cpuPct, cpuSecondsPerGbit: gbits > 0 ? ((cpuPct / 100) * direct.windowS) / gbits : null };
}

/** Relay ÷ origin of CPU seconds per delivered Gbit, at the same N. */
export function cpuRatio(rows: Row[], row: Row): number | null {
  const relay = rows.find((r) => r.n === row.n && r.mode === 'relay')?.server.cpuSecondsPerGbit;
  const origin = rows.find((r) => r.n === row.n && r.mode === 'origin')?.server.cpuSecondsPerGbit;
  return relay && origin ? relay / origin : null;
}

export function mainTable(rows: Row[]): string[] {
  const lines = [
    '| N | mode | server CPU (% of one core) | CPU-s per delivered Gbit | relay ÷ origin, CPU per Gbit | origin above its 1-session load: CPU %, CPU-s per Gbit | delivered Mbit/s | per subscriber Mbit/s: median (min) | median ÷ stream bitrate | segments whole: mean (worst subscriber) | first fragment, p50 / p95 (s) |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of rows) {
    const marginal = r.mode === 'origin' ? originMarginal(rows, r) : null;
    const ratio = r.mode === 'relay' ? cpuRatio(rows, r) : null;
    const stream = r.streamMbps.measured ?? r.streamMbps.nominal;
    lines.push(
      `| ${r.n} | ${MODE_LABEL[r.mode]} | ${f(r.server.cpuPct)} | ${f(r.server.cpuSecondsPerGbit, 2)} | ${ratio === null ? '' : `**${ratio.toFixed(2)}**`} | ${marginal ? `${f(marginal.cpuPct)}, ${f(marginal.cpuSecondsPerGbit, 2)}` : ''} | ${f(r.deliveredMbps)} | ${f(r.perSubscriberMbps.median, 3)} (${f(r.perSubscriberMbps.min, 3)}) | ${f(r.perSubscriberMbps.median / stream, 2)} | ${pct(r.whole.mean)} (${pct(r.whole.min)}) | ${f(r.firstFragmentMs.p50 === null ? null : r.firstFragmentMs.p50 / 1000, 2)} / ${f(r.firstFragmentMs.p95 === null ? null : r.firstFragmentMs.p95 / 1000, 2)} |`,
    );
  }
  return lines;
}

export function machineTable(rows: Row[], cores: number): string[] {
  const lines = [
    `| N | mode | \`pushcast serve\` CPU % | ffmpeg CPU % | subscriber processes CPU % | machine busy (% of ${cores} cores) | other work on the machine (% of one core) | subscribers' event-loop delay p99 / max (ms) | server RSS (MiB) | sessions up / asked (retries), connect time | segments ended cut / consumer skips | relay resets (resource limit) |`,
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of rows) {
    const skipped = Object.values(r.skipped).reduce((a, b) => a + b, 0);
    lines.push(
      `| ${r.n} | ${MODE_LABEL[r.mode]} | ${f(r.originCpuPct)} | ${f(r.ffmpegCpuPct)} | ${f(r.subscribersCpuPct)} (${r.subscriberProcesses} proc.) | ${f(r.machineBusyPct, 0)} | ${f(r.othersCpuPct, 0)}${r.others.length ? ` (${r.others.join(', ')})` : ''} | ${f(r.loopDelayMs.p99, 0)} / ${f(r.loopDelayMs.max, 0)} | ${f(r.server.rssMiB, 0)} | ${r.openAtEnd} / ${r.n} (${r.retries}), ${f(r.connectSeconds)} s | ${r.cut} / ${skipped} | ${r.relayCounters ? f(r.relayCounters.downstream_cancelled_total ?? 0, 0) : ''} |`,
    );
  }
  return lines;
}

/** Plain sentences about what limited a row: a share of segments not whole, a saturated process or machine. */
export function findings(rows: Row[], cores: number): string[] {
  const out: string[] = [];
  for (const r of rows) {
    const where = `N = ${r.n}, ${MODE_LABEL[r.mode]}`;
    const causes: string[] = [];
    if (r.server.cpuPct >= 90)
      causes.push(
        `the ${r.mode === 'relay' ? 'relay' : 'origin'} process used ${f(r.server.cpuPct, 0)} % of one core (a Node process runs its JavaScript on one core: that is its ceiling)`,
      );
    if (r.machineBusyPct >= 90)
      causes.push(
        `the machine was ${f(r.machineBusyPct, 0)} % busy over its ${cores} cores${r.othersCpuPct >= 10 ? `, ${f(r.othersCpuPct, 0)} % of a core of it other work than this bench's` : ''}`,
      );
    if (r.loopDelayMs.p99 >= 200)
      causes.push(
        `the subscribers' own processes lagged (event-loop delay p99 ${f(r.loopDelayMs.p99, 0)} ms), so part of what was lost was lost on the receiving side`,
      );
    if (r.failed > 0 || r.openAtEnd < r.n)
      causes.push(`${r.n - r.openAtEnd} of ${r.n} sessions were not open at the end (${r.failed} never connected)`);
    if (r.whole.mean < 0.99 || causes.length) {
      out.push(
        `${where}: ${pct(r.whole.mean)} of the segments whole on average (worst subscriber ${pct(r.whole.min)}), per-subscriber median ${f(r.perSubscriberMbps.median, 3)} Mbit/s of a ${f(r.streamMbps.measured ?? r.streamMbps.nominal, 3)} Mbit/s stream${causes.length ? `; ${causes.join('; ')}` : ''}.`,
      );
    }
  }
  return out;
}

export function markdown(res: Results): string {
  const m = res.machine;
  const c = res.config;
  const rows = res.rows;
  const nominal = rows[0]?.streamMbps.nominal;
  const found = findings(rows, m.cores);
  return [
    "# Relay fan-out: `pushcast relay` against the origin's own Warp sessions",
    '',
    `Generated by \`${res.command}\` (\`bench/relay-fanout.ts\`); do not edit by hand. Run ${res.startedAt}, ${(res.durationS / 60).toFixed(1)} min.`,
    '',
    `Machine: ${machine(m)}; ${m.ffmpeg}.`,
    '',
    `Source: \`pushcast serve --no-multicast --ladder ${c.ladder}\` (built-in test pattern, real ffmpeg, plus its AAC audio; nominal ${f(nominal, 3)} Mbit/s)`,
    'on 127.0.0.1. **Relay**: `pushcast relay --upstream https://localhost:<port>/warp/live` as its own process, with N subscribers on it;',
    "**origin direct**: the same N subscribers on `serve`'s own Warp sessions (the baseline, measured in the same run).",
    `Subscribers: N \`WarpClient\` sessions (WebTransport over HTTP/3, one QUIC connection each, \`?latency=${c.bufferMs}\`, buffer ${c.bufferMs} ms)`,
    `in child processes of their own (${c.subscriberProcesses}). Each row: ${c.warmupS} s of warm-up after every session is up, then a ${c.seconds} s window;`,
    `segments ending up to ${c.graceS} s after it still count as whole. Rows: N = ${c.ns.join(', ')}, modes ${c.modes.map((x) => MODE_LABEL[x]).join(', ')}.`,
    '',
    '## Fan-out',
    '',
    ...mainTable(rows),
    '',
    '- **Server CPU**: utime + stime of the serving process (/proc/<pid>/stat) over the window — the relay process, or `serve` itself',
    "  when the subscribers are on the origin (which also runs the packager and reads ffmpeg's output: see its CPU in relay mode",
    '  below, where it serves one session). **CPU-s per delivered Gbit**: those CPU seconds over the bits all subscribers received.',
    "  **Origin above its 1-session load**: `serve`'s CPU in the origin-direct row minus its CPU in the relay row of the same N (one",
    "  session, the relay's; the encoder and packager run in both): what its N sessions cost it, to set beside the relay's whole CPU.",
    '  Small N: within noise.',
    "- **Delivered**: every byte of every Warp stream the subscribers' sessions received (HEADERS included), over the window.",
    '  **÷ stream bitrate**: against the bitrate measured from the whole segments of the window (per track: bytes ÷ segments × segment duration).',
    "- **Segments whole**: the segments any subscriber received whole within the window are the reference; each subscriber's share of",
    "  them handed over whole by its consumer (a segment cut by the sender's resource limit, skipped as late by the consumer, or never",
    '  received counts against it).',
    '- **First fragment**: for video segments, the arrival of the first fragment in decode order minus the wall-clock time of its first',
    "  sample on the catalog's timeline. It includes the encoder and the chunk duration (the same in both modes): the difference between",
    '  the modes is what the relay adds.',
    '',
    '## The rest of the machine',
    '',
    ...machineTable(rows, m.cores),
    '',
    'The subscribers run on the same cores as the server: where their event-loop delay grows, or the machine is busy, a loss of',
    "segments can be theirs rather than the server's. The relay resets the lowest-priority stream of a subscriber whose backlog passes",
    "its resource limit (`pushcast_relay_downstream_cancelled_total`). **Segments ended cut**: segments a subscriber's consumer began",
    "to hand over and ended short; **consumer skips**: segments it gave up on (stalled past the next one's due time, missing, or older",
    'than what it played), summed over the subscribers, within the window.',
    '',
    ...(found.length ? ['## Findings', '', ...found.map((x) => `- ${x}`), ''] : []),
    ...(res.notes.length ? ['## Notes', '', ...res.notes.map((x) => `- ${x}`), ''] : []),
    'Raw results: `build/bench/relay-fanout-results.json`.',
    '',
  ].join('\n');
}
