/**
 * The player page (`/`, and `/warp/`, `/multicast/` as forced modes): the `<pushcast-player>` element on
 * the origin's own broadcast, with the expert view beside it and `window.pushcastStats()`.
 *
 * URL parameters: `?mode=` forces one mode (multicast, warp, warp-webtransport, warp-websocket, dash,
 * prefetch; `/warp/` means warp, `/multicast/` multicast); `?order=` a comma-separated order instead of
 * the origin's; `?transport=webtransport|websocket` (Warp's transport); `?latency=` (target, ms);
 * `?token=`, `?tracks=` (Warp); `?warp=` a Warp session URL to play from instead of the origin's (a
 * relay's); `?probe=`, `?holddown=` (ms); `?manifest=` another MPD.
 */
import { MANIFEST_PATH } from '../../media/live/url-scheme.js';
import { renderFigures, renderTable } from '../panel.js';
import { definePushcastPlayer, type PushcastPlayerElement } from './element.js';
import type { PlayerMode, PlayerStats } from './stats.js';

declare global {
  interface Window {
    pushcastStats: () => PlayerStats | null;
  }
}

const FORCED_MODES: readonly PlayerMode[] = [
  'multicast',
  'warp',
  'warp-webtransport',
  'warp-websocket',
  'dash',
  'prefetch',
];

const params = new URLSearchParams(location.search);
const element = document.querySelector<PushcastPlayerElement>('#player')!;
const panel = document.querySelector<HTMLElement>('#stats')!;
const moveTable = document.querySelector<HTMLTableSectionElement>('#moves tbody')!;
const segmentTable = document.querySelector<HTMLTableSectionElement>('#segments tbody')!;
const latencySelect = document.querySelector<HTMLSelectElement>('#latency')!;
const renditionChoice = document.querySelector<HTMLElement>('#rendition-choice')!;
const renditionSelect = document.querySelector<HTMLSelectElement>('#rendition')!;
const multicastSwitch = document.querySelector<HTMLElement>('#multicast-switch')!;

/** The mode the address forces, if any, and a note when it names none. */
function forcedMode(): PlayerMode | undefined {
  if (location.pathname.startsWith('/multicast/')) return 'multicast';
  const transport = params.get('transport');
  const warpMode =
    transport === 'webtransport' ? 'warp-webtransport' : transport === 'websocket' ? 'warp-websocket' : 'warp';
  if (location.pathname.startsWith('/warp/')) return warpMode;
  const mode = params.get('mode');
  if (mode === null) return undefined;
  if (mode === 'warp') return warpMode;
  return FORCED_MODES.includes(mode as PlayerMode) ? (mode as PlayerMode) : undefined;
}

const forced = forcedMode();
const order = params.get('order');
const modes = forced ?? order ?? undefined;
if (modes) element.setAttribute('modes', modes);
for (const name of ['latency', 'token', 'tracks', 'probe', 'holddown', 'warp'])
  if (params.has(name)) element.setAttribute(name, params.get(name)!);
element.setAttribute('src', new URL(params.get('manifest') ?? MANIFEST_PATH, location.href).href);
if (forced) document.querySelector('#subtitle')!.textContent = `live, ${forced} only`;
definePushcastPlayer();

window.pushcastStats = () => element.player?.stats() ?? null;

latencySelect.addEventListener('change', () => element.player?.setTargetLatency(Number(latencySelect.value)));
// DASH modes: the viewer may pin a rendition (ABR otherwise).
renditionSelect.addEventListener('change', () => element.player?.setRendition(renditionSelect.value));
// Multicast: the viewer may turn it off in the Service Worker (unicast for every segment) and on again.
multicastSwitch.querySelector('input')!.addEventListener('change', (e) =>
  navigator.serviceWorker?.controller?.postMessage({
    type: 'multicast',
    enabled: (e.target as HTMLInputElement).checked,
  }),
);

/** The rendition choice follows the mode on screen: its renditions, or hidden. */
function renderRenditions(): void {
  const renditions = element.player?.renditions() ?? [];
  renditionChoice.hidden = renditions.length === 0;
  const ids = ['auto', ...renditions.map((r) => r.id)];
  if ([...renditionSelect.options].map((o) => o.value).join() === ids.join()) return;
  const chosen = renditionSelect.value;
  renditionSelect.replaceChildren(
    ...ids.map((id) => {
      const r = renditions.find((x) => x.id === id);
      const option = document.createElement('option');
      option.value = id;
      option.textContent = r ? `${r.height}p (${(r.bandwidth / 1e6).toFixed(1)} Mbit/s)` : 'auto';
      return option;
    }),
  );
  if (ids.includes(chosen)) renditionSelect.value = chosen;
}

// ---- the expert view ----

const kib = (n: number) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`);
const ms = (n: number | null) => (n === null ? '–' : `${n} ms`);

function modeRows(s: PlayerStats): [string, string][] {
  const rows: [string, string][] = [];
  if (s.dash) {
    const d = s.dash;
    rows.push(
      ['buffer', d.buffer === null ? '–' : `${d.buffer.toFixed(2)} s`],
      ['rendition', d.rendition ? `${d.rendition.id} ${d.rendition.width}×${d.rendition.height}` : '–'],
      [
        'segments',
        `${d.segments.total} (${
          Object.entries(d.segments.byRoute)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ') || 'none yet'
        })`,
      ],
    );
    if (d.prefetch)
      rows.push(['prefetch', `${d.prefetch.completed} of ${d.prefetch.started} fetched, ${d.prefetch.failed} failed`]);
    if (d.multicast) {
      const m = d.multicast;
      rows.push(
        [
          'multicast',
          `advertised for ${m.advertised.join(', ') || 'none'}; reception window ${m.receptionWindow.toFixed(1)} s`,
        ],
        ...m.sessions.map((x): [string, string] => [
          `session ${x.representation}`,
          `${x.state}; ${x.packets} packets, ${x.lost} lost, ${x.forged} refused; ${x.pushesCompleted} pushes, ${x.pushesFailed} failed`,
        ]),
      );
    }
  }
  if (s.warp) {
    const w = s.warp;
    rows.push(
      ['transport', w.transport ?? '–'],
      ['warp state', w.state],
      ['buffer', ms(w.bufferMs)],
      ['segments', `${w.segmentsReceived} received, ${w.segmentsSkipped} skipped`],
      ['GOAWAYs followed', String(w.goaways)],
    );
  }
  return rows;
}

function segmentRows(s: PlayerStats): string[][] {
  if (s.dash)
    return s.dash.segments.recent.map((r) => [
      r.representation,
      String(r.number ?? ''),
      r.route === 'repaired' ? `repaired (${r.repairBytes ?? 0} B unicast)` : r.route,
      kib(r.bytes),
      `${r.protocol}, ${r.loadMs} ms${r.aheadMs === undefined || r.aheadMs === null ? '' : `, ready ${r.aheadMs} ms before the request`}`,
    ]);
  if (s.warp)
    return s.warp.recent.map((r) => [
      r.track,
      r.number === null ? `@${r.time.toFixed(1)} s` : String(r.number),
      r.why ? `${r.state} (${r.why})` : r.state,
      r.bytes ? kib(r.bytes) : '',
      '',
    ]);
  return [];
}

function render(): void {
  const s = element.player?.stats();
  if (!s) return;
  if (![...latencySelect.options].some((o) => Number(o.value) === s.targetLatencyMs) && s.targetLatencyMs > 0) {
    const option = document.createElement('option');
    option.value = String(s.targetLatencyMs);
    option.textContent = `${s.targetLatencyMs / 1000} s`;
    latencySelect.append(option);
  }
  if (s.targetLatencyMs > 0) latencySelect.value = String(s.targetLatencyMs);
  const b = s.bytesByRoute;
  renderFigures(panel, [
    ['mode', s.mode ?? '–'],
    ['state', s.state],
    ['why this mode', s.modeReason || '–'],
    ['order', s.order.join(' → ') || '–'],
    ...Object.entries(s.unavailable).map(([m, why]): [string, string] => [`${m} left out`, why ?? '']),
    ['latency', `${ms(s.latencyMs)} (target ${s.targetLatencyMs} ms)`],
    ['frames', `${s.framesShown} shown, ${s.framesDropped} dropped`],
    ['stalls', String(s.stalls)],
    ['bytes', `push ${kib(b.push)}, repair ${kib(b.repair)}, unicast ${kib(b.unicast)}, warp ${kib(b.warp)}`],
    ...modeRows(s),
    ...(s.errors.length ? ([['last note', s.errors.at(-1)!]] as [string, string][]) : []),
  ]);
  renderTable(
    moveTable,
    s.moves
      .slice()
      .reverse()
      .map((m) => [
        m.at.slice(11, 19),
        `${m.from ?? '–'} → ${m.to}`,
        m.cause,
        m.frozenMs === null ? '–' : `${m.frozenMs} ms`,
      ]),
  );
  renderTable(segmentTable, segmentRows(s));
  renderRenditions();
  multicastSwitch.hidden = s.mode !== 'multicast';
}

setInterval(render, 500);
