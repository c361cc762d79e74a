/**
 * HTTP/3 (src/http3) client ↔ server on pushcast's QUIC endpoint over the loopback: 100 concurrent
 * requests answered byte-identical, methods with bodies, HEAD, a body past the bound (413), and a
 * malformed request (400) that leaves the connection serving.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { Http3Client, H3_ALPN, serveHttp3 } from '../../src/http3/index.js';
import { developmentCertificate } from '../../src/origin/index.js';
import { QuicEndpoint } from '../../src/quic/index.js';
import { decodeFieldSection, decodeHttp3Frames, encodeFieldSection, encodeHttp3Frame } from '../../src/wire/index.js';
import { Rng } from '../wire/support.js';

const dir = mkdtempSync(join(os.tmpdir(), 'pushcast-h3-'));
const certificate = developmentCertificate(dir);
test.after(() => rmSync(dir, { recursive: true, force: true }));

const rng = new Rng(21);
const resources = new Map<string, Uint8Array>(
  Array.from({ length: 20 }, (_, i): [string, Uint8Array] => [
    `/live/v/${i}.m4s`,
    rng.bytes(10_000 + rng.int(300_000)),
  ]),
);

async function setup() {
  const server = await QuicEndpoint.listen({
    alpn: [H3_ALPN],
    key: certificate.key,
    cert: certificate.cert,
    host: '127.0.0.1',
    port: 0,
  });
  server.on('connection', (conn) =>
    serveHttp3(conn, {
      maxBodyBytes: 100_000,
      onRequest: (req, res) => {
        if (req.method === 'POST')
          return void res
            .writeHead(200, { 'content-type': 'text/plain' })
            .end(createHash('sha256').update(req.body).digest('hex'));
        const body = resources.get(req.url);
        if (body) res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': String(body.length) }).end(body);
        else res.writeHead(404).end('not found\n');
      },
    }),
  );
  const conn = await QuicEndpoint.connect({
    alpn: [H3_ALPN],
    host: '127.0.0.1',
    port: server.address.port,
    serverName: 'localhost',
    ca: certificate.cert,
  });
  return {
    server,
    conn,
    client: new Http3Client(conn, `localhost:${server.address.port}`),
    close: async () => (await conn.close(), await server.close()),
  };
}

test('100 concurrent GETs over one HTTP/3 connection, byte-identical; 404; HEAD has no body', async (t) => {
  const s = await setup();
  t.after(s.close);
  assert.equal(s.conn.protocol, 'h3');
  const paths = Array.from({ length: 100 }, (_, i) => `/live/v/${i % 20}.m4s`);
  const replies = await Promise.all(paths.map((p) => s.client.request(p)));
  for (const [i, r] of replies.entries()) {
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, resources.get(paths[i]!));
    assert.equal(r.headers.find((h) => h.name === 'content-type')?.value, 'video/mp4');
  }
  assert.equal((await s.client.request('/nothing')).status, 404);
  const head = await s.client.request('/live/v/3.m4s', { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.body.length, 0);
  assert.equal(
    head.headers.find((h) => h.name === 'content-length')?.value,
    String(resources.get('/live/v/3.m4s')!.length),
  );
});

test('a request body within the bound reaches the handler; past it, 413', async (t) => {
  const s = await setup();
  t.after(s.close);
  const body = new Rng(2).bytes(90_000);
  const ok = await s.client.request('/echo-digest', { method: 'POST', body });
  assert.equal(ok.status, 200);
  assert.equal(new TextDecoder().decode(ok.body), createHash('sha256').update(body).digest('hex'));
  assert.equal((await s.client.request('/echo-digest', { method: 'POST', body: new Uint8Array(200_000) })).status, 413);
});

test('a malformed request (no :path; DATA before HEADERS) gets 400; the connection goes on serving', async (t) => {
  const s = await setup();
  t.after(s.close);
  for (const bytes of [
    encodeHttp3Frame({
      kind: 'headers',
      fieldSection: encodeFieldSection([
        { name: ':method', value: 'GET' },
        { name: ':scheme', value: 'https' },
      ]),
    }),
    encodeHttp3Frame({ kind: 'data', data: new Uint8Array(10) }),
  ]) {
    const stream = s.conn.openStream();
    const reply = stream.readAll();
    await stream.end(bytes);
    const frames = decodeHttp3Frames(await reply);
    const headers = frames.find((f) => f.kind === 'headers');
    assert.ok(headers && headers.kind === 'headers');
    assert.equal(decodeFieldSection(headers.fieldSection).find((f) => f.name === ':status')?.value, '400');
  }
  assert.equal((await s.client.request('/live/v/1.m4s')).status, 200);
});
