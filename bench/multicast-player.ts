/**
 * The multicast player against the unicast LL-DASH player, side by side on one origin at one latency
 * target, in Chromium on loopback: latency, stalls, how segments arrived (push, repaired by range, fetched),
 * healthy and with random loss on the multicast path.
 *   npm run bench:multicast [-- --healthy 600 --lossy 120 --target 1.5 --doc docs/multicast.md | none]
 *
 * - Server: one `pushcast serve` (test pattern, real ffmpeg, ladder 640x360@800k, `--target-latency`,
 *   multicast on a random group, pushed chunk by chunk, its own gateway).
 * - Pages: one browser, two contexts at once: `/?mode=dash` (unicast LL-DASH) and `/?mode=multicast` (the
 *   Service Worker and the gateway). Each phase samples both pages' `pushcastStats()` every 250 ms.
 * - Phases: healthy (`--healthy` s), then 1 % and 5 % random loss (`--lossy` s each) of the multicast
 *   datagrams (nftables `numgen random` on UDP to the sessions' ports, counting what it drops), with both
 *   pages restarted at each phase.
 * - Report: printed with the machine and the Chromium version, written between the bench-multicast-player
 *   markers of the doc. Everything it started (processes, nftables table, temporary directory) is removed
 *   at the end, on failure and on SIGINT/SIGTERM too.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium as playwright, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS } from '../test/support/browser.js';
import { playerStats, untilPlayerStats } from '../test/support/player-page.js';
import { startServe, type RunningServe } from '../test/support/pushcast-process.js';
import { writeDocSection } from './doc-section.js';
import { median, percentile } from './figures.js';
import { machine } from './machine.js';

const { values: opts } = parseArgs({
  options: {
    healthy: { type: 'string', default: '120' },
    lossy: { type: 'string', default: '60' },
    target: { type: 'string', default: '1.5' },
    doc: { type: 'string', default: 'docs/multicast.md' },
  },
});
const HEALTHY_S = Number(opts.healthy);
const LOSSY_S = Number(opts.lossy);
const TARGET_S = Number(opts.target);
for (const [name, v] of [
  ['healthy', HEALTHY_S],
  ['lossy', LOSSY_S],
  ['target', TARGET_S],
] as const)
  if (!(v > 0)) throw new Error(`--${name}: not a positive number`);
const LADDER = '640x360@800k';
const TABLE = `pushcast_bench_${process.pid}`;

const log = (line: string) => console.log(`multicast-player ${new Date().toISOString().slice(11, 19)} ${line}`);

function commandLine(): string {
  const given = process.argv.slice(2).join(' ');
  return process.env.npm_lifecycle_event === 'bench:multicast'
    ? `npm run bench:multicast${given ? ` -- ${given}` : ''}`
    : `node build/bench/multicast-player.js${given ? ` ${given}` : ''}`;
}

const stateDir = mkdtempSync(join(os.tmpdir(), 'pushcast-bench-mcp-'));
let serve: RunningServe | undefined;
let browser: Browser | undefined;
let nftables = false;

async function cleanup(): Promise<void> {
  if (nftables) {
    try {
      execFileSync('nft', ['delete', 'table', 'inet', TABLE]);
    } catch {
      // gone already
    }
  }
  await browser?.close().catch(() => {});
  await serve?.stop().catch(() => {});
  rmSync(stateDir, { recursive: true, force: true });
}
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => void cleanup().then(() => process.exit(130)));

/** Random loss of `percent` % of the UDP datagrams to `ports` on this host (multicast looped back included). */
function setLoss(ports: [number, number], percent: number): void {
  if (nftables) execFileSync('nft', ['delete', 'table', 'inet', TABLE]);
  nftables = true;
  const rules = `table inet ${TABLE} {
  chain input {
    type filter hook input priority -10; policy accept;
    udp dport ${ports[0]}-${ports[1]} numgen random mod 10000 < ${Math.round(percent * 100)} counter drop
  }
}`;
  execFileSync('nft', ['-f', '-'], { input: rules });
}

function dropped(): { packets: number; bytes: number } {
  if (!nftables) return { packets: 0, bytes: 0 };
  const text = execFileSync('nft', ['list', 'table', 'inet', TABLE], { encoding: 'utf8' });
  const m = /counter packets (\d+) bytes (\d+)/.exec(text);
  return { packets: Number(m?.[1] ?? 0), bytes: Number(m?.[2] ?? 0) };
}

interface Sampled {
  latencies: number[];
  stalls: number;
  framesShown: number;
}

/** What the multicast page's Service Worker did during the phase. */
interface Delivered {
  push: number;
  unicast: number;
  repairBytes: number;
}

interface PhaseResult {
  name: string;
  seconds: number;
  unicast: Sampled;
  multicast: Sampled;
  delivered: Delivered;
  lossPercent: number;
  dropped: { packets: number; bytes: number };
}

async function openPage(context: BrowserContext, url: string, mode: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(url, { waitUntil: 'load', timeout: 30_000 });
  await untilPlayerStats(page, `${mode} playing`, (s) => s.state === 'playing' && s.latencyMs !== null, {
    timeoutMs: 60_000,
    intervalMs: 200,
  });
  return page;
}

async function phase(name: string, seconds: number, lossPercent: number, base: string, ports: [number, number]) {
  if (lossPercent > 0) setLoss(ports, lossPercent);
  const contexts = await Promise.all([browser!.newContext(), browser!.newContext()]);
  try {
    const [unicastPage, multicastPage] = await Promise.all([
      openPage(contexts[0]!, `${base}?mode=dash`, 'unicast'),
      openPage(contexts[1]!, `${base}?mode=multicast`, 'multicast'),
    ]);
    // Past the start: the players reach their target, the Service Worker has its sessions.
    const settle = Date.now() + 10_000;
    while (Date.now() < settle) await new Promise((r) => setTimeout(r, 250));
    const start = await Promise.all([playerStats(unicastPage), playerStats(multicastPage)]);
    const droppedBefore = dropped();
    const samples: [number[], number[]] = [[], []];
    const end = Date.now() + seconds * 1000;
    while (Date.now() < end) {
      const now = await Promise.all([playerStats(unicastPage), playerStats(multicastPage)]);
      for (const [i, s] of now.entries())
        if (s?.latencyMs != null && s.state === 'playing') samples[i]!.push(s.latencyMs);
      await new Promise((r) => setTimeout(r, 250));
    }
    const last = await Promise.all([playerStats(unicastPage), playerStats(multicastPage)]);
    const after = dropped();
    const sampled = (i: 0 | 1): Sampled => ({
      latencies: samples[i],
      stalls: (last[i]?.stalls ?? 0) - (start[i]?.stalls ?? 0),
      framesShown: (last[i]?.framesShown ?? 0) - (start[i]?.framesShown ?? 0),
    });
    const [a, b] = [start[1]?.dash?.multicast, last[1]?.dash?.multicast];
    const delivered: Delivered = {
      push:
        (b?.segments.push ?? 0) + (b?.segments.repaired ?? 0) - (a?.segments.push ?? 0) - (a?.segments.repaired ?? 0),
      unicast: (b?.segments.unicast ?? 0) - (a?.segments.unicast ?? 0),
      repairBytes: (b?.repairBytes ?? 0) - (a?.repairBytes ?? 0),
    };
    const result: PhaseResult = {
      name,
      seconds,
      unicast: sampled(0),
      multicast: sampled(1),
      delivered,
      lossPercent,
      dropped: { packets: after.packets - droppedBefore.packets, bytes: after.bytes - droppedBefore.bytes },
    };
    log(`${name}: ${summary(result)}`);
    const mc = last[1]?.dash?.multicast;
    for (const f of mc?.failures ?? []) log(`  multicast failure: ${f}`);
    for (const x of mc?.sessions ?? [])
      log(
        `  session ${x.representation}: ${x.pushesCompleted} pushes, ${x.pushesFailed} failed, ${x.lost} packets lost, ${x.requestStreamSkips} promise-stream holes given up`,
      );
    return result;
  } finally {
    await Promise.all(contexts.map((c) => c.close().catch(() => {})));
  }
}

const ms = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? '–' : `${(x / 1000).toFixed(2)} s`);

function summary(r: PhaseResult): string {
  const u = median(r.unicast.latencies);
  const m = median(r.multicast.latencies);
  const d = r.delivered;
  return `latency unicast ${ms(u)}, multicast ${ms(m)}; stalls ${r.unicast.stalls}/${r.multicast.stalls}; segments pushed ${d.push}, fetched ${d.unicast}; repair ${d.repairBytes} B for ${r.dropped.bytes} B dropped`;
}

function report(results: PhaseResult[], chromium: string): string {
  const rows = results.map((r) => {
    const u = r.unicast.latencies;
    const m = r.multicast.latencies;
    const d = r.delivered;
    const segs = d.push + d.unicast;
    const ratio = r.dropped.bytes > 0 ? (d.repairBytes / r.dropped.bytes).toFixed(2) : '–';
    return `| ${r.name} | ${r.seconds} s | ${ms(median(u))} / ${ms(percentile(u, 95))} | ${ms(median(m))} / ${ms(percentile(m, 95))} | ${u.length && m.length ? `${((median(m) - median(u)) / 1000).toFixed(2)} s` : '–'} | ${r.unicast.stalls} / ${r.multicast.stalls} | ${segs ? ((100 * d.push) / segs).toFixed(1) : '–'} % (${d.push} of ${segs}) | ${r.dropped.packets} (${(r.dropped.bytes / 1e3).toFixed(1)} kB) | ${(d.repairBytes / 1e3).toFixed(1)} kB (${ratio}×) |`;
  });
  return [
    `Measured by \`${commandLine()}\` on ${machine()}, ${chromium}: one \`pushcast serve\` (${LADDER}, \`--target-latency ${TARGET_S}\`, multicast pushed chunk by chunk), the unicast LL-DASH page (\`/?mode=dash\`) and the multicast page (\`/?mode=multicast\`) playing side by side, sampled every 250 ms after 10 s of settling; segments and repairs counted over the same span (after joining). Latency: the player's own (\`pushcastStats().latencyMs\`, on the origin's clock). Loss: nftables drops that share of the multicast datagrams before the gateway.`,
    '',
    '| phase | length | unicast latency median / p95 | multicast latency median / p95 | multicast − unicast (medians) | stalls unicast / multicast | segments by multicast | datagrams dropped | repaired by range (÷ dropped) |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

try {
  log(`machine: ${machine()}`);
  const group = `232.112.${200 + Math.floor(Math.random() * 50)}.1`;
  const port = 30_000 + Math.floor(Math.random() * 20_000);
  serve = await startServe(
    [
      '--ladder',
      LADDER,
      '--target-latency',
      String(TARGET_S),
      '--multicast-group',
      group,
      '--multicast-port',
      String(port),
      '--state-dir',
      stateDir,
      '--host',
      '0.0.0.0',
    ],
    { timeoutMs: 60_000 },
  );
  // One rendition of video, one of audio: two sessions.
  const ports: [number, number] = [port, port + 1];
  browser = await playwright.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_ARGS],
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
  });
  const chromium = `Chromium ${browser.version()}`;
  const results: PhaseResult[] = [];
  results.push(await phase('healthy', HEALTHY_S, 0, serve.player, ports));
  for (const loss of [1, 5]) results.push(await phase(`${loss} % loss`, LOSSY_S, loss, serve.player, ports));
  const text = report(results, chromium);
  console.log(text);
  if (opts.doc !== 'none') {
    writeDocSection({
      file: opts.doc!,
      name: 'bench-multicast-player',
      writer: 'npm run bench:multicast',
      body: text,
      title: 'Multicast',
    });
    log(`written into ${opts.doc}`);
  }
} finally {
  await cleanup();
}
