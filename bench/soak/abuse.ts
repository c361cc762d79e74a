/**
 * One burst of bad input against `pushcast serve` on the loopback, for bench/soak.ts: every attack at
 * once, each bounded in count (× `scale`) and by the burst's deadline, in a process of its own. The
 * soak kills the process when the burst is over, so whatever is still open then (slow requests, QUIC
 * connections, WebTransport and WebSocket sessions) is abandoned without a close, as a vanished client
 * leaves it: the server has to find out by itself.
 *
 *   node build/bench/soak/abuse.js '<AbuseArgs as JSON>'
 * Prints one JSON line, an AbuseReport, at the deadline (counts of what was sent and how the server
 * answered), then stays until killed.
 *
 * - HTTP/1.1, on the cleartext and TLS ports: malformed request lines, header blocks past the limits,
 *   conflicting framing, hostile Host, paths and ranges, huge conditional and cache-statement headers,
 *   bodies promised and never sent; slowloris header trickles; readers that never read a growing
 *   segment; requests for segments far ahead (held by the origin).
 * - HTTP/2: streams opened and reset at once, uploads never finished, push channels dropped midway,
 *   header lists past the limits, PING and SETTINGS floods, a preface followed by junk, sessions
 *   destroyed without GOAWAY.
 * - HTTP/3: requests cut inside their HEADERS frame, streams of junk, unknown unidirectional streams,
 *   field sections and bodies past the bounds, streams opened and never finished, connections left
 *   without CONNECTION_CLOSE.
 * - QUIC datagrams: random bytes, forged client Initials (each makes the server start a handshake),
 *   short headers for unknown connections, Initials of an unknown version.
 * - WebTransport over HTTP/3: Warp sessions opened and closed, opened and abandoned, with no, wrong
 *   and oversized tokens, unknown broadcasts and tracks.
 * - The WebSocket fallback: sessions opening more streams than allowed, filling stream buffers,
 *   malformed frames of every kind, text and oversized messages, wrong tokens, sessions never read;
 *   refused upgrades reset by the client as soon as the refusal arrives.
 * - The multicast gateway: unadvertised sessions, missing parameters, foreign origins, subscribers
 *   that send, and subscribers that never read.
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { WebSocket } from 'ws';
import { H3_ALPN } from '../../src/http3/index.js';
import { QuicEndpoint, type QuicConnection } from '../../src/quic/index.js';
import { connectWebTransport } from '../../src/webtransport/index.js';
import {
  WsFrameType,
  encodeFieldSection,
  encodeHttp3Frame,
  encodeWsFrame,
  makeStreamId,
} from '../../src/wire/index.js';
import type { MulticastSession } from './viewers.js';

export interface AbuseArgs {
  /** Cleartext and TLS (TCP, and UDP for QUIC) ports on 127.0.0.1. */
  httpPort: number;
  tlsPort: number;
  caFile: string;
  token: string;
  /** Renditions and the segment duration, for URLs of growing and future segments. */
  representations: string[];
  segmentSeconds: number;
  multicast: MulticastSession[];
  /** How long the burst lasts, s. */
  seconds: number;
  /** Multiplies every count. */
  scale: number;
}

/** Per attack: what was sent, and how it ended (HTTP status, close code, error), counted. */
export type AbuseReport = Record<string, { sent: number; outcomes: Record<string, number> }>;

const args = JSON.parse(process.argv[2] ?? '{}') as AbuseArgs;
const ca = readFileSync(args.caFile, 'utf8');
const HOST = '127.0.0.1';
const deadline = Date.now() + args.seconds * 1000;
const n = (count: number) => Math.max(1, Math.round(count * args.scale));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const left = () => deadline - Date.now();
const report: AbuseReport = {};
/** Connections kept open to the end of the burst (then abandoned with the process). */
const kept: unknown[] = [];

function count(attack: string, outcome: string, sent = 1): void {
  const r = (report[attack] ??= { sent: 0, outcomes: {} });
  r.sent += sent;
  r.outcomes[outcome] = (r.outcomes[outcome] ?? 0) + 1;
}

const message = (e: unknown) =>
  (e instanceof Error ? ((e as NodeJS.ErrnoException).code ?? e.message) : String(e)).slice(0, 60);

/** Up to `limit` at once, `total` in all, none started after the deadline. */
async function pool(total: number, limit: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(total, limit) }, async () => {
      while (next < total && left() > 0) await job(next++).catch(() => undefined);
    }),
  );
}

function nowNumber(): number {
  // Segment numbers count from the Unix epoch in segment durations (README).
  return Math.floor(Date.now() / (args.segmentSeconds * 1000));
}

const rep = () => args.representations[Math.floor(Math.random() * args.representations.length)] ?? 'video-360p';

// ─── HTTP/1.1 ─────────────────────────────────────────────────────────────────────────────────

/** Raw requests, each on its own connection: the first line of the answer (or how the connection ended). */
function rawRequests(): Buffer[] {
  const h = `Host: ${HOST}:${args.httpPort}\r\n`;
  const seg = `/live/${rep()}/${nowNumber() - 2}.m4s`;
  const ranged = (range: string) => `GET ${seg} HTTP/1.1\r\n${h}Range: ${range}\r\n\r\n`;
  return [
    'GARBAGE\r\n\r\n',
    '\x00\x01\x02\x03\r\n\r\n',
    'GET / HTTP/9.9\r\n\r\n',
    `GET /${'a'.repeat(70_000)} HTTP/1.1\r\n${h}\r\n`,
    `GET / HTTP/1.1\r\n${h}X-Big: ${'b'.repeat(20_000)}\r\n\r\n`,
    `GET / HTTP/1.1\r\n${h}${Array.from({ length: 3000 }, (_, i) => `X-${i}: ${i}\r\n`).join('')}\r\n`,
    `GET / HTTP/1.1\r\n${h}X-Nul: a\x00b\r\n\r\n`,
    `POST /live/manifest.mpd HTTP/1.1\r\n${h}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    `POST /live/manifest.mpd HTTP/1.1\r\n${h}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n`,
    `POST /metrics HTTP/1.1\r\n${h}Content-Length: 100000000\r\n\r\npartial`,
    `POST / HTTP/1.1\r\n${h}Expect: 100-continue\r\nContent-Length: 10\r\n\r\n`,
    `GET /live/manifest.mpd HTTP/1.1\r\nHost: evil.example\r\nHost: x\r\n\r\n`,
    `GET /live/manifest.mpd HTTP/1.1\r\nHost: "><script>\r\n\r\n`,
    `GET /../../../../etc/passwd HTTP/1.1\r\n${h}\r\n`,
    `GET /live/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\n${h}\r\n`,
    `GET /live/${rep()}/99999999999999999999999.m4s HTTP/1.1\r\n${h}\r\n`,
    `GET /live/${rep()}/-1.m4s HTTP/1.1\r\n${h}\r\n`,
    `GET /live/nope/1.m4s HTTP/1.1\r\n${h}\r\n`,
    ranged('bytes=abc'),
    ranged('bytes=999999999999-'),
    ranged('bytes=-0'),
    ranged(`bytes=${'1'.repeat(300)}-`),
    ranged(Array.from({ length: 60 }, (_, i) => `${i}-${i}`).join(',')),
    ranged('bytes=5-1'),
    ranged('items=0-10'),
    `GET ${seg} HTTP/1.1\r\n${h}If-None-Match: ${'"x",'.repeat(3000)}\r\n\r\n`,
    `GET ${seg} HTTP/1.1\r\n${h}If-Range: garbage\r\nRange: bytes=0-10\r\n\r\n`,
    `GET /live/manifest.mpd HTTP/1.1\r\n${h}pushcast-cached: ${Array.from({ length: 2000 }, (_, i) => `/live/x/${i}.m4s`).join(', ')}\r\n\r\n`,
    `GET /live/manifest.mpd HTTP/1.1\r\n${h}Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n`,
    `GET /nowhere HTTP/1.1\r\n${h}Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
    `GET /warp/live HTTP/1.1\r\n${h}Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n`,
    `GET /multicast/gateway?group=1 HTTP/1.1\r\n${h}Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
    `OPTIONS * HTTP/1.1\r\n${h}\r\n`,
    `TRACE / HTTP/1.1\r\n${h}\r\n`,
    `GET / HTTP/1.1\r\n${h}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n`,
  ].map((text) => Buffer.from(text, 'latin1'));
}

function connectTcp(secure: boolean, alpn?: string[]): net.Socket {
  return secure
    ? tls.connect({ host: HOST, port: args.tlsPort, ca, servername: 'localhost', ALPNProtocols: alpn ?? ['http/1.1'] })
    : net.connect({ host: HOST, port: args.httpPort });
}

/** Sends `bytes`, reads what comes back for at most 3 s, then destroys the connection; the status line's code. */
function exchange(bytes: Buffer, secure: boolean): Promise<string> {
  return new Promise((resolve) => {
    const socket = connectTcp(secure);
    let answer = '';
    const done = (outcome: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(
      () => done(answer ? (/^HTTP\/1\.\d (\d{3})/.exec(answer)?.[1] ?? 'answer') : 'no answer'),
      3000,
    );
    socket.once(secure ? 'secureConnect' : 'connect', () => socket.write(bytes));
    socket.on('data', (d: Buffer) => {
      if (answer.length < 256) answer += d.toString('latin1');
      const status = /^HTTP\/1\.\d (\d{3})/.exec(answer)?.[1];
      if (status && status !== '100') done(status);
    });
    socket.on('error', (e) => done(message(e)));
    socket.on('close', () => done(answer ? 'closed after answer' : 'closed'));
  });
}

async function http1Malformed(): Promise<void> {
  const requests = rawRequests();
  await pool(n(8) * requests.length * 2, 32, async (i) => {
    const secure = i % 2 === 1;
    const bytes = requests[Math.floor(i / 2) % requests.length]!;
    count(secure ? 'h1-tls-malformed' : 'h1-malformed', await exchange(bytes, secure));
  });
}

/** Slowloris: header bytes one at a time, every 500 ms, until the deadline. */
async function http1Slow(): Promise<void> {
  const line = Buffer.from(`GET /live/manifest.mpd HTTP/1.1\r\nHost: ${HOST}\r\nX-Slow: ${'s'.repeat(4000)}`, 'latin1');
  await Promise.all(
    Array.from({ length: n(100) }, async (_, i) => {
      const socket = connectTcp(i % 4 === 3);
      kept.push(socket);
      socket.on('error', () => undefined);
      count('h1-slowloris', 'opened');
      for (let at = 0; at < line.length && left() > 0 && !socket.destroyed; at++) {
        socket.write(line.subarray(at, at + 1));
        await sleep(500);
      }
    }),
  );
}

/** Asks for the growing segment, a big complete one and one far ahead, and never reads the answers. */
async function http1NeverRead(): Promise<void> {
  await Promise.all(
    Array.from({ length: n(60) }, async (_, i) => {
      const socket = connectTcp(i % 2 === 1);
      kept.push(socket);
      const number = nowNumber() + [0, -3, 1, 30][i % 4]!;
      socket.once(i % 2 === 1 ? 'secureConnect' : 'connect', () => {
        socket.write(`GET /live/${rep()}/${number}.m4s HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
        socket.pause();
      });
      socket.on('error', () => undefined);
      count('h1-never-read', 'sent');
    }),
  );
}

/**
 * Many requests for the segment being encoded and the one after it: the origin holds each response
 * (bounded) and streams it while the segment grows. Each is cut as soon as its status line arrives.
 */
async function http1Held(): Promise<void> {
  await pool(n(300), 100, async (i) => {
    const number = nowNumber() + (i % 2);
    count(
      'h1-growing-cut',
      await exchange(Buffer.from(`GET /live/${rep()}/${number}.m4s HTTP/1.1\r\nHost: x\r\n\r\n`), false),
    );
  });
}

// ─── HTTP/2 ───────────────────────────────────────────────────────────────────────────────────

function h2Session(): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = http2.connect(`https://${HOST}:${args.tlsPort}`, { ca, servername: 'localhost' });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
    s.on('error', () => undefined);
  });
}

async function http2Abuse(): Promise<void> {
  await pool(n(20), 8, async (i) => {
    let s: http2.ClientHttp2Session;
    try {
      s = await h2Session();
    } catch (e) {
      return count('h2-session', message(e));
    }
    count('h2-session', 'connected');
    const growing = `/live/${rep()}/${nowNumber()}.m4s`;
    // Streams opened and reset at once.
    for (let k = 0; k < 50 && !s.destroyed; k++) {
      const stream = s.request({ ':path': k % 2 ? growing : '/live/manifest.mpd' });
      stream.on('error', () => undefined);
      stream.close(http2.constants.NGHTTP2_CANCEL);
      count('h2-reset-at-once', 'sent');
    }
    // Uploads never finished, and push channels left streaming.
    for (let k = 0; k < 10 && !s.destroyed; k++) {
      const upload = s.request({ ':method': 'POST', ':path': '/live/manifest.mpd', 'content-length': '1000000' });
      upload.on('error', () => undefined);
      upload.write(randomBytes(1000));
      const push = s.request({ ':path': `/live/${rep()}/push` });
      push.on('error', () => undefined);
      push.on('response', (h) => count('h2-push-channel', String(h[':status'])));
      count('h2-unfinished-upload', 'sent');
    }
    // Header lists past the limits, hostile ranges, a cache statement of thousands of paths.
    const answered: Promise<void>[] = [];
    for (const headers of [
      { ':path': '/live/manifest.mpd', 'x-big': 'b'.repeat(70_000) },
      { ':path': growing, range: `bytes=${'9'.repeat(250)}-` },
      { ':path': growing, range: 'bytes=0-1,3-4,5-6' },
      {
        ':path': '/live/manifest.mpd',
        'pushcast-cached': Array.from({ length: 2000 }, (_, k) => `/p/${k}`).join(', '),
      },
      { ':path': `/${'%2e%2e/'.repeat(100)}etc/passwd` },
    ]) {
      if (s.destroyed) break;
      const stream = s.request(headers);
      answered.push(
        new Promise<void>((resolve) => {
          stream.on('error', (e) => (count('h2-hostile-headers', message(e)), resolve()));
          stream.on('response', (h) => (count('h2-hostile-headers', String(h[':status'])), resolve()));
          setTimeout(resolve, 3000);
        }),
      );
      stream.resume();
      stream.end();
    }
    await Promise.all(answered);
    // PING and SETTINGS floods, bounded (node allows 10 SETTINGS awaiting their ACK).
    for (let k = 0; k < 100 && !s.destroyed; k++) {
      try {
        s.ping(() => undefined);
        if (k % 20 === 0) s.settings({ initialWindowSize: 1 + k });
      } catch {
        break;
      }
    }
    count('h2-ping-settings-flood', 'sent', 105);
    await sleep(Math.min(left(), 2000 + 500 * (i % 6)));
    // Gone without GOAWAY: the socket is torn down under the session.
    s.socket?.destroy();
    count('h2-session', 'destroyed without GOAWAY');
  });
  // A preface followed by junk frames.
  await pool(n(20), 10, async () => {
    const socket = connectTcp(true, ['h2']);
    await new Promise<void>((resolve) => {
      socket.once('secureConnect', () => {
        socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), randomBytes(2000)]));
        setTimeout(resolve, 500);
      });
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
    });
    count('h2-preface-then-junk', socket.destroyed ? 'closed by the server' : 'still open');
    socket.destroy();
  });
}

// ─── QUIC and HTTP/3 ──────────────────────────────────────────────────────────────────────────

function quicConnect(): Promise<QuicConnection> {
  return QuicEndpoint.connect({ alpn: [H3_ALPN], host: HOST, port: args.tlsPort, serverName: 'localhost', ca });
}

const headersFrame = (path: string, extra: { name: string; value: string }[] = [], method = 'GET') =>
  encodeHttp3Frame({
    kind: 'headers',
    fieldSection: encodeFieldSection([
      { name: ':method', value: method },
      { name: ':scheme', value: 'https' },
      { name: ':authority', value: `localhost:${args.tlsPort}` },
      { name: ':path', value: path },
      ...extra,
    ]),
  });

async function http3Abuse(): Promise<void> {
  await pool(n(12), 4, async () => {
    let conn: QuicConnection;
    try {
      conn = await quicConnect();
    } catch (e) {
      return count('h3-connection', message(e));
    }
    kept.push(conn);
    count('h3-connection', 'connected');
    const write = (bytes: Uint8Array, fin: boolean, bidirectional = true) => {
      const stream = conn.openStream({ bidirectional });
      stream.write(bytes, fin).catch(() => undefined);
      if (bidirectional) void stream.readAll(1 << 20).catch(() => undefined);
      return stream;
    };
    const headers = headersFrame(`/live/${rep()}/${nowNumber()}.m4s`);
    for (let k = 0; k < 20; k++) {
      // Cut inside the HEADERS frame, with and without FIN; then reset.
      write(headers.subarray(0, 1 + (k % (headers.length - 1))), k % 2 === 0);
      write(headers.subarray(0, 3), false).reset(0x10c);
      // Junk, and a request never finished.
      write(randomBytes(200 + k * 50), true);
      write(headers, false);
    }
    count('h3-cut-and-junk-streams', 'sent', 80);
    // Unknown unidirectional stream types with junk behind them (RFC 9114 §6.2: to be ignored).
    for (let k = 0; k < 10; k++) write(Buffer.concat([Buffer.from([0x21 + k]), randomBytes(3000)]), k % 2 === 0, false);
    count('h3-unknown-uni-streams', 'sent', 10);
    // A field section past 64 KiB, a body past 1 MiB, a hostile range.
    const big = write(headersFrame('/live/manifest.mpd', [{ name: 'x-big', value: 'b'.repeat(70_000) }]), true);
    void big.readAll(1 << 20).then(
      () => count('h3-big-headers', 'answered'),
      (e) => count('h3-big-headers', message(e)),
    );
    const upload = conn.openStream();
    void (async () => {
      await upload.write(headersFrame('/live/manifest.mpd', [], 'POST'));
      await upload.write(encodeHttp3Frame({ kind: 'data', data: randomBytes(1_200_000) }), true);
    })().catch(() => undefined);
    void upload.readAll(1 << 20).then(
      () => count('h3-big-body', 'answered'),
      (e) => count('h3-big-body', message(e)),
    );
    write(headersFrame(`/live/${rep()}/${nowNumber() - 2}.m4s`, [{ name: 'range', value: 'bytes=0-1,2-3' }]), true);
    // Left as it is: no CONNECTION_CLOSE when the burst ends.
  });
}

/** A forged long-header packet (RFC 9000 §17.2) of `version`, padded with random bytes to `size`. */
function longHeaderPacket(version: number, size: number): Buffer {
  const b = randomBytes(size);
  b[0] = 0xc3; // long header, fixed bit, type Initial, 4-byte packet number
  b.writeUInt32BE(version, 1);
  b[5] = 8; // DCID length; 8 random bytes follow
  b[14] = 8; // SCID length
  b[23] = 0; // no token
  b.writeUInt16BE(0x4000 | (size - 26), 24);
  return b;
}

async function quicJunk(): Promise<void> {
  const socket = dgram.createSocket('udp4');
  socket.on('error', () => undefined);
  const kinds: [string, () => Buffer, number][] = [
    ['quic-random-datagrams', () => randomBytes(1 + Math.floor(Math.random() * 1400)), n(3000)],
    ['quic-forged-initials', () => longHeaderPacket(1, 1200), n(400)],
    ['quic-short-header-unknown-cid', () => Buffer.concat([Buffer.from([0x40]), randomBytes(40)]), n(2000)],
    ['quic-unknown-version', () => longHeaderPacket(0x1a2a3a4a, 1200), n(200)],
  ];
  for (const [name, make, total] of kinds) {
    for (let i = 0; i < total && left() > 0; i++) {
      socket.send(make(), args.tlsPort, HOST);
      if (i % 100 === 99) await sleep(20); // the loopback's socket buffers, not the server, would drop a flood
    }
    count(name, 'sent', total);
  }
  socket.close();
}

// ─── Warp: WebTransport over HTTP/3, and bad tokens ───────────────────────────────────────────

const warpQuery = (token: string | undefined, extra = '') =>
  `?latency=2000${token === undefined ? '' : `&token=${encodeURIComponent(token)}`}${extra}`;

async function webTransportAbuse(): Promise<void> {
  const targets: [string, string][] = [
    ['wt-abandoned', `/warp/live${warpQuery(args.token)}`],
    ['wt-closed-at-once', `/warp/live${warpQuery(args.token)}`],
    ['wt-no-token', `/warp/live${warpQuery(undefined)}`],
    ['wt-wrong-token', `/warp/live${warpQuery('wrong')}`],
    ['wt-huge-token', `/warp/live${warpQuery('t'.repeat(8000))}`],
    ['wt-unknown-broadcast', `/warp/nosuch${warpQuery(args.token)}`],
    ['wt-unknown-track', `/warp/live${warpQuery(args.token, '&tracks=nope,../x')}`],
  ];
  await pool(n(6) * targets.length, 4, async (i) => {
    const [name, path] = targets[i % targets.length]!;
    try {
      const session = await connectWebTransport(`https://localhost:${args.tlsPort}${path}`, { ca, timeoutMs: 5000 });
      count(name, 'accepted');
      session.on('stream', () => undefined); // never read
      if (name === 'wt-closed-at-once') await session.close(0, 'bye');
      else kept.push(session);
    } catch (e) {
      const status = (e as { status?: number }).status;
      count(name, status === undefined ? message(e) : String(status));
    }
  });
}

// ─── the WebSocket fallback ───────────────────────────────────────────────────────────────────

function wsOpen(path: string, protocol = 'webtransport'): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${HOST}:${args.httpPort}${path}`, [protocol], {
      perMessageDeflate: false,
      handshakeTimeout: 5000,
      maxPayload: 64 << 20,
    });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      reject(new Error(String(res.statusCode)));
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

function wsClosed(ws: WebSocket, ms: number): Promise<string> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve('closed');
    const timer = setTimeout(() => resolve('still open'), ms);
    ws.once('close', (code) => {
      clearTimeout(timer);
      resolve(String(code));
    });
  });
}

async function webSocketAbuse(): Promise<void> {
  const path = `/warp/live${warpQuery(args.token)}`;
  const stream = (id: number, data: Uint8Array, fin = false) => encodeWsFrame({ type: 'stream', id, fin, data });
  const malformed: [string, (ws: WebSocket) => void][] = [
    ['unknown-type', (ws) => ws.send(Buffer.from([0x77, 1, 2, 3]))],
    ['truncated-varint', (ws) => ws.send(Buffer.from([WsFrameType.STREAM, 0xc0, 1]))],
    ['empty', (ws) => ws.send(Buffer.alloc(0))],
    ['server-uni-stream', (ws) => ws.send(stream(makeStreamId(0, false, true), randomBytes(10)))],
    ['unopened-server-bidi', (ws) => ws.send(stream(makeStreamId(50, true, true), randomBytes(10)))],
    ['after-fin', (ws) => (ws.send(stream(0, randomBytes(10), true)), ws.send(stream(0, randomBytes(10))))],
    ['text', (ws) => ws.send('hello')],
    ['oversized', (ws) => ws.send(randomBytes(2 * 1024 * 1024))],
    ['close-junk', (ws) => ws.send(Buffer.from([WsFrameType.APPLICATION_CLOSE, 0xff]))],
  ];
  await pool(n(4) * malformed.length, 6, async (i) => {
    const [name, send] = malformed[i % malformed.length]!;
    let ws: WebSocket;
    try {
      ws = await wsOpen(path);
    } catch (e) {
      return count('ws-malformed', message(e));
    }
    send(ws);
    count(`ws-malformed-${name}`, await wsClosed(ws, 2000));
    ws.terminate();
  });
  // More streams than allowed, each with data; a stream filled past its buffer; then never read.
  await pool(n(10), 5, async () => {
    let ws: WebSocket;
    try {
      ws = await wsOpen(path);
    } catch (e) {
      return count('ws-many-streams', message(e));
    }
    kept.push(ws);
    ws.pause();
    for (let k = 0; k < 150; k++) ws.send(stream(makeStreamId(k, k % 2 === 0, false), randomBytes(2000)));
    const uni = makeStreamId(200, false, false);
    for (let k = 0; k < 24; k++) ws.send(stream(uni, randomBytes(64 * 1024)));
    count('ws-many-streams', 'sent', 174);
  });
  // Refused before the upgrade, and the connection reset (RST) as soon as the refusal arrives.
  await pool(n(20), 5, async (i) => {
    const socket = connectTcp(false);
    socket.on('error', () => undefined);
    const target = [`/warp/live${warpQuery('nope')}`, '/multicast/gateway?group=1', '/nowhere'][i % 3]!;
    await new Promise<void>((resolve) => {
      socket.once('connect', () =>
        socket.write(
          `GET ${target} HTTP/1.1\r\nHost: ${HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: webtransport\r\n\r\n`,
        ),
      );
      socket.once('data', (d: Buffer) => {
        count('upgrade-refused-then-reset', /^HTTP\/1\.1 (\d{3})/.exec(d.toString('latin1'))?.[1] ?? 'answer');
        socket.resetAndDestroy();
        resolve();
      });
      socket.once('close', () => resolve());
      setTimeout(resolve, 3000);
    });
  });
  // Refused before the upgrade.
  const refusals: [string, string, string?][] = [
    ['ws-no-token', `/warp/live${warpQuery(undefined)}`],
    ['ws-wrong-token', `/warp/live${warpQuery('nope')}`],
    ['ws-huge-token', `/warp/live${warpQuery('t'.repeat(6000))}`],
    ['ws-unknown-broadcast', `/warp/other${warpQuery(args.token)}`],
    ['ws-wrong-protocol', path, 'chat'],
  ];
  await pool(n(6) * refusals.length, 8, async (i) => {
    const [name, p, protocol] = refusals[i % refusals.length]!;
    try {
      const ws = await wsOpen(p, protocol);
      count(name, 'accepted');
      ws.terminate();
    } catch (e) {
      count(name, message(e));
    }
  });
}

// ─── the multicast gateway ────────────────────────────────────────────────────────────────────

async function gatewayAbuse(): Promise<void> {
  const s = args.multicast[0];
  const base = `ws://${HOST}:${args.httpPort}/multicast/gateway`;
  const good = s ? `?group=${s.group}&port=${s.port}&source=${s.source}&session-id=${s.sessionId}` : '';
  const origin = `http://${HOST}:${args.httpPort}`;
  const attempts: [string, string, string][] = [
    ['gw-unadvertised', `${base}?group=232.1.2.3&port=5000&source=${HOST}&session-id=00`, origin],
    ['gw-missing-params', `${base}?group=232.1.2.3`, origin],
    ['gw-foreign-origin', `${base}${good}`, 'https://evil.example'],
    ['gw-sends', `${base}${good}`, origin],
    ['gw-never-reads', `${base}${good}`, origin],
  ];
  await pool(n(6) * attempts.length, 8, async (i) => {
    const [name, url, from] = attempts[i % attempts.length]!;
    await new Promise<void>((resolve) => {
      const ws = new WebSocket(url, { origin: from, perMessageDeflate: false, handshakeTimeout: 5000 });
      ws.once('unexpected-response', (_req, res) => {
        count(name, String(res.statusCode));
        ws.terminate();
        resolve();
      });
      ws.once('error', (e) => (count(name, message(e)), resolve()));
      ws.once('open', () => {
        if (name === 'gw-never-reads') {
          kept.push(ws);
          ws.pause();
          count(name, 'subscribed');
          return resolve();
        }
        for (let k = 0; k < 5; k++) ws.send(randomBytes(k === 4 ? 4096 : 100));
        void wsClosed(ws, 2000).then((code) => {
          count(name, code);
          ws.terminate();
          resolve();
        });
      });
    });
  });
}

// ─── the burst ────────────────────────────────────────────────────────────────────────────────

const attacks = [
  http1Malformed,
  http1Slow,
  http1NeverRead,
  http1Held,
  http2Abuse,
  http3Abuse,
  quicJunk,
  webTransportAbuse,
  webSocketAbuse,
  gatewayAbuse,
];
await Promise.race([
  Promise.all(attacks.map((attack) => attack().catch((e) => count(attack.name, `threw: ${message(e)}`)))),
  sleep(args.seconds * 1000),
]);
process.stdout.write(`${JSON.stringify(report)}\n`);
// Everything still open stays so until the soak kills this process: abandoned, not closed.
setInterval(() => kept.length, 60_000);
