/**
 * The CDN tier: nginx with docs/nginx-pushcast.conf in front of a real `pushcast serve`. Shows that the
 * edge collapses viewers onto one origin fetch per segment, streams a growing LL-DASH segment to the
 * viewer that fills the cache, keeps the MPD no longer than its max-age allows, never remembers a 404,
 * and never caches a segment the origin failed to finish.
 */
import assert from 'node:assert/strict';
import http, { type IncomingHttpHeaders } from 'node:http';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { EDGE_CONFIG_TEMPLATE, startNginx, type RunningNginx } from '../support/nginx.js';
import { startServe, type RunningServe } from '../support/pushcast-process.js';
import { childPids, killQuietly } from '../support/processes.js';
import { sleepUntil, until } from '../support/wait.js';

const SMALL = ['--tls-port', 'off', '--ladder', '320x180@300k', '--segment-duration', '1', '--chunk-duration', '0.2'];
const TRACK = 'video-180p';
const PLAYERS = 8;
const CDN_DOC = fileURLToPath(new URL('../../../docs/cdn-nginx.md', import.meta.url));

/** Orders events across all responses: comparisons say "before", never "within so many ms". */
let eventCounter = 0;

interface Received {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** Every body delivery: when (event order) and how many bytes had arrived by then. */
  deliveries: { at: number; total: number }[];
  /** Event order of the response's end (or of its failure). */
  endAt: number;
  /** Whether the response ended cleanly (false: the connection broke before the body was complete). */
  complete: boolean;
}

/** GET `url`, recording when each part of the body arrives. A broken response resolves with complete: false. */
function receive(url: string, onFirstBytes?: () => void): Promise<Received> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false }, (res) => {
      const parts: Buffer[] = [];
      const deliveries: Received['deliveries'] = [];
      let total = 0;
      const settle = (complete: boolean) =>
        resolve({
          status: res.statusCode!,
          headers: res.headers,
          body: Buffer.concat(parts),
          deliveries,
          endAt: ++eventCounter,
          complete,
        });
      res.on('data', (part: Buffer) => {
        parts.push(part);
        total += part.byteLength;
        deliveries.push({ at: ++eventCounter, total });
        if (deliveries.length === 1) onFirstBytes?.();
      });
      res.on('end', () => settle(true));
      res.on('error', () => settle(false));
    });
    request.on('error', reject);
  });
}

interface Presentation {
  ast: number;
  startNumber: number;
  /** Segment duration, s. */
  duration: number;
  /** CMAF chunk duration, s: the MPD announces each segment this long after it starts. */
  chunk: number;
}

async function presentation(origin: string): Promise<Presentation> {
  const mpd = await (await fetch(`${origin}/live/manifest.mpd`)).text();
  const duration = Number(/SegmentTemplate timescale="1000" duration="(\d+)"/.exec(mpd)![1]) / 1000;
  return {
    ast: Date.parse(/availabilityStartTime="([^"]+)"/.exec(mpd)![1]!),
    startNumber: Number(/startNumber="(\d+)"/.exec(mpd)![1]),
    duration,
    chunk: duration - Number(/availabilityTimeOffset="([\d.]+)"/.exec(mpd)![1]),
  };
}

/** When a low-latency player may first ask for segment `n` (MPD availabilityTimeOffset). */
function announcedAt(p: Presentation, n: number): number {
  return p.ast + ((n - p.startNumber) * p.duration + p.chunk) * 1000;
}

/** The first segment announced at least `leadMs` from now. */
function nextAnnounced(p: Presentation, leadMs: number): number {
  let n = p.startNumber + Math.floor((Date.now() - p.ast) / 1000 / p.duration);
  while (announcedAt(p, n) < Date.now() + leadMs) n++;
  return n;
}

/** Requests the origin answered, from its Prometheus counter pushcast_http_requests_total. */
async function originRequests(serve: RunningServe, route: string, method = 'GET'): Promise<number> {
  const text = await (await fetch(serve.metrics)).text();
  let sum = 0;
  for (const m of text.matchAll(/^pushcast_http_requests_total\{([^}]*)\} (\S+)$/gm)) {
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (labels.route === route && labels.method === method) sum += Number(m[2]);
  }
  return sum;
}

/** Byte offsets where each CMAF chunk (moof + mdat) of a segment ends. */
function chunkEnds(segment: Buffer): number[] {
  const ends: number[] = [];
  for (let offset = 0; offset + 8 <= segment.byteLength; ) {
    const size = segment.readUInt32BE(offset);
    assert.ok(size >= 8, `box at ${offset} has size ${size}`);
    offset += size;
    if (segment.toString('latin1', offset - size + 4, offset - size + 8) === 'mdat') ends.push(offset);
  }
  return ends;
}

/** The event order at which `r` had received at least `bytes` bytes. */
function receivedBy(r: Received, bytes: number): number {
  const delivery = r.deliveries.find((d) => d.total >= bytes);
  assert.ok(delivery, `only ${r.body.byteLength} bytes received, expected at least ${bytes}`);
  return delivery.at;
}

describe('CDN tier: nginx (docs/nginx-pushcast.conf) in front of pushcast serve', () => {
  let serve: RunningServe;
  let edge: RunningNginx;
  let origin: string;
  let live: Presentation;
  const segmentUrl = (base: string, n: number) => `${base}/live/${TRACK}/${n}.m4s`;

  before(async () => {
    serve = await startServe(SMALL);
    origin = new URL(serve.manifest).origin;
    edge = await startNginx(new URL(origin).host);
    live = await presentation(origin);
  });
  after(async () => {
    await edge?.stop();
    await serve?.stop();
  });

  test('docs/cdn-nginx.md quotes the configuration tested here, verbatim', () => {
    assert.ok(
      readFileSync(CDN_DOC, 'utf8').includes(readFileSync(EDGE_CONFIG_TEMPLATE, 'utf8')),
      'docs/cdn-nginx.md and docs/nginx-pushcast.conf differ',
    );
  });

  test(`${PLAYERS} players at the live edge cause one origin fetch per segment and get the origin's bytes`, async () => {
    const first = nextAnnounced(live, 300);
    const numbers = [first, first + 1, first + 2];
    const segmentsBefore = await originRequests(serve, 'segment');
    const initsBefore = await originRequests(serve, 'init');

    // Each player does what a low-latency DASH player does: init segment, then each segment once announced.
    const players = Array.from({ length: PLAYERS }, async () => {
      const init = await receive(`${edge.base}/live/${TRACK}/init.mp4`);
      const segments: Received[] = [];
      for (const n of numbers) {
        await sleepUntil(announcedAt(live, n));
        segments.push(await receive(segmentUrl(edge.base, n)));
      }
      return { init, segments };
    });
    const played = await Promise.all(players);

    assert.equal((await originRequests(serve, 'segment')) - segmentsBefore, numbers.length, 'origin segment fetches');
    assert.equal((await originRequests(serve, 'init')) - initsBefore, 1, 'origin init segment fetches');
    const initAtOrigin = Buffer.from(await (await fetch(`${origin}/live/${TRACK}/init.mp4`)).arrayBuffer());
    for (const [i, n] of numbers.entries()) {
      const atOrigin = await receive(segmentUrl(origin, n));
      assert.equal(atOrigin.status, 200);
      const statuses = played.map((p) => p.segments[i]!.headers['x-cache-status']).sort();
      assert.deepEqual(
        statuses,
        [...Array<string>(PLAYERS - 1).fill('HIT'), 'MISS'],
        `segment ${n}: one player fills the cache, the others hit it`,
      );
      for (const p of played) {
        assert.equal(p.segments[i]!.status, 200);
        assert.ok(
          p.segments[i]!.body.equals(atOrigin.body),
          `segment ${n}: a player got bytes that differ from the origin's`,
        );
      }
    }
    for (const p of played) assert.ok(p.init.body.equals(initAtOrigin), 'init segment differs from the origin');
  });

  test('a growing segment streams through nginx chunk by chunk to the viewer filling the cache; the others wait for it whole', async () => {
    const n = nextAnnounced(live, 300);
    await sleepUntil(announcedAt(live, n));
    // The direct origin response ends exactly when the origin completes the segment: it is the reference
    // both for when each chunk was produced and for the final bytes.
    const direct = receive(segmentUrl(origin, n));
    let waiter: Promise<Received> | undefined;
    // A second viewer, asking once the first already streams, is held by proxy_cache_lock.
    const streamed = await receive(segmentUrl(edge.base, n), () => (waiter = receive(segmentUrl(edge.base, n))));
    const atOrigin = await direct;
    const waited = await waiter!;

    assert.equal(streamed.status, 200);
    assert.equal(streamed.headers['x-cache-status'], 'MISS');
    assert.ok(streamed.body.equals(atOrigin.body), 'the streamed segment differs from the origin');
    assert.ok(
      streamed.deliveries[0]!.at < atOrigin.endAt,
      'the first bytes through nginx arrived only after the origin completed the segment',
    );

    // Each chunk the origin wrote on its own reached the viewer through nginx before the origin wrote the
    // next: nginx added no chunk of delay (see "Buffers" in docs/cdn-nginx.md).
    const ends = chunkEnds(atOrigin.body);
    let compared = 0;
    for (const end of ends.slice(0, -1)) {
      const nextChunkAtOrigin = receivedBy(atOrigin, end + 1);
      if (nextChunkAtOrigin === receivedBy(atOrigin, end)) continue; // written together (existed before the request)
      compared++;
      assert.ok(
        receivedBy(streamed, end) < nextChunkAtOrigin,
        `the chunk ending at byte ${end} reached the viewer only after the origin sent the next one`,
      );
    }
    assert.ok(compared >= 2, `only ${compared} of ${ends.length} chunks were produced while the segment streamed`);

    // nginx 1.22 does not stream a cache fill in progress to the viewers waiting on its lock.
    assert.equal(waited.headers['x-cache-status'], 'HIT');
    assert.ok(waited.body.equals(atOrigin.body));
    assert.ok(
      waited.deliveries[0]!.at > atOrigin.endAt,
      'a lock waiter got bytes before the segment was complete: nginx now streams to waiters, update docs/cdn-nginx.md',
    );
  });

  test("the MPD is served from one cached copy no longer than its max-age, plus nginx's one-second clock", async () => {
    const mpdUrl = `${edge.base}/live/manifest.mpd`;
    const originBefore = await originRequests(serve, 'mpd');
    const get = async () => {
      const requestedAt = Date.now();
      const res = await fetch(mpdUrl);
      await res.arrayBuffer();
      return {
        requestedAt,
        answeredAt: Date.now(),
        status: res.status,
        cache: res.headers.get('x-cache-status'),
        headers: res.headers,
      };
    };

    const filled = await get();
    assert.equal(filled.status, 200);
    assert.notEqual(filled.cache, 'HIT', 'the first MPD request through a fresh edge must reach the origin');
    const maxAge = Number(/max-age=(\d+)/.exec(filled.headers.get('cache-control') ?? '')![1]);
    assert.equal(filled.headers.get('age'), null, 'nginx 1.22 sends no Age header (docs/cdn-nginx.md)');

    // Poll until the copy is replaced. nginx keeps time in whole seconds: a copy lives max-age to max-age + 1 s.
    const hits: number[] = [];
    const refreshed = await until(
      'the cached MPD to be replaced',
      async () => {
        const r = await get();
        assert.equal(r.status, 200);
        if (r.cache !== 'HIT') return r;
        hits.push(r.requestedAt);
        return undefined;
      },
      {
        timeoutMs: (maxAge + 3) * 1000,
        intervalMs: 100,
        detail: () => `still served from the copy of ${new Date(filled.answeredAt).toISOString()}`,
      },
    );
    assert.equal(refreshed.cache, 'EXPIRED');
    assert.ok(hits.length > 0, 'the MPD was not served from the cache at all');
    // Every request nginx answered from the copy was sent less than max-age + 1 s after the copy arrived
    // (+ 250 ms for nginx's per-event-loop clock).
    const lastHit = Math.max(...hits) - filled.answeredAt;
    assert.ok(
      lastHit < (maxAge + 1) * 1000 + 250,
      `the copy of the MPD was served to a request sent ${lastHit} ms after it was fetched (max-age=${maxAge})`,
    );
    assert.equal(
      (await originRequests(serve, 'mpd')) - originBefore,
      2,
      'origin MPD fetches: the first copy and its refresh',
    );
  });

  test('a 404 for a segment not produced yet is not cached: once it exists nginx serves it', async () => {
    // Not yet announced: the origin answers 404 no-store (it would hold an announced one until it starts).
    const n = nextAnnounced(live, 2500);
    const early = await receive(segmentUrl(edge.base, n));
    assert.ok(Date.now() < announcedAt(live, n) - 250, 'too slow: the segment was announced before the 404 came back');
    assert.equal(early.status, 404);
    assert.equal(early.headers['cache-control'], 'no-store');
    assert.equal(early.headers['x-cache-status'], 'MISS');
    const again = await receive(segmentUrl(edge.base, n));
    assert.equal(again.status, 404);
    assert.equal(again.headers['x-cache-status'], 'MISS', 'the 404 was answered from the cache');

    await sleepUntil(announcedAt(live, n));
    const later = await receive(segmentUrl(edge.base, n));
    assert.equal(later.status, 200);
    assert.equal(later.headers['x-cache-status'], 'MISS');
    const atOrigin = await receive(segmentUrl(origin, n));
    assert.ok(later.body.equals(atOrigin.body));
  });

  // Last: it kills the origin.
  test('a segment the origin fails to finish is not cached: the viewer sees a broken response, not a short one', async () => {
    const n = nextAnnounced(live, 300);
    await sleepUntil(announcedAt(live, n));
    const encoders = childPids(serve.child.pid!);
    const broken = await receive(segmentUrl(edge.base, n), () => serve.child.kill('SIGKILL'));
    await serve.stop();
    for (const pid of encoders) killQuietly(pid); // ffmpeg lost its reader with the origin; make sure it is gone
    assert.equal(broken.status, 200);
    assert.equal(
      broken.complete,
      false,
      `nginx ended the response cleanly after ${broken.body.byteLength} bytes of an unfinished segment`,
    );
    const after = await receive(segmentUrl(edge.base, n));
    assert.notEqual(after.headers['x-cache-status'], 'HIT', 'the unfinished segment was cached');
    assert.equal(after.status, 502);
  });
});

describe('CDN tier: an origin sending 103 Early Hints (the default) behind nginx 1.22', () => {
  let serve: RunningServe;
  let edge: RunningNginx;
  before(async () => {
    serve = await startServe(SMALL);
    edge = await startNginx(new URL(serve.manifest).host);
  });
  after(async () => {
    await edge?.stop();
    await serve?.stop();
  });

  test('the MPD comes through nginx at once: the origin keeps 103 Early Hints for HTTP/2 clients', async () => {
    const res = await fetch(`${edge.base}/live/manifest.mpd`, { signal: AbortSignal.timeout(5000) });
    assert.equal(res.status, 200);
    assert.match(await res.text(), /^<\?xml[^>]*>\s*<MPD /);
  });
});

describe('CDN tier: LL-HLS through nginx', () => {
  let serve: RunningServe;
  let edge: RunningNginx;
  let origin: string;
  const playlistPath = `/live/${TRACK}/index.m3u8`;
  before(async () => {
    serve = await startServe(SMALL);
    origin = new URL(serve.manifest).origin;
    edge = await startNginx(new URL(origin).host);
  });
  after(async () => {
    await edge?.stop();
    await serve?.stop();
  });

  /** The (segment, part) after the last part the origin's playlist lists now. */
  async function nextPart(): Promise<{ msn: number; part: number }> {
    const text = await (await fetch(`${origin}${playlistPath}`)).text();
    const parts = [...text.matchAll(/^#EXT-X-PART:[^\n]*URI="(\d+)\.(\d+)\.m4s"/gm)];
    const last = parts.at(-1)!;
    return { msn: Number(last[1]), part: Number(last[2]) + 1 };
  }

  const timed = (url: string) => receive(url).then((r) => ({ r, at: performance.now() }));

  test(`${PLAYERS} players blocking on the next part get it through the edge when the origin publishes it; then it is cached by its query`, async (t) => {
    const { msn, part } = await nextPart();
    const query = `?_HLS_msn=${msn}&_HLS_part=${part}`;
    const direct = timed(`${origin}${playlistPath}${query}`);
    const reloads = await Promise.all(
      Array.from({ length: PLAYERS }, () => timed(`${edge.base}${playlistPath}${query}`)),
    );
    const reference = await direct;
    const text = reference.r.body.toString();
    // The part asked for, or (past the segment's last part) part 0 of the next segment (8216bis §6.2.5.2).
    const uri = text.includes(`URI="${msn}.${part}.m4s"`) ? `${msn}.${part}.m4s` : `${msn + 1}.0.m4s`;
    const late = reloads.map((x) => x.at - reference.at);
    t.diagnostic(
      `through the edge, minus the origin's own answer: ${late.map((ms) => Math.round(ms)).join(', ')} ms; cache ${reloads.map((x) => x.r.headers['x-cache-status']).join(', ')}`,
    );
    for (const { r } of reloads) {
      assert.equal(r.status, 200);
      assert.equal(r.headers['cache-control'], 'public, max-age=3', 'three target durations of 1 s');
      assert.match(r.body.toString(), new RegExp(`^#EXT-X-PART:[^\\n]*URI="${uri.replaceAll('.', '\\.')}"`, 'm'));
    }
    // No viewer sleeps on nginx's 500 ms lock poll: the lock timeout (100 ms) sends it to the origin instead.
    assert.ok(
      Math.max(...late) < 400,
      `a viewer got the playlist ${Math.round(Math.max(...late))} ms after the origin answered`,
    );
    const later = await receive(`${edge.base}${playlistPath}${query}`);
    assert.equal(later.headers['x-cache-status'], 'HIT', 'a blocking reload is cached by its query');
    assert.match(later.body.toString(), new RegExp(`URI="${uri.replaceAll('.', '\\.')}"`));

    const partsBefore = await originRequests(serve, 'hls-part');
    const parts = await Promise.all(
      Array.from({ length: PLAYERS }, () => receive(`${edge.base}/live/${TRACK}/${uri}`)),
    );
    assert.equal((await originRequests(serve, 'hls-part')) - partsBefore, 1, 'one origin fetch for the part');
    assert.deepEqual(parts.map((p) => p.headers['x-cache-status']).sort(), [
      ...Array<string>(PLAYERS - 1).fill('HIT'),
      'MISS',
    ]);
    const atOrigin = await receive(`${origin}/live/${TRACK}/${uri}`);
    for (const p of parts) {
      assert.equal(p.status, 200);
      assert.equal(p.headers['cache-control'], 'public, max-age=31536000, immutable');
      assert.ok(p.body.equals(atOrigin.body), 'a part differs from the origin’s');
    }
  });

  test('a plain reload is a cache entry of its own, not a blocking one; a refused directive is not cached', async () => {
    const { msn, part } = await nextPart();
    const blocking = await receive(`${edge.base}${playlistPath}?_HLS_msn=${msn}&_HLS_part=${part}`);
    assert.equal(blocking.status, 200);
    const plain = await receive(`${edge.base}${playlistPath}`);
    assert.equal(plain.headers['cache-control'], 'public, max-age=1');
    assert.notEqual(plain.headers['x-cache-status'], 'HIT', 'the plain playlist was answered from another key');
    for (let i = 0; i < 2; i++) {
      const refused = await receive(`${edge.base}${playlistPath}?_HLS_part=1`);
      assert.equal(refused.status, 400);
      assert.equal(refused.headers['x-cache-status'], 'MISS', 'a 400 was answered from the cache');
    }
  });
});
