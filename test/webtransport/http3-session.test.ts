/**
 * WebTransport over HTTP/3 (draft-02), Node client ↔ Node server on the loopback: sessions routed by
 * path and refused with their status, streams both ways byte-exact, priorities, datagrams, close codes
 * both ways, stream error codes mapped through the HTTP/3 space, and a malformed capsule that ends
 * one session and nothing else.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { developmentCertificate } from '../../src/origin/index.js';
import { H3_ALPN, Http3Client } from '../../src/http3/index.js';
import { QuicEndpoint } from '../../src/quic/index.js';
import {
  type Http3Session,
  SessionRefusedError,
  SessionRouter,
  StreamAbortedError,
  WebTransportHttp3,
  connectWebTransport,
  serveHttp3Sessions,
  type Session,
} from '../../src/webtransport/index.js';
import { encodeCapsule, encodeHttp3Frame } from '../../src/wire/index.js';
import { until, within } from '../support/wait.js';
import { Rng } from '../wire/support.js';

const dir = mkdtempSync(join(os.tmpdir(), 'pushcast-wt-'));
const certificate = developmentCertificate(dir);
test.after(() => rmSync(dir, { recursive: true, force: true }));

async function setup(onSession: (session: Session) => void) {
  const router = new SessionRouter()
    .route('/echo', { session: onSession })
    .route('/private', {
      authorize: (req) =>
        new URL(req.path, 'https://x').searchParams.get('token') === 'right'
          ? undefined
          : { status: 403, reason: 'wrong token' },
      session: onSession,
    })
    .route('/busy', {
      authorize: () => ({ status: 503, reason: 'draining', retryAfterSeconds: 12 }),
      session: onSession,
    });
  const server = await QuicEndpoint.listen({
    alpn: [H3_ALPN],
    key: certificate.key,
    cert: certificate.cert,
    host: '127.0.0.1',
    port: 0,
  });
  server.on('connection', (conn) => serveHttp3Sessions(conn, { router }));
  const url = (path: string) => `https://localhost:${server.address.port}${path}`;
  return { server, url, connect: (path: string) => connectWebTransport(url(path), { ca: certificate.cert }) };
}

test('sessions are routed by path; refusals carry their status, reason and Retry-After', async (t) => {
  const accepted: Session[] = [];
  const s = await setup((session) => accepted.push(session));
  t.after(() => s.server.close());
  await assert.rejects(
    s.connect('/nowhere'),
    (e: unknown) =>
      e instanceof SessionRefusedError && e.status === 404 && /no WebTransport endpoint at \/nowhere/.test(e.reason),
  );
  await assert.rejects(
    s.connect('/private?token=wrong'),
    (e: unknown) =>
      e instanceof SessionRefusedError &&
      e.status === 403 &&
      e.reason === 'wrong token' &&
      e.retryAfterSeconds === undefined,
  );
  await assert.rejects(
    s.connect('/busy'),
    (e: unknown) => e instanceof SessionRefusedError && e.status === 503 && e.retryAfterSeconds === 12,
    'a refusal with Retry-After',
  );
  const session = await s.connect('/private?token=right');
  assert.equal(session.transport, 'webtransport');
  assert.equal(accepted.length, 1);
  assert.equal(accepted[0]!.path, '/private?token=right');
  await session.close();
});

test('streams both ways are byte-exact; the server writes urgent streams first; datagrams both ways', async (t) => {
  const rng = new Rng(9);
  const payloads = Array.from({ length: 6 }, () => rng.bytes(300_000));
  const s = await setup((session) => {
    // Echo every client bidirectional stream; for each client uni stream, answer its length on a datagram.
    session.on('stream', (stream) => {
      void (async () => {
        const bytes = await stream.readAll();
        if (stream.bidirectional) await stream.end(bytes);
        else session.sendDatagram(new TextEncoder().encode(`uni ${bytes.length}`));
      })();
    });
    let sent = false;
    session.on('datagram', (d) => {
      if (new TextDecoder().decode(d) !== 'send' || sent) return;
      sent = true;
      // Six streams opened oldest first, the newest the most urgent (the Warp "newest first" order).
      payloads.forEach((p, i) => void session.openStream({ bidirectional: false, urgency: 6 - i }).end(p));
    });
  });
  t.after(() => s.server.close());
  const session = await s.connect('/echo');
  t.after(() => session.close());

  const echoes = await Promise.all(
    Array.from({ length: 20 }, async (_, i) => {
      const stream = session.openStream();
      const data = rng.bytes(1000 + i * 5000);
      const [, back] = await Promise.all([stream.end(data), stream.readAll()]);
      return { data, back };
    }),
  );
  for (const e of echoes) assert.deepEqual(e.back, e.data);

  const datagram = new Promise<string>((resolve) =>
    session.once('datagram', (d) => resolve(new TextDecoder().decode(d))),
  );
  await session.openStream({ bidirectional: false }).end(new Uint8Array(4321));
  assert.equal(await datagram, 'uni 4321');

  const finished: number[] = [];
  const received = new Promise<void>((resolve) => {
    session.on('stream', (stream) => {
      void stream.readAll().then((bytes) => {
        const index = payloads.findIndex((p) => p.length === bytes.length && Buffer.compare(p, bytes) === 0);
        finished.push(index);
        if (finished.length === payloads.length) resolve();
      });
    });
  });
  // Datagrams are unreliable: ask until the streams come.
  const asking = setInterval(() => session.sendDatagram(new TextEncoder().encode('send')), 200);
  session.sendDatagram(new TextEncoder().encode('send'));
  await within('every stream from the server', received).finally(() => clearInterval(asking));
  assert.ok(!finished.includes(-1), 'every stream arrived byte-exact');
  assert.deepEqual(finished.slice(0, 6), [5, 4, 3, 2, 1, 0], 'the most urgent stream completed first');
  const stats = session.stats();
  assert.equal(stats.transport, 'webtransport');
  assert.ok(stats.streamsAccepted >= 6 && stats.datagramsSent >= 1 && stats.datagramsReceived >= 1);
});

test('close codes and reasons reach the other side, both ways', async (t) => {
  const serverSessions: Session[] = [];
  const s = await setup((session) => serverSessions.push(session));
  t.after(() => s.server.close());
  const a = await s.connect('/echo');
  await a.close(7, 'viewer left');
  const serverA = await until('the server side of session a', () => serverSessions[0]);
  assert.deepEqual(await within('the close at the server', serverA.closed), {
    code: 7,
    reason: 'viewer left',
    by: 'peer',
  });

  const b = await s.connect('/echo');
  const serverB = await until('the server side of session b', () => serverSessions[1]);
  await serverB.close(0x1234, 'broadcast over');
  assert.deepEqual(await b.closed, { code: 0x1234, reason: 'broadcast over', by: 'peer' });
  assert.equal((await serverB.closed).by, 'local');
  await assert.rejects(async () => b.openStream().end(new Uint8Array(1)), /closed/);
});

test('RESET_STREAM and STOP_SENDING carry WebTransport codes through the HTTP/3 error space', async (t) => {
  const stopped = new Promise<StreamAbortedError>((resolve) => {
    void setup((session) => {
      session.on('datagram', () => {
        const reset = session.openStream({ bidirectional: false });
        void reset.write(new Uint8Array(100)).then(() => reset.reset(42));
        const stop = session.openStream({ bidirectional: false });
        void (async () => {
          try {
            for (;;) await stop.write(new Uint8Array(16_000));
          } catch (error) {
            resolve(error as StreamAbortedError);
          }
        })();
      });
    }).then(async (s) => {
      t.after(() => s.server.close());
      const session = await s.connect('/echo');
      t.after(() => session.close());
      let streams = 0;
      session.on('stream', (stream) => {
        if (streams++ === 0) {
          void stream.readAll().catch((error) => resets.push(error));
        } else {
          stream.stopSending(9);
        }
      });
      session.sendDatagram(new Uint8Array([1]));
    });
  });
  const resets: unknown[] = [];
  const error = await within('the STOP_SENDING at the writer', stopped);
  assert.ok(error instanceof StreamAbortedError);
  assert.equal(error.code, 9);
  assert.equal(error.by, 'peer-stop-sending');
  await until('the RESET_STREAM at the reader', () => resets.length > 0);
  assert.equal(resets.length, 1);
  assert.ok(resets[0] instanceof StreamAbortedError);
  assert.equal((resets[0] as StreamAbortedError).code, 42);
  assert.equal((resets[0] as StreamAbortedError).by, 'peer-reset');
});

test('a malformed capsule on the CONNECT stream ends that session only', async (t) => {
  const sessions: Session[] = [];
  const s = await setup((session) => {
    sessions.push(session);
    session.on('stream', (stream) => void stream.readAll().then((bytes) => stream.end(bytes)));
  });
  t.after(() => s.server.close());
  const good = await s.connect('/echo');
  t.after(() => good.close());
  const bad = await s.connect('/echo');
  await until('both sessions at the server', () => sessions.length === 2);
  // A capsule announcing 1 MiB: past the reader's bound (16 KiB).
  const huge = encodeCapsule(0x2843, new Uint8Array(0)).slice(0, 2);
  const frame = encodeHttp3Frame({ kind: 'data', data: new Uint8Array([...huge, 0x80, 0x10, 0x00, 0x00]) });
  await (bad as unknown as { connectStream: { write(b: Uint8Array): Promise<void> } }).connectStream.write(frame);
  const closed = await sessions[1]!.closed;
  assert.match(closed.reason, /capsule .* bytes \(at most 16384\)/);
  // The other session on its own connection, and a new one, still work.
  const echo = good.openStream();
  const [, back] = await Promise.all([echo.end(new Uint8Array([1, 2, 3])), echo.readAll()]);
  assert.deepEqual(back, new Uint8Array([1, 2, 3]));
  assert.equal((sessions[0] as Http3Session).isClosed, false);
});

test('past the sessions per connection, 429; streams for a session that never comes wait within a bound, then are stopped', async (t) => {
  const router = new SessionRouter().route('/echo', { session: () => undefined });
  const server = await QuicEndpoint.listen({
    alpn: [H3_ALPN],
    key: certificate.key,
    cert: certificate.cert,
    host: '127.0.0.1',
    port: 0,
  });
  server.on('connection', (conn) => serveHttp3Sessions(conn, { router, maxSessions: 2 }));
  t.after(() => server.close());
  const quic = await QuicEndpoint.connect({
    alpn: [H3_ALPN],
    host: '127.0.0.1',
    port: server.address.port,
    serverName: 'localhost',
    ca: certificate.cert,
  });
  t.after(() => quic.close());
  const wt = new WebTransportHttp3(quic, 'client');
  const client = new Http3Client(quic, `localhost:${server.address.port}`, wt.extension);
  await wt.open(client, '/echo');
  await wt.open(client, '/echo');
  await assert.rejects(
    wt.open(client, '/echo'),
    (e: unknown) =>
      e instanceof SessionRefusedError &&
      e.status === 429 &&
      /at most 2 WebTransport sessions per connection/.test(e.reason),
  );

  // 40 unidirectional streams naming session 1000, which does not exist: 32 may wait, the rest are stopped at once.
  const streams = Array.from({ length: 40 }, () => quic.openStream({ bidirectional: false }));
  const outcomes = await Promise.all(
    streams.map(async (s) => {
      void s.stopped; // watch for STOP_SENDING between writes
      await s.write(new Uint8Array([0x40, 0x54, 0x43, 0xe8])); // type 0x54, session ID 1000
      try {
        for (let i = 0; i < 100; i++) {
          await s.write(new Uint8Array(1000));
          await new Promise((r) => setTimeout(r, 30));
        }
        return 'open';
      } catch {
        return 'stopped';
      }
    }),
  );
  assert.equal(
    outcomes.filter((o) => o === 'stopped').length,
    40,
    'all stopped: 8 at once, the 32 waiting ones after 2 s',
  );
});
