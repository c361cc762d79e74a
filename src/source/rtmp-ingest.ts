/**
 * The RTMP ingest point: a small RTMP server (Adobe RTMP 1.0: handshake, chunk stream, the publishing
 * commands) that accepts one encoder's `publish` when its application and stream key match, and hands its
 * audio, video and metadata messages on as an FLV byte stream (the same payloads, framed as FLV tags) for
 * the encoder process to read on its standard input.
 *
 * pushcast answers RTMP itself because ffmpeg's own listener (`-listen 1`) takes any stream name: it logs
 * "Unexpected stream X, expecting Y" and reads the stream anyway, so it cannot refuse a wrong key.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { PassThrough, type Readable } from 'node:stream';
import { Amf0Error, decodeAmf0, encodeAmf0, type Amf0Object, type Amf0Value } from './amf0.js';

export interface RtmpIngestOptions {
  host: string;
  /** 0 = any free port (`address()` tells which). */
  port: number;
  /** The application an encoder connects to (`rtmp://host/<app>`), e.g. `live`. */
  app: string;
  /** The stream key (the name the encoder publishes). */
  key: string;
  /** Encoder connections at once, publishing or not; more are closed as they arrive. */
  maxConnections?: number;
  /** From a connection's start to its `publish`; then it is closed. */
  handshakeTimeoutMs?: number;
  /** A publishing encoder that sends nothing for this long is cut off. */
  idleTimeoutMs?: number;
}

/** One encoder publishing with the right key. */
export interface RtmpPublisher {
  /** `address:port` of the encoder. */
  readonly remote: string;
  /** FLV (header, then one tag per audio, video and metadata message) as it arrives; ends when the encoder stops. */
  readonly flv: Readable;
  /** Ends the publication and the connection, for `reason` (what `unpublish` says). */
  close(reason?: string): void;
}

export interface RtmpIngestEvents {
  /** An encoder connected with the right application and key and began to publish. */
  publish: [publisher: RtmpPublisher];
  /** A publisher's stream ended: the encoder stopped, disconnected, went silent, or `close()`. */
  unpublish: [publisher: RtmpPublisher, reason: string];
  /** A connection was refused before publishing (wrong key, wrong application, timeout, protocol error, too many). */
  refused: [remote: string, reason: string];
}

export const RTMP_DEFAULTS = { maxConnections: 8, handshakeTimeoutMs: 10_000, idleTimeoutMs: 10_000 } as const;

/** A command (or metadata) message before publishing; encoders send a few hundred bytes. */
const MAX_COMMAND_BYTES = 64 * 1024;
/** Bytes of messages being assembled at once over every chunk stream of a connection. */
const MAX_ASSEMBLING_BYTES = 32 * 1024 * 1024;
const HANDSHAKE_SIZE = 1536;
const OUT_CHUNK_SIZE = 4096;
const WINDOW_ACK_SIZE = 5_000_000;

/** The RTMP message types pushcast reads or writes (RTMP 1.0 §5.4, §7.1). */
const MSG = {
  setChunkSize: 1,
  abort: 2,
  ack: 3,
  userControl: 4,
  windowAckSize: 5,
  setPeerBandwidth: 6,
  audio: 8,
  video: 9,
  dataAmf3: 15,
  commandAmf3: 17,
  dataAmf0: 18,
  commandAmf0: 20,
} as const;

interface ChunkStream {
  timestamp: number;
  delta: number;
  length: number;
  type: number;
  streamId: number;
  extended: boolean;
  parts: Buffer[];
  received: number;
}

/** Whether two secrets are equal, in a time that does not depend on where they differ. */
function sameSecret(a: string, b: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(a), digest(b));
}

function u24(n: number): number[] {
  return [(n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}
function u32(n: number): number[] {
  return [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

/** The FLV file header (audio and video flagged; ffmpeg creates streams from the tags that come). */
const FLV_HEADER = Buffer.from([0x46, 0x4c, 0x56, 1, 5, 0, 0, 0, 9, 0, 0, 0, 0]);

function flvTag(type: number, timestamp: number, payload: Uint8Array): Buffer {
  const header = Buffer.from([
    type,
    ...u24(payload.length),
    ...u24(timestamp & 0xffffff),
    (timestamp >>> 24) & 0xff,
    0,
    0,
    0,
  ]);
  return Buffer.concat([header, payload, Buffer.from(u32(11 + payload.length))]);
}

class ProtocolError extends Error {}

/** One TCP connection from an encoder. */
class RtmpConnection {
  readonly remote: string;
  private state: 'c0c1' | 'c2' | 'chunks' | 'closed' = 'c0c1';
  private pending: Buffer = Buffer.alloc(0);
  private readonly streams = new Map<number, ChunkStream>();
  private inChunkSize = 128;
  private connected = false;
  private publisher?: { flv: PassThrough; api: RtmpPublisher };
  private received = 0;
  private ackWindow = 0;
  private lastAck = 0;
  private readonly handshakeTimer: NodeJS.Timeout;

  constructor(
    private readonly socket: Socket,
    private readonly server: RtmpIngestServer,
    private readonly o: Required<RtmpIngestOptions>,
  ) {
    this.remote = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.setNoDelay(true);
    this.handshakeTimer = setTimeout(
      () => this.refuse(`no publish within ${o.handshakeTimeoutMs / 1000} s`),
      o.handshakeTimeoutMs,
    );
    socket.on('data', (data: Buffer) => this.onData(data));
    socket.on('error', () => {});
    socket.on('close', () => this.end('the encoder disconnected'));
    socket.on('timeout', () => this.end(`the encoder sent nothing for ${o.idleTimeoutMs / 1000} s`));
  }

  private onData(data: Buffer): void {
    if (this.state === 'closed') return;
    this.received += data.length;
    this.pending = this.pending.length === 0 ? data : Buffer.concat([this.pending, data]);
    try {
      this.consume();
    } catch (err) {
      const why = err instanceof ProtocolError || err instanceof Amf0Error ? err.message : String(err);
      if (this.publisher) this.end(`protocol error: ${why}`);
      else this.refuse(`protocol error: ${why}`);
      return;
    }
    if (this.ackWindow > 0 && this.received - this.lastAck >= this.ackWindow) {
      this.lastAck = this.received;
      this.send(2, MSG.ack, 0, Buffer.from(u32(this.received >>> 0)));
    }
  }

  private consume(): void {
    for (;;) {
      if (this.state === 'closed') return;
      if (this.state === 'c0c1') {
        if (this.pending.length < 1 + HANDSHAKE_SIZE) return;
        if (this.pending[0] !== 3) throw new ProtocolError(`RTMP version ${this.pending[0]} (only 3, plain RTMP)`);
        const c1 = this.pending.subarray(1, 1 + HANDSHAKE_SIZE);
        const s1 = Buffer.concat([Buffer.alloc(8), randomBytes(HANDSHAKE_SIZE - 8)]);
        // S2 echoes C1 (the simple handshake: zero version bytes in S1 tell clients not to check a digest).
        this.socket.write(Buffer.concat([Buffer.from([3]), s1, c1]));
        this.pending = this.pending.subarray(1 + HANDSHAKE_SIZE);
        this.state = 'c2';
      } else if (this.state === 'c2') {
        if (this.pending.length < HANDSHAKE_SIZE) return;
        this.pending = this.pending.subarray(HANDSHAKE_SIZE);
        this.state = 'chunks';
      } else if (!this.readChunk()) return;
    }
  }

  /** Reads one chunk if it is all there (RTMP 1.0 §5.3.1); false when more bytes are needed. */
  private readChunk(): boolean {
    const b = this.pending;
    if (b.length < 1) return false;
    const fmt = b[0]! >> 6;
    let csid = b[0]! & 0x3f;
    let at = 1;
    if (csid === 0) {
      if (b.length < 2) return false;
      csid = b[1]! + 64;
      at = 2;
    } else if (csid === 1) {
      if (b.length < 3) return false;
      csid = b[1]! + b[2]! * 256 + 64;
      at = 3;
    }
    const headerLength = [11, 7, 3, 0][fmt]!;
    if (b.length < at + headerLength) return false;
    let cs = this.streams.get(csid);
    if (!cs) {
      if (this.streams.size >= 64) throw new ProtocolError('more than 64 chunk streams');
      cs = { timestamp: 0, delta: 0, length: 0, type: 0, streamId: 0, extended: false, parts: [], received: 0 };
    }
    const tsField = fmt < 3 ? b.readUIntBE(at, 3) : 0;
    const length = fmt < 2 ? b.readUIntBE(at + 3, 3) : cs.length;
    const type = fmt < 2 ? b[at + 6]! : cs.type;
    const streamId = fmt === 0 ? b.readUInt32LE(at + 7) : cs.streamId;
    at += headerLength;
    const extended = fmt < 3 ? tsField === 0xffffff : cs.extended;
    if (extended && b.length < at + 4) return false;
    const timeField = extended ? b.readUInt32BE(at) : tsField;
    if (extended) at += 4;
    const starting = fmt < 3 || cs.received === 0;
    if (!this.publisher && (type === MSG.audio || type === MSG.video ? false : length > MAX_COMMAND_BYTES))
      throw new ProtocolError(`a message of ${length} bytes before publishing`);
    const have = starting ? 0 : cs.received;
    const size = Math.min(this.inChunkSize, length - have);
    if (b.length < at + size) return false;

    this.streams.set(csid, cs);
    if (starting) {
      if (cs.received > 0) cs.parts = []; // a new header in the middle of a message: the old one is dropped
      cs.received = 0;
      cs.length = length;
      cs.type = type;
      cs.streamId = streamId;
      cs.extended = extended;
      if (fmt === 0) {
        cs.timestamp = timeField;
        cs.delta = timeField;
      } else if (fmt < 3) {
        cs.delta = timeField;
        cs.timestamp = (cs.timestamp + timeField) >>> 0;
      } else cs.timestamp = (cs.timestamp + cs.delta) >>> 0;
      if (this.assembling() + length > MAX_ASSEMBLING_BYTES)
        throw new ProtocolError('too many bytes of unfinished messages');
    }
    cs.parts.push(Buffer.from(b.subarray(at, at + size)));
    cs.received += size;
    this.pending = b.subarray(at + size);
    if (cs.received >= cs.length) {
      const payload = cs.parts.length === 1 ? cs.parts[0]! : Buffer.concat(cs.parts);
      cs.parts = [];
      cs.received = 0;
      this.onMessage(cs.type, cs.streamId, cs.timestamp, payload);
    }
    return true;
  }

  private assembling(): number {
    let n = 0;
    for (const s of this.streams.values()) if (s.received > 0) n += s.length;
    return n;
  }

  private onMessage(type: number, streamId: number, timestamp: number, payload: Buffer): void {
    switch (type) {
      case MSG.setChunkSize: {
        if (payload.length < 4) throw new ProtocolError('short Set Chunk Size');
        const size = payload.readUInt32BE(0) & 0x7fffffff;
        if (size < 1) throw new ProtocolError('chunk size 0');
        this.inChunkSize = Math.min(size, 0xffffff);
        return;
      }
      case MSG.abort:
        if (payload.length >= 4) {
          const s = this.streams.get(payload.readUInt32BE(0));
          if (s) {
            s.parts = [];
            s.received = 0;
          }
        }
        return;
      case MSG.windowAckSize:
        if (payload.length >= 4) this.ackWindow = payload.readUInt32BE(0);
        return;
      case MSG.commandAmf3:
        return this.onCommand(streamId, decodeAmf0(payload.subarray(1)));
      case MSG.commandAmf0:
        return this.onCommand(streamId, decodeAmf0(payload));
      case MSG.dataAmf3:
      case MSG.dataAmf0:
        return this.onData0(timestamp, type === MSG.dataAmf3 ? payload.subarray(1) : payload);
      case MSG.audio:
      case MSG.video:
        if (this.publisher) this.toFlv(flvTag(type, timestamp, payload));
        return;
      default:
        return; // acknowledgements, user control (pings), peer bandwidth: nothing to do
    }
  }

  /** Metadata: `@setDataFrame onMetaData {…}` becomes the FLV script tag `onMetaData {…}`. */
  private onData0(timestamp: number, payload: Buffer): void {
    if (!this.publisher) return;
    let body: Uint8Array = payload;
    const values = decodeAmf0(payload);
    if (values[0] === '@setDataFrame') body = encodeAmf0(...values.slice(1));
    this.toFlv(flvTag(MSG.dataAmf0, timestamp, body));
  }

  private toFlv(tag: Buffer): void {
    const flv = this.publisher!.flv;
    // Backpressure: the encoder process reads slower than the network brings; TCP slows the encoder down.
    if (!flv.write(tag)) {
      this.socket.pause();
      flv.once('drain', () => this.socket.resume());
    }
  }

  private onCommand(streamId: number, args: Amf0Value[]): void {
    const [name, txn] = args;
    const transaction = typeof txn === 'number' ? txn : 0;
    switch (name) {
      case 'connect': {
        const command = (args[2] ?? {}) as Amf0Object;
        const app = String(command.app ?? '').replace(/\/+$/, '');
        if (app !== this.o.app) {
          this.command(3, 0, '_error', transaction, null, {
            level: 'error',
            code: 'NetConnection.Connect.Rejected',
            description: 'unknown application',
          });
          return this.refuse(`wrong application '${app.slice(0, 64)}'`);
        }
        this.connected = true;
        this.send(2, MSG.windowAckSize, 0, Buffer.from(u32(WINDOW_ACK_SIZE)));
        this.send(2, MSG.setPeerBandwidth, 0, Buffer.from([...u32(WINDOW_ACK_SIZE), 2]));
        this.send(2, MSG.setChunkSize, 0, Buffer.from(u32(OUT_CHUNK_SIZE)));
        this.outChunkSize = OUT_CHUNK_SIZE;
        this.command(
          3,
          0,
          '_result',
          transaction,
          { fmsVer: 'FMS/3,0,1,123', capabilities: 31 },
          {
            level: 'status',
            code: 'NetConnection.Connect.Success',
            description: 'Connection succeeded.',
            objectEncoding: 0,
          },
        );
        return;
      }
      case 'createStream':
        this.command(3, 0, '_result', transaction, null, 1);
        return;
      case 'releaseStream':
      case 'FCPublish':
        this.command(3, 0, '_result', transaction, null);
        return;
      case 'publish': {
        const key = String(args[3] ?? '');
        if (!this.connected) return this.refuse('publish before connect');
        if (this.publisher) return;
        if (!sameSecret(key, this.o.key)) {
          this.command(5, streamId, 'onStatus', 0, null, {
            level: 'error',
            code: 'NetStream.Publish.BadName',
            description: 'wrong stream key',
          });
          return this.refuse('wrong key');
        }
        clearTimeout(this.handshakeTimer);
        // User control StreamBegin (RTMP 1.0 §7.1.7), then the status ffmpeg and OBS wait for.
        this.send(2, MSG.userControl, 0, Buffer.from([0, 0, ...u32(streamId)]));
        this.command(5, streamId, 'onStatus', 0, null, {
          level: 'status',
          code: 'NetStream.Publish.Start',
          description: 'publishing',
        });
        const flv = new PassThrough({ highWaterMark: 1024 * 1024 });
        flv.write(FLV_HEADER);
        const api: RtmpPublisher = {
          remote: this.remote,
          flv,
          close: (reason = 'closed by pushcast') => this.end(reason),
        };
        this.publisher = { flv, api };
        this.socket.setTimeout(this.o.idleTimeoutMs);
        this.server.emit('publish', api);
        return;
      }
      case 'FCUnpublish':
      case 'deleteStream':
        if (this.publisher) this.end('the encoder stopped publishing');
        return;
      default:
        return;
    }
  }

  private outChunkSize = 128;

  /** Writes one message as chunks: a type 0 header, then type 3 headers (RTMP 1.0 §5.3.1.2). */
  private send(csid: number, type: number, streamId: number, payload: Uint8Array): void {
    if (this.state === 'closed' || this.socket.destroyed) return;
    const parts: Buffer[] = [];
    const header = Buffer.alloc(12);
    header[0] = csid;
    header.writeUIntBE(0, 1, 3);
    header.writeUIntBE(payload.length, 4, 3);
    header[7] = type;
    header.writeUInt32LE(streamId, 8);
    parts.push(header);
    for (let at = 0; at < payload.length; at += this.outChunkSize) {
      if (at > 0) parts.push(Buffer.from([0xc0 | csid]));
      parts.push(Buffer.from(payload.subarray(at, at + this.outChunkSize)));
    }
    this.socket.write(Buffer.concat(parts));
  }

  private command(csid: number, streamId: number, ...values: Amf0Value[]): void {
    this.send(csid, MSG.commandAmf0, streamId, encodeAmf0(...values));
  }

  /** Refuses a connection that has not published: said once, then the socket goes (after what was written). */
  refuse(reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.handshakeTimer);
    this.server.emit('refused', this.remote, reason);
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  /** Ends the connection; a publication ends with it. */
  end(reason: string): void {
    clearTimeout(this.handshakeTimer);
    if (this.state !== 'closed') this.state = 'closed';
    this.socket.destroy();
    const publisher = this.publisher;
    if (!publisher) return;
    this.publisher = undefined;
    publisher.flv.end();
    this.server.emit('unpublish', publisher.api, reason);
  }
}

/**
 * Listens for encoders; each connection is checked (application, key) before anything it sends is handed
 * on, and only a publishing connection's media reaches `publish` listeners.
 */
export class RtmpIngestServer extends EventEmitter<RtmpIngestEvents> {
  private readonly server: Server;
  private readonly connections = new Set<RtmpConnection>();
  private readonly o: Required<RtmpIngestOptions>;

  constructor(options: RtmpIngestOptions) {
    super();
    this.o = { ...RTMP_DEFAULTS, ...options };
    this.server = createServer((socket) => {
      const connection = new RtmpConnection(socket, this, this.o);
      this.connections.add(connection);
      socket.on('close', () => this.connections.delete(connection));
    });
    this.server.maxConnections = this.o.maxConnections;
    this.server.on('drop', (d) => this.emit('refused', `${d?.remoteAddress}:${d?.remotePort}`, 'too many connections'));
  }

  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.o.port, this.o.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return this.address();
  }

  address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    for (const c of this.connections) c.end('pushcast is stopping');
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
