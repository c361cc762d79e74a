/**
 * The Warp player page (`/warp/`, draft-lcurley-warp-00 §3.4): a Warp session for a broadcast over
 * WebTransport (or the WebSocket fallback), its streams fed to the isomorphic WarpConsumer (decode order
 * per track, dependencies, skipping what is later than the viewer's latency target), and the media it
 * hands over appended to one SourceBuffer per track.
 *
 * URL parameters: `?transport=webtransport|websocket` (only that one), `?token=` and `?tracks=`
 * (passed to the session: src/warp/server.ts), `?latency=<ms>` (the target; the viewer can change it on
 * the page), `?broadcast=` (default `live`).
 *
 * - Transport: src/web/transport/connect.ts races native WebTransport (to the origin's HTTP/3 port, the
 *   certificate trusted by the hashes the origin publishes) against the WebSocket fallback on the page's
 *   own origin (ws://<page host>/warp/…: the page cannot trust the development certificate for wss).
 *
 * - Latency target: the consumer's buffer (a segment is due to play the target after its start, and what
 *   has not come of the ones before it by then is skipped) and the playback delay: ./latency.ts keeps the
 *   playhead at (live point − target).
 * - The timeline: catalog.availabilityStartTime maps presentation time to the server's wall clock (the
 *   DASH timeline's mapping; the encoder burns the same clock into the picture). The page reads the
 *   server's clock from /time (the origin's UTCTiming source) once, so that a viewer whose clock is off
 *   still plays at the target. Latency = server now − (availabilityStartTime + currentTime·1000).
 * - GOAWAY (§5.4): a second session to the new URL, in parallel, feeding the same consumer (it drops the
 *   copies); the old session is left to close.
 * - A session that closes without a successor: reconnect, with backoff.
 */
import { TIME_PATH, WEBTRANSPORT_INFO_PATH, segmentNumberOf } from '../../media/live/url-scheme.js';
import type { WarpCatalog, WarpCatalogTrack } from '../../warp/catalog.js';
import { WarpConsumer, type IncomingWarpStream, type SegmentRef } from '../../warp/consumer.js';
import { renderFigures, renderTable } from '../panel.js';
import { planPlayhead, type TimeRange } from './latency.js';
import { TrackBuffer } from './media.js';
import type { WarpPlayerStats, WarpSegmentRecord, WarpTransportKind } from './stats.js';
import { connectTransport, type ConnectedTransport, type ConnectTransportOptions } from '../transport/connect.js';

const MAX_ERRORS = 20;
const RECENT_SEGMENTS = 12;
const TICK_MS = 100;
/** How long WebTransport runs alone before the WebSocket starts too (connect.ts's race), ms. */
const HEAD_START_MS = 1000;
const RECONNECT_MIN_MS = 1000;
const RECONNECT_MAX_MS = 10_000;

// ---- parameters ----

const params = new URLSearchParams(location.search);
const broadcast = params.get('broadcast') ?? 'live';
const token = params.get('token') ?? undefined;
const tracksParam = params.get('tracks') ?? undefined;
const transportParam = params.get('transport');
const force: WarpTransportKind | undefined =
  transportParam === 'webtransport' || transportParam === 'websocket' ? transportParam : undefined;
const latencyParam = Number(params.get('latency'));
let targetMs =
  Number.isFinite(latencyParam) && latencyParam >= 100 && latencyParam <= 30_000 ? Math.round(latencyParam) : 2000;

const video = document.querySelector('video')!;
const panel = document.querySelector<HTMLElement>('#stats')!;
const segmentTable = document.querySelector<HTMLTableSectionElement>('#segments tbody')!;
const messageLine = document.querySelector<HTMLElement>('#message')!;
const latencySelect = document.querySelector<HTMLSelectElement>('#latency')!;
video.muted = true; // autoplay policies allow muted playback without a gesture

// ---- what the panel shows ----

const errors: string[] = [];
/** The problem of the moment, in words (shown under the video); cleared when playback runs again. */
let problem = '';
let state = 'connecting';
let transportKind: WarpTransportKind | null = null;
let sessionUrl: string | null = null;
let sessionsOpened = 0;
let goaways = 0;
let bytesReceived = 0;
let segmentsReceived = 0;
let segmentsSkipped = 0;
let stalls = 0;
let catchUpSeeks = 0;
let gapJumps = 0;
const recent: WarpSegmentRecord[] = [];
const records = new Map<SegmentRef, WarpSegmentRecord>();

let lastError = { text: '', count: 0 };

/** Notes `text` in the panel's list (a repeat counts up instead of filling the list); `show` puts it under the video. */
function noteError(text: string, show = true): void {
  if (show) messageLine.textContent = problem = text;
  const stamp = new Date().toISOString();
  if (text === lastError.text && errors.length > 0) {
    lastError.count++;
    errors[errors.length - 1] = `${stamp} ${text} (${lastError.count} times)`;
    return;
  }
  lastError = { text, count: 1 };
  errors.push(`${stamp} ${text}`);
  if (errors.length > MAX_ERRORS) errors.shift();
  console.warn(`pushcast warp: ${text}`);
}

/**
 * Why no session opened, in plain words. Browsers hide the status of a refused session (WebTransport:
 * "Opening handshake failed."; WebSocket: close code 1006), so a refusal is told by its shape: the origin
 * answered over HTTP, and every transport was turned away during its handshake.
 */
function explainNoSession(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  // connect.ts: "no transport to <url>: webtransport: <why>; websocket: <why>".
  const failures = text.replace(/^no transport to \S+: /, '').split('; ');
  const turnedAway = failures.every((f) => /handshake|\(1006\b/i.test(f));
  const details = `(${failures.join('; ')})`;
  if (!turnedAway) return `Cannot open a Warp session ${details}`;
  const hint =
    token === undefined
      ? `The broadcast may need a token: add ?token=… to this page's address.`
      : `Is the token right? (?token=${token} in this page's address.)`;
  return `The server turned the Warp session for "${broadcast}" away. ${hint} Otherwise there is no broadcast "${broadcast}", or the server cannot take more viewers ${details}`;
}

if (transportParam !== null && !force)
  noteError(`?transport=${transportParam} is not a transport: use webtransport or websocket (trying both)`);

// ---- the server's clock ----

/** The server's clock minus this one, ms (0 until /time answered). */
let clockOffsetMs = 0;
const serverNow = () => Date.now() + clockOffsetMs;

/** Reads the origin's clock (UTCTiming, an ISO instant), halfway through the round trip. */
async function syncClock(): Promise<void> {
  try {
    const sent = Date.now();
    const response = await fetch(TIME_PATH, { cache: 'no-store' });
    const server = Date.parse((await response.text()).trim());
    const received = Date.now();
    if (!response.ok || !Number.isFinite(server)) throw new Error(`${response.status}, not a time`);
    clockOffsetMs = Math.round(server - (sent + received) / 2);
  } catch (error) {
    noteError(
      `cannot read the server's clock at ${TIME_PATH} (${(error as Error).message}): using this computer's`,
      false,
    );
  }
}

// ---- media ----

const mediaSource = new MediaSource();
video.src = URL.createObjectURL(mediaSource);
const sourceOpen = new Promise<void>((resolve) =>
  mediaSource.addEventListener('sourceopen', () => resolve(), { once: true }),
);
video.addEventListener('error', () => {
  state = 'failed';
  noteError(`the video element stopped: ${video.error?.message || `media error ${video.error?.code ?? ''}`}`);
});

let catalog: WarpCatalog | undefined;
/** The tracks played: one SourceBuffer per kind. */
const buffers = new Map<'video' | 'audio', TrackBuffer>();

function mimeOf(t: WarpCatalogTrack): string {
  return `${t.kind}/mp4; codecs="${t.codec}"`;
}

function playedTrack(id: string): TrackBuffer | undefined {
  for (const b of buffers.values()) if (b.id === id) return b;
  return undefined;
}

/** One SourceBuffer per kind: the best video rendition the session carries, and the first audio track. */
function onCatalog(c: WarpCatalog): void {
  catalog = c;
  const supported = c.tracks.filter((t) => {
    if (MediaSource.isTypeSupported(mimeOf(t))) return true;
    noteError(`this browser cannot play ${mimeOf(t)}: track ${t.id} is left out`);
    return false;
  });
  const video0 = supported.filter((t) => t.kind === 'video').sort((a, b) => b.bandwidth - a.bandwidth)[0];
  const audio0 = supported.find((t) => t.kind === 'audio');
  if (!video0 && !audio0) {
    state = 'failed';
    noteError(
      `nothing in broadcast ${c.broadcast} can be played here (${c.tracks.map(mimeOf).join(', ') || 'no tracks'})`,
    );
    return;
  }
  for (const t of [video0, audio0]) {
    if (t)
      buffers.set(
        t.kind,
        new TrackBuffer(
          t.id,
          t.kind,
          mimeOf(t),
          () => video.currentTime,
          (text) => noteError(text),
        ),
      );
  }
  void sourceOpen.then(() => {
    // Live: no end. With a finite duration (MSE raises it to the buffered end as media comes), a playhead
    // that reaches the newest media — a segment cut short at its end — would "end" the element, pausing it.
    try {
      mediaSource.duration = Infinity;
    } catch (error) {
      noteError(`cannot make the media endless (live): ${(error as Error).message}`);
    }
    // Every SourceBuffer before the first append: MSE takes no new ones once media has started.
    for (const b of buffers.values()) {
      try {
        b.attach(mediaSource.addSourceBuffer(b.mime));
      } catch (error) {
        noteError(`cannot add a ${b.kind} SourceBuffer for ${b.mime}: ${(error as Error).message}`);
      }
    }
  });
}

function recordOf(segment: SegmentRef): WarpSegmentRecord {
  let r = records.get(segment);
  if (!r) {
    const timescale = catalog?.tracks.find((t) => t.id === segment.track)?.timescale ?? 1;
    const number = segmentNumberOf(segment.path ?? '');
    r = {
      track: segment.track,
      number: number ?? null,
      state: 'receiving',
      bytes: 0,
      time: segment.decodeTime / timescale,
    };
    records.set(segment, r);
    remember(r);
  }
  return r;
}

function remember(r: WarpSegmentRecord): void {
  recent.unshift(r);
  if (recent.length > RECENT_SEGMENTS) {
    const gone = recent.pop()!;
    for (const [ref, rec] of records) if (rec === gone) records.delete(ref);
  }
}

function onData(segment: SegmentRef, bytes: Uint8Array): void {
  const buffer = playedTrack(segment.track);
  if (!buffer) return;
  recordOf(segment).bytes += bytes.length;
  buffer.appendMedia(segment, bytes);
}

function onEnd(segment: SegmentRef, complete: boolean): void {
  const buffer = playedTrack(segment.track);
  if (!buffer) return;
  const r = recordOf(segment);
  if (complete) {
    segmentsReceived++;
    r.state = 'received';
  } else {
    r.state = 'cut';
    buffer.segmentCut(segment);
  }
}

function onSkip(trackId: string, decodeTime: number, why: string): void {
  if (!playedTrack(trackId)) return;
  // 'stalled' and 'missing' are the segments given up on (§3.4); 'late' and 'old' are streams stopped
  // because their media could no longer be played (a 'late' one shows up as 'missing' when its turn comes).
  if (why === 'stalled' || why === 'missing') segmentsSkipped++;
  const timescale = catalog?.tracks.find((t) => t.id === trackId)?.timescale ?? 1;
  if (why !== 'stalled')
    remember({ track: trackId, number: null, state: 'skipped', why, bytes: 0, time: decodeTime / timescale });
  else
    for (const r of recent)
      if (r.track === trackId && Math.abs(r.time - decodeTime / timescale) < 0.001)
        (r.state = 'skipped'), (r.why = why);
}

const consumer = new WarpConsumer(
  {
    catalog: onCatalog,
    init: (track, bytes) => playedTrack(track.id)?.appendInit(bytes),
    data: onData,
    end: onEnd,
    skip: onSkip,
    goaway: (url) => followGoaway(url),
  },
  { bufferMs: targetMs, now: serverNow },
);

// ---- sessions ----

interface LiveSession {
  connected: ConnectedTransport;
  url: string;
  /** Told to move (GOAWAY): its closing is expected. */
  movedAway: boolean;
}

/** Where a session goes: `url` for WebTransport (or the WebSocket, when there is no WebTransport), and connect.ts's options. */
interface SessionTarget {
  url: string;
  options: ConnectTransportOptions;
}

const sessions = new Set<LiveSession>();
let newest: LiveSession | undefined;
/** The origin's WebTransport details, for the first session and the ones after GOAWAY to the same server. */
let certificateHashes: WebTransportHash[] | undefined;
let webTransportHost: string | undefined;
const followed = new Set<string>();
let reconnectDelay = RECONNECT_MIN_MS;
let connecting = false;

function sessionQuery(url: URL): URL {
  if (token !== undefined && !url.searchParams.has('token')) url.searchParams.set('token', token);
  if (tracksParam !== undefined && !url.searchParams.has('tracks')) url.searchParams.set('tracks', tracksParam);
  if (!url.searchParams.has('latency')) url.searchParams.set('latency', String(targetMs));
  return url;
}

/** The WebSocket fallback on the page's own origin (usable whatever certificate the HTTPS port has). */
function pageWebSocketUrl(pathAndQuery: string): string {
  return sessionQuery(new URL(`${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}${pathAndQuery}`))
    .href;
}

function hexBytes(hex: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array((hex.match(/../g) ?? []).map((h) => parseInt(h, 16)));
}

/** The first session: WebTransport on the origin's HTTP/3 port (from its well-known JSON), and the fallback beside the page. */
async function firstTarget(): Promise<SessionTarget> {
  const path = `/warp/${encodeURIComponent(broadcast)}`;
  const webSocketUrl = pageWebSocketUrl(path);
  const onlyWebSocket = (why?: string): SessionTarget => {
    if (why && force === 'webtransport') throw new Error(`?transport=webtransport, but ${why}`);
    if (why) noteError(`${why}: using the WebSocket fallback`, false);
    return { url: webSocketUrl, options: { forceTransport: 'websocket', webSocketUrl } };
  };
  if (force === 'websocket') return onlyWebSocket();
  if (typeof (globalThis as { WebTransport?: unknown }).WebTransport !== 'function') {
    // Browsers offer WebTransport to secure contexts only: an http page other than localhost has none.
    return onlyWebSocket(
      isSecureContext
        ? 'this browser has no WebTransport'
        : `WebTransport needs a secure page (https, or localhost), and ${location.origin} is not one`,
    );
  }
  let response: Response;
  let info: { port: number; serverCertificateHashes?: { algorithm: string; value: string }[] };
  try {
    response = await fetch(WEBTRANSPORT_INFO_PATH, { cache: 'no-store' });
    info = response.ok ? await response.json() : { port: 0 };
  } catch (error) {
    return onlyWebSocket(`cannot read ${WEBTRANSPORT_INFO_PATH} (${(error as Error).message})`);
  }
  if (!response.ok)
    return onlyWebSocket(
      `the origin offers no WebTransport (${WEBTRANSPORT_INFO_PATH}: ${response.status} ${(await response.text().catch(() => '')).trim()})`,
    );
  webTransportHost = `${location.hostname}:${info.port}`;
  certificateHashes = info.serverCertificateHashes?.map((h) => ({ algorithm: h.algorithm, value: hexBytes(h.value) }));
  const url = sessionQuery(new URL(`https://${webTransportHost}${path}`)).href;
  return {
    url,
    options: {
      forceTransport: force,
      headStartMs: HEAD_START_MS,
      serverCertificateHashes: certificateHashes?.length ? certificateHashes : undefined,
      webSocketUrl,
    },
  };
}

/** Where a GOAWAY (§5.4) sends a session of `kind`: the same transport, to the new URL. */
function goawayTarget(url: string, kind: WarpTransportKind): SessionTarget {
  const u = sessionQuery(new URL(url, location.href));
  const sameServer = u.host === webTransportHost || u.host === location.host;
  if (kind === 'webtransport') {
    // The published hashes vouch for this server's certificate only; elsewhere the Web PKI decides.
    return {
      url: u.href,
      options: { forceTransport: 'webtransport', serverCertificateHashes: sameServer ? certificateHashes : undefined },
    };
  }
  // WebSocket: beside the page when it is the same server; else at the URL itself (https → wss).
  const webSocketUrl = sameServer ? pageWebSocketUrl(u.pathname + u.search) : u.href.replace(/^http/, 'ws');
  return { url: webSocketUrl, options: { forceTransport: 'websocket', webSocketUrl } };
}

function incoming(readable: ReadableStream<Uint8Array>): IncomingWarpStream {
  const reader = readable.getReader();
  let stopped = false;
  return {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || stopped) return;
        bytesReceived += value.byteLength;
        yield value;
      }
    },
    stop(code: number) {
      if (stopped) return;
      stopped = true;
      // STOP_SENDING with `code` (W3C WebTransport: cancelling a receive stream with a WebTransportError).
      const reason =
        typeof WebTransportError === 'function'
          ? new WebTransportError('not needed', { streamErrorCode: code })
          : undefined;
      reader.cancel(reason).catch(() => undefined);
    },
  };
}

function sessionUrlOf(target: SessionTarget, kind: WarpTransportKind): string {
  return kind === 'websocket' ? (target.options.webSocketUrl ?? target.url) : target.url;
}

function attach(connected: ConnectedTransport, target: SessionTarget): LiveSession {
  const s: LiveSession = { connected, url: sessionUrlOf(target, connected.kind), movedAway: false };
  sessions.add(s);
  newest = s;
  sessionsOpened++;
  transportKind = connected.kind;
  sessionUrl = s.url;
  reconnectDelay = RECONNECT_MIN_MS;
  if (connected.kind === 'websocket' && connected.tried.includes('webtransport')) {
    noteError(
      `WebTransport to ${target.url} did not open (or not within ${HEAD_START_MS / 1000} s): on the WebSocket fallback`,
      false,
    );
  }
  void (async () => {
    const reader = connected.transport.incomingUnidirectionalStreams.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        void consumer.addStream(incoming(value));
      }
    } catch {
      // the session is gone: its `closed` says why
    }
  })();
  connected.transport.closed.then(
    (info) => closed(s, info.closeCode ?? 0, info.reason ?? ''),
    (error: unknown) => closed(s, undefined, error instanceof Error ? error.message : String(error)),
  );
  return s;
}

function closed(s: LiveSession, code: number | undefined, reason: string): void {
  if (!sessions.delete(s)) return;
  const why = `${code === undefined ? 'error' : `code ${code}`}${reason ? `: ${reason}` : ''}`;
  if (s.movedAway) noteError(`the ${s.connected.kind} session to ${s.url} closed after GOAWAY (${why})`, false);
  if (sessions.size > 0 || connecting) return;
  // §4.7: code 0 = the broadcast is over.
  noteError(
    code === 0 && !s.movedAway
      ? `the broadcast ended (${why}); trying again`
      : `the Warp session closed (${why}); reconnecting`,
  );
  state = 'reconnecting';
  scheduleReconnect();
}

function scheduleReconnect(): void {
  const delay = reconnectDelay;
  reconnectDelay = Math.min(RECONNECT_MAX_MS, reconnectDelay * 2);
  setTimeout(() => void connect(), delay);
}

async function connect(): Promise<void> {
  if (connecting) return;
  connecting = true;
  try {
    const target = await firstTarget();
    attach(await connectTransport(target.url, target.options), target);
    if (state === 'connecting' || state === 'reconnecting' || state === 'failed') state = 'waiting for media';
  } catch (error) {
    state = 'failed';
    noteError(explainNoSession(error));
    scheduleReconnect();
  } finally {
    connecting = false;
  }
}

// Leaving the page ends its sessions at once (a server would otherwise hold them until the idle timeout).
addEventListener('pagehide', () => {
  for (const s of sessions) {
    try {
      s.connected.transport.close({ closeCode: 0, reason: 'viewer left' });
    } catch {
      // still connecting, or gone
    }
  }
});

function followGoaway(url: string): void {
  if (followed.has(url) || !newest) return;
  followed.add(url);
  if (followed.size > 32) followed.delete(followed.values().next().value!);
  const kind = newest.connected.kind;
  for (const s of sessions) s.movedAway = true;
  let target: SessionTarget;
  try {
    target = goawayTarget(url, kind);
  } catch {
    return noteError(`GOAWAY to ${JSON.stringify(url)}: not a URL; staying on the old session until it closes`);
  }
  noteError(`GOAWAY: moving to ${url}`, false);
  connectTransport(target.url, target.options).then(
    (connected) => {
      goaways++;
      attach(connected, target);
    },
    (error: unknown) =>
      noteError(
        `GOAWAY to ${url} could not be followed (${(error as Error).message}): staying on the old session until it closes`,
      ),
  );
}

// ---- the playhead ----

let started = false;
/** A pause the page made (to hold for a raised target), not the viewer's. */
let pausedByPage = false;
let pausedByViewer = false;
let targetRaised = false;
let wasPlaying = false;

function rangesOf(t: TimeRanges): TimeRange[] {
  const out: TimeRange[] = [];
  for (let i = 0; i < t.length; i++) out.push({ start: t.start(i), end: t.end(i) });
  return out;
}

function tick(): void {
  if (pausedByViewer || video.error) return;
  const stuck = !video.paused && video.readyState < HTMLMediaElement.HAVE_FUTURE_DATA;
  const live = catalog ? (serverNow() - catalog.availabilityStartTime) / 1000 : undefined;
  const action = planPlayhead({
    ranges: rangesOf(video.buffered),
    currentTime: video.currentTime,
    target: targetMs / 1000,
    live,
    started,
    stuck,
    targetRaised,
  });
  if (action.seek !== undefined && !video.seeking) {
    video.currentTime = action.seek;
    if (action.why === 'start') {
      started = true;
      video
        .play()
        .catch((error: Error) => noteError(`playback did not start by itself (${error.message}): press play`));
    } else if (action.why === 'behind') catchUpSeeks++;
    else if (action.why === 'gap') gapJumps++;
  }
  if (action.hold) {
    if (!video.paused) {
      pausedByPage = true;
      video.pause();
    }
  } else {
    targetRaised = false;
    if (pausedByPage) {
      pausedByPage = false;
      video.play().catch(() => undefined);
    }
  }
  if (video.playbackRate !== action.rate) video.playbackRate = action.rate;
}

video.addEventListener('playing', () => {
  wasPlaying = true;
  problem = '';
});
video.addEventListener('waiting', () => {
  if (started && wasPlaying && !video.seeking) stalls++;
});
video.addEventListener('pause', () => {
  // The element pauses itself when it ends; only a pause nobody on the page asked for is the viewer's.
  if (!pausedByPage && started && !video.ended) pausedByViewer = true;
});
video.addEventListener('play', () => {
  pausedByViewer = false;
});

function setTarget(ms: number): void {
  if (ms > targetMs && started) targetRaised = true;
  targetMs = ms;
  consumer.setBufferMs(ms);
}

if (![...latencySelect.options].some((o) => Number(o.value) === targetMs)) {
  const option = document.createElement('option');
  option.value = String(targetMs);
  option.textContent = `${targetMs / 1000} s`;
  latencySelect.append(option);
}
latencySelect.value = String(targetMs);
latencySelect.addEventListener('change', () => setTarget(Number(latencySelect.value)));

// ---- stats ----

const round3 = (x: number) => Math.round(x * 1000) / 1000;

function aheadOf(ranges: TimeRanges | undefined, t: number): number | null {
  if (!ranges) return null;
  for (let i = 0; i < ranges.length; i++)
    if (ranges.start(i) <= t + 0.05 && t < ranges.end(i)) return Math.round((ranges.end(i) - t) * 1000);
  return ranges.length ? 0 : null;
}

function snapshot(): WarpPlayerStats {
  const quality = video.getVideoPlaybackQuality();
  const ast =
    started && video.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA ? catalog?.availabilityStartTime : undefined;
  const consumerStats = consumer.stats();
  let now = state;
  if (started && state !== 'failed' && !video.error) {
    now = pausedByPage
      ? 'holding for the raised target'
      : pausedByViewer
        ? 'paused'
        : video.readyState < HTMLMediaElement.HAVE_FUTURE_DATA
          ? 'waiting for media'
          : 'playing';
  } else if (state === 'waiting for media' && catalog) now = 'buffering';
  return {
    mode: 'warp',
    transport: transportKind,
    state: now,
    latencyMs: ast === undefined ? null : Math.round(serverNow() - (ast + video.currentTime * 1000)),
    bufferMs: started ? aheadOf(video.buffered, video.currentTime) : null,
    targetLatencyMs: targetMs,
    clockOffsetMs,
    playbackRate: video.playbackRate,
    currentTime: Math.round(video.currentTime * 1000) / 1000,
    framesShown: quality.totalVideoFrames - quality.droppedVideoFrames,
    framesDropped: quality.droppedVideoFrames,
    segmentsReceived,
    segmentsSkipped,
    segmentsStopped: consumerStats.segmentsStopped + consumerStats.duplicates,
    stalls,
    catchUpSeeks,
    gapJumps,
    bytesReceived,
    goaways,
    sessionsOpened,
    sessionUrl,
    media: {
      readyState: video.readyState,
      seeking: video.seeking,
      paused: video.paused,
      buffered: rangesOf(video.buffered).map((r) => [round3(r.start), round3(r.end)]),
    },
    tracks: [...buffers.values()].map((b) => ({
      id: b.id,
      kind: b.kind,
      mime: b.mime,
      bufferedMs: aheadOf(b.buffered, video.currentTime),
      buffered: b.buffered ? rangesOf(b.buffered).map((r) => [round3(r.start), round3(r.end)]) : [],
      queuedBytes: b.queued,
    })),
    recent: recent.map((r) => ({ ...r })),
    errors: [...errors],
  };
}

// Not declared on Window: the DASH player page declares its own pushcastStats there.
(window as unknown as { pushcastStats: () => WarpPlayerStats }).pushcastStats = snapshot;

function ms(n: number | null): string {
  return n === null ? '–' : `${n} ms`;
}

function bytes(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.round(n / 1e3)} kB`;
}

function render(): void {
  const s = snapshot();
  const rows: [string, string][] = [
    ['transport', s.transport ?? '–'],
    ['state', s.state],
    ['latency', ms(s.latencyMs)],
    ['buffer', ms(s.bufferMs)],
    ['target', `${s.targetLatencyMs} ms`],
    ['playback rate', `${s.playbackRate.toFixed(2)}x`],
    ['frames shown', String(s.framesShown)],
    ['segments received', String(s.segmentsReceived)],
    ['segments skipped', String(s.segmentsSkipped)],
    ['stalls', String(s.stalls)],
    ['bytes received', bytes(s.bytesReceived)],
    ['GOAWAYs followed', String(s.goaways)],
    ['tracks', s.tracks.map((t) => t.id).join(', ') || '–'],
  ];
  if (s.errors.length) rows.push(['last note', s.errors.at(-1)!]);
  renderFigures(panel, rows);
  renderTable(
    segmentTable,
    s.recent.map((r) => [
      r.track,
      r.number === null ? `@${r.time.toFixed(1)} s` : String(r.number),
      r.why ? `${r.state} (${r.why})` : r.state,
      r.bytes ? bytes(r.bytes) : '',
    ]),
  );
  messageLine.textContent = problem;
}

setInterval(tick, TICK_MS);
setInterval(render, 500);
render();
void syncClock().then(connect);
