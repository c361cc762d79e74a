/**
 * The transport protocol gateway of WHP 336 (§4.2): browsers cannot join IP multicast, so the gateway
 * joins a multicast push session on their behalf and tunnels each QUIC packet to them as one binary
 * WebSocket message (RFC 6455), untouched: the browser reassembles and verifies it as any receiver does.
 *
 *   GET /multicast/gateway?group=232.112.99.1&port=5000&source=10.0.0.1&session-id=5fa3… (Upgrade: websocket)
 *
 * - Only sessions the origin advertises can be joined (`sessions()`, the same list its Alt-Svc fields
 *   come from), matched on all four parameters: the gateway is no open relay onto arbitrary groups.
 *   Anything else is refused before the upgrade with a plain HTTP status and a one-line reason.
 * - `Origin` (RFC 6454) must be in `allowedOrigins` when given (browsers always send it).
 * - One join per session, shared by its subscribers; the gateway leaves the group when the last one goes.
 * - A subscriber's send queue is bounded (`maxQueuedBytes`, WebSocket bufferedAmount): a packet that does
 *   not fit is dropped for that subscriber alone and counted (its reassembler repairs by unicast); a slow
 *   subscriber never slows another, nor the gateway.
 * - Liveness: a ping every `pingIntervalMs`; a subscriber that has not answered the previous one is cut off.
 * - Subscribers send nothing: messages are refused (close 1008), frames larger than 1 KiB close the connection
 *   (1009). Datagrams on the group longer than 4096 bytes are dropped by the receiver, not forwarded.
 * - Limits on subscribers in all and on sessions joined at once; 503 past them.
 * - A subscriber the gateway closes (a refused message, a failed join) that does not finish the close
 *   handshake within `closeGraceMs` is cut off (ws alone would wait 30 s); `close()` cuts off whatever is
 *   left after that, so that it ends within `closeGraceMs`.
 * - Forward error correction: a subscriber that adds `fec=1` to its query, of a session advertised with a
 *   repair port, gets the session's repair packets (src/wire/fec.ts) on the same WebSocket, interleaved
 *   as they arrive. The repair flow is joined once per session, for the subscribers that ask, and left
 *   with the last of them; only repair packets of the session go on from it. They share the subscriber's
 *   send queue and the 4096-byte bound. A session without FEC ignores `fec=1`.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { MulticastUdpReceiver } from '../multicast/udp-receiver.js';
import { fromHex, isRepairPacket } from '../wire/index.js';

export const GATEWAY_PATH = '/multicast/gateway';

/** A session the gateway may join: what an Alt-Svc advertisement names. */
export interface GatewaySession {
  group: string;
  port: number;
  source?: string;
  /** Lowercase hex. */
  sessionId: string;
  /** The repair flow's UDP port on the same group and source, when the session has FEC. */
  fec?: { port: number };
}

export interface MulticastGatewayOptions {
  /** The sessions subscribers may ask for (read at each subscription). */
  sessions: () => readonly GatewaySession[];
  /**
   * Page origins allowed to subscribe besides the gateway's own (an `Origin` whose host:port is the
   * request's `Host`), e.g. `https://player.example`; `*` allows any.
   */
  allowedOrigins?: readonly string[];
  /** Interface to join on (an IPv4 address; `::%ifname` for IPv6); default by the source address. */
  interfaceAddress?: string;
  maxSubscribers?: number;
  maxSessions?: number;
  /** Bytes that may wait for one subscriber; beyond, its packets are dropped. Default 1 MiB. */
  maxQueuedBytes?: number;
  pingIntervalMs?: number;
  /** How long a subscriber being closed has to finish the close handshake before it is cut off. Default 1 s. */
  closeGraceMs?: number;
  log?: (line: string) => void;
}

/** The gateway's counts since it started (subscribers and sessions: now), for metrics and tests. */
export interface GatewayStats {
  subscribers: number;
  /** Multicast sessions joined. */
  sessions: number;
  /** Datagrams received on the joined groups. */
  datagrams: number;
  /** Packets sent to subscribers, and dropped for one whose send queue was full. */
  forwarded: number;
  dropped: number;
  /** Datagrams on the group that are not packets of the session (not forwarded); on a repair port, not repair packets of it. */
  foreign: number;
  /** FEC repair flows joined (one per session at most, for subscribers that asked). */
  repairFlows: number;
  /** Subscriptions refused, by reason. */
  refused: Record<string, number>;
}

interface Joined {
  key: string;
  session: GatewaySession;
  sessionIdBytes: Uint8Array;
  receiver?: MulticastUdpReceiver;
  joining?: Promise<MulticastUdpReceiver>;
  subscribers: Set<WebSocket>;
  /** Subscribers that also get the repair flow, and its join. */
  repairSubscribers: Set<WebSocket>;
  repairReceiver?: MulticastUdpReceiver;
  repairJoining?: Promise<void>;
}

function keyOf(s: GatewaySession): string {
  return `${s.source ?? '*'}|${s.group}|${s.port}|${s.sessionId.toLowerCase()}`;
}

export class MulticastGateway {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 1024, perMessageDeflate: false });
  private readonly joined = new Map<string, Joined>();
  private readonly counters = { datagrams: 0, forwarded: 0, dropped: 0, foreign: 0 };
  private readonly refused: Record<string, number> = {};
  private readonly maxSubscribers: number;
  private readonly maxSessions: number;
  private readonly maxQueuedBytes: number;
  private readonly closeGraceMs: number;
  private readonly pinger: ReturnType<typeof setInterval>;
  private readonly alive = new WeakMap<WebSocket, boolean>();
  private closed = false;

  constructor(private readonly o: MulticastGatewayOptions) {
    this.maxSubscribers = o.maxSubscribers ?? 1000;
    this.maxSessions = o.maxSessions ?? 16;
    this.maxQueuedBytes = o.maxQueuedBytes ?? 1024 * 1024;
    this.closeGraceMs = o.closeGraceMs ?? 1000;
    this.pinger = setInterval(() => this.ping(), o.pingIntervalMs ?? 15_000);
    this.pinger.unref();
  }

  get stats(): GatewayStats {
    let repairFlows = 0;
    for (const j of this.joined.values()) if (j.repairReceiver) repairFlows++;
    return {
      subscribers: this.subscriberCount(),
      sessions: this.joined.size,
      ...this.counters,
      repairFlows,
      refused: { ...this.refused },
    };
  }

  private subscriberCount(): number {
    let n = 0;
    for (const j of this.joined.values()) n += j.subscribers.size;
    return n;
  }

  /** Handles an HTTP upgrade if it is for the gateway; false otherwise (the caller handles it). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = new URL(req.url ?? '/', 'http://gateway');
    if (url.pathname !== GATEWAY_PATH) return false;
    const refuse = (status: number, reason: string, detail: string) => {
      this.refused[reason] = (this.refused[reason] ?? 0) + 1;
      const body = `${detail}\n`;
      socket.end(
        `HTTP/1.1 ${status} ${status === 403 ? 'Forbidden' : status === 400 ? 'Bad Request' : 'Service Unavailable'}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
      return true;
    };
    if (this.closed) return refuse(503, 'closing', 'the gateway is shutting down');
    const origin = req.headers.origin;
    if (!this.originAllowed(origin, req.headers.host))
      return refuse(403, 'origin', `origin ${origin ?? '(none)'} may not subscribe`);
    const port = Number(url.searchParams.get('port'));
    const wanted: GatewaySession = {
      group: url.searchParams.get('group') ?? '',
      port,
      source: url.searchParams.get('source') ?? undefined,
      sessionId: (url.searchParams.get('session-id') ?? '').toLowerCase(),
    };
    if (!wanted.group || !Number.isInteger(port) || !wanted.sessionId)
      return refuse(400, 'bad-request', 'group, port and session-id are required');
    const advertised = this.o.sessions().find((s) => keyOf(s) === keyOf(wanted));
    if (!advertised)
      return refuse(
        403,
        'not-advertised',
        `${wanted.group}:${wanted.port} session ${wanted.sessionId} is not a session this origin advertises`,
      );
    if (this.subscriberCount() >= this.maxSubscribers)
      return refuse(503, 'subscribers', `the gateway serves at most ${this.maxSubscribers} subscribers`);
    const key = keyOf(advertised);
    if (!this.joined.has(key) && this.joined.size >= this.maxSessions)
      return refuse(503, 'sessions', `the gateway joins at most ${this.maxSessions} sessions at once`);
    const repair = url.searchParams.get('fec') === '1' && advertised.fec !== undefined;
    this.wss.handleUpgrade(req, socket, head, (ws) => void this.subscribe(ws, key, advertised, repair));
    return true;
  }

  /** RFC 6455 §10.2: the server checks `Origin`. Same origin as the gateway, or listed. */
  private originAllowed(origin: string | undefined, host: string | undefined): boolean {
    const allowed = this.o.allowedOrigins ?? [];
    if (allowed.includes('*')) return true;
    if (origin === undefined) return false;
    if (allowed.includes(origin)) return true;
    try {
      return host !== undefined && new URL(origin).host === host;
    } catch {
      return false;
    }
  }

  private async subscribe(ws: WebSocket, key: string, session: GatewaySession, repair: boolean): Promise<void> {
    let joined = this.joined.get(key);
    if (!joined) {
      joined = {
        key,
        session,
        sessionIdBytes: fromHex(session.sessionId),
        subscribers: new Set(),
        repairSubscribers: new Set(),
      };
      this.joined.set(key, joined);
    }
    joined.subscribers.add(ws);
    if (repair) joined.repairSubscribers.add(ws);
    this.alive.set(ws, true);
    ws.on('pong', () => this.alive.set(ws, true));
    ws.on('message', () => this.end(ws, 1008, 'subscribers send nothing'));
    ws.on('error', () => ws.terminate());
    ws.on('close', () => this.unsubscribe(ws, joined!));
    try {
      await this.join(joined);
    } catch (error) {
      this.o.log?.(`gateway: ${error instanceof Error ? error.message : String(error)}`);
      this.end(ws, 1011, 'cannot join the multicast session');
      return;
    }
    if (repair && joined.repairSubscribers.has(ws)) await this.joinRepair(joined);
  }

  /** The session's repair flow, joined once for its subscribers that asked; without it they still get the session. */
  private joinRepair(joined: Joined): Promise<void> {
    const port = joined.session.fec?.port;
    if (joined.repairReceiver || port === undefined) return Promise.resolve();
    joined.repairJoining ??= MulticastUdpReceiver.open({
      group: joined.session.group,
      port,
      source: joined.session.source,
      interfaceAddress: this.interfaceFor(joined.session),
      maxDatagramBytes: 4096,
      onDatagram: (d) => this.forwardRepair(joined, d),
    }).then(
      (receiver) => {
        joined.repairJoining = undefined;
        if (joined.repairSubscribers.size === 0 || this.joined.get(joined.key) !== joined) {
          void receiver.close(); // everyone who asked left while joining
          return;
        }
        joined.repairReceiver = receiver;
        this.o.log?.(`gateway: joined the repair flow ${receiver.description}`);
      },
      (error: unknown) => {
        joined.repairJoining = undefined;
        this.o.log?.(
          `gateway: no repair flow for ${joined.session.group}:${port}: ${error instanceof Error ? error.message : String(error)}`,
        );
      },
    );
    return joined.repairJoining;
  }

  private interfaceFor(session: GatewaySession): string | undefined {
    return this.o.interfaceAddress ?? (session.source?.startsWith('127.') ? '127.0.0.1' : undefined);
  }

  private join(joined: Joined): Promise<MulticastUdpReceiver> {
    if (joined.receiver) return Promise.resolve(joined.receiver);
    joined.joining ??= MulticastUdpReceiver.open({
      group: joined.session.group,
      port: joined.session.port,
      source: joined.session.source,
      interfaceAddress: this.interfaceFor(joined.session),
      maxDatagramBytes: 4096,
      onDatagram: (d) => this.forward(joined, d),
    }).then(
      (receiver) => {
        joined.receiver = receiver;
        if (joined.subscribers.size === 0)
          this.leave(joined); // everyone left while joining
        else this.o.log?.(`gateway: joined ${receiver.description} for ${joined.subscribers.size} subscriber(s)`);
        return receiver;
      },
      (error: unknown) => {
        this.joined.delete(joined.key);
        for (const ws of joined.subscribers) this.end(ws, 1011, 'cannot join the multicast session');
        throw error;
      },
    );
    return joined.joining;
  }

  private forward(joined: Joined, datagram: Uint8Array): void {
    this.counters.datagrams++;
    // Only packets of the session go on: a short header (RFC 9000 §17.3.1: fixed bit set, long-header
    // bit clear) whose Destination Connection ID is the session ID. The browser verifies the rest.
    const id = joined.sessionIdBytes;
    let ours = datagram.length > 1 + id.length && (datagram[0]! & 0xc0) === 0x40;
    for (let i = 0; ours && i < id.length; i++) ours = datagram[1 + i] === id[i];
    if (!ours) {
      this.counters.foreign++;
      return;
    }
    this.send(joined.subscribers, datagram);
  }

  private forwardRepair(joined: Joined, datagram: Uint8Array): void {
    this.counters.datagrams++;
    // Only repair packets of the session: first byte's 0x80 and 0x40 clear, then its session ID.
    const id = joined.sessionIdBytes;
    let ours = datagram.length > 1 + id.length && isRepairPacket(datagram);
    for (let i = 0; ours && i < id.length; i++) ours = datagram[1 + i] === id[i];
    if (!ours) {
      this.counters.foreign++;
      return;
    }
    this.send(joined.repairSubscribers, datagram);
  }

  private send(subscribers: Set<WebSocket>, datagram: Uint8Array): void {
    for (const ws of subscribers) {
      if (ws.readyState !== WebSocket.OPEN) continue;
      if (ws.bufferedAmount + datagram.length > this.maxQueuedBytes) {
        this.counters.dropped++;
        continue;
      }
      ws.send(datagram, { binary: true });
      this.counters.forwarded++;
    }
  }

  private unsubscribe(ws: WebSocket, joined: Joined): void {
    joined.subscribers.delete(ws);
    if (joined.repairSubscribers.delete(ws) && joined.repairSubscribers.size === 0) this.leaveRepair(joined);
    if (joined.subscribers.size === 0 && joined.receiver) this.leave(joined);
  }

  private leave(joined: Joined): void {
    if (this.joined.get(joined.key) === joined) this.joined.delete(joined.key);
    this.leaveRepair(joined);
    const receiver = joined.receiver;
    joined.receiver = undefined;
    joined.joining = undefined;
    if (receiver) {
      this.o.log?.(`gateway: left ${receiver.description}: no subscriber`);
      void receiver.close();
    }
  }

  private leaveRepair(joined: Joined): void {
    const receiver = joined.repairReceiver;
    joined.repairReceiver = undefined;
    if (receiver) {
      this.o.log?.(`gateway: left the repair flow ${receiver.description}: no subscriber asks for it`);
      void receiver.close();
    }
  }

  private ping(): void {
    for (const joined of this.joined.values()) {
      for (const ws of joined.subscribers) {
        if (!this.alive.get(ws)) {
          ws.terminate();
          continue;
        }
        this.alive.set(ws, false);
        ws.ping();
      }
    }
  }

  /** Starts the close handshake; a subscriber that has not finished it within `closeGraceMs` is cut off. */
  private end(ws: WebSocket, code: number, reason: string): void {
    if (ws.readyState !== WebSocket.OPEN) return; // closing already: a close begun here has its deadline
    ws.close(code, reason);
    const timer = setTimeout(() => ws.terminate(), this.closeGraceMs);
    ws.once('close', () => clearTimeout(timer));
  }

  /**
   * Closes every subscription (1001 going away) and leaves every group; resolves once every subscriber is
   * gone: those that have not finished their close handshake (or one they began) within `closeGraceMs`
   * are cut off then.
   */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.pinger);
    for (const joined of [...this.joined.values()]) {
      for (const ws of joined.subscribers) ws.close(1001, 'gateway shutting down');
      this.leave(joined);
    }
    const cutOff = setTimeout(() => {
      for (const ws of this.wss.clients) ws.terminate();
    }, this.closeGraceMs);
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    clearTimeout(cutOff);
  }
}
