/**
 * The pushcast player: one live broadcast over the best delivery mode this browser and network allow,
 * moving between modes on its own (docs/player.md).
 *
 * - What to try: the origin's delivery description (`delivery.json` beside the MPD,
 *   src/media/live/delivery.ts) gives the modes offered and the operator's order; modes this browser
 *   cannot run (no WebTransport, no Service Worker, a page of another origin for multicast) are left out
 *   with the reason.
 * - Start: the first mode of the order that produces media within `probeMs`; one that does not is
 *   abandoned for the next.
 * - Make-before-break: a new mode plays into a second video element, under the one on screen, at its own
 *   live point (every mode holds the same target behind the origin's clock); once it plays, the two swap
 *   and the old mode is destroyed. A failing mode keeps showing what it has buffered meanwhile.
 * - Down: the mode on screen failed (its session closed, pushes stopped) → the modes after it, in order.
 * - Up: every `holdDownMs` after the last move, the best mode above the current one is tried the same way.
 */
import {
  DELIVERY_MODES,
  type DeliveryDescription,
  type DeliveryMode,
  offeredModes,
  parseDeliveryDescription,
} from '../../media/live/delivery.js';
import { FrameClock } from './frame-clock.js';
import { startMode, type ModePlayback, type Rendition, type WarpSessionOptions } from './mode-playback.js';
import { PlayerError } from './player-error.js';
import type { BytesByRoute, ModeAttempt, PlayerMode, PlayerMove, PlayerStats } from './stats.js';

/** The events a PushcastPlayer dispatches (CustomEvent, `detail` as noted). */
export const PlayerEvents = {
  /** detail: PlayerMove. */
  MODE_CHANGE: 'modechange',
  /** detail: PlayerError; the player failed (nothing plays) or a mode failed (it moves on). */
  ERROR: 'error',
  /** detail: { text, show }: a note for the viewer or the record. */
  NOTE: 'note',
} as const;

export interface PushcastPlayerOptions {
  /** The broadcast's MPD (`…/live/manifest.mpd`); its delivery description is `delivery.json` beside it. */
  src: string;
  /** Where the player puts its video elements (they fill it). */
  container: HTMLElement;
  /** The modes to use, in order, instead of the origin's; one mode alone is forced (no moves). */
  modes?: PlayerMode[];
  /** The viewer's latency target, ms; default the origin's. */
  targetMs?: number;
  /** A mode that has not produced media within this is abandoned; default 8000 ms. */
  probeMs?: number;
  /** After a move, this long before a better mode is tried; default 30 000 ms. */
  holdDownMs?: number;
  controls?: boolean;
  /** Default true: browsers allow muted autoplay without a gesture. */
  muted?: boolean;
  /** Warp sessions: their token and tracks, and a session URL (a relay's) instead of the origin's. */
  warp?: WarpSessionOptions;
}

const DESCRIPTION_TIMEOUT_MS = 5000;
const MONITOR_MS = 100;
const MAX_ERRORS = 20;
const MAX_MOVES = 50;
const MAX_ATTEMPTS = 50;
const LATENCY_AFTER_MS = 2000;
const FREEZE_WAIT_MS = 3000;
/** A mode moved up to takes over once its frames have come without a gap for this long. */
const STEADY_MS = 500;

interface Running {
  playback: ModePlayback;
  clock: FrameClock;
}

/** What this browser cannot do for `mode`, or undefined when it can try. */
function browserLacks(mode: PlayerMode, src: URL): string | undefined {
  if (typeof MediaSource !== 'function') return 'this browser has no Media Source Extensions';
  if (mode === 'multicast') {
    if (!('serviceWorker' in navigator))
      return 'this browser has no Service Workers (or this page is not https/localhost)';
    if (src.origin !== location.origin)
      return `multicast needs a Service Worker of ${src.origin}, and this page is on ${location.origin}`;
  }
  if (mode === 'warp-webtransport' && typeof (globalThis as { WebTransport?: unknown }).WebTransport !== 'function')
    return isSecureContext
      ? 'this browser has no WebTransport'
      : 'WebTransport needs a secure page (https or localhost)';
  return undefined;
}

export class PushcastPlayer extends EventTarget {
  private readonly src: URL;
  private readonly container: HTMLElement;
  private readonly probeMs: number;
  private readonly holdDownMs: number;
  private description: DeliveryDescription | undefined;
  private order: PlayerMode[] = [];
  private readonly unavailable: Partial<Record<PlayerMode, string>> = {};
  private targetMs: number | undefined;
  private rendition = 'auto';
  private active: Running | undefined;
  private standby: Running | undefined;
  private state: PlayerStats['state'] = 'starting';
  private modeReason = '';
  private message = '';
  private readonly errors: string[] = [];
  private readonly moves: PlayerMove[] = [];
  private readonly attempts: ModeAttempt[] = [];
  private readonly failures = new Map<PlayerMode, string>();
  private retired = { framesShown: 0, framesDropped: 0, stalls: 0, bytes: { push: 0, repair: 0, unicast: 0, warp: 0 } };
  private lastMoveAt = 0;
  private monitor: ReturnType<typeof setInterval> | undefined;
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private destroyed = false;
  /** A move is under way (down or up): one at a time. */
  private moving = false;
  /** The mode on screen failed while a move up was under way. */
  private pendingFailure: { playback: ModePlayback; why: string } | undefined;
  private playing: Promise<void> | undefined;

  constructor(private readonly options: PushcastPlayerOptions) {
    super();
    this.src = new URL(options.src, location.href);
    this.container = options.container;
    this.probeMs = options.probeMs ?? 8000;
    this.holdDownMs = options.holdDownMs ?? 30_000;
    this.targetMs = options.targetMs;
    addEventListener('pagehide', this.onPageHide);
  }

  /** Leaving the page ends its sessions at once (a server would otherwise hold them until its idle timeout). */
  private readonly onPageHide = () => this.destroy();

  /** Reads the delivery description and starts the first mode that plays. Resolves once one plays; rejects with a PlayerError when none does. */
  play(): Promise<void> {
    this.playing ??= this.run();
    return this.playing;
  }

  /** Ends every mode, session, socket, timer and element this player made. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.state = 'destroyed';
    removeEventListener('pagehide', this.onPageHide);
    clearInterval(this.monitor);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const r of [this.standby, this.active]) if (r) this.retire(r);
    this.standby = this.active = undefined;
  }

  /** The viewer's latency target, ms, for every mode from now on. */
  setTargetLatency(ms: number): void {
    this.targetMs = ms;
    this.active?.playback.setTarget(ms);
    this.standby?.playback.setTarget(ms);
  }

  /** The video renditions the viewer may pin in the mode on screen (DASH modes; none for Warp). */
  renditions(): Rendition[] {
    return this.active?.playback.renditions() ?? [];
  }

  /** Pins a video rendition (`auto`: ABR decides) in DASH modes, now and in the modes started later. */
  setRendition(id: string): void {
    this.rendition = id;
    this.active?.playback.setRendition(id);
  }

  get mode(): PlayerMode | null {
    return this.active?.playback.mode ?? null;
  }

  /** The video element on screen (it changes at every move). */
  get video(): HTMLVideoElement | undefined {
    return this.active?.playback.video;
  }

  stats(): PlayerStats {
    const modes = [this.active, this.standby].filter((r): r is Running => !!r);
    const bytes: BytesByRoute = { ...this.retired.bytes };
    let framesShown = this.retired.framesShown;
    let framesDropped = this.retired.framesDropped;
    for (const r of modes) {
      const b = r.playback.bytes();
      for (const k of Object.keys(bytes) as (keyof BytesByRoute)[]) bytes[k] += b[k];
    }
    if (this.active) {
      const q = this.active.playback.video.getVideoPlaybackQuality();
      framesShown += q.totalVideoFrames - q.droppedVideoFrames;
      framesDropped += q.droppedVideoFrames;
    }
    const details = this.active?.playback.details() ?? { dash: null, warp: null };
    return {
      state: this.state,
      mode: this.mode,
      modeReason: this.modeReason,
      order: [...this.order],
      unavailable: { ...this.unavailable },
      targetLatencyMs: this.targetMs ?? this.description?.targetLatencyMs ?? 0,
      latencyMs: this.active?.playback.latencyMs() ?? null,
      framesShown,
      framesDropped,
      stalls: this.retired.stalls + (details.dash?.stalls ?? details.warp?.stalls ?? 0),
      moves: this.moves.map((m) => ({ ...m })),
      attempts: this.attempts.map((a) => ({ ...a })),
      bytesByRoute: bytes,
      message: this.state === 'failed' ? this.message : this.message || (this.active?.playback.problem() ?? ''),
      errors: [...this.errors],
      ...details,
    };
  }

  // ---- events and notes ----

  private note(text: string, show: boolean): void {
    this.errors.push(`${new Date().toISOString()} ${text}`);
    if (this.errors.length > MAX_ERRORS) this.errors.shift();
    if (show) this.message = text;
    this.dispatchEvent(new CustomEvent(PlayerEvents.NOTE, { detail: { text, show } }));
  }

  private fail(error: PlayerError): PlayerError {
    this.state = 'failed';
    this.message = error.message;
    this.note(error.message, true);
    this.dispatchEvent(new CustomEvent(PlayerEvents.ERROR, { detail: error }));
    return error;
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.destroyed) fn();
    }, ms);
    this.timers.add(t);
  }

  // ---- the description ----

  private async describe(): Promise<DeliveryDescription> {
    const url = new URL('delivery.json', this.src);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), DESCRIPTION_TIMEOUT_MS);
    let response: Response;
    try {
      response = await fetch(url, { cache: 'no-store', signal: controller.signal });
    } catch (error) {
      throw new PlayerError(
        'network',
        'ORIGIN_UNREACHABLE',
        `The broadcast's origin does not answer (${url.origin}: ${(error as Error).message}).`,
      );
    } finally {
      clearTimeout(timer);
    }
    if (response.status === 404) {
      // An origin without a description: LL-DASH alone, if the MPD is there.
      const mpd = await fetch(this.src, { method: 'HEAD', cache: 'no-store' }).catch(() => undefined);
      if (!mpd?.ok)
        throw new PlayerError(
          'content',
          'NO_BROADCAST',
          `There is no broadcast at ${this.src.href} (${mpd?.status ?? 'no answer'}).`,
        );
      this.note(`${url.pathname}: 404; playing the MPD by LL-DASH`, false);
      return { version: 1, broadcast: '', targetLatencyMs: 3000, order: ['dash'], dash: { manifest: this.src.href } };
    }
    if (!response.ok)
      throw new PlayerError('network', 'DESCRIPTION_HTTP', `The origin answered ${response.status} for ${url.href}.`);
    let json: unknown;
    try {
      json = await response.json();
    } catch {
      throw new PlayerError('content', 'DESCRIPTION_MALFORMED', `The delivery description at ${url.href} is not JSON.`);
    }
    try {
      return parseDeliveryDescription(json);
    } catch (error) {
      throw new PlayerError(
        'content',
        'DESCRIPTION_MALFORMED',
        `The delivery description at ${url.href} is malformed: ${(error as Error).message.replace(/^delivery description: /, '')}.`,
      );
    }
  }

  private async run(): Promise<void> {
    try {
      this.description = await this.describe();
    } catch (error) {
      throw this.fail(error instanceof PlayerError ? error : new PlayerError('player', 'INTERNAL', String(error)));
    }
    if (this.destroyed) return;
    const d = this.description;
    this.targetMs ??= d.targetLatencyMs;
    const offered = offeredModes(d);
    const wanted = this.options.modes ?? d.order;
    for (const m of wanted) {
      const lacks =
        (DELIVERY_MODES as readonly string[]).includes(m) && !offered.includes(m as DeliveryMode)
          ? 'the origin does not offer it'
          : browserLacks(m, this.src);
      if (lacks) this.unavailable[m] = lacks;
      else this.order.push(m);
    }
    if (this.order.length === 0)
      throw this.fail(
        new PlayerError(
          'capability',
          'NO_MODE',
          `This browser cannot play the broadcast: ${Object.entries(this.unavailable)
            .map(([m, why]) => `${m}: ${why}`)
            .join('; ')}.`,
        ),
      );
    for (const m of this.order) {
      if (this.destroyed) return;
      if (await this.tryMode(m, 'start')) {
        this.monitor = setInterval(() => this.check(), MONITOR_MS);
        return;
      }
    }
    if (this.destroyed) return;
    throw this.fail(
      new PlayerError(
        'network',
        'NO_MODE_PLAYED',
        `No delivery mode played the broadcast: ${this.attempts.map((a) => `${a.mode}: ${a.why}`).join('; ')}.`,
      ),
    );
  }

  // ---- running modes ----

  private newVideo(): HTMLVideoElement {
    const video = document.createElement('video');
    video.muted = this.active ? this.active.playback.video.muted : (this.options.muted ?? true);
    video.playsInline = true;
    video.autoplay = true;
    video.controls = false;
    // Under the one on screen (and still composited, so that it decodes and presents frames) until it takes over.
    Object.assign(video.style, {
      position: 'absolute',
      inset: '0',
      width: '100%',
      height: '100%',
      background: '#000',
      opacity: '0',
    });
    this.container.append(video);
    return video;
  }

  private retire(r: Running): void {
    const q = r.playback.video.getVideoPlaybackQuality();
    if (r === this.active) {
      this.retired.framesShown += q.totalVideoFrames - q.droppedVideoFrames;
      this.retired.framesDropped += q.droppedVideoFrames;
      const d = r.playback.details();
      this.retired.stalls += d.dash?.stalls ?? d.warp?.stalls ?? 0;
    }
    const b = r.playback.bytes();
    for (const k of Object.keys(b) as (keyof BytesByRoute)[]) this.retired.bytes[k] += b[k];
    r.clock.stop();
    r.playback.destroy();
    r.playback.video.remove();
  }

  /**
   * Starts `mode` beside what plays and waits until it plays by its own path, or fails, or `probeMs`
   * passes; then it takes over. False when it did not. `urgent`: the mode on screen is failing, so the new
   * one shows its first media at once rather than wait for the target's margin.
   */
  private async tryMode(mode: PlayerMode, cause: string, urgent = false): Promise<boolean> {
    const started = performance.now();
    const video = this.newVideo();
    const clock = new FrameClock(video);
    let failure: string | undefined;
    let playback: ModePlayback;
    const forced = this.options.modes?.length === 1;
    try {
      playback = await startMode(mode, {
        video,
        description: this.description!,
        base: new URL('delivery.json', this.src).href,
        targetMs: this.targetMs!,
        forced,
        // Off a failing mode, the picture at once; up to a better one, at the target's margin (no hurry).
        takingOver: urgent,
        warp: this.options.warp ?? {},
        onNote: (text) => this.note(`${mode}: ${text}`, false),
        onFailure: (why) => {
          failure ??= why;
          if (this.active?.playback.video === video) void this.onActiveFailure(why);
        },
      });
    } catch (error) {
      clock.stop();
      video.remove();
      this.record(mode, 'failed', (error as Error).message, started);
      return false;
    }
    if (this.rendition !== 'auto') playback.setRendition(this.rendition);
    const r: Running = { playback, clock };
    if (forced) {
      // A forced mode is the page's whole purpose: on screen at once, recovering by itself, never replaced.
      this.record(mode, 'ready', 'forced', started);
      this.swap(r, 'forced');
      return true;
    }
    this.standby = r;
    const result = await new Promise<ModeAttempt['result']>((resolve) => {
      const poll = setInterval(() => {
        if (this.destroyed || this.standby !== r) return done('cancelled');
        if (failure !== undefined) return done('failed');
        // Up to a better mode (no hurry): only once its picture runs steadily, so the swap shows no hitch.
        if (playback.ready() && (urgent || !this.active || clock.steadyFor(STEADY_MS))) return done('ready');
        if (performance.now() - started > this.probeMs) return done('timeout');
      }, 50);
      const done = (x: ModeAttempt['result']) => {
        clearInterval(poll);
        resolve(x);
      };
    });
    if (result !== 'ready') {
      this.record(
        mode,
        result,
        result === 'timeout' ? `no media within ${this.probeMs} ms` : (failure ?? 'cancelled'),
        started,
      );
      if (this.standby === r) this.standby = undefined;
      if (!this.destroyed) this.retire(r);
      this.failures.set(mode, failure ?? `no media within ${this.probeMs} ms`);
      return false;
    }
    this.record(mode, 'ready', 'playing', started);
    this.standby = undefined;
    this.swap(r, cause);
    return true;
  }

  private record(mode: PlayerMode, result: ModeAttempt['result'], why: string, started: number): void {
    this.attempts.push({ mode, result, why, ms: Math.round(performance.now() - started) });
    if (this.attempts.length > MAX_ATTEMPTS) this.attempts.shift();
    if (result !== 'ready') this.note(`${mode} did not play: ${why}`, false);
  }

  /** The new mode takes the screen; the old one is measured, then destroyed. */
  private swap(next: Running, cause: string): void {
    const old = this.active;
    const at = performance.now();
    next.playback.video.style.opacity = '1';
    next.playback.video.controls = this.options.controls ?? true;
    if (old) {
      next.playback.video.muted = old.playback.video.muted;
      next.playback.video.volume = old.playback.video.volume;
      old.playback.video.style.opacity = '0';
    }
    this.active = next;
    // A forced mode is on screen before it plays: `playing` once it does (check()).
    this.state = cause === 'forced' ? 'starting' : 'playing';
    this.lastMoveAt = Date.now();
    this.modeReason =
      cause === 'forced'
        ? 'forced by the page (one mode only)'
        : cause === 'start'
          ? `the first of ${this.order.join(', ')} that played${
              this.attempts.some((a) => a.result !== 'ready')
                ? ` (${this.attempts
                    .filter((a) => a.result !== 'ready')
                    .map((a) => `${a.mode}: ${a.why}`)
                    .join('; ')})`
                : ''
            }`
          : cause;
    this.message = '';
    const move: PlayerMove = {
      from: old?.playback.mode ?? null,
      to: next.playback.mode,
      cause,
      at: new Date().toISOString(),
      frozenMs: null,
      audioFrozenMs: old ? Math.round(old.clock.stalledSince === undefined ? 0 : at - old.clock.stalledSince) : null,
      latencyAfterMs: null,
    };
    this.moves.push(move);
    if (this.moves.length > MAX_MOVES) this.moves.shift();
    if (old) {
      const oldLast = old.clock.lastFrameAt;
      this.retire(old);
      void next.clock.firstFrameAfter(at, FREEZE_WAIT_MS).then((first) => {
        if (first !== undefined && oldLast !== undefined) move.frozenMs = Math.round(first - oldLast);
      });
    }
    this.later(LATENCY_AFTER_MS, () => {
      if (this.active === next) move.latencyAfterMs = next.playback.latencyMs();
    });
    this.dispatchEvent(new CustomEvent(PlayerEvents.MODE_CHANGE, { detail: move }));
  }

  // ---- while playing ----

  private check(): void {
    if (this.state === 'starting' && this.active?.playback.ready()) this.state = 'playing';
    // A forced mode recovers by itself; there is nowhere to move.
    if (this.destroyed || this.moving || !this.active || this.options.modes?.length === 1) return;
    const why = this.active.playback.failing();
    if (why) return void this.onActiveFailure(why);
    // Up: the best mode above the current one, after the hold-down.
    const i = this.order.indexOf(this.active.playback.mode);
    if (i > 0 && Date.now() - this.lastMoveAt >= this.holdDownMs) void this.moveUp(i);
  }

  private async onActiveFailure(why: string): Promise<void> {
    if (this.destroyed || !this.active) return;
    if (this.moving) {
      // A move up is under way: it may replace the failing mode; if not, the failure is handled after it.
      this.pendingFailure = { playback: this.active.playback, why };
      return;
    }
    const from = this.active.playback.mode;
    this.moving = true;
    this.state = 'moving';
    this.failures.set(from, why);
    this.note(`${from} failed: ${why}`, false);
    this.dispatchEvent(
      new CustomEvent(PlayerEvents.ERROR, { detail: new PlayerError('network', 'MODE_FAILED', `${from}: ${why}`) }),
    );
    try {
      const i = this.order.indexOf(from);
      // The modes after it, then those before it (they failed earlier, but may be back), then itself anew.
      const next = [...this.order.slice(i + 1), ...this.order.slice(0, i), from];
      for (const m of next) {
        if (this.destroyed) return;
        if (await this.tryMode(m, `${from} failed: ${why}`, true)) return;
      }
      // Nothing else plays: the failed mode stays on screen with what it has; tried again after the hold-down.
      this.note(`no other mode plays; staying on ${from}`, true);
      this.lastMoveAt = Date.now();
    } finally {
      this.moving = false;
      if (this.active && this.state === 'moving') this.state = 'playing';
    }
  }

  private async moveUp(index: number): Promise<void> {
    this.moving = true;
    try {
      for (const m of this.order.slice(0, index)) {
        if (this.destroyed || !this.active) return;
        if (await this.tryMode(m, `better: ${m} plays again`)) return;
      }
      this.lastMoveAt = Date.now(); // none came back: wait another hold-down
    } finally {
      this.moving = false;
      const pending = this.pendingFailure;
      this.pendingFailure = undefined;
      if (pending && this.active?.playback === pending.playback) void this.onActiveFailure(pending.why);
    }
  }
}
