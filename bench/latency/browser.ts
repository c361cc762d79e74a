/**
 * The two browser viewers: Debian's Chromium (driven by playwright-core) inside the client namespace —
 * its executable is a wrapper that enters the namespace — with the DASH page and the Warp page open at
 * once in one browser, so that they share the link as two viewers on one access link do.
 *
 * The pages are served over http://10.79.0.1:8080, which is not a secure context (only https, localhost
 * and 127/8 are), so a page there has no `WebTransport` at all; `--unsafely-treat-insecure-origin-as-secure`
 * for exactly that origin makes it one. The WebTransport session then goes to https://10.79.0.1:8443,
 * trusted by the certificate hash the page reads from /.well-known/pushcast/webtransport.json (a
 * hash-trusted certificate is not checked against the host name). Chromium speaks QUIC to the address
 * although the client namespace has no default route.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS } from '../../test/support/browser.js';
import type { Namespace } from '../../test/support/netns.js';

/** The origin's MPD (served by src/origin/dash-routes.ts), for the timeline's availabilityStartTime. */
const MPD_PATH = '/live/manifest.mpd';

export type PlayerKind = 'dash' | 'warp';

/** One reading of a page, normalised across the two pages. Counters are cumulative since the page opened. */
export interface PlayerSample {
  /** Wall clock, ms. */
  t: number;
  latencyMs: number | null;
  bufferMs: number | null;
  targetMs: number | null;
  playbackRate: number;
  playing: boolean;
  stalls: number;
  /** Time the picture stood still after playback began, ms — measured by this bench's probe. */
  frozenMs: number;
  /** Warp: bytes read from its sessions; DASH: null (its TCP bytes are counted on the link). */
  bytes: number | null;
  framesShown: number;
  framesDropped: number;
  /** Forward seeks after playback began, and the media they jumped over (s), by the probe. */
  seeks: number;
  jumpedS: number;
  /** Latency of each frame put on screen since the previous sample, ms (display time − capture time). */
  frameLatencies: number[];
  /** Warp: segments given up on (§3.4) and stopped; DASH: none. */
  segmentsSkipped: number;
  segmentsStopped: number;
  /** Warp: the session's transport; DASH: the HTTP version of the newest segment (Resource Timing). */
  transport: string | null;
  rendition: string | null;
  errors: string[];
  hidden: boolean;
}

/** A segment as the page listed it (the newest ones are listed; sampling often enough sees each). */
export interface SegmentSeen {
  key: string;
  t: number;
  kind: 'video' | 'audio';
  number: number | null;
  bytes: number;
  /** DASH: ms from request to last byte; Warp: its fate (received / cut / skipped: why). */
  loadMs?: number;
  state?: string;
}

/**
 * Installed before any script of a page, the same on both: counts seeks after playback began and the
 * media they jumped over, and the time the picture was frozen — playback had begun, the media did not
 * end, and currentTime did not move between two polls 50 ms apart (waiting for data, seeking, or paused).
 * And each frame's latency as it is put on screen (requestVideoFrameCallback): when it is displayed minus
 * when it was captured, on the broadcast's timeline — availabilityStartTime from the MPD (the Warp catalog
 * carries the same one) + the frame's presentation time. The lab's namespaces share one clock.
 */
const PROBE = `(() => {
  const m = { started: false, seeks: 0, jumpedS: 0, frozenMs: 0, frames: [] };
  window.__pcl = m;
  let ast;
  fetch('${MPD_PATH}', { cache: 'no-store' }).then((r) => r.text()).then((t) => {
    const v = /availabilityStartTime="([^"]+)"/.exec(t);
    if (v) ast = Date.parse(v[1]);
  }).catch(() => {});
  const attach = () => {
    // The player's element on screen, inside <pushcast-player> (a forced mode keeps one for the page's life).
    const v = document.querySelector('pushcast-player')?.player?.video;
    if (!v) return void setTimeout(attach, 20);
    let last = 0;
    let polled = performance.now();
    setInterval(() => {
      const now = performance.now();
      if (m.started && !v.ended && v.currentTime === last) m.frozenMs += now - polled;
      polled = now;
      if (!v.seeking) last = v.currentTime;
    }, 50);
    v.addEventListener('playing', () => (m.started = true));
    v.addEventListener('seeking', () => { if (!m.started) return; m.seeks++; const d = v.currentTime - last; if (d > 0) m.jumpedS += d; });
    const onFrame = (_, meta) => {
      if (ast !== undefined && m.started) {
        m.frames.push(Math.round(performance.timeOrigin + meta.expectedDisplayTime - (ast + meta.mediaTime * 1000)));
        if (m.frames.length > 5000) m.frames.shift();
      }
      v.requestVideoFrameCallback(onFrame);
    };
    v.requestVideoFrameCallback(onFrame);
  };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', attach); else attach();
})();`;

/** An uncaught exception or unhandled rejection in a page (`pageerror`), or a console error it logged. */
export interface PageError {
  t: number;
  source: 'pageerror' | 'console';
  text: string;
}

export interface Viewers {
  version: string;
  dash: Page;
  warp: Page;
  sample(kind: PlayerKind): Promise<{ sample: PlayerSample; segments: SegmentSeen[] }>;
  /** Every page error of each page since it opened: a run with any fails. */
  pageErrors: Record<PlayerKind, PageError[]>;
  close(): Promise<void>;
}

/** Keeps a page's errors; the browser's request for a favicon the origin does not serve is no page error. */
function watchErrors(page: Page, into: PageError[]): void {
  page.on('pageerror', (error) =>
    into.push({ t: Date.now(), source: 'pageerror', text: `${error.name}: ${error.message}` }),
  );
  page.on('console', (message) => {
    if (message.type() !== 'error' || /\/favicon\.ico$/.test(message.location().url)) return;
    into.push({ t: Date.now(), source: 'console', text: message.text() });
  });
}

interface Raw {
  s: Record<string, unknown> | null;
  m: { started: boolean; seeks: number; jumpedS: number; frozenMs: number; frames: number[] };
  hidden: boolean;
}

const num = (x: unknown): number => (typeof x === 'number' && Number.isFinite(x) ? x : 0);
const numOrNull = (x: unknown): number | null => (typeof x === 'number' && Number.isFinite(x) ? x : null);

function normalise(kind: PlayerKind, raw: Raw, t: number): { sample: PlayerSample; segments: SegmentSeen[] } {
  const s = raw.s ?? {};
  const common = {
    t,
    frameLatencies: raw.m.frames,
    frozenMs: raw.m.frozenMs,
    seeks: raw.m.seeks,
    jumpedS: raw.m.jumpedS,
    hidden: raw.hidden,
    stalls: num(s.stalls),
    playbackRate: num(s.playbackRate) || 1,
    errors: (s.errors as string[] | undefined) ?? [],
  };
  if (kind === 'dash') {
    const recent = ((s.segments as { recent?: Record<string, unknown>[] } | undefined)?.recent ?? []) as {
      url: string;
      kind: 'video' | 'audio';
      number?: number;
      bytes: number;
      loadMs: number;
      protocol: string;
    }[];
    const latency = numOrNull(s.latency);
    const target = numOrNull(s.targetLatency);
    const buffer = numOrNull(s.buffer);
    const rendition = s.rendition as { id: string } | null;
    return {
      sample: {
        ...common,
        latencyMs: latency === null ? null : latency * 1000,
        bufferMs: buffer === null ? null : buffer * 1000,
        targetMs: target === null ? null : target * 1000,
        playing: s.playing === true,
        framesShown: num(s.framesDecoded) - num(s.framesDropped),
        framesDropped: num(s.framesDropped),
        segmentsSkipped: 0,
        segmentsStopped: 0,
        bytes: null,
        transport: recent[0]?.protocol ?? null,
        rendition: rendition?.id ?? null,
      },
      segments: recent.map((r) => ({
        key: r.url,
        t,
        kind: r.kind,
        number: r.number ?? null,
        bytes: r.bytes,
        loadMs: r.loadMs,
      })),
    };
  }
  const recent = (s.recent ?? []) as {
    track: string;
    number: number | null;
    state: string;
    why?: string;
    bytes: number;
  }[];
  const tracks = (s.tracks ?? []) as { id: string; kind: 'video' | 'audio' }[];
  const video = tracks.find((x) => x.kind === 'video');
  return {
    sample: {
      ...common,
      latencyMs: numOrNull(s.latencyMs),
      bufferMs: numOrNull(s.bufferMs),
      targetMs: numOrNull(s.targetLatencyMs),
      playing: s.state === 'playing',
      framesShown: num(s.framesShown),
      framesDropped: num(s.framesDropped),
      segmentsSkipped: num(s.segmentsSkipped),
      segmentsStopped: num(s.segmentsStopped),
      bytes: num(s.bytesReceived),
      transport: (s.transport as string | null) ?? null,
      rendition: (s.rendition as string | null | undefined) ?? video?.id ?? null,
    },
    segments: recent.map((r) => ({
      key: `${r.track}/${r.number}`,
      t,
      kind: tracks.find((x) => x.id === r.track)?.kind ?? (r.track.startsWith('audio') ? 'audio' : 'video'),
      number: r.number,
      bytes: r.bytes,
      state: r.state === 'skipped' && r.why ? `skipped (${r.why})` : r.state,
    })),
  };
}

/** Chromium in the client namespace with both pages open; resolves once both pages are loaded. */
export async function openViewers(o: {
  ns: Namespace;
  httpBase: string;
  dashPath: string;
  warpPath: string;
}): Promise<Viewers> {
  const dir = mkdtempSync(join(tmpdir(), 'pcl-chromium-'));
  const wrapper = join(dir, 'chromium-in-netns');
  writeFileSync(wrapper, `#!/bin/sh\nexec ${o.ns.command(CHROMIUM).join(' ')} "$@"\n`);
  chmodSync(wrapper, 0o755);
  let browser: Browser | undefined;
  const close = async () => {
    await browser?.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    browser = await chromium.launch({
      executablePath: wrapper,
      headless: true,
      // The bench's own signal handler closes everything in order (the namespaces go last).
      handleSIGINT: false,
      handleSIGTERM: false,
      handleSIGHUP: false,
      args: [...CHROMIUM_ARGS, `--unsafely-treat-insecure-origin-as-secure=${o.httpBase}`],
    });
    const context = await browser.newContext({ viewport: { width: 960, height: 600 } });
    await context.addInitScript(PROBE);
    const dash = await context.newPage();
    const warp = await context.newPage();
    const pageErrors: Record<PlayerKind, PageError[]> = { dash: [], warp: [] };
    watchErrors(dash, pageErrors.dash);
    watchErrors(warp, pageErrors.warp);
    await Promise.all([dash.goto(o.httpBase + o.dashPath), warp.goto(o.httpBase + o.warpPath)]);
    const pages = { dash, warp };
    return {
      version: browser.version(),
      dash,
      warp,
      pageErrors,
      async sample(kind) {
        const raw = await pages[kind].evaluate(() => {
          const w = window as unknown as {
            pushcastStats?: () => { dash: Record<string, unknown> | null; warp: Record<string, unknown> | null } | null;
            __pcl: Raw['m'];
          };
          const player = w.pushcastStats?.();
          return {
            // The mode's own figures (the DASH or Warp part of the player's stats).
            s: player?.dash ?? player?.warp ?? null,
            m: { ...w.__pcl, frames: w.__pcl.frames.splice(0) },
            hidden: document.visibilityState === 'hidden',
          };
        });
        return normalise(kind, raw, Date.now());
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
