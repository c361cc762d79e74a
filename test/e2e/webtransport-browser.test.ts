/**
 * Headless Chromium (QUIC not disabled) against pushcast's HTTP/3 and WebTransport:
 * - a WebTransport session trusted by `serverCertificateHashes` (the development certificate's hash):
 *   server streams arrive in priority order, client streams are echoed, datagrams go both ways, a
 *   server close code and reason reach the page, a server stream reset reaches it with its code;
 * - the origin's player page, MPD and segments over HTTP/3.
 */
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { H3_ALPN } from '../../src/http3/index.js';
import { developmentCertificate } from '../../src/origin/index.js';
import { WEB_ROOT } from '../../src/cli/serve.js';
import { QuicEndpoint } from '../../src/quic/index.js';
import { SessionRouter, serveHttp3Sessions, type Session } from '../../src/webtransport/index.js';
import { launchChromium } from '../support/browser.js';
import { Fixture, startOrigin } from '../support/live-fixture.js';

const dir = mkdtempSync(join(os.tmpdir(), 'pushcast-wt-browser-'));
const certificate = developmentCertificate(dir);
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** A page origin that is a secure context (http://localhost is one), serving an empty page. */
async function pageServer(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((_req, res) =>
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>pushcast test</title>'),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://localhost:${(server.address() as AddressInfo).port}/`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

const SEGMENTS = 6;
const SEGMENT_BYTES = 400_000;

test('Chromium opens a WebTransport session with serverCertificateHashes: priorities, streams both ways, datagrams, resets, close', async (t) => {
  const sessions: Session[] = [];
  const router = new SessionRouter().route('/wt', {
    session: (session) => {
      sessions.push(session);
      session.on(
        'stream',
        (stream) => void stream.readAll().then((bytes) => (stream.bidirectional ? stream.end(bytes) : undefined)),
      );
      session.on('datagram', (d) => {
        const text = new TextDecoder().decode(d);
        if (text === 'segments') {
          // Oldest first, newest most urgent: Warp's "newest first" delivery order.
          for (let i = 0; i < SEGMENTS; i++) {
            const body = new Uint8Array(SEGMENT_BYTES).fill(i);
            void session.openStream({ bidirectional: false, urgency: SEGMENTS - i }).end(body);
          }
        } else if (text === 'reset') {
          const stream = session.openStream({ bidirectional: false });
          void stream.write(new Uint8Array([0xaa])).then(() => setTimeout(() => stream.reset(77), 100));
        } else if (text === 'close') {
          void session.close(4242, 'broadcast over');
        } else {
          session.sendDatagram(new TextEncoder().encode(`echo:${text}`));
        }
      });
    },
  });
  const server = await QuicEndpoint.listen({
    alpn: [H3_ALPN],
    key: certificate.key,
    cert: certificate.cert,
    host: '127.0.0.1',
    port: 0,
  });
  server.on('connection', (conn) => serveHttp3Sessions(conn, { router }));
  const page0 = await pageServer();
  const browser = await launchChromium();
  t.after(async () => {
    await browser.close();
    await page0.close();
    await server.close();
  });
  const page = await browser.newPage();
  await page.goto(page0.url);
  const hash = certificate.sha256.replaceAll(':', '').toLowerCase();
  const result = await page.evaluate(
    async ({ url, hash, segments }) => {
      const value = new Uint8Array(hash.match(/../g)!.map((h) => parseInt(h, 16)));
      const wt = new WebTransport(url, { serverCertificateHashes: [{ algorithm: 'sha-256', value }] });
      await wt.ready;
      const writer = wt.datagrams.writable.getWriter();
      const datagrams = wt.datagrams.readable.getReader();
      const send = (text: string) => writer.write(new TextEncoder().encode(text));
      const readStream = async (readable: ReadableStream<Uint8Array>) => {
        const reader = readable.getReader();
        const parts: Uint8Array[] = [];
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          parts.push(value);
        }
        const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
        let at = 0;
        for (const p of parts) out.set(p, at), (at += p.length);
        return out;
      };

      // Datagrams: echoed (retried: they are unreliable).
      let echo = '';
      for (let i = 0; i < 20 && !echo; i++) {
        await send('hello');
        const got = await Promise.race([datagrams.read(), new Promise<undefined>((r) => setTimeout(r, 200))]);
        if (got?.value) echo = new TextDecoder().decode(got.value);
      }

      // A client bidirectional stream, echoed.
      const bidi = await wt.createBidirectionalStream();
      const sent = new Uint8Array(100_000).map((_, i) => i % 251);
      const w = bidi.writable.getWriter();
      await w.write(sent);
      await w.close();
      const back = await readStream(bidi.readable);
      const echoed = back.length === sent.length && back.every((b, i) => b === sent[i]);

      // Server streams: the order in which they complete.
      const incoming = wt.incomingUnidirectionalStreams.getReader();
      await send('segments');
      const order: number[] = [];
      const sizes: number[] = [];
      await Promise.all(
        Array.from({ length: segments }, async () => {
          const { value } = await incoming.read();
          const bytes = await readStream(value!);
          order.push(bytes[0]!);
          sizes.push(bytes.length);
        }),
      );

      // A reset server stream: its code reaches the reader.
      await send('reset');
      const { value: resetStream } = await incoming.read();
      let resetCode: number | null | undefined;
      try {
        await readStream(resetStream!);
      } catch (error) {
        resetCode = (error as WebTransportError).streamErrorCode;
      }

      await send('close');
      const closed = await wt.closed;
      return { echo, echoed, order, sizes, resetCode, closed };
    },
    { url: `https://127.0.0.1:${server.address.port}/wt?viewer=1`, hash, segments: SEGMENTS },
  );
  assert.equal(result.echo, 'echo:hello');
  assert.ok(result.echoed, 'the bidirectional stream came back byte-exact');
  assert.deepEqual(result.sizes, Array(SEGMENTS).fill(SEGMENT_BYTES));
  assert.deepEqual(result.order, [5, 4, 3, 2, 1, 0], 'the most urgent (newest) stream completed first');
  assert.equal(result.resetCode, 77);
  assert.deepEqual(result.closed, { closeCode: 4242, reason: 'broadcast over' });
  assert.equal(sessions.length, 1);
  assert.equal(sessions[0]!.path, '/wt?viewer=1');
  assert.equal(sessions[0]!.headers.origin, page0.url.slice(0, -1));
});

test('Chromium loads the player page, the MPD and segments from the origin over HTTP/3', async (t) => {
  const f = new Fixture();
  f.publish(f.video, 1);
  f.publish(f.video, 2);
  f.now += 4500;
  const o = await startOrigin(f, { webRoot: WEB_ROOT }, certificate, true, '0.0.0.0'); // as `pushcast serve` listens: localhost is ::1 to Chromium
  const port = Number(new URL(o.tls!).port);
  const spki = createHash('sha256')
    .update(new X509Certificate(certificate.cert).publicKey.export({ type: 'spki', format: 'der' }))
    .digest('base64');
  // The development certificate chains to no known root, and Chromium takes an Alt-Svc alternative only
  // from a certificate that does; so, as a developer would, QUIC is forced on for the origin and the
  // certificate's key is accepted. (The Alt-Svc advertisement itself is checked in test/origin/http3.test.ts.)
  const browser = await launchChromium([
    `--ignore-certificate-errors-spki-list=${spki}`,
    `--origin-to-force-quic-on=localhost:${port}`,
  ]);
  t.after(async () => {
    await browser.close();
    await o.origin.close();
  });
  const page = await browser.newPage();
  const base = `https://localhost:${port}`;
  await page.goto(`${base}/`);
  const result = await page.evaluate(async (base) => {
    const fetchOnce = async (path: string) => {
      const url = `${base}${path}`;
      const response = await fetch(url, { cache: 'no-store' });
      const bytes = new Uint8Array(await response.arrayBuffer());
      const entry = performance.getEntriesByName(url).at(-1) as PerformanceResourceTiming | undefined;
      return { status: response.status, length: bytes.length, protocol: entry?.nextHopProtocol };
    };
    const navigation = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
    return {
      page: navigation.nextHopProtocol,
      mpd: await fetchOnce('/live/manifest.mpd'),
      segment: await fetchOnce('/live/video-360p/2.m4s'),
    };
  }, base);
  assert.equal(result.page, 'h3');
  assert.deepEqual(result.mpd.protocol, 'h3');
  assert.equal(result.mpd.status, 200);
  assert.deepEqual(result.segment, { status: 200, length: 2000, protocol: 'h3' });
  const metrics = await o.metrics.registry.metrics();
  assert.match(metrics, /pushcast_http_requests_total\{route="page",method="GET",status="200",protocol="h3"\} [1-9]/); // the page, its script and style
  assert.match(
    metrics,
    /pushcast_http_requests_total\{route="segment",method="GET",status="200",protocol="h3"\} [1-9]/,
  );
});
