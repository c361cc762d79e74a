/**
 * pushcast's QUIC endpoint (src/quic) client ↔ server over real UDP on the loopback: a verified TLS
 * handshake, 50 concurrent streams echoed byte-identical, many writes queued in one turn all
 * delivered, a bare FIN under a full congestion window delivered, datagrams both ways up to the largest size, stream priorities honoured, flow control
 * holding a fast sender to a slow reader's bound and a stalled reader's writer pending, STOP_SENDING
 * and RESET_STREAM codes reaching writer and reader, loss recovered through a lossy relay, the idle
 * timeout, close codes carried, and garbage datagrams dropped without harm.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import dgram from 'node:dgram';
import test, { type TestContext } from 'node:test';
import { developmentCertificate } from '../../src/origin/index.js';
import { QuicEndpoint, QuicStreamError, type QuicConnection, type QuicStream } from '../../src/quic/index.js';
import { until, untilEvent, within } from '../support/wait.js';
import { Rng } from '../wire/support.js';

const dir = mkdtempSync(join(os.tmpdir(), 'pushcast-quic-'));
const certificate = developmentCertificate(dir);
test.after(() => rmSync(dir, { recursive: true, force: true }));

async function pair(
  serverOptions: Partial<Parameters<typeof QuicEndpoint.listen>[0]> = {},
  clientOptions: Partial<Parameters<typeof QuicEndpoint.connect>[0]> = {},
) {
  const server = await QuicEndpoint.listen({
    alpn: ['pushcast-test'],
    key: certificate.key,
    cert: certificate.cert,
    host: '127.0.0.1',
    port: 0,
    ...serverOptions,
  });
  const accepted = once(server, 'connection') as Promise<[QuicConnection]>;
  const client = await QuicEndpoint.connect({
    alpn: ['pushcast-test'],
    host: '127.0.0.1',
    port: server.address.port,
    serverName: 'localhost',
    ca: certificate.cert,
    ...clientOptions,
  });
  const [serverConn] = await accepted;
  return {
    server,
    client,
    serverConn,
    close: async () => {
      await client.close();
      await server.close();
    },
  };
}

test('handshake with a verified certificate; 50 concurrent streams echoed byte-identical', async (t) => {
  const p = await pair();
  t.after(p.close);
  assert.equal(p.client.protocol, 'pushcast-test');
  p.serverConn.on('stream', (stream) => {
    void (async () => {
      for await (const chunk of stream) await stream.write(chunk);
      await stream.end();
    })();
  });
  const rng = new Rng(9);
  const bodies = Array.from({ length: 50 }, () => rng.bytes(20_000 + rng.int(200_000)));
  const echoes = await Promise.all(
    bodies.map(async (body) => {
      const stream = p.client.openStream();
      const reply = stream.readAll();
      await stream.end(body);
      return reply;
    }),
  );
  for (const [i, body] of bodies.entries()) assert.deepEqual(echoes[i], body, `stream ${i}`);
  const stats = p.client.stats();
  assert.ok(stats.sent > 0 && stats.recv > 0);
  assert.ok((stats.path?.rtt ?? Infinity) < 1_000_000_000);
});

test('a certificate the client does not trust fails the handshake', async (t) => {
  const server = await QuicEndpoint.listen({
    alpn: ['pushcast-test'],
    key: certificate.key,
    cert: certificate.cert,
    host: '127.0.0.1',
    port: 0,
  });
  t.after(() => server.close());
  await assert.rejects(
    QuicEndpoint.connect({
      alpn: ['pushcast-test'],
      host: '127.0.0.1',
      port: server.address.port,
      serverName: 'localhost',
      timeoutMs: 3000,
    }),
    /closed during the handshake|did not finish/,
  );
});

test('many writes queued in one turn: every one resolves, every byte arrives in order, on 1 and on 40 streams', async (t) => {
  const p = await pair();
  t.after(p.close);
  const received = new Map<number, Promise<Uint8Array>>();
  const allArrived = new Promise<void>((resolve) =>
    p.serverConn.on('stream', (s) => {
      received.set(s.id, s.readAll());
      if (received.size === 41) resolve();
    }),
  );
  const rng = new Rng(11);
  const bodies = new Map<QuicStream, Uint8Array[]>();
  const writes: Promise<void>[] = [];
  // All in one synchronous run: the writes only queue, the connection's pass hands them to quiche.
  for (let i = 0; i < 41; i++) {
    const stream = p.client.openStream({ bidirectional: false });
    const parts = Array.from({ length: i === 0 ? 2000 : 25 }, () => rng.bytes(1 + rng.int(3000)));
    bodies.set(stream, parts);
    for (const part of parts) writes.push(stream.write(part));
    writes.push(stream.end());
  }
  await Promise.all(writes);
  await allArrived;
  for (const [stream, parts] of bodies)
    assert.deepEqual(await received.get(stream.id), new Uint8Array(Buffer.concat(parts)), `stream ${stream.id}`);
});

test('a FIN written alone while the congestion window is full still reaches the reader (cloudflare/quiche#2525)', async (t) => {
  const p = await pair();
  t.after(p.close);
  const lengths = new Map<number, Promise<number>>();
  p.client.on('stream', (s) =>
    lengths.set(
      s.id,
      s.readAll().then((b) => b.length),
    ),
  );
  const bulks: number[] = [];
  for (let i = 0; i < 10; i++) {
    const small = p.serverConn.openStream({ bidirectional: false, urgency: 3 });
    const bulk = p.serverConn.openStream({ bidirectional: false, urgency: 3 });
    bulks.push(bulk.id);
    // The small write goes out first; the bulk one fills the window; the bare FIN comes while the
    // small stream's data is still unacknowledged. quiche alone would drop that FIN.
    const written = small.write(new Uint8Array(100));
    const bulkDone = bulk.end(new Uint8Array(2 * 1024 * 1024));
    await written;
    await small.end();
    await bulkDone;
    await until(`the small stream at the client, round ${i}`, () => lengths.has(small.id), { timeoutMs: 2000 });
    const length = await within(`the FIN of the small stream, round ${i}`, lengths.get(small.id)!, { timeoutMs: 2000 });
    assert.equal(length, 100, `round ${i}`);
  }
  assert.deepEqual(
    await Promise.all(bulks.map((id) => lengths.get(id))),
    bulks.map(() => 2 * 1024 * 1024),
  );
});

test('datagrams both ways (RFC 9221)', async (t) => {
  const p = await pair();
  t.after(p.close);
  const atServer = untilEvent<[Uint8Array]>("the client's datagram at the server", p.serverConn, 'datagram');
  assert.ok(p.client.sendDatagram(new TextEncoder().encode('ping')));
  const [ping] = await atServer;
  assert.equal(new TextDecoder().decode(ping), 'ping');
  const atClient = untilEvent<[Uint8Array]>("the server's datagram at the client", p.client, 'datagram');
  assert.ok(p.serverConn.sendDatagram(new TextEncoder().encode('pong')));
  const [pong] = await atClient;
  assert.equal(new TextDecoder().decode(pong), 'pong');
});

test('datagrams up to maxDatagramSize arrive whole', async (t) => {
  const p = await pair();
  t.after(p.close);
  const max = p.client.maxDatagramSize;
  assert.ok(max > 1000 && max < 1350, `maxDatagramSize ${max}`);
  const atServer = untilEvent<[Uint8Array]>('the largest datagram at the server', p.serverConn, 'datagram');
  assert.ok(p.client.sendDatagram(new Uint8Array(max).fill(5)));
  const [datagram] = await atServer;
  assert.equal(datagram.length, max);
  assert.throws(() => p.client.sendDatagram(new Uint8Array(max + 1)));
});

test('priorities: six server streams written at once arrive most urgent first (RFC 9218)', async (t) => {
  const p = await pair();
  t.after(p.close);
  const finished: number[] = [];
  const done = new Promise<void>((resolve) => {
    p.client.on('stream', (stream) => {
      void stream.readAll().then((body) => {
        finished.push(body[0]!);
        if (finished.length === 6) resolve();
      });
    });
  });
  const body = (urgency: number) => new Uint8Array(400_000).fill(urgency);
  // Opened least urgent first; urgency 0 is the most urgent.
  await Promise.all(
    [5, 4, 3, 2, 1, 0].map((urgency) => p.serverConn.openStream({ bidirectional: false, urgency }).end(body(urgency))),
  );
  await done;
  assert.deepEqual(finished, [0, 1, 2, 3, 4, 5]);
});

test('flow control: a slow reader holds a fast writer to its bound; nothing is lost', async (t) => {
  const p = await pair({}, { maxStreamBuffer: 256 * 1024, initialMaxStreamData: 256 * 1024 });
  t.after(p.close);
  const total = 8 * 1024 * 1024;
  const incoming = once(p.client, 'stream') as Promise<[QuicStream]>;
  const stream = p.serverConn.openStream({ bidirectional: false });
  const writing = stream.end(new Rng(3).bytes(total));
  const [reader] = await incoming;
  let received = 0;
  let maxBuffered = 0;
  for await (const chunk of reader) {
    received += chunk.length;
    maxBuffered = Math.max(maxBuffered, reader.bufferedBytes);
    if (received % (1024 * 1024) < chunk.length) await new Promise((r) => setTimeout(r, 50)); // a slow consumer
  }
  await writing;
  assert.equal(received, total);
  assert.ok(maxBuffered <= 256 * 1024 + 65_536, `read-ahead stayed bounded: ${maxBuffered} bytes`);
});

test('flow control: a reader that reads nothing keeps the writer pending; reading releases it', async (t) => {
  const window = 128 * 1024;
  const p = await pair({}, { maxStreamBuffer: window, initialMaxStreamData: window });
  t.after(p.close);
  const incoming = once(p.client, 'stream') as Promise<[QuicStream]>;
  const stream = p.serverConn.openStream({ bidirectional: false });
  const body = new Rng(5).bytes(4 * window);
  let written = false;
  const writing = stream.end(body).then(() => (written = true));
  const [reader] = await incoming;
  // The writer has sent all the reader's window allows: from here on, only reading frees it.
  await until("the reader's window filled", () => reader.bufferedBytes >= window, {
    detail: () => `${reader.bufferedBytes} bytes read ahead`,
  });
  assert.equal(written, false, 'the write waits for the reader');
  assert.ok(reader.bufferedBytes <= window, `read ahead ${reader.bufferedBytes} bytes`);
  assert.deepEqual(await reader.readAll(), body);
  await writing;
});

test('STOP_SENDING: the writer learns the code from `stopped`, from its pending write and from any later write', async (t) => {
  const p = await pair({}, { initialMaxStreamData: 64 * 1024, maxStreamBuffer: 64 * 1024 });
  t.after(p.close);
  const incoming = once(p.client, 'stream') as Promise<[QuicStream]>;
  const stream = p.serverConn.openStream();
  const stopped = stream.stopped;
  await stream.write(new Uint8Array(10));
  const [reader] = await incoming;
  // More than the reader's window: this write stays pending until the STOP_SENDING comes.
  const pending = stream.write(new Uint8Array(1024 * 1024));
  await until("the reader's window filled", () => reader.bufferedBytes >= 64 * 1024, {
    detail: () => `${reader.bufferedBytes} bytes read ahead`,
  });
  reader.stopSending(0x77);
  assert.equal(await stopped, 0x77);
  const error = await pending.then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(error instanceof QuicStreamError, String(error));
  assert.deepEqual(
    { streamId: error.streamId, code: error.code, kind: error.kind },
    { streamId: stream.id, code: 0x77, kind: 'stopped' },
  );
  await assert.rejects(
    stream.write(new Uint8Array(1)),
    (e: unknown) => e instanceof QuicStreamError && e.code === 0x77,
  );
  // An idle stream whose writer only watches `stopped`.
  const idle = p.serverConn.openStream();
  await idle.write(new Uint8Array(1));
  const [idleReader] = (await once(p.client, 'stream')) as [QuicStream];
  const idleStopped = idle.stopped;
  idleReader.stopSending(5);
  assert.equal(await idleStopped, 5);
});

test('STOP_SENDING on a stream whose bytes were all acknowledged: the next write fails, it does not wait forever', async (t) => {
  // quiche may forget such a stream in the batch of packets that brings the STOP_SENDING, before a pass
  // looks for it; a write must still learn that the peer stopped the stream.
  const p = await pair();
  t.after(p.close);
  const stops: Promise<unknown>[] = [];
  p.serverConn.on('stream', (s) => {
    stops.push(
      (async () => {
        for await (const chunk of s) {
          void chunk;
          break;
        }
        s.stopSending(0x33);
      })(),
    );
  });
  for (let i = 0; i < 10; i++) {
    const stream = p.client.openStream({ bidirectional: false });
    let error: unknown;
    for (let writes = 0; error === undefined; writes++) {
      assert.ok(writes < 400, `stream ${stream.id}: 400 writes, none refused`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      error = await Promise.race([
        stream.write(Uint8Array.of(writes)).then(() => undefined),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`stream ${stream.id}: a write waited 5 s`)), 5000);
        }),
      ])
        .catch((e: unknown) => e)
        .finally(() => clearTimeout(timer));
      if (error === undefined) await new Promise((r) => setTimeout(r, 5));
    }
    assert.ok(error instanceof QuicStreamError && error.kind === 'stopped', String(error));
  }
  await Promise.all(stops);
});

test('RESET_STREAM: the reader sees the bytes before it, then an error with the code', async (t) => {
  const p = await pair();
  t.after(p.close);
  const incoming = once(p.serverConn, 'stream') as Promise<[QuicStream]>;
  const stream = p.client.openStream({ bidirectional: false });
  await stream.write(new TextEncoder().encode('partial'));
  const [reader] = await incoming;
  const chunks: string[] = [];
  const reading = (async () => {
    for await (const chunk of reader) chunks.push(new TextDecoder().decode(chunk));
  })();
  await until('the bytes before the reset at the reader', () => chunks.join('') === 'partial');
  stream.reset(0x1234);
  await assert.rejects(
    reading,
    (e: unknown) => e instanceof QuicStreamError && e.kind === 'reset' && e.code === 0x1234 && e.streamId === stream.id,
  );
  assert.equal(chunks.join(''), 'partial');
  await assert.rejects(stream.write(new Uint8Array(1)), /reset/);
});

/**
 * A server and a client connected through a UDP relay on loopback: `toServer` and `toClient` say, for each
 * datagram, whether it is passed on (else dropped). Everything is closed after the test.
 */
async function relayedPair(
  t: TestContext,
  toServer: (datagram: Buffer) => boolean,
  toClient: (datagram: Buffer) => boolean,
): Promise<{ conn: QuicConnection; serverConn: QuicConnection }> {
  const server = await QuicEndpoint.listen({
    alpn: ['pushcast-test'],
    key: certificate.key,
    cert: certificate.cert,
    host: '127.0.0.1',
    port: 0,
  });
  // client ↔ front (relay) back ↔ server
  const front = dgram.createSocket('udp4');
  const back = dgram.createSocket('udp4');
  await Promise.all([
    new Promise<void>((r) => front.bind(0, '127.0.0.1', r)),
    new Promise<void>((r) => back.bind(0, '127.0.0.1', r)),
  ]);
  let client: { port: number; address: string } | undefined;
  front.on('message', (m, rinfo) => {
    client = rinfo;
    if (toServer(m)) back.send(m, server.address.port, '127.0.0.1');
  });
  back.on('message', (m) => {
    if (client && toClient(m)) front.send(m, client.port, client.address);
  });
  t.after(async () => {
    front.close();
    back.close();
    await server.close();
  });
  const accepted = once(server, 'connection') as Promise<[QuicConnection]>;
  const conn = await QuicEndpoint.connect({
    alpn: ['pushcast-test'],
    host: '127.0.0.1',
    port: front.address().port,
    serverName: 'localhost',
    ca: certificate.cert,
  });
  t.after(() => conn.close());
  const [serverConn] = await accepted;
  return { conn, serverConn };
}

test('loss: through a relay that drops every 7th datagram each way, 2 MB arrive intact (loss detection and retransmission timers)', async (t) => {
  let n = 0;
  const { conn, serverConn } = await relayedPair(
    t,
    () => ++n % 7 !== 0,
    () => ++n % 7 !== 0,
  );
  const body = new Rng(8).bytes(2 * 1024 * 1024);
  const incoming = once(conn, 'stream') as Promise<[QuicStream]>;
  void serverConn.openStream({ bidirectional: false }).end(body);
  const [reader] = await incoming;
  assert.deepEqual(await reader.readAll(), body);
  assert.ok(serverConn.stats().lost > 0, 'the relay did drop packets');
});

test('a FIN written in the turn after the last write survives the loss of its packet (cloudflare/quiche#2525)', async (t) => {
  // quiche 0.18 never sends again a FIN that went alone in a packet once the data before it is
  // acknowledged. A warmed-up connection sends a small body in one pass, and the writer ends the stream
  // in its next turn: the stream holds the body's last byte back for that turn, so the FIN goes with it
  // and is sent again if lost. A relay drops the first small packets from the server after the body.
  const body = new Rng(11).bytes(20_000);
  let armed = false;
  let forwarded = 0;
  let dropped = 0;
  const { conn, serverConn } = await relayedPair(
    t,
    () => true,
    (m) => {
      if (armed && forwarded >= body.length && m.length < 100 && dropped < 3) {
        dropped++;
        return false;
      }
      if (armed) forwarded += m.length;
      return true;
    },
  );
  const streams: QuicStream[] = [];
  let wake: (() => void) | undefined;
  conn.on('stream', (s) => {
    streams.push(s);
    wake?.();
  });
  const next = async () => {
    if (!streams.length) await within('a stream from the server', new Promise<void>((r) => (wake = r)));
    return streams.shift()!;
  };
  // Warm-up: 4 MB, so that the congestion window takes the body in one pass.
  void serverConn.openStream({ bidirectional: false }).end(new Uint8Array(4 * 1024 * 1024));
  await (await next()).readAll();
  // Streams one after another until the relay has dropped the packet with a FIN: when the body did not
  // leave in one pass, the FIN goes with its last packet, which is not small.
  for (let attempt = 0; dropped === 0; attempt++) {
    assert.ok(attempt < 20, 'in 20 streams, no small packet came from the server after the body');
    forwarded = 0;
    armed = true;
    const out = serverConn.openStream({ bidirectional: false });
    await out.write(body);
    await out.end();
    const reader = await next();
    const received = await within(`the end of stream ${reader.id} (its FIN)`, reader.readAll());
    armed = false;
    assert.deepEqual(received, body);
  }
});

test('idle timeout (RFC 9000 §10.1): a silent connection closes on both ends', async (t) => {
  const p = await pair({ maxIdleTimeoutMs: 300 }, { maxIdleTimeoutMs: 300 });
  t.after(p.close);
  const started = performance.now();
  await Promise.all([once(p.client, 'close'), once(p.serverConn, 'close')]);
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 250 && elapsed < 2000, `closed after ${elapsed.toFixed(0)} ms`);
});

test('close with an application error code: the peer sees the code and the reason', async (t) => {
  const p = await pair();
  t.after(p.close);
  const closed = once(p.serverConn, 'close');
  await p.client.close(0x42, 'bye');
  const [why] = (await closed) as [{ local: boolean; application: boolean; code: number; reason: string }];
  assert.deepEqual(why, { local: false, application: true, code: 0x42, reason: 'bye' });
});

test('garbage datagrams and short Initials are dropped; the server still serves', async (t) => {
  const p = await pair();
  t.after(p.close);
  const before = p.server.stats;
  const socket = dgram.createSocket('udp4');
  const rng = new Rng(4);
  for (let i = 0; i < 200; i++) socket.send(rng.bytes(1 + rng.int(1400)), p.server.address.port, '127.0.0.1');
  // A long-header Initial that is too short to be a client's first flight (RFC 9000 §14.1).
  socket.send(Buffer.from('c000000001081122334455667788000000', 'hex'), p.server.address.port, '127.0.0.1');
  await until('garbage datagrams at the server', () => p.server.stats.datagramsIn - before.datagramsIn >= 50);
  socket.close();
  const after = p.server.stats;
  const arrived = after.datagramsIn - before.datagramsIn;
  const refused = after.dropped - before.dropped + (after.versionNegotiations - before.versionNegotiations);
  // Every arrival is accounted for: refused, or routed to the one genuine connection (the client's own traffic).
  const routed = after.routed - before.routed;
  assert.ok(arrived >= 50, `${arrived} garbage datagrams reached the server`);
  assert.equal(
    refused + routed,
    arrived,
    `of ${arrived} datagrams, ${refused} dropped or answered with Version Negotiation, ${routed} routed`,
  );
  assert.ok(routed <= 10, `the connection took ${routed} datagrams: only its own, no garbage`);
  assert.equal(p.server.stats.connections, 1);
  const stream = p.client.openStream();
  p.serverConn.once('stream', (s) => void s.readAll().then((b) => s.end(b)));
  const reply = stream.readAll();
  await stream.end(new TextEncoder().encode('still here'));
  assert.equal(new TextDecoder().decode(await reply), 'still here');
});
