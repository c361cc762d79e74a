/**
 * `Alt-Svc` (RFC 7838 §3) naming a multicast HTTP/QUIC push session, as WHP 336 §4 has the origin
 * decorate each segment response of a representation that is also sent by multicast:
 *
 * ```
 * Alt-Svc: h3m-07="232.112.99.1:5000"; source="10.0.0.1"; session-id=5fa3c2e19b0d4e77;
 *          key="https://origin.example:8443/.well-known/pushcast/multicast-keys.json"; ma=60
 * ```
 *
 * - protocol-id `h3m-07`: the ALPN token of nghq's draft-07 profile (draft-pardue-quic-http-mcast).
 * - alt-authority (RFC 7838 §3): the multicast group and UDP port, `"[ff3e::1234]:5000"` for IPv6.
 * - `source` (pushcast's parameter): the sender's unicast address, for a source-specific join
 *   (RFC 4607); quoted because an IPv6 address is not a token.
 * - `session-id`: the session ID, lowercase hex, 1 to 20 bytes: the Destination Connection ID of every
 *   packet (its length is not on the wire, so a receiver needs it).
 * - `key`: an https URL of the JSON Web Key Set whose keys sign the session's pushes. A receiver takes
 *   keys from there only (never from the session itself).
 * - `gateway`: where a browser subscribes to the session over WebSocket (WHP 336 §4.2): a URL
 *   reference resolved against the URL of the response that carries the field, `http`/`https` read
 *   as `ws`/`wss`; the session is named in its query (group, port, source, session-id).
 * - `chunks=1`: segments are pushed chunk by chunk as they are produced (progressive pushes,
 *   docs/multicast.md), so a receiver can answer a request for a segment still growing; absent: whole.
 * - `fec` (pushcast's parameter): forward error correction of the session (src/wire/fec.ts): `"rs;k=20;m=2;port=5001"`, a
 *   Reed–Solomon code with k source and m repair packets per block, the repair packets on that UDP port of
 *   the same group and source. A value this reader does not understand (another scheme, a missing or bad
 *   count) is ignored and the session advertised without FEC; receivers that do not know the parameter
 *   (nghq) ignore it and never join the repair port.
 * - `ma`: freshness, seconds (RFC 7838 §3.1).
 * The draft's own session parameters were not at hand; these are pushcast's, documented here and in
 * docs/multicast.md. Unknown parameters are ignored (RFC 7838 §3).
 */
import { WireError } from './errors.js';
import { MAX_FEC_BLOCK } from './fec.js';

export const MULTICAST_ALPN = 'h3m-07';

/** A session's forward error correction as its advertisement names it. */
export interface FecAdvertisement {
  /** The code: `rs`, systematic Reed–Solomon over GF(2^8) (src/wire/fec.ts). */
  scheme: 'rs';
  /** Source packets per block (at most; a block flushed early has fewer). */
  k: number;
  /** Repair packets per full block. */
  m: number;
  /** UDP port of the repair packets, on the session's group and source. */
  port: number;
}

export interface MulticastAdvertisement {
  group: string;
  port: number;
  source?: string;
  /** Lowercase hex. */
  sessionId: string;
  keyUrl?: string;
  /** The WebSocket gateway, as written (possibly relative). */
  gateway?: string;
  /** Segments are pushed chunk by chunk as they are produced (`chunks=1`). */
  progressive?: boolean;
  /** Forward error correction; absent when the session has none (or names one this reader does not know). */
  fec?: FecAdvertisement;
  /** Seconds; RFC 7838 default 86 400. */
  maxAge: number;
}

export interface AltSvcEntry {
  protocol: string;
  authority: string;
  params: Map<string, string>;
}

function quote(value: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses
  if (/[\x00-\x1f\x7f"\\]/.test(value))
    throw new WireError('invalid-argument', 0, `Alt-Svc value ${JSON.stringify(value)} needs no escapes here`);
  return `"${value}"`;
}

function isIpv6(address: string): boolean {
  return address.includes(':');
}

export function formatMulticastAltSvc(ad: MulticastAdvertisement): string {
  if (!/^([0-9a-f]{2}){1,20}$/.test(ad.sessionId))
    throw new WireError('invalid-argument', 0, `session ID ${ad.sessionId} is not 1 to 20 bytes of lowercase hex`);
  if (!Number.isInteger(ad.port) || ad.port < 1 || ad.port > 65535)
    throw new WireError('invalid-argument', 0, `port ${ad.port}`);
  const host = isIpv6(ad.group) ? `[${ad.group}]` : ad.group;
  let out = `${MULTICAST_ALPN}=${quote(`${host}:${ad.port}`)}`;
  if (ad.source !== undefined) out += `; source=${quote(ad.source)}`;
  out += `; session-id=${ad.sessionId}`;
  if (ad.keyUrl !== undefined) out += `; key=${quote(ad.keyUrl)}`;
  if (ad.gateway !== undefined) out += `; gateway=${quote(ad.gateway)}`;
  if (ad.progressive) out += '; chunks=1';
  if (ad.fec !== undefined) out += `; fec=${quote(formatFec(ad.fec))}`;
  out += `; ma=${Math.max(0, Math.floor(ad.maxAge))}`;
  return out;
}

function validFec(f: FecAdvertisement): boolean {
  const count = (n: number) => Number.isInteger(n) && n >= 1;
  return (
    f.scheme === 'rs' &&
    count(f.k) &&
    count(f.m) &&
    f.k + f.m <= MAX_FEC_BLOCK &&
    Number.isInteger(f.port) &&
    f.port >= 1 &&
    f.port <= 65535
  );
}

/** `rs;k=20;m=2;port=5001`. */
export function formatFec(f: FecAdvertisement): string {
  if (!validFec(f))
    throw new WireError(
      'invalid-argument',
      0,
      `FEC ${JSON.stringify(f)}: rs, k and m ≥ 1, k + m ≤ ${MAX_FEC_BLOCK}, a port`,
    );
  return `${f.scheme};k=${f.k};m=${f.m};port=${f.port}`;
}

/** The value of an Alt-Svc `fec` parameter, or undefined when it is not one this reader knows. */
export function parseFec(value: string): FecAdvertisement | undefined {
  const [scheme, ...params] = value.split(';').map((p) => p.trim());
  if (scheme !== 'rs') return undefined;
  const named = new Map<string, number>();
  for (const p of params) {
    const m = /^([a-z]+)=([0-9]{1,5})$/.exec(p);
    if (m) named.set(m[1]!, Number(m[2]));
  }
  const fec = { scheme, k: named.get('k') ?? 0, m: named.get('m') ?? 0, port: named.get('port') ?? 0 } as const;
  return validFec(fec) ? fec : undefined;
}

const MAX_ALT_SVC = 4096;

/** RFC 7838 §3 `Alt-Svc` field value: `clear`, or alternatives separated by commas. Throws WireError. */
export function parseAltSvc(value: string): AltSvcEntry[] {
  if (value.length > MAX_ALT_SVC)
    throw new WireError('field-section-too-large', 0, `Alt-Svc of ${value.length} characters (at most ${MAX_ALT_SVC})`);
  let pos = 0;
  const fail = (detail: string): never => {
    throw new WireError('frame-encoding', pos, `Alt-Svc: ${detail}`);
  };
  const ows = () => {
    while (value[pos] === ' ' || value[pos] === '\t') pos++;
  };
  const token = () => {
    const m = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/.exec(value.slice(pos));
    if (!m) fail('a token is expected');
    pos += m![0].length;
    return m![0];
  };
  const tokenOrQuoted = () => {
    if (value[pos] !== '"') return token();
    pos++;
    let out = '';
    for (;;) {
      const c = value[pos++];
      if (c === undefined) fail('unterminated quoted string');
      if (c === '"') return out;
      if (c === '\\') {
        const next = value[pos++];
        if (next === undefined) fail('unterminated quoted string');
        out += next;
      } else out += c;
    }
  };
  ows();
  if (value.slice(pos).trim() === 'clear') return [];
  const entries: AltSvcEntry[] = [];
  while (pos < value.length) {
    ows();
    // RFC 7838 §3: protocol-id is a percent-encoded ALPN token.
    let protocol: string;
    try {
      protocol = decodeURIComponent(token());
    } catch {
      return fail('protocol-id is badly percent-encoded');
    }
    if (value[pos++] !== '=') fail('protocol-id "=" alt-authority');
    const authority = tokenOrQuoted();
    const params = new Map<string, string>();
    ows();
    while (value[pos] === ';') {
      pos++;
      ows();
      const name = token().toLowerCase();
      if (value[pos++] !== '=') fail(`parameter ${name} has no value`);
      params.set(name, tokenOrQuoted());
      ows();
    }
    entries.push({ protocol, authority, params });
    if (entries.length > 32) fail('more than 32 alternatives');
    if (pos >= value.length) break;
    if (value[pos++] !== ',') fail('alternatives are separated by commas');
  }
  return entries;
}

/** The first `h3m-07` alternative of an `Alt-Svc` value that names a usable session, or undefined. */
export function multicastAdvertisement(value: string): MulticastAdvertisement | undefined {
  for (const entry of parseAltSvc(value)) {
    if (entry.protocol !== MULTICAST_ALPN) continue;
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(entry.authority);
    const sessionId = entry.params.get('session-id')?.toLowerCase();
    if (!m || !sessionId || !/^([0-9a-f]{2}){1,20}$/.test(sessionId)) continue;
    const port = Number(m[3]);
    if (port < 1 || port > 65535) continue;
    const ma = Number(entry.params.get('ma') ?? 86_400);
    const fecValue = entry.params.get('fec');
    const fec = fecValue === undefined ? undefined : parseFec(fecValue);
    return {
      group: m[1] ?? m[2]!,
      port,
      source: entry.params.get('source'),
      sessionId,
      keyUrl: entry.params.get('key'),
      gateway: entry.params.get('gateway'),
      ...(entry.params.get('chunks') === '1' ? { progressive: true } : {}),
      ...(fec ? { fec } : {}),
      maxAge: Number.isFinite(ma) && ma >= 0 ? ma : 86_400,
    };
  }
  return undefined;
}
