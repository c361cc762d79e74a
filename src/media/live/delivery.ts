/**
 * The delivery description of a broadcast: what an origin offers a player, in one small JSON document
 * beside the MPD (`/live/delivery.json`), so that a player reads one resource to know which modes it may
 * try, in which order, and the latency to hold. docs/player.md describes it. Isomorphic: the origin
 * writes it, the player reads it.
 *
 * URLs in it are relative to the description's own URL (a reverse proxy or CDN may rename the host): the
 * origin never writes a Host header it was sent into a body.
 */

/** The delivery modes, best first by default: one-to-many push, then one-to-one push, then pull. */
export const DELIVERY_MODES = ['multicast', 'warp-webtransport', 'warp-websocket', 'dash'] as const;
export type DeliveryMode = (typeof DELIVERY_MODES)[number];

export interface DeliveryDescription {
  version: 1;
  broadcast: string;
  /** The latency the origin suggests, ms (the MPD's ServiceDescription target). */
  targetLatencyMs: number;
  /** The modes to try, in the operator's order; a mode not offered below is left out by the player. */
  order: DeliveryMode[];
  /** LL-DASH: the MPD. */
  dash: { manifest: string };
  /** Multicast push through the Service Worker: the same MPD, with the worker's script and scope. */
  multicast?: { manifest: string; serviceWorker: string; scope: string };
  /** Warp: the session path (WebSocket fallback on this origin), and WebTransport on the HTTP/3 port. */
  warp?: {
    path: string;
    webTransport?: { port: number; serverCertificateHashes: { algorithm: 'sha-256'; value: string }[] };
  };
}

/** A delivery description that is not one: the field and what is wrong with it. */
export class DeliveryDescriptionError extends Error {
  override name = 'DeliveryDescriptionError';
}

const MAX_STRING = 2048;
const MAX_HASHES = 8;

function fail(field: string, why: string): never {
  throw new DeliveryDescriptionError(`delivery description: ${field} ${why}`);
}

function object(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(field, 'is not an object');
  return value as Record<string, unknown>;
}

function string(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_STRING)
    fail(field, `is not a string of 1 to ${MAX_STRING} characters`);
  return value;
}

function integer(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    fail(field, `is not an integer from ${min} to ${max}`);
  return value;
}

/** A URL reference (absolute or relative): no scheme but http(s), no control characters. */
function reference(value: unknown, field: string): string {
  const s = string(value, field);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\u0000-\u001f\u007f\s]/.test(s)) fail(field, 'has white space or control characters');
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(s)?.[1]?.toLowerCase();
  if (scheme !== undefined && scheme !== 'http' && scheme !== 'https') fail(field, `has scheme ${scheme}:`);
  return s;
}

/** Checks a parsed JSON value; throws a {@link DeliveryDescriptionError} naming the first bad field. */
export function parseDeliveryDescription(json: unknown): DeliveryDescription {
  const d = object(json, 'the document');
  if (d.version !== 1) fail('version', `is ${JSON.stringify(d.version)}, not 1`);
  const broadcast = string(d.broadcast, 'broadcast');
  const targetLatencyMs = integer(d.targetLatencyMs, 'targetLatencyMs', 100, 60_000);
  if (!Array.isArray(d.order) || d.order.length === 0 || d.order.length > DELIVERY_MODES.length)
    fail('order', `is not a list of 1 to ${DELIVERY_MODES.length} modes`);
  const order: DeliveryMode[] = [];
  for (const [i, m] of d.order.entries()) {
    if (!DELIVERY_MODES.includes(m as DeliveryMode)) fail(`order[${i}]`, `is not one of ${DELIVERY_MODES.join(', ')}`);
    if (order.includes(m as DeliveryMode)) fail(`order[${i}]`, `repeats ${m}`);
    order.push(m as DeliveryMode);
  }
  const dash = { manifest: reference(object(d.dash, 'dash').manifest, 'dash.manifest') };
  const out: DeliveryDescription = { version: 1, broadcast, targetLatencyMs, order, dash };
  if (d.multicast !== undefined) {
    const m = object(d.multicast, 'multicast');
    out.multicast = {
      manifest: reference(m.manifest, 'multicast.manifest'),
      serviceWorker: reference(m.serviceWorker, 'multicast.serviceWorker'),
      scope: reference(m.scope, 'multicast.scope'),
    };
  }
  if (d.warp !== undefined) {
    const w = object(d.warp, 'warp');
    out.warp = { path: reference(w.path, 'warp.path') };
    if (w.webTransport !== undefined) {
      const t = object(w.webTransport, 'warp.webTransport');
      const hashes = t.serverCertificateHashes ?? [];
      if (!Array.isArray(hashes) || hashes.length > MAX_HASHES)
        fail('warp.webTransport.serverCertificateHashes', `is not a list of at most ${MAX_HASHES}`);
      out.warp.webTransport = {
        port: integer(t.port, 'warp.webTransport.port', 1, 65_535),
        serverCertificateHashes: hashes.map((h, i) => {
          const field = `warp.webTransport.serverCertificateHashes[${i}]`;
          const o = object(h, field);
          if (o.algorithm !== 'sha-256') fail(`${field}.algorithm`, 'is not sha-256');
          const value = string(o.value, `${field}.value`);
          if (!/^[0-9a-f]{64}$/.test(value)) fail(`${field}.value`, 'is not 64 lower-case hex digits');
          return { algorithm: 'sha-256' as const, value };
        }),
      };
    }
  }
  return out;
}

/** The modes of `d` a player may try, in order: those in `order` that the description offers. */
export function offeredModes(d: DeliveryDescription): DeliveryMode[] {
  return d.order.filter((m) => {
    if (m === 'multicast') return d.multicast !== undefined;
    if (m === 'warp-webtransport') return d.warp?.webTransport !== undefined;
    if (m === 'warp-websocket') return d.warp !== undefined;
    return true;
  });
}

/** A `--player-order` style list (`multicast,warp-webtransport,…`), checked. */
export function parseModeOrder(text: string): DeliveryMode[] {
  return parseDeliveryDescription({
    version: 1,
    broadcast: 'x',
    targetLatencyMs: 1000,
    order: text.split(',').map((m) => m.trim()),
    dash: { manifest: 'x' },
  }).order;
}
