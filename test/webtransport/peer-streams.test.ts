/**
 * The bound on the streams a peer has open at once in a session, on both transports (`PeerStreams`):
 * a WebSocket-fallback peer that opens 20 000 streams gets 100 of them (the default) and every other one
 * refused with STOP_SENDING, the session staying up and holding 100; a stream that ends makes room for
 * one more. Over HTTP/3 the same past a configured bound (H3_EXCESSIVE_LOAD); streams that are over both
 * ways leave the session, so a peer that opens streams one after another is not refused by the session.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { WebSocket } from 'ws';
import { H3_ALPN, Http3Client } from '../../src/http3/index.js';
import { developmentCertificate } from '../../src/origin/index.js';
import { QuicEndpoint } from '../../src/quic/index.js';
import {
  DEFAULT_MAX_PEER_STREAMS,
  SessionRouter,
  StreamAbortedError,
  WebSocketSessionServer,
  WebTransportHttp3,
  serveHttp3Sessions,
  type Session,
  type SessionStream,
} from '../../src/webtransport/index.js';
import { WS_CODE_STREAM_LIMIT } from '../../src/webtransport/websocket-session.js';
import { decodeWsFrame, encodeWsFrame } from '../../src/wire/index.js';

const dir = mkdtempSync(join(os.tmpdir(), 'pushcast-peer-streams-'));
const certificate = developmentCertificate(dir);
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** Polls `ok` until it holds; fails naming `what` (and `state()`) after `ms`. */
async function waitFor(what: string, ok: () => boolean, ms = 10_000, state?: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${state ? `: ${state()}` : ''}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A route that keeps every stream it gets, unread. */
function holdingRoute() {
  const sessions: Session[] = [];
  const streams: SessionStream[] = [];
  const router = new SessionRouter().route('/hold', {
    session: (session) => {
      sessions.push(session);
      session.on('stream', (stream) => streams.push(stream));
    },
  });
  return { router, sessions, streams };
}

test('WebSocket fallback: a peer opening 20 000 streams has 100 open; the rest are refused, the session goes on', async (t) => {
  const route = holdingRoute();
  const server = new WebSocketSessionServer(route.router);
  const http = createServer((_req, res) => res.writeHead(404).end());
  http.on('upgrade', (req, socket, head) => void server.handleUpgrade(req, socket, head));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    await server.close();
    http.closeAllConnections();
    await new Promise((resolve) => http.close(resolve));
  });
  const ws = new WebSocket(`ws://127.0.0.1:${(http.address() as AddressInfo).port}/hold`, ['webtransport'], {
    perMessageDeflate: false,
  });
  t.after(() => ws.terminate());
  const refused = new Set<number>();
  ws.on('message', (data: Buffer) => {
    const frame = decodeWsFrame(new Uint8Array(data));
    if (frame.type === 'stop-sending' && frame.code === WS_CODE_STREAM_LIMIT) refused.add(frame.id);
  });
  await new Promise((resolve) => ws.once('open', resolve));
  const uni = (n: number) => n * 4 + 2; // client-initiated, unidirectional (RFC 9000 §2.1)
  const total = 20_000;
  for (let n = 0; n < total; n++)
    ws.send(encodeWsFrame({ type: 'stream', id: uni(n), fin: false, data: new Uint8Array([1]) }));
  await waitFor(
    `${total - DEFAULT_MAX_PEER_STREAMS} refusals`,
    () => refused.size === total - DEFAULT_MAX_PEER_STREAMS,
    30_000,
    () => JSON.stringify(route.sessions[0]?.stats()),
  );
  const session = route.sessions[0]!;
  assert.equal(route.streams.length, DEFAULT_MAX_PEER_STREAMS, 'the first 100 reached the route');
  assert.ok(!refused.has(uni(0)) && !refused.has(uni(99)) && refused.has(uni(100)) && refused.has(uni(total - 1)));
  const stats = session.stats();
  assert.equal(stats.streamsAccepted, DEFAULT_MAX_PEER_STREAMS);
  assert.equal(stats.streamsRefused, total - DEFAULT_MAX_PEER_STREAMS);
  assert.equal(stats.peerStreams, DEFAULT_MAX_PEER_STREAMS);

  // The session is up: a stream that ends (FIN) leaves room for a new one, which reaches the route.
  ws.send(encodeWsFrame({ type: 'stream', id: uni(0), fin: true, data: new Uint8Array(0) }));
  ws.send(encodeWsFrame({ type: 'stream', id: uni(total), fin: true, data: new Uint8Array([7]) }));
  await waitFor('the new stream at the route', () => route.streams.some((s) => s.id === uni(total)));
  assert.deepEqual(await route.streams.find((s) => s.id === uni(total))!.readAll(), new Uint8Array([7]));
  assert.equal(refused.has(uni(total)), false);
});

async function http3(t: test.TestContext, router: SessionRouter, maxPeerStreams?: number) {
  const endpoint = await QuicEndpoint.listen({
    alpn: [H3_ALPN],
    key: certificate.key,
    cert: certificate.cert,
    host: '127.0.0.1',
    port: 0,
  });
  endpoint.on('connection', (conn) => serveHttp3Sessions(conn, { router, maxPeerStreams }));
  t.after(() => endpoint.close());
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
  return wt.open(client, '/hold');
}

/** Writes a byte at a time until the write rejects (the peer stopped the stream); the error. */
async function writeUntilRejected(stream: SessionStream): Promise<unknown> {
  for (let i = 0; i < 500; i++) {
    try {
      await stream.write(new Uint8Array([1]));
    } catch (error) {
      return error;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  return undefined;
}

test('HTTP/3: past the peer streams a session may have open, a new one is refused; streams over both ways make room', async (t) => {
  const route = holdingRoute();
  const client = await http3(t, route.router, 10);
  const streams = Array.from({ length: 10 }, () => client.openStream({ bidirectional: false }));
  for (const s of streams) await s.write(new Uint8Array([1]));
  await waitFor('10 streams at the route', () => route.streams.length === 10);
  const extra = client.openStream({ bidirectional: false });
  const error = await writeUntilRejected(extra);
  assert.ok(error instanceof StreamAbortedError && error.by === 'peer-stop-sending', String(error));
  const session = route.sessions[0]!;
  assert.equal(session.stats().streamsRefused, 1);
  assert.equal(session.stats().peerStreams, 10);
  assert.equal(route.streams.length, 10, 'the refused stream never reached the route');

  // One ends and is read to its end by the route: it is over both ways, and a new stream is taken.
  await streams[0]!.end();
  await route.streams[0]!.readAll();
  await waitFor('room for one', () => session.stats().peerStreams === 9);
  const next = client.openStream({ bidirectional: false });
  await next.end(new Uint8Array([4, 2]));
  await waitFor('the new stream at the route', () => route.streams.length === 11);
  assert.deepEqual(await route.streams[10]!.readAll(), new Uint8Array([4, 2]));
});

test('HTTP/3: a peer that opens 100 streams one after another, each stopped by the route, is never refused past a bound of 10', async (t) => {
  const sessions: Session[] = [];
  let stopped = 0;
  const router = new SessionRouter().route('/hold', {
    session: (session) => {
      sessions.push(session);
      session.on('stream', (stream) => {
        stream.stopSending(0); // as a Warp route does with streams a viewer opens
        stopped++;
      });
    },
  });
  const client = await http3(t, router, 10);
  // 100: ten times the session's bound, under QUIC's 128 unidirectional streams per connection.
  for (let i = 0; i < 100; i++) {
    const stream = client.openStream({ bidirectional: false });
    await stream.write(new Uint8Array([1]));
    await waitFor(`stream ${i} stopped`, () => stopped === i + 1);
  }
  const stats = sessions[0]!.stats();
  assert.equal(stats.streamsAccepted, 100);
  assert.equal(stats.streamsRefused, 0);
  assert.equal(stats.peerStreams, 0, 'a stopped unidirectional stream is over both ways');
});
