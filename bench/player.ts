/**
 * The player (`<pushcast-player>`, src/web/player) in Chromium on loopback: how soon each delivery mode
 * shows a picture, the unified player against the page forced to that mode, and what each kind of move
 * between modes costs the viewer under real failures.
 *   npm run bench:player [-- --runs 5] [--moves 3] [--doc docs/player.md | none]
 *
 * - Server: one `pushcast serve` (test pattern, real ffmpeg, ladder 640x360@800k, HTTP/3, multicast on a
 *   random group) whose multicast gateway is a separate `pushcast gateway` process, so that it can be
 *   killed and started again.
 * - First frame (`--runs` per mode and page kind, interleaved): each run a fresh browser context (no
 *   cache, no Service Worker, no connection left from another run), navigated to the unified page with
 *   the mode first (`/?order=<mode>,<another>`: a one-mode order would be forced) or to the forced page
 *   (`/multicast/`, `/warp/?transport=…`, `/?mode=dash`). The first frame is performance.now() (ms from
 *   navigation start) of the first requestVideoFrameCallback of the player's video on screen; with it,
 *   the JavaScript the page had downloaded by then (Resource Timing of .js resources finished before).
 * - Moves (`--moves` of each kind, on one page per failure): the gateway killed (multicast → Warp over
 *   WebTransport) and started again (back to multicast after the hold-down); UDP to the origin's QUIC
 *   port dropped by nftables (WebTransport → the WebSocket fallback) and let through (back). The figures
 *   are the player's own (`pushcastStats().moves`): picture and sound frozen, latency 2 s after.
 * - Report: printed with the machine and the Chromium version, and written between the bench-player
 *   markers of docs/player.md. Everything it started (processes, nftables tables, temporary directories)
 *   is removed at the end, on failure and on SIGINT/SIGTERM too.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium as playwright, type Browser, type Page } from 'playwright-core';
import type { PlayerMove, PlayerStats } from '../src/web/player/stats.js';
import { CHROMIUM, CHROMIUM_ARGS } from '../test/support/browser.js';
import { NetworkLab, type Loss } from '../test/support/netns.js';
import { runPushcast, startServe, type RunningPushcast, type RunningServe } from '../test/support/pushcast-process.js';
import { playerStats, untilPlayerStats } from '../test/support/player-page.js';
import { writeDocSection } from './doc-section.js';
import { median, percentile } from './figures.js';
import { machine } from './machine.js';

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    moves: { type: 'string', default: '3' },
    holddown: { type: 'string', default: '8000' },
    doc: { type: 'string', default: 'docs/player.md' },
  },
});

function count(name: string, value: string | undefined): number {
  const x = Number(value);
  if (!Number.isInteger(x) || x < 1) throw new Error(`--${name}: ${value} is not a positive integer`);
  return x;
}

const RUNS = count('runs', opts.runs);
const MOVES = count('moves', opts.moves);
const HOLD_DOWN_MS = count('holddown', opts.holddown);
const LADDER = '640x360@800k';
/** At most 200 ms of picture or sound frozen: a move the viewer hardly notices. */
const UNNOTICED_MS = 200;

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const PLAYER_JS = fileURLToPath(new URL('../web/player/', import.meta.url));
const SW_JS = fileURLToPath(new URL('../web/sw.js', import.meta.url));

const log = (line: string) => console.log(`player ${new Date().toISOString().slice(11, 19)} ${line}`);

function commandLine(): string {
  const given = process.argv.slice(2).join(' ');
  return process.env.npm_lifecycle_event === 'bench:player'
    ? `npm run bench:player${given ? ` -- ${given}` : ''}`
    : `node build/bench/player.js${given ? ` ${given}` : ''}`;
}

/** A TCP port free now on loopback: the gateway must come back on the same one. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** The bundle's dash.js chunk (the one that holds dash.js's MediaPlayer) and its size. */
function dashChunk(): { name: string; bytes: number } | undefined {
  for (const name of readdirSync(PLAYER_JS).filter((f) => f.endsWith('.js'))) {
    const text = readFileSync(join(PLAYER_JS, name), 'utf8');
    if (/MediaPlayerFactory/.test(text)) return { name, bytes: text.length };
  }
  return undefined;
}

// ─── first frame ──────────────────────────────────────────────────────────────────────────────

const MODES = ['multicast', 'warp-webtransport', 'warp-websocket', 'dash'] as const;
type Mode = (typeof MODES)[number];
type Kind = 'unified' | 'forced';

/** The unified page with `mode` first (two modes: one alone would be forced), and the page forced to it. */
const PAGES: Record<Mode, Record<Kind, string>> = {
  multicast: { unified: '?order=multicast,warp-webtransport', forced: 'multicast/' },
  'warp-webtransport': { unified: '?order=warp-webtransport,dash', forced: 'warp/?transport=webtransport' },
  'warp-websocket': { unified: '?order=warp-websocket,dash', forced: 'warp/?transport=websocket' },
  dash: { unified: '?order=dash,warp-websocket', forced: '?mode=dash' },
};

/** Marks the first frame of the player's video on screen; runs before any script of the page. */
const FIRST_FRAME_PROBE = `(() => {
  const mark = { firstFrame: null };
  window.__pcb = mark;
  const poll = () => {
    const v = document.querySelector('pushcast-player')?.player?.video;
    if (v && !v.__pcbWatched && v.requestVideoFrameCallback) {
      v.__pcbWatched = true;
      v.requestVideoFrameCallback(() => { if (mark.firstFrame === null) mark.firstFrame = performance.now(); });
    }
    if (mark.firstFrame === null) setTimeout(poll, 5);
  };
  poll();
})();`;

interface FirstFrameRun {
  mode: Mode;
  kind: Kind;
  /** ms from navigation start; null when no frame came within the timeout. */
  firstFrameMs: number | null;
  /** The mode on screen at the first frame (the unified page may have fallen back). */
  playedMode: string | null;
  /** .js resources finished before the first frame: bytes over the wire and their names. */
  jsTransfer: number;
  jsFiles: string[];
  serviceWorker: boolean;
  error?: string;
}

async function firstFrameRun(browser: Browser, base: string, mode: Mode, kind: Kind): Promise<FirstFrameRun> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  try {
    const page = await context.newPage();
    await page.addInitScript(FIRST_FRAME_PROBE);
    await page.goto(`${base}${PAGES[mode][kind]}`, { waitUntil: 'commit', timeout: 30_000 });
    try {
      await page.waitForFunction(
        () => (window as unknown as { __pcb: { firstFrame: number | null } }).__pcb.firstFrame !== null,
        null,
        { timeout: 30_000, polling: 20 },
      );
    } catch (error) {
      const s = await stats(page).catch(() => null);
      return {
        mode,
        kind,
        firstFrameMs: null,
        playedMode: s?.mode ?? null,
        jsTransfer: 0,
        jsFiles: [],
        serviceWorker: false,
        error: `${(error as Error).message.split('\n')[0]}; ${s?.message || s?.errors.at(-1) || ''}`,
      };
    }
    const seen = await page.evaluate(() => {
      const first = (window as unknown as { __pcb: { firstFrame: number } }).__pcb.firstFrame;
      const js = (performance.getEntriesByType('resource') as PerformanceResourceTiming[]).filter(
        (e) => new URL(e.name).pathname.endsWith('.js') && e.responseEnd <= first,
      );
      return {
        first,
        mode: (window as unknown as { pushcastStats: () => PlayerStats | null }).pushcastStats()?.mode ?? null,
        jsTransfer: js.reduce((n, e) => n + e.transferSize, 0),
        jsFiles: js.map((e) => new URL(e.name).pathname),
        serviceWorker: !!navigator.serviceWorker?.controller,
      };
    });
    // Leaving the page ends its sessions at the origin and the gateway (pagehide), before the next run.
    await page.goto('about:blank').catch(() => {});
    return {
      mode,
      kind,
      firstFrameMs: seen.first,
      playedMode: seen.mode,
      jsTransfer: seen.jsTransfer,
      jsFiles: seen.jsFiles,
      serviceWorker: seen.serviceWorker,
    };
  } finally {
    await context.close().catch(() => {});
  }
}

// ─── moves ────────────────────────────────────────────────────────────────────────────────────

const stats = playerStats;
const untilStats = (page: Page, what: string, ok: (s: PlayerStats) => boolean, ms?: number) =>
  untilPlayerStats(page, what, ok, { timeoutMs: ms, intervalMs: 100 });

/** Waits until the page has shown `frames` more frames: playback advances on the mode now on screen. */
async function advances(page: Page, what: string, frames = 50): Promise<void> {
  const from = (await stats(page))?.framesShown ?? 0;
  await untilStats(page, `${what}: ${frames} more frames`, (s) => s.framesShown >= from + frames, 20_000);
}

/** The `n`th move (0: the start), once it happened and its figures are in (frozen times, latency 2 s after). */
async function move(page: Page, what: string, n: number, ms: number): Promise<PlayerMove> {
  await untilStats(page, what, (s) => s.moves.length > n, ms);
  // The picture's freeze is known at the new element's first frame after the swap (or never, after 3 s),
  // the latency 2 s after the swap.
  const done = (m: PlayerMove | undefined) => m !== undefined && m.frozenMs !== null && m.latencyAfterMs !== null;
  const s = await untilStats(page, `${what}: its figures`, (x) => done(x.moves[n]), 5000).catch(() => null);
  return (s ?? (await stats(page)))!.moves[n]!;
}

interface MoveRecord {
  kind: string;
  cause: string;
  move: PlayerMove;
  /** ms for the new mode to play beside the old one (the attempt that led to the swap). */
  readyMs: number | null;
}

/** What led to each move: the ready attempts and the swaps happen one for one, in the same order. */
function withReadyTimes(s: PlayerStats): { move: PlayerMove; readyMs: number | null }[] {
  const ready = s.attempts.filter((a) => a.result === 'ready');
  return s.moves.map((move, i) => ({ move, readyMs: ready.length === s.moves.length ? ready[i]!.ms : null }));
}

// ─── the report ───────────────────────────────────────────────────────────────────────────────

const fmt = (x: number | undefined | null) =>
  x === undefined || x === null || Number.isNaN(x) ? '–' : `${Math.round(x)}`;
const kB = (bytes: number) => `${(bytes / 1000).toFixed(bytes < 10_000 ? 1 : 0)} kB`;

function firstFrameTable(runs: FirstFrameRun[], dash: { name: string; bytes: number } | undefined): string[] {
  const rows = [
    '| mode | unified: median / p90 | forced: median / p90 | unified ÷ forced (medians) | JS before the first frame: unified / forced | dash.js: unified / forced |',
    '| --- | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const mode of MODES) {
    const cell = (kind: Kind) => {
      const mine = runs.filter((r) => r.mode === mode && r.kind === kind);
      const ok = mine.filter((r) => r.firstFrameMs !== null);
      const ms = ok.map((r) => r.firstFrameMs!);
      const fellBack = ok.filter((r) => r.playedMode !== mode);
      const notes = [
        ok.length < mine.length ? `${mine.length - ok.length} of ${mine.length} showed no frame in 30 s` : '',
        fellBack.length
          ? `${fellBack.length} played ${[...new Set(fellBack.map((r) => r.playedMode))].join(', ')}`
          : '',
      ].filter(Boolean);
      const loaded = dash ? ok.filter((r) => r.jsFiles.some((f) => f.endsWith(`/${dash.name}`))).length : 0;
      return {
        median: median(ms),
        time: `${fmt(median(ms))} / ${fmt(percentile(ms, 90))} ms${notes.length ? ` (${notes.join('; ')})` : ''}`,
        js: ok.length
          ? `${kB(median(ok.map((r) => r.jsTransfer)))}${ok.some((r) => r.serviceWorker) ? ' + SW' : ''}`
          : '–',
        dash: loaded === 0 ? 'no' : loaded === ok.length ? 'yes' : `${loaded} of ${ok.length}`,
      };
    };
    const u = cell('unified');
    const f = cell('forced');
    rows.push(
      `| ${mode} | ${u.time} | ${f.time} | ${Number.isNaN(u.median / f.median) ? '–' : (u.median / f.median).toFixed(2)} | ${u.js} / ${f.js} | ${u.dash} / ${f.dash} |`,
    );
  }
  return rows;
}

function movesTable(records: MoveRecord[]): string[] {
  const rows = [
    '| move | cause | n | picture frozen: median / max | sound frozen: median / max | latency 2 s after: median / max | picture ≤ 200 ms | sound ≤ 200 ms | new mode ready in (median) |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  const kinds = [...new Set(records.map((r) => r.kind))];
  for (const kind of kinds) {
    const mine = records.filter((r) => r.kind === kind);
    const pick = (f: (m: PlayerMove) => number | null) =>
      mine.map((r) => f(r.move)).filter((x): x is number => x !== null);
    const picture = pick((m) => m.frozenMs);
    const sound = pick((m) => m.audioFrozenMs);
    const latency = pick((m) => m.latencyAfterMs);
    const pair = (xs: number[]) => (xs.length ? `${fmt(median(xs))} / ${fmt(Math.max(...xs))} ms` : '–');
    const unmeasured = mine.length - picture.length;
    rows.push(
      `| ${kind} | ${mine[0]!.cause} | ${mine.length} | ${pair(picture)}${unmeasured ? ` (${unmeasured} unmeasured)` : ''} | ${pair(sound)} | ${pair(latency)} | ${picture.filter((x) => x <= UNNOTICED_MS).length} of ${mine.length} | ${sound.filter((x) => x <= UNNOTICED_MS).length} of ${mine.length} | ${fmt(median(mine.map((r) => r.readyMs).filter((x): x is number => x !== null)))} ms |`,
    );
  }
  return rows;
}

// ─── the run ──────────────────────────────────────────────────────────────────────────────────

const stateDir = mkdtempSync(join(os.tmpdir(), 'pushcast-bench-player-'));
let serve: RunningServe | undefined;
let gateway: RunningPushcast | undefined;
let browser: Browser | undefined;
let lab: NetworkLab | undefined;
let blocked: Loss | undefined;
let cleaning: Promise<void> | undefined;

/** Stops everything the bench started; once, however often called (a signal may come during the run). */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    blocked?.remove();
    lab?.close();
    await browser?.close().catch(() => {});
    await gateway?.stop('SIGKILL');
    await serve?.stop();
    rmSync(stateDir, { recursive: true, force: true });
  })();
  return cleaning;
}

/** After each thing started: if cleanup ran meanwhile (a signal), stop it too and end the run. */
async function stillRunning(stop: () => unknown): Promise<void> {
  if (!cleaning) return;
  await stop();
  throw new Error('stopped by a signal');
}

for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => void cleanup().then(() => process.exit(130)));

try {
  const m = machine();
  log(`machine: ${m}`);
  const gatewayPort = await freePort();
  const group = `232.112.${200 + Math.floor(Math.random() * 50)}.1`;
  const multicastPort = 30_000 + Math.floor(Math.random() * 20_000);
  serve = await startServe(
    [
      '--ladder',
      LADDER,
      '--multicast-group',
      group,
      '--multicast-port',
      String(multicastPort),
      '--state-dir',
      stateDir,
      '--gateway-url',
      `ws://127.0.0.1:${gatewayPort}/multicast/gateway`,
      // Dual stack: Chromium tries ::1 for localhost and, over QUIC, does not fall back to 127.0.0.1.
      '--host',
      '0.0.0.0',
    ],
    { timeoutMs: 60_000 },
  );
  await stillRunning(() => serve!.stop());
  const base = serve.player;
  const quicPort = new URL((await serve.waitForLine(/^https player: /)).replace(/^https player: /, '')).port;
  const startGateway = async () => {
    gateway = runPushcast('gateway', [
      '--origin',
      serve!.manifest,
      '--host',
      '127.0.0.1',
      '--port',
      String(gatewayPort),
      '--allow-origin',
      new URL(base).origin,
    ]);
    const started = gateway;
    await stillRunning(() => started.stop('SIGKILL'));
    await gateway.waitForLine(/^gateway: ws:/, 10_000);
  };
  await startGateway();
  // The tests' Chromium, without Playwright's own signal handlers: they would exit before cleanup() ran.
  browser = await playwright.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS],
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
  });
  await stillRunning(() => browser!.close());
  const chromium = `Chromium ${browser.version()}`;
  log(
    `${chromium}; origin ${base} (QUIC port ${quicPort}), gateway on ${gatewayPort}, multicast ${group}:${multicastPort}`,
  );
  lab = NetworkLab.create();
  await stillRunning(() => lab!.close());
  const dash = dashChunk();
  const swBytes = readFileSync(SW_JS).length;

  // A run nobody counts: the origin's first segments, its JIT and the gateway's first session warm up.
  await firstFrameRun(browser, base, 'multicast', 'unified');

  const runs: FirstFrameRun[] = [];
  for (let i = 0; i < RUNS; i++)
    for (const mode of MODES)
      for (const kind of (i % 2 ? ['forced', 'unified'] : ['unified', 'forced']) as Kind[]) {
        const r = await firstFrameRun(browser, base, mode, kind);
        runs.push(r);
        log(
          `first frame ${i + 1}/${RUNS} ${mode} ${kind}: ${r.firstFrameMs === null ? `none (${r.error})` : `${Math.round(r.firstFrameMs)} ms on ${r.playedMode}, ${kB(r.jsTransfer)} of JS`}`,
        );
      }

  const records: MoveRecord[] = [];
  const keep = (s: PlayerStats, label: (m: PlayerMove) => { kind: string; cause: string }) => {
    for (const { move: mv, readyMs } of withReadyTimes(s).slice(1)) records.push({ ...label(mv), move: mv, readyMs });
  };
  const pairOf = (mv: PlayerMove) => `${mv.from} → ${mv.to}`;

  // Multicast: the gateway killed, then started again, MOVES times on one page.
  {
    const page = await browser.newPage();
    try {
      await page.goto(`${base}?holddown=${HOLD_DOWN_MS}`);
      await untilStats(page, 'multicast playing', (s) => s.mode === 'multicast' && s.state === 'playing', 40_000);
      await advances(page, 'multicast');
      let n = 1;
      for (let k = 0; k < MOVES; k++) {
        await gateway!.stop('SIGKILL');
        const off = await move(page, `move ${n} (gateway killed)`, n, 40_000);
        n++;
        log(`gateway killed: ${pairOf(off)}, picture ${off.frozenMs} ms, sound ${off.audioFrozenMs} ms`);
        await startGateway();
        const back = await move(page, `move ${n} (gateway back)`, n, 60_000);
        n++;
        log(`gateway back: ${pairOf(back)}, picture ${back.frozenMs} ms, sound ${back.audioFrozenMs} ms`);
        await advances(page, 'after the move back');
      }
      keep((await stats(page))!, (mv) =>
        mv.from === 'multicast'
          ? { kind: pairOf(mv), cause: 'gateway killed' }
          : mv.to === 'multicast'
            ? { kind: pairOf(mv), cause: `gateway back, after the ${HOLD_DOWN_MS / 1000} s hold-down` }
            : { kind: pairOf(mv), cause: mv.cause },
      );
    } catch (error) {
      if (cleaning) throw error;
      log(`multicast moves stopped: ${(error as Error).message}`);
      const s = await stats(page).catch(() => null);
      if (s) keep(s, (mv) => ({ kind: pairOf(mv), cause: mv.cause }));
      if (gateway && (gateway.child.exitCode !== null || gateway.child.signalCode !== null)) await startGateway();
    } finally {
      await page.close();
    }
  }

  // WebTransport: UDP to the QUIC port dropped, then let through, MOVES times on one page.
  {
    const page = await browser.newPage();
    try {
      await page.goto(`${base}?order=warp-webtransport,warp-websocket,dash&holddown=${HOLD_DOWN_MS}`);
      await untilStats(page, 'WebTransport playing', (s) => s.mode === 'warp-webtransport' && s.state === 'playing');
      await advances(page, 'WebTransport');
      let n = 1;
      for (let k = 0; k < MOVES; k++) {
        blocked = lab.loss(undefined, 100, ['udp', 'dport', quicPort]);
        await stillRunning(() => blocked?.remove());
        const off = await move(page, `move ${n} (UDP dropped)`, n, 30_000);
        n++;
        log(`UDP dropped: ${pairOf(off)}, picture ${off.frozenMs} ms, sound ${off.audioFrozenMs} ms`);
        blocked.remove();
        blocked = undefined;
        const back = await move(page, `move ${n} (UDP let through)`, n, 60_000);
        n++;
        log(`UDP let through: ${pairOf(back)}, picture ${back.frozenMs} ms, sound ${back.audioFrozenMs} ms`);
        await advances(page, 'after the move back');
      }
      keep((await stats(page))!, (mv) =>
        mv.from === 'warp-webtransport'
          ? { kind: pairOf(mv), cause: 'UDP to the QUIC port dropped' }
          : mv.to === 'warp-webtransport'
            ? { kind: pairOf(mv), cause: `UDP let through, after the ${HOLD_DOWN_MS / 1000} s hold-down` }
            : { kind: pairOf(mv), cause: mv.cause },
      );
    } catch (error) {
      if (cleaning) throw error;
      log(`WebTransport moves stopped: ${(error as Error).message}`);
      const s = await stats(page).catch(() => null);
      if (s) keep(s, (mv) => ({ kind: pairOf(mv), cause: mv.cause }));
    } finally {
      blocked?.remove();
      blocked = undefined;
      await page.close();
    }
  }

  const date = new Date().toISOString().slice(0, 10);
  const body = [
    `\`${commandLine()}\`, ${date}: one \`pushcast serve\` (ladder ${LADDER} + audio, 2 s segments, target 3 s) with a separate \`pushcast gateway\`, Chromium on loopback.`,
    `Machine: ${m}; ${chromium} headless.`,
    '',
    `Time to the first frame, ${RUNS} runs of each page, interleaved, each in a fresh browser context (ms from navigation start to the first \`requestVideoFrameCallback\` of the player's video on screen). The unified player shows a mode's picture once it plays by its own path (multicast: a segment pushed, not only the unicast fallback), the forced page as soon as it has one. JS: bytes of .js the page downloaded before its first frame, median ("+ SW": and the multicast Service Worker's script, ${kB(swBytes)}, which the page's Resource Timing does not list)${dash ? `; dash.js is a chunk of ${kB(dash.bytes)}, loaded only by the modes that use it` : ''}.`,
    `Pages: unified ${MODES.map((x) => `\`/${PAGES[x].unified}\``).join(', ')}; forced ${MODES.map((x) => `\`/${PAGES[x].forced}\``).join(', ')}.`,
    '',
    ...firstFrameTable(runs, dash),
    '',
    `Moves, ${MOVES} of each kind, one page per failure (\`/?holddown=${HOLD_DOWN_MS}\`, and \`/?order=warp-webtransport,warp-websocket,dash&holddown=${HOLD_DOWN_MS}\`); the player's own figures (\`pushcastStats().moves\`): picture frozen, sound frozen, latency 2 s after the swap; "new mode ready in": how long the new mode took to play beside the old one.`,
    '',
    ...movesTable(records),
  ].join('\n');
  console.log(`\n${body}\n`);
  if (opts.doc !== 'none') {
    const file = join(REPO, opts.doc);
    writeDocSection({ file, name: 'bench-player', writer: 'bench/player.ts', body, title: 'The player' });
    log(`wrote ${file}`);
  }
} finally {
  await cleanup();
}
