// needs: ffmpeg (media files made for the test) — full lane only
import assert from 'node:assert/strict';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
  chmodSync,
} from 'node:fs';
import http from 'node:http';
import http2, { type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { LiveTimeline, LiveWindow, parseInitSegment, readFragments } from '../../src/media/index.js';
import { DEFAULT_PUSH_POLICY, Origin, developmentCertificate, type Certificate } from '../../src/origin/index.js';
import {
  VodLibrary,
  firstRangeEnd,
  itemIds,
  slugify,
  vodRoute,
  type VodLibraryOptions,
  type VodMetadata,
  type VodRouteOptions,
} from '../../src/origin/vod/index.js';
import { VOD_CLIPS, makeVodFolder } from '../support/vod-media.js';
import { until } from '../support/wait.js';

/** build/test/origin → build/web, where the playlist page is built. */
const WEB_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../web');
/** Small enough that each track's push is a real part of the file, and ends past its first segment. */
const PARTIAL_BYTES = 40_000;

const root = mkdtempSync(join(tmpdir(), 'pushcast-vod-'));
const mediaDir = join(root, 'media');
const cacheDir = join(root, 'cache');
let certificate: Certificate;

before(() => {
  makeVodFolder(mediaDir);
  certificate = developmentCertificate(join(root, 'tls'));
});
after(() => rmSync(root, { recursive: true, force: true }));

function openLibrary(extra: Partial<VodLibraryOptions> = {}): Promise<VodLibrary> {
  return VodLibrary.open({ dir: mediaDir, cacheDir, ffprobePath: 'ffprobe', ...extra });
}

/** A real origin with nothing live, the on-demand route mounted, push allowed. */
async function startOrigin(library: VodLibrary, route: Partial<VodRouteOptions> = {}, partialBytes = PARTIAL_BYTES) {
  const origin = new Origin({
    window: new LiveWindow({ timeShiftBufferDepth: 6 }),
    timeline: new LiveTimeline(2),
    webRoot: WEB_ROOT,
    lowLatency: true,
    chunkDuration: 0.5,
    targetLatency: 3,
    push: { ...DEFAULT_PUSH_POLICY, partialBytes },
    routes: [vodRoute(library, { webRoot: WEB_ROOT, ...route })],
  });
  const addr = await origin.listen({ host: '127.0.0.1', port: 0, tlsPort: 0, certificate });
  return { origin, base: addr.http!, tls: addr.https! };
}

/** GET with the path exactly as written: `fetch` would resolve `..` before sending. */
function rawGet(base: string, path: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    http
      .get({ host: hostname, port, path }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      })
      .on('error', reject);
  });
}

interface H2Response {
  headers: IncomingHttpHeaders;
  body: Buffer;
}

function h2Request(
  session: ClientHttp2Session,
  path: string,
  headers: Record<string, string> = {},
): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': path, ...headers });
    const parts: Buffer[] = [];
    let responseHeaders: IncomingHttpHeaders = {};
    req.on('response', (h) => (responseHeaders = h));
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => resolve({ headers: responseHeaders, body: Buffer.concat(parts) }));
    req.on('error', reject);
    req.end();
  });
}

interface Push {
  request: IncomingHttpHeaders;
  response: Promise<H2Response>;
}

/** Every PUSH_PROMISE the session receives: the promised request and, later, the pushed response. */
function collectPushes(session: ClientHttp2Session): Push[] {
  const pushes: Push[] = [];
  session.on('stream', (stream, request) => {
    const response = new Promise<H2Response>((resolve, reject) => {
      const parts: Buffer[] = [];
      let headers: IncomingHttpHeaders = {};
      stream.on('push', (h) => (headers = h));
      stream.on('data', (d: Buffer) => parts.push(d));
      stream.on('end', () => resolve({ headers, body: Buffer.concat(parts) }));
      stream.on('error', reject);
    });
    response.catch(() => {});
    pushes.push({ request, response });
  });
  return pushes;
}

async function metadataOf(base: string, id: string): Promise<VodMetadata> {
  const res = await fetch(`${base}/video/${id}`);
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as VodMetadata;
}

async function trackFile(base: string, url: string): Promise<Uint8Array> {
  const res = await fetch(`${base}${url}`);
  assert.equal(res.status, 200);
  return new Uint8Array(await res.arrayBuffer());
}

const boxType = (bytes: Uint8Array, at: number) => Buffer.from(bytes.subarray(at + 4, at + 8)).toString('latin1');

test('item ids are unique [a-z0-9-] slugs of file names, whatever the name holds', () => {
  assert.equal(slugify('Café Talk (2024).mp4'), 'cafe-talk-2024');
  assert.equal(slugify('../../etc/passwd'), 'etc-passwd');
  assert.equal(slugify('日本語.mkv'), 'item');
  assert.equal(slugify(`${'x'.repeat(200)}.mp4`).length, 56);
  assert.deepEqual(itemIds(['a.mkv', 'A.mp4', 'a!.mov', 'a-2.ts']), ['a', 'a-2', 'a-3', 'a-2-2']);
});

test('the first pushed range ends on the boundary at or after the push size', () => {
  const track = {
    size: 1000,
    initSize: 100,
    segments: [
      { start: 0, duration: 2, offset: 100, size: 400 },
      { start: 2, duration: 2, offset: 500, size: 500 },
    ],
  };
  assert.equal(firstRangeEnd(track, 50), 99, 'within the CMAF header: the header');
  assert.equal(firstRangeEnd(track, 101), 499);
  assert.equal(firstRangeEnd(track, 500), 499, 'exactly a boundary');
  assert.equal(firstRangeEnd(track, 501), 999);
  assert.equal(firstRangeEnd(track, 5000), 999, 'larger than the file: the file');
});

describe('vod: catalog, packaging and HTTP semantics', () => {
  let library: VodLibrary;
  let origin: Origin;
  let base: string;
  let tls: string;
  before(async () => {
    library = await openLibrary();
    ({ origin, base, tls } = await startOrigin(library));
  });
  after(() => origin.close());

  test('the folder is listed by id, title and duration; files that are not media are left out', async () => {
    const res = await fetch(`${base}/vod/items.json`);
    assert.equal(res.status, 200);
    const { items } = (await res.json()) as { items: { id: string; title: string; duration: number }[] };
    assert.deepEqual(
      items.map((i) => [i.id, i.title]),
      [
        [VOD_CLIPS.withAudio.id, 'Talk (with audio)'],
        [VOD_CLIPS.silent.id, 'silent clip'],
      ],
    );
    for (const i of items)
      assert.ok(Math.abs(i.duration - (i.id === VOD_CLIPS.silent.id ? 3 : 4)) < 0.2, `${i.id}: ${i.duration}`);
    const page = await fetch(`${base}/vod`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /playlist\.js/);
  });

  test('concurrent first requests share one packaging job, and the package is reused', async () => {
    const bodies = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const res = await fetch(`${base}/video/${VOD_CLIPS.withAudio.id}`);
        assert.equal(res.status, 200);
        return res.text();
      }),
    );
    assert.equal(new Set(bodies).size, 1, 'every request got the same metadata');
    assert.equal(library.packagingRuns, 1);
    await metadataOf(base, VOD_CLIPS.withAudio.id);
    assert.equal(library.packagingRuns, 1, 'the second time, no packaging');
    const restarted = await openLibrary();
    const again = await restarted.package(VOD_CLIPS.withAudio.id);
    assert.equal(restarted.packagingRuns, 0, 'after a restart the package on disk is used');
    assert.equal(again.tag, library.ready(VOD_CLIPS.withAudio.id)!.tag);
  });

  test('metadata: durations, codecs from the CMAF header, a segment index that matches the file', async () => {
    const res = await fetch(`${base}/video/${VOD_CLIPS.withAudio.id}`);
    assert.equal(res.headers.get('content-type'), 'application/json');
    assert.equal(res.headers.get('cache-control'), 'public, max-age=10');
    const meta = (await res.json()) as VodMetadata;
    assert.equal(meta.id, VOD_CLIPS.withAudio.id);
    assert.equal(meta.title, 'Talk (with audio)');
    assert.ok(Math.abs(meta.duration - 4) < 0.2, `duration ${meta.duration}`);
    assert.deepEqual(
      meta.tracks.map((t) => t.kind),
      ['video', 'audio'],
    );
    const silent = await metadataOf(base, VOD_CLIPS.silent.id);
    assert.deepEqual(
      silent.tracks.map((t) => t.kind),
      ['video'],
      'no audio track for a file without audio',
    );
    assert.ok(Math.abs(silent.duration - 3) < 0.2, `duration ${silent.duration}`);

    for (const [m, clip] of [
      [meta, VOD_CLIPS.withAudio],
      [silent, VOD_CLIPS.silent],
    ] as const) {
      for (const t of m.tracks) {
        const bytes = await trackFile(base, t.url);
        assert.equal(bytes.byteLength, t.size);
        const init = parseInitSegment(bytes.subarray(0, t.init.size));
        assert.equal(t.codec, init.tracks[0]!.codec, 'codec from the init segment');
        assert.match(t.codec, t.kind === 'video' ? /^avc1\.64[0-9a-f]{4}$/ : /^mp4a\.40\.2$/);
        if (t.kind === 'video')
          assert.deepEqual([t.width, t.height], [clip.width, clip.height], 'the file size, not upscaled');
        assert.ok(t.bandwidth > 0);
        // Segments tile the file after the header, each starting with styp then moof, at the time the index says.
        let offset = t.init.size;
        let time = 0;
        for (const s of t.segments) {
          assert.equal(s.offset, offset);
          assert.equal(boxType(bytes, s.offset), 'styp');
          const segment = bytes.subarray(s.offset, s.offset + s.size);
          const stypSize = Buffer.from(segment).readUInt32BE(0);
          assert.equal(boxType(segment, stypSize), 'moof');
          const fragments = readFragments(segment, init);
          assert.ok(
            Math.abs(fragments[0]!.trackFragments[0]!.baseMediaDecodeTime! / init.tracks[0]!.timescale - s.start) <
              1e-6,
          );
          assert.ok(Math.abs(s.start - time) < 1e-6, 'contiguous in time');
          offset += s.size;
          time = s.start + s.duration;
        }
        assert.equal(offset, t.size);
        assert.ok(Math.abs(time - m.duration) < 0.1 || time < m.duration);
      }
    }
  });

  test('unknown ids and traversal attempts are 404; other methods 405; unknown ids never start a job', async () => {
    const paths = [
      '/video/nope',
      '/video/TALK-WITH-AUDIO',
      '/video/..%2F..%2Fetc%2Fpasswd',
      '/video/../../etc/passwd',
      '/video/talk-with-audio/../silent-clip',
      `/media/${VOD_CLIPS.withAudio.id}/index.json`,
      `/media/${VOD_CLIPS.withAudio.id}/..%2Findex.json`,
      `/media/${VOD_CLIPS.withAudio.id}/../../etc/passwd`,
      `/media/..%2F${VOD_CLIPS.withAudio.id}/video.mp4`,
      `/media/${VOD_CLIPS.silent.id}/audio.mp4`,
      '/vod/../../etc/passwd',
      '/vod/nothing',
    ];
    for (const path of paths) assert.equal((await rawGet(base, path)).status, 404, path);
    // Hostile ids are never keys of the library's maps: a flood of them leaves no job or failure behind.
    await Promise.all(Array.from({ length: 50 }, (_, i) => rawGet(base, `/video/item-${i}`)));
    assert.deepEqual(library.pending, { jobs: 0, waitingRequests: 0, failures: 0 });
    const post = await fetch(`${base}/video/${VOD_CLIPS.withAudio.id}`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD, OPTIONS');
  });

  test('track files: ranges (RFC 9110 §14), HEAD, ETag, If-Range, caching, CORS and media types', async () => {
    const meta = await metadataOf(base, VOD_CLIPS.withAudio.id);
    const [video, audio] = meta.tracks;
    const whole = await trackFile(base, video!.url);
    const res = await fetch(`${base}${video!.url}`, { headers: { Range: 'bytes=100-199' } });
    assert.equal(res.status, 206);
    assert.equal(res.headers.get('content-range'), `bytes 100-199/${video!.size}`);
    assert.equal(res.headers.get('content-length'), '100');
    assert.deepEqual(new Uint8Array(await res.arrayBuffer()), whole.subarray(100, 200));
    assert.equal(res.headers.get('content-type'), 'video/mp4');
    assert.equal(res.headers.get('cache-control'), 'public, max-age=86400');
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    assert.equal(res.headers.get('accept-ranges'), 'bytes');
    const etag = res.headers.get('etag')!;
    assert.match(etag, /^"[^"]+"$/);

    const seg = video!.segments[1];
    const segment = await fetch(`${base}${video!.url}`, {
      headers: { Range: `bytes=${seg!.offset}-${seg!.offset + seg!.size - 1}` },
    });
    assert.deepEqual(
      new Uint8Array(await segment.arrayBuffer()),
      whole.subarray(seg!.offset, seg!.offset + seg!.size),
      'one segment, by its index entry',
    );
    const suffix = await fetch(`${base}${video!.url}`, { headers: { Range: 'bytes=-10' } });
    assert.deepEqual(new Uint8Array(await suffix.arrayBuffer()), whole.subarray(whole.byteLength - 10));
    const open = await fetch(`${base}${video!.url}`, { headers: { Range: `bytes=${video!.size - 5}-` } });
    assert.equal(open.headers.get('content-range'), `bytes ${video!.size - 5}-${video!.size - 1}/${video!.size}`);
    await open.arrayBuffer();
    const past = await fetch(`${base}${video!.url}`, { headers: { Range: `bytes=${video!.size}-` } });
    assert.equal(past.status, 416);
    assert.equal(past.headers.get('content-range'), `bytes */${video!.size}`);
    await past.arrayBuffer();
    const several = await fetch(`${base}${video!.url}`, { headers: { Range: 'bytes=0-1,5-6' } });
    assert.equal(several.status, 200, 'several ranges: the whole file');
    assert.equal((await several.arrayBuffer()).byteLength, video!.size);

    const head = await fetch(`${base}${audio!.url}`, { method: 'HEAD', headers: { Range: 'bytes=0-9' } });
    assert.equal(head.status, 206);
    assert.equal(head.headers.get('content-length'), '10');
    assert.equal(head.headers.get('content-type'), 'audio/mp4');
    assert.equal((await head.arrayBuffer()).byteLength, 0);

    const notModified = await fetch(`${base}${video!.url}`, { headers: { 'If-None-Match': etag } });
    assert.equal(notModified.status, 304);
    assert.equal(notModified.headers.get('etag'), etag);
    const stale = await fetch(`${base}${video!.url}`, { headers: { Range: 'bytes=0-9', 'If-Range': '"old"' } });
    assert.equal(stale.status, 200, 'a stale If-Range: the whole file');
    assert.equal((await stale.arrayBuffer()).byteLength, video!.size);
    const fresh = await fetch(`${base}${video!.url}`, { headers: { Range: 'bytes=0-9', 'If-Range': etag } });
    assert.equal(fresh.status, 206);
    await fresh.arrayBuffer();
    const otherTrack = await fetch(`${base}${audio!.url}`, { method: 'HEAD' });
    assert.notEqual(otherTrack.headers.get('etag'), etag, 'each track has its own ETag');
  });

  test("HTTP/2: the metadata request pushes each track's first range (RFC 9113 §8.4), as a 206 a later Range request matches", async () => {
    const meta = await metadataOf(base, VOD_CLIPS.withAudio.id);
    const session = http2.connect(tls, { ca: certificate.cert });
    try {
      const pushes = collectPushes(session);
      const res = await h2Request(session, `/video/${VOD_CLIPS.withAudio.id}`);
      assert.equal(res.headers[':status'], 200);
      assert.equal(pushes.length, 2, 'one push per track');
      for (const track of meta.tracks) {
        const push = pushes.find((p) => p.request[':path'] === track.url);
        assert.ok(push, `a push of ${track.url}`);
        const m = /^bytes=0-(\d+)$/.exec(String(push.request.range));
        assert.ok(m, `the promised request carries a range: ${push.request.range}`);
        const end = Number(m[1]);
        const boundaries = [track.init.size, ...track.segments.map((s) => s.offset + s.size)];
        assert.ok(boundaries.includes(end + 1), 'the pushed range ends on a segment boundary');
        assert.ok(end + 1 >= PARTIAL_BYTES || end + 1 === track.size);
        assert.ok(
          boundaries.filter((b) => b < end + 1).every((b) => b < PARTIAL_BYTES),
          'the first boundary at or past the push size',
        );
        assert.ok(end + 1 < track.size, 'only a part of the file');
        assert.deepEqual(track.firstRange, { start: 0, end }, 'the metadata names the same first range');

        const pushed = await push.response;
        assert.equal(pushed.headers[':status'], 206);
        assert.equal(pushed.headers['content-range'], `bytes 0-${end}/${track.size}`);
        assert.equal(pushed.headers['content-length'], String(end + 1));
        assert.equal(pushed.headers['content-type'], track.kind === 'audio' ? 'audio/mp4' : 'video/mp4');
        const asked = await h2Request(session, track.url, { range: `bytes=0-${end}` });
        assert.equal(asked.headers[':status'], 206);
        assert.equal(asked.headers.etag, pushed.headers.etag);
        assert.equal(asked.headers['content-range'], pushed.headers['content-range']);
        assert.ok(asked.body.equals(pushed.body), 'pushed bytes are those a request gets');
      }
      await h2Request(session, `/video/${VOD_CLIPS.withAudio.id}`);
      assert.equal(pushes.length, 2, 'the same connection is not pushed the same ranges twice');
    } finally {
      session.close();
    }
  });

  test('HTTP/2: no push to a client that disabled it (SETTINGS_ENABLE_PUSH = 0), nor on HEAD', async () => {
    const session = http2.connect(tls, { ca: certificate.cert, settings: { enablePush: false } });
    try {
      const pushes = collectPushes(session);
      const res = await h2Request(session, `/video/${VOD_CLIPS.withAudio.id}`);
      assert.equal(res.headers[':status'], 200);
      assert.equal(JSON.parse(res.body.toString()).id, VOD_CLIPS.withAudio.id);
      assert.equal(pushes.length, 0);
    } finally {
      session.close();
    }
    const withPush = http2.connect(tls, { ca: certificate.cert });
    try {
      const pushes = collectPushes(withPush);
      await h2Request(withPush, `/video/${VOD_CLIPS.withAudio.id}`, { ':method': 'HEAD' });
      assert.equal(pushes.length, 0);
    } finally {
      withPush.close();
    }
  });
});

describe('vod: bounds and failures', () => {
  const fakes = join(root, 'fakes');
  /** A stand-in for ffmpeg that never finishes, to hold packaging jobs open. */
  const stuckFfmpeg = join(fakes, 'stuck-ffmpeg');
  before(() => {
    mkdirSync(fakes, { recursive: true });
    writeFileSync(stuckFfmpeg, '#!/bin/sh\nexec sleep 30\n');
    chmodSync(stuckFfmpeg, 0o755);
  });

  test('a failed packaging job is a 502 that says why, and is tried again on a later request', async () => {
    const library = await openLibrary({
      cacheDir: join(root, 'cache-fail'),
      ffmpegPath: '/bin/false',
      retryAfterFailureMs: 60_000,
    });
    const { origin, base } = await startOrigin(library);
    try {
      const res = await fetch(`${base}/video/${VOD_CLIPS.silent.id}`);
      assert.equal(res.status, 502);
      assert.equal(res.headers.get('cache-control'), 'no-store');
      assert.match(await res.text(), /packaging silent clip failed: ffmpeg exited with code 1/);
      const soon = await fetch(`${base}/video/${VOD_CLIPS.silent.id}`);
      assert.equal(soon.status, 502);
      await soon.text();
      assert.equal(library.packagingRuns, 1, 'right after a failure the error is repeated, ffmpeg not run again');
    } finally {
      await origin.close();
    }
    const retrying = await openLibrary({
      cacheDir: join(root, 'cache-fail'),
      ffmpegPath: '/bin/false',
      retryAfterFailureMs: 0,
    });
    await assert.rejects(retrying.package(VOD_CLIPS.silent.id), { status: 502 });
    await assert.rejects(retrying.package(VOD_CLIPS.silent.id), { status: 502 });
    assert.equal(retrying.packagingRuns, 2, 'tried again');
    assert.equal(retrying.pending.failures, 1, 'one remembered failure per item at most');
  });

  test('packaging has a timeout; requests waiting for packages and queued jobs are bounded', async () => {
    const library = await openLibrary({
      cacheDir: join(root, 'cache-stuck'),
      ffmpegPath: stuckFfmpeg,
      packagingTimeoutMs: 1500,
      maxWaitingRequests: 2,
      maxConcurrentJobs: 1,
      retryAfterFailureMs: 0,
    });
    const { origin, base } = await startOrigin(library);
    try {
      const started = Date.now();
      const statuses = fetch(`${base}/video/${VOD_CLIPS.withAudio.id}`).then(
        async (r) => [r.status, await r.text()] as const,
      );
      const queued = fetch(`${base}/video/${VOD_CLIPS.silent.id}`).then(
        async (r) => [r.status, await r.text()] as const,
      );
      await until('two requests waiting for packaging', () => library.pending.waitingRequests === 2);
      assert.equal(library.pending.jobs, 2);
      assert.equal(library.packagingRuns, 1, 'one ffmpeg at a time: the second job is queued');
      const refused = await fetch(`${base}/video/${VOD_CLIPS.withAudio.id}`);
      assert.equal(refused.status, 503, 'beyond the waiting requests bound');
      assert.equal(refused.headers.get('retry-after'), '5');
      await refused.text();
      const [status, text] = await statuses;
      assert.equal(status, 502);
      assert.match(text, /ffmpeg did not finish within 1\.5 s/);
      assert.ok(Date.now() - started < 5000);
      assert.equal((await queued)[0], 502, 'the queued job ran (and timed out) after the first');
      assert.equal(library.packagingRuns, 2);
      assert.deepEqual(library.pending, { jobs: 0, waitingRequests: 0, failures: 2 });
    } finally {
      await origin.close();
    }
  });

  test('pushes stop at the bound on bytes read for them; the metadata is still answered', async () => {
    const library = await openLibrary();
    await library.package(VOD_CLIPS.withAudio.id);
    const { origin, tls } = await startOrigin(library, { maxPushReadBytes: PARTIAL_BYTES });
    const session = http2.connect(tls, { ca: certificate.cert });
    try {
      const pushes = collectPushes(session);
      const res = await h2Request(session, `/video/${VOD_CLIPS.withAudio.id}`);
      assert.equal(res.headers[':status'], 200);
      assert.equal(pushes.length, 0, 'each first range is larger than the bound');
    } finally {
      session.close();
      await origin.close();
    }
  });

  test('the catalog is bounded; a changed file is packaged again, an unchanged one never', async () => {
    const few = await openLibrary({ maxItems: 1 });
    assert.equal(few.items.length, 1);
    const dir = join(root, 'changing');
    mkdirSync(dir);
    const file = join(dir, VOD_CLIPS.silent.file);
    copyFileSync(join(mediaDir, VOD_CLIPS.silent.file), file);
    const options = { dir, cacheDir: join(root, 'cache-changing'), ffprobePath: 'ffprobe' };
    const first = await VodLibrary.open(options);
    const original = await first.package(VOD_CLIPS.silent.id);
    const restarted = await VodLibrary.open(options);
    await restarted.package(VOD_CLIPS.silent.id);
    assert.equal(restarted.packagingRuns, 0);
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    const changed = await restarted.package(VOD_CLIPS.silent.id);
    assert.equal(restarted.packagingRuns, 1, 'a new modification time: packaged again');
    assert.notEqual(changed.tag, original.tag);
    assert.equal(
      JSON.parse(readFileSync(join(options.cacheDir, VOD_CLIPS.silent.id, 'index.json'), 'utf8')).source.mtimeMs,
      changed.index.source.mtimeMs,
    );
  });
});
