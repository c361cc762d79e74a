/**
 * HttpPort, the server under the origin, relay and gateway: an upgraded connection (the WebSocket
 * fallback, the multicast gateway) is no longer an HTTP request, so the header, request and idle
 * deadlines do not close it; a refused upgrade whose client resets the connection costs the server
 * that connection only.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { HttpPort, developmentCertificate } from '../../src/listen/index.js';

const dir = mkdtempSync(join(tmpdir(), 'pushcast-http-port-'));
const certificate = developmentCertificate(dir);
test.after(() => rmSync(dir, { recursive: true, force: true }));

for (const tls of [false, true]) {
  test(`${tls ? 'HTTPS' : 'HTTP'}: a WebSocket idle for longer than every deadline stays open`, async (t) => {
    const timeouts = { headersMs: 200, requestMs: 300, idleMs: 300, handshakeMs: 300 };
    const echo = new WebSocketServer({ noServer: true });
    const port = await HttpPort.listen({
      host: '127.0.0.1',
      port: 0,
      certificate: tls ? certificate : undefined,
      timeouts,
      onRequest: (_req, res) => void res.end(),
      onUpgrade: (req, socket, head) => {
        echo.handleUpgrade(req, socket, head, (ws) => ws.on('message', (m) => ws.send(m)));
        return true;
      },
    });
    t.after(() => port.close(0));
    const ws = new WebSocket(`${tls ? 'wss' : 'ws'}://127.0.0.1:${port.port}/`, { ca: certificate.cert });
    t.after(() => ws.close());
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    let closed = false;
    ws.on('close', () => (closed = true));
    // Past every deadline and past node's checks of them.
    await new Promise((r) => setTimeout(r, 3 * timeouts.requestMs + 1000));
    assert.equal(closed, false, 'the upgraded connection is still open');
    ws.send('still there');
    const reply = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no echo within 2 s')), 2000);
      ws.once('message', (m) => {
        clearTimeout(timer);
        resolve(String(m));
      });
    });
    assert.equal(reply, 'still there');
  });
}

test('a refused upgrade whose client resets the connection closes that socket; the server goes on', async (t) => {
  const upgraded: Duplex[] = [];
  const port = await HttpPort.listen({
    host: '127.0.0.1',
    port: 0,
    onRequest: (_req, res) => void res.end('ok'),
    onUpgrade: (req, socket) => {
      upgraded.push(socket);
      if (req.url === '/unknown') return false; // answered 404 by the port
      socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return true;
    },
  });
  t.after(() => port.close(0));
  for (const path of ['/refused', '/unknown']) {
    const client = net.connect(port.port, '127.0.0.1');
    client.on('error', () => undefined);
    await once(client, 'connect');
    client.write(
      `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
    );
    const [answer] = (await once(client, 'data')) as [Buffer];
    assert.match(answer.toString('latin1'), path === '/refused' ? /^HTTP\/1\.1 401 / : /^HTTP\/1\.1 404 /);
    // The server has ended its side and waits for the client's; the client resets instead (RST).
    const serverSocket = upgraded[upgraded.length - 1]!;
    const closed = new Promise((resolve) => serverSocket.once('close', resolve));
    client.resetAndDestroy();
    await Promise.race([
      closed,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`the server's socket for ${path} did not close within 5 s`)), 5000),
      ),
    ]);
  }
  const res = await fetch(`http://127.0.0.1:${port.port}/`);
  assert.equal(await res.text(), 'ok', 'the server still answers');
});
