/**
 * docs/latency.md and docs/latency.svg from one run of the congestion lab. Every figure is a measured value,
 * a count of measured events, or a median / percentile of them.
 */
import { percentile, summarize } from '../figures.js';
import { machine, type Machine } from '../machine.js';
import type { PageError, PlayerKind, PlayerSample, SegmentSeen } from './browser.js';
import type { LinkCounters } from './network.js';
import type { ViewerEvent } from './node-viewer.js';

export interface PhaseSpec {
  name: string;
  /** Rate per viewer ÷ the stream's nominal bitrate (top video rendition + audio). */
  factor: number;
  seconds: number;
}

export interface PhaseRun extends PhaseSpec {
  /** Wall clock, ms. */
  start: number;
  end: number;
  /** One viewer's share, bit/s: the Node viewer's link, each class of a split link, half of a shared one. */
  perViewerBps: number;
}

export interface RunSpec {
  key: string;
  label: string;
  ladder: string;
  /** The browsers' link: one queue for both (`shared`), or one per transport (`split`). */
  sharing: 'shared' | 'split';
  /** Warp viewers choose their rendition (the adaptive run: the table of renditions per phase). */
  adaptive?: boolean;
}

export interface RunResult extends RunSpec {
  originArgs: string[];
  warpPath: string;
  /** Nominal bitrate of the top rendition plus audio, bit/s. */
  streamBps: number;
  /** Mean bitrate of the whole segments dash.js loaded in the warm-up, bit/s. */
  measuredBps: { video: number | null; audio: number | null };
  phases: PhaseRun[];
  samples: Record<PlayerKind, PlayerSample[]>;
  segments: Record<PlayerKind, SegmentSeen[]>;
  node: ViewerEvent[];
  /** What `pushcast serve` printed (its encoder progress lines tell whether it kept up with real time). */
  originLog: string[];
  /**
   * Link counters and CPU use about once a second: the share of the machine's capacity (all cores) busy since
   * the previous reading, and the share the lab's own processes used.
   */
  link: ({ t: number; cpuBusy: number; cpuLab: number } & LinkCounters)[];
  /** Origin counters whose name mentions Warp, WebTransport or QUIC, read at each phase boundary. */
  metrics: { t: number; values: Record<string, number> }[];
  /** Each page's errors (uncaught exceptions, unhandled rejections, console errors): any fails the run. */
  pageErrors: Record<PlayerKind, PageError[]>;
  notes: string[];
}

export interface Results {
  startedAt: string;
  durationS: number;
  machine: Machine & { chromium: string; ffmpeg: string };
  config: {
    oneWayDelayMs: number;
    queueMs: number;
    targetMs: number;
    sampleMs: number;
    warpTransport: string;
    warpOrder: string;
    runs: string[];
  };
  runs: RunResult[];
}

type Line = 'dash' | 'warp' | 'node';

const LINES: { key: Line; label: string; color: string }[] = [
  { key: 'dash', label: 'LL-DASH (dash.js)', color: '#2563eb' },
  { key: 'warp', label: 'Warp (browser)', color: '#059669' },
  { key: 'node', label: 'Warp, Node viewer (arrival)', color: '#9ca3af' },
];

const mbps = (bps: number) => `${(bps / 1e6).toFixed(2)} Mbit/s`;
const secs = (msValue: number | undefined) => (msValue === undefined ? '–' : (msValue / 1000).toFixed(2));
/** A share in per cent; a share just short of all of it keeps a decimal (99.8 %, not 100 %). */
const pct = (x: number | undefined) =>
  x === undefined
    ? '–'
    : x < 1 && x >= 0.995
      ? `${(Math.floor(x * 1000) / 10).toFixed(1)} %`
      : `${Math.round(x * 100)} %`;

/** The latency points of a line: [wall ms, latency ms]. The Node viewer's are its video chunks. */
export function latencyPoints(run: RunResult, line: Line): [number, number][] {
  if (line === 'node')
    return run.node.flatMap((e) =>
      e.type === 'fragment' && e.kind === 'video' ? [[e.t, e.latencyMs] as [number, number]] : [],
    );
  return run.samples[line].flatMap((s) => (s.latencyMs === null ? [] : [[s.t, s.latencyMs] as [number, number]]));
}

const inPhase = (p: PhaseRun, t: number) => t >= p.start && t < p.end;

/** A player's frame latencies: [sample time, latency ms] for each frame shown since the sample before. */
export function frameLatencyPoints(run: RunResult, line: 'dash' | 'warp'): [number, number][] {
  return run.samples[line].flatMap((s) => (s.frameLatencies ?? []).map((l) => [s.t, l] as [number, number]));
}

/** For the chart: per sample, the latest frame shown in it (players); the Node viewer's chunks as they are. */
function chartPoints(run: RunResult, line: Line): [number, number][] {
  if (line === 'node') return latencyPoints(run, line);
  return run.samples[line].flatMap((s) =>
    s.frameLatencies?.length ? [[s.t, Math.max(...s.frameLatencies)] as [number, number]] : [],
  );
}

/** Change of a cumulative value over a phase: the last reading in it minus the last reading before it. */
function delta<T extends { t: number }>(readings: T[], p: PhaseRun, f: (s: T) => number): number | undefined {
  const before = readings.filter((s) => s.t < p.start).at(-1) ?? readings.find((s) => inPhase(p, s.t));
  const last = readings.filter((s) => s.t < p.end).at(-1);
  return before && last && last.t > before.t ? f(last) - f(before) : undefined;
}

/** The same as a rate per second of the readings' span. */
function rate<T extends { t: number }>(readings: T[], p: PhaseRun, f: (s: T) => number): number | undefined {
  const before = readings.filter((s) => s.t < p.start).at(-1) ?? readings.find((s) => inPhase(p, s.t));
  const last = readings.filter((s) => s.t < p.end).at(-1);
  return before && last && last.t > before.t ? (f(last) - f(before)) / ((last.t - before.t) / 1000) : undefined;
}

export interface LatencyFigures {
  n: number;
  median?: number;
  p95?: number;
  max?: number;
  /** Share at or under the bound (players: target + 200 ms). */
  withinShare?: number;
}

function latencyFigures(values: number[], bound: number): LatencyFigures {
  const s = summarize(values);
  return {
    n: values.length,
    median: s?.median,
    p95: percentile(values, 95),
    max: s?.max,
    withinShare: values.length ? values.filter((l) => l <= bound).length / values.length : undefined,
  };
}

export interface PhaseFigures {
  /** Players: each frame's latency as it was put on screen. */
  frames?: LatencyFigures;
  n: number;
  median?: number;
  p95?: number;
  max?: number;
  /** Players: share of latency samples at or under target + 200 ms; Node viewer: share of chunks that arrived within the target. */
  withinShare?: number;
  stalls?: number;
  frozenS?: number;
  jumpedS?: number;
  skipped?: number;
  /** Node viewer: segments cut short (reset by the sender, or stopped midway). */
  cut?: number;
  framesShownShare?: number;
}

export function phaseFigures(run: RunResult, line: Line, p: PhaseRun, targetMs: number): PhaseFigures {
  const lat = latencyPoints(run, line)
    .filter(([t]) => inPhase(p, t))
    .map(([, l]) => l);
  const bound = line === 'node' ? targetMs : targetMs + 200;
  const base: PhaseFigures = latencyFigures(lat, bound);
  if (line === 'node') {
    const events = run.node.filter((e) => inPhase(p, e.t));
    return {
      ...base,
      skipped: events.filter((e) => e.type === 'skip' && e.why !== 'old').length,
      cut: events.filter((e) => e.type === 'segment' && !e.complete).length,
    };
  }
  const samples = run.samples[line];
  const shown = delta(samples, p, (s) => s.framesShown);
  const frozen = delta(samples, p, (s) => s.frozenMs);
  return {
    ...base,
    frames: latencyFigures(
      frameLatencyPoints(run, line)
        .filter(([t]) => inPhase(p, t))
        .map(([, l]) => l),
      bound,
    ),
    stalls: delta(samples, p, (s) => s.stalls),
    frozenS: frozen === undefined ? undefined : frozen / 1000,
    jumpedS: delta(samples, p, (s) => s.jumpedS),
    skipped: delta(samples, p, (s) => s.segmentsSkipped),
    // 25 frames per second of wall time is what a viewer should see.
    framesShownShare: shown === undefined ? undefined : shown / (((p.end - p.start) / 1000) * 25),
  };
}

function resultsTable(run: RunResult, targetMs: number): string {
  const out = [
    '| phase | viewer | frame latency median (s) | p95 (s) | max (s) | frames within bound¹ | picture age median / p95 / max (s)³ | stalls | frozen (s) | media jumped (s) | segments skipped | frames shown |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const p of run.phases) {
    for (const l of LINES) {
      const f = phaseFigures(run, l.key, p, targetMs);
      const na = l.key === 'node' ? 'n/a' : '–';
      const skipped =
        l.key === 'dash' ? 'n/a²' : l.key === 'node' ? `${f.skipped} (+${f.cut} cut)` : `${f.skipped ?? '–'}`;
      // Node viewer: its chunks' arrival stands in the frame columns; it has no picture.
      const fr = l.key === 'node' ? f : f.frames!;
      const age = l.key === 'node' ? 'n/a' : `${secs(f.median)} / ${secs(f.p95)} / ${secs(f.max)}`;
      out.push(
        `| ${p.name} (${p.factor}×) | ${l.label} | ${secs(fr.median)} | ${secs(fr.p95)} | ${secs(fr.max)} | ${pct(fr.withinShare)} | ${age} | ${f.stalls ?? na} | ${f.frozenS?.toFixed(1) ?? na} | ${
          f.jumpedS?.toFixed(1) ?? na
        } | ${skipped} | ${l.key === 'node' ? na : pct(f.framesShownShare)} |`,
      );
    }
  }
  return out.join('\n');
}

/** What each viewer got through, per phase, and what the machine was doing. */
function linkTable(run: RunResult): string {
  const out = [
    `| phase | per viewer | browsers' link | LL-DASH got (TCP) | Warp page got (UDP) | Node viewer got | dropped: browsers' link / Node's | CPU busy: lab / other |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const p of run.phases) {
    const r = (f: (c: RunResult['link'][number]) => number) => rate(run.link, p, f);
    const show = (x: number | undefined) => (x === undefined ? '–' : mbps(x * 8));
    const readings = run.link.filter((c) => inPhase(p, c.t));
    const avg = (f: (c: RunResult['link'][number]) => number) =>
      pct(readings.reduce((n, c) => n + f(c), 0) / readings.length);
    const browsers = run.sharing === 'shared' ? `${mbps(2 * p.perViewerBps)} shared` : `2 × ${mbps(p.perViewerBps)}`;
    out.push(
      `| ${p.name} | ${mbps(p.perViewerBps)} | ${browsers} | ${show(r((c) => c.tcp))} | ${show(r((c) => c.udp))} | ${show(r((c) => c.node))} | ${
        delta(run.link, p, (c) => c.dropped) ?? '–'
      } / ${delta(run.link, p, (c) => c.nodeDropped) ?? '–'} | ${readings.length ? `${avg((c) => c.cpuLab)} / ${avg((c) => Math.max(0, c.cpuBusy - c.cpuLab))}` : '–'} |`,
    );
  }
  return out.join('\n');
}

/** Whether Warp in the browser held target + 200 ms, phase by phase, in words. */
export function verdict(run: RunResult, targetMs: number): string[] {
  const limit = targetMs + 200;
  return run.phases.map((p) => {
    const pf = phaseFigures(run, 'warp', p, targetMs);
    const w = pf.frames!;
    const d = phaseFigures(run, 'dash', p, targetMs).frames!;
    if (w.p95 === undefined) return `${p.name}: no Warp frames shown.`;
    const held = w.max !== undefined && w.max <= limit;
    const mostly = w.p95 <= limit;
    return `${p.name} (${p.factor}×): Warp ${held ? 'stayed within' : mostly ? 'stayed within (p95), but not always,' : 'did **not** stay within'} ${secs(limit)} s (frame latency median ${secs(w.median)}, p95 ${secs(w.p95)}, max ${secs(w.max)} s; ${pct(w.withinShare)} of frames; ${pct(pf.framesShownShare)} of frames shown); LL-DASH median ${secs(d.median)}, p95 ${secs(d.p95)}, max ${secs(d.max)} s.`;
  });
}

function segmentFates(run: RunResult): string {
  const fates = (p: PhaseRun) => {
    const counts = new Map<string, number>();
    for (const s of run.segments.warp)
      if (s.kind === 'video' && inPhase(p, s.t) && s.state && s.state !== 'receiving')
        counts.set(s.state, (counts.get(s.state) ?? 0) + 1);
    return [...counts].map(([k, v]) => `${v} ${k}`).join(', ') || 'none';
  };
  const loads = (p: PhaseRun) => {
    const sm = summarize(
      run.segments.dash
        .filter((s) => s.kind === 'video' && inPhase(p, s.t) && (s.loadMs ?? 0) > 0)
        .map((s) => s.loadMs!),
    );
    return sm
      ? `${(sm.median / 1000).toFixed(1)} s (max ${(sm.max / 1000).toFixed(1)}, ${sm.n} segments)`
      : 'none completed';
  };
  return `Video segments, phase by phase (by when the page first listed them) — Warp page, by fate: ${run.phases.map((p) => `${p.name}: ${fates(p)}`).join('; ')}. LL-DASH, request to last byte (median; a segment requested when announced streams for its 2 s): ${run.phases
    .map((p) => `${p.name}: ${loads(p)}`)
    .join('; ')}.`;
}

/** How the Node viewer's streams ended, phase by phase: RESET_STREAM from the sender is its resource limit at work. */
function nodeStreams(run: RunResult): string {
  const parts = run.phases.map((p) => {
    const streams = run.node.filter(
      (e): e is Extract<ViewerEvent, { type: 'stream' }> => e.type === 'stream' && inPhase(p, e.t),
    );
    const count = (o: string) => streams.filter((e) => e.outcome === o).length;
    return `${p.name}: ${count('fin')} whole, ${count('peer-reset')} reset by the sender, ${count('stopped')} stopped by the consumer${count('other') ? `, ${count('other')} other` : ''}`;
  });
  return `The Node viewer's streams (segments, and at the start the catalog and inits), by how they ended: ${parts.join('; ')}.`;
}

/** Whether the live encoder kept up with real time: `pushcast serve` logs its speed every 10 s. */
function encoderNote(run: RunResult): string {
  const speeds = run.originLog.flatMap((l) => {
    // The first line, at frame 1, has no speed yet.
    const m = /encoder: frame (\d+), [\d.]+ fps, speed ([\d.]+)x/.exec(l);
    return m && Number(m[1]) >= 100 ? [Number(m[2])] : [];
  });
  const runs = run.originLog.filter((l) => /encoder run \d+ started/.test(l)).length;
  const s = summarize(speeds);
  return s
    ? `Encoder speed (logged every 10 s): median ${s.median.toFixed(2)}×, lowest ${s.min.toFixed(2)}× real time; encoder runs ${runs}.`
    : 'No encoder progress was logged.';
}

function metricsNote(run: RunResult): string {
  const names = new Set(run.metrics.flatMap((m) => Object.keys(m.values)));
  if (!names.size)
    return 'The origin exposed no Warp, WebTransport or QUIC counters at `/metrics` in this run: what the Warp sender reset at its resource limit is seen from the Node viewer (RESET_STREAM from the sender, above) and, on the page, as segments *cut* (their stream ended early).';
  const first = run.metrics[0]!.values;
  const last = run.metrics.at(-1)!.values;
  return `Origin counters at \`/metrics\` (change over the run): ${[...names].map((n) => `\`${n}\` ${(last[n] ?? 0) - (first[n] ?? 0)}`).join(', ')}.`;
}

/**
 * Seconds from the start of the last phase (the link back at its first rate) until the line's latency is
 * back within 0.5 s of its median in the first phase; undefined if it never is.
 */
export function recoverySeconds(run: RunResult, line: Line): number | undefined {
  const first = run.phases[0]!;
  const last = run.phases.at(-1)!;
  const base = summarize(
    latencyPoints(run, line)
      .filter(([t]) => inPhase(first, t))
      .map(([, l]) => l),
  )?.median;
  if (base === undefined) return undefined;
  const back = latencyPoints(run, line).find(([t, l]) => inPhase(last, t) && l <= base + 500);
  return back && (back[0] - last.start) / 1000;
}

const after = (s: number | undefined) => (s === undefined ? 'not within the phase' : `after ${s.toFixed(1)} s`);

function summaryTable(r: Results): string {
  const out = [
    '| run | phase | Warp (browser): frame latency median / p95 / max (s) | within target + 0.2 s | frames shown | picture age p95 (s) | LL-DASH: frame latency median / p95 / max (s) | frames shown | picture age p95 (s) | Node viewer: arrival p95 (s) |',
    '| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const run of r.runs) {
    for (const p of run.phases) {
      const wp = phaseFigures(run, 'warp', p, r.config.targetMs);
      const dp = phaseFigures(run, 'dash', p, r.config.targetMs);
      const [w, d] = [wp.frames!, dp.frames!];
      const n = phaseFigures(run, 'node', p, r.config.targetMs);
      const held =
        w.max === undefined
          ? '–'
          : w.max <= r.config.targetMs + 200
            ? 'yes'
            : `${pct(w.withinShare)} of frames (max ${secs(w.max)} s)`;
      out.push(
        `| ${run.label} | ${p.name} (${p.factor}×) | ${secs(w.median)} / ${secs(w.p95)} / ${secs(w.max)} | ${held} | ${pct(wp.framesShownShare)} | ${secs(wp.p95)} | ${secs(d.median)} / ${secs(d.p95)} / ${secs(d.max)} | ${pct(dp.framesShownShare)} | ${secs(dp.p95)} | ${secs(n.p95)} |`,
      );
    }
  }
  return out.join('\n');
}

/**
 * What the run shows, each point with its own figures: how Warp holds the target (frames shown against
 * what the link can carry), what the consumer and the sender cut, the floor on an idle link, recovery,
 * and (on a shared link) how the bandwidth split.
 */
function findings(r: Results): string[] {
  const c = r.config;
  const out: string[] = [];
  const first = r.runs[0]!;
  const split = r.runs.find((x) => x.sharing === 'split' && !x.adaptive) ?? first;
  const warm = first.phases[0]!;
  const idle = phaseFigures(first, 'warp', warm, c.targetMs);
  if (idle.frames?.median !== undefined) {
    out.push(
      `**On an idle link Warp plays at the target.** The page keeps its playhead at the live point (the server's clock, from \`/time\`) minus the target, so in the warm-up (${first.label.toLowerCase()}) ` +
        `its frames were put on screen a median ${secs(idle.frames.median)} s after capture (picture age sampled: ${secs(idle.median)} s); the rest over ${secs(c.targetMs)} s is the browser's ` +
        'own path from append to display. A chunk needs about 0.2 s (its duration) plus the trip to arrive, well inside the target.',
    );
  }
  const video = split.measuredBps.video;
  const audio = split.measuredBps.audio ?? 128_000;
  for (const p of split.phases.slice(1, 3)) {
    const w = phaseFigures(split, 'warp', p, c.targetMs);
    const d = phaseFigures(split, 'dash', p, c.targetMs);
    const fits = video ? Math.max(0, Math.min(1, (p.perViewerBps - audio) / video)) : undefined;
    const stopped = split.node.filter((e) => e.type === 'stream' && e.outcome === 'stopped' && inPhase(p, e.t)).length;
    const reset = split.node.filter((e) => e.type === 'stream' && e.outcome === 'peer-reset' && inPhase(p, e.t)).length;
    out.push(
      `**At ${p.factor}× (${split.label.toLowerCase()}), Warp kept the latency and dropped frames.** Its frames were shown ${secs(w.frames?.median)} s after capture (p95 ${secs(w.frames?.p95)}, max ${secs(w.frames?.max)} s; ` +
        `${pct(w.frames?.withinShare)} within target + 0.2 s), with ${w.stalls ?? '–'} stalls, while ${pct(w.framesShownShare)} of the frames were shown` +
        (fits !== undefined
          ? ` — what the link can carry: after the audio (${mbps(audio)}, sent first), ${mbps(p.perViewerBps - audio)} is ${pct(fits)} of the video's ${mbps(video!)}`
          : '') +
        `. Each GoP's video is sent newest first; what the link cannot carry is its tail, which the consumer gives up when the next GoP is due on the timeline (${w.skipped ?? '–'} segments cut on the page; ` +
        `the Node viewer stopped ${stopped} streams and the sender reset ${reset} at its resource limit). The picture holds its last frame through the cut tail while audio and the clock run on. ` +
        `LL-DASH on the same share: frame latency median ${secs(d.frames?.median)} s, max ${secs(d.frames?.max)} s, ${d.stalls ?? '–'} stalls, ${pct(d.framesShownShare)} of frames shown.`,
    );
  }
  const rec = r.runs.map(
    (run) =>
      `${run.label.toLowerCase()}: Warp ${after(recoverySeconds(run, 'warp'))}, LL-DASH ${after(recoverySeconds(run, 'dash'))}`,
  );
  out.push(`**Recovery.** Back within 0.5 s of the warm-up's latency once the link recovered — ${rec.join('; ')}.`);
  const shared = r.runs.find((x) => x.sharing === 'shared');
  if (shared) {
    const p = shared.phases[1]!;
    const tcp = rate(shared.link, p, (x) => x.tcp);
    const udp = rate(shared.link, p, (x) => x.udp);
    const w = phaseFigures(shared, 'warp', p, c.targetMs);
    if (tcp !== undefined && udp !== undefined) {
      out.push(
        `**On a shared link the two congestion controllers split the bandwidth unevenly.** At ${p.factor}× on the shared link (${mbps(2 * p.perViewerBps)} for both), the Warp page's QUIC connection (quiche, CUBIC) got ${mbps(udp * 8)} ` +
          `and LL-DASH's TCP ${mbps(tcp * 8)} (Warp showed ${pct(w.framesShownShare)} of its frames there). The split run gives each player exactly one share, which is the comparison of the delivery methods themselves.`,
      );
    }
  }
  for (const run of r.runs.filter((x) => x.adaptive && x.ladder.includes(','))) {
    const figures = run.phases.slice(1, 3).map((p) => {
      const w = phaseFigures(run, 'warp', p, c.targetMs);
      const p99 = percentile(
        frameLatencyPoints(run, 'warp')
          .filter(([t]) => inPhase(p, t))
          .map(([, l]) => l),
        99,
      );
      return `at ${p.factor}× ${pct(w.framesShownShare)} of frames shown (${renditionsPlayed(run, 'warp', p).split(' → ').length - 1} rendition changes at the playhead), frame latency p99 ${secs(p99)} s, ${w.stalls ?? '–'} stalls`;
    });
    const back = backAtTopSeconds(run, 'warp');
    const d = backAtTopSeconds(run, 'dash');
    const s1 = (x: number | undefined) => (x === undefined ? 'not within the phase' : `${x.toFixed(1)} s`);
    out.push(
      `**With renditions to switch to (${run.label.toLowerCase()}), Warp steps down instead of dropping frames.** The page chose its rendition (SELECT, \`src/warp/abr.ts\`): ${figures.join('; ')}. ` +
        `After the link recovered its playhead showed the top rendition first after ${s1(back.first)} and for good after ${s1(back.forGood)}; dash.js's ABR after ${s1(d.first)} (for good ${s1(d.forGood)}).`,
    );
  }
  return out;
}

/** Renditions in the order they were played in a phase: a player's samples (the rendition at its playhead). */
function renditionsPlayed(run: RunResult, line: 'dash' | 'warp', p: PhaseRun): string {
  const seq: string[] = [];
  for (const s of run.samples[line])
    if (inPhase(p, s.t) && s.rendition && seq.at(-1) !== s.rendition) seq.push(s.rendition);
  return seq.length ? seq.join(' → ') : '–';
}

/** The Node viewer's renditions in a phase: the tracks of the video segments it completed, in order. */
function nodeRenditions(run: RunResult, p: PhaseRun): string {
  const seq: string[] = [];
  for (const e of run.node)
    if (e.type === 'segment' && inPhase(p, e.t) && !e.track.startsWith('audio') && seq.at(-1) !== e.track)
      seq.push(e.track);
  return seq.length ? seq.join(' → ') : '–';
}

/** The top video rendition of a run's ladder (the one with the largest bitrate). */
function topRendition(run: RunResult): string | undefined {
  const ids = [...run.samples.warp, ...run.samples.dash].map((s) => s.rendition).filter((x): x is string => !!x);
  const height = (id: string) => Number(/(\d+)p?$/.exec(id)?.[1] ?? 0);
  return ids.sort((a, b) => height(b) - height(a))[0];
}

/**
 * Seconds from the start of the last phase until a player's playhead first shows the top rendition, and
 * until it shows it for good (to the end of the phase); undefined when it does not.
 */
export function backAtTopSeconds(run: RunResult, line: 'dash' | 'warp'): { first?: number; forGood?: number } {
  const last = run.phases.at(-1)!;
  const top = topRendition(run);
  const samples = run.samples[line].filter((s) => inPhase(last, s.t));
  const first = samples.find((s) => s.rendition === top);
  if (!top || !first) return {};
  const at = (t: number) => (t - last.start) / 1000;
  if (samples.at(-1)!.rendition !== top) return { first: at(first.t) };
  let i = samples.length - 1;
  while (i > 0 && samples[i - 1]!.rendition === top) i--;
  return { first: at(first.t), forGood: at(samples[i]!.t) };
}

/** The adaptive run's verdict table: per phase and player, renditions played, frames shown, p99, stalls. */
function adaptiveTable(run: RunResult, targetMs: number): string {
  const bound = targetMs + 200;
  const rows = [
    `| phase | viewer | renditions played (in order) | frames shown | frame latency p99 (s) | p99 ≤ ${secs(bound)} s | stalls | back at the top rendition |`,
    '| --- | --- | --- | ---: | ---: | :---: | ---: | --- |',
  ];
  for (const [i, p] of run.phases.entries()) {
    const last = i === run.phases.length - 1;
    for (const line of ['warp', 'dash'] as const) {
      const frames = frameLatencyPoints(run, line)
        .filter(([t]) => inPhase(p, t))
        .map(([, l]) => l);
      const p99 = percentile(frames, 99);
      const f = phaseFigures(run, line, p, targetMs);
      const back = last ? backAtTopSeconds(run, line) : {};
      const s1 = (x: number | undefined) => (x === undefined ? 'no' : `${x.toFixed(1)} s`);
      rows.push(
        `| ${p.name} (${p.factor}×) | ${line === 'warp' ? 'Warp (browser)' : 'LL-DASH (dash.js ABR)'} | ${renditionsPlayed(run, line, p)} | ${pct(f.framesShownShare)} | ${secs(p99)} | ${p99 === undefined ? '–' : p99 <= bound ? 'yes' : '**no**'} | ${f.stalls ?? '–'} | ${last ? `first after ${s1(back.first)}, for good after ${s1(back.forGood)}` : ''} |`,
      );
    }
    rows.push(`| ${p.name} (${p.factor}×) | Node viewer (Warp) | ${nodeRenditions(run, p)} | | | | | |`);
  }
  const selects = run.node.filter((e) => e.type === 'select').length;
  return `${rows.join('\n')}

Targets: at 0.7× and 0.4×, at least 90 % of frames shown, frame latency p99 within target + 0.2 s, 0 stalls; the top
rendition back within 10 s after the link recovers. *Renditions played*: the rendition at the playhead, sampled every
${run.samples.warp.length > 1 ? '0.5' : '–'} s (Warp: the page's record of where each rendition starts on the media timeline; dash.js: its
current video quality). The Node viewer asked for ${selects} switches (SELECT) over the run.
`;
}

function runSection(r: Results, run: RunResult): string {
  const m = run.measuredBps;
  const how =
    run.sharing === 'shared'
      ? `The two browser viewers share one token bucket (\`tbf\`) at twice the per-viewer rate, and its one queue, as two viewers on one access link do.`
      : `Control: the browsers' link is split per transport (\`htb\`, a class each for TCP and UDP at the per-viewer rate, no borrowing, each with its own ${r.config.queueMs} ms byte FIFO), so each player gets exactly one viewer's share whatever the congestion controllers do.`;
  return `## ${run.label}

\`pushcast ${run.originArgs.join(' ').replace(/--state-dir \S+/, '--state-dir <a temporary folder>')}\`; Warp page \`${run.warpPath}\`. Stream: ${mbps(run.streamBps)} nominal (top video rendition + audio);
measured from the segments dash.js loaded in the warm-up: video ${m.video === null ? '–' : mbps(m.video)}, audio ${m.audio === null ? '–' : mbps(m.audio)}.
${how} The Node viewer has a link of its own at the per-viewer rate.

${run.adaptive ? `${adaptiveTable(run, r.config.targetMs)}\n` : ''}${resultsTable(run, r.config.targetMs)}

¹ Players: frames put on screen at most target + 0.2 s (${secs(r.config.targetMs + 200)} s) after they were captured. Node viewer (its columns are
chunk arrival): video chunks that arrived within the target (in time to be played at ${secs(r.config.targetMs)} s).
³ Picture age: sampled every ${r.config.sampleMs} ms, the age of the picture on screen (wall clock − capture time of the playhead's frame): it grows
while the picture stands still, whether the player waits for late media or shows nothing for media it skipped.
² dash.js does not skip segments; ${run.ladder.includes(',') ? 'it can switch renditions' : 'with one rendition it cannot switch down either'}, so it waits (stalls) or, once far behind, seeks
forward (*media jumped*).

What each viewer got through (bytes into its namespace, nftables counters, as a rate over the phase), drops at the shapers, and the
machine's CPU:

${linkTable(run)}

${segmentFates(run)}

${nodeStreams(run)} ${metricsNote(run)} ${encoderNote(run)}

${run.notes.map((n) => `- ${n}`).join('\n')}
`;
}

export function markdown(r: Results): string {
  const c = r.config;
  const m = r.machine;
  const first = r.runs[0]!;
  return `# Latency under congestion: LL-DASH and Warp, side by side

The draft's claim (draft-lcurley-warp-00): Warp keeps the latency the viewer chose — when the network cannot carry the
stream, it skips media instead of falling behind — while HTTP delivery queues and its latency grows. Here one live
stream is watched in Chromium over **LL-DASH** (the dash.js page \`/\`) and over **Warp** (the page \`/warp/\`, WebTransport)
at once, while the rate per viewer steps through ${first.phases.map((p) => `${p.factor}×`).join(', ')} the stream's bitrate, ${first.phases[0]!.seconds} s each.
A Node Warp viewer on a link of its own with the same per-viewer rate is a third line: when chunks *arrive*, without a player.

Generated by \`npm run bench:latency\` (\`bench/latency.ts\`; runs: ${c.runs.join(', ')}; as root: it creates network namespaces;
${(r.durationS / 60).toFixed(1)} min for this run); do not edit by hand. Run ${r.startedAt}.

Machine: ${machine(m)}; ${m.chromium}; ${m.ffmpeg}.

Links: namespaces origin ↔ client (Chromium) and origin ↔ node (the Node viewer), each a user-space delay
line (\`bench/push/delay-line.py\`: ${c.oneWayDelayMs} ms one way, ${2 * c.oneWayDelayMs} ms RTT; this kernel has no \`sch_netem\`) with a shaper on the
origin's side: a token bucket and a drop-tail queue of **${c.queueMs} ms** worth of bytes at the current rate (\`tbf … latency ${c.queueMs}ms\`, or
\`htb\` + \`bfifo\` of the same size). The viewer→origin direction is not limited. Latency target ${secs(c.targetMs)} s for both players (the MPD's
\`ServiceDescription\` for dash.js, \`?latency=${c.targetMs}\` for Warp, which also sets the Warp sender's resource limit); Warp order
\`${c.warpOrder}\`, transport \`${c.warpTransport}\`. Each page's \`pushcastStats()\` read every ${c.sampleMs} ms.

## Summary: did Warp show its frames within target + 200 ms?

${summaryTable(r)}

Frames shown are a share of the stream's 25 per second (over 100 %: a player catching up by playing faster). Back to
normal after the link recovered (within 0.5 s of its own warm-up median latency): ${r.runs
    .map(
      (run) =>
        `${run.label.toLowerCase()} — Warp ${after(recoverySeconds(run, 'warp'))}, LL-DASH ${after(recoverySeconds(run, 'dash'))}`,
    )
    .join('; ')}.

![latency over time, both players and the Node viewer, with the phases as bands; throughput per viewer](latency.svg)

## What the runs show

${findings(r)
  .map((f) => `- ${f}`)
  .join('\n')}

${r.runs.map((run) => runSection(r, run)).join('\n')}
## What is measured

- **frame latency** — for each frame put on screen (\`requestVideoFrameCallback\`, by a probe this bench adds to both
  pages): the time it was displayed minus the time it was captured, i.e. the MPD's \`availabilityStartTime\` (the Warp
  catalog carries the same) plus its presentation time. Every process runs on one machine, so the clocks are one clock.
  (The encoder burns its wall clock into the picture too, which would allow a check by eye; not done here.)
- **picture age** — each page's own latency figure, sampled every ${c.sampleMs} ms: LL-DASH \`pushcastStats().latency\`
  (dash.js, its clock synchronised to the origin by UTCTiming \`/time\`), Warp \`latencyMs\` (the server's clock −
  (\`availabilityStartTime\` + \`currentTime\`)). It counts a still picture as growing latency, whether the player is
  waiting for late media (LL-DASH) or holding a frame through media it skipped (Warp).
- **Node viewer** — for each video CMAF chunk (0.2 s), when the consumer hands it over in decode order, minus the
  wall-clock time of its first sample: an arrival latency with no playout buffer.
- **stalls** — each page's own count of \`waiting\` events while playing (not seeking). **frozen** — time the picture
  stood still after playback began (\`currentTime\` unchanged between two polls 50 ms apart: waiting, seeking or paused),
  by a probe this bench adds to both pages. **media jumped** — media time skipped by forward seeks after playback began
  (dash.js's catch-up; the Warp page's catch-up seeks and jumps over holes left by skipped segments), by the same probe.
- **segments skipped** — Warp page: segments given up on (late, stalled or missing; every track). Node viewer: the same
  from its consumer, plus segments *cut* (their stream ended early: reset by the sender at its resource limit, or
  stopped by the consumer while under way).
- **frames shown** — frames presented (\`getVideoPlaybackQuality()\`: total − dropped) in the phase, as a share of the
  stream's 25 per second.
- Phases are timed from the moment both pages have played 5 s on end without the picture freezing; the shapers change
  at each boundary (\`tc … change\`). CPU busy is the whole machine's (\`/proc/stat\`, all cores): *lab* is what the
  encoder, the origin, Chromium, the Node viewer and the delay lines used, *other* everything else on the machine.
- **Browser setup.** Debian's Chromium, headless, driven by playwright-core through a wrapper that enters the client
  namespace; both pages in one browser. A page on \`http://10.79.0.1:8080\` is not a secure context, so it has no
  \`WebTransport\` (the Warp page would fall back to its WebSocket): Chromium runs with
  \`--unsafely-treat-insecure-origin-as-secure=http://10.79.0.1:8080\`. The session to \`https://10.79.0.1:8443\` is then
  trusted by the certificate hash from \`/.well-known/pushcast/webtransport.json\` (no host-name check, so the development
  certificate needs no extra name), and Chromium speaks QUIC to the address although the namespace has no default route.
  \`?transport=webtransport\` pins the page to WebTransport, so a failure shows instead of a silent fallback.
- **Node viewer.** A WebTransport session to \`https://10.79.1.1:8443/warp/live?latency=${c.targetMs}\` and the page's consumer
  (\`bench/latency/node-viewer.ts\`), with pushcast's client defaults. (Before the client's connection credit was lifted,
  src/quic/options.ts \`CLIENT_MAX_DATA\`, this session stopped receiving for good after about its 16 MiB of credit:
  quiche 0.18 loses credit on cut streams.)
`;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The first of 0.1, 0.2, 0.5, 1, 2, 5, 10, … that divides `span` into at most `count` steps. */
function gridStep(span: number, count: number): number {
  if (!(span > 0 && Number.isFinite(span))) return 1;
  for (let k = -1; ; k++) for (const step of [1, 2, 5].map((f) => f * 10 ** k)) if (span / step <= count) return step;
}

interface Panel {
  title: string;
  unit: string;
  yMax: number;
  series: { color: string; width: number; points: [number, number][]; dash?: string }[];
  hline?: number;
}

/** Per-second throughput of one counter, Mbit/s. */
function throughput(run: RunResult, f: (c: RunResult['link'][number]) => number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 1; i < run.link.length; i++) {
    const a = run.link[i - 1]!;
    const b = run.link[i]!;
    if (b.t > a.t) out.push([b.t, ((f(b) - f(a)) * 8) / ((b.t - a.t) / 1000) / 1e6]);
  }
  return out;
}

function runPanels(r: Results, run: RunResult): Panel[] {
  const limit = (r.config.targetMs + 200) / 1000;
  const latency = LINES.map((l) => ({
    color: l.color,
    width: l.key === 'node' ? 1 : 2,
    points: chartPoints(run, l.key).map(([t, v]) => [t, v / 1000] as [number, number]),
  }));
  const maxLatency = Math.max(limit, ...latency.flatMap((s) => s.points.map(([, v]) => v)));
  const share = run.phases.flatMap(
    (p) =>
      [
        [p.start, p.perViewerBps / 1e6],
        [p.end, p.perViewerBps / 1e6],
      ] as [number, number][],
  );
  const rates = [
    { color: '#111827', width: 1.5, points: share, dash: '5 3' },
    { color: LINES[2]!.color, width: 1, points: throughput(run, (c) => c.node) },
    { color: LINES[0]!.color, width: 1.5, points: throughput(run, (c) => c.tcp) },
    { color: LINES[1]!.color, width: 1.5, points: throughput(run, (c) => c.udp) },
  ];
  const maxRate = Math.max(...rates.flatMap((s) => s.points.map(([, v]) => v)));
  return [
    { title: `${run.label}: latency, s`, unit: 's', yMax: maxLatency * 1.05, series: latency, hline: limit },
    {
      title: `${run.label}: latency, close up (0 to ${(2 * limit).toFixed(1)} s)`,
      unit: 's',
      yMax: 2 * limit,
      series: latency,
      hline: limit,
    },
    {
      title: `${run.label}: what each viewer got, Mbit/s (dashed: one viewer's share)`,
      unit: 'Mbit/s',
      yMax: maxRate * 1.1,
      series: rates,
    },
  ];
}

/** Per run: latency over time (full range and close to the target) and each viewer's throughput, the phases as bands. */
export function chartSvg(r: Results): string {
  const W = 1100;
  const left = 60;
  const plotW = W - left - 20;
  const panelH = 170;
  const gap = 48;
  const top = 78;
  const panels = r.runs.flatMap((run) => runPanels(r, run).map((panel) => ({ run, panel })));
  const H = top + panels.length * (panelH + gap) + 10;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Verdana, sans-serif">`,
  );
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="17" font-weight="bold">Latency under congestion: LL-DASH and Warp on one link</text>`,
  );
  out.push(
    `<text x="${W / 2}" y="44" text-anchor="middle" font-size="12" fill="#444">${esc(`${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.kernel}; RTT ${2 * r.config.oneWayDelayMs} ms, queue ${r.config.queueMs} ms; target ${secs(r.config.targetMs)} s; ${r.startedAt.slice(0, 10)}`)}</text>`,
  );
  let lx = left;
  for (const l of [...LINES, { label: 'target + 0.2 s', color: '#dc2626' }]) {
    const dashed = l.color === '#dc2626' ? ' stroke-dasharray="6 3"' : '';
    out.push(
      `<line x1="${lx}" x2="${lx + 22}" y1="60" y2="60" stroke="${l.color}" stroke-width="3"${dashed}/><text x="${lx + 28}" y="64" font-size="12">${esc(l.label)}</text>`,
    );
    lx += 44 + l.label.length * 7;
  }
  panels.forEach(({ run, panel }, i) => {
    const t0 = run.phases[0]!.start;
    const tEnd = run.phases.at(-1)!.end;
    const x = (t: number) => left + ((Math.min(Math.max(t, t0), tEnd) - t0) / (tEnd - t0)) * plotW;
    const y0 = top + i * (panelH + gap) + 20;
    const y = (v: number) => y0 + panelH - (Math.min(Math.max(v, 0), panel.yMax) / panel.yMax) * panelH;
    out.push(`<text x="${left}" y="${y0 - 8}" font-size="13" font-weight="bold">${esc(panel.title)}</text>`);
    run.phases.forEach((p, k) => {
      out.push(
        `<rect x="${x(p.start).toFixed(1)}" y="${y0}" width="${(x(p.end) - x(p.start)).toFixed(1)}" height="${panelH}" fill="${k % 2 ? '#f3f4f6' : '#fafafa'}"/>`,
      );
      out.push(
        `<text x="${((x(p.start) + x(p.end)) / 2).toFixed(1)}" y="${y0 + 13}" text-anchor="middle" font-size="10" fill="#666">${esc(`${p.name} ${p.factor}× (${(p.perViewerBps / 1e6).toFixed(2)} Mbit/s)`)}</text>`,
      );
    });
    const step = gridStep(panel.yMax, 5);
    for (let v = 0; v <= panel.yMax + 1e-9; v += step) {
      out.push(
        `<line x1="${left}" x2="${left + plotW}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="${v === 0 ? '#333' : '#e5e7eb'}"/>`,
      );
      out.push(
        `<text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" font-size="11" fill="#444">${Number.isInteger(step) ? v : v.toFixed(1)}</text>`,
      );
    }
    const tStep = gridStep((tEnd - t0) / 1000, 10);
    for (let s = 0; s <= (tEnd - t0) / 1000 + 1e-9; s += tStep)
      out.push(
        `<text x="${x(t0 + s * 1000).toFixed(1)}" y="${y0 + panelH + 14}" text-anchor="middle" font-size="11" fill="#444">${s}${s === 0 ? ' s' : ''}</text>`,
      );
    out.push(`<line x1="${left}" x2="${left}" y1="${y0}" y2="${y0 + panelH}" stroke="#333"/>`);
    if (panel.hline !== undefined)
      out.push(
        `<line x1="${left}" x2="${left + plotW}" y1="${y(panel.hline).toFixed(1)}" y2="${y(panel.hline).toFixed(1)}" stroke="#dc2626" stroke-width="1.5" stroke-dasharray="6 3"/>`,
      );
    for (const s of panel.series) {
      const points = s.points.filter(([t]) => t >= t0 && t <= tEnd);
      if (points.length < 2) continue;
      out.push(
        `<path d="${points.map(([t, v], k) => `${k ? 'L' : 'M'}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join('')}" fill="none" stroke="${s.color}" stroke-width="${s.width}"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''} stroke-linejoin="round"/>`,
      );
    }
    if (panel.series.some((s) => s.points.some(([t, v]) => t >= t0 && t <= tEnd && v > panel.yMax)))
      out.push(
        `<text x="${left + plotW - 4}" y="${y0 + 26}" text-anchor="end" font-size="10" fill="#dc2626">clipped at ${panel.yMax.toFixed(1)} ${panel.unit}</text>`,
      );
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
