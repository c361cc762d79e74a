/**
 * MoQ sessions in draft-ietf-moq-transport-16 (docs/moq.md), reached by the WebTransport protocol
 * `moqt-16`: the same broadcasts, tracks, groups and priorities as the moq-lite sessions (server.ts).
 *
 * - Control stream: the client's first bidirectional stream, CLIENT_SETUP then control messages; the
 *   server answers SERVER_SETUP granting request IDs (MAX_REQUEST_ID), and grants one more as each
 *   request ends, so that requests at once stay bounded.
 * - SUBSCRIBE (catalog or rendition) → SUBSCRIBE_OK with a track alias, then a subgroup stream (subgroup 0,
 *   the subscriber's priority as the publisher priority) per group, an object per CMAF chunk, from the group
 *   under way: the Largest Object filter gets that group from its start (its key frame), which is what a
 *   player needs and what `@moq/net` expects of a publisher; Next Group Start waits for the next; an
 *   Absolute Start the group named. UNSUBSCRIBE ends it; the broadcast's end sends PUBLISH_DONE.
 * - SUBSCRIBE_NAMESPACE on its own bidirectional stream → REQUEST_OK, a NAMESPACE per broadcast under the
 *   prefix, NAMESPACE_DONE when one ends.
 * - Not served: FETCH, TRACK_STATUS, PUBLISH, PUBLISH_NAMESPACE, Absolute Range (REQUEST_ERROR
 *   NOT_SUPPORTED), FORWARD 0.
 */
import type { Session, SessionStream } from '../webtransport/index.js';
import type { StreamFraming } from '../warp/sender.js';
import { WarpSender } from '../warp/sender.js';
import type { WarpSource } from '../warp/source.js';
import {
  MoqStreamReader,
  MoqtMessage,
  MoqtPublishDone,
  MoqtRequestError,
  WireError,
  decodeMoqtRequestId,
  decodeMoqtSetup,
  decodeMoqtSubscribe,
  decodeMoqtSubscribeNamespace,
  encodeMoqtNamespaceSuffix,
  encodeMoqtObjectHeader,
  encodeMoqtPublishDone,
  encodeMoqtRequestError,
  encodeMoqtRequestId,
  encodeMoqtRequestOk,
  encodeMoqtSetup,
  encodeMoqtSubgroupHeader,
  encodeMoqtSubscribeOk,
  frameMoqtControl,
  type MoqtFilter,
} from '../wire/index.js';
import {
  GroupSource,
  type MoqHost,
  type MoqSessionHandle,
  type Subscription,
  groupOrder,
  stripPrefix,
  trimPath,
} from './shared.js';

/** Session error codes (draft-16 §3.4) this server closes with. */
export const MoqtErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_VIOLATION: 0x3,
  INVALID_REQUEST_ID: 0x4,
  TOO_MANY_REQUESTS: 0x7,
  /** No SETUP in time. */
  CONTROL_MESSAGE_TIMEOUT: 0x11,
} as const;

const EMPTY_OBJECT = Uint8Array.of(0, 0, 0);

const OBJECT_FRAMING: StreamFraming = {
  start: (source) => (source as GroupSource).start,
  // Objects follow each other from 0, so every Object ID delta is 0.
  part: (_source, part) => {
    if (part.length === 0) return EMPTY_OBJECT;
    const head = encodeMoqtObjectHeader(0, part.length);
    const out = new Uint8Array(head.length + part.length);
    out.set(head);
    out.set(part, head.length);
    return out;
  },
};

interface MoqtSubscription extends Subscription {
  readonly alias: number;
  /** The subscriber's priority as it asked it (0 most urgent): the subgroups' publisher priority. */
  readonly wirePriority: number;
  readonly filter: MoqtFilter['kind'];
  /** Groups before this one are not sent. */
  from: number;
}

class MoqtRefusal extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export class MoqtSession implements MoqSessionHandle {
  readonly subscriptions = new Map<number, MoqtSubscription>();
  readonly sender: WarpSender;
  private control: SessionStream | undefined;
  private readonly namespaces = new Set<{ prefix: string; stream: SessionStream }>();
  /** Request IDs below this the client may use. */
  private maxRequestId: number;
  private readonly requests = new Set<number>();
  private nextAlias = 0;
  /** While `server.start` hands a new subscription the groups under way. */
  private starting = false;
  private readonly setupTimer: ReturnType<typeof setTimeout>;

  constructor(
    readonly server: MoqHost,
    readonly session: Session,
    maxBacklogBytes: number,
  ) {
    this.sender = new WarpSender(session, { maxBacklogBytes, framing: OBJECT_FRAMING });
    // Client request IDs are even: this grants one per subscription and announce stream the session may hold.
    this.maxRequestId = 2 * (server.o.maxSubscriptions + server.o.maxAnnounceStreams);
    this.setupTimer = setTimeout(
      () => this.fail(MoqtErrorCode.CONTROL_MESSAGE_TIMEOUT, 'no SETUP in time'),
      server.o.setupTimeoutMs,
    );
    session.on('stream', (stream) => void this.read(stream));
    session.once('close', () => clearTimeout(this.setupTimer));
  }

  fail(code: number, reason: string): void {
    this.server.counters.sessionsFailed++;
    this.server.o.log?.(`moq: session closed: ${reason}`);
    void this.session.close(code, reason).catch(() => undefined);
  }

  private async read(stream: SessionStream): Promise<void> {
    if (!stream.bidirectional) {
      // A subscriber-only session: nothing is read from the peer's unidirectional streams.
      stream.stopSending(MoqtErrorCode.PROTOCOL_VIOLATION);
      return;
    }
    const reader = new MoqStreamReader({ maxMessage: this.server.o.maxMessageBytes });
    let type: number | undefined;
    let first: number | undefined;
    let done: (() => void) | undefined;
    try {
      for await (const chunk of stream) {
        reader.push(chunk);
        for (;;) {
          type ??= reader.varint();
          if (type === undefined) break;
          const payload = reader.message('u16');
          if (payload === undefined) break;
          if (first === undefined) {
            first = type;
            done = this.open(type, payload, stream);
          } else if (first === MoqtMessage.CLIENT_SETUP) this.onControl(type, payload);
          else
            throw new MoqtRefusal(
              MoqtErrorCode.PROTOCOL_VIOLATION,
              `message 0x${type.toString(16)} after SUBSCRIBE_NAMESPACE`,
            );
          type = undefined;
        }
      }
      if (stream === this.control) throw new MoqtRefusal(MoqtErrorCode.PROTOCOL_VIOLATION, 'the control stream ended');
    } catch (error) {
      if (error instanceof MoqtRefusal) this.fail(error.code, error.message);
      else if (error instanceof WireError)
        this.fail(MoqtErrorCode.PROTOCOL_VIOLATION, `malformed message: ${error.message}`);
      // else: the peer reset the stream, or the session is gone
    } finally {
      done?.();
    }
    if (stream !== this.control) await stream.end().catch(() => undefined);
  }

  /** The first message of a bidirectional stream: CLIENT_SETUP (the control stream) or SUBSCRIBE_NAMESPACE. */
  private open(type: number, payload: Uint8Array, stream: SessionStream): (() => void) | undefined {
    if (type === MoqtMessage.CLIENT_SETUP) {
      if (this.control) throw new MoqtRefusal(MoqtErrorCode.PROTOCOL_VIOLATION, 'a second CLIENT_SETUP');
      decodeMoqtSetup(payload);
      this.control = stream;
      clearTimeout(this.setupTimer);
      const setup = new Map<bigint, bigint | Uint8Array>([
        [0x2n, BigInt(this.maxRequestId)],
        [0x7n, new TextEncoder().encode('pushcast')],
      ]);
      this.send(MoqtMessage.SERVER_SETUP, encodeMoqtSetup(setup));
      return undefined;
    }
    if (!this.control) throw new MoqtRefusal(MoqtErrorCode.PROTOCOL_VIOLATION, 'a stream before SETUP');
    if (type !== MoqtMessage.SUBSCRIBE_NAMESPACE)
      throw new MoqtRefusal(MoqtErrorCode.PROTOCOL_VIOLATION, `a stream opened by message 0x${type.toString(16)}`);
    const m = decodeMoqtSubscribeNamespace(payload);
    this.request(m.requestId);
    const prefix = trimPath(m.prefix.join('/'));
    const write = (t: number, p: Uint8Array) => void stream.write(frameMoqtControl(t, p)).catch(() => undefined);
    if (this.namespaces.size >= this.server.o.maxAnnounceStreams) {
      write(
        MoqtMessage.REQUEST_ERROR,
        encodeMoqtRequestError({ requestId: m.requestId, code: MoqtRequestError.INTERNAL, reason: 'too many' }),
      );
      this.requestDone(m.requestId);
      return undefined;
    }
    const entry = { prefix, stream };
    this.namespaces.add(entry);
    write(MoqtMessage.REQUEST_OK, encodeMoqtRequestOk({ requestId: m.requestId }));
    for (const name of this.server.broadcastNames()) {
      const suffix = stripPrefix(prefix, name);
      if (suffix !== undefined) write(MoqtMessage.NAMESPACE, encodeMoqtNamespaceSuffix(splitPath(suffix)));
    }
    return () => {
      this.namespaces.delete(entry);
      this.requestDone(m.requestId);
    };
  }

  private onControl(type: number, payload: Uint8Array): void {
    switch (type) {
      case MoqtMessage.SUBSCRIBE:
        return this.subscribe(payload);
      case MoqtMessage.UNSUBSCRIBE: {
        const id = decodeMoqtRequestId(payload, 'UNSUBSCRIBE request id');
        if (this.subscriptions.delete(id)) this.requestDone(id);
        return;
      }
      // Flow control of the server's own requests (it makes none), and a change of a subscription's
      // delivery, which this server does not act on.
      case MoqtMessage.MAX_REQUEST_ID:
      case MoqtMessage.REQUESTS_BLOCKED:
      case MoqtMessage.REQUEST_UPDATE:
        return;
      case MoqtMessage.FETCH:
      case MoqtMessage.TRACK_STATUS:
      case MoqtMessage.PUBLISH:
      case MoqtMessage.PUBLISH_NAMESPACE: {
        const requestId = decodeRequestIdPrefix(payload);
        this.request(requestId);
        this.refuse(requestId, MoqtRequestError.NOT_SUPPORTED, `message 0x${type.toString(16)} is not served`);
        return;
      }
      case MoqtMessage.GOAWAY:
        void this.session.close(MoqtErrorCode.NO_ERROR, 'GOAWAY').catch(() => undefined);
        return;
      default:
        throw new MoqtRefusal(MoqtErrorCode.PROTOCOL_VIOLATION, `control message 0x${type.toString(16)}`);
    }
  }

  /** A new request ID from the client: even, within the grant, not in use. */
  private request(id: number): void {
    if (id % 2 !== 0 || this.requests.has(id))
      throw new MoqtRefusal(MoqtErrorCode.INVALID_REQUEST_ID, `request id ${id}`);
    if (id >= this.maxRequestId) throw new MoqtRefusal(MoqtErrorCode.TOO_MANY_REQUESTS, `request id ${id}`);
    this.requests.add(id);
  }

  /** A request is over: the client may make one more. */
  private requestDone(id: number): void {
    if (!this.requests.delete(id)) return;
    this.maxRequestId += 2;
    this.send(MoqtMessage.MAX_REQUEST_ID, encodeMoqtRequestId(this.maxRequestId));
  }

  private refuse(requestId: number, code: number, reason: string): void {
    this.send(MoqtMessage.REQUEST_ERROR, encodeMoqtRequestError({ requestId, code, reason }));
    this.requestDone(requestId);
  }

  private send(type: number, payload: Uint8Array): void {
    void this.control?.write(frameMoqtControl(type, payload)).catch(() => undefined);
  }

  private subscribe(payload: Uint8Array): void {
    const m = decodeMoqtSubscribe(payload);
    this.request(m.requestId);
    const broadcast = trimPath(m.namespace.join('/'));
    const counters = this.server.counters;
    const filter = m.filter ?? { kind: 'largest-object' };
    if (filter.kind === 'absolute-range' || m.forward === false) {
      counters.subscriptionsRefused++;
      return this.refuse(m.requestId, MoqtRequestError.NOT_SUPPORTED, 'only open-ended subscriptions are served');
    }
    if (this.subscriptions.size >= this.server.o.maxSubscriptions) {
      counters.subscriptionsRefused++;
      return this.refuse(m.requestId, MoqtRequestError.INTERNAL, 'too many subscriptions');
    }
    if (!this.server.has(broadcast, m.track)) {
      counters.subscriptionsRefused++;
      return this.refuse(m.requestId, MoqtRequestError.DOES_NOT_EXIST, `no track ${m.track} in ${broadcast}`);
    }
    const wirePriority = m.priority ?? 128;
    const sub: MoqtSubscription = {
      id: m.requestId,
      broadcast,
      track: m.track,
      priority: 255 - wirePriority,
      wirePriority,
      alias: this.nextAlias++,
      filter: filter.kind,
      from: filter.kind === 'absolute-start' ? filter.group : 0,
    };
    this.subscriptions.set(sub.id, sub);
    this.send(MoqtMessage.SUBSCRIBE_OK, encodeMoqtSubscribeOk({ requestId: sub.id, trackAlias: sub.alias }));
    this.starting = true;
    try {
      this.server.start(this, sub);
    } finally {
      this.starting = false;
    }
  }

  sendGroup(s: Subscription, source: WarpSource, sequence: number): void {
    const sub = s as MoqtSubscription;
    if (sequence < sub.from) return;
    if (this.starting && sub.filter === 'next-group') {
      sub.from = sequence + 1;
      return;
    }
    const start = encodeMoqtSubgroupHeader({ trackAlias: sub.alias, group: sequence, priority: sub.wirePriority });
    this.server.counters.groupsSent++;
    this.sender.send(new GroupSource(source, start, groupOrder(sub.priority, sequence)));
  }

  announce(name: string, active: boolean): void {
    for (const n of this.namespaces) {
      const suffix = stripPrefix(n.prefix, name);
      if (suffix === undefined) continue;
      const type = active ? MoqtMessage.NAMESPACE : MoqtMessage.NAMESPACE_DONE;
      void n.stream.write(frameMoqtControl(type, encodeMoqtNamespaceSuffix(splitPath(suffix)))).catch(() => undefined);
    }
    if (active) return;
    for (const sub of [...this.subscriptions.values()].filter((s) => s.broadcast === name)) {
      this.subscriptions.delete(sub.id);
      this.send(
        MoqtMessage.PUBLISH_DONE,
        encodeMoqtPublishDone({
          requestId: sub.id,
          status: MoqtPublishDone.TRACK_ENDED,
          streamCount: 0,
          reason: 'ended',
        }),
      );
      this.requestDone(sub.id);
    }
  }
}

const splitPath = (path: string): string[] => (path === '' ? [] : path.split('/'));

/** The request ID that opens every request message. */
function decodeRequestIdPrefix(payload: Uint8Array): number {
  if (payload.length === 0) throw new WireError('truncated', 0, 'a request without its id');
  return decodeMoqtRequestId(payload.subarray(0, 1 << (payload[0]! >> 6)));
}
