/**
 * Warp playback into one video element (draft-lcurley-warp-00 §3.4): a Warp session for a broadcast over
 * WebTransport (or the WebSocket fallback), its streams fed to the isomorphic WarpConsumer (decode order
 * per track, dependencies, skipping what is later than the viewer's latency target), and the media it
 * hands over appended to one SourceBuffer per track.
 *
 * - Transport: ../transport/connect.ts races native WebTransport (to the origin's HTTP/3 port, the
 *   certificate trusted by the hashes the origin publishes) against the WebSocket fallback, unless told
 *   to use one only.
 * - Latency target: the consumer's buffer (a segment is due to play the target after its start, and what
 *   has not come of the ones before it by then is skipped) and the playback delay: ./latency.ts keeps the
 *   playhead at (live point − target).
 * - The timeline: catalog.availabilityStartTime maps presentation time to the server's wall clock (the
 *   DASH timeline's mapping). The server's clock is read from its /time (UTCTiming) once, so that a viewer
 *   whose clock is off still plays at the target.
 * - GOAWAY (§5.4): a second session to the new URL, in parallel, feeding the same consumer (it drops the
 *   copies); the old session is left to close.
 * - A session that closes without a successor: with `reconnect`, a new one with backoff; without it, the
 *   playback reports itself failed (`onFailure`), for a player that moves to another mode instead.
 * - **Renditions**: with several video renditions in the catalog (and no `tracks` given), a RenditionChooser
 *   (src/warp/abr.ts) picks one from how each GoP arrives and asks for it (SELECT on a unidirectional
 *   stream, src/warp/select.ts); the consumer hands the new init over at the switch point and it is
 *   appended in line, to the one video SourceBuffer (`changeType` when the codec string differs).
 */
import { TIME_PATH, WEBTRANSPORT_INFO_PATH, segmentNumberOf } from '../../media/live/url-scheme.js';
import { RenditionChooser, type RenditionChoice } from '../../warp/abr.js';
import type { WarpCatalog, WarpCatalogTrack } from '../../warp/catalog.js';
import { WarpConsumer, type IncomingWarpStream, type SegmentRef } from '../../warp/consumer.js';
import { encodeSelectStream } from '../../warp/select.js';
import { connectTransport, type ConnectedTransport, type ConnectTransportOptions } from '../transport/connect.js';
import { planPlayhead, type TimeRange } from './latency.js';
import { TrackBuffer } from './media.js';
import type { WarpPlayerStats, WarpSegmentRecord, WarpTransportKind } from './stats.js';
import { stopReason } from './stop-reason.js';

const MAX_ERRORS = 20;
const RECENT_SEGMENTS = 12;
const TICK_MS = 100;
/** How long WebTransport runs alone before the WebSocket starts too (connect.ts's race), ms. */
const HEAD_START_MS = 1000;
const RECONNECT_MIN_MS = 1000;
const RECONNECT_MAX_MS = 10_000;
/** GOAWAY targets remembered so that one is followed once. */
const MAX_FOLLOWED = 32;
/** How long a GOAWAY's successor may take to publish its certificate hashes before the move goes on without. */
const GOAWAY_INFO_TIMEOUT_MS = 2000;

/** What a pushcast server publishes at WEBTRANSPORT_INFO_PATH: its WebTransport port and certificate hashes. */
interface WebTransportInfo {
  port: number;
  serverCertificateHashes?: { algorithm: string; value: string }[];
}

/** The published hashes as WebTransport takes them (serverCertificateHashes). */
function certificateHashesOf(info: WebTransportInfo): WebTransportHash[] | undefined {
  return info.serverCertificateHashes?.map((h) => ({ algorithm: h.algorithm, value: hexBytes(h.value) }));
}

export interface WarpPlaybackOptions {
  /** The element media goes to; the playback owns its `src` until destroyed. */
  video: HTMLVideoElement;
  /** The origin (page origin or another), whose /time, WebTransport details and /warp/<broadcast> are used. */
  origin: string;
  broadcast?: string;
  token?: string;
  /** Track ids to receive (the session's `tracks`), default all. */
  tracks?: string;
  /** Only this transport. */
  transport?: WarpTransportKind;
  /** The WebSocket fallback's URL, when not on the origin itself (e.g. beside a page on another port). */
  webSocketUrl?: string;
  /** The viewer's latency target, ms. */
  targetMs: number;
  /** A session that closes without a successor is replaced (with backoff); false: the playback fails. */
  reconnect: boolean;
  /** Start at the first media, not at (live − target): taking over from another mode (./latency.ts). */
  startEarly?: boolean;
  /** A note for the viewer (`show`: the problem of the moment) or for the record only. */
  onNote?: (text: string, show: boolean) => void;
  /** The playback cannot go on by itself (no session, or the session closed and `reconnect` is off). */
  onFailure?: (why: string) => void;
}

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

function hexBytes(hex: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array((hex.match(/../g) ?? []).map((h) => parseInt(h, 16)));
}

function rangesOf(t: TimeRanges): TimeRange[] {
  const out: TimeRange[] = [];
  for (let i = 0; i < t.length; i++) out.push({ start: t.start(i), end: t.end(i) });
  return out;
}

function aheadOf(ranges: TimeRanges | undefined, t: number): number | null {
  if (!ranges) return null;
  for (let i = 0; i < ranges.length; i++)
    if (ranges.start(i) <= t + 0.05 && t < ranges.end(i)) return Math.round((ranges.end(i) - t) * 1000);
  return ranges.length ? 0 : null;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

function mimeOf(t: WarpCatalogTrack): string {
  return `${t.kind}/mp4; codecs="${t.codec}"`;
}

export class WarpPlayback {
  private readonly video: HTMLVideoElement;
  private readonly origin: URL;
  private readonly broadcast: string;
  private targetMs: number;
  private readonly errors: string[] = [];
  private lastError = { text: '', count: 0 };
  /** The problem of the moment, in words; cleared when playback runs again. */
  problem = '';
  private state = 'connecting';
  private transportKind: WarpTransportKind | null = null;
  private sessionUrl: string | null = null;
  private sessionsOpened = 0;
  private goaways = 0;
  private bytesReceived = 0;
  private segmentsReceived = 0;
  private segmentsSkipped = 0;
  private stalls = 0;
  private catchUpSeeks = 0;
  private gapJumps = 0;
  private readonly recent: WarpSegmentRecord[] = [];
  private readonly records = new Map<SegmentRef, WarpSegmentRecord>();
  private clockOffsetMs = 0;
  private readonly mediaSource = new MediaSource();
  private readonly objectUrl: string;
  private readonly sourceOpen: Promise<void>;
  private catalog: WarpCatalog | undefined;
  private readonly buffers = new Map<'video' | 'audio', TrackBuffer>();
  private readonly consumer: WarpConsumer;
  private readonly sessions = new Set<LiveSession>();
  private newest: LiveSession | undefined;
  private certificateHashes: WebTransportHash[] | undefined;
  private webTransportHost: string | undefined;
  private readonly followed = new Set<string>();
  private reconnectDelay = RECONNECT_MIN_MS;
  /**
   * A GOAWAY's URL that could not be followed: once the old session is gone, reconnecting tries it and the
   * first server in turn (the server that sent it away is leaving) until a session opens.
   */
  private successor: { url: string; kind: WarpTransportKind; next: boolean } | undefined;
  private connecting = false;
  private started = false;
  private pausedByPage = false;
  private pausedByViewer = false;
  private targetRaised = false;
  private wasPlaying = false;
  private destroyed = false;
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private readonly ticker: ReturnType<typeof setInterval>;
  private readonly listeners: [string, EventListener][] = [];
  private chooser: RenditionChooser | undefined;
  private selectSeq = 0;
  private switches = 0;
  /** Where each video rendition starts on the media timeline (s), oldest first: what the playhead shows. */
  private readonly renditionStarts: { at: number; track: string }[] = [];

  constructor(private readonly options: WarpPlaybackOptions) {
    this.video = options.video;
    this.origin = new URL(options.origin);
    this.broadcast = options.broadcast ?? 'live';
    this.targetMs = options.targetMs;
    this.objectUrl = URL.createObjectURL(this.mediaSource);
    this.video.src = this.objectUrl;
    this.sourceOpen = new Promise<void>((resolve) =>
      this.mediaSource.addEventListener('sourceopen', () => resolve(), { once: true }),
    );
    this.consumer = new WarpConsumer(
      {
        catalog: (c) => this.onCatalog(c),
        init: (track, bytes) => this.buffers.get(track.kind)?.appendInit(bytes, track.id, mimeOf(track)),
        progress: (segment, bytes, elapsedMs) => {
          if (this.kindOf(segment.track) === 'video')
            this.chose(
              this.chooser?.progress(
                segment.track,
                bytes,
                elapsedMs,
                (this.catalog?.segmentDuration ?? 2) * 1000,
                this.serverNow(),
                segment,
              ),
            );
        },
        arrived: (segment, arrival) => {
          if (this.kindOf(segment.track) === 'video')
            this.chose(this.chooser?.arrived(segment.track, arrival, this.serverNow()));
        },
        data: (segment, bytes) => this.onData(segment, bytes),
        end: (segment, complete) => this.onEnd(segment, complete),
        skip: (track, time, why) => this.onSkip(track, time, why),
        goaway: (url) => this.followGoaway(url),
      },
      { bufferMs: this.targetMs, now: () => this.serverNow() },
    );
    this.listen('error', () => {
      this.state = 'failed';
      this.note(
        `the video element stopped: ${this.video.error?.message || `media error ${this.video.error?.code ?? ''}`}`,
      );
      this.options.onFailure?.('the video element stopped');
    });
    this.listen('playing', () => {
      this.wasPlaying = true;
      this.problem = '';
    });
    this.listen('waiting', () => {
      if (this.started && this.wasPlaying && !this.video.seeking) this.stalls++;
    });
    this.listen('pause', () => {
      // The element pauses itself when it ends; only a pause nobody here asked for is the viewer's.
      if (!this.pausedByPage && this.started && !this.video.ended) this.pausedByViewer = true;
    });
    this.listen('play', () => {
      this.pausedByViewer = false;
    });
    this.ticker = setInterval(() => this.tick(), TICK_MS);
    void this.syncClock().then(() => this.connect());
  }

  /** Ends every session, timer and listener, and detaches the media; the element is left empty. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    clearInterval(this.ticker);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const [type, listener] of this.listeners) this.video.removeEventListener(type, listener);
    for (const s of this.sessions) this.closeSession(s, 'viewer left');
    this.sessions.clear();
    this.consumer.close();
    for (const b of this.buffers.values()) b.detach();
    if (this.video.src === this.objectUrl) {
      this.video.removeAttribute('src');
      this.video.load();
    }
    URL.revokeObjectURL(this.objectUrl);
  }

  /** The viewer's latency target, ms: the consumer's buffer and the playback delay. */
  setTarget(ms: number): void {
    if (ms > this.targetMs && this.started) this.targetRaised = true;
    this.targetMs = ms;
    this.consumer.setBufferMs(ms);
  }

  get target(): number {
    return this.targetMs;
  }

  private listen(type: string, listener: EventListener): void {
    this.video.addEventListener(type, listener);
    this.listeners.push([type, listener]);
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.destroyed) fn();
    }, ms);
    this.timers.add(t);
  }

  /** Notes `text` (a repeat counts up instead of filling the list); `show` makes it the problem of the moment. */
  private note(text: string, show = true): void {
    if (show) this.problem = text;
    const stamp = new Date().toISOString();
    if (text === this.lastError.text && this.errors.length > 0) {
      this.lastError.count++;
      this.errors[this.errors.length - 1] = `${stamp} ${text} (${this.lastError.count} times)`;
    } else {
      this.lastError = { text, count: 1 };
      this.errors.push(`${stamp} ${text}`);
      if (this.errors.length > MAX_ERRORS) this.errors.shift();
    }
    this.options.onNote?.(text, show);
  }

  /**
   * Why no session opened, in plain words. Browsers hide the status of a refused session (WebTransport:
   * "Opening handshake failed."; WebSocket: close code 1006), so a refusal is told by its shape: every
   * transport was turned away during its handshake.
   */
  private explainNoSession(error: unknown): string {
    const text = error instanceof Error ? error.message : String(error);
    // connect.ts: "no transport to <url>: webtransport: <why>; websocket: <why>".
    const failures = text.replace(/^no transport to \S+: /, '').split('; ');
    const turnedAway = failures.every((f) => /handshake|\(1006\b/i.test(f));
    const details = `(${failures.join('; ')})`;
    if (!turnedAway) return `Cannot open a Warp session ${details}`;
    const hint =
      this.options.token === undefined
        ? `The broadcast may need a token: add ?token=… to this page's address.`
        : `Is the token right? (?token=${this.options.token} in this page's address.)`;
    return `The server turned the Warp session for "${this.broadcast}" away. ${hint} Otherwise there is no broadcast "${this.broadcast}", or the server cannot take more viewers ${details}`;
  }

  // ---- the server's clock ----

  private serverNow(): number {
    return Date.now() + this.clockOffsetMs;
  }

  /** Reads the origin's clock (UTCTiming, an ISO instant), halfway through the round trip. */
  private async syncClock(): Promise<void> {
    const url = new URL(TIME_PATH, this.origin);
    try {
      const sent = Date.now();
      const response = await fetch(url, { cache: 'no-store' });
      const server = Date.parse((await response.text()).trim());
      const received = Date.now();
      if (!response.ok || !Number.isFinite(server)) throw new Error(`${response.status}, not a time`);
      this.clockOffsetMs = Math.round(server - (sent + received) / 2);
    } catch (error) {
      this.note(`cannot read the server's clock at ${url} (${(error as Error).message}): using this computer's`, false);
    }
  }

  // ---- media ----

  private kindOf(id: string): 'video' | 'audio' | undefined {
    return this.catalog?.tracks.find((t) => t.id === id)?.kind;
  }

  /** The SourceBuffer of a track's kind (a kind's renditions share it). */
  private playedTrack(id: string): TrackBuffer | undefined {
    const kind = this.kindOf(id);
    return kind && this.buffers.get(kind);
  }

  /** The chooser asked for another rendition: SELECT on the newest session. */
  private chose(choice: RenditionChoice | undefined): void {
    if (!choice) return;
    this.switches++;
    this.note(`rendition ${choice.track}: ${choice.why}`, false);
    if (this.newest) this.sendSelect(this.newest, choice.track);
  }

  private sendSelect(s: LiveSession, track: string): void {
    const bytes = encodeSelectStream(this.selectSeq++, track);
    s.connected.transport
      .createUnidirectionalStream()
      .then(async (stream) => {
        const writer = stream.getWriter();
        await writer.write(bytes as Uint8Array<ArrayBuffer>);
        await writer.close();
      })
      .catch((error: unknown) => this.note(`SELECT ${track} not sent: ${(error as Error).message}`, false));
  }

  /** The video rendition at the playhead. */
  private renditionAt(t: number): string | null {
    let out: string | null = null;
    for (const r of this.renditionStarts) if (r.at <= t + 0.001) out = r.track;
    return out ?? this.renditionStarts[0]?.track ?? null;
  }

  /** One SourceBuffer per kind: the best video rendition the session carries, and the first audio track. */
  private onCatalog(c: WarpCatalog): void {
    if (this.catalog) return; // a second session's catalog (GOAWAY, reconnect): the tracks stay
    this.catalog = c;
    const supported = c.tracks.filter((t) => {
      if (MediaSource.isTypeSupported(mimeOf(t))) return true;
      this.note(`this browser cannot play ${mimeOf(t)}: track ${t.id} is left out`);
      return false;
    });
    const video0 = supported.filter((t) => t.kind === 'video').sort((a, b) => b.bandwidth - a.bandwidth)[0];
    const audio0 = supported.find((t) => t.kind === 'audio');
    if (!video0 && !audio0) {
      this.state = 'failed';
      this.note(
        `nothing in broadcast ${c.broadcast} can be played here (${c.tracks.map(mimeOf).join(', ') || 'no tracks'})`,
      );
      this.options.onFailure?.('nothing in the broadcast can be played here');
      return;
    }
    const videos = supported.filter((t) => t.kind === 'video');
    if (this.options.tracks === undefined && videos.length > 1)
      this.chooser = new RenditionChooser(videos, video0?.id, {
        otherBps: audio0?.bandwidth ?? 0,
      });
    for (const t of [video0, audio0]) {
      if (t)
        this.buffers.set(
          t.kind,
          new TrackBuffer(
            t.id,
            t.kind,
            mimeOf(t),
            () => this.video.currentTime,
            (text) => this.note(text),
          ),
        );
    }
    void this.sourceOpen.then(() => {
      if (this.destroyed) return;
      // Live: no end. With a finite duration (MSE raises it to the buffered end as media comes), a playhead
      // that reaches the newest media — a segment cut short at its end — would "end" the element, pausing it.
      try {
        this.mediaSource.duration = Infinity;
      } catch (error) {
        this.note(`cannot make the media endless (live): ${(error as Error).message}`);
      }
      // Every SourceBuffer before the first append: MSE takes no new ones once media has started.
      for (const b of this.buffers.values()) {
        try {
          b.attach(this.mediaSource.addSourceBuffer(b.mime));
        } catch (error) {
          this.note(`cannot add a ${b.kind} SourceBuffer for ${b.mime}: ${(error as Error).message}`);
        }
      }
    });
  }

  private recordOf(segment: SegmentRef): WarpSegmentRecord {
    let r = this.records.get(segment);
    if (!r) {
      const timescale = this.catalog?.tracks.find((t) => t.id === segment.track)?.timescale ?? 1;
      const number = segmentNumberOf(segment.path ?? '');
      r = {
        track: segment.track,
        number: number ?? null,
        state: 'receiving',
        bytes: 0,
        time: segment.decodeTime / timescale,
      };
      this.records.set(segment, r);
      this.remember(r);
    }
    return r;
  }

  private remember(r: WarpSegmentRecord): void {
    this.recent.unshift(r);
    if (this.recent.length > RECENT_SEGMENTS) {
      const gone = this.recent.pop()!;
      for (const [ref, rec] of this.records) if (rec === gone) this.records.delete(ref);
    }
  }

  private onData(segment: SegmentRef, bytes: Uint8Array): void {
    const buffer = this.playedTrack(segment.track);
    if (!buffer) return;
    const r = this.recordOf(segment);
    if (r.bytes === 0 && buffer.kind === 'video' && this.renditionStarts.at(-1)?.track !== segment.track) {
      this.renditionStarts.push({ at: r.time, track: segment.track });
      if (this.renditionStarts.length > 50) this.renditionStarts.shift();
    }
    r.bytes += bytes.length;
    buffer.appendMedia(segment, bytes);
  }

  private onEnd(segment: SegmentRef, complete: boolean): void {
    const buffer = this.playedTrack(segment.track);
    if (!buffer) return;
    const r = this.recordOf(segment);
    if (complete) {
      this.segmentsReceived++;
      r.state = 'received';
    } else {
      r.state = 'cut';
      buffer.segmentCut(segment);
    }
  }

  private onSkip(trackId: string, decodeTime: number, why: string): void {
    if (!this.playedTrack(trackId)) return;
    // 'stalled' and 'missing' are the segments given up on (§3.4); 'late' and 'old' are streams stopped
    // because their media could no longer be played (a 'late' one shows up as 'missing' when its turn comes).
    if (why === 'stalled' || why === 'missing') this.segmentsSkipped++;
    if (why !== 'old' && this.kindOf(trackId) === 'video') this.chose(this.chooser?.cut(trackId, this.serverNow()));
    const timescale = this.catalog?.tracks.find((t) => t.id === trackId)?.timescale ?? 1;
    if (why !== 'stalled')
      this.remember({ track: trackId, number: null, state: 'skipped', why, bytes: 0, time: decodeTime / timescale });
    else
      for (const r of this.recent)
        if (r.track === trackId && Math.abs(r.time - decodeTime / timescale) < 0.001)
          (r.state = 'skipped'), (r.why = why);
  }

  // ---- sessions ----

  private sessionQuery(url: URL): URL {
    const { token, tracks } = this.options;
    if (token !== undefined && !url.searchParams.has('token')) url.searchParams.set('token', token);
    if (tracks !== undefined && !url.searchParams.has('tracks')) url.searchParams.set('tracks', tracks);
    if (!url.searchParams.has('latency')) url.searchParams.set('latency', String(this.targetMs));
    return url;
  }

  /** The WebSocket fallback: the given URL, else on the origin itself (ws for http, wss for https). */
  private webSocketUrl(pathAndQuery: string): string {
    const base = this.options.webSocketUrl ?? this.origin.href;
    const u = new URL(pathAndQuery, base);
    u.protocol = u.protocol === 'https:' || u.protocol === 'wss:' ? 'wss:' : 'ws:';
    return this.sessionQuery(u).href;
  }

  /** The first session: WebTransport on the origin's HTTP/3 port (from its well-known JSON), and the fallback. */
  private async firstTarget(): Promise<SessionTarget> {
    const force = this.options.transport;
    const path = `/warp/${encodeURIComponent(this.broadcast)}`;
    const webSocketUrl = this.webSocketUrl(path);
    const onlyWebSocket = (why?: string): SessionTarget => {
      if (why && force === 'webtransport') throw new Error(`no WebTransport: ${why}`);
      if (why) this.note(`${why}: using the WebSocket fallback`, false);
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
    const infoUrl = new URL(WEBTRANSPORT_INFO_PATH, this.origin);
    let response: Response;
    let info: WebTransportInfo;
    try {
      response = await fetch(infoUrl, { cache: 'no-store' });
      info = response.ok ? await response.json() : { port: 0 };
    } catch (error) {
      return onlyWebSocket(`cannot read ${infoUrl} (${(error as Error).message})`);
    }
    if (!response.ok)
      return onlyWebSocket(
        `the origin offers no WebTransport (${infoUrl}: ${response.status} ${(await response.text().catch(() => '')).trim()})`,
      );
    this.webTransportHost = `${this.origin.hostname}:${info.port}`;
    this.certificateHashes = certificateHashesOf(info);
    const url = this.sessionQuery(new URL(`https://${this.webTransportHost}${path}`)).href;
    return {
      url,
      options: {
        forceTransport: force,
        headStartMs: HEAD_START_MS,
        serverCertificateHashes: this.certificateHashes?.length ? this.certificateHashes : undefined,
        webSocketUrl,
      },
    };
  }

  /**
   * Where a GOAWAY (§5.4) sends a session of `kind`: the same transport, to the new URL. Published hashes
   * vouch for their own server's certificate only: another server's are read from it, as the first
   * server's were; a server that publishes none is left to the Web PKI.
   */
  private async goawayTarget(url: string, kind: WarpTransportKind): Promise<SessionTarget> {
    const u = this.sessionQuery(new URL(url, this.origin));
    const sameServer = u.host === this.webTransportHost || u.host === this.origin.host;
    if (kind === 'webtransport') {
      return {
        url: u.href,
        options: {
          forceTransport: 'webtransport',
          serverCertificateHashes: sameServer ? this.certificateHashes : await this.publishedHashes(u),
        },
      };
    }
    // WebSocket: where the first one went when it is the same server; else at the URL itself (https → wss).
    const webSocketUrl = sameServer ? this.webSocketUrl(u.pathname + u.search) : u.href.replace(/^http/, 'ws');
    return { url: webSocketUrl, options: { forceTransport: 'websocket', webSocketUrl } };
  }

  /**
   * The certificate hashes the server at `u` publishes (its WEBTRANSPORT_INFO_PATH over HTTPS on the same
   * host and port number, as `pushcast serve` and `pushcast relay` serve it), if they are for that port.
   */
  private async publishedHashes(u: URL): Promise<WebTransportHash[] | undefined> {
    const infoUrl = new URL(WEBTRANSPORT_INFO_PATH, `https://${u.host}`);
    try {
      const response = await fetch(infoUrl, { cache: 'no-store', signal: AbortSignal.timeout(GOAWAY_INFO_TIMEOUT_MS) });
      if (!response.ok) throw new Error(`${response.status}`);
      const info = (await response.json()) as WebTransportInfo;
      if (String(info.port) !== (u.port || '443')) throw new Error(`they are for port ${info.port}`);
      return certificateHashesOf(info);
    } catch (error) {
      this.note(`no certificate hashes from ${infoUrl} (${(error as Error).message}): the Web PKI decides`, false);
      return undefined;
    }
  }

  private incoming(readable: ReadableStream<Uint8Array>): IncomingWarpStream {
    const reader = readable.getReader();
    let stopped = false;
    const counted = (n: number) => (this.bytesReceived += n);
    return {
      async *[Symbol.asyncIterator]() {
        for (;;) {
          const { value, done } = await reader.read();
          if (done || stopped) return;
          counted(value.byteLength);
          yield value;
        }
      },
      stop(code: number) {
        if (stopped) return;
        stopped = true;
        // STOP_SENDING with `code`; `stopReason` never throws, so the stream is stopped in every browser.
        const reason = stopReason((globalThis as { WebTransportError?: unknown }).WebTransportError, code);
        reader.cancel(reason).catch(() => undefined);
      },
    };
  }

  private attach(connected: ConnectedTransport, target: SessionTarget): LiveSession {
    const s: LiveSession = {
      connected,
      url: connected.kind === 'websocket' ? (target.options.webSocketUrl ?? target.url) : target.url,
      movedAway: false,
    };
    this.sessions.add(s);
    this.newest = s;
    this.successor = undefined;
    // A new session (GOAWAY, reconnect) starts on the default rendition: it is told the one chosen.
    if (this.chooser) this.sendSelect(s, this.chooser.current);
    this.sessionsOpened++;
    this.transportKind = connected.kind;
    this.sessionUrl = s.url;
    this.reconnectDelay = RECONNECT_MIN_MS;
    if (connected.kind === 'websocket' && connected.tried.includes('webtransport'))
      this.note(
        `WebTransport to ${target.url} did not open (or not within ${HEAD_START_MS / 1000} s): on the WebSocket fallback`,
        false,
      );
    void (async () => {
      const reader = connected.transport.incomingUnidirectionalStreams.getReader();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done || this.destroyed) return;
          void this.consumer.addStream(this.incoming(value));
        }
      } catch {
        // the session is gone: its `closed` says why
      }
    })();
    connected.transport.closed.then(
      (info) => this.closed(s, info.closeCode ?? 0, info.reason ?? ''),
      (error: unknown) => this.closed(s, undefined, error instanceof Error ? error.message : String(error)),
    );
    return s;
  }

  private closeSession(s: LiveSession, reason: string): void {
    try {
      s.connected.transport.close({ closeCode: 0, reason });
    } catch {
      // still connecting, or gone
    }
  }

  private closed(s: LiveSession, code: number | undefined, reason: string): void {
    if (!this.sessions.delete(s) || this.destroyed) return;
    const why = `${code === undefined ? 'error' : `code ${code}`}${reason ? `: ${reason}` : ''}`;
    if (s.movedAway) this.note(`the ${s.connected.kind} session to ${s.url} closed after GOAWAY (${why})`, false);
    if (this.sessions.size > 0 || this.connecting) return;
    // §4.7: code 0 = the broadcast is over.
    const ended = code === 0 && !s.movedAway;
    if (!this.options.reconnect) {
      this.state = 'failed';
      this.note(ended ? `the broadcast ended (${why})` : `the Warp session closed (${why})`);
      this.options.onFailure?.(`the ${s.connected.kind} session closed (${why})`);
      return;
    }
    this.note(ended ? `the broadcast ended (${why}); trying again` : `the Warp session closed (${why}); reconnecting`);
    this.state = 'reconnecting';
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const delay = this.reconnectDelay;
    this.reconnectDelay = Math.min(RECONNECT_MAX_MS, this.reconnectDelay * 2);
    this.later(delay, () => void this.connect());
  }

  private async connect(): Promise<void> {
    if (this.connecting || this.destroyed) return;
    this.connecting = true;
    try {
      const successor = this.successor;
      if (successor) successor.next = !successor.next;
      const target = successor?.next
        ? await this.goawayTarget(successor.url, successor.kind)
        : await this.firstTarget();
      const connected = await connectTransport(target.url, target.options);
      if (this.destroyed) return this.closeSession({ connected, url: target.url, movedAway: false }, 'viewer left');
      this.attach(connected, target);
      if (this.state === 'connecting' || this.state === 'reconnecting' || this.state === 'failed')
        this.state = 'waiting for media';
    } catch (error) {
      if (this.destroyed) return;
      this.state = 'failed';
      this.note(this.explainNoSession(error));
      if (this.options.reconnect) this.scheduleReconnect();
      else this.options.onFailure?.(error instanceof Error ? error.message : String(error));
    } finally {
      this.connecting = false;
    }
  }

  private followGoaway(url: string): void {
    if (this.followed.has(url) || !this.newest || this.destroyed) return;
    this.followed.add(url);
    if (this.followed.size > MAX_FOLLOWED) this.followed.delete(this.followed.values().next().value!);
    const kind = this.newest.connected.kind;
    for (const s of this.sessions) s.movedAway = true;
    if (!URL.canParse(url, this.origin))
      return this.note(`GOAWAY to ${JSON.stringify(url)}: not a URL; staying on the old session until it closes`);
    this.note(`GOAWAY: moving to ${url}`, false);
    void this.moveTo(url, kind);
  }

  /** A new session at the GOAWAY's URL beside the old one, which closes once it has sent what it had. */
  private async moveTo(url: string, kind: WarpTransportKind): Promise<void> {
    try {
      const target = await this.goawayTarget(url, kind);
      const connected = await connectTransport(target.url, target.options);
      if (this.destroyed) return this.closeSession({ connected, url, movedAway: false }, 'viewer left');
      this.goaways++;
      this.attach(connected, target);
    } catch (error) {
      this.successor = { url, kind, next: false };
      this.note(
        `GOAWAY to ${url} could not be followed (${(error as Error).message}): staying on the old session until it closes, then trying again`,
      );
    }
  }

  // ---- the playhead ----

  private tick(): void {
    const video = this.video;
    if (this.pausedByViewer || video.error) return;
    const stuck = !video.paused && video.readyState < HTMLMediaElement.HAVE_FUTURE_DATA;
    const live = this.catalog ? (this.serverNow() - this.catalog.availabilityStartTime) / 1000 : undefined;
    const action = planPlayhead({
      ranges: rangesOf(video.buffered),
      currentTime: video.currentTime,
      target: this.targetMs / 1000,
      live,
      started: this.started,
      stuck,
      targetRaised: this.targetRaised,
      startEarly: this.options.startEarly,
    });
    if (action.seek !== undefined && !video.seeking) {
      video.currentTime = action.seek;
      if (action.why === 'start') {
        this.started = true;
        video
          .play()
          .catch((error: Error) => this.note(`playback did not start by itself (${error.message}): press play`));
      } else if (action.why === 'behind') this.catchUpSeeks++;
      else if (action.why === 'gap') this.gapJumps++;
    }
    if (action.hold) {
      if (!video.paused) {
        this.pausedByPage = true;
        video.pause();
      }
    } else {
      this.targetRaised = false;
      if (this.pausedByPage) {
        this.pausedByPage = false;
        video.play().catch(() => undefined);
      }
    }
    if (video.playbackRate !== action.rate) video.playbackRate = action.rate;
  }

  // ---- stats ----

  /** The picture's age, ms (server clock − the presentation time's wall-clock instant); null before playback. */
  latencyMs(): number | null {
    const ast =
      this.started && this.video.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA
        ? this.catalog?.availabilityStartTime
        : undefined;
    return ast === undefined ? null : Math.round(this.serverNow() - (ast + this.video.currentTime * 1000));
  }

  stats(): WarpPlayerStats {
    const video = this.video;
    const quality = video.getVideoPlaybackQuality();
    const consumerStats = this.consumer.stats();
    let now = this.state;
    if (this.started && this.state !== 'failed' && !video.error) {
      now = this.pausedByPage
        ? 'holding for the raised target'
        : this.pausedByViewer
          ? 'paused'
          : video.readyState < HTMLMediaElement.HAVE_FUTURE_DATA
            ? 'waiting for media'
            : 'playing';
    } else if (this.state === 'waiting for media' && this.catalog) now = 'buffering';
    return {
      mode: 'warp',
      transport: this.transportKind,
      state: now,
      latencyMs: this.latencyMs(),
      bufferMs: this.started ? aheadOf(video.buffered, video.currentTime) : null,
      targetLatencyMs: this.targetMs,
      clockOffsetMs: this.clockOffsetMs,
      playbackRate: video.playbackRate,
      currentTime: round3(video.currentTime),
      framesShown: quality.totalVideoFrames - quality.droppedVideoFrames,
      framesDropped: quality.droppedVideoFrames,
      segmentsReceived: this.segmentsReceived,
      segmentsSkipped: this.segmentsSkipped,
      segmentsStopped: consumerStats.segmentsStopped + consumerStats.duplicates,
      stalls: this.stalls,
      catchUpSeeks: this.catchUpSeeks,
      gapJumps: this.gapJumps,
      bytesReceived: this.bytesReceived,
      goaways: this.goaways,
      rendition: this.renditionAt(video.currentTime),
      renditionChoice: this.chooser?.current ?? null,
      pathRateBps: this.chooser?.pathRateBps ?? null,
      renditionSwitches: this.switches,
      sessionsOpened: this.sessionsOpened,
      sessionUrl: this.sessionUrl,
      media: {
        readyState: video.readyState,
        seeking: video.seeking,
        paused: video.paused,
        buffered: rangesOf(video.buffered).map((r) => [round3(r.start), round3(r.end)]),
      },
      tracks: [...this.buffers.values()].map((b) => ({
        id: b.id,
        kind: b.kind,
        mime: b.mime,
        bufferedMs: aheadOf(b.buffered, video.currentTime),
        buffered: b.buffered ? rangesOf(b.buffered).map((r) => [round3(r.start), round3(r.end)]) : [],
        queuedBytes: b.queued,
      })),
      recent: this.recent.map((r) => ({ ...r })),
      errors: [...this.errors],
    };
  }
}
