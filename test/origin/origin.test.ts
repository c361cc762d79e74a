import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http2 from 'node:http2';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { WebTransportInfo } from '../../src/listen/index.js';
import {
  DELIVERY_PATH,
  LiveTimeline,
  LiveWindow,
  PLAYER_SW_PATH,
  parseDeliveryDescription,
  type DeliveryDescription,
} from '../../src/media/index.js';
import type { OriginMetrics } from '../../src/metrics/index.js';
import { Origin, developmentCertificate } from '../../src/origin/index.js';
import { playerFile } from '../../src/origin/player-pages.js';
import { MAX_DIGESTS, OriginResponses } from '../../src/origin/responses.js';
import type { Request, Response } from '../../src/origin/route.js';
import { Fixture, VIDEO, startOrigin } from '../support/live-fixture.js';
import { until, untilEvent, within } from '../support/wait.js';
import { validateMpd } from '../support/xmllint.js';

describe('origin: segments over HTTP/1.1', () => {
  const f = new Fixture();
  let base: string;
  let origin: Origin;
  let metrics: OriginMetrics;
  before(async () => {
    for (let n = 1; n <= 6; n++) f.publish(f.video, n);
    f.publish(f.audio, 6);
    ({ origin, base, metrics } = await startOrigin(f));
  });
  after(() => origin.close());

  test('GET a segment: its bytes, media type, length, ETag, immutable caching and CORS', async () => {
    const res = await fetch(`${base}/live/video-360p/5.m4s`);
    assert.equal(res.status, 200);
    assert.deepEqual(new Uint8Array(await res.arrayBuffer()), f.video.get(5)!.bytes());
    assert.equal(res.headers.get('content-type'), 'video/mp4');
    assert.equal(res.headers.get('content-length'), '2000');
    assert.match(res.headers.get('etag')!, /^"[^"]+"$/);
    assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    assert.equal(res.headers.get('accept-ranges'), 'bytes');
    const audio = await fetch(`${base}/live/audio-128k/6.m4s`);
    assert.equal(audio.headers.get('content-type'), 'audio/mp4');
  });

  test('HEAD has the headers of GET and no body', async () => {
    const get = await fetch(`${base}/live/video-360p/4.m4s`);
    await get.arrayBuffer();
    const head = await fetch(`${base}/live/video-360p/4.m4s`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), get.headers.get('content-length'));
    assert.equal(head.headers.get('etag'), get.headers.get('etag'));
    assert.equal((await head.arrayBuffer()).byteLength, 0);
  });

  test('a byte range is answered 206 with exactly those bytes; a range past the end 416', async () => {
    const whole = f.video.get(5)!.bytes();
    const part = await fetch(`${base}/live/video-360p/5.m4s`, { headers: { Range: 'bytes=100-199' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), 'bytes 100-199/2000');
    assert.deepEqual(new Uint8Array(await part.arrayBuffer()), whole.subarray(100, 200));
    const suffix = await fetch(`${base}/live/video-360p/5.m4s`, { headers: { Range: 'bytes=-10' } });
    assert.deepEqual(new Uint8Array(await suffix.arrayBuffer()), whole.subarray(1990));
    const past = await fetch(`${base}/live/video-360p/5.m4s`, { headers: { Range: 'bytes=5000-' } });
    assert.equal(past.status, 416);
    assert.equal(past.headers.get('content-range'), 'bytes */2000');
    const several = await fetch(`${base}/live/video-360p/5.m4s`, { headers: { Range: 'bytes=0-1,5-6' } });
    assert.equal(several.status, 200, 'several ranges: the whole segment');
    assert.equal((await several.arrayBuffer()).byteLength, 2000);
  });

  test('Repr-Digest (RFC 9530): the SHA-256 of the whole segment, on the 200 and on a 206 alike; the init segment too', async () => {
    const digestOf = (bytes: Uint8Array) => `sha-256=:${createHash('sha256').update(bytes).digest('base64')}:`;
    const whole = f.video.get(5)!.bytes();
    const get = await fetch(`${base}/live/video-360p/5.m4s`);
    assert.deepEqual(new Uint8Array(await get.arrayBuffer()), whole);
    assert.equal(get.headers.get('repr-digest'), digestOf(whole));
    const part = await fetch(`${base}/live/video-360p/5.m4s`, { headers: { Range: 'bytes=100-199' } });
    await part.arrayBuffer();
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('repr-digest'), digestOf(whole), 'the representation, not the part');
    const init = await fetch(`${base}/live/video-360p/init.mp4`);
    assert.equal(init.headers.get('repr-digest'), digestOf(new Uint8Array(await init.arrayBuffer())));
    assert.match(
      get.headers.get('access-control-expose-headers') ?? '',
      /Repr-Digest/,
      'pages of other origins may read it',
    );
  });

  test('conditional requests: If-None-Match gives 304, a stale If-Range gives the whole segment', async () => {
    const first = await fetch(`${base}/live/video-360p/5.m4s`);
    await first.arrayBuffer();
    const etag = first.headers.get('etag')!;
    const again = await fetch(`${base}/live/video-360p/5.m4s`, { headers: { 'If-None-Match': etag } });
    assert.equal(again.status, 304);
    const stale = await fetch(`${base}/live/video-360p/5.m4s`, {
      headers: { Range: 'bytes=0-9', 'If-Range': '"other"' },
    });
    assert.equal(stale.status, 200);
    assert.equal((await stale.arrayBuffer()).byteLength, 2000);
    const fresh = await fetch(`${base}/live/video-360p/5.m4s`, { headers: { Range: 'bytes=0-9', 'If-Range': etag } });
    assert.equal(fresh.status, 206);
    await fresh.arrayBuffer();
  });

  test('404 without a cacheable body outside the window, for unknown tracks and for segments that do not exist yet', async () => {
    for (const path of [
      '/live/video-360p/1.m4s',
      '/live/video-999p/5.m4s',
      '/live/video-360p/9.m4s',
      '/live/video-360p/99999.m4s',
    ]) {
      const res = await fetch(`${base}${path}`);
      assert.equal(res.status, 404, path);
      assert.equal(res.headers.get('cache-control'), 'no-store', path);
      await res.arrayBuffer();
    }
    const head = await fetch(`${base}/live/video-360p/9.m4s`, { method: 'HEAD' });
    assert.equal(head.status, 404);
  });

  test('the time-shift buffer keeps only the newest segments', () => {
    assert.equal(f.video.get(1), undefined, 'evicted');
    assert.ok(f.video.get(4));
  });

  test('init segments, the clock, metrics, CORS preflight and methods', async () => {
    const init = await fetch(`${base}/live/video-360p/init.mp4`);
    assert.equal(init.status, 200);
    assert.deepEqual(new Uint8Array(await init.arrayBuffer()), f.video.init);
    const time = await (await fetch(`${base}/time`)).text();
    assert.ok(Math.abs(Date.parse(time) - Date.now()) < 5000, `UTCTiming clock ${time}`);
    const pre = await fetch(`${base}/live/video-360p/5.m4s`, {
      method: 'OPTIONS',
      headers: { Origin: 'https://example.com', 'Access-Control-Request-Headers': 'range' },
    });
    assert.equal(pre.status, 204);
    assert.match(pre.headers.get('access-control-allow-headers')!, /Range/);
    const post = await fetch(`${base}/live/video-360p/5.m4s`, { method: 'POST', body: 'x' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD, OPTIONS');
    const text = await (await fetch(`${base}/metrics`)).text();
    assert.match(
      text,
      /pushcast_http_requests_total\{route="segment",method="GET",status="206",protocol="http\/1\.1"\} \d+/,
    );
    assert.match(text, /pushcast_process_resident_memory_bytes \d+/);
    void metrics;
  });

  test('the MPD validates against the schema, and its clock URL never echoes a hostile Host header', async () => {
    const res = await fetch(`${base}/live/manifest.mpd`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/dash+xml');
    const mpd = await res.text();
    const v = validateMpd(mpd);
    assert.ok(v.valid, v.output);
    assert.match(mpd, new RegExp(`value="${base}/time"`));
    assert.match(mpd, /availabilityTimeOffset="1.5"/);
    assert.match(mpd, /<Latency referenceId="0" target="3000"/);

    const { request } = await import('node:http');
    const hostile = await new Promise<string>((resolve, reject) => {
      const req = request(`${base}/live/manifest.mpd`, { headers: { Host: 'evil"><x y="' } }, (r) => {
        let body = '';
        r.setEncoding('utf8')
          .on('data', (d) => (body += d))
          .on('end', () => resolve(body));
      });
      req.on('error', reject);
      req.end();
    });
    assert.match(hostile, /value="http:\/\/localhost\/time"/);
    assert.ok(validateMpd(hostile).valid);
  });
});

describe('origin: low-latency delivery of segments in progress', () => {
  test('a segment being produced is streamed chunk by chunk and ends when it completes', async () => {
    const f = new Fixture();
    f.publish(f.video, 1);
    const growing = f.publish(f.video, 2, 1, 500, true);
    const { origin, base } = await startOrigin(f);
    try {
      const res = await fetch(`${base}/live/video-360p/2.m4s`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-length'), null, 'length unknown while the segment grows');
      assert.equal(res.headers.get('repr-digest'), null, 'and so its digest');
      const reader = res.body!.getReader();
      const first = await reader.read();
      assert.deepEqual(first.value, growing.chunks[0]!.bytes, 'the first chunk arrives before the segment is complete');
      f.chunk(f.video, growing, 700);
      f.video.completeSegment(growing);
      const rest: Uint8Array[] = [];
      for (let r = await reader.read(); !r.done; r = await reader.read()) rest.push(r.value);
      assert.deepEqual(Buffer.concat(rest), Buffer.from(growing.chunks[1]!.bytes));
    } finally {
      await origin.close();
    }
  });

  test('the next segment, once announced by availabilityTimeOffset, is held until it starts', async () => {
    const f = new Fixture();
    f.publish(f.video, 1);
    const { origin, base } = await startOrigin(f);
    try {
      // Wall clock at the start of segment 2 (+ one chunk): announced to low-latency clients.
      f.now = f.timeline.availabilityStartTime! + 2.5 * 1000;
      const pending = fetch(`${base}/live/video-360p/2.m4s`);
      await until('the request for segment 2 held', () => origin.stats().heldRequests === 1);
      const s = f.publish(f.video, 2, 2, 300);
      const res = await pending;
      assert.equal(res.status, 200);
      assert.deepEqual(new Uint8Array(await res.arrayBuffer()), s.bytes());
      const notYet = await fetch(`${base}/live/video-360p/4.m4s`);
      assert.equal(notYet.status, 404, 'two ahead is not announced');
      await notYet.arrayBuffer();
    } finally {
      await origin.close();
    }
  });

  test('a closed range of a growing segment is answered as soon as its last byte exists, its length unknown (*)', async () => {
    const f = new Fixture();
    const s = f.publish(f.video, 1, 1, 400, true);
    const { origin, base } = await startOrigin(f);
    try {
      // Within what exists: at once.
      const now = await fetch(`${base}/live/video-360p/1.m4s`, { headers: { Range: 'bytes=100-199' } });
      assert.equal(now.status, 206);
      assert.equal(now.headers.get('content-range'), 'bytes 100-199/*');
      assert.deepEqual(new Uint8Array(await now.arrayBuffer()), s.bytes().subarray(100, 200));
      // Past it: held until the chunk that holds its last byte, still growing after it.
      const pending = fetch(`${base}/live/video-360p/1.m4s`, { headers: { Range: 'bytes=300-599' } });
      await until('the range request held', () => origin.stats().heldRequests === 1);
      f.chunk(f.video, s, 400);
      const res = await pending;
      assert.equal(res.status, 206);
      assert.equal(res.headers.get('content-range'), 'bytes 300-599/*');
      assert.deepEqual(new Uint8Array(await res.arrayBuffer()), s.bytes().subarray(300, 600));
      assert.equal(origin.stats().heldRequests, 0);
    } finally {
      await origin.close();
    }
  });

  test('an open range of a growing segment waits for the whole segment', async () => {
    const f = new Fixture();
    const s = f.publish(f.video, 1, 1, 400, true);
    const { origin, base } = await startOrigin(f);
    try {
      const pending = fetch(`${base}/live/video-360p/1.m4s`, { headers: { Range: 'bytes=300-' } });
      await until('the range request held', () => origin.stats().heldRequests === 1);
      f.chunk(f.video, s, 400);
      f.video.completeSegment(s);
      const res = await pending;
      assert.equal(res.status, 206);
      assert.equal(res.headers.get('content-range'), 'bytes 300-799/800');
      assert.deepEqual(new Uint8Array(await res.arrayBuffer()), s.bytes().subarray(300));
    } finally {
      await origin.close();
    }
  });

  test('an HTTP/1.0 request for a growing segment is answered whole, with a length, once it completes', async () => {
    const f = new Fixture();
    const s = f.publish(f.video, 1, 1, 400, true);
    const { origin, base } = await startOrigin(f);
    try {
      const { connect } = await import('node:net');
      const url = new URL(base);
      const socket = connect(Number(url.port), url.hostname);
      socket.write('GET /live/video-360p/1.m4s HTTP/1.0\r\nHost: localhost\r\n\r\n');
      const parts: Buffer[] = [];
      socket.on('data', (d: Buffer) => parts.push(d));
      await until('the HTTP/1.0 request held', () => origin.stats().heldRequests === 1);
      assert.equal(parts.length, 0, 'nothing is sent while the segment grows');
      f.chunk(f.video, s, 400);
      f.video.completeSegment(s);
      await new Promise((r) => socket.on('close', r));
      const response = Buffer.concat(parts);
      const split = response.indexOf('\r\n\r\n');
      const head = response.subarray(0, split).toString();
      assert.match(head, /^HTTP\/1\.1 200 OK/);
      assert.match(head, /Content-Length: 800/i);
      assert.deepEqual(new Uint8Array(response.subarray(split + 4)), s.bytes());
    } finally {
      await origin.close();
    }
  });

  test('with a public URL, the MPD names it instead of the request Host', async () => {
    const f = new Fixture();
    f.publish(f.video, 1);
    f.publish(f.audio, 1);
    const { origin, base } = await startOrigin(f, { publicUrl: 'https://cdn.example.com' });
    try {
      const mpd = await (await fetch(`${base}/live/manifest.mpd`)).text();
      assert.match(mpd, /value="https:\/\/cdn\.example\.com\/time"/);
    } finally {
      await origin.close();
    }
  });

  test('requests held for live segments are bounded: beyond the limit the origin answers 503 at once', async () => {
    const f = new Fixture();
    const s = f.publish(f.video, 1, 1, 100, true);
    const { origin, base, metrics } = await startOrigin(f, { maxHeldRequests: 2 });
    try {
      const held = [fetch(`${base}/live/video-360p/1.m4s`), fetch(`${base}/live/video-360p/1.m4s`)];
      const heldResponses = await Promise.all(held);
      const refused = await fetch(`${base}/live/video-360p/1.m4s`);
      assert.equal(refused.status, 503);
      assert.equal(refused.headers.get('retry-after'), '1');
      await refused.arrayBuffer();
      assert.equal((await metrics.heldRequestsRefused.get()).values[0]!.value, 1);
      f.video.completeSegment(s);
      for (const r of heldResponses) assert.equal((await r.arrayBuffer()).byteLength, 100);
      const after = await fetch(`${base}/live/video-360p/1.m4s`);
      assert.equal(after.status, 200, 'complete segments are not held and not limited');
      await after.arrayBuffer();
    } finally {
      await origin.close();
    }
  });

  test('closing the origin aborts responses for unfinished segments instead of hanging or faking their end', async () => {
    const f = new Fixture();
    f.publish(f.video, 1, 1, 100, true);
    const { origin, base } = await startOrigin(f);
    const res = await fetch(`${base}/live/video-360p/1.m4s`);
    const body = res.arrayBuffer();
    await origin.close();
    await assert.rejects(body, 'the client sees an incomplete response, not a short segment');
  });

  test('the MPD is 503 with Retry-After until the stream is live', async () => {
    const window = new LiveWindow({ timeShiftBufferDepth: 6 });
    window.addTrack(VIDEO);
    const origin = new Origin({
      window,
      timeline: new LiveTimeline(2),
      webRoot: '/nonexistent',
      lowLatency: true,
      chunkDuration: 0.5,
      targetLatency: 3,
    });
    const { http: base } = await origin.listen({ host: '127.0.0.1', port: 0, tlsPort: null });
    try {
      const res = await fetch(`${base}/live/manifest.mpd`);
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('retry-after'), '1');
      await res.arrayBuffer();
    } finally {
      await origin.close();
    }
  });
});

describe('origin: player pages', () => {
  test('the Service Worker at /player/sw.js may take the whole origin (Service-Worker-Allowed: /); /multicast/sw.js stays', async (t) => {
    const webRoot = mkdtempSync(join(tmpdir(), 'pushcast-web-'));
    t.after(() => rmSync(webRoot, { recursive: true, force: true }));
    writeFileSync(join(webRoot, 'sw.js'), '// the worker\n');
    const f = new Fixture();
    f.publish(f.video, 1);
    const { origin, base } = await startOrigin(f, { webRoot });
    t.after(() => origin.close());
    assert.equal(PLAYER_SW_PATH, '/player/sw.js');
    const sw = await fetch(`${base}${PLAYER_SW_PATH}`);
    assert.equal(sw.status, 200);
    assert.equal(sw.headers.get('service-worker-allowed'), '/');
    assert.equal(sw.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.equal(sw.headers.get('cache-control'), 'no-cache');
    assert.equal(await sw.text(), '// the worker\n');
    const old = await fetch(`${base}/multicast/sw.js`);
    assert.equal(old.status, 200);
    assert.equal(old.headers.get('service-worker-allowed'), null, 'its scope stays /multicast/');
    assert.equal(await old.text(), '// the worker\n');
  });
});

describe('origin: connection bound', () => {
  test('connections beyond maxConnections are closed at once; the others are served', async () => {
    const f = new Fixture();
    f.publish(f.video, 1);
    const origin = new Origin({
      window: f.window,
      timeline: f.timeline,
      webRoot: '/nonexistent',
      lowLatency: true,
      chunkDuration: 0.5,
      targetLatency: 3,
    });
    const { http: base } = await origin.listen({ host: '127.0.0.1', port: 0, tlsPort: null, maxConnections: 2 });
    const { connect } = await import('node:net');
    const url = new URL(base!);
    const open = () =>
      new Promise<import('node:net').Socket>((resolve) => {
        const socket = connect(Number(url.port), url.hostname, () => resolve(socket));
      });
    const kept = [await open(), await open()];
    const ask = (socket: import('node:net').Socket) =>
      new Promise<string>((resolve) => {
        socket.once('data', (d) => resolve(d.toString()));
        socket.write('GET /time HTTP/1.1\r\nHost: x\r\n\r\n');
      });
    try {
      // Both answered: the origin has taken both connections before the third arrives.
      for (const socket of kept)
        assert.match(
          await within('an answer', ask(socket)),
          /^HTTP\/1\.1 200/,
          'connections within the bound are served',
        );
      const third = await open();
      const closed = untilEvent('the close of the third connection', third, 'close', { timeoutMs: 2000 });
      third.write('GET /time HTTP/1.1\r\nHost: x\r\n\r\n');
      await closed;
      assert.match(await within('an answer', ask(kept[0]!)), /^HTTP\/1\.1 200/, 'the others are still served');
    } finally {
      for (const s of kept) s.destroy();
      await origin.close();
    }
  });
});

describe('origin: HTTPS with HTTP/2', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pushcast-cert-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('segments are served over HTTP/2 with the development certificate', async () => {
    const cert = developmentCertificate(dir);
    assert.match(cert.sha256, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    const f = new Fixture();
    f.publish(f.video, 1);
    const { origin, tls } = await startOrigin(f, {}, cert);
    const session = http2.connect(tls!, { ca: cert.cert });
    try {
      const { status, body } = await new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
        const req = session.request({ ':path': '/live/video-360p/1.m4s' });
        const parts: Buffer[] = [];
        let status = 0;
        req.on('response', (h) => (status = Number(h[':status'])));
        req.on('data', (d: Buffer) => parts.push(d));
        req.on('end', () => resolve({ status, body: Buffer.concat(parts) }));
        req.on('error', reject);
        req.end();
      });
      assert.equal(status, 200);
      assert.deepEqual(new Uint8Array(body), f.video.get(1)!.bytes());
      assert.equal(developmentCertificate(dir).sha256, cert.sha256, 'the certificate is kept and reused');
    } finally {
      session.close();
      await origin.close();
    }
  });
});

describe('origin: the delivery description and the player bundle', () => {
  test('the description is served beside the MPD as the option writes it; without the option, 404', async () => {
    const f = new Fixture();
    f.publish(f.video, 1);
    const delivery = (webTransport: WebTransportInfo | undefined): DeliveryDescription => ({
      version: 1,
      broadcast: 'live',
      targetLatencyMs: 3000,
      order: ['warp-websocket', 'dash'],
      dash: { manifest: 'manifest.mpd' },
      warp: { path: '/warp/live', webTransport },
    });
    const options = {
      window: f.window,
      timeline: f.timeline,
      webRoot: '/nonexistent',
      lowLatency: true,
      chunkDuration: 0.5,
      targetLatency: 3,
    };
    const described = new Origin({ ...options, delivery });
    const plain = new Origin(options);
    const [a, b] = await Promise.all([
      described.listen({ host: '127.0.0.1', port: 0, tlsPort: null }),
      plain.listen({ host: '127.0.0.1', port: 0, tlsPort: null }),
    ]);
    try {
      const res = await fetch(`${a.http}${DELIVERY_PATH}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/json');
      assert.equal(res.headers.get('access-control-allow-origin'), '*', 'a page of another origin may read it');
      const body = parseDeliveryDescription(await res.json());
      assert.deepEqual(
        body,
        { ...delivery(undefined), warp: { path: '/warp/live' } },
        'no HTTP/3 here: no WebTransport',
      );
      assert.equal((await fetch(`${b.http}${DELIVERY_PATH}`)).status, 404);
    } finally {
      await Promise.all([described.close(), plain.close()]);
    }
  });

  test('the player bundle: its entry, pages and chunks by name; nothing else under /player/', () => {
    assert.equal(playerFile('/player/pushcast-player.js')?.file, 'player/pushcast-player.js');
    assert.equal(playerFile('/player/chunk-ABCD2345.js')?.file, 'player/chunk-ABCD2345.js');
    assert.equal(playerFile('/player/page.js.map')?.type, 'application/json; charset=utf-8');
    assert.equal(playerFile('/warp/')?.file, 'index.html', 'forced modes are the same page');
    for (const path of ['/player/../index.html', '/player/chunk-abcd2345.js', '/player/x.js', '/player/%2e%2e/a.js'])
      assert.equal(playerFile(path), undefined, path);
  });
});

describe('origin: Repr-Digest values kept', () => {
  test(`at most ${MAX_DIGESTS}, the oldest let go first; a digest let go is computed again alike`, () => {
    const responses = new OriginResponses();
    const headersSent: Record<string, string>[] = [];
    const res = {
      writeHead: (_status: number, headers: Record<string, string>) => void headersSent.push(headers),
      end: () => undefined,
    } as unknown as Response;
    const req = { method: 'HEAD', headers: {} } as unknown as Request;
    const body = (i: number) => new TextEncoder().encode(`segment ${i}`);
    for (let i = 0; i < MAX_DIGESTS + 100; i++)
      responses.serveBytes(req, res, body(i), 'video/mp4', `"e${i}"`, 'no-store', 'segment');
    assert.equal(responses.digestsKept, MAX_DIGESTS);
    const first = headersSent[0]!['Repr-Digest'];
    responses.serveBytes(req, res, body(0), 'video/mp4', '"e0"', 'no-store', 'segment');
    assert.equal(headersSent.at(-1)!['Repr-Digest'], first);
    assert.equal(responses.digestsKept, MAX_DIGESTS);
  });
});
