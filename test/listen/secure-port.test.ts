/**
 * HTTPS and HTTP/3 on one port number: on the IPv4 any-address, HTTP/3 answers on ::1 as well as
 * 127.0.0.1 (Chromium tries ::1 for localhost and does not fall back for QUIC); the WebTransport
 * details name that port and the certificate's hash; `altSvc` names HTTP/3 on it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { H3_ALPN, Http3Client } from '../../src/http3/index.js';
import { SecurePort, developmentCertificate } from '../../src/listen/index.js';
import { createNodeFetch } from '../../src/client/index.js';
import { QuicEndpoint } from '../../src/quic/index.js';

const dir = mkdtempSync(join(tmpdir(), 'pushcast-secure-port-'));
const certificate = developmentCertificate(dir);
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('HTTPS and HTTP/3 on one port number, HTTP/3 on IPv6 and IPv4 when listening on 0.0.0.0', async (t) => {
  const port = await SecurePort.listen({
    host: '0.0.0.0',
    port: 0,
    certificate,
    onRequest: (req, res) => void res.writeHead(200, { 'content-type': 'text/plain' }).end(`tcp ${req.httpVersion}`),
    http3: { onRequest: (_req, res) => void res.writeHead(200, { 'content-type': 'text/plain' }).end('udp') },
  });
  t.after(() => port.close());
  assert.ok(port.quic, 'HTTP/3 listens');
  assert.equal(port.quic.address.port, port.port, 'the UDP port has the TCP port number');
  assert.equal(port.altSvc, `h3=":${port.port}"; ma=86400`);
  assert.deepEqual(port.webTransportInfo, {
    port: port.port,
    serverCertificateHashes: [{ algorithm: 'sha-256', value: certificate.sha256.replaceAll(':', '').toLowerCase() }],
  });
  const h1 = await createNodeFetch({ ca: certificate.cert })(`https://127.0.0.1:${port.port}/`);
  assert.equal(await h1.text(), 'tcp 1.1', 'HTTPS speaks HTTP/1.1');
  const session = http2.connect(`https://127.0.0.1:${port.port}`, { ca: certificate.cert });
  const h2 = await new Promise<string>((resolve, reject) => {
    let body = '';
    const req = session.request({ ':path': '/' }).setEncoding('utf8');
    req.on('data', (d: string) => (body += d)).on('end', () => resolve(body));
    req.on('error', reject);
    req.end();
  });
  session.close();
  assert.equal(h2, 'tcp 2.0', 'and HTTP/2');
  for (const host of ['::1', '127.0.0.1']) {
    const conn = await QuicEndpoint.connect({
      alpn: [H3_ALPN],
      host,
      port: port.port,
      serverName: 'localhost',
      ca: certificate.cert,
    });
    try {
      const reply = await new Http3Client(conn, `localhost:${port.port}`).request('/');
      assert.equal(reply.status, 200, host);
      assert.equal(new TextDecoder().decode(reply.body), 'udp', host);
    } finally {
      await conn.close();
    }
  }
});

test('without http3, HTTPS alone: no QUIC, no Alt-Svc, no WebTransport details', async (t) => {
  const port = await SecurePort.listen({
    host: '127.0.0.1',
    port: 0,
    certificate,
    onRequest: (_req, res) => void res.end(),
  });
  t.after(() => port.close());
  assert.equal(port.quic, undefined);
  assert.equal(port.altSvc, undefined);
  assert.equal(port.webTransportInfo, undefined);
});
