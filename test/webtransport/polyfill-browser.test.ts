// needs: chromium — full lane only
/**
 * The unmodified `@moq/web-transport-ws` polyfill in headless Chromium against pushcast's
 * WebSocketSessionServer: the page reads server-opened unidirectional streams, gets a bidirectional
 * echo, stops a stream (its STOP_SENDING reaches the server's writer), and sees the server's close
 * code; the server sees the page's. Then src/web/transport/connect.ts: with no HTTP/3 server on the
 * port, the race ends on the WebSocket, which is remembered (module and sessionStorage) and tried
 * first next time.
 *
 * The page and its bundle (the polyfill and connect.ts, by esbuild) are served by an HTTPS server of
 * the test, with the development certificate; the same server takes the WebSocket upgrades.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'node:test';
import { build } from 'esbuild';
import type { Page } from 'playwright-core';
import { developmentCertificate } from '../../src/origin/index.js';
import { SessionRouter, StreamAbortedError, type SessionCloseInfo } from '../../src/webtransport/session.js';
import { WebSocketSessionServer } from '../../src/webtransport/websocket-server.js';
import { launchChromium } from '../support/browser.js';
import { until } from '../support/wait.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

async function bundle(): Promise<string> {
  const result = await build({
    stdin: {
      contents: [
        "import WebTransportWs from '@moq/web-transport-ws';",
        "import { connectTransport, forgetTransport, rememberedTransport } from './src/web/transport/connect.ts';",
        'Object.assign(window, { WebTransportWs, connectTransport, forgetTransport, rememberedTransport });',
      ].join('\n'),
      resolveDir: ROOT,
      loader: 'ts',
      sourcefile: 'polyfill-test-entry.ts',
    },
    bundle: true,
    format: 'esm',
    target: 'chrome110',
    write: false,
    logLevel: 'silent',
  });
  return result.outputFiles[0]!.text;
}

const PAGE =
  '<!doctype html><meta charset="utf-8"><title>polyfill</title><script type="module" src="/bundle.js"></script>';

interface Recorded {
  stopError?: unknown;
  closes: SessionCloseInfo[];
  uploads: string[];
}

async function setup(t: test.TestContext) {
  const dir = mkdtempSync(join(os.tmpdir(), 'pushcast-polyfill-'));
  const certificate = developmentCertificate(dir);
  const recorded: Recorded = { closes: [], uploads: [] };
  const router = new SessionRouter()
    .route('/echo', {
      session(session) {
        session.closed.then((info) => recorded.closes.push(info));
        for (let k = 0; k < 3; k++)
          void session
            .openStream({ bidirectional: false })
            .end(new TextEncoder().encode(`uni ${k} ${'x'.repeat(k * 70_000)}`));
        session.on('stream', (stream) => {
          void (async () => {
            if (stream.bidirectional) {
              for await (const chunk of stream) await stream.write(chunk);
              await stream.end();
              return;
            }
            const text = new TextDecoder().decode(await stream.readAll());
            recorded.uploads.push(text);
            if (text === 'close please') await session.close(4321, 'closed by the server');
          })().catch(() => undefined);
        });
      },
    })
    .route('/quiet', { session: (session) => void session.closed.then((info) => recorded.closes.push(info)) })
    .route('/stop', {
      session(session) {
        const stream = session.openStream({ bidirectional: false });
        void (async () => {
          const chunk = new Uint8Array(16 * 1024).fill(1);
          for (let i = 0; i < 10_000; i++) {
            await stream.write(chunk);
            await new Promise((resolve) => setTimeout(resolve, 2));
          }
        })().catch((error: unknown) => (recorded.stopError = error));
      },
    });
  const sessions = new WebSocketSessionServer(router);
  const bundled = await bundle();
  const server = createServer({ key: certificate.key, cert: certificate.cert }, (req, res) => {
    if (req.url === '/') res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
    else if (req.url === '/bundle.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundled);
    else res.writeHead(404).end();
  });
  server.on('upgrade', (req, socket, head) => {
    if (!sessions.handleUpgrade(req, socket, head)) socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const browser = await launchChromium(['--ignore-certificate-errors']);
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const console: string[] = [];
  page.on('console', (m) => console.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => console.push(`pageerror: ${e.message}`));
  t.after(async () => {
    if (console.length) t.diagnostic(`page console:\n${console.join('\n')}`);
    await browser.close();
    await sessions.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });
  await page.goto(`${origin}/`);
  await page.waitForFunction(() => 'connectTransport' in window);
  return { page, origin, recorded, sessions, console };
}

/** The page's globals, as the bundle sets them. */
type PageWindow = Window & {
  WebTransportWs: new (url: string) => WebTransport;
  connectTransport: typeof import('../../src/web/transport/connect.js').connectTransport;
  rememberedTransport: (url: string) => string | undefined;
};

test('the unmodified polyfill: server uni streams, a bidirectional echo, STOP_SENDING, close codes both ways', {
  timeout: 60_000,
}, async (t) => {
  const { page, origin, recorded, console } = await setup(t);

  const result = await page.evaluate(
    async ({ url }) => {
      const w = window as unknown as PageWindow;
      const transport = new w.WebTransportWs(url);
      await transport.ready;
      const uniReader = transport.incomingUnidirectionalStreams.getReader();
      const unis: string[] = [];
      for (let i = 0; i < 3; i++) {
        const { value } = await uniReader.read();
        unis.push(await new Response(value as ReadableStream<Uint8Array>).text());
      }
      const bidi = await transport.createBidirectionalStream();
      const writer = bidi.writable.getWriter();
      const payload = new Uint8Array(300_000).map((_, i) => (i * 7) % 251);
      for (let at = 0; at < payload.length; at += 100_000) await writer.write(payload.subarray(at, at + 100_000));
      await writer.close();
      const echo = new Uint8Array(await new Response(bidi.readable).arrayBuffer());
      const same = echo.length === payload.length && echo.every((b, i) => b === payload[i]);
      const command = (await transport.createUnidirectionalStream()).getWriter();
      await command.write(new TextEncoder().encode('close please'));
      await command.close();
      const closed = await transport.closed;
      return { unis: unis.map((u) => `${u.slice(0, 6)}:${u.length}`), same, echoLength: echo.length, closed };
    },
    { url: `${origin}/echo` },
  );
  assert.deepEqual(result.unis.sort(), ['uni 0 :6', 'uni 1 :70006', 'uni 2 :140006']);
  assert.equal(result.echoLength, 300_000);
  assert.ok(result.same, 'the echo is byte-exact');
  assert.deepEqual(
    result.closed,
    { closeCode: 4321, reason: 'closed by the server' },
    "the server's close code reaches the page",
  );
  assert.deepEqual(recorded.uploads, ['close please']);

  // The page closes: the server's session reports the page's code and reason.
  const before = recorded.closes.length;
  await page.evaluate(
    async ({ url }) => {
      const w = window as unknown as PageWindow;
      const transport = new w.WebTransportWs(url);
      await transport.ready;
      transport.close({ closeCode: 4002, reason: 'the page leaves' });
    },
    { url: `${origin}/quiet` },
  );
  await until('the close at the server', () => recorded.closes.length >= before + 1, { timeoutMs: 5000 });
  assert.deepEqual(recorded.closes.at(-1), { code: 4002, reason: 'the page leaves', by: 'peer' });

  // The page cancels a server stream after its first chunk: STOP_SENDING reaches the server's writer.
  const firstChunk = await page.evaluate(
    async ({ url }) => {
      const w = window as unknown as PageWindow;
      const transport = new w.WebTransportWs(url);
      await transport.ready;
      const { value: stream } = await transport.incomingUnidirectionalStreams.getReader().read();
      const reader = (stream as ReadableStream<Uint8Array>).getReader();
      const { value } = await reader.read();
      await reader.cancel();
      return value?.length ?? 0;
    },
    { url: `${origin}/stop` },
  );
  assert.equal(firstChunk, 16 * 1024);
  const error = await until('STOP_SENDING at the server', () => recorded.stopError, { timeoutMs: 5000 });
  assert.ok(error instanceof StreamAbortedError, String(error));
  assert.equal(error.by, 'peer-stop-sending');
  assert.equal(error.code, 0, 'the polyfill cancels with code 0');
  assert.deepEqual(
    console.filter((line) => line.startsWith('pageerror')),
    [],
    'no error in the page',
  );
});

test('connectTransport: with no HTTP/3 server the race ends on the WebSocket, which is remembered and tried first next time', {
  timeout: 60_000,
}, async (t) => {
  const { page, origin } = await setup(t);
  const url = `${origin}/quiet`;
  const race = (options: object) =>
    page.evaluate(
      async ({ url, options }) => {
        const w = window as unknown as PageWindow;
        const started = performance.now();
        const { transport, kind, tried } = await w.connectTransport(url, options);
        const ms = performance.now() - started;
        const polyfill = transport instanceof w.WebTransportWs;
        transport.close();
        return {
          kind,
          tried,
          polyfill,
          ms,
          native: typeof (globalThis as { WebTransport?: unknown }).WebTransport,
          remembered: w.rememberedTransport(url),
          stored: sessionStorage.getItem(`pushcast.transport:${url}`),
        };
      },
      { url, options },
    );

  // QUIC packets to the port vanish (a UDP socket that answers nothing, like a network that drops
  // UDP): WebTransport hangs in its handshake, the WebSocket starts after the head start and wins.
  const blackHole = createSocket('udp4');
  await new Promise<void>((resolve) => blackHole.bind(Number(new URL(origin).port), '127.0.0.1', resolve));
  const first = await race({ headStartMs: 400 });
  blackHole.close();
  assert.equal(first.native, 'function', 'Chromium has native WebTransport: the race is real');
  assert.equal(first.kind, 'websocket');
  assert.ok(first.polyfill);
  assert.deepEqual(first.tried, ['webtransport', 'websocket'], 'WebTransport first, the WebSocket after it');
  assert.ok(first.ms >= 390, `the WebSocket waited out the head start: ${first.ms} ms`);
  assert.equal(first.remembered, 'websocket');
  assert.equal(first.stored, 'websocket');

  // Nothing on the UDP port (ICMP port unreachable): WebTransport fails at once, and the WebSocket does
  // not wait for the rest of its head start.
  await page.evaluate(
    (url) => (window as unknown as { forgetTransport: (u: string) => void }).forgetTransport(url),
    url,
  );
  const refused = await race({ headStartMs: 10_000 });
  assert.deepEqual(refused.tried, ['webtransport', 'websocket']);
  assert.equal(refused.kind, 'websocket');
  assert.ok(refused.ms < 9_000, `${refused.ms} ms`);

  // Remembered: the WebSocket goes first; with a long head start, WebTransport is never started.
  const second = await race({ headStartMs: 10_000 });
  assert.equal(second.kind, 'websocket');
  assert.deepEqual(second.tried, ['websocket']);
  assert.ok(second.ms < 5_000, `${second.ms} ms`);

  // A new page of the same tab: the module's memory is gone, sessionStorage still knows.
  await reload(page);
  const third = await race({ headStartMs: 10_000 });
  assert.deepEqual(third.tried, ['websocket']);
  assert.equal(third.kind, 'websocket');

  // The WebSocket somewhere else than the WebTransport URL's host and port (here: port 1, where nothing listens).
  const elsewhere = await page.evaluate(
    async ({ origin }) => {
      const w = window as unknown as PageWindow;
      const { transport, kind } = await w.connectTransport('https://127.0.0.1:1/quiet', {
        forceTransport: 'websocket',
        webSocketUrl: `${origin.replace('https:', 'wss:')}/quiet`,
      });
      transport.close();
      return kind;
    },
    { origin },
  );
  assert.equal(elsewhere, 'websocket');

  // Forced: only that transport; a forced WebTransport fails (nothing listens for QUIC) and says why.
  const forced = await race({ forceTransport: 'websocket' });
  assert.deepEqual(forced.tried, ['websocket']);
  const failure = await page.evaluate(
    async ({ url }) => {
      const w = window as unknown as PageWindow;
      try {
        await w.connectTransport(url, { forceTransport: 'webtransport' });
        return 'connected';
      } catch (error) {
        return String(error);
      }
    },
    { url },
  );
  assert.match(failure, /no transport to .*webtransport:/);
  t.diagnostic(
    `QUIC dropped: WebSocket won after ${first.ms.toFixed(0)} ms (head start 400 ms); QUIC refused: ${refused.ms.toFixed(0)} ms; remembered: ${second.ms.toFixed(0)} ms`,
  );
});

async function reload(page: Page): Promise<void> {
  await page.reload();
  await page.waitForFunction(() => 'connectTransport' in window);
}
