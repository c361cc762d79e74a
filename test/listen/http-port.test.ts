/**
 * HttpPort, the server under the origin, relay and gateway: an upgraded connection (the WebSocket
 * fallback, the multicast gateway) is no longer an HTTP request, so the header, request and idle
 * deadlines do not close it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
