/**
 * `pushcast serve --multicast`: the multicast push sender in the origin's process, wired to the live
 * window, the origin's responses (same URLs, same headers), its Alt-Svc advertisements and its key set.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { MULTICAST_KEYS_PATH, type LiveWindow } from '../media/index.js';
import { execFileSync } from 'node:child_process';
import {
  LiveMulticastSender,
  MulticastUdpReceiver,
  MulticastUdpSender,
  type LiveSessionConfig,
  type LiveSessionStats,
} from '../multicast/index.js';
import type { Origin, Route } from '../origin/index.js';
import { PushSigner, type JsonWebKeySet } from '../push/index.js';
import { GATEWAY_PATH, MulticastGateway, type GatewaySession } from '../gateway/index.js';
import { formatMulticastAltSvc, toHex, type FecAdvertisement } from '../wire/index.js';

/** Where receivers fetch the keys that sign the sessions (served by the origin, over HTTPS where it has it). */

export interface LiveMulticastOptions {
  /** First group; the next tracks take the following addresses. */
  group: string;
  /** First UDP port; the next tracks take the following ports. */
  port: number;
  /** Outgoing interface address, the sessions' source address. */
  interfaceAddress: string;
  ttl: number;
  headroom: number;
  /** Push each segment chunk by chunk as it is produced (default), or whole once complete. */
  progressive?: boolean;
  /** Forward error correction of every session; its repair ports follow the sessions' ports. */
  fec?: { k: number; m: number };
  /** Page origins, besides the origin's own, whose pages may subscribe through the gateway. */
  gatewayOrigins?: string[];
  /** The gateway browsers are sent to (a separate `pushcast gateway`); default this origin's own. */
  gatewayUrl?: string;
}

/**
 * The FEC of session `i` of `count` whose first port is `port`: its repair port follows every session's
 * port (port + count + i), so that no repair port is another session's port (a receiver bound to the
 * wildcard address, as IPv6 ones and nghq's are, would otherwise get another group's repair packets).
 */
export function sessionFec(
  fec: { k: number; m: number } | undefined,
  port: number,
  count: number,
  i: number,
): { k: number; m: number; port: number } | undefined {
  if (!fec) return undefined;
  const repairPort = port + count + i;
  if (repairPort > 65535) throw new Error(`FEC: no room for ${count} repair ports after port ${port + count - 1}`);
  return { k: fec.k, m: fec.m, port: repairPort };
}

/** The Alt-Svc `fec` of a session's FEC. */
export function fecAdvertisement(
  fec: { k: number; m: number; port?: number } | undefined,
): FecAdvertisement | undefined {
  return fec?.port === undefined ? undefined : { scheme: 'rs', k: fec.k, m: fec.m, port: fec.port };
}

/** The i-th address after `base` (IPv4: last octet; IPv6: last 16 bits). */
export function nthGroup(base: string, i: number): string {
  if (isIP(base) === 4) {
    const parts = base.split('.').map(Number);
    const last = parts[3]! + i;
    if (last > 255) throw new Error(`--multicast-group ${base}: no room for ${i + 1} groups`);
    return [...parts.slice(0, 3), last].join('.');
  }
  const m = /^(.*:)([0-9a-f]{0,4})$/i.exec(base);
  if (!m) throw new Error(`--multicast-group ${base} is not an address`);
  const last = parseInt(m[2] || '0', 16) + i;
  if (last > 0xffff) throw new Error(`--multicast-group ${base}: no room for ${i + 1} groups`);
  return m[1] + last.toString(16);
}

/**
 * Whether a datagram sent to `group:port` from `interfaceAddress` comes back to a member on this host:
 * undefined when it does, else why not. On the loopback (the demo's default) a host may need the
 * interface's MULTICAST flag: it is set when we have the rights (root), and the probe is repeated.
 */
export async function probeMulticast(
  group: string,
  port: number,
  interfaceAddress: string,
): Promise<string | undefined> {
  const once = async (): Promise<string | undefined> => {
    let received = false;
    let receiver: MulticastUdpReceiver | undefined;
    let sender: MulticastUdpSender | undefined;
    try {
      receiver = await MulticastUdpReceiver.open({
        group,
        port,
        source: interfaceAddress,
        interfaceAddress,
        onDatagram: () => (received = true),
      });
      sender = await MulticastUdpSender.open({
        group,
        port,
        rateBitsPerSecond: 1e6,
        multicastInterface: interfaceAddress,
        bindAddress: interfaceAddress,
        loopback: true,
        ttl: 0,
      });
      for (let i = 0; i < 5 && !received; i++) {
        await sender.send([new Uint8Array(8)]); // not a QUIC packet of any session: receivers drop it
        await new Promise((r) => setTimeout(r, 100));
      }
      return received ? undefined : `a datagram sent to ${group}:${port} from ${interfaceAddress} did not come back`;
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    } finally {
      await sender?.close();
      await receiver?.close();
    }
  };
  const first = await once();
  if (first === undefined || !interfaceAddress.startsWith('127.') || process.getuid?.() !== 0) return first;
  try {
    execFileSync('ip', ['link', 'set', 'lo', 'multicast', 'on'], { stdio: 'ignore' });
  } catch {
    return first;
  }
  return once();
}

/** The session signing key, kept in the state folder (mode 0600) so receivers' keys stay valid across restarts. */
export async function loadOrCreateSigner(dir: string): Promise<PushSigner> {
  const file = join(dir, 'signing-key.pem');
  if (existsSync(file)) return PushSigner.fromPkcs8Pem(readFileSync(file, 'utf8'));
  const signer = await PushSigner.generate();
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, await signer.exportPkcs8Pem(), { mode: 0o600 });
  chmodSync(file, 0o600);
  return signer;
}

export class LiveMulticast {
  private sender: LiveMulticastSender | undefined;
  private keyUrl: string | undefined;
  readonly sessions: LiveSessionConfig[];
  /** Browsers' way into the sessions (WHP 336 §4.2), on the origin's own ports. */
  readonly gateway: MulticastGateway;

  private constructor(
    private readonly o: LiveMulticastOptions,
    readonly signer: PushSigner,
    window: LiveWindow,
  ) {
    const trackIds = [...window.tracks.keys()];
    this.sessions = trackIds.map((trackId, i) => ({
      trackId,
      group: nthGroup(o.group, i),
      port: o.port + i,
      sessionId: crypto.getRandomValues(new Uint8Array(8)),
      fec: sessionFec(o.fec, o.port, trackIds.length, i),
    }));
    this.gateway = new MulticastGateway({
      sessions: () =>
        this.sender
          ? this.sessions.map(
              (s): GatewaySession => ({
                group: s.group,
                port: s.port,
                source: o.interfaceAddress,
                sessionId: toHex(s.sessionId),
                ...(s.fec?.port ? { fec: { port: s.fec.port } } : {}),
              }),
            )
          : [],
      allowedOrigins: o.gatewayOrigins,
      interfaceAddress: o.interfaceAddress,
    });
  }

  static async create(o: LiveMulticastOptions, window: LiveWindow, stateDir: string): Promise<LiveMulticast> {
    if (isIP(o.interfaceAddress) === 0)
      throw new Error(`--multicast-interface ${o.interfaceAddress} is not an IP address`);
    if (isIP(o.interfaceAddress) !== isIP(o.group))
      throw new Error('--multicast-interface and --multicast-group must be of one IP version');
    return new LiveMulticast(o, await loadOrCreateSigner(join(stateDir, 'multicast')), window);
  }

  /** The route serving the key set (RFC 7517 JWK Set). */
  keyRoute(): Route {
    const body = `${JSON.stringify(this.signer.keySet, null, 2)}\n`;
    return (req, res, ctx) => {
      if ((req.url ?? '').split('?')[0] !== MULTICAST_KEYS_PATH) return false;
      ctx.send(
        res,
        200,
        'application/jwk-set+json',
        body,
        { 'Cache-Control': 'public, max-age=300' },
        req,
        'multicast-keys',
      );
      return 'multicast-keys';
    };
  }

  /** The Alt-Svc value for a track's segments (undefined before the sessions run, or for a track without one). */
  altSvc(trackId: string): string | undefined {
    const session = this.sessions.find((s) => s.trackId === trackId);
    if (!session || !this.sender) return undefined;
    return formatMulticastAltSvc({
      group: session.group,
      port: session.port,
      source: this.o.interfaceAddress,
      sessionId: toHex(session.sessionId),
      keyUrl: this.keyUrl,
      gateway: this.o.gatewayUrl ?? GATEWAY_PATH,
      progressive: this.o.progressive ?? true,
      fec: fecAdvertisement(session.fec),
      maxAge: 60,
    });
  }

  async start(options: {
    window: LiveWindow;
    origin: Origin;
    authority: string;
    scheme: string;
    keyBase: string;
    log: (line: string) => void;
  }): Promise<string[]> {
    this.keyUrl = options.keyBase + MULTICAST_KEYS_PATH;
    this.sender = await LiveMulticastSender.start({
      window: options.window,
      sessions: this.sessions,
      resource: (track, segment) =>
        options.origin.completeResource(track.id, segment === 'init' ? 'init' : segment.number),
      growing: (track, segment) => options.origin.growingResource(track.id, segment.number),
      progressive: this.o.progressive ?? true,
      authority: options.authority,
      scheme: options.scheme,
      signer: this.signer,
      interfaceAddress: this.o.interfaceAddress,
      ttl: this.o.ttl,
      headroom: this.o.headroom,
      log: options.log,
    });
    const sender = this.sender;
    return sender.stats.map((s, i) => {
      const fec = this.sessions[i]?.fec;
      return `multicast: ${s.trackId} ${s.group.includes(':') ? `[${s.group}]` : s.group}:${s.port} source ${this.o.interfaceAddress} session-id ${s.sessionId} at ${(s.rateBitsPerSecond / 1e6).toFixed(1)} Mbit/s${fec ? `, FEC ${fec.k}:${fec.m} on port ${fec.port}` : ''}`;
    });
  }

  /** Each session's counts; none before start. */
  senderStats(): LiveSessionStats[] {
    return this.sender?.stats ?? [];
  }

  async close(): Promise<void> {
    await Promise.all([this.gateway.close(), this.sender?.close()]);
  }
}

/** What `pushcast multicast send --announce FILE` writes and `serve --multicast-announce FILE` reads. */
export interface MulticastAnnouncement {
  sessions: {
    representation: string;
    group: string;
    port: number;
    source: string;
    sessionId: string;
    fec?: FecAdvertisement;
  }[];
  keys: JsonWebKeySet;
}

/**
 * Sessions run by a separate sender, from its announcement file: the origin advertises them with
 * Alt-Svc and serves their key set. The file is read again when it changes (checked at most once a
 * second), so a restarted sender's new sessions are advertised without restarting the origin.
 */
export class AnnouncedMulticast {
  private announcement: MulticastAnnouncement | undefined;
  private checkedAt = 0;
  private mtime = 0;
  keyUrl: string | undefined;

  constructor(
    private readonly file: string,
    private readonly log: (line: string) => void,
  ) {
    this.refresh(true);
  }

  private refresh(force = false): void {
    const now = Date.now();
    if (!force && now - this.checkedAt < 1000) return;
    this.checkedAt = now;
    try {
      const mtime = statSync(this.file).mtimeMs;
      if (mtime === this.mtime) return;
      this.mtime = mtime;
      const parsed = JSON.parse(readFileSync(this.file, 'utf8')) as MulticastAnnouncement;
      if (!Array.isArray(parsed.sessions) || !Array.isArray(parsed.keys?.keys))
        throw new Error('not {sessions: [...], keys: {keys: [...]}}');
      this.announcement = parsed;
      this.log(
        `multicast announcement ${this.file}: ${parsed.sessions.map((s) => `${s.representation} ${s.group}:${s.port}`).join(', ')}`,
      );
    } catch (error) {
      if (force || this.announcement)
        this.log(
          `multicast announcement ${this.file}: ${error instanceof Error ? error.message : String(error)}; nothing advertised`,
        );
      this.announcement = undefined;
    }
  }

  altSvc(trackId: string): string | undefined {
    this.refresh();
    const s = this.announcement?.sessions.find((x) => x.representation === trackId);
    if (!s) return undefined;
    try {
      return formatMulticastAltSvc({
        group: s.group,
        port: s.port,
        source: s.source,
        sessionId: s.sessionId,
        keyUrl: this.keyUrl,
        fec: s.fec,
        maxAge: 60,
      });
    } catch {
      return undefined; // a malformed entry advertises nothing
    }
  }

  keyRoute(): Route {
    return (req, res, ctx) => {
      if ((req.url ?? '').split('?')[0] !== MULTICAST_KEYS_PATH) return false;
      this.refresh();
      if (!this.announcement)
        ctx.send(
          res,
          404,
          'text/plain',
          'no multicast sessions announced\n',
          { 'Cache-Control': 'no-store' },
          req,
          'multicast-keys',
        );
      else
        ctx.send(
          res,
          200,
          'application/jwk-set+json',
          `${JSON.stringify(this.announcement.keys, null, 2)}\n`,
          { 'Cache-Control': 'public, max-age=60' },
          req,
          'multicast-keys',
        );
      return 'multicast-keys';
    };
  }
}
