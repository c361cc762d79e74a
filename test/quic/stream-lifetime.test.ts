/**
 * How long a QUIC stream lives (src/quic): a stream the reader stopped with STOP_SENDING completes and
 * returns its credit to the peer (RFC 9000 §4.6 MAX_STREAMS), so a connection opens far more streams
 * than the initial limit one after another; and a connection forgets a stream once both its directions
 * are over, so its stream map is back where it was after any number of exchanges.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { developmentCertificate } from '../../src/origin/index.js';
import { QuicEndpoint, type QuicConnection, type QuicStream } from '../../src/quic/index.js';
import { until, within } from '../support/wait.js';

const dir = mkdtempSync(join(os.tmpdir(), 'pushcast-quic-lifetime-'));
const certificate = developmentCertificate(dir);
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** The peer's initial stream limit of each type (options.ts default). */
const STREAM_LIMIT = 128;

async function pair() {
  const server = await QuicEndpoint.listen({
    alpn: ['pushcast-test'],
    key: certificate.key,
    cert: certificate.cert,
    host: '127.0.0.1',
    port: 0,
  });
  const accepted = once(server, 'connection') as Promise<[QuicConnection]>;
  const client = await QuicEndpoint.connect({
    alpn: ['pushcast-test'],
    host: '127.0.0.1',
    port: server.address.port,
    serverName: 'localhost',
    ca: certificate.cert,
  });
  const [serverConn] = await accepted;
  return {
    client,
    serverConn,
    close: async () => {
      await client.close();
      await server.close();
    },
  };
}

test('bidirectional streams stopped by the reader free their slot: 400 opened one after another on one connection', async (t) => {
  const p = await pair();
  t.after(p.close);
  // The reader stops the request and ends its own direction: the stream is over on its side (quiche
  // collects a stream once both directions are, and only then returns its credit as MAX_STREAMS).
  p.serverConn.on('stream', (s: QuicStream) => {
    s.stopSending(0x10);
    void s.end();
  });
  const count = 3 * STREAM_LIMIT + 16;
  for (let i = 0; i < count; i++) {
    const stream = p.client.openStream();
    const stopped = stream.stopped;
    await within(`stream ${i} written`, stream.write(new Uint8Array(100)));
    assert.equal(await within(`STOP_SENDING for stream ${i} (id ${stream.id})`, stopped), 0x10);
    assert.equal((await within(`FIN of stream ${i}`, stream.readAll())).length, 0);
  }
  await until('both stream maps empty', () => p.client.streamsOpen === 0 && p.serverConn.streamsOpen === 0, {
    detail: () => `client ${p.client.streamsOpen}, server ${p.serverConn.streamsOpen}`,
  });
});

// quiche 0.18 never collects a peer's unidirectional stream once its read side is shut down, even after
// the peer's RESET_STREAM (cloudflare/quiche#1968): its credit comes back only with a quiche that does.
test('unidirectional streams stopped by the reader free their slot: 400 opened one after another on one connection', {
  todo: 'quiche 0.18 keeps a stopped unidirectional stream (cloudflare/quiche#1968)',
}, async (t) => {
  const p = await pair();
  t.after(p.close);
  const stoppedIds: number[] = [];
  p.serverConn.on('stream', (s: QuicStream) => {
    s.stopSending(0x10);
    stoppedIds.push(s.id);
  });
  const count = 3 * STREAM_LIMIT + 16;
  for (let i = 0; i < count; i++) {
    const stream = p.client.openStream({ bidirectional: false });
    // A write past the peer's stream limit fails with StreamLimit: every one of these must be taken.
    await within(`stream ${i} written`, stream.write(new Uint8Array(100)));
    await until(`the reader stopping stream ${i} (id ${stream.id})`, () => stoppedIds.at(-1) === stream.id);
  }
  await until('both stream maps empty', () => p.client.streamsOpen === 0 && p.serverConn.streamsOpen === 0, {
    detail: () => `client ${p.client.streamsOpen}, server ${p.serverConn.streamsOpen}`,
  });
});

test('request/response exchanges leave no stream behind on either side', async (t) => {
  const p = await pair();
  t.after(p.close);
  p.serverConn.on('stream', (s: QuicStream) => {
    void s.readAll().then((body) => s.end(body));
  });
  const before = { client: p.client.streamsOpen, server: p.serverConn.streamsOpen };
  for (let i = 0; i < 600; i++) {
    const stream = p.client.openStream();
    const reply = stream.readAll();
    await stream.end(new TextEncoder().encode(`request ${i}`));
    assert.equal(new TextDecoder().decode(await within(`response ${i}`, reply)), `request ${i}`);
  }
  await until(
    'both stream maps back where they were',
    () => p.client.streamsOpen === before.client && p.serverConn.streamsOpen === before.server,
    { detail: () => `client ${p.client.streamsOpen}, server ${p.serverConn.streamsOpen}` },
  );
});
