import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { decodeAmf0, encodeAmf0, type Amf0Value } from '../../src/source/amf0.js';
import { RtmpIngestServer, type RtmpIngestOptions, type RtmpPublisher } from '../../src/source/index.js';
import { until, untilEvent, within } from '../support/wait.js';

/**
 * A minimal RTMP publisher, as an encoder speaks it: the handshake, then messages in 128-byte chunks (a type 0
 * header, then type 3 headers), and the server's single-chunk answers read back.
 */
class Publisher {
  private buffer = Buffer.alloc(0);
  readonly messages: { type: number; values: Amf0Value[] }[] = [];
  private handshaken = false;
  private inChunkSize = 128;
  closed = false;

  constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('close', () => {
      this.closed = true;
    });
    socket.on('error', () => {});
  }

  static async open(port: number): Promise<Publisher> {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    const p = new Publisher(socket);
    socket.write(Buffer.concat([Buffer.from([3]), Buffer.alloc(1536, 7)]));
    await until('the server handshake (S0, S1, S2)', () => p.handshaken);
    socket.write(Buffer.alloc(1536, 9)); // C2
    return p;
  }

  private onData(d: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, d]);
    if (!this.handshaken) {
      if (this.buffer.length < 3073) return;
      this.buffer = this.buffer.subarray(3073);
      this.handshaken = true;
    }
    // The server writes every message in one chunk with a 12-byte header (chunk stream IDs below 64).
    while (this.buffer.length >= 12) {
      const length = this.buffer.readUIntBE(4, 3);
      const type = this.buffer[7]!;
      const size = Math.min(length, this.inChunkSize);
      if (this.buffer.length < 12 + size) return;
      const payload = this.buffer.subarray(12, 12 + size);
      this.buffer = this.buffer.subarray(12 + size);
      if (type === 1) this.inChunkSize = payload.readUInt32BE(0);
      this.messages.push({ type, values: type === 20 ? decodeAmf0(payload) : [] });
    }
  }

  send(type: number, streamId: number, payload: Uint8Array, csid = 3, timestamp = 0): void {
    const header = Buffer.alloc(12);
    header[0] = csid;
    header.writeUIntBE(timestamp, 1, 3);
    header.writeUIntBE(payload.length, 4, 3);
    header[7] = type;
    header.writeUInt32LE(streamId, 8);
    const parts = [header];
    for (let at = 0; at < payload.length; at += 128) {
      if (at > 0) parts.push(Buffer.from([0xc0 | csid]));
      parts.push(Buffer.from(payload.subarray(at, at + 128)));
    }
    this.socket.write(Buffer.concat(parts));
  }

  command(streamId: number, ...values: Amf0Value[]): void {
    this.send(20, streamId, encodeAmf0(...values));
  }

  /** connect → createStream → publish, as OBS and ffmpeg do. */
  publish(app: string, key: string): void {
    this.command(0, 'connect', 1, { app, tcUrl: `rtmp://127.0.0.1/${app}`, type: 'nonprivate' });
    this.command(0, 'releaseStream', 2, null, key);
    this.command(0, 'FCPublish', 3, null, key);
    this.command(0, 'createStream', 4, null);
    this.command(1, 'publish', 5, null, key, 'live');
  }

  status(): string | undefined {
    for (const m of this.messages) {
      const info = m.values[3] as { code?: string } | undefined;
      if ((m.values[0] === 'onStatus' || m.values[0] === '_error') && info?.code) return info.code;
    }
    return undefined;
  }
}

async function server(options: Partial<RtmpIngestOptions> = {}) {
  const s = new RtmpIngestServer({ host: '127.0.0.1', port: 0, app: 'live', key: 's3cret', ...options });
  const { port } = await s.listen();
  const refused: string[] = [];
  const published: RtmpPublisher[] = [];
  s.on('refused', (_remote, reason) => refused.push(reason));
  s.on('publish', (p) => published.push(p));
  return { s, port, refused, published };
}

test('RTMP: the right application and key publish; media leaves as FLV tags; deleteStream ends it', async (t) => {
  const { s, port, refused, published } = await server();
  t.after(() => s.close());
  const p = await Publisher.open(port);
  p.publish('live', 's3cret');
  await until('NetStream.Publish.Start', () => p.status() === 'NetStream.Publish.Start');
  assert.equal(published.length, 1);
  const flv: Buffer[] = [];
  published[0]!.flv.on('data', (d: Buffer) => flv.push(d));
  // An AVC sequence header's worth of bytes, longer than a chunk, at 40 ms.
  const video = Buffer.alloc(300, 0x17);
  p.send(9, 1, video, 4, 40);
  const ended = untilEvent('the unpublish', s, 'unpublish');
  const flvEnded = untilEvent('the FLV end', published[0]!.flv, 'end');
  p.command(0, 'deleteStream', 6, null, 1);
  const [, reason] = await ended;
  assert.equal(reason, 'the encoder stopped publishing');
  await flvEnded;
  const bytes = Buffer.concat(flv);
  assert.equal(bytes.subarray(0, 3).toString(), 'FLV');
  const tag = bytes.subarray(13);
  assert.equal(tag[0], 9, 'a video tag');
  assert.equal(tag.readUIntBE(1, 3), 300);
  assert.equal(tag.readUIntBE(4, 3), 40, 'its timestamp');
  assert.deepEqual(tag.subarray(11, 311), video);
  assert.equal(tag.readUInt32BE(311), 311, 'the previous tag size');
  assert.deepEqual(refused, []);
});

test('RTMP: a wrong key is refused with NetStream.Publish.BadName, said once, and nothing is published', async (t) => {
  const { s, port, refused, published } = await server();
  t.after(() => s.close());
  const p = await Publisher.open(port);
  p.publish('live', 's3cre');
  await until('the refusal', () => p.status());
  assert.equal(p.status(), 'NetStream.Publish.BadName');
  await until('the connection closed', () => p.closed);
  assert.deepEqual(refused, ['wrong key']);
  assert.equal(published.length, 0);
});

test('RTMP: a wrong application is refused at connect', async (t) => {
  const { s, port, refused, published } = await server();
  t.after(() => s.close());
  const p = await Publisher.open(port);
  p.publish('other', 's3cret');
  await until('the connection closed', () => p.closed);
  assert.equal(p.status(), 'NetConnection.Connect.Rejected');
  assert.deepEqual(refused, ["wrong application 'other'"]);
  assert.equal(published.length, 0);
});

test('RTMP bounds: no publish within the handshake time, too many connections, a large command, not RTMP', async (t) => {
  const { s, port, refused } = await server({ handshakeTimeoutMs: 300, maxConnections: 2 });
  t.after(() => s.close());
  // Silent after the handshake: closed at the bound.
  const silent = await Publisher.open(port);
  // A third connection while two are open is closed as it arrives.
  const second = connect(port, '127.0.0.1');
  second.on('error', () => {});
  await once(second, 'connect');
  const third = connect(port, '127.0.0.1');
  third.on('error', () => {});
  await within('the third connection closed', once(third, 'close'));
  await until('the silent one closed', () => silent.closed, { timeoutMs: 3000 });
  second.destroy();
  await until('both refusals', () => refused.length >= 2);
  assert.ok(refused.includes('too many connections'), refused.join(', '));
  assert.ok(refused.includes('no publish within 0.3 s'), refused.join(', '));

  // A command beyond 64 KiB before publishing.
  const large = await Publisher.open(port);
  large.command(0, 'connect', 1, { app: 'live', padding: 'x'.repeat(70_000) });
  await until('the large command refused', () => large.closed);
  assert.match(refused.at(-1)!, /a message of \d+ bytes before publishing/);

  // A TLS ClientHello is not RTMP version 3.
  const tls = connect(port, '127.0.0.1');
  tls.on('error', () => {});
  tls.write(Buffer.concat([Buffer.from([0x16, 3, 1]), Buffer.alloc(1600)]));
  await within('the TLS client closed', once(tls, 'close'));
  assert.match(refused.at(-1)!, /RTMP version 22/);
});

test('RTMP bound: a publishing encoder that goes silent is cut off, and its FLV ends', async (t) => {
  const { s, port, published } = await server({ idleTimeoutMs: 300 });
  t.after(() => s.close());
  const p = await Publisher.open(port);
  p.publish('live', 's3cret');
  const [publisher, reason] = await untilEvent<[RtmpPublisher, string]>('the unpublish', s, 'unpublish');
  assert.equal(publisher, published[0]);
  assert.equal(reason, 'the encoder sent nothing for 0.3 s');
  await until('the connection closed', () => p.closed);
});
