/**
 * docs/push-comparison.md and docs/push-comparison.svg from one run's results. Everything printed is a
 * measured value or a count of measured events; the only arithmetic is medians, ranges and ratios.
 */
import { summarize, type Summary } from '../figures.js';
import { machine, type Machine } from '../machine.js';
import type { BrowserBytes, BrowserRun } from './chromium.js';
import type { LiveTiming } from './mpd.js';
import type { LiveResult, StartupResult } from './node-client.js';

/** Rows of the table: the four modes, and on-demand again on origin B as a control. */
export type RowKey = 'on-demand' | 'prefetch' | 'early-hints' | 'push' | 'control';

export interface BrowserSample {
  run: BrowserRun;
  bytes: BrowserBytes;
}

export interface Results {
  startedAt: string;
  durationS: number;
  machine: Machine & { chromium: string; ffmpeg: string };
  network: 'netem' | 'delay-line';
  config: {
    rtts: number[];
    nodeReps: number;
    browserReps: number;
    liveSegments: number;
    phase: number;
    settleMs: number;
    ladder: string;
    segmentDuration: number;
  };
  origins: { a: string; b: string };
  /** The MPD timing of each origin process (each anchors its availability times on its own encoder start). */
  timings: Partial<Record<'A' | 'B', LiveTiming>>;
  startup: Record<number, Partial<Record<RowKey, StartupResult[]>>>;
  browser: Record<number, Partial<Record<RowKey, BrowserSample[]>>>;
  live: Record<number, Partial<Record<RowKey, LiveResult>>>;
  /** Changes of the origin's counters over each batch of runs. */
  counters: { label: string; rtt: number; delta: Record<string, number> }[];
  retries: number;
}

const ROWS: { key: RowKey; label: string }[] = [
  { key: 'on-demand', label: 'on-demand (baseline)' },
  { key: 'prefetch', label: 'prefetch' },
  { key: 'early-hints', label: '103 Early Hints' },
  { key: 'push', label: 'HTTP/2 push' },
  { key: 'control', label: 'on-demand on origin A (control)' },
];

const CHART_MODES: { key: RowKey; label: string; color: string }[] = [
  { key: 'on-demand', label: 'on-demand', color: '#6b7280' },
  { key: 'prefetch', label: 'prefetch', color: '#2563eb' },
  { key: 'early-hints', label: '103 Early Hints', color: '#d97706' },
  { key: 'push', label: 'HTTP/2 push', color: '#059669' },
];

export function ms(x: number): string {
  return Math.abs(x) < 10 ? x.toFixed(1) : x.toFixed(0);
}

export function bytes(x: number): string {
  if (Math.abs(x) < 1000) return `${Math.round(x)} B`;
  if (Math.abs(x) < 1e6) return `${(x / 1000).toFixed(1)} kB`;
  return `${(x / 1e6).toFixed(2)} MB`;
}

function ratio(value: Summary | undefined, base: Summary | undefined): string {
  if (!value || !base || value.median <= 0 || base.median <= 0) return '';
  return `, ×${(value.median / base.median).toFixed(2)}`;
}

function cell(s: Summary | undefined, base: Summary | undefined, isBase: boolean): string {
  if (!s) return '–';
  return `${ms(s.median)} (${ms(s.min)}–${ms(s.max)})${isBase ? '' : ratio(s, base)}`;
}

export const startupSummary = (r: Results, rtt: number, k: RowKey) =>
  summarize((r.startup[rtt]?.[k] ?? []).map((x) => x.startupMs));
export const frameSummary = (r: Results, rtt: number, k: RowKey) =>
  summarize((r.browser[rtt]?.[k] ?? []).map((x) => x.run.firstFrameMs));
export const liveSummary = (r: Results, rtt: number, k: RowKey) =>
  summarize((r.live[rtt]?.[k]?.segments ?? []).map((x) => x.latencyMs));

/** The main table: one row per mode and RTT. */
export function table(r: Results): string {
  const lines = [
    '| RTT | mode | startup, Node (ms) | first frame, Chromium (ms) | live-edge latency (ms) | not used: Node startup | not used: Chromium | not used: live edge |',
    '| ---: | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const rtt of r.config.rtts) {
    const base = {
      s: startupSummary(r, rtt, 'on-demand'),
      f: frameSummary(r, rtt, 'on-demand'),
      l: liveSummary(r, rtt, 'on-demand'),
    };
    for (const { key, label } of ROWS) {
      const isBase = key === 'on-demand';
      const startup = cell(startupSummary(r, rtt, key), base.s, isBase);
      const frame =
        key === 'push' ? 'not in Chromium¹' : key === 'control' ? '–' : cell(frameSummary(r, rtt, key), base.f, isBase);
      const live =
        key === 'early-hints' ? 'n/a²' : key === 'control' ? '–' : cell(liveSummary(r, rtt, key), base.l, isBase);
      const nodeWaste = summarize((r.startup[rtt]?.[key] ?? []).map((x) => x.wastedBytes));
      const browserWaste = summarize((r.browser[rtt]?.[key] ?? []).map((x) => x.bytes.wasted));
      const liveRun = r.live[rtt]?.[key];
      lines.push(
        `| ${rtt} ms | ${label} | ${startup} | ${frame} | ${live} | ${nodeWaste ? `${bytes(nodeWaste.median)} (max ${bytes(nodeWaste.max)})` : '–'} | ${
          browserWaste
            ? `${bytes(browserWaste.median)} (max ${bytes(browserWaste.max)})`
            : key === 'push'
              ? 'not in Chromium¹'
              : '–'
        } | ${liveRun ? bytes(liveRun.extraBytes) : key === 'early-hints' ? 'n/a²' : '–'} |`,
      );
    }
  }
  return lines.join('\n');
}

/** Medians of when things happened in the Chromium runs, to explain the first-frame column. */
function browserTimeline(r: Results): string {
  const lines = [
    '| RTT | mode | 103 at | player.js loaded | MPD in hand | first video segment in hand | first frame |',
    '| ---: | --- | --- | --- | --- | --- | --- |',
  ];
  const med = (xs: (number | undefined)[]) => {
    const s = summarize(xs.filter((x): x is number => x !== undefined && x > 0));
    return s ? ms(s.median) : '–';
  };
  for (const rtt of r.config.rtts) {
    for (const { key, label } of ROWS) {
      const runs = (r.browser[rtt]?.[key] ?? []).map((x) => x.run);
      if (!runs.length) continue;
      const end = (run: BrowserRun, test: (path: string, e: BrowserRun['resources'][number]) => boolean) =>
        run.resources
          .filter((e) => test(new URL(e.name).pathname, e))
          .map((e) => e.responseEnd)
          .sort((a, b) => a - b)[0];
      lines.push(
        `| ${rtt} ms | ${label} | ${med(runs.map((x) => x.interimMs))} | ${med(runs.map((x) => end(x, (p) => p === '/player.js')))} | ${med(
          runs.map((x) => end(x, (p, e) => p === '/live/manifest.mpd' && e.initiatorType !== 'fetch')),
        )} | ${med(runs.map((x) => end(x, (p) => /^\/live\/video-[^/]+\/\d+\.m4s$/.test(p))))} | ${med(runs.map((x) => x.firstFrameMs))} |`,
      );
    }
  }
  return lines.join('\n');
}

function counterSum(delta: Record<string, number>, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const [k, v] of Object.entries(delta)) {
    if (!k.startsWith(`${name}{`) && k !== name) continue;
    if (Object.entries(labels).every(([l, val]) => k.includes(`${l}="${val}"`))) sum += v;
  }
  return sum;
}

/** What the run verified about itself: protocols, 103 handling, pushes, and where modes did not line up. */
function checks(r: Results): string[] {
  const out: string[] = [];
  const allBrowser = r.config.rtts.flatMap((rtt) =>
    ROWS.flatMap(({ key }) => (r.browser[rtt]?.[key] ?? []).map((x) => ({ rtt, key, ...x }))),
  );
  const h2 = allBrowser.filter((x) => x.run.protocol === 'h2').length;
  const liveH2 = allBrowser.filter((x) =>
    x.run.resources
      .filter((e) => e.name.includes('/live/') && e.transferSize > 0)
      .every((e) => e.nextHopProtocol === 'h2'),
  ).length;
  out.push(
    `Chromium loaded the page over **${h2 === allBrowser.length ? 'h2' : 'not always h2'}** in ${h2} of ${allBrowser.length} runs; every /live/ resource it fetched went over h2 in ${liveH2} of ${allBrowser.length} runs (Resource Timing \`nextHopProtocol\`).`,
  );

  const eh = allBrowser.filter((x) => x.key === 'early-hints');
  const others = allBrowser.filter((x) => x.key !== 'early-hints');
  const with103 = eh.filter((x) => x.run.interimMs > 0).length;
  const hinted = eh.reduce((n, x) => n + x.run.hinted.length, 0);
  const used = eh.reduce((n, x) => n + x.bytes.hintsUsed.length, 0);
  out.push(
    `Early Hints in Chromium: the navigation got its 103 in ${with103} of ${eh.length} runs (Navigation Timing \`firstInterimResponseStart\`); ` +
      `of ${hinted} hinted resources, ${used} were taken by the page from Chromium's preload (Resource Timing entries with \`initiatorType: "early-hints"\`, \`deliveryType: "cache"\`). ` +
      `On-demand and prefetch runs (origin A) had no 103: ${others.filter((x) => x.run.interimMs === 0).length} of ${others.length}.`,
  );
  for (const rtt of r.config.rtts) {
    const byPath = new Map<string, { used: number; total: number }>();
    for (const x of eh.filter((x) => x.rtt === rtt)) {
      for (const p of x.run.hinted) {
        const kind = p.replace(/\d+\.m4s$/, '<newest>.m4s');
        const c = byPath.get(kind) ?? { used: 0, total: 0 };
        c.total++;
        if (x.bytes.hintsUsed.includes(p)) c.used++;
        byPath.set(kind, c);
      }
    }
    if (byPath.size)
      out.push(
        `Hinted resources the page used, ${rtt} ms (runs): ${[...byPath].map(([p, c]) => `\`${p}\` ${c.used}/${c.total}`).join(', ')}.`,
      );
  }

  const counters = (label: string) => r.counters.filter((c) => c.label === label);
  const ehBatches = counters('chromium, origin B');
  if (ehBatches.length) {
    const page = ehBatches.reduce(
      (n, c) => n + counterSum(c.delta, 'pushcast_early_hints_total', { route: 'page' }),
      0,
    );
    const mpdReq = ehBatches.reduce(
      (n, c) => n + counterSum(c.delta, 'pushcast_http_requests_total', { route: 'mpd' }),
      0,
    );
    out.push(
      `Origin counters over the Chromium early-hints runs: \`pushcast_early_hints_total{route="page"}\` +${page}, MPD requests answered +${mpdReq} for ${eh.length} page loads (Chromium's preload plus the player's own request when the preload was not used).`,
    );
  }
  const pushBatches = counters('node startup, origin B');
  if (pushBatches.length) {
    const sent = pushBatches.reduce(
      (n, c) => n + counterSum(c.delta, 'pushcast_http2_pushes_total', { kind: 'manifest', outcome: 'sent' }),
      0,
    );
    const cancelled = pushBatches.reduce(
      (n, c) => n + counterSum(c.delta, 'pushcast_http2_pushes_total', { outcome: 'cancelled' }),
      0,
    );
    const runs = r.config.rtts.reduce((n, rtt) => n + (r.startup[rtt]?.push?.length ?? 0), 0);
    out.push(
      `Origin counters over the Node startup runs on origin B: ${sent} pushes sent with the MPD for ${runs} push-mode runs, ${cancelled} reset by the client.`,
    );
  }
  const liveBatches = counters('live push');
  if (liveBatches.length) {
    const sent = liveBatches.reduce(
      (n, c) => n + counterSum(c.delta, 'pushcast_http2_pushes_total', { kind: 'channel', outcome: 'sent' }),
      0,
    );
    const cancelled = liveBatches.reduce(
      (n, c) => n + counterSum(c.delta, 'pushcast_http2_pushes_total', { kind: 'channel', outcome: 'cancelled' }),
      0,
    );
    out.push(
      `Live push channel, over its ${liveBatches.length} runs: ${sent} pushes sent (per run: the init, the segment in progress at join, ${r.config.liveSegments} measured segments, the one after), ${cancelled} reset by the client.`,
    );
  }

  const nodeRuns = r.config.rtts.flatMap((rtt) => ROWS.flatMap(({ key }) => r.startup[rtt]?.[key] ?? []));
  const offered = nodeRuns.flatMap((x) => x.offered);
  const unusedOffers = offered.filter((o) => !o.used).length;
  out.push(
    `Node startup runs: ${offered.length} resources arrived or were fetched unasked (hints, pushes), ${unusedOffers} of them not the ones the client needed (a mismatch would mean the origin's newest segment differed from the clock's).`,
  );

  for (const rtt of r.config.rtts) {
    const mpd = ROWS.filter(({ key }) => r.startup[rtt]?.[key]?.length)
      .map(({ key, label }) => `${label} ${ms(summarize(r.startup[rtt]![key]!.map((x) => x.mpdMs))!.median)} ms`)
      .join(', ');
    const hint = summarize(
      (r.startup[rtt]?.['early-hints'] ?? []).flatMap((x) => (x.hintMs === undefined ? [] : [x.mpdMs - x.hintMs])),
    );
    out.push(
      `Node, ${rtt} ms: MPD complete (median) — ${mpd}.${hint ? ` The 103 came ${ms(hint.median)} ms (median) before the MPD was complete.` : ''}`,
    );
  }
  const frames = allBrowser
    .filter((x) => x.run.firstDecodedMs !== null)
    .map((x) => x.run.firstDecodedMs! - x.run.firstFrameMs);
  const fs = summarize(frames);
  if (fs)
    out.push(
      `First frame: \`requestVideoFrameCallback\` and the 5 ms poll of \`getVideoPlaybackQuality().totalVideoFrames > 0\` differ by ${ms(fs.median)} ms (median; range ${ms(fs.min)}…${ms(fs.max)}).`,
    );
  const errors = allBrowser.flatMap((x) => x.run.errors);
  out.push(
    errors.length
      ? `Player errors reported: ${errors.length} (${[...new Set(errors)].slice(0, 3).join('; ')}).`
      : 'No player errors in any Chromium run.',
  );
  const renditions = new Map<string, number>();
  for (const x of allBrowser)
    renditions.set(x.run.rendition ?? 'none', (renditions.get(x.run.rendition ?? 'none') ?? 0) + 1);
  out.push(
    `Rendition dash.js was playing at the end of the runs: ${[...renditions].map(([k, v]) => `${k} ×${v}`).join(', ')}.`,
  );
  if (r.retries) out.push(`Runs repeated after a failure: ${r.retries}.`);
  return out;
}

export function markdown(r: Results): string {
  const c = r.config;
  const m = r.machine;
  const network =
    r.network === 'netem'
      ? '`tc qdisc … netem delay RTT/2` on both ends of a veth pair'
      : 'a user-space delay line (`bench/push/delay-line.py`: two TUN devices, each packet held RTT/2 in each direction) because this kernel has no `sch_netem`';
  return `# Push, hints or prefetch? Measured

Four ways to get the same live stream to a client, measured side by side in one run at round-trip times of
${c.rtts.map((x) => `${x} ms`).join(', ')}: plain **on-demand** requests (the baseline), **prefetch**, **103 Early Hints** and
**HTTP/2 push**. Generated by \`npm run bench:push\` (\`bench/push-comparison.ts\`); do not edit by hand — run it
again (as root: it creates network namespaces; about 10 minutes). Repetitions can be changed with
\`PCB_NODE_REPS\`, \`PCB_BROWSER_REPS\`, \`PCB_LIVE_SEGMENTS\` and \`PCB_RTTS\` (e.g. \`PCB_RTTS=0,50,150\`).

Run ${r.startedAt}, ${(r.durationS / 60).toFixed(1)} min.
Machine: ${machine(m)}; ${m.chromium}; ${m.ffmpeg}.
Network: two network namespaces joined by one link, RTT made by ${network}; no bandwidth limit, no loss.

## Results

Each cell: median (min–max), and the ratio of the median to on-demand at the same RTT (×1.00 = no change,
lower is better). ${c.nodeReps} Node runs and ${c.browserReps} Chromium runs per mode and RTT; live-edge latency over ${c.liveSegments} consecutive segments.

${table(r)}

¹ Chromium no longer supports HTTP/2 server push (removed in Chrome 106; it sends \`SETTINGS_ENABLE_PUSH = 0\`),
so push can only be measured with the Node client.
² Early Hints apply to a response that has not been sent yet (the page or the MPD); a segment that becomes
available later has no request to hint on.

![bar chart of the medians with min–max whiskers](push-comparison.svg)

### Chromium, step by step (medians, ms after navigation start)

${browserTimeline(r)}

### What the run checked

${checks(r)
  .map((x) => `- ${x}`)
  .join('\n')}

## Metrics

- **startup, Node** — a Node HTTP/2 client (\`src/client/http2-push-client.ts\`, one fresh process and connection per
  run): the connection is set up first (TCP, TLS, HTTP/2 SETTINGS exchanged and acknowledged), then the clock
  starts as the MPD request is sent and stops when the MPD, the init segments and the newest media segment of the
  lowest video rendition and of the audio are all complete in hand. The newest segment is the newest one whose
  availability time (AST + (n − startNumber + 1)·d) has passed, by the MPD the client received.
  - *on-demand*: GET MPD, parse it, then GET the two inits and two segments in parallel.
  - *prefetch*: the client knows the SegmentTemplate and the clock from an earlier visit (given to it before the run),
    so it sends the GETs for the inits and the newest segments together with the MPD request.
  - *103 Early Hints*: GET MPD; on the 103 it starts a GET for every \`rel=preload\` link other than the MPD; after
    parsing the MPD it waits for what was hinted and requests what was not.
  - *HTTP/2 push*: GET MPD; the origin pushes the inits and newest segments with it (push policy \`onManifest\`); the
    client waits for the pushes (\`ResourcePushEvent\`), requests anything it needs that was not pushed, and resets
    (RST_STREAM) pushes it does not need.
- **first frame, Chromium** — Debian's Chromium (headless, via playwright-core, a fresh browser context per run) opens
  the player page \`/\` (on-demand; early hints on origin B, where the page's 103 lists the MPD, inits and newest
  segments) or \`/?mode=prefetch\`; the value is \`performance.now()\` in the first \`video.requestVideoFrameCallback\`
  callback, i.e. ms from navigation start to the first video frame presented.
- **live-edge latency** — one client per mode follows the ${r.live[c.rtts[0]!]?.['on-demand']?.rendition ?? 'highest'} rendition (what dash.js
  plays on this unconstrained link) for ${c.liveSegments} consecutive segments; per segment, the time from its availability time
  AST + (n − startNumber + 1)·d to its last byte in hand (negative: the segment was complete before its nominal time).
  - *on-demand*: a GET sent at the availability time (the segment is complete).
  - *prefetch*: a GET sent at the time the MPD announces the segment to low-latency clients, availability time minus
    \`availabilityTimeOffset\` (${r.timings.B?.ato ?? r.timings.A?.ato} s), as \`src/web/dash/prefetch.ts\` schedules it; the origin then sends the segment chunk
    by chunk as the encoder produces it.
  - *HTTP/2 push*: the live push channel \`GET /live/<rendition>/push\`; each segment is pushed from its first chunk.
- **bytes not used** — response body bytes the client received in the run for resources it did not use.
  - *Node startup*: every body byte received on the connection (requested or pushed) until 300 ms + 2 RTT after startup,
    minus one copy of each needed resource.
  - *Chromium*: per /live/ resource, one copy per network fetch — each Resource Timing entry with \`transferSize > 0\`,
    plus one for each resource in the navigation's 103 (Chromium fetches those itself; the page sees them only when it
    uses one) — minus one copy of each resource dash.js loaded (MPD and inits by XHR, early-hints entries, the media
    segments in \`pushcastStats()\`). Segments newer than the newest one dash.js loaded are still on their way when the run
    stops and are left out. Sizes are \`encodedBodySize\`, or Content-Length from a HEAD after the run when the page never saw the resource.
  - *live edge*: bytes other than the init and the measured segments: for push, what arrived of the segment in progress
    when the channel opened and of the one after the last, before the client's RST_STREAM reached the origin.

## Method notes

- **Same stream, two origin processes.** \`pushcast serve\` runs inside the origin namespace as
  \`${r.origins.a}\` (**origin A**) and then as \`${r.origins.b}\` (**origin B**, push and early hints on, the defaults).
  All Node runs and all live-edge runs use origin B: a Node client ignores a 103 unless it is the early-hints client
  and refuses pushes (\`SETTINGS_ENABLE_PUSH = 0\`) unless it is the push client, so those modes are compared within one
  origin process. Chromium acts on every 103 of a page, so its on-demand and prefetch runs need origin A, where no
  103 is sent; Chromium's early-hints runs use origin B. The control row is the Node on-demand client on origin A: it
  should match the baseline, and shows how much two origin processes differ.
- **Same moment in the segment cycle.** Every Node startup run begins ${c.phase} s after a segment boundary of the MPD's
  timeline, so every mode wants the same newest segment, it is complete at the origin, and the next one is far away.
  dash.js chooses its first segment from its latency target and its clock, so whether the hinted segment is the one it
  wants depends on when the page is opened: the ${c.browserReps} Chromium runs per mode navigate at ${Array.from({ length: c.browserReps }, (_, i) => (((i + 0.5) / c.browserReps) * c.segmentDuration).toFixed(2)).join(', ')} s after a
  boundary, the same phases for every mode.
- **Clients.** Node clients run in the client namespace, one process per run, printing JSON. They advertise Chromium's
  HTTP/2 flow-control windows (6 MiB per stream, 15 MiB per connection); with HTTP/2's default 64 KiB the client, not
  the network, would limit transfers at 50 and 150 ms. Before the clock starts, each one loads Node's fetch classes
  (which \`Http2PushClient\` uses per push and Node 20 loads lazily) and makes one small request (\`GET /time\`), alike in
  every mode. The origin's development certificate is trusted by Chromium through
  \`--ignore-certificate-errors-spki-list\` (SHA-256 of its public key), so Chromium treats the origin as a valid HTTPS
  origin rather than one with a certificate error (whose responses it would not cache); the Node clients skip
  verification. Chromium runs through a wrapper that enters the client namespace.
- **TCP as it comes.** Nothing is tuned: Linux's initial window and its slow start after idle apply (a live client's
  connection is idle between segments), which is why a whole-segment GET at 150 ms costs several round trips.
- **Warm-up.** One discarded run per mode before the first measured RTT on each origin.
- **Load.** The live encoder (${c.ladder.split(',').length} video renditions + audio) runs on the same machine as the clients; with few
  cores, Chromium and ffmpeg compete for CPU, which shows at 0 ms RTT, where the differences are a few ms.
- **Prefetch in Chromium** is the player page's prefetcher (\`src/web/dash/prefetch.ts\`): a fresh browser context has
  no SegmentTemplate from an earlier visit, and the prefetcher waits for dash.js to choose representations, so at
  startup it fetches the MPD and the clock beside the player, and segments only once playback runs.
`;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Round step for about `count` ticks over `span`. */
function tickStep(span: number, count: number): number {
  const raw = span / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((f) => f * p).find((s) => s >= raw)!;
}

/** A hand-written grouped bar chart: one panel per metric, a group per RTT, a bar per mode, min–max whiskers. */
export function chartSvg(r: Results): string {
  const panels: { title: string; value: (rtt: number, k: RowKey) => Summary | string | undefined }[] = [
    { title: 'Startup, Node client', value: (rtt, k) => startupSummary(r, rtt, k) },
    { title: 'First frame, Chromium', value: (rtt, k) => (k === 'push' ? 'not in Chromium' : frameSummary(r, rtt, k)) },
    { title: 'Live-edge segment latency', value: (rtt, k) => (k === 'early-hints' ? 'n/a' : liveSummary(r, rtt, k)) },
  ];
  const W = 1260;
  const H = 470;
  const panelW = 400;
  const gap = 20;
  const top = 70;
  const plotH = 300;
  const axisW = 48;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Verdana, sans-serif">`,
  );
  parts.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  parts.push(
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="17" font-weight="bold">Live media delivery: medians (bars) and min–max (whiskers), ms — lower is better</text>`,
  );
  parts.push(
    `<text x="${W / 2}" y="44" text-anchor="middle" font-size="12" fill="#444">${esc(`${r.machine.cpu} × ${r.machine.cores}, ${r.machine.kernel}; RTT by ${r.network === 'netem' ? 'netem' : 'user-space delay line'}; ${r.startedAt.slice(0, 10)}`)}</text>`,
  );
  panels.forEach((panel, pi) => {
    const x0 = 10 + pi * (panelW + gap);
    const values = r.config.rtts.flatMap((rtt) =>
      CHART_MODES.map((m) => panel.value(rtt, m.key)).filter((v): v is Summary => typeof v === 'object'),
    );
    const hi = Math.max(1, ...values.map((v) => v.max));
    const lo = Math.min(0, ...values.map((v) => v.min));
    const step = tickStep(hi - lo, 5);
    const yMax = Math.ceil((hi * 1.08) / step) * step;
    // A few ms below zero (a segment complete before its nominal time) need a sliver, not a whole tick step.
    const yMin = lo < 0 ? lo - 0.03 * (yMax - lo) : 0;
    const y = (v: number) => top + plotH - ((v - yMin) / (yMax - yMin)) * plotH;
    const px = x0 + axisW;
    const pw = panelW - axisW - 6;
    parts.push(
      `<text x="${x0 + panelW / 2}" y="${top - 10}" text-anchor="middle" font-size="14" font-weight="bold">${esc(panel.title)}</text>`,
    );
    for (let t = Math.ceil(yMin / step) * step; t <= yMax + 1e-9; t += step) {
      parts.push(
        `<line x1="${px}" x2="${px + pw}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="${t === 0 ? '#333' : '#e5e7eb'}" stroke-width="1"/>`,
      );
      parts.push(
        `<text x="${px - 6}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end" font-size="11" fill="#444">${step >= 1 ? Math.round(t) : ms(t)}</text>`,
      );
    }
    parts.push(`<line x1="${px}" x2="${px}" y1="${top}" y2="${top + plotH}" stroke="#333"/>`);
    const groupW = pw / r.config.rtts.length;
    const barW = Math.min(22, (groupW - 16) / CHART_MODES.length);
    r.config.rtts.forEach((rtt, gi) => {
      const gx = px + gi * groupW + (groupW - barW * CHART_MODES.length) / 2;
      parts.push(
        `<text x="${(px + gi * groupW + groupW / 2).toFixed(1)}" y="${top + plotH + 18}" text-anchor="middle" font-size="12">RTT ${rtt} ms</text>`,
      );
      CHART_MODES.forEach((m, mi) => {
        const v = panel.value(rtt, m.key);
        const bx = gx + mi * barW;
        const cx = bx + barW / 2;
        if (typeof v === 'string' || v === undefined) {
          const label = typeof v === 'string' ? v : 'no data';
          parts.push(
            `<text transform="translate(${(cx + 4).toFixed(1)},${(y(0) - 6).toFixed(1)}) rotate(-90)" font-size="10" fill="#888">${esc(label)}</text>`,
          );
          return;
        }
        const y0 = y(0);
        const y1 = y(v.median);
        parts.push(
          `<rect x="${(bx + 1).toFixed(1)}" y="${Math.min(y0, y1).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${Math.max(0.5, Math.abs(y1 - y0)).toFixed(1)}" fill="${m.color}"><title>${esc(`${m.label}, RTT ${rtt} ms: median ${ms(v.median)} ms (min ${ms(v.min)}, max ${ms(v.max)}, n=${v.n})`)}</title></rect>`,
        );
        parts.push(
          `<line x1="${cx.toFixed(1)}" x2="${cx.toFixed(1)}" y1="${y(v.min).toFixed(1)}" y2="${y(v.max).toFixed(1)}" stroke="#111" stroke-width="1"/>`,
        );
        for (const w of [v.min, v.max])
          parts.push(
            `<line x1="${(cx - 3).toFixed(1)}" x2="${(cx + 3).toFixed(1)}" y1="${y(w).toFixed(1)}" y2="${y(w).toFixed(1)}" stroke="#111" stroke-width="1"/>`,
          );
        parts.push(
          `<text transform="translate(${(cx + 3.5).toFixed(1)},${(Math.min(y(v.max), y1) - 4).toFixed(1)}) rotate(-90)" font-size="10" fill="#111">${ms(v.median)}</text>`,
        );
      });
    });
  });
  const ly = H - 28;
  let lx = W / 2 - (CHART_MODES.length * 150) / 2;
  for (const m of CHART_MODES) {
    parts.push(`<rect x="${lx}" y="${ly - 11}" width="14" height="14" fill="${m.color}"/>`);
    parts.push(`<text x="${lx + 20}" y="${ly}" font-size="13">${esc(m.label)}</text>`);
    lx += 150;
  }
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
