/**
 * The Warp session path (draft-lcurley-warp-00 §4.1: the CONNECT path names the broadcast and carries
 * the token): `/warp/<broadcast>?token=…&latency=<ms>&tracks=<id>,<id>&order=<policy>`.
 */

export const WARP_PATH = '/warp';

/** What a Warp session path asks for. */
export interface WarpTarget {
  broadcast: string;
  token?: string;
  /** The viewer's latency target, ms. */
  latencyMs?: number;
  tracks?: string[];
  /** The delivery order policy the viewer asks for (§2.2), as written: the route checks it. */
  order?: string;
}

/** Parses `/warp/<broadcast>?…`; undefined when the path is not one. */
export function parseWarpPath(path: string): WarpTarget | undefined {
  const url = new URL(path, 'https://warp.invalid');
  const m = /^\/warp\/([A-Za-z0-9_-]{1,64})$/.exec(url.pathname);
  if (!m) return undefined;
  const latency = Number(url.searchParams.get('latency'));
  const tracks = url.searchParams
    .get('tracks')
    ?.split(',')
    .filter((t) => t.length > 0);
  return {
    broadcast: m[1]!,
    token: url.searchParams.get('token') ?? undefined,
    latencyMs: Number.isFinite(latency) && latency > 0 ? latency : undefined,
    tracks,
    order: url.searchParams.get('order') ?? undefined,
  };
}

/**
 * Where a GOAWAY (§5.4) sends one session: the successor URL, on the session's own path when the
 * successor names none (`https://b:8443` → `https://b:8443/warp/live`), with each of the session's query
 * parameters (token, latency, tracks, …) the successor does not set itself, so a viewer keeps its choices.
 */
export function goawayUrl(successor: string, sessionPath: string): string {
  const to = new URL(successor);
  const own = new URL(sessionPath, 'https://warp.invalid');
  if (to.pathname === '/' || to.pathname === '') to.pathname = own.pathname;
  const set = new Set(to.searchParams.keys());
  for (const [name, value] of own.searchParams) if (!set.has(name)) to.searchParams.append(name, value);
  return to.href;
}
