/**
 * The soak's figures and their write-up: the memory series' start, peak, end and slope over the last
 * third, the levelling-off verdict, the viewers' health by mode, the machine, and the Markdown that
 * bench/soak.ts puts between the generated-section markers of docs/soak.md.
 */
import os from 'node:os';
import { machine, machineFacts, toolVersion, type Machine } from '../machine.js';
import type { AbuseReport } from './abuse.js';
import type { ViewerMode, ViewerStatus } from './viewers.js';

export interface SoakMachine extends Machine {
  ffmpeg: string;
  /** The 1-minute load average when the run started: other work on the machine. */
  loadAtStart: number;
}

export function soakMachine(): SoakMachine {
  return { ...machineFacts(), ffmpeg: toolVersion('ffmpeg', ['-version']), loadAtStart: os.loadavg()[0]! };
}

export type Phase = 'warm-up' | 'burst' | 'idle';

/** One reading of the server, every few seconds. Memory in MiB; null where the reading failed. */
export interface Sample {
  /** Seconds since the server was live. */
  t: number;
  phase: Phase;
  /** /proc/<pid>/status VmRSS. */
  rss: number;
  /** /metrics: nodejs_heap_size_used_bytes, nodejs_heap_size_total_bytes, nodejs_external_memory_bytes. */
  heapUsed: number | null;
  heapTotal: number | null;
  external: number | null;
  /** Open file descriptors (/proc/<pid>/fd): sockets the server still holds. */
  fds: number;
  /** /metrics gauges: QUIC connections, Warp sessions, WebSocket sessions, held segment requests. */
  quicConnections: number | null;
  warpSessions: number | null;
  webSocketSessions: number | null;
  heldRequests: number | null;
}

/** Read through the inspector at the end of an idle period, after a full collection. */
export interface AfterGc {
  t: number;
  /** After how many bursts. */
  bursts: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  /** With heap snapshots: the kinds of object that grew most since the previous reading. */
  grew?: { kind: string; count: number; bytes: number }[];
  snapshotNodes?: number;
}

export interface BurstRecord {
  at: number;
  seconds: number;
  report: AbuseReport | undefined;
}

export interface Results {
  command: string;
  startedAt: string;
  machine: SoakMachine;
  options: {
    minutes: number;
    ladder: string;
    viewersPerMode: number;
    burstEverySeconds: number;
    burstSeconds: number;
    burstScale: number;
    sampleSeconds: number;
  };
  samples: Sample[];
  bursts: BurstRecord[];
  afterGc: AfterGc[];
  viewers: ViewerStatus[];
  /** RSS after glibc's malloc_trim(0), called in the server through gdb at the end (with --malloc-trim). */
  afterTrim?: { rss: number; rssBefore: number };
}

export interface Series {
  start: number;
  peak: number;
  peakAt: number;
  end: number;
  /** Least-squares slope over the last third of the run, MiB per minute. */
  slope: number;
}

/** Least squares: MiB per minute of `value` over `points` (t in seconds). */
export function slopePerMinute(points: { t: number; v: number }[]): number {
  if (points.length < 2) return 0;
  const mt = points.reduce((s, p) => s + p.t, 0) / points.length;
  const mv = points.reduce((s, p) => s + p.v, 0) / points.length;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.t - mt) * (p.v - mv);
    den += (p.t - mt) ** 2;
  }
  return den === 0 ? 0 : (num / den) * 60;
}

/**
 * Where the last third of the run starts: the first burst at or after two thirds of it, so that the
 * window spans whole burst cycles (a sawtooth cut mid-cycle would tilt the slope); the plain two-thirds
 * point when no burst falls in the last third.
 */
export function lastThirdFrom(samples: Sample[], bursts: BurstRecord[]): number {
  const end = samples[samples.length - 1]?.t ?? 0;
  const from = end - (end - (samples[0]?.t ?? 0)) / 3;
  return bursts.find((b) => b.at >= from)?.at ?? from;
}

/** Start, peak and end of a reading, and its slope from `from` (s) to the end. */
export function series(samples: Sample[], pick: (s: Sample) => number | null, from: number): Series {
  const points = samples.flatMap((s) => {
    const v = pick(s);
    return v === null ? [] : [{ t: s.t, v }];
  });
  if (points.length === 0) return { start: NaN, peak: NaN, peakAt: NaN, end: NaN, slope: NaN };
  const peak = points.reduce((a, b) => (b.v > a.v ? b : a));
  return {
    start: points[0]!.v,
    peak: peak.v,
    peakAt: peak.t,
    end: points[points.length - 1]!.v,
    slope: slopePerMinute(points.filter((p) => p.t >= from)),
  };
}

/** The readings at rest: the last one before each burst, and the run's last one. */
export function atRest(samples: Sample[], bursts: BurstRecord[]): Sample[] {
  const out = bursts.flatMap((b) => {
    const before = samples.filter((s) => s.t < b.at);
    return before.length ? [before[before.length - 1]!] : [];
  });
  const last = samples[samples.length - 1];
  return last ? [...out, last] : out;
}

/**
 * The criterion: memory levels off when, over the last third of the run (whole burst cycles, see
 * lastThirdFrom), RSS grows by less than RSS_SLOPE_LIMIT MiB/min and the V8 heap in use by less than
 * HEAP_SLOPE_LIMIT MiB/min (least-squares slopes over every reading of that window, bursts included).
 * Past these a process would gain more than 30 MiB of RSS, or 6 MiB of live JavaScript objects, an hour
 * under the same load.
 */
export const RSS_SLOPE_LIMIT = 0.5;
export const HEAP_SLOPE_LIMIT = 0.1;

export function levelsOff(rss: Series, heap: Series): boolean {
  return rss.slope < RSS_SLOPE_LIMIT && heap.slope < HEAP_SLOPE_LIMIT;
}

export interface ModeHealth {
  mode: ViewerMode;
  viewers: number;
  segments: number;
  /** Segments per viewer per minute. */
  perViewerPerMinute: number;
  errors: number;
  reconnects: number;
  longestGapSeconds: number;
}

export function health(viewers: ViewerStatus[], minutes: number): ModeHealth[] {
  const modes = [...new Set(viewers.map((v) => v.mode))];
  return modes.map((mode) => {
    const of = viewers.filter((v) => v.mode === mode);
    const segments = of.reduce((n, v) => n + v.segments, 0);
    return {
      mode,
      viewers: of.length,
      segments,
      perViewerPerMinute: segments / of.length / minutes,
      errors: of.reduce((n, v) => n + v.errors, 0),
      reconnects: of.reduce((n, v) => n + v.reconnects, 0),
      longestGapSeconds: Math.max(...of.map((v) => v.longestGapSeconds)),
    };
  });
}

const mib = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '–');
const slope = (x: number) => (Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${x.toFixed(2)}` : '–');

/** The generated part of docs/soak.md. */
export function markdown(r: Results): string {
  const from = lastThirdFrom(r.samples, r.bursts);
  const rss = series(r.samples, (s) => s.rss, from);
  const heap = series(r.samples, (s) => s.heapUsed, from);
  const heapTotal = series(r.samples, (s) => s.heapTotal, from);
  const external = series(r.samples, (s) => s.external, from);
  const fds = series(r.samples, (s) => s.fds, from);
  const rest = atRest(r.samples, r.bursts);
  const rssAtRest = series(rest, (s) => s.rss, from);
  const heapAtRest = series(rest, (s) => s.heapUsed, from);
  const m = r.machine;
  const minutes = r.samples.length ? r.samples[r.samples.length - 1]!.t / 60 : 0;
  const verdict = levelsOff(rss, heap);
  const lines = [
    `Command: \`${r.command}\`, started ${r.startedAt}.`,
    '',
    `Machine: ${machine(m)}, ${m.ffmpeg}; load average ${m.loadAtStart.toFixed(2)} at the start.`,
    '',
    `Run: ${minutes.toFixed(1)} minutes of \`pushcast serve\` (test pattern, ladder ${r.options.ladder}), ${r.options.viewersPerMode} viewers of each mode throughout, ${r.bursts.length} bursts of bad input (${r.options.burstSeconds} s each, every ${r.options.burstEverySeconds} s after a ${r.options.burstEverySeconds} s warm-up, scale ${r.options.burstScale}), the server read every ${r.options.sampleSeconds} s.`,
    '',
    '| server memory, MiB | start | peak | end | slope over the last third, MiB/min |',
    '| --- | ---: | ---: | ---: | ---: |',
    `| RSS (/proc/<pid>/status VmRSS) | ${mib(rss.start)} | ${mib(rss.peak)} | ${mib(rss.end)} | ${slope(rss.slope)} |`,
    `| V8 heap used (nodejs_heap_size_used_bytes) | ${mib(heap.start)} | ${mib(heap.peak)} | ${mib(heap.end)} | ${slope(heap.slope)} |`,
    `| V8 heap committed (nodejs_heap_size_total_bytes) | ${mib(heapTotal.start)} | ${mib(heapTotal.peak)} | ${mib(heapTotal.end)} | ${slope(heapTotal.slope)} |`,
    `| external (nodejs_external_memory_bytes) | ${mib(external.start)} | ${mib(external.peak)} | ${mib(external.end)} | ${slope(external.slope)} |`,
    `| open file descriptors (count) | ${fds.start} | ${fds.peak} | ${fds.end} | ${slope(fds.slope)} /min |`,
    `| RSS at rest (the reading before each burst) | ${mib(rssAtRest.start)} | ${mib(rssAtRest.peak)} | ${mib(rssAtRest.end)} | ${slope(rssAtRest.slope)} |`,
    `| heap used at rest | ${mib(heapAtRest.start)} | ${mib(heapAtRest.peak)} | ${mib(heapAtRest.end)} | ${slope(heapAtRest.slope)} |`,
    '',
    `The last third is the window from ${from.toFixed(0)} s to the end (whole burst cycles). Levels off: **${verdict ? 'yes' : 'no'}** (criterion: over that window, RSS slope < ${RSS_SLOPE_LIMIT} MiB/min and heap-used slope < ${HEAP_SLOPE_LIMIT} MiB/min; here ${slope(rss.slope)} and ${slope(heap.slope)}).`,
  ];
  if (r.afterGc.length > 0) {
    lines.push(
      '',
      'After a full garbage collection (through the inspector) at the end of each idle period:',
      '',
      '| at, s | bursts so far | RSS | heap used | heap committed | external |',
      '| ---: | ---: | ---: | ---: | ---: | ---: |',
      ...r.afterGc.map(
        (g) =>
          `| ${g.t.toFixed(0)} | ${g.bursts} | ${mib(g.rss)} | ${mib(g.heapUsed)} | ${mib(g.heapTotal)} | ${mib(g.external)} |`,
      ),
    );
  }
  if (r.afterTrim)
    lines.push(
      '',
      `glibc \`malloc_trim(0)\` in the server at the end (through gdb): RSS ${mib(r.afterTrim.rssBefore)} → ${mib(r.afterTrim.rss)} MiB.`,
    );
  const h = health(r.viewers, minutes);
  lines.push(
    '',
    '| viewers | n | segments | per viewer-minute | errors | reconnects | longest gap, s |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...h.map(
      (x) =>
        `| ${x.mode} | ${x.viewers} | ${x.segments} | ${x.perViewerPerMinute.toFixed(1)} | ${x.errors} | ${x.reconnects} | ${x.longestGapSeconds.toFixed(1)} |`,
    ),
  );
  return lines.join('\n');
}
