/**
 * The origin's ports, cleartext and TLS alike: request lines node's parser lets through are refused
 * (HTTP/0.9, a non-1.x version in HTTP/1 framing, HTTP/1.1 without Host); a client that trickles its
 * header section, stalls its TLS handshake or idles is closed within the bound; and the request
 * deadline never cuts a live segment that streams for longer than it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import tls from 'node:tls';
import { HTTP_TIMEOUTS, HttpPort, developmentCertificate, type HttpTimeouts } from '../../src/listen/index.js';
import { Origin } from '../../src/origin/index.js';
import { Fixture } from '../support/live-fixture.js';

const dir = mkdtempSync(join(tmpdir(), 'pushcast-ports-'));
const certificate = developmentCertificate(dir);
after(() => rmSync(dir, { recursive: true, force: true }));

async function listen(f: Fixture, timeouts: Partial<HttpTimeouts> = {}) {
  const origin = new Origin({
    window: f.window,
    timeline: f.timeline,
    webRoot: '/nonexistent',
    lowLatency: true,
    chunkDuration: 0.5,
    targetLatency: 3,
  });
  const a = await origin.listen({ host: '127.0.0.1', port: 0, tlsPort: 0, certificate, timeouts });
  return { origin, http: Number(new URL(a.http!).port), https: Number(new URL(a.https!).port) };
}

type Port = 'cleartext' | 'tls';
const PORTS: Port[] = ['cleartext', 'tls'];

/** A raw HTTP/1.1 connection to one of the origin's ports (TLS with ALPN http/1.1). */
function connect(kind: Port, ports: { http: number; https: number }): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket =
      kind === 'cleartext'
        ? net.connect(ports.http, '127.0.0.1', () => resolve(socket))
        : tls.connect(
            {
              port: ports.https,
              host: '127.0.0.1',
              ca: certificate.cert,
              servername: 'localhost',
              ALPNProtocols: ['http/1.1'],
            },
            () => resolve(socket),
          );
    socket.once('error', reject);
  });
}

/** Everything the server sends until it closes the connection; rejects past `deadlineMs`. */
function untilClosed(socket: net.Socket, deadlineMs: number, what: string): Promise<{ text: string; ms: number }> {
  const start = Date.now();
  let text = '';
  socket.setEncoding('utf8').on('data', (d: string) => (text += d));
  socket.on('error', () => {});
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Error(
          `${what}: the origin kept the connection open for ${deadlineMs} ms (received ${JSON.stringify(text)})`,
        ),
      );
    }, deadlineMs);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, ms: Date.now() - start });
    });
  });
}

describe('origin ports: request lines node lets through are refused', () => {
  for (const kind of PORTS) {
    test(`${kind}: a request line without a version (HTTP/0.9) gets 400 and the connection closes`, async (t) => {
      const f = new Fixture();
      const o = await listen(f);
      t.after(() => o.origin.close());
      const socket = await connect(kind, o);
      const closed = untilClosed(socket, 5000, 'GET /time (HTTP/0.9)');
      socket.write('GET /time\r\n\r\n');
      const { text } = await closed;
      assert.match(text, /^HTTP\/1\.1 400 /, 'not the 200 a version-less GET /time used to get');
      assert.doesNotMatch(text, /\r\n\r\n\d{4}-\d\d-\d\dT/, 'no clock in the body');
    });

    test(`${kind}: HTTP/2.0 in HTTP/1 framing gets 505, HTTP/1.1 without Host 400`, async (t) => {
      const f = new Fixture();
      const o = await listen(f);
      t.after(() => o.origin.close());
      const h2Text = await connect(kind, o);
      const refused = untilClosed(h2Text, 5000, 'GET / HTTP/2.0');
      h2Text.write('GET /time HTTP/2.0\r\nHost: localhost\r\n\r\n');
      assert.match((await refused).text, /^HTTP\/1\.1 505 /);
      const noHost = await connect(kind, o);
      const answered = untilClosed(noHost, 5000, 'HTTP/1.1 without Host');
      noHost.write('GET /time HTTP/1.1\r\n\r\n');
      assert.match((await answered).text, /^HTTP\/1\.1 400 /);
      const fine = await connect(kind, o);
      const served = untilClosed(fine, 5000, 'HTTP/1.0');
      fine.write('GET /time HTTP/1.0\r\n\r\n');
      assert.match((await served).text, /^HTTP\/1\.1 200 /, 'HTTP/1.0 is still served');
    });
  }
});

describe('origin ports: deadlines for what a client owes', () => {
  const timeouts = { headersMs: 400, requestMs: 800, idleMs: 400, handshakeMs: 400 };
  /** node checks header and request deadlines every headersMs / 4; a second more for a loaded machine. */
  const within = (ms: number) => ms + ms / 4 + 1000;

  for (const kind of PORTS) {
    test(`${kind}: a client that trickles its header section is answered 408 and closed within the bound`, async (t) => {
      const f = new Fixture();
      const o = await listen(f, timeouts);
      t.after(() => o.origin.close());
      const socket = await connect(kind, o);
      const closed = untilClosed(socket, within(timeouts.headersMs), 'slow header section');
      socket.write('GET /time HTTP/1.1\r\nHost: localhost\r\n');
      // A header line every 50 ms: an idle timer alone would never fire.
      const trickle = setInterval(() => socket.writable && socket.write('X-Slow: 1\r\n'), 50);
      t.after(() => clearInterval(trickle));
      const { text } = await closed;
      assert.match(text, /^HTTP\/1\.1 408 /);
    });

    test(`${kind}: a client that never finishes its request body is answered 408 and closed within the bound`, async (t) => {
      const f = new Fixture();
      const o = await listen(f, timeouts);
      t.after(() => o.origin.close());
      const socket = await connect(kind, o);
      const closed = untilClosed(socket, within(timeouts.requestMs), 'unfinished request body');
      socket.write('POST /time HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n0123456789');
      const trickle = setInterval(() => socket.writable && socket.write('0'), 50);
      t.after(() => clearInterval(trickle));
      const { text } = await closed;
      assert.match(text, /^HTTP\/1\.1 405 /, 'the request itself is answered at once');
      assert.match(text, /HTTP\/1\.1 408 /, 'then the unfinished body ends the connection');
    });

    test(`${kind}: an idle keep-alive connection is closed within the bound`, async (t) => {
      const f = new Fixture();
      const o = await listen(f, timeouts);
      t.after(() => o.origin.close());
      const socket = await connect(kind, o);
      // node closes an idle HTTP/1.1 connection 1 s after the keep-alive time it advertises.
      const closed = untilClosed(socket, within(timeouts.idleMs) + 1000, 'idle keep-alive connection');
      socket.write('GET /time HTTP/1.1\r\nHost: localhost\r\n\r\n');
      const { text } = await closed;
      assert.match(text, /^HTTP\/1\.1 200 /, 'the request was answered, then the idle connection closed');
    });
  }

  test('tls: a TLS handshake that never starts is closed within the bound', async (t) => {
    const f = new Fixture();
    const o = await listen(f, timeouts);
    t.after(() => o.origin.close());
    const socket = await new Promise<net.Socket>((resolve) => {
      const s = net.connect(o.https, '127.0.0.1', () => resolve(s));
    });
    await untilClosed(socket, within(timeouts.handshakeMs), 'silent TLS client');
  });

  test('tls: an HTTP/2 session that asks for nothing is closed within the bound', async (t) => {
    const f = new Fixture();
    const o = await listen(f, timeouts);
    t.after(() => o.origin.close());
    const session = http2.connect(`https://127.0.0.1:${o.https}`, { ca: certificate.cert });
    session.on('error', () => {});
    const deadline = within(timeouts.idleMs) + 1000;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the idle HTTP/2 session was open after ${deadline} ms`)),
        deadline,
      );
      session.on('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  });

  test('the request deadline bounds receiving a request, never a live segment that streams for longer', async (t) => {
    const f = new Fixture();
    f.publish(f.video, 1);
    const growing = f.publish(f.video, 2, 1, 300, true);
    const o = await listen(f, { headersMs: 200, requestMs: 300 });
    t.after(() => o.origin.close());
    const session = http2.connect(`https://127.0.0.1:${o.https}`, { ca: certificate.cert });
    t.after(() => session.close());
    const overH2 = new Promise<Buffer>((resolve, reject) => {
      const parts: Buffer[] = [];
      const req = session.request({ ':path': '/live/video-360p/2.m4s' });
      req.on('data', (d: Buffer) => parts.push(d)).on('end', () => resolve(Buffer.concat(parts)));
      req.on('error', reject);
      req.end();
    });
    const overH1 = fetch(`http://127.0.0.1:${o.http}/live/video-360p/2.m4s`).then(async (r) =>
      Buffer.from(await r.arrayBuffer()),
    );
    // Twice the request deadline, and more than the deadline checks' period, between chunks.
    for (const size of [400, 500]) {
      await new Promise((r) => setTimeout(r, 2 * 300 + 100));
      f.chunk(f.video, growing, size);
    }
    f.video.completeSegment(growing);
    const whole = Buffer.from(growing.bytes());
    assert.equal(whole.byteLength, 1200);
    assert.deepEqual(await overH1, whole, 'HTTP/1.1: the whole segment');
    assert.deepEqual(await overH2, whole, 'HTTP/2: the whole segment');
  });

  test('every server gets the default deadlines unless told otherwise', async () => {
    for (const certificateOrNot of [undefined, certificate]) {
      const port = await HttpPort.listen({
        host: '127.0.0.1',
        port: 0,
        certificate: certificateOrNot,
        onRequest: () => {},
      });
      const server = port.server as unknown as Record<string, number>;
      assert.equal(server.headersTimeout, HTTP_TIMEOUTS.headersMs);
      assert.equal(server.requestTimeout, HTTP_TIMEOUTS.requestMs);
      assert.equal(server.keepAliveTimeout, HTTP_TIMEOUTS.idleMs);
      assert.ok(HTTP_TIMEOUTS.headersMs <= HTTP_TIMEOUTS.requestMs, 'node requires headers ≤ request');
      await port.close();
    }
  });
});
