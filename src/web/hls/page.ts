/**
 * The LL-HLS page (`/hls/`): hls.js in low-latency mode on the origin's multivariant playlist, the figures
 * beside the picture, and `window.pushcastStats()` as on the other pages.
 *
 * hls.js holds PART-HOLD-BACK behind the live edge and catches up with a playback rate up to 1.04, the
 * bounds dash.js gets from the MPD's ServiceDescription, so the two modes are compared at one target.
 * The latency is measured on the origin's clock (`/time`): its wall clock now minus the
 * EXT-X-PROGRAM-DATE-TIME of the frame on screen, as dash.js measures from the MPD's timeline.
 *
 * URL parameters: `?src=` another multivariant playlist.
 */
import Hls, { type ErrorData } from 'hls.js';
import { HLS_MULTIVARIANT_PATH, TIME_PATH } from '../../media/live/url-scheme.js';
import { renderFigures } from '../panel.js';
import type { HlsPageStats } from './stats.js';

const MAX_ERRORS = 20;
const params = new URLSearchParams(location.search);
const video = document.querySelector<HTMLVideoElement>('#video')!;
const panel = document.querySelector<HTMLElement>('#stats')!;
const errors: string[] = [];
let state: HlsPageStats['state'] = 'starting';
let message = '';
let stalls = 0;
let partsLoaded = 0;
let segmentsLoaded = 0;
/** The origin's clock minus this page's, ms. */
let clockOffset = 0;

async function syncClock(): Promise<void> {
  const sent = Date.now();
  const res = await fetch(TIME_PATH, { cache: 'no-store' });
  const server = Date.parse(await res.text());
  const received = Date.now();
  if (Number.isFinite(server)) clockOffset = server - (sent + received) / 2;
}

function note(error: string): void {
  errors.push(error);
  if (errors.length > MAX_ERRORS) errors.shift();
}

const source = new URL(params.get('src') ?? HLS_MULTIVARIANT_PATH, location.href).href;
// Without Media Source Extensions (Safari on older iPhones), the browser's own HLS, if it has one, plays
// the same playlists; the page's figures then come from the element alone.
const native = !Hls.isSupported() && video.canPlayType('application/vnd.apple.mpegurl') !== '';
if (!Hls.isSupported() && !native) {
  state = 'failed';
  message = 'this browser has neither Media Source Extensions nor HLS of its own';
}
const hls = new Hls({ lowLatencyMode: true, maxLiveSyncPlaybackRate: 1.04, backBufferLength: 30 });
hls.on(Hls.Events.FRAG_LOADED, (_event, data) => {
  if (data.part) partsLoaded++;
  else segmentsLoaded++;
});
hls.on(Hls.Events.ERROR, (_event, data: ErrorData) => {
  note(`${data.fatal ? 'fatal ' : ''}${data.type}: ${data.details}`);
  if (!data.fatal) return;
  state = 'failed';
  message = `hls.js stopped: ${data.details}`;
});
video.addEventListener('playing', () => {
  state = 'playing';
  message = '';
});
video.addEventListener('waiting', () => {
  if (state === 'playing') stalls++;
});
void syncClock().catch((err: Error) => note(`clock: ${err.message}`));
if (native) video.src = source;
else if (Hls.isSupported()) {
  hls.loadSource(source);
  hls.attachMedia(video);
}
void video.play().catch(() => {});

function finite(n: number | null | undefined): number | null {
  return n !== null && n !== undefined && Number.isFinite(n) ? n : null;
}

function bufferAhead(): number {
  const b = video.buffered;
  for (let i = 0; i < b.length; i++)
    if (b.start(i) <= video.currentTime + 0.1 && video.currentTime <= b.end(i)) return b.end(i) - video.currentTime;
  return 0;
}

function stats(): HlsPageStats {
  const shown = hls.playingDate;
  const quality = video.getVideoPlaybackQuality();
  const target = finite(hls.targetLatency);
  return {
    state,
    mode: 'hls',
    latencyMs: shown && state === 'playing' ? Math.round(Date.now() + clockOffset - shown.getTime()) : null,
    targetLatencyMs: target === null ? null : Math.round(target * 1000),
    framesShown: quality.totalVideoFrames - quality.droppedVideoFrames,
    framesDropped: quality.droppedVideoFrames,
    stalls,
    currentTime: video.currentTime,
    playbackRate: video.playbackRate,
    buffer: Math.round(bufferAhead() * 1000) / 1000,
    partsLoaded,
    segmentsLoaded,
    level: hls.currentLevel,
    message,
    errors: [...errors],
  };
}

// The player page declares `window.pushcastStats` with its own type; this page's stats are these.
(window as unknown as { pushcastStats: () => HlsPageStats | null }).pushcastStats = stats;

setInterval(() => {
  const s = stats();
  renderFigures(panel, [
    ['state', s.message || s.state],
    ['latency', s.latencyMs === null ? '–' : `${(s.latencyMs / 1000).toFixed(2)} s`],
    ['target (PART-HOLD-BACK)', s.targetLatencyMs === null ? '–' : `${(s.targetLatencyMs / 1000).toFixed(2)} s`],
    ['buffer', `${s.buffer.toFixed(2)} s`],
    ['playback rate', s.playbackRate.toFixed(3)],
    ['frames shown / dropped', `${s.framesShown} / ${s.framesDropped}`],
    ['stalls', String(s.stalls)],
    ['parts / segments loaded', `${s.partsLoaded} / ${s.segmentsLoaded}`],
  ]);
}, 500);
