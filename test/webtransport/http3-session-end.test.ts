/**
 * When a WebTransport session over HTTP/3 ends (draft-ietf-webtrans-http3-02 §5), on the server, with
 * one session allowed per connection so that each session's end is proven by the next CONNECT on the
 * same connection being accepted: the peer's CLOSE_WEBTRANSPORT_SESSION without FIN, STOP_SENDING on
 * the CONNECT stream, RESET_STREAM, a bare FIN, the QUIC connection closing, a route that throws; and
 * CONNECTs still being decided count against the sessions per connection.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { H3_ALPN, Http3Client } from '../../src/http3/index.js';
import { developmentCertificate } from '../../src/origin/index.js';
import { QuicEndpoint, type QuicStream } from '../../src/quic/index.js';
import {
  SessionRouter,
  WebTransportHttp3,
  serveHttp3Sessions,
  type Session,
  type SessionCloseInfo,
} from '../../src/webtransport/index.js';
import { encodeCloseSession, encodeHttp3Frame } from '../../src/wire/index.js';

const dir = mkdtempSync(join(os.tmpdir(), 'pushcast-wt-end-'));
const certificate = developmentCertificate(dir);
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** `promise`, or a failure naming `what` after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A server allowing `maxSessions` per connection; `accepted()` resolves with the next session a route took. */
async function server(t: test.TestContext, maxSessions: number, authorize?: () => Promise<undefined>) {
  const waiting: ((s: Session) => void)[] = [];
  const arrived: Session[] = [];
  const take = (session: Session) => {
    const w = waiting.shift();
    if (w) w(session);
    else arrived.push(session);
  };
  const router = new SessionRouter().route('/echo', { authorize, session: take }).route('/throw', {
    session: (session) => {
      take(session);
      throw new Error('the route failed');
    },
  });
  const endpoint = await QuicEndpoint.listen({
    alpn: [H3_ALPN],
    key: certificate.key,
    cert: certificate.cert,
    host: '127.0.0.1',
    port: 0,
  });
  const connections: WebTransportHttp3[] = [];
  endpoint.on('connection', (conn) => connections.push(serveHttp3Sessions(conn, { router, maxSessions })));
  t.after(() => endpoint.close());
  const connect = async () => {
    const quic = await QuicEndpoint.connect({
      alpn: [H3_ALPN],
      host: '127.0.0.1',
      port: endpoint.address.port,
      serverName: 'localhost',
      ca: certificate.cert,
    });
    t.after(() => quic.close());
    const wt = new WebTransportHttp3(quic, 'client');
    const client = new Http3Client(quic, `localhost:${endpoint.address.port}`, wt.extension);
    await client.h3.peerSettings;
    /** A bare extended CONNECT: its stream, with nothing of a client session behind it to react. */
    const rawConnect = async (path = '/echo'): Promise<{ status: number; stream: QuicStream }> =>
      client.connect(path, 'webtransport', { 'sec-webtransport-http3-draft02': '1' });
    return { quic, wt, client, rawConnect };
  };
  const accepted = () =>
    within(
      new Promise<Session>((resolve) => {
        const s = arrived.shift();
        if (s) resolve(s);
        else waiting.push(resolve);
      }),
      5000,
      'a session reaches the route',
    );
  return { connect, accepted, connections };
}

type By = 'peer' | 'transport';
const ways: [string, (stream: QuicStream) => Promise<void> | void, RegExp | undefined, number, By][] = [
  [
    'CLOSE_WEBTRANSPORT_SESSION without FIN',
    (s) => s.write(encodeHttp3Frame({ kind: 'data', data: encodeCloseSession(7, 'gone') })),
    /^gone$/,
    7,
    'peer',
  ],
  [
    'STOP_SENDING on the CONNECT stream',
    (s) => s.stopSending(0x100),
    /stopped reading the CONNECT stream/,
    0,
    'transport',
  ],
  ['RESET_STREAM of the CONNECT stream', (s) => s.reset(0x10c), /reset/, 0, 'transport'],
  // draft-02 §5: a clean FIN is a close with code 0, the peer's.
  ['FIN on the CONNECT stream', (s) => s.end(), /^$/, 0, 'peer'],
];

test('a session ends the moment its CONNECT stream tells so, FIN or not, and frees its place on the connection', async (t) => {
  const s = await server(t, 1);
  const c = await s.connect();
  for (const [way, abandon, reason, code, by] of ways) {
    const { status, stream } = await c.rawConnect();
    assert.equal(status, 200, `${way}: the CONNECT before it is accepted (the previous session ended)`);
    const session = await s.accepted();
    await abandon(stream);
    const info: SessionCloseInfo = await within(session.closed, 2000, `the session ends after ${way}`);
    assert.match(info.reason, reason!, way);
    assert.equal(info.code, code, way);
    assert.equal(info.by, by, way);
  }
  const last = await c.rawConnect();
  assert.equal(last.status, 200, 'the place of the last one is free too');
  const refused = await c.rawConnect();
  assert.equal(refused.status, 429, 'one session per connection: the bound still holds');
  const stats = s.connections[0]!.stats();
  assert.equal(stats.sessions, 1);
  assert.equal(stats.sessionsAccepted, ways.length + 1);
  assert.equal(stats.sessionsRefused, 1);
});

test('a session ends when its QUIC connection closes; a route that throws ends its session at once', async (t) => {
  const s = await server(t, 1);
  const first = await s.connect();
  await first.rawConnect();
  const session = await s.accepted();
  await first.quic.close(0, 'bye');
  assert.deepEqual(await within(session.closed, 3000, 'the session ends with its connection'), {
    code: 0,
    reason: 'connection closed',
    by: 'transport',
  });

  const c = await s.connect();
  const client = await c.wt.open(c.client, '/throw');
  const thrown = await s.accepted();
  assert.deepEqual(await within(thrown.closed, 2000, 'the server ends the session its route failed to start'), {
    code: 0,
    reason: 'the server failed to start the session',
    by: 'local',
  });
  assert.equal(
    (await within(client.closed, 2000, 'the client hears of it')).reason,
    'the server failed to start the session',
  );
  assert.equal((await c.rawConnect()).status, 200, 'its place on the connection is free');
});

test('CONNECTs still being decided count against the sessions per connection', async (t) => {
  let release!: () => void;
  const decided = new Promise<undefined>((resolve) => (release = () => resolve(undefined)));
  const s = await server(t, 1, () => decided);
  const c = await s.connect();
  const first = c.rawConnect();
  const second = await within(c.rawConnect(), 2000, 'the second CONNECT is answered while the first is decided');
  assert.equal(second.status, 429);
  release();
  assert.equal((await first).status, 200);
});
