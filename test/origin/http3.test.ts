/**
 * The origin over HTTP/3 (RFC 9114) on the UDP port of its HTTPS port: the same handler answers, so
 * MPD, init and segments are byte-identical to HTTPS; a growing segment streams chunk by chunk and
 * ends when it completes; HTTPS responses advertise the alternative (`Alt-Svc: h3`, RFC 7838) before a
 * rendition's own; the WebTransport details name the certificate hash a page may trust.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { H3_ALPN, Http3Client } from '../../src/http3/index.js';
import { WEBTRANSPORT_INFO_PATH } from '../../src/media/index.js';
import { developmentCertificate } from '../../src/origin/index.js';
import { createNodeFetch } from '../../src/client/index.js';
import { QuicEndpoint } from '../../src/quic/index.js';
import { Fixture, startOrigin } from '../support/live-fixture.js';
import { within } from '../support/wait.js';
import { Http3FrameReader, decodeFieldSection, encodeFieldSection, encodeHttp3Frame } from '../../src/wire/index.js';

const dir = mkdtempSync(join(os.tmpdir(), 'pushcast-origin-h3-'));
const certificate = developmentCertificate(dir);
test.after(() => rmSync(dir, { recursive: true, force: true }));

async function setup(t: test.TestContext, altSvc?: (track: string) => string | undefined) {
  const f = new Fixture();
  f.publish(f.video, 1);
  f.publish(f.audio, 1);
  f.now += 2500;
  const o = await startOrigin(f, { altSvc }, certificate, true);
  const port = Number(new URL(o.tls!).port);
  const conn = await QuicEndpoint.connect({
    alpn: [H3_ALPN],
    host: '127.0.0.1',
    port,
    serverName: 'localhost',
    ca: certificate.cert,
  });
  const h3 = new Http3Client(conn, `localhost:${port}`);
  const https = createNodeFetch({ ca: certificate.cert });
  t.after(async () => {
    await conn.close();
    await o.origin.close();
  });
  return { f, o, port, conn, h3, https };
}

const header = (r: { headers: { name: string; value: string }[] }, name: string) =>
  r.headers.find((h) => h.name === name)?.value;

test('MPD, init and a complete segment over HTTP/3 equal their HTTPS responses; HEAD and 404 too', async (t) => {
  const s = await setup(t);
  for (const path of [
    '/live/manifest.mpd',
    '/live/video-360p/init.mp4',
    '/live/video-360p/1.m4s',
    '/live/audio-128k/1.m4s',
  ]) {
    const [h3, tls] = await Promise.all([s.h3.request(path), s.https(`https://localhost:${s.port}${path}`)]);
    assert.equal(h3.status, 200, path);
    assert.deepEqual(h3.body, new Uint8Array(await tls.arrayBuffer()), path);
    assert.equal(header(h3, 'content-type'), tls.headers.get('content-type'));
  }
  const head = await s.h3.request('/live/video-360p/1.m4s', { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.body.length, 0);
  assert.equal(header(head, 'content-length'), '2000');
  assert.equal((await s.h3.request('/live/video-360p/99.m4s')).status, 404);
  const ranged = await s.h3.request('/live/video-360p/1.m4s', { headers: { range: 'bytes=10-19' } });
  assert.equal(ranged.status, 206);
  assert.equal(header(ranged, 'content-range'), 'bytes 10-19/2000');
  const metrics = await (await s.https(`${s.o.tls}/metrics`)).text();
  assert.match(metrics, /pushcast_http_requests_total\{route="segment",method="GET",status="200",protocol="h3"\} 2/);
});

test('a growing segment streams over HTTP/3 as its chunks arrive and ends when it completes', async (t) => {
  const s = await setup(t);
  const growing = s.f.publish(s.f.video, 2, 1, 1000, true);
  // The request by hand, so that the body is read frame by frame as it arrives.
  const stream = s.conn.openStream();
  await stream.end(
    encodeHttp3Frame({
      kind: 'headers',
      fieldSection: encodeFieldSection([
        { name: ':method', value: 'GET' },
        { name: ':scheme', value: 'https' },
        { name: ':authority', value: `localhost:${s.port}` },
        { name: ':path', value: '/live/video-360p/2.m4s' },
      ]),
    }),
  );
  const incoming = stream[Symbol.asyncIterator]();
  const reader = new Http3FrameReader();
  let status: string | undefined;
  const body: Uint8Array[] = [];
  let ended = false;
  /** Reads frames as they arrive while `more()` holds, or to the end of the stream. */
  const readWhile = async (more: () => boolean) => {
    while (more()) {
      const next = await incoming.next();
      if (next.done) {
        ended = true;
        return;
      }
      reader.push(next.value);
      for (let frame; (frame = reader.next()) !== undefined; ) {
        if (frame.kind === 'headers')
          status = decodeFieldSection(frame.fieldSection).find((f) => f.name === ':status')?.value;
        else if (frame.kind === 'data') body.push(frame.data.slice());
      }
    }
  };
  const bodyBytes = () => new Uint8Array(Buffer.concat(body));
  const firstChunk = growing.chunks[0]!.bytes;
  await within(
    'the first chunk over HTTP/3',
    readWhile(() => bodyBytes().length < firstChunk.length),
  );
  assert.equal(status, '200');
  assert.deepEqual(bodyBytes(), firstChunk, 'the first chunk arrives before the segment is complete');
  assert.equal(ended, false, 'the response is still open');

  s.f.chunk(s.f.video, growing, 1500);
  s.f.video.completeSegment(growing);
  await within(
    'the end of the segment over HTTP/3',
    readWhile(() => true),
  );
  assert.deepEqual(bodyBytes(), growing.bytes());
  assert.equal(bodyBytes().length, 2500);
});

test("HTTPS responses advertise HTTP/3 first, then a rendition's own alternative; the WebTransport details carry the certificate hash", async (t) => {
  const s = await setup(t, (track) => (track === 'video-360p' ? 'h3m-07="232.1.1.1:5000"; ma=60' : undefined));
  const mpd = await s.https(`${s.o.tls}/live/manifest.mpd`);
  assert.equal(mpd.headers.get('alt-svc'), `h3=":${s.port}"; ma=86400`);
  const segment = await s.https(`${s.o.tls}/live/video-360p/1.m4s`);
  assert.equal(segment.headers.get('alt-svc'), `h3=":${s.port}"; ma=86400, h3m-07="232.1.1.1:5000"; ma=60`);
  const overH3 = await s.h3.request('/live/video-360p/1.m4s');
  assert.equal(header(overH3, 'alt-svc'), 'h3m-07="232.1.1.1:5000"; ma=60', 'no h3 advertisement over HTTP/3 itself');
  const cleartext = await fetch(`${s.o.base}/live/manifest.mpd`);
  assert.equal(
    cleartext.headers.get('alt-svc'),
    null,
    'not over cleartext HTTP (RFC 7838 §2.1: browsers take it only from https)',
  );
  const info = (await (await s.https(`${s.o.tls}${WEBTRANSPORT_INFO_PATH}`)).json()) as {
    port: number;
    serverCertificateHashes: { algorithm: string; value: string }[];
  };
  assert.equal(info.port, s.port);
  assert.deepEqual(info.serverCertificateHashes, [
    { algorithm: 'sha-256', value: certificate.sha256.replaceAll(':', '').toLowerCase() },
  ]);
});
