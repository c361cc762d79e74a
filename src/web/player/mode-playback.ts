/**
 * One mode playing into one video element, behind one interface, so that the player can run two at once
 * (make-before-break) and not care which. Each mode's code is imported when first used: a Warp viewer
 * never downloads dash.js, a DASH viewer never the Warp consumer.
 */
import type { DeliveryDescription } from '../../media/live/delivery.js';
import type { DashPlayback } from '../dash/playback.js';
import type { DashPlayerStats } from '../dash/stats.js';
import type { WarpPlayback } from '../warp/playback.js';
import type { WarpPlayerStats } from '../warp/stats.js';
import type { BytesByRoute, PlayerMode } from './stats.js';

/** Multicast: this many segment deliveries in a row by unicast, none by push, and the mode is failing. */
const UNICAST_RUN_FAILS = 4;
/**
 * Warp: a live broadcast sends a chunk every fraction of a second; this long without a byte, after media
 * came, and the session is failing (UDP blocked on the way: QUIC itself would wait for its idle timeout).
 */
const WARP_SILENCE_FAILS_MS = 800;

/** What a player's Warp sessions carry: the token and tracks, and where, when not at the origin's Warp. */
export interface WarpSessionOptions {
  token?: string;
  tracks?: string;
  /** A Warp session URL (a relay's, `https://host:port/warp/<broadcast>`) instead of the description's. */
  url?: string;
}

export interface ModeContext {
  video: HTMLVideoElement;
  description: DeliveryDescription;
  /** The description's URL: what its relative URLs are relative to. */
  base: string;
  targetMs: number;
  /** A forced mode recovers by itself (Warp reconnects); a mode among others fails, and the player moves. */
  forced: boolean;
  /** Taking over from a failing mode: show the picture as soon as there is one. */
  takingOver: boolean;
  warp: WarpSessionOptions;
  onNote: (text: string, show: boolean) => void;
  onFailure: (why: string) => void;
}

export interface Rendition {
  id: string;
  height: number;
  bandwidth: number;
}

export interface ModePlayback {
  readonly mode: PlayerMode;
  readonly video: HTMLVideoElement;
  /** Playing at the live point by this mode's own path (for multicast: pushes arriving). */
  ready(): boolean;
  /** Why the mode no longer does its job though it may still play (multicast served by unicast only). */
  failing(): string | undefined;
  latencyMs(): number | null;
  /** The problem of the moment, in words, for the viewer ('' when none). */
  problem(): string;
  setTarget(ms: number): void;
  bytes(): BytesByRoute;
  /** The video renditions the viewer may pin (DASH modes; Warp chooses its own, src/warp/abr.ts). */
  renditions(): Rendition[];
  setRendition(id: string): void;
  details(): { dash: DashPlayerStats | null; warp: WarpPlayerStats | null };
  destroy(): void;
}

const NO_BYTES: BytesByRoute = { push: 0, repair: 0, unicast: 0, warp: 0 };

class WarpMode implements ModePlayback {
  private lastBytes = 0;
  private lastByteAt = performance.now();

  constructor(
    readonly mode: PlayerMode,
    readonly video: HTMLVideoElement,
    private readonly playback: WarpPlayback,
  ) {}

  ready(): boolean {
    const s = this.playback.stats();
    const transport =
      this.mode === 'warp-webtransport' ? 'webtransport' : this.mode === 'warp-websocket' ? 'websocket' : s.transport;
    return s.state === 'playing' && s.transport === transport && s.latencyMs !== null && s.framesShown > 0;
  }

  failing(): string | undefined {
    const bytes = this.playback.stats().bytesReceived;
    const now = performance.now();
    if (bytes !== this.lastBytes || bytes === 0) {
      this.lastBytes = bytes;
      this.lastByteAt = now;
      return undefined;
    }
    const silent = now - this.lastByteAt;
    return silent > WARP_SILENCE_FAILS_MS ? `no Warp data for ${Math.round(silent)} ms` : undefined;
  }

  latencyMs(): number | null {
    return this.playback.latencyMs();
  }

  problem(): string {
    return this.playback.problem;
  }

  setTarget(ms: number): void {
    this.playback.setTarget(ms);
  }

  bytes(): BytesByRoute {
    return { ...NO_BYTES, warp: this.playback.stats().bytesReceived };
  }

  renditions(): Rendition[] {
    return [];
  }

  setRendition(): void {
    // The Warp playback chooses its video rendition itself (RenditionChooser), within the session.
  }

  details() {
    return { dash: null, warp: this.playback.stats() };
  }

  destroy(): void {
    this.playback.destroy();
  }
}

class DashMode implements ModePlayback {
  private lastPushes = 0;
  private unicastSincePush = 0;
  private lastUnicast = 0;

  constructor(
    readonly mode: PlayerMode,
    readonly video: HTMLVideoElement,
    private readonly playback: DashPlayback,
  ) {}

  ready(): boolean {
    const s = this.playback.stats();
    if (!s.playing || s.latency === null || s.framesDecoded === 0) return false;
    if (this.mode !== 'multicast') return true;
    return !!s.multicast && s.multicast.segments.push + s.multicast.segments.repaired > 0;
  }

  failing(): string | undefined {
    if (this.mode !== 'multicast') return undefined;
    const m = this.playback.stats().multicast;
    if (!m) return undefined;
    const pushes = m.segments.push + m.segments.repaired;
    if (pushes !== this.lastPushes) {
      this.lastPushes = pushes;
      this.unicastSincePush = 0;
    } else this.unicastSincePush += m.segments.unicast - this.lastUnicast;
    this.lastUnicast = m.segments.unicast;
    if (this.unicastSincePush < UNICAST_RUN_FAILS) return undefined;
    const sessions = m.sessions.map((s) => `${s.representation} ${s.state}`).join(', ') || 'none';
    return `multicast pushes stopped: ${this.unicastSincePush} segments in a row by unicast (gateway sessions: ${sessions})`;
  }

  problem(): string {
    return this.playback.problem;
  }

  latencyMs(): number | null {
    const l = this.playback.latency();
    return l === null ? null : Math.round(l * 1000);
  }

  setTarget(ms: number): void {
    this.playback.setTarget(ms);
  }

  bytes(): BytesByRoute {
    const s = this.playback.stats();
    const m = s.multicast;
    if (m) return { ...NO_BYTES, push: m.bytes.push, repair: m.repairBytes, unicast: m.bytes.unicast };
    return { ...NO_BYTES, unicast: this.playback.bytesLoaded };
  }

  renditions(): Rendition[] {
    return this.playback.renditions();
  }

  setRendition(id: string): void {
    this.playback.setRendition(id);
  }

  details() {
    return { dash: this.playback.stats(), warp: null };
  }

  destroy(): void {
    this.playback.destroy();
  }
}

/** Starts `mode` into `ctx.video`; the description says where. */
export async function startMode(mode: PlayerMode, ctx: ModeContext): Promise<ModePlayback> {
  const d = ctx.description;
  if (mode === 'warp' || mode === 'warp-webtransport' || mode === 'warp-websocket') {
    if (!d.warp && !ctx.warp.url) throw new Error('the origin offers no Warp');
    const { WarpPlayback } = await import('../warp/playback.js');
    const session = new URL(ctx.warp.url ?? d.warp!.path, ctx.base);
    const playback = new WarpPlayback({
      video: ctx.video,
      origin: session.origin,
      broadcast: decodeURIComponent(session.pathname.replace(/^\/warp\//, '')),
      token: ctx.warp.token,
      tracks: ctx.warp.tracks,
      transport: mode === 'warp' ? undefined : mode === 'warp-webtransport' ? 'webtransport' : 'websocket',
      targetMs: ctx.targetMs,
      reconnect: ctx.forced,
      startEarly: ctx.takingOver,
      onNote: ctx.onNote,
      onFailure: ctx.onFailure,
    });
    return new WarpMode(mode, ctx.video, playback);
  }
  const { DashPlayback, controlByServiceWorker } = await import('../dash/playback.js');
  if (mode === 'multicast') {
    if (!d.multicast) throw new Error('the origin advertises no multicast');
    const problem = await controlByServiceWorker(
      new URL(d.multicast.serviceWorker, ctx.base).href,
      new URL(d.multicast.scope, ctx.base).href,
    );
    if (problem) throw new Error(problem);
  }
  const manifest = new URL(mode === 'multicast' ? d.multicast!.manifest : d.dash.manifest, ctx.base).href;
  const playback = new DashPlayback({
    video: ctx.video,
    manifest,
    kind: mode === 'multicast' ? 'multicast' : mode === 'prefetch' ? 'prefetch' : 'unicast',
    targetMs: ctx.targetMs,
    originTargetMs: d.targetLatencyMs,
    onNote: ctx.onNote,
    onFailure: ctx.onFailure,
  });
  return new DashMode(mode, ctx.video, playback);
}
