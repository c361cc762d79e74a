/**
 * DASH playback into one video element with dash.js: plain unicast LL-DASH, with the prefetcher
 * (./prefetch.ts), or over multicast through the Service Worker (src/web/sw), which answers the segment
 * requests of a manifest marked for multicast from verified pushes (WHP 336 §4.3 to §5.3) and from
 * unicast when pushes do not come.
 *
 * The latency target: the viewer's, in seconds, as dash.js's live delay, with its catch-up (playback
 * rate 0.96–1.04, as the MPD's ServiceDescription says). The latency reported is measured on the origin's
 * timeline whatever the mode: the multicast Service Worker moves the MPD's timeline later by its
 * reception window, and that window is added back.
 */
import { type FragmentRequest, MediaPlayer, type MediaPlayerClass } from 'dashjs';
import { parseLivePath, unmarkMulticast } from '../../media/live/url-scheme.js';
import type { MulticastStats } from '../sw/stats.js';
import { Prefetcher } from './prefetch.js';
import type { DashPlayerStats, DeliveryRoute, SegmentRecord } from './stats.js';

const RECENT_SEGMENTS = 12;
const MAX_ERRORS = 20;
const MAX_TIMINGS = 200;
/** How long the Service Worker has to take control of the page. */
const CONTROL_WAIT_MS = 5000;
const MULTICAST_STATS_MS = 1000;
/**
 * How long playback may sit at the end of what it has while the live edge is further on before it jumps
 * there: dash.js looks for the next segment at the time its last one ended, and a SegmentTimeline with a
 * gap (an encoder that reconnected) has none there, so it would wait for ever.
 */
const GAP_STALL_MS = 2000;
const GAP_CHECK_MS = 250;

export interface DashPlaybackOptions {
  video: HTMLVideoElement;
  /** The MPD's URL (for multicast: marked for the Service Worker). */
  manifest: string;
  kind: DashPlayerStats['mode'];
  /** Multicast: the Service Worker's script and scope. */
  serviceWorker?: { script: string; scope: string };
  /** The viewer's latency target, ms. */
  targetMs: number;
  /** The origin's target, ms: the MPD's ServiceDescription (for multicast, moved by the Service Worker with its window). */
  originTargetMs: number;
  onNote?: (text: string, show: boolean) => void;
  /** dash.js reported an error it does not recover from, or the element stopped. */
  onFailure?: (why: string) => void;
}

function finite(n: number): number | null {
  return Number.isFinite(n) ? Math.round(n * 1000) / 1000 : null;
}

/** Makes the page controlled by the multicast Service Worker; the reason when it cannot. */
export async function controlByServiceWorker(script: string, scope: string): Promise<string | undefined> {
  if (!('serviceWorker' in navigator)) return 'this browser has no Service Workers';
  try {
    await navigator.serviceWorker.register(script, { scope });
  } catch (error) {
    return `the Service Worker did not register (${(error as Error).message})`;
  }
  if (!navigator.serviceWorker.controller) {
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(done, CONTROL_WAIT_MS);
      navigator.serviceWorker.addEventListener('controllerchange', done, { once: true });
    });
  }
  return navigator.serviceWorker.controller ? undefined : 'the Service Worker did not take control of the page';
}

export class DashPlayback {
  private readonly player: MediaPlayerClass = MediaPlayer().create();
  private readonly video: HTMLVideoElement;
  private readonly errors: string[] = [];
  private readonly byRoute: Record<string, number> = {};
  private readonly recent: SegmentRecord[] = [];
  private readonly timings = new Map<string, PerformanceResourceTiming>();
  private readonly observer: PerformanceObserver;
  private readonly prefetcher: Prefetcher | undefined;
  private readonly listeners: [string, EventListener][] = [];
  private readonly timers: ReturnType<typeof setInterval>[] = [];
  private multicast: MulticastStats | null = null;
  private total = 0;
  /** The problem of the moment, in words; cleared when playback runs again. */
  problem = '';
  /** Media segment bytes dash.js loaded, by whatever route. */
  bytesLoaded = 0;
  private stalls = 0;
  private wasPlaying = false;
  private stuck: { since: number; at: number } | undefined;
  private destroyed = false;
  private targetMs: number;
  /** The rendition the viewer pinned, applied again once dash.js has the stream. */
  private pinned = 'auto';

  constructor(private readonly options: DashPlaybackOptions) {
    this.video = options.video;
    this.targetMs = options.targetMs;
    this.player.updateSettings({
      streaming: {
        // Target, rate bounds and so on from the MPD's ServiceDescription, unless the viewer chose another target.
        applyServiceDescription: true,
        liveCatchup: { enabled: true },
      },
    });
    this.prefetcher =
      options.kind === 'prefetch'
        ? new Prefetcher(options.manifest, () => {
            if (!this.player.isReady()) return [];
            return (['video', 'audio'] as const)
              .map((t) => this.player.getCurrentRepresentationForType(t)?.id)
              .filter((id): id is string => !!id);
          })
        : undefined;
    this.prefetcher?.start().catch((err: Error) => this.note(`prefetch: ${err.message}`, false));
    this.observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries() as PerformanceResourceTiming[]) {
        if (!entry.name.includes('.m4s')) continue;
        this.timings.delete(entry.name);
        this.timings.set(entry.name, entry);
        if (this.timings.size > MAX_TIMINGS) this.timings.delete(this.timings.keys().next().value!);
      }
    });
    this.observer.observe({ type: 'resource', buffered: true });
    if (this.targetMs !== options.originTargetMs) this.setTarget(this.targetMs);
    this.player.on(MediaPlayer.events.STREAM_INITIALIZED, () => {
      if (this.pinned !== 'auto') this.setRendition(this.pinned);
    });
    this.player.on(MediaPlayer.events.FRAGMENT_LOADING_COMPLETED, (e) => this.onFragment(e.request));
    this.player.on(MediaPlayer.events.ERROR, (e) => {
      const err = (e as unknown as { error?: { code?: number; message?: string } }).error;
      const text = `${err?.code ?? ''} ${err?.message ?? 'player error'}`.trim();
      this.note(text, true);
      // dash.js gives up on the manifest (it cannot load or parse it): nothing more will play.
      if (err?.code !== undefined && err.code >= 10 && err.code < 30) this.options.onFailure?.(`dash.js: ${text}`);
    });
    this.listen('playing', () => {
      this.wasPlaying = true;
      this.problem = '';
    });
    this.listen('waiting', () => {
      if (this.wasPlaying && !this.video.seeking) this.stalls++;
    });
    this.listen('error', () =>
      this.options.onFailure?.(`the video element stopped: ${this.video.error?.message ?? ''}`),
    );
    this.timers.push(setInterval(() => this.jumpGap(), GAP_CHECK_MS));
    if (options.kind === 'multicast') this.timers.push(setInterval(() => this.askServiceWorker(), MULTICAST_STATS_MS));
    this.player.initialize(this.video, options.manifest, true);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const t of this.timers) clearInterval(t);
    this.prefetcher?.stop();
    this.observer.disconnect();
    for (const [type, listener] of this.listeners) this.video.removeEventListener(type, listener);
    try {
      this.player.destroy();
    } catch {
      // dash.js half-initialised: nothing to release
    }
    this.video.removeAttribute('src');
    this.video.load();
  }

  setTarget(ms: number): void {
    this.targetMs = ms;
    // Multicast: the MPD's timeline is the Service Worker's, later than the origin's by its window.
    const window = this.options.kind === 'multicast' ? (this.multicast?.receptionWindow ?? 0) : 0;
    this.player.updateSettings({ streaming: { delay: { liveDelay: Math.max(0, ms / 1000 - window) } } });
  }

  /** Pins a video rendition, or gives the choice back to ABR (`auto`). */
  setRendition(id: string): void {
    this.pinned = id;
    this.player.updateSettings({ streaming: { abr: { autoSwitchBitrate: { video: id === 'auto' } } } });
    if (id !== 'auto' && this.player.isReady()) this.player.setRepresentationForTypeById('video', id, true);
  }

  /** The video renditions of the MPD, once dash.js has read it. */
  renditions(): { id: string; height: number; bandwidth: number }[] {
    if (!this.player.isReady()) return [];
    try {
      return this.player
        .getRepresentationsByType('video')
        .map((r) => ({ id: r.id, height: r.height, bandwidth: r.bandwidth }));
    } catch {
      return []; // no stream yet
    }
  }

  private listen(type: string, listener: EventListener): void {
    this.video.addEventListener(type, listener);
    this.listeners.push([type, listener]);
  }

  private note(text: string, show: boolean): void {
    if (show) this.problem = text;
    this.errors.push(`${new Date().toISOString()} ${text}`);
    if (this.errors.length > MAX_ERRORS) this.errors.shift();
    this.options.onNote?.(text, show);
  }

  /** Playback stuck at a gap in the timeline, with media past it: on to the live point. */
  private jumpGap(): void {
    const v = this.video;
    if (!this.wasPlaying || !this.player.isReady() || v.paused || v.seeking || v.readyState >= 3) {
      this.stuck = undefined;
      return;
    }
    // With SegmentTemplate@duration dash.js asks for the numbers in a gap itself (they answer 404).
    if (this.player.getCurrentRepresentationForType('video')?.segmentInfoType !== 'SegmentTimeline') return;
    const now = performance.now();
    if (!this.stuck || this.stuck.at !== v.currentTime) {
      this.stuck = { since: now, at: v.currentTime };
      return;
    }
    if (now - this.stuck.since < GAP_STALL_MS) return;
    let edge: number;
    try {
      edge = this.player.getDvrWindow().end;
    } catch {
      return;
    }
    const to = edge - this.targetMs / 1000;
    if (!(to > v.currentTime + 1)) return;
    this.stuck = undefined;
    this.note(`a gap in the stream: from ${v.currentTime.toFixed(2)} s to ${to.toFixed(2)} s`, false);
    this.player.seekToPresentationTime(to);
  }

  private askServiceWorker(): void {
    const controller = navigator.serviceWorker?.controller;
    if (!controller) return;
    const channel = new MessageChannel();
    channel.port1.onmessage = (e) => {
      if (!this.destroyed) this.multicast = e.data as MulticastStats;
      channel.port1.close();
    };
    controller.postMessage({ type: 'stats' }, [channel.port2]);
  }

  private onFragment(r: FragmentRequest): void {
    if (r.type !== 'MediaSegment' || !r.url) return;
    // A segment the prefetcher fetched is served to dash.js from the HTTP cache.
    const route: DeliveryRoute = this.prefetcher?.fetched.has(r.url) ? 'prefetch' : 'unicast';
    const resource = parseLivePath(new URL(r.url, location.href).pathname);
    const record: SegmentRecord = {
      url: r.url,
      kind: r.mediaType === 'audio' ? 'audio' : 'video',
      representation: resource?.trackId ?? String(r.representationId ?? ''),
      number: resource?.kind === 'segment' ? resource.number : undefined,
      route,
      protocol: 'unknown',
      bytes: r.bytesLoaded ?? 0,
      loadMs: 0,
    };
    this.total++;
    this.bytesLoaded += record.bytes;
    this.byRoute[route] = (this.byRoute[route] ?? 0) + 1;
    this.recent.unshift(record);
    this.recent.length = Math.min(this.recent.length, RECENT_SEGMENTS);
  }

  private withTiming(r: SegmentRecord): SegmentRecord {
    const t = this.timings.get(r.url);
    const out = t
      ? { ...r, protocol: t.nextHopProtocol || 'unknown', loadMs: Math.round(t.responseEnd - t.startTime) }
      : { ...r };
    // Multicast: how the Service Worker delivered it, and how far ahead of the request it was ready.
    const unmarked = unmarkMulticast(r.url);
    const m = this.multicast?.recent.find((x) => x.url === unmarked);
    if (m) {
      out.route = m.route;
      out.repairBytes = m.repairBytes;
      out.aheadMs = m.arrivedAt === null ? null : m.requestedAt - m.arrivedAt;
    }
    return out;
  }

  /** Seconds behind live on the origin's timeline (the multicast reception window added back). */
  latency(): number | null {
    if (!this.player.isReady()) return null;
    const l = finite(this.player.getCurrentLiveLatency());
    if (l === null) return null;
    return finite(
      l + (this.options.kind === 'multicast' && this.multicast?.advertised.length ? this.multicast.receptionWindow : 0),
    );
  }

  stats(): DashPlayerStats {
    const player = this.player;
    const ready = player.isReady();
    const rep = ready ? player.getCurrentRepresentationForType('video') : null;
    const quality = this.video.getVideoPlaybackQuality();
    return {
      mode: this.options.kind,
      manifest: this.options.manifest,
      playing: !this.video.paused && !this.video.ended && this.video.readyState > 2,
      currentTime: finite(this.video.currentTime) ?? 0,
      latency: this.latency(),
      targetLatency: this.targetMs / 1000,
      buffer: ready ? finite(player.getDashMetrics().getCurrentBufferLevel('video')) : null,
      playbackRate: finite(this.video.playbackRate) ?? 1,
      rendition: rep ? { id: rep.id, width: rep.width, height: rep.height, bandwidth: rep.bandwidth } : null,
      stalls: this.stalls,
      framesDecoded: quality.totalVideoFrames,
      framesDropped: quality.droppedVideoFrames,
      segments: {
        total: this.total,
        byRoute: this.multicast ? { ...this.multicast.segments } : { ...this.byRoute },
        recent: this.recent.map((r) => this.withTiming(r)),
      },
      prefetch: this.prefetcher ? { ...this.prefetcher.stats } : null,
      multicast: this.multicast,
      errors: [...this.errors],
    };
  }
}
