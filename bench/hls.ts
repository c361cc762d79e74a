/**
 * LL-HLS (hls.js, the `/hls/` page) against LL-DASH (dash.js, the player page forced to `dash`) at the same
 * latency target, side by side in Chromium on loopback, from one `pushcast serve`.
 *   npm run bench:hls [-- --runs 3] [--warmup 15] [--seconds 30] [--doc docs/hls.md | none]
 *
 * - Server: `pushcast serve` (test pattern, real ffmpeg, ladder 640x360@800k, 2 s segments of 0.2 s chunks,
 *   multicast and Warp off) with `--target-latency 1.5`: the MPD's ServiceDescription target and the media
 *   playlists' PART-HOLD-BACK are both 1.5 s, and both players catch up at a playback rate of at most 1.04.
 * - Each run opens both pages at once, each in a fresh browser context, waits until both play, lets them
 *   settle for `--warmup` seconds, then samples both every 500 ms for `--seconds`: the latency each page
 *   reports (`pushcastStats().latencyMs`: the origin's clock minus the wall-clock time of the frame on
 *   screen, from the MPD's timeline for dash.js and from EXT-X-PROGRAM-DATE-TIME for hls.js), stalls and frames.
 * - Report: printed with the machine and Chromium's version, and written between the bench-hls markers of
 *   docs/hls.md.
 */
import { parseArgs } from 'node:util';
import type { Browser, Page } from 'playwright-core';
import type { HlsPageStats } from '../src/web/hls/stats.js';
import type { PlayerStats } from '../src/web/player/stats.js';
import { launchChromium } from '../test/support/browser.js';
import { startServe, type RunningServe } from '../test/support/pushcast-process.js';
import { sleepUntil, until, wallClock } from '../test/support/wait.js';
import { writeDocSection } from './doc-section.js';
import { median, percentile } from './figures.js';
import { machine, toolVersion } from './machine.js';

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '15' },
    seconds: { type: 'string', default: '30' },
    doc: { type: 'string', default: 'docs/hls.md' },
  },
});

function count(name: string, value: string | undefined): number {
  const x = Number(value);
  if (!Number.isInteger(x) || x < 1) throw new Error(`--${name}: ${value} is not a positive integer`);
  return x;
}

const RUNS = count('runs', opts.runs);
const WARMUP_S = count('warmup', opts.warmup);
const SECONDS = count('seconds', opts.seconds);
const TARGET_S = 1.5;
/** The target hls.js's median latency must meet. */
const GOAL_MS = 2000;
const SAMPLE_MS = 500;

const log = (line: string) => console.log(`hls ${new Date().toISOString().slice(11, 19)} ${line}`);

/** The figures both pages report, read the same way. */
interface Sample {
  playing: boolean;
  latencyMs: number | null;
  stalls: number;
  frames: number;
}

type Kind = 'hls.js' | 'dash.js';

async function sample(kind: Kind, page: Page): Promise<Sample> {
  if (kind === 'hls.js') {
    const s = await page.evaluate(() =>
      (globalThis as unknown as { pushcastStats: () => HlsPageStats }).pushcastStats(),
    );
    return { playing: s.state === 'playing', latencyMs: s.latencyMs, stalls: s.stalls, frames: s.framesShown };
  }
  const s = await page.evaluate(() =>
    (globalThis as unknown as { pushcastStats: () => PlayerStats | null }).pushcastStats(),
  );
  return {
    playing: s?.state === 'playing' && s.mode === 'dash',
    latencyMs: s?.latencyMs ?? null,
    stalls: s?.stalls ?? 0,
    frames: s?.framesShown ?? 0,
  };
}

interface Measured {
  latencies: number[];
  stalls: number;
  frames: number;
}

async function run(browser: Browser, serve: RunningServe, index: number): Promise<Record<Kind, Measured>> {
  const contexts = await Promise.all([browser.newContext(), browser.newContext()]);
  try {
    const pages: Record<Kind, Page> = { 'hls.js': await contexts[0].newPage(), 'dash.js': await contexts[1].newPage() };
    await Promise.all([
      pages['hls.js'].goto(new URL('/hls/', serve.player).href),
      pages['dash.js'].goto(new URL(`/?mode=dash&latency=${TARGET_S * 1000}`, serve.player).href),
    ]);
    const kinds: Kind[] = ['hls.js', 'dash.js'];
    await until(
      'both players play',
      async () => (await Promise.all(kinds.map((k) => sample(k, pages[k])))).every((s) => s.playing && s.frames > 0),
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    log(`run ${index + 1}: both playing; settling ${WARMUP_S} s`);
    await sleepUntil(wallClock() + WARMUP_S * 1000);
    const first = Object.fromEntries(
      await Promise.all(kinds.map(async (k) => [k, await sample(k, pages[k])])),
    ) as Record<Kind, Sample>;
    const out: Record<Kind, Measured> = {
      'hls.js': { latencies: [], stalls: 0, frames: 0 },
      'dash.js': { latencies: [], stalls: 0, frames: 0 },
    };
    const start = wallClock();
    let last = first;
    for (let tick = 1; tick <= (SECONDS * 1000) / SAMPLE_MS; tick++) {
      await sleepUntil(start + tick * SAMPLE_MS);
      last = Object.fromEntries(await Promise.all(kinds.map(async (k) => [k, await sample(k, pages[k])]))) as Record<
        Kind,
        Sample
      >;
      for (const k of kinds) if (last[k].latencyMs !== null) out[k].latencies.push(last[k].latencyMs!);
    }
    for (const k of kinds) {
      out[k].stalls = last[k].stalls - first[k].stalls;
      out[k].frames = last[k].frames - first[k].frames;
      log(
        `run ${index + 1} ${k}: latency median ${median(out[k].latencies)} ms, p95 ${percentile(out[k].latencies, 95)} ms; stalls ${out[k].stalls}; frames ${out[k].frames}`,
      );
    }
    return out;
  } finally {
    await Promise.all(contexts.map((c) => c.close()));
  }
}

function commandLine(): string {
  const given = process.argv.slice(2).join(' ');
  return process.env.npm_lifecycle_event === 'bench:hls'
    ? `npm run bench:hls${given ? ` -- ${given}` : ''}`
    : `node build/bench/hls.js${given ? ` ${given}` : ''}`;
}

async function main(): Promise<void> {
  const serve = await startServe([
    '--no-multicast',
    '--no-warp',
    '--ladder',
    '640x360@800k',
    '--target-latency',
    String(TARGET_S),
  ]);
  let browser: Browser | undefined;
  const stop = async () => {
    await browser?.close().catch(() => {});
    await serve.stop();
  };
  process.once('SIGINT', () => void stop().then(() => process.exit(130)));
  process.once('SIGTERM', () => void stop().then(() => process.exit(143)));
  try {
    browser = await launchChromium();
    const chromium = `Chromium ${browser.version()}`;
    const runs: Record<Kind, Measured>[] = [];
    for (let i = 0; i < RUNS; i++) runs.push(await run(browser, serve, i));
    const all = (k: Kind) => runs.flatMap((r) => r[k].latencies);
    const figure = (k: Kind) => {
      const xs = all(k);
      return {
        median: median(xs),
        p95: percentile(xs, 95)!,
        min: Math.min(...xs),
        max: Math.max(...xs),
        stalls: runs.reduce((n, r) => n + r[k].stalls, 0),
        frames: runs.reduce((n, r) => n + r[k].frames, 0),
        n: xs.length,
      };
    };
    const hls = figure('hls.js');
    const dash = figure('dash.js');
    const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
    const rows = [
      '| player | latency median | p95 | min – max | stalls | frames shown | samples |',
      '| --- | --- | --- | --- | --- | --- | --- |',
      ...(
        [
          ['hls.js (LL-HLS: parts, blocking playlist reload)', hls],
          ['dash.js (LL-DASH: chunked segments)', dash],
        ] as const
      ).map(
        ([name, f]) =>
          `| ${name} | ${s(f.median)} | ${s(f.p95)} | ${s(f.min)} – ${s(f.max)} | ${f.stalls} | ${f.frames} | ${f.n} |`,
      ),
    ];
    const verdict =
      hls.median <= GOAL_MS
        ? `hls.js meets the ${s(GOAL_MS)} goal (median ${s(hls.median)})`
        : `hls.js misses the ${s(GOAL_MS)} goal (median ${s(hls.median)})`;
    const body = [
      `${commandLine()}: ${RUNS} runs, each both players side by side for ${SECONDS} s after ${WARMUP_S} s of settling, sampled every ${SAMPLE_MS} ms; target ${s(TARGET_S * 1000)} (PART-HOLD-BACK and the MPD's ServiceDescription), catch-up up to rate 1.04 in both.`,
      '',
      `Machine: ${machine()}; ${chromium}; ${toolVersion('ffmpeg', ['-version'])}.`,
      '',
      ...rows,
      '',
      `Ratios hls.js ÷ dash.js: median ${(hls.median / dash.median).toFixed(2)}, p95 ${(hls.p95 / dash.p95).toFixed(2)}. ${verdict}.`,
    ].join('\n');
    console.log(`\n${body}\n`);
    if (opts.doc !== 'none')
      writeDocSection({ file: opts.doc!, name: 'bench-hls', writer: 'bench/hls.ts', body, title: 'LL-HLS' });
  } finally {
    await stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
