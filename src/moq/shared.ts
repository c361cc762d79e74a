/**
 * What the MoQ sessions of every protocol share (server.ts: moq-lite; ietf.ts: draft-ietf-moq-transport-16):
 * a subscription, the session as the server drives it, the server as a session uses it, a segment as a
 * subscription's group, the send order, and paths.
 */
import type { Session, SessionStream } from '../webtransport/index.js';
import type { WarpSender } from '../warp/sender.js';
import type { WarpSource } from '../warp/source.js';

export interface Subscription {
  readonly id: number;
  readonly broadcast: string;
  readonly track: string;
  /** Higher first (moq-lite's sense); moq-lite-03's SUBSCRIBE_UPDATE changes it, for the groups sent after. */
  priority: number;
  /** moq-lite: the subscription's own stream. */
  readonly stream?: SessionStream;
}

/** What the server asks of a session, whichever protocol it speaks (moq-lite here, IETF in ietf.ts). */
export interface MoqSessionHandle {
  readonly session: Session;
  readonly sender: WarpSender;
  readonly subscriptions: ReadonlyMap<number, Subscription>;
  /** Sends a segment of the subscription's track as a group. */
  sendGroup(sub: Subscription, source: WarpSource, sequence: number): void;
  announce(name: string, active: boolean): void;
}

/** The server as a session uses it. */
export interface MoqHost {
  readonly o: {
    maxSubscriptions: number;
    maxAnnounceStreams: number;
    maxMessageBytes: number;
    setupTimeoutMs: number;
    log?: (line: string) => void;
  };
  readonly counters: { sessionsFailed: number; subscriptionsRefused: number; groupsSent: number };
  broadcastNames(): string[];
  has(broadcast: string, track: string): boolean;
  /** A new subscription: the groups under way are handed to `session.sendGroup`. */
  start(session: MoqSessionHandle, sub: Subscription): void;
}

/** A segment of a track, as one subscription's group. */
export class GroupSource implements WarpSource {
  readonly init = false;
  readonly partKind = 'segment';
  readonly headers;
  readonly segment: number | undefined;

  constructor(
    readonly inner: WarpSource,
    readonly start: Uint8Array,
    order: number,
  ) {
    this.headers = { kind: 'headers' as const, order };
    this.segment = inner.segment;
  }
  get track(): string {
    return this.inner.track;
  }
  get parts(): readonly Uint8Array[] {
    return this.inner.parts;
  }
  get complete(): boolean {
    return this.inner.complete;
  }
  get aborted(): boolean {
    return this.inner.aborted;
  }
  follow(onPart: (part: Uint8Array) => void, onEnd: (aborted: boolean) => void): () => void {
    return this.inner.follow(onPart, onEnd);
  }
}

/** Smaller is sent first: higher priority first, and within it the newest group first. */
export function groupOrder(priority: number, sequence: number): number {
  return (255 - priority) * 2 ** 32 - sequence;
}

export const trimPath = (path: string): string => path.replace(/\/+/g, '/').replace(/^\/|\/$/g, '');

/** `name` relative to `prefix` (moq paths: whole segments), undefined when outside it. */
export function stripPrefix(prefix: string, name: string): string | undefined {
  if (prefix === '') return name;
  if (name === prefix) return '';
  return name.startsWith(`${prefix}/`) ? name.slice(prefix.length + 1) : undefined;
}
