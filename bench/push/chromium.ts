/**
 * First frame in Chromium: Debian's chromium driven by playwright-core, running inside the client namespace
 * (its executable is a wrapper that enters the namespace), one fresh browser context per run so that no
 * connection, TLS session or cache survives from one run to the next.
 */
import { X509Certificate, createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import type { Namespace } from '../../test/support/netns.js';
import { CHROMIUM_ARGS } from '../../test/support/browser.js';

export const CHROMIUM = process.env.PUSHCAST_CHROMIUM ?? '/usr/bin/chromium';

export type BrowserMode = 'on-demand' | 'prefetch' | 'early-hints';

/** One Resource Timing entry, as far as the bench reads it. */
export interface ResourceEntry {
  name: string;
  initiatorType: string;
  deliveryType: string;
  nextHopProtocol: string;
  transferSize: number;
  encodedBodySize: number;
  startTime: number;
  responseEnd: number;
}

export interface BrowserRun {
  mode: BrowserMode;
  /** performance.timeOrigin of the page: wall-clock ms of navigation start. */
  timeOrigin: number;
  /** performance.now() at the first frame, i.e. ms from navigation start (requestVideoFrameCallback). */
  firstFrameMs: number;
  /** performance.now() when getVideoPlaybackQuality().totalVideoFrames first read > 0 (polled every 5 ms). */
  firstDecodedMs: number | null;
  /** HTTP version of the page itself (Navigation Timing nextHopProtocol). */
  protocol: string;
  /** When the 103 arrived (Navigation Timing firstInterimResponseStart; 0: none). */
  interimMs: number;
  /** Paths the 103 of the navigation listed as rel=preload (from the DevTools protocol). */
  hinted: string[];
  resources: ResourceEntry[];
  /** Media segment URLs dash.js loaded (pushcastStats().segments.recent), and the renditions they belong to. */
  playerSegments: string[];
  rendition: string | null;
  prefetch: { started: number; completed: number; failed: number } | null;
  errors: string[];
}

/** Base64 SHA-256 of the certificate's SubjectPublicKeyInfo: what --ignore-certificate-errors-spki-list takes. */
export function spkiHash(pemFile: string): string {
  const cert = new X509Certificate(readFileSync(pemFile));
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

export interface LaunchedChromium {
  browser: Browser;
  version: string;
  close(): Promise<void>;
}

/**
 * Chromium in the client namespace. The development certificate is trusted by its key (so that Chromium
 * treats the origin as a valid HTTPS origin: it caches, and it acts on 103 Early Hints only over a secure
 * HTTP/2 connection), not by ignoring certificate errors.
 */
export async function launchInClientNamespace(client: Namespace, certificatePem: string): Promise<LaunchedChromium> {
  const dir = mkdtempSync(join(tmpdir(), 'pcb-chromium-'));
  const wrapper = join(dir, 'chromium-in-netns');
  writeFileSync(wrapper, `#!/bin/sh\nexec ${client.command(CHROMIUM).join(' ')} "$@"\n`);
  chmodSync(wrapper, 0o755);
  const browser = await chromium.launch({
    executablePath: wrapper,
    headless: true,
    // The bench's own signal handler closes everything in order (the namespaces go last).
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
    // The tests' flags, plus the certificate's key.
    args: [...CHROMIUM_ARGS, `--ignore-certificate-errors-spki-list=${spkiHash(certificatePem)}`],
  });
  return {
    browser,
    version: browser.version(),
    async close() {
      await browser.close().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Marks the first frame as the page sees it; runs before any script of the page. */
const FIRST_FRAME_PROBE = `(() => {
  const mark = { firstFrame: null, decoded: null };
  window.__pcb = mark;
  const poll = () => {
    const v = document.querySelector('pushcast-player')?.player?.video;
    if (v && !v.__pcbWatched && v.requestVideoFrameCallback) {
      v.__pcbWatched = true;
      v.requestVideoFrameCallback(() => { if (mark.firstFrame === null) mark.firstFrame = performance.now(); });
    }
    if (v && mark.decoded === null && v.getVideoPlaybackQuality().totalVideoFrames > 0) mark.decoded = performance.now();
    if (mark.firstFrame === null || mark.decoded === null) setTimeout(poll, 5);
  };
  poll();
})();`;

/**
 * One navigation in a fresh context: the context is made first, then `startAt` waits for the moment to
 * navigate (a fixed phase of the segment cycle); waits for the first frame, lets the player run `settleMs`
 * more (so that what it loads after startup shows whether preloads were used), then reads the timings.
 */
export async function browserRun(
  browser: Browser,
  url: string,
  mode: BrowserMode,
  settleMs: number,
  startAt: () => Promise<void>,
): Promise<BrowserRun> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  try {
    const page = await context.newPage();
    await page.addInitScript(FIRST_FRAME_PROBE);
    // The 103 itself is invisible to the page; the DevTools protocol reports it for the document request.
    const cdp = await context.newCDPSession(page);
    let documentRequest: string | undefined;
    let hinted: string[] = [];
    cdp.on('Network.requestWillBeSent', (e) => {
      if (e.type === 'Document') documentRequest ??= e.requestId;
    });
    cdp.on('Network.responseReceivedEarlyHints', (e) => {
      if (e.requestId !== documentRequest || hinted.length) return;
      const link = Object.entries(e.headers).find(([k]) => k.toLowerCase() === 'link')?.[1] ?? '';
      hinted = [...String(link).matchAll(/<([^>]*)>([^,]*)/g)]
        .filter((m) => /rel="?preload/.test(m[2]!))
        .map(([, path = '']) => path);
    });
    await cdp.send('Network.enable');
    await startAt();
    await page.goto(url, { waitUntil: 'commit', timeout: 30_000 });
    await page.waitForFunction(
      () => (window as unknown as { __pcb: { firstFrame: number | null } }).__pcb.firstFrame !== null,
      null,
      { timeout: 30_000, polling: 50 },
    );
    await page.waitForTimeout(settleMs);
    const seen = await page.evaluate((mode) => {
      const w = window as unknown as {
        __pcb: { firstFrame: number; decoded: number | null };
        pushcastStats: () => {
          dash: {
            rendition: { id: string } | null;
            segments: { recent: { url: string }[] };
            prefetch: BrowserRun['prefetch'];
            errors: string[];
          };
        };
      };
      const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming & {
        firstInterimResponseStart?: number;
      };
      const stats = w.pushcastStats().dash;
      return {
        mode,
        timeOrigin: performance.timeOrigin,
        firstFrameMs: w.__pcb.firstFrame,
        firstDecodedMs: w.__pcb.decoded,
        protocol: nav.nextHopProtocol,
        interimMs: nav.firstInterimResponseStart ?? 0,
        resources: (
          performance.getEntriesByType('resource') as (PerformanceResourceTiming & { deliveryType?: string })[]
        ).map((e) => ({
          name: e.name,
          initiatorType: e.initiatorType,
          deliveryType: e.deliveryType ?? '',
          nextHopProtocol: e.nextHopProtocol,
          transferSize: e.transferSize,
          encodedBodySize: e.encodedBodySize,
          startTime: e.startTime,
          responseEnd: e.responseEnd,
        })),
        playerSegments: stats.segments.recent.map((r) => r.url),
        rendition: stats.rendition?.id ?? null,
        prefetch: stats.prefetch,
        errors: stats.errors,
      };
    }, mode);
    return { ...seen, hinted };
  } finally {
    await context.close().catch(() => {});
  }
}

export interface BrowserBytes {
  /** Bytes of /live/ resources the browser fetched from the network in the run (preloads included). */
  fetched: number;
  /** Bytes of one copy of each /live/ resource the player loaded. */
  used: number;
  /** fetched − used, per resource and never negative: preloads or prefetches not used, and duplicates. */
  wasted: number;
  /** Early-hinted paths the page then took from the preload (Resource Timing initiatorType "early-hints"). */
  hintsUsed: string[];
  /** Hinted paths the page fetched again or never asked for. */
  hintsUnused: string[];
}

/** The /live/ paths whose size the page cannot see: hinted, never consumed and never fetched by the page. */
export function unknownSizes(run: BrowserRun): string[] {
  const known = new Set(run.resources.map((e) => new URL(e.name).pathname));
  return run.hinted.filter((p) => p.startsWith('/live/') && !known.has(p));
}

/**
 * Bytes a run fetched and did not use. A resource counts once per network fetch: each Resource Timing
 * entry with transferSize > 0, plus one for every path of the navigation's 103 (Chromium fetches those
 * itself; a page that uses one gets an entry with initiatorType "early-hints" and transferSize 0). The
 * player used a resource if dash.js loaded it (XHR for MPD and inits, early-hints entries, and the media
 * segments pushcastStats() lists). Segments newer than the newest one the player loaded are still to come
 * when the run stops, and are left out.
 */
export function browserBytes(run: BrowserRun, sizeOf: Record<string, number>): BrowserBytes {
  const live = run.resources.filter((e) => new URL(e.name).pathname.startsWith('/live/'));
  const path = (url: string) => new URL(url).pathname;
  const numberOf = (p: string) => Number(/\/(\d+)\.m4s$/.exec(p)?.[1] ?? NaN);
  const played = run.playerSegments.map(path);
  const newest = Math.max(...played.map(numberOf).filter(Number.isFinite));
  const used = new Set([
    ...played,
    ...live
      .filter((e) => e.initiatorType === 'xmlhttprequest' || e.initiatorType === 'early-hints')
      .map((e) => path(e.name)),
  ]);
  const fetches = new Map<string, number>();
  const size = new Map<string, number>(Object.entries(sizeOf));
  for (const e of live) {
    const p = path(e.name);
    if (e.encodedBodySize > 0) size.set(p, Math.max(size.get(p) ?? 0, e.encodedBodySize));
    if (e.transferSize > 0) fetches.set(p, (fetches.get(p) ?? 0) + 1);
  }
  for (const p of run.hinted) if (p.startsWith('/live/')) fetches.set(p, (fetches.get(p) ?? 0) + 1);
  let fetched = 0;
  let usedBytes = 0;
  let wasted = 0;
  for (const [p, n] of fetches) {
    if (numberOf(p) > newest) continue;
    const s = size.get(p) ?? 0;
    fetched += n * s;
    if (used.has(p)) usedBytes += s;
    wasted += Math.max(0, n - (used.has(p) ? 1 : 0)) * s;
  }
  const consumed = new Set(live.filter((e) => e.initiatorType === 'early-hints').map((e) => path(e.name)));
  return {
    fetched,
    used: usedBytes,
    wasted,
    hintsUsed: run.hinted.filter((p) => consumed.has(p)),
    hintsUnused: run.hinted.filter((p) => !consumed.has(p)),
  };
}
