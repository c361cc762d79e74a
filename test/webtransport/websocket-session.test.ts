/**
 * The WebSocket fallback of WebTransport (src/webtransport/websocket-*.ts), a Node server
 * (http + WebSocketSessionServer + SessionRouter) against the Node client and against raw `ws`
 * sockets speaking the wire format by hand: concurrent streams both ways byte-exact, urgency and
 * round-robin in the send scheduler (asserted on the order of frames on the wire, not on timing),
 * STOP_SENDING / RESET_STREAM, close codes both ways, refusals, every bound, protocol errors (1002).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import test, { type TestContext } from 'node:test';
import { Registry } from 'prom-client';
import { registerWebSocketSessionMetrics } from '../../src/metrics/index.js';
import { WebSocket } from 'ws';
import { SessionRouter, StreamAbortedError, type Session, type SessionStream } from '../../src/webtransport/session.js';
import { connectWebSocketSession } from '../../src/webtransport/websocket-client.js';
import { SessionRefusedError } from '../../src/webtransport/session.js';
import { WebSocketSessionServer, type WebSocketSessionServerOptions } from '../../src/webtransport/websocket-server.js';
import { SendQueueFullError } from '../../src/webtransport/urgency-scheduler.js';
import {
  StreamReceiveOverflowError,
  WS_CODE_RECEIVE_BUFFER_FULL,
  WS_CODE_STREAM_LIMIT,
  type WebSocketSession,
} from '../../src/webtransport/websocket-session.js';
import { decodeWsFrame, encodeWsFrame, type WsFrame } from '../../src/wire/index.js';
import { Rng } from '../wire/support.js';
import { until, untilEvent } from '../support/wait.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Sessions as a route receives them, one promise per arrival. */
class Arrivals {
  private readonly waiting: ((s: Session) => void)[] = [];
  private readonly arrived: Session[] = [];
  readonly all: Session[] = [];

  push(session: Session): void {
    this.all.push(session);
    const w = this.waiting.shift();
    if (w) w(session);
    else this.arrived.push(session);
  }

  next(): Promise<Session> {
    const s = this.arrived.shift();
    return s ? Promise.resolve(s) : new Promise((resolve) => this.waiting.push(resolve));
  }
}

async function setup(
  t: TestContext,
  configure: (router: SessionRouter) => void,
  options: WebSocketSessionServerOptions = {},
) {
  const router = new SessionRouter();
  configure(router);
  const server = new WebSocketSessionServer(router, options);
  const http = createServer((_req, res) => res.writeHead(404).end());
  http.on('upgrade', (req, socket, head) => {
    if (!server.handleUpgrade(req, socket, head))
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const port = (http.address() as AddressInfo).port;
  const clients: Session[] = [];
  t.after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await server.close();
    http.closeAllConnections();
    await new Promise((resolve) => http.close(resolve));
  });
  const url = (path: string) => `http://127.0.0.1:${port}${path}`;
  return {
    server,
    url,
    connect: async (path: string, o: Parameters<typeof connectWebSocketSession>[1] = {}) => {
      const session = await connectWebSocketSession(url(path), o);
      clients.push(session);
      return session;
    },
    /** A raw `ws` socket offering `webtransport`, for frames written by hand. */
    raw: async (path: string, o: { autoPong?: boolean } = {}) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, ['webtransport'], {
        perMessageDeflate: false,
        autoPong: o.autoPong ?? true,
      });
      ws.on('error', () => undefined);
      await new Promise(
        (resolve, reject) => (
          ws.once('open', resolve), ws.once('unexpected-response', () => reject(new Error('refused')))
        ),
      );
      const closed = new Promise<{ code: number; reason: string }>((resolve) =>
        ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
      );
      t.after(() => ws.terminate());
      return {
        ws,
        closed,
        send: (frame: WsFrame | Uint8Array) => ws.send(frame instanceof Uint8Array ? frame : encodeWsFrame(frame)),
      };
    },
  };
}

/** Every frame that reaches `session`'s socket, in wire order (a second listener beside the session's). */
function recordFrames(session: WebSocketSession): WsFrame[] {
  const frames: WsFrame[] = [];
  session.socket.on('message', (data: Buffer) => frames.push(decodeWsFrame(new Uint8Array(data))));
  return frames;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail('expected a rejection');
}

/** Writes `chunk` until a write rejects (the peer stopped the stream), at most `max` times; the error. */
async function writeUntilRejected(stream: SessionStream, chunk: Uint8Array, max = 2000): Promise<unknown> {
  for (let i = 0; i < max; i++) {
    try {
      await stream.write(chunk);
    } catch (error) {
      return error;
    }
    await sleep(2);
  }
  assert.fail(`no write of ${max} was rejected`);
}

function serverUniData(k: number): Uint8Array {
  const rng = new Rng(1000 + k);
  return rng.bytes(1 + rng.int(300_000));
}

test('many concurrent streams both ways, byte-exact: server uni streams, client bidi echoes, client uni uploads', async (t) => {
  const uploads = new Map<number, string>();
  const s = await setup(t, (router) =>
    router.route('/echo', {
      session(session) {
        for (let k = 0; k < 12; k++) {
          const stream = session.openStream({ bidirectional: false, urgency: k % 8 });
          const data = serverUniData(k);
          void (async () => {
            await stream.write(Uint8Array.of(k));
            for (let at = 0; at < data.length; at += 50_000) await stream.write(data.subarray(at, at + 50_000));
            await stream.end();
          })();
        }
        session.on('stream', (stream) => {
          void (async () => {
            if (stream.bidirectional) {
              for await (const chunk of stream) await stream.write(chunk);
              await stream.end();
            } else uploads.set(stream.id, sha(await stream.readAll()));
          })();
        });
      },
    }),
  );
  const client = await s.connect('/echo');
  assert.equal(client.transport, 'websocket');
  assert.equal(client.path, '/echo');

  const incoming: Promise<void>[] = [];
  const seen = new Set<number>();
  client.on('stream', (stream) => {
    assert.equal(stream.bidirectional, false);
    assert.equal(stream.local, false);
    assert.equal(stream.id % 4, 3, 'a server-initiated unidirectional ID');
    incoming.push(
      stream.readAll().then((all) => {
        const k = all[0]!;
        seen.add(k);
        assert.equal(sha(all.subarray(1)), sha(serverUniData(k)), `server stream ${k}`);
      }),
    );
  });

  const rng = new Rng(7);
  const echoes = Array.from({ length: 30 }, async (_, i) => {
    const stream = client.openStream({ urgency: i % 8 });
    assert.equal(stream.id, i * 4, 'client bidi IDs 0, 4, 8, …');
    const data = rng.bytes(rng.int(400_000));
    const reading = stream.readAll();
    for (let at = 0; at < data.length; at += 100_000) await stream.write(data.subarray(at, at + 100_000));
    await stream.end();
    assert.equal(sha(await reading), sha(data), `echo on stream ${stream.id}`);
  });
  const sent = new Map<number, string>();
  const ups = Array.from({ length: 10 }, async () => {
    const stream = client.openStream({ bidirectional: false });
    const data = rng.bytes(rng.int(200_000));
    sent.set(stream.id, sha(data));
    await stream.end(data);
  });
  await Promise.all([...echoes, ...ups]);
  await until('12 echoes and 10 uploads', () => seen.size >= 12 && uploads.size >= 10);
  await Promise.all(incoming);
  assert.deepEqual(new Map([...uploads].sort()), new Map([...sent].sort()));
  const stats = client.stats();
  assert.equal(stats.streamsOpened, 40);
  assert.equal(stats.streamsAccepted, 12);
  assert.equal(client.sendDatagram(new Uint8Array(1)), false);
  assert.equal(client.maxDatagramSize, 0);
});

test('priorities: a higher-urgency stream overtakes queued lower-urgency data; equal urgencies alternate frame by frame', async (t) => {
  const arrivals = new Arrivals();
  const s = await setup(t, (router) => router.route('/prio', { session: (session) => arrivals.push(session) }), {
    maxQueuedBytes: 64 * 1024 * 1024,
  });
  const client = (await s.connect('/prio', {
    maxStreamReceiveBytes: 64 * 1024 * 1024,
    maxSessionReceiveBytes: 64 * 1024 * 1024,
  })) as WebSocketSession;
  const server = (await arrivals.next()) as WebSocketSession;
  const frames = recordFrames(client);
  const drained: Promise<unknown>[] = [];
  client.on('stream', (stream) => drained.push(stream.readAll(64 * 1024 * 1024)));

  // 1. Round-robin: two streams of urgency 3 written in the same tick alternate, one 64 KiB frame each.
  const a = server.openStream({ bidirectional: false });
  const b = server.openStream({ bidirectional: false });
  await Promise.all([a.end(new Uint8Array(256 * 1024).fill(1)), b.end(new Uint8Array(256 * 1024).fill(2))]);
  await until('both streams finished', () => frames.filter((f) => f.type === 'stream' && f.fin).length >= 2);
  const order = frames.map((f) => (f.type === 'stream' ? f.id : -1));
  assert.deepEqual(order, [a.id, b.id, a.id, b.id, a.id, b.id, a.id, b.id]);
  assert.ok(frames.every((f) => f.type === 'stream' && f.data.length === 64 * 1024));
  frames.length = 0;

  // 2. The client stops reading; low-urgency data fills the socket and then the scheduler's queue.
  client.socket.pause();
  const low = server.openStream({ bidirectional: false, urgency: 7 });
  const lowTotal = 48 * 1024 * 1024;
  const chunk = new Uint8Array(1024 * 1024).fill(7);
  const lowWrites: Promise<void>[] = [];
  for (let at = 0; at < lowTotal; at += chunk.length)
    lowWrites.push(at + chunk.length < lowTotal ? low.write(chunk) : low.end(chunk));
  // Wait until the socket is full: bufferedAmount at the mark, low bytes still queued, nothing moving.
  let last = -1;
  await until(
    'the socket full',
    () => {
      const full = server.queuedBytes > 0 && server.queuedBytes === last && server.socket.bufferedAmount >= 256 * 1024;
      last = server.queuedBytes;
      return full;
    },
    { intervalMs: 20 },
  );
  const queuedLow = server.queuedBytes;
  assert.ok(queuedLow > 0 && queuedLow < lowTotal, `low data queued: ${queuedLow} of ${lowTotal}`);
  assert.ok(server.stats().bufferedBytes! >= queuedLow);
  const high = server.openStream({ bidirectional: false, urgency: 0 });
  const highData = new Uint8Array(300 * 1024).fill(9);
  const highDone = high.end(highData);
  client.socket.resume();

  await highDone;
  await Promise.all(lowWrites);
  await Promise.all(drained);
  // On the wire: the low bytes that had reached the socket before the high write, then all of the
  // high stream (5 frames), then the rest of the low stream.
  let lowBefore = 0;
  let i = 0;
  for (; i < frames.length; i++) {
    const f = frames[i]!;
    assert.equal(f.type, 'stream');
    if (f.type !== 'stream' || f.id === high.id) break;
    lowBefore += f.data.length;
  }
  assert.equal(
    lowBefore,
    lowTotal - queuedLow,
    'exactly the low bytes handed to the socket before the high write precede it',
  );
  const highFrames = frames.slice(i, i + 5);
  assert.ok(highFrames.every((f) => f.type === 'stream' && f.id === high.id));
  assert.equal(
    highFrames.reduce((n, f) => n + (f.type === 'stream' ? f.data.length : 0), 0),
    highData.length,
  );
  assert.equal(highFrames.at(-1)!.type === 'stream' && (highFrames.at(-1) as { fin: boolean }).fin, true);
  const rest = frames.slice(i + 5);
  assert.ok(
    rest.length > 0 && rest.every((f) => f.type === 'stream' && f.id === low.id),
    'the rest of the low stream after',
  );
  assert.equal(
    rest.reduce((n, f) => n + (f.type === 'stream' ? f.data.length : 0), 0),
    queuedLow,
  );
  t.diagnostic(
    `${lowBefore} low bytes reached the socket before the high write, ${queuedLow} waited and were overtaken`,
  );
});

test('STOP_SENDING: the writer rejects with peer-stop-sending and its code; RESET_STREAM: the reader throws peer-reset', async (t) => {
  const arrivals = new Arrivals();
  const s = await setup(t, (router) => router.route('/abort', { session: (session) => arrivals.push(session) }));
  const client = await s.connect('/abort');
  const server = await arrivals.next();
  const next = () => new Promise<SessionStream>((resolve) => client.once('stream', resolve));

  // The client stops a server stream after its first chunk.
  const stopped = server.openStream({ bidirectional: false });
  const arriving = next();
  const writing = writeUntilRejected(stopped, new Uint8Array(10_000));
  const inClient = await arriving;
  const iterator = inClient[Symbol.asyncIterator]();
  assert.equal((await iterator.next()).value.length, 10_000);
  inClient.stopSending(77);
  const error = await writing;
  assert.ok(error instanceof StreamAbortedError, String(error));
  assert.equal(error.by, 'peer-stop-sending');
  assert.equal(error.code, 77);
  assert.equal(error.streamId, stopped.id);
  await assert.rejects(stopped.write(new Uint8Array(1)), StreamAbortedError, 'later writes reject too');
  await assert.rejects(
    iterator.next(),
    (e: unknown) => e instanceof StreamAbortedError && e.by === 'local-stop-sending' && e.code === 77,
  );

  // The server resets a stream: the client's reader throws with the code.
  const reset = server.openStream({ bidirectional: false });
  const arriving2 = next();
  await reset.write(new Uint8Array(5));
  const inClient2 = await arriving2;
  reset.reset(88);
  await assert.rejects(
    inClient2.readAll(),
    (e: unknown) => e instanceof StreamAbortedError && e.by === 'peer-reset' && e.code === 88,
  );
  await assert.rejects(
    reset.write(new Uint8Array(1)),
    (e: unknown) => e instanceof StreamAbortedError && e.by === 'local-reset',
  );

  // Bidirectional: each half on its own. The client resets its sending half; the server still answers.
  const serverStreams = new Promise<SessionStream>((resolve) => server.once('stream', resolve));
  const bidi = client.openStream();
  await bidi.write(new Uint8Array([1, 2, 3]));
  const other = await serverStreams;
  bidi.reset(5);
  await assert.rejects(
    other.readAll(),
    (e: unknown) => e instanceof StreamAbortedError && e.by === 'peer-reset' && e.code === 5,
  );
  await other.end(new Uint8Array([4, 5]));
  assert.deepEqual(await bidi.readAll(), new Uint8Array([4, 5]));

  // The session is unharmed.
  const after = client.openStream();
  const serverSide = new Promise<SessionStream>((resolve) => server.once('stream', resolve));
  await after.end(new Uint8Array([42]));
  assert.deepEqual(await (await serverSide).readAll(), new Uint8Array([42]));
});

test('close codes both ways: APPLICATION_CLOSE carries code and reason; a bare WebSocket close reports its own code', async (t) => {
  const arrivals = new Arrivals();
  const s = await setup(t, (router) => router.route('/close', { session: (session) => arrivals.push(session) }));

  // Server closes.
  const c1 = await s.connect('/close');
  const s1 = await arrivals.next();
  const pending = new Promise<SessionStream>((resolve) => c1.once('stream', resolve));
  const open = s1.openStream({ bidirectional: false });
  await open.write(new Uint8Array(3));
  const reading = assert.rejects(
    (await pending).readAll(),
    (e: unknown) => e instanceof StreamAbortedError && e.by === 'session-closed' && e.code === 4001,
  );
  const closeEvent = new Promise((resolve) => c1.once('close', resolve));
  await s1.close(4001, 'bye from the server');
  assert.deepEqual(await c1.closed, { code: 4001, reason: 'bye from the server', by: 'peer' });
  assert.deepEqual(await closeEvent, { code: 4001, reason: 'bye from the server', by: 'peer' });
  assert.deepEqual(await s1.closed, { code: 4001, reason: 'bye from the server', by: 'local' });
  await reading;
  assert.throws(() => s1.openStream(), /closed/);
  await assert.rejects(
    open.write(new Uint8Array(1)),
    (e: unknown) => e instanceof StreamAbortedError && e.by === 'session-closed',
  );

  // Client closes, with a code beyond 32 bits (the varint allows it).
  const c2 = await s.connect('/close');
  const s2 = await arrivals.next();
  await c2.close(2 ** 40, 'bye from the client');
  assert.deepEqual(await s2.closed, { code: 2 ** 40, reason: 'bye from the client', by: 'peer' });

  // A WebSocket closed without APPLICATION_CLOSE: its code (1000 as 0), not the peer's word.
  const r3 = await s.raw('/close');
  const s3 = await arrivals.next();
  r3.ws.close(4100, 'plain websocket close');
  assert.deepEqual(await s3.closed, { code: 4100, reason: 'plain websocket close', by: 'transport' });
  const r4 = await s.raw('/close');
  const s4 = await arrivals.next();
  r4.ws.close(1000);
  assert.deepEqual(await s4.closed, { code: 0, reason: '', by: 'transport' });

  // What a polyfill page sees: the WebSocket close code repeats the application code in 3000–4999.
  const r5 = await s.raw('/close');
  const s5 = await arrivals.next();
  const frames: WsFrame[] = [];
  r5.ws.on('message', (d: Buffer) => frames.push(decodeWsFrame(new Uint8Array(d))));
  await s5.close(3999, 'the end');
  assert.deepEqual(await r5.closed, { code: 3999, reason: 'the end' });
  assert.deepEqual(frames, [{ type: 'application-close', code: 3999, reason: 'the end' }]);
  const r6 = await s.raw('/close');
  const s6 = await arrivals.next();
  await s6.close(7, 'small code');
  assert.equal((await r6.closed).code, 1000);
});

test('refusals before the upgrade reach the client with their status and reason', async (t) => {
  const registry = new Registry();
  const s = await setup(t, (router) =>
    router
      .route('/warp', {
        authorize: (request) =>
          new URLSearchParams(request.path.split('?')[1]).get('token') === 'good'
            ? undefined
            : { status: 403, reason: 'a token is required' },
        session: () => undefined,
      })
      .route('/busy', {
        authorize: () => ({ status: 503, reason: 'draining', retryAfterSeconds: 12 }),
        session: () => undefined,
      })
      .route('/boom', {
        authorize: () => {
          throw new Error('database down');
        },
        session: () => undefined,
      }),
  );
  registerWebSocketSessionMetrics(registry, () => s.server.stats());
  const refused = async (path: string) => {
    const error = await rejection(connectWebSocketSession(s.url(path)));
    assert.ok(error instanceof SessionRefusedError, String(error));
    return { status: error.status, reason: error.reason, retryAfterSeconds: error.retryAfterSeconds };
  };
  const noRetry = { retryAfterSeconds: undefined };
  assert.deepEqual(await refused('/nope'), { status: 404, reason: 'no WebTransport endpoint at /nope', ...noRetry });
  assert.deepEqual(await refused('/warp?token=bad'), { status: 403, reason: 'a token is required', ...noRetry });
  assert.deepEqual(await refused('/boom'), { status: 500, reason: 'session refused: database down', ...noRetry });
  assert.deepEqual(await refused('/busy'), { status: 503, reason: 'draining', retryAfterSeconds: 12 });
  const ok = await s.connect('/warp?token=good');
  assert.equal(ok.path, '/warp?token=good');
  assert.deepEqual(s.server.stats(), {
    sessions: 1,
    sessionsAccepted: 1,
    sessionsRefused: 4,
    sessionsRefusedByStatus: { 403: 1, 404: 1, 500: 1, 503: 1 },
    streamsOpened: 0,
    streamsAccepted: 0,
    streamsRefused: 0,
  });
  const metrics = await registry.metrics();
  assert.match(metrics, /^pushcast_websocket_sessions 1$/m);
  assert.match(metrics, /^pushcast_websocket_sessions_accepted_total 1$/m);
  assert.match(metrics, /^pushcast_websocket_sessions_refused_total\{status="403"\} 1$/m);

  // An upgrade without the webtransport subprotocol is not taken (the caller's handler answers 400).
  const plain = new WebSocket(s.url('/warp?token=good').replace('http', 'ws'));
  plain.on('error', () => undefined);
  const status = await new Promise<number>((resolve) =>
    plain.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)),
  );
  plain.terminate();
  assert.equal(status, 400);
});

test('the route sees the request: path with query, authority, origin, headers; application subprotocols are negotiated', async (t) => {
  const requests: {
    path: string;
    authority: string;
    origin?: string;
    header?: string;
    transport: string;
    protocol: string;
  }[] = [];
  const s = await setup(
    t,
    (router) =>
      router.route('/', {
        session: (session, request) =>
          requests.push({
            ...request,
            header: request.headers['x-test'],
            protocol: (session as WebSocketSession).protocol,
          }),
      }),
    { protocols: ['moq-04'] },
  );
  const a = await s.connect('/live/x?y=1', {
    headers: { origin: 'https://page.example', 'x-test': 'yes' },
    protocols: ['moq-03', 'moq-04'],
  });
  assert.equal((a as WebSocketSession).protocol, 'moq-04');
  const b = await s.connect('/other');
  assert.equal((b as WebSocketSession).protocol, '');
  await until('both session requests', () => requests.length >= 2);
  const port = new URL(s.url('/')).port;
  assert.deepEqual(
    requests.map(({ path, authority, origin, header, transport, protocol }) => ({
      path,
      authority,
      origin,
      header,
      transport,
      protocol,
    })),
    [
      {
        path: '/live/x?y=1',
        authority: `127.0.0.1:${port}`,
        origin: 'https://page.example',
        header: 'yes',
        transport: 'websocket',
        protocol: 'moq-04',
      },
      {
        path: '/other',
        authority: `127.0.0.1:${port}`,
        origin: undefined,
        header: undefined,
        transport: 'websocket',
        protocol: '',
      },
    ],
  );
});

test('bounds: message size (1009), per-stream and per-session receive buffers (STOP_SENDING), peer streams at once, sessions (503), send queue', async (t) => {
  const arrivals = new Arrivals();
  const s = await setup(t, (router) => router.route('/b', { session: (session) => arrivals.push(session) }), {
    maxMessageBytes: 64 * 1024 + 16,
    maxStreamReceiveBytes: 100_000,
    maxSessionReceiveBytes: 150_000,
    maxPeerStreams: 3,
    maxSessions: 4,
    maxQueuedBytes: 1024 * 1024,
  });

  // A message larger than maxMessageBytes: the WebSocket closes with 1009 (RFC 6455 §7.4.1).
  const big = await s.raw('/b');
  const bigSession = await arrivals.next();
  big.send({ type: 'stream', id: 2, fin: false, data: new Uint8Array(100_000) });
  assert.equal((await big.closed).code, 1009);
  assert.deepEqual(await bigSession.closed, {
    code: 1009,
    reason: `a message larger than ${64 * 1024 + 16} bytes`,
    by: 'transport',
  });

  // A stream whose reader does not read: past 100 000 unread bytes, STOP_SENDING; the others go on.
  const client = await s.connect('/b');
  const server = await arrivals.next();
  const accepted: SessionStream[] = [];
  server.on('stream', (stream) => accepted.push(stream));
  const slow = client.openStream({ bidirectional: false });
  const error = await writeUntilRejected(slow, new Uint8Array(30_000));
  assert.ok(
    error instanceof StreamAbortedError &&
      error.by === 'peer-stop-sending' &&
      error.code === WS_CODE_RECEIVE_BUFFER_FULL,
    String(error),
  );
  const slowHere = accepted.find((x) => x.id === slow.id)!;
  await assert.rejects(
    slowHere.readAll(),
    (e: unknown) => e instanceof StreamReceiveOverflowError && /100000 bytes for the stream/.test(e.message),
  );

  // The session's bound: two streams of 80 000 unread bytes each pass 150 000 together; the second is stopped.
  const s1 = client.openStream({ bidirectional: false });
  const s2 = client.openStream({ bidirectional: false });
  await s1.write(new Uint8Array(80_000).subarray(0, 60_000));
  await s1.write(new Uint8Array(20_000));
  const e2 = await writeUntilRejected(s2, new Uint8Array(20_000));
  assert.ok(e2 instanceof StreamAbortedError && e2.code === WS_CODE_RECEIVE_BUFFER_FULL, String(e2));
  const s2Here = accepted.find((x) => x.id === s2.id)!;
  await assert.rejects(s2Here.readAll(), /150000 bytes for the session/);
  // s1 is intact: it ends and is read whole.
  await s1.end();
  assert.equal((await accepted.find((x) => x.id === s1.id)!.readAll()).length, 80_000);

  // Peer streams at once: 3. Streams gone (slow, s1, s2) no longer count; three open ones fill the table.
  const open = [
    client.openStream({ bidirectional: false }),
    client.openStream({ bidirectional: false }),
    client.openStream({ bidirectional: false }),
  ];
  for (const o of open) await o.write(new Uint8Array(1));
  const fourth = client.openStream({ bidirectional: false });
  const e4 = await writeUntilRejected(fourth, new Uint8Array(1));
  assert.ok(
    e4 instanceof StreamAbortedError && e4.by === 'peer-stop-sending' && e4.code === WS_CODE_STREAM_LIMIT,
    String(e4),
  );
  const fifth = client.openStream(); // bidirectional: our half is reset too
  await fifth.write(new Uint8Array(1));
  await assert.rejects(
    fifth.readAll(),
    (e: unknown) => e instanceof StreamAbortedError && e.by === 'peer-reset' && e.code === WS_CODE_STREAM_LIMIT,
  );
  assert.ok(!accepted.some((x) => x.id === fourth.id || x.id === fifth.id), 'refused streams never reach the route');
  // One ends: room for a new one.
  await open[0]!.end();
  await accepted.find((x) => x.id === open[0]!.id)!.readAll();
  const later = client.openStream({ bidirectional: false });
  await later.end(new Uint8Array([1, 2]));
  await until('the later stream accepted', () => accepted.some((x) => x.id === later.id));
  assert.deepEqual(await accepted.find((x) => x.id === later.id)!.readAll(), new Uint8Array([1, 2]));

  // The send queue: the client stops reading; writes that pile up past 1 MiB are refused.
  (client as WebSocketSession).socket.pause();
  const out = server.openStream({ bidirectional: false });
  const chunk = new Uint8Array(256 * 1024);
  let full: unknown;
  for (let i = 0; i < 2000 && !full; i++) {
    out.write(chunk).catch((e: unknown) => (full = e));
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.ok(full instanceof SendQueueFullError, String(full));
  assert.ok((server as WebSocketSession).queuedBytes <= 1024 * 1024);
  (client as WebSocketSession).socket.resume();

  // Sessions: 4 at most (big's is gone; client's, and two more), the next is refused with 503.
  await s.connect('/b');
  await s.connect('/b');
  await s.connect('/b');
  const error503 = await rejection(connectWebSocketSession(s.url('/b')));
  assert.ok(error503 instanceof SessionRefusedError && error503.status === 503, String(error503));
  assert.equal(error503.retryAfterSeconds, 5, 'a 503 of its own says when to retry');
  assert.match(error503.reason, /at most 4 WebSocket sessions/);
  assert.equal(s.server.sessionCount, 4);
  assert.equal(s.server.stats().streamsRefused, 2, 'the fourth and the fifth stream');
});

test('malformed frames close the session with 1002 and a one-line reason; a text message with 1003', async (t) => {
  const arrivals = new Arrivals();
  const s = await setup(t, (router) => router.route('/m', { session: (session) => arrivals.push(session) }));
  const cases: [string, (WsFrame | Uint8Array)[], RegExp][] = [
    ['unknown type', [Uint8Array.of(0x07, 0x00)], /malformed frame: unknown-frame-type/],
    ['truncated varint', [Uint8Array.of(0x08, 0x40)], /malformed frame: truncated/],
    ['empty message', [new Uint8Array(0)], /malformed frame: truncated/],
    [
      'client writing on a server-initiated unidirectional stream',
      [{ type: 'stream', id: 3, fin: false, data: Uint8Array.of(1) }],
      /STREAM on stream 3/,
    ],
    [
      'STREAM after FIN',
      [
        { type: 'stream', id: 2, fin: true, data: Uint8Array.of(1) },
        { type: 'stream', id: 2, fin: false, data: Uint8Array.of(2) },
      ],
      /STREAM after FIN on stream 2/,
    ],
    [
      'STREAM after FIN on a live bidirectional stream',
      [
        { type: 'stream', id: 0, fin: true, data: new Uint8Array(0) },
        { type: 'stream', id: 0, fin: true, data: new Uint8Array(0) },
      ],
      /STREAM after FIN on stream 0/,
    ],
    [
      'a server stream the server never opened',
      [{ type: 'stream', id: 5, fin: false, data: Uint8Array.of(1) }],
      /stream 5, which this side has not opened/,
    ],
    [
      "RESET_STREAM on the server's own unidirectional stream",
      [{ type: 'reset-stream', id: 3, code: 0 }],
      /RESET_STREAM on stream 3/,
    ],
    [
      "STOP_SENDING on the client's unidirectional stream",
      [{ type: 'stop-sending', id: 2, code: 0 }],
      /STOP_SENDING on stream 2/,
    ],
  ];
  for (const [name, frames, reason] of cases) {
    const raw = await s.raw('/m');
    const session = await arrivals.next();
    for (const f of frames) raw.send(f);
    const closed = await raw.closed;
    assert.equal(closed.code, 1002, name);
    assert.match(closed.reason, reason, name);
    assert.ok(!closed.reason.includes('\n') && Buffer.byteLength(closed.reason) <= 123, name);
    const info = await session.closed;
    assert.equal(info.code, 1002, name);
    assert.equal(info.reason, closed.reason, name);
  }
  const text = await s.raw('/m');
  const session = await arrivals.next();
  text.ws.send('hello');
  assert.equal((await text.closed).code, 1003);
  assert.equal((await session.closed).code, 1003);

  // Frames for streams that are gone are dropped, not errors: late data after STOP_SENDING, a reset of an unseen stream.
  const raw = await s.raw('/m');
  const lenient = await arrivals.next();
  const got = new Promise<SessionStream>((resolve) => lenient.once('stream', resolve));
  raw.send({ type: 'stream', id: 2, fin: false, data: Uint8Array.of(1) });
  (await got).stopSending(1);
  raw.send({ type: 'stream', id: 2, fin: false, data: Uint8Array.of(2) });
  raw.send({ type: 'reset-stream', id: 6, code: 0 });
  raw.send({ type: 'stream', id: 6, fin: false, data: Uint8Array.of(2) });
  raw.send({ type: 'stop-sending', id: 4, code: 0 });
  const echo = new Promise<SessionStream>((resolve) => lenient.once('stream', resolve));
  raw.send({ type: 'stream', id: 8, fin: true, data: Uint8Array.of(3) }); // bidirectional: it stays while our half is open
  raw.send({ type: 'reset-stream', id: 8, code: 9 }); // after FIN: every byte is there already
  assert.deepEqual(await (await echo).readAll(), Uint8Array.of(3));
  assert.equal(lenient.stats().transport, 'websocket');
  // A ping answered after all of it: the server read every frame above without closing the session.
  raw.ws.ping();
  await untilEvent('a pong after the frames of gone streams', raw.ws, 'pong');
  assert.equal(raw.ws.readyState, WebSocket.OPEN, 'still open');
});

test('liveness: a peer that does not answer pings is cut off; one that does stays, with an RTT', async (t) => {
  const arrivals = new Arrivals();
  const s = await setup(t, (router) => router.route('/p', { session: (session) => arrivals.push(session) }), {
    pingIntervalMs: 100,
  });
  const mute = await s.raw('/p', { autoPong: false });
  const muteSession = await arrivals.next();
  const healthy = await s.raw('/p');
  const healthySession = await arrivals.next();
  const info = await muteSession.closed;
  assert.equal(info.code, 1006);
  assert.match(info.reason, /no pong within 100 ms/);
  await mute.closed;
  // Three more pings, each answered: the one that answers stays.
  let pings = 0;
  healthy.ws.on('ping', () => pings++);
  await until('three more pings to the healthy peer', () => pings >= 3, { timeoutMs: 5000 });
  assert.equal(healthy.ws.readyState, WebSocket.OPEN);
  assert.ok(typeof healthySession.stats().rttMs === 'number');
});
