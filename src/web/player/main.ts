import { MediaPlayer } from 'dashjs';
import { MANIFEST_PATH, markMulticast, parseLivePath } from '../../media/live/url-scheme.js';
import { renderFigures, renderTable } from '../panel.js';
import { Prefetcher } from './prefetch.js';
import type { MulticastStats } from '../sw/stats.js';
import type { DeliveryRoute, PushcastStats, SegmentRecord } from './stats.js';

declare global {
  interface Window {
    pushcastStats: () => PushcastStats;
  }
}

const RECENT_SEGMENTS = 12;
const MAX_ERRORS = 20;

const params = new URLSearchParams(location.search);
const manifestUrl = params.get('manifest') ?? MANIFEST_PATH;
/**
 * `?mode=prefetch` adds the prefetcher; the page under `/multicast/` runs with the multicast Service
 * Worker (src/web/sw); the default is plain unicast, dash.js alone.
 */
const mode: PushcastStats['mode'] = location.pathname.startsWith('/multicast/')
  ? 'multicast'
  : params.get('mode') === 'prefetch'
    ? 'prefetch'
    : 'unicast';
const video = document.querySelector('video')!;
const panel = document.querySelector<HTMLElement>('#stats')!;
const segmentTable = document.querySelector<HTMLTableSectionElement>('#segments tbody')!;

let stalls = 0;
let wasPlaying = false;
const byRoute: Record<string, number> = {};
let total = 0;
const recent: SegmentRecord[] = [];
const errors: string[] = [];

const player = MediaPlayer().create();
player.updateSettings({
  streaming: {
    // Latency target, playback-rate bounds and so on come from the MPD's ServiceDescription.
    applyServiceDescription: true,
    liveCatchup: { enabled: true },
  },
});
let multicast: MulticastStats | null = null;
const hitHistory: number[] = [];
const MAX_HISTORY = 120;

/**
 * Multicast mode: the Service Worker must control the page before dash.js asks for the MPD, so that it
 * sees every request. Without Service Workers (or if it does not take control), the page plays by unicast.
 */
async function startMulticast(): Promise<void> {
  if (mode !== 'multicast') return;
  if (!('serviceWorker' in navigator)) {
    errors.push('no Service Worker in this browser: unicast only');
    return;
  }
  try {
    await navigator.serviceWorker.register('/multicast/sw.js', { scope: '/multicast/' });
    if (!navigator.serviceWorker.controller) {
      await Promise.race([
        new Promise((resolve) => navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true })),
        new Promise((resolve) => setTimeout(resolve, 5000)),
      ]);
    }
    if (!navigator.serviceWorker.controller) errors.push('the Service Worker did not take control: unicast only');
  } catch (err) {
    errors.push(`Service Worker: ${(err as Error).message}; unicast only`);
  }
  const toggle = document.querySelector<HTMLInputElement>('#multicast-switch input');
  if (toggle) {
    toggle.parentElement!.hidden = false;
    toggle.addEventListener('change', () =>
      navigator.serviceWorker.controller?.postMessage({ type: 'multicast', enabled: toggle.checked }),
    );
  }
  setInterval(() => {
    const controller = navigator.serviceWorker.controller;
    if (!controller) return;
    const channel = new MessageChannel();
    channel.port1.onmessage = (e) => {
      multicast = e.data as MulticastStats;
      const s = multicast.segments;
      const all = s.push + s.repaired + s.unicast;
      hitHistory.push(all === 0 ? 0 : (s.push + s.repaired) / all);
      if (hitHistory.length > MAX_HISTORY) hitHistory.shift();
    };
    controller.postMessage({ type: 'stats' }, [channel.port2]);
  }, 1000);
}

// The Service Worker acts only on requests marked for multicast: the MPD, and through it the segments.
void startMulticast().finally(() =>
  player.initialize(video, mode === 'multicast' ? markMulticast(manifestUrl) : manifestUrl, true),
);

const prefetcher =
  mode === 'prefetch'
    ? new Prefetcher(manifestUrl, () => {
        if (!player.isReady()) return [];
        return (['video', 'audio'] as const)
          .map((t) => player.getCurrentRepresentationForType(t)?.id)
          .filter((id): id is string => !!id);
      })
    : undefined;
prefetcher?.start().catch((err: Error) => errors.push(`prefetch: ${err.message}`));
video.muted = true; // autoplay policies allow muted playback without a gesture

/**
 * Resource Timing of segment fetches, by URL (bounded): the HTTP version and the time from request to last
 * byte. Entries arrive after dash.js reports the load, so records look them up when shown.
 */
const timings = new Map<string, PerformanceResourceTiming>();
const MAX_TIMINGS = 200;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries() as PerformanceResourceTiming[]) {
    if (!entry.name.endsWith('.m4s')) continue;
    timings.delete(entry.name);
    timings.set(entry.name, entry);
    if (timings.size > MAX_TIMINGS) timings.delete(timings.keys().next().value!);
  }
}).observe({ type: 'resource', buffered: true });
// The browser's own buffer holds 250 entries by default; keep it from filling up on a long-running page.
performance.addEventListener('resourcetimingbufferfull', () => performance.clearResourceTimings());

function withTiming(r: SegmentRecord): SegmentRecord {
  const t = timings.get(r.url);
  const out = t
    ? { ...r, protocol: t.nextHopProtocol || 'unknown', loadMs: Math.round(t.responseEnd - t.startTime) }
    : { ...r };
  // Multicast: how the Service Worker delivered it, and how far ahead of the request it was ready.
  const m = multicast?.recent.find((x) => x.url === r.url);
  if (m) {
    out.route = m.route;
    out.repairBytes = m.repairBytes;
    out.aheadMs = m.arrivedAt === null ? null : m.requestedAt - m.arrivedAt;
  }
  return out;
}

player.on(MediaPlayer.events.FRAGMENT_LOADING_COMPLETED, (e) => {
  const r = e.request;
  if (r.type !== 'MediaSegment' || !r.url) return;
  // A segment the prefetcher fetched is served to dash.js from the HTTP cache.
  const route: DeliveryRoute = prefetcher?.fetched.has(r.url) ? 'prefetch' : 'unicast';
  const resource = parseLivePath(new URL(r.url, location.href).pathname);
  const representation = resource?.trackId ?? String(r.representationId ?? '');
  const number = resource?.kind === 'segment' ? resource.number : undefined;
  const record: SegmentRecord = {
    url: r.url,
    kind: r.mediaType === 'audio' ? 'audio' : 'video',
    representation,
    number,
    route,
    protocol: 'unknown',
    bytes: r.bytesLoaded,
    loadMs: 0,
  };
  total++;
  byRoute[route] = (byRoute[route] ?? 0) + 1;
  recent.unshift(record);
  recent.length = Math.min(recent.length, RECENT_SEGMENTS);
});

// The viewer may pin a video rendition, or leave the choice to ABR ("auto").
const renditionSelect = document.querySelector<HTMLSelectElement>('#rendition');
player.on(MediaPlayer.events.STREAM_INITIALIZED, () => {
  if (!renditionSelect) return;
  for (const r of player.getRepresentationsByType('video')) {
    const option = document.createElement('option');
    option.value = r.id;
    option.textContent = `${r.height}p (${(r.bandwidth / 1e6).toFixed(1)} Mbit/s)`;
    renditionSelect.append(option);
  }
});
renditionSelect?.addEventListener('change', () => {
  const id = renditionSelect.value;
  player.updateSettings({ streaming: { abr: { autoSwitchBitrate: { video: id === 'auto' } } } });
  if (id !== 'auto') player.setRepresentationForTypeById('video', id, true);
});

player.on(MediaPlayer.events.ERROR, (e) => {
  const err = (e as unknown as { error?: { code?: number; message?: string } }).error;
  errors.push(`${new Date().toISOString()} ${err?.code ?? ''} ${err?.message ?? 'player error'}`.trim());
  if (errors.length > MAX_ERRORS) errors.shift();
});

// A stall: playback was running and the video had to wait for data.
video.addEventListener('playing', () => (wasPlaying = true));
video.addEventListener('waiting', () => {
  if (wasPlaying && !video.seeking) stalls++;
});

function finite(n: number): number | null {
  return Number.isFinite(n) ? Math.round(n * 1000) / 1000 : null;
}

function snapshot(): PushcastStats {
  const rep = player.isReady() ? player.getCurrentRepresentationForType('video') : null;
  const quality = video.getVideoPlaybackQuality();
  return {
    mode,
    manifest: manifestUrl,
    playing: !video.paused && !video.ended && video.readyState > 2,
    currentTime: finite(video.currentTime) ?? 0,
    latency: player.isReady() ? finite(player.getCurrentLiveLatency()) : null,
    targetLatency: player.isReady() ? finite(player.getTargetLiveDelay()) : null,
    buffer: player.isReady() ? finite(player.getDashMetrics().getCurrentBufferLevel('video')) : null,
    playbackRate: finite(video.playbackRate) ?? 1,
    rendition: rep ? { id: rep.id, width: rep.width, height: rep.height, bandwidth: rep.bandwidth } : null,
    stalls,
    framesDecoded: quality.totalVideoFrames,
    framesDropped: quality.droppedVideoFrames,
    segments: {
      total,
      byRoute: multicast ? { ...multicast.segments } : { ...byRoute },
      recent: recent.map(withTiming),
    },
    prefetch: prefetcher ? { ...prefetcher.stats } : null,
    multicast,
    errors: [...errors],
  };
}

window.pushcastStats = snapshot;

function show(value: number | null, unit: string): string {
  return value === null ? '–' : `${value.toFixed(2)} ${unit}`;
}

function render(): void {
  const s = snapshot();
  const rows: [string, string][] = [
    ['mode', s.mode],
    ['latency', `${show(s.latency, 's')} (target ${show(s.targetLatency, 's')})`],
    ['buffer', show(s.buffer, 's')],
    [
      'rendition',
      s.rendition
        ? `${s.rendition.id} ${s.rendition.width}×${s.rendition.height} ${(s.rendition.bandwidth / 1e6).toFixed(2)} Mbit/s`
        : '–',
    ],
    ['playback rate', s.playbackRate.toFixed(2)],
    ['stalls', String(s.stalls)],
    ['frames', `${s.framesDecoded} decoded, ${s.framesDropped} dropped`],
    ...(s.prefetch
      ? ([['prefetch', `${s.prefetch.completed} of ${s.prefetch.started} fetched, ${s.prefetch.failed} failed`]] as [
          string,
          string,
        ][])
      : []),
    [
      'segments',
      `${s.segments.total} (${
        Object.entries(s.segments.byRoute)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ') || 'none yet'
      })`,
    ],
  ];
  if (s.multicast) {
    const m = s.multicast;
    const all = m.segments.push + m.segments.repaired + m.segments.unicast;
    rows.push(
      [
        'multicast',
        `${m.enabled ? 'on' : 'off'}; advertised for ${m.advertised.join(', ') || 'none'}; reception window ${m.receptionWindow.toFixed(1)} s`,
      ],
      [
        'push hit ratio',
        all === 0
          ? '–'
          : `${(((m.segments.push + m.segments.repaired) / all) * 100).toFixed(1)} % (${m.segments.push} push, ${m.segments.repaired} repaired, ${m.segments.unicast} unicast)`,
      ],
      ['repair', `${(m.repairBytes / 1024).toFixed(1)} KiB by unicast ranges`],
      ...m.sessions.map((x): [string, string] => [
        `session ${x.representation}`,
        `WebSocket ${x.state}; ${x.packets} packets, ${x.lost} lost, ${x.forged} refused; ${x.pushesCompleted} pushes complete, ${x.pushesFailed} failed`,
      ]),
      ['cache', `${m.cachedEntries} segments`],
    );
    drawHitChart();
  }
  if (s.errors.length) rows.push(['last error', s.errors.at(-1)!]);
  renderFigures(panel, rows);
  renderTable(
    segmentTable,
    s.segments.recent.map((r) => [
      r.representation,
      String(r.number ?? ''),
      r.route === 'repaired' ? `repaired (${r.repairBytes ?? 0} B unicast)` : r.route,
      r.protocol,
      `${(r.bytes / 1024).toFixed(1)} KiB`,
      r.aheadMs === undefined || r.aheadMs === null
        ? `${r.loadMs} ms`
        : `${r.loadMs} ms, ready ${r.aheadMs} ms before the request`,
    ]),
  );
}
/** The push hit ratio over the last two minutes, one point a second. */
function drawHitChart(): void {
  const canvas = document.querySelector<HTMLCanvasElement>('#hit-chart');
  if (!canvas) return;
  canvas.hidden = false;
  const g = canvas.getContext('2d')!;
  g.clearRect(0, 0, canvas.width, canvas.height);
  g.strokeStyle = '#888';
  g.strokeRect(0, 0, canvas.width, canvas.height);
  g.strokeStyle = '#2a7';
  g.beginPath();
  hitHistory.forEach((v, i) => {
    const x = (i / (MAX_HISTORY - 1)) * canvas.width;
    const y = canvas.height - v * (canvas.height - 2) - 1;
    if (i === 0) g.moveTo(x, y);
    else g.lineTo(x, y);
  });
  g.stroke();
}

setInterval(render, 500);
render();
