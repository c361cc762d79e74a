/**
 * `<pushcast-player src="https://origin/live/manifest.mpd">`: the player as a custom element. Attributes:
 * `src`; `modes` (comma-separated order, one mode = forced); `latency` (target, ms); `probe` and
 * `holddown` (ms); `token` and `tracks` (Warp); `muted` (default on: autoplay); `nocontrols`. The element
 * re-dispatches the player's events (`modechange`, `error`, `note`) and shows the one sentence the viewer
 * needs when something is wrong. `element.player` is the PushcastPlayer.
 */
import { PushcastPlayer, PlayerEvents } from './pushcast-player.js';
import type { PlayerMode } from './stats.js';

const STYLE = `
:host { display: block; position: relative; background: #000; aspect-ratio: 16 / 9; overflow: hidden; }
.screen { position: absolute; inset: 0; }
.message { position: absolute; left: 0; right: 0; bottom: 0; margin: 0; padding: 0.5em 0.8em;
  background: rgba(0, 0, 0, 0.75); color: #f88; font: 14px/1.4 system-ui, sans-serif; white-space: pre-wrap; }
.message:empty { display: none; }
`;

function numberAttribute(value: string | null): number | undefined {
  if (value === null) return undefined;
  const n = Number(value);
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

export class PushcastPlayerElement extends HTMLElement {
  static readonly observedAttributes = ['src'];
  player: PushcastPlayer | undefined;
  private readonly screen: HTMLDivElement;
  private readonly message: HTMLParagraphElement;
  private refresh: ReturnType<typeof setInterval> | undefined;

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    const style = document.createElement('style');
    style.textContent = STYLE;
    this.screen = document.createElement('div');
    this.screen.className = 'screen';
    this.message = document.createElement('p');
    this.message.className = 'message';
    this.message.setAttribute('role', 'alert');
    root.append(style, this.screen, this.message);
  }

  connectedCallback(): void {
    if (!this.player) this.start();
  }

  disconnectedCallback(): void {
    clearInterval(this.refresh);
    this.player?.destroy();
    this.player = undefined;
  }

  attributeChangedCallback(name: string, old: string | null, value: string | null): void {
    if (name === 'src' && old !== value && this.isConnected) {
      clearInterval(this.refresh);
      this.player?.destroy();
      this.player = undefined;
      this.start();
    }
  }

  private start(): void {
    const src = this.getAttribute('src');
    this.message.textContent = '';
    if (!src) {
      this.message.textContent = 'No broadcast: the element has no src.';
      return;
    }
    const modes = this.getAttribute('modes')
      ?.split(',')
      .map((m) => m.trim())
      .filter(Boolean) as PlayerMode[] | undefined;
    const player = new PushcastPlayer({
      src,
      container: this.screen,
      modes: modes?.length ? modes : undefined,
      targetMs: numberAttribute(this.getAttribute('latency')),
      probeMs: numberAttribute(this.getAttribute('probe')),
      holdDownMs: numberAttribute(this.getAttribute('holddown')),
      muted: this.getAttribute('muted') !== 'false',
      controls: !this.hasAttribute('nocontrols'),
      warp: {
        token: this.getAttribute('token') ?? undefined,
        tracks: this.getAttribute('tracks') ?? undefined,
        url: this.getAttribute('warp') ?? undefined,
      },
    });
    this.player = player;
    for (const type of Object.values(PlayerEvents)) {
      player.addEventListener(type, (e) => {
        this.message.textContent = player.stats().message;
        this.dispatchEvent(new CustomEvent(type, { detail: (e as CustomEvent).detail }));
      });
    }
    // The mode's problem of the moment comes and goes without an event: the line follows the stats.
    this.refresh = setInterval(() => {
      this.message.textContent = player.stats().message;
    }, 500);
    // Failure is told by the `error` event and the message line; nothing is left unhandled.
    player.play().catch(() => undefined);
  }
}

/** Defines `<pushcast-player>` once (a page may load the module twice). */
export function definePushcastPlayer(name = 'pushcast-player'): void {
  if (!customElements.get(name)) customElements.define(name, PushcastPlayerElement);
}
