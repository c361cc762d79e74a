/**
 * LL-HLS at the origin over a hand-built live window: the playlists name the DASH segments and each CMAF
 * chunk as a part, blocking playlist reloads are answered the moment the packager publishes the part they
 * ask for and not before, parts wait for their chunk, and every refusal is the one 8216bis §6.2.5.2 asks for.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { LiveTrack, Segment } from '../../src/media/index.js';
import type { Origin } from '../../src/origin/index.js';
import { playerFile } from '../../src/origin/player-pages.js';
import { Fixture, startOrigin } from '../support/live-fixture.js';
import { until, within } from '../support/wait.js';

/** Video segments 1–3 complete (two 1 s chunks each), 4 growing with one chunk; audio the same. */
function liveFixture(): { f: Fixture; growing: Segment; growingAudio: Segment } {
  const f = new Fixture();
  for (let n = 1; n <= 3; n++) {
    f.publish(f.video, n);
    f.publish(f.audio, n);
  }
  return { f, growing: f.publish(f.video, 4, 1, 1000, true), growingAudio: f.publish(f.audio, 4, 1, 1000, true) };
}

const playlist = (base: string, query = '', track = 'video-360p') => fetch(`${base}/live/${track}/index.m3u8${query}`);

/** Starts a request and tells whether it has settled, without waiting for it. */
function pending(request: Promise<Response>) {
  const state = { settled: false };
  const response = request.finally(() => (state.settled = true));
  // Requests still held when the origin closes are aborted: that failure is expected, not unhandled.
  response.catch(() => {});
  return { state, response };
}

describe('LL-HLS: playlists over the live window', () => {
  const { f } = liveFixture();
  let origin: Origin;
  let base: string;
  after(() => origin?.close());

  test('the multivariant playlist names each track’s media playlist, cacheable for a second', async () => {
    ({ origin, base } = await startOrigin(f));
    const res = await fetch(`${base}/live/master.m3u8`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/vnd.apple.mpegurl');
    assert.equal(res.headers.get('cache-control'), 'public, max-age=1');
    const text = await res.text();
    assert.match(text, /^#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="audio-128k",.*URI="audio-128k\/index\.m3u8"$/m);
    assert.match(
      text,
      /^#EXT-X-STREAM-INF:BANDWIDTH=928000,CODECS="avc1\.42c01e,mp4a\.40\.2",RESOLUTION=640x360,AUDIO="audio"\nvideo-360p\/index\.m3u8$/m,
    );
  });

  test('a media playlist: the DASH segments with their exact durations, dated, the growing segment’s parts and the hint', async () => {
    const res = await playlist(base);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'public, max-age=1', 'a plain reload: short-lived');
    const text = await res.text();
    assert.match(text, /^#EXT-X-TARGETDURATION:2$/m);
    assert.match(text, /^#EXT-X-PART-INF:PART-TARGET=1\.0$/m);
    assert.match(text, /^#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=3\.0$/m);
    assert.match(text, /^#EXT-X-MAP:URI="init\.mp4"$/m);
    const first = Number(/^#EXT-X-MEDIA-SEQUENCE:(\d+)$/m.exec(text)![1]);
    const uris = text.split('\n').filter((l) => l && !l.startsWith('#'));
    assert.deepEqual(
      uris,
      f.video
        .list()
        .filter((s) => s.complete)
        .map((s) => `${s.number}.m4s`),
    );
    assert.equal(
      first,
      f.video.list()[0]!.number,
      'Media Sequence Numbers are the segment numbers while they follow each other',
    );
    assert.deepEqual(
      [...text.matchAll(/^#EXTINF:(.*),$/gm)].map((m) => m[1]),
      uris.map(() => '2.0'),
    );
    const ast = f.timeline.availabilityStartTime!;
    assert.match(
      text,
      new RegExp(
        `^#EXT-X-PROGRAM-DATE-TIME:${new Date(ast + 4000).toISOString()}\\n#EXT-X-PART:DURATION=1\\.0,URI="3\\.0\\.m4s",INDEPENDENT=YES\\n#EXT-X-PART:DURATION=1\\.0,URI="3\\.1\\.m4s"\\n#EXTINF:2\\.0,\\n3\\.m4s$`,
        'm',
      ),
    );
    assert.ok(
      text.endsWith(
        '#EXT-X-PART:DURATION=1.0,URI="4.0.m4s",INDEPENDENT=YES\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI="4.1.m4s"\n',
      ),
    );
  });

  test('the /hls/ page is a player file', () => {
    assert.equal(playerFile('/hls/')?.file, 'hls.html');
    assert.equal(playerFile('/hls/page.js')?.file, 'hls-page.js');
  });

  test('a part is its chunk’s bytes, immutable; a segment’s parts end to end are the segment', async () => {
    const parts = await Promise.all(['3.0', '3.1'].map((p) => fetch(`${base}/live/video-360p/${p}.m4s`)));
    for (const p of parts) {
      assert.equal(p.status, 200);
      assert.equal(p.headers.get('cache-control'), 'public, max-age=31536000, immutable');
      assert.equal(p.headers.get('content-type'), 'video/mp4');
    }
    const bytes = Buffer.concat(await Promise.all(parts.map(async (p) => Buffer.from(await p.arrayBuffer()))));
    assert.deepEqual(new Uint8Array(bytes), f.video.get(3)!.bytes());
    assert.notEqual(parts[0]!.headers.get('etag'), parts[1]!.headers.get('etag'));
    for (const missing of ['3.2', '99.0', '4.2']) {
      const res = await fetch(`${base}/live/video-360p/${missing}.m4s`);
      assert.equal(res.status, 404, missing);
      assert.equal(res.headers.get('cache-control'), 'no-store');
    }
  });

  test('each segment its exact duration, the same target duration in every playlist when one runs long', async () => {
    const { f: g } = liveFixture();
    const { origin: o, base: b } = await startOrigin(g);
    try {
      const track: LiveTrack = g.video;
      const long = track.get(4)!;
      const ts = track.info.timescale;
      for (const seconds of [1, 0.6])
        track.addChunk(long, { bytes: new Uint8Array(10), decodeTime: 0, duration: seconds * ts, sampleCount: 1 });
      track.completeSegment(long);
      const text = await (await playlist(b)).text();
      assert.match(text, /^#EXTINF:2\.6,\n4\.m4s$/m, 'segment 4: 1 + 1 + 0.6 s, not the nominal 2');
      assert.match(text, /^#EXT-X-TARGETDURATION:3$/m);
      assert.match(await (await playlist(b, '', 'audio-128k')).text(), /^#EXT-X-TARGETDURATION:3$/m);
    } finally {
      await o.close();
    }
  });
});

describe('LL-HLS: segment numbers that skip', () => {
  test('Media Sequence Numbers still follow each other; the URIs keep the segment numbers; blocking reload counts in MSNs', async () => {
    const f = new Fixture();
    for (const n of [1, 2, 3]) f.publish(f.video, n);
    f.publish(f.audio, 3);
    const { origin, base } = await startOrigin(f);
    try {
      const before = await (await playlist(base)).text();
      assert.match(before, /^#EXT-X-MEDIA-SEQUENCE:1$/m);
      // Segment 4 never comes (a long GoP, or an encoder restart): 5 follows 3.
      f.publish(f.video, 5);
      const growing = f.publish(f.video, 6, 1, 1000, true);
      const text = await (await playlist(base)).text();
      const first = Number(/^#EXT-X-MEDIA-SEQUENCE:(\d+)$/m.exec(text)![1]);
      const uris = text.split('\n').filter((l) => l && !l.startsWith('#'));
      assert.deepEqual(uris.slice(-2), ['3.m4s', '5.m4s']);
      assert.equal(first + uris.length - 1, 4, 'segment 5 has MSN 4');
      // The growing segment 6 is MSN 5: its next part is asked for as _HLS_msn=5.
      const held = pending(playlist(base, '?_HLS_msn=5&_HLS_part=1'));
      await until('held', () => origin.stats().hls.heldPlaylists === 1);
      f.chunk(f.video, growing);
      assert.match(await (await within('answered', held.response, { timeoutMs: 2000 })).text(), /URI="6\.1\.m4s"/);
      assert.equal((await playlist(base, '?_HLS_msn=8')).status, 400, 'MSN 8 is beyond the last complete (4) + 2');
    } finally {
      await origin.close();
    }
  });
});

describe('LL-HLS: blocking playlist reload', () => {
  test('answers the moment the requested part is published, and not before', async () => {
    const { f, growing } = liveFixture();
    const { origin, base, metrics } = await startOrigin(f);
    try {
      // Part 1 of segment 4 does not exist yet.
      const a = pending(playlist(base, '?_HLS_msn=4&_HLS_part=1'));
      await until('the request is held', () => origin.stats().hls.heldPlaylists === 1);
      // Another track's chunk is not what it waits for: still held (the origin answers synchronously on the event).
      f.chunk(f.audio, f.audio.get(4)!);
      assert.equal(origin.stats().hls.heldPlaylists, 1);
      assert.equal(a.state.settled, false);
      const published = performance.now();
      f.chunk(f.video, growing);
      assert.equal(origin.stats().hls.heldPlaylists, 0, 'answered within the chunk event');
      const res = await within('the playlist with part 4.1', a.response, { timeoutMs: 2000 });
      const text = await res.text();
      const ms = performance.now() - published;
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('cache-control'), 'public, max-age=6', 'a blocking reload, cacheable by its query');
      assert.match(text, /#EXT-X-PART:DURATION=1\.0,URI="4\.1\.m4s"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI="4\.2\.m4s"\n$/);
      assert.ok(ms < 500, `answered ${ms.toFixed(1)} ms after the part was published`);

      // Part 2 of segment 4 is past its last once 4 completes: part 0 of segment 5 answers it (§6.2.5.2).
      const b = pending(playlist(base, '?_HLS_msn=4&_HLS_part=2'));
      await until('the second request is held', () => origin.stats().hls.heldPlaylists === 1);
      f.video.completeSegment(growing);
      assert.equal(origin.stats().hls.heldPlaylists, 1, 'segment 4 complete, segment 5 has no part yet');
      const next = f.publish(f.video, 5, 1, 1000, true);
      const text2 = await (await within('the playlist with part 5.0', b.response, { timeoutMs: 2000 })).text();
      assert.match(
        text2,
        /#EXTINF:2\.0,\n4\.m4s\n#EXT-X-PROGRAM-DATE-TIME:[^\n]+\n#EXT-X-PART:DURATION=1\.0,URI="5\.0\.m4s",INDEPENDENT=YES\n/,
      );
      assert.equal(next.chunks.length, 1);

      // What exists already is answered at once; _HLS_msn alone waits for a complete segment.
      assert.equal((await playlist(base, '?_HLS_msn=4&_HLS_part=0')).status, 200);
      assert.equal((await playlist(base, '?_HLS_msn=4')).status, 200);
      const c = pending(playlist(base, '?_HLS_msn=5'));
      await until('the request for segment 5 is held', () => origin.stats().hls.heldPlaylists === 1);
      f.chunk(f.video, next);
      assert.equal(origin.stats().hls.heldPlaylists, 1, 'a part of segment 5 is not segment 5');
      f.video.completeSegment(next);
      assert.match(await (await within('segment 5 complete', c.response, { timeoutMs: 2000 })).text(), /\n5\.m4s\n/);

      const exposition = await metrics.registry.metrics();
      assert.match(exposition, /^pushcast_hls_blocking_reloads_total\{outcome="waited"\} 3$/m);
      assert.match(exposition, /^pushcast_hls_blocking_reloads_total\{outcome="at-once"\} 2$/m);
      assert.match(
        exposition,
        /^pushcast_http_requests_total\{route="hls-playlist",method="GET",status="200",protocol="http\/1\.1"\} 5$/m,
      );
    } finally {
      await origin.close();
    }
  });

  test('400 for malformed directives, _HLS_part without _HLS_msn, and requests too far ahead', async () => {
    const { f } = liveFixture();
    const { origin, base } = await startOrigin(f);
    try {
      // The last complete segment is 3, the last part 4.0; PART-TARGET 1 s: an Advance Part Limit of 3 parts.
      for (const query of ['?_HLS_msn=x', '?_HLS_msn=-1', '?_HLS_part=1', '?_HLS_msn=6', '?_HLS_msn=4&_HLS_part=4']) {
        const res = await playlist(base, query);
        assert.equal(res.status, 400, query);
        assert.equal(res.headers.get('cache-control'), 'no-store');
      }
      const near = pending(playlist(base, '?_HLS_msn=4&_HLS_part=3'));
      await until('three parts ahead is held', () => origin.stats().hls.heldPlaylists === 1);
      const five = pending(playlist(base, '?_HLS_msn=5'));
      await until('last complete + 2 is held', () => origin.stats().hls.heldPlaylists === 2);
      assert.equal(near.state.settled || five.state.settled, false);
      assert.deepEqual(origin.stats().hls.blockingReloads, { malformed: 3, 'too-far': 2 });
    } finally {
      await origin.close();
    }
  });

  test('held requests are bounded (503 at once past the bound), and a wait past three target durations is 503', async () => {
    const { f } = liveFixture();
    const { origin, base } = await startOrigin(f, { maxHeldPlaylistRequests: 1 });
    try {
      const started = performance.now();
      const held = pending(playlist(base, '?_HLS_msn=4&_HLS_part=1'));
      await until('one request held', () => origin.stats().hls.heldPlaylists === 1);
      const refused = await playlist(base, '?_HLS_msn=4&_HLS_part=2');
      assert.equal(refused.status, 503);
      assert.equal(refused.headers.get('retry-after'), '1');
      assert.equal(await refused.text(), 'too many requests waiting for playlist updates\n');
      const res = await within('the held request gives up', held.response, { timeoutMs: 10_000 });
      const waited = performance.now() - started;
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('cache-control'), 'no-store');
      assert.ok(
        waited >= 5900 && waited < 8000,
        `gave up after ${waited.toFixed(0)} ms: three target durations of 2 s`,
      );
      assert.deepEqual(origin.stats().hls.blockingReloads, { refused: 1, timeout: 1 });
    } finally {
      await origin.close();
    }
  });
});

describe('LL-HLS: the hinted part', () => {
  test('is held until its chunk is published, then sent whole; a hint the segment ends before is 404', async () => {
    const { f, growing } = liveFixture();
    const { origin, base } = await startOrigin(f);
    try {
      const part = pending(fetch(`${base}/live/video-360p/4.1.m4s`));
      await until('the part request is held', () => origin.stats().hls.heldParts === 1);
      assert.equal(origin.stats().heldRequests, 1, 'counted with the held segment responses');
      f.chunk(f.audio, f.audio.get(4)!);
      assert.equal(origin.stats().hls.heldParts, 1);
      f.chunk(f.video, growing, 1234);
      const res = await within('the part once published', part.response, { timeoutMs: 2000 });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-length'), '1234');
      assert.deepEqual(new Uint8Array(await res.arrayBuffer()), growing.chunks[1]!.bytes);

      const never = pending(fetch(`${base}/live/video-360p/4.2.m4s`));
      await until('the next part request is held', () => origin.stats().hls.heldParts === 1);
      f.video.completeSegment(growing);
      const gone = await within('the part that will not be', never.response, { timeoutMs: 2000 });
      assert.equal(gone.status, 404);
      assert.equal(gone.headers.get('cache-control'), 'no-store');
      assert.equal(origin.stats().heldRequests, 0);
    } finally {
      await origin.close();
    }
  });
});
