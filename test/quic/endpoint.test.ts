/**
 * pushcast's QUIC endpoint (src/quic) client ↔ server over real UDP on the loopback: a verified TLS
 * handshake, 50 concurrent streams echoed byte-identical, datagrams both ways, stream priorities
 * honoured, flow control holding a fast sender to a slow reader's bound, close codes carried, and
 * garbage datagrams dropped without harm.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import dgram from 'node:dgram';
import test from 'node:test';
import { developmentCertificate } from '../../src/origin/index.js';
import { QuicEndpoint, type QuicConnection } from '../../src/quic/index.js';
import { Rng } from '../wire/support.js';

const dir = mkdtempSync(join(os.tmpdir(), 'pushcast-quic-'));
const certificate = developmentCertificate(dir);
test.after(() => rmSync(dir, { recursive: true, force: true }));

async function pair(serverOptions: Partial<Parameters<typeof QuicEndpoint.listen>[0]> = {}, clientOptions: Partial<Parameters<typeof QuicEndpoint.connect>[0]> = {}) {
  const server = await QuicEndpoint.listen({ alpn: ['pushcast-test'], key: certificate.key, cert: certificate.cert, host: '127.0.0.1', port: 0, ...serverOptions });
  const accepted = once(server, 'connection') as Promise<[QuicConnection]>;
  const client = await QuicEndpoint.connect({ alpn: ['pushcast-test'], host: '127.0.0.1', port: server.address.port, serverName: 'localhost', ca: certificate.cert, ...clientOptions });
  const [serverConn] = await accepted;
  return { server, client, serverConn, close: async () => {
    await client.close();
    await server.close();
  } };
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
  const server = await QuicEndpoint.listen({ alpn: ['pushcast-test'], key: certificate.key, cert: certificate.cert, host: '127.0.0.1', port: 0 });
  t.after(() => server.close());
  await assert.rejects(QuicEndpoint.connect({ alpn: ['pushcast-test'], host: '127.0.0.1', port: server.address.port, serverName: 'localhost', timeoutMs: 3000 }), /closed during the handshake|did not finish/);
});

test('datagrams both ways (RFC 9221)', async (t) => {
  const p = await pair();
  t.after(p.close);
  const atServer = once(p.serverConn, 'datagram');
  assert.ok(p.client.sendDatagram(new TextEncoder().encode('ping')));
  const [ping] = (await atServer) as [Uint8Array];
  assert.equal(new TextDecoder().decode(ping), 'ping');
  const atClient = once(p.client, 'datagram');
  p.serverConn.sendDatagram(new TextEncoder().encode('pong'));
  const [pong] = (await atClient) as [Uint8Array];
  assert.equal(new TextDecoder().decode(pong), 'pong');
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
  await Promise.all([5, 4, 3, 2, 1, 0].map((urgency) => p.serverConn.openStream({ bidirectional: false, urgency }).end(body(urgency))));
  await done;
  assert.deepEqual(finished, [0, 1, 2, 3, 4, 5]);
});

test('flow control: a slow reader holds a fast writer to its bound; nothing is lost', async (t) => {
  const p = await pair({}, { maxStreamBuffer: 256 * 1024, initialMaxStreamData: 256 * 1024 });
  t.after(p.close);
  const total = 8 * 1024 * 1024;
  const incoming = once(p.client, 'stream') as Promise<[import('../../src/quic/index.js').QuicStream]>;
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
  await new Promise((r) => setTimeout(r, 300));
  socket.close();
  const after = p.server.stats;
  const arrived = after.datagramsIn - before.datagramsIn;
  const refused = after.dropped - before.dropped + (after.versionNegotiations - before.versionNegotiations);
  // Every arrival is accounted for: refused, or routed to the one genuine connection (the client's own traffic).
  const routed = after.routed - before.routed;
  assert.ok(arrived >= 50, `${arrived} garbage datagrams reached the server`);
  assert.equal(refused + routed, arrived, `of ${arrived} datagrams, ${refused} dropped or answered with Version Negotiation, ${routed} routed`);
  assert.ok(routed <= 10, `the connection took ${routed} datagrams: only its own, no garbage`);
  assert.equal(p.server.stats.connections, 1);
  const stream = p.client.openStream();
  p.serverConn.once('stream', (s) => void s.readAll().then((b) => s.end(b)));
  const reply = stream.readAll();
  await stream.end(new TextEncoder().encode('still here'));
  assert.equal(new TextDecoder().decode(await reply), 'still here');
});
