// needs: ffmpeg
/**
 * Contribution ingest end to end: `pushcast serve --input rtmp://…` or `srt://…` with real ffmpeg pushing as
 * OBS would (H.264 without B-frames, a key frame per segment, AAC), a wrong key or passphrase, an encoder
 * that disconnects and comes back, and an encoder whose GoPs vary, passed through; the ingested segments
 * go out over multicast as over the other modes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { WarpClient, type SegmentRef } from '../../src/warp/index.js';
import { connectWebSocketSession } from '../../src/webtransport/index.js';
import { runPushcast, type RunningPushcast } from '../support/pushcast-process.js';
import { until, within } from '../support/wait.js';
import { validateMpd } from '../support/xmllint.js';

async function freeTcpPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/**
 * ffmpeg publishing a test picture and tone for `seconds`, as OBS does with the settings the README gives:
 * x264 zerolatency without B-frames, constant bitrate, a key frame every second (the segment duration),
 * or only at `keyFrames` (seconds) to make GoPs of every length.
 */
function push(url: string, seconds: number, keyFrames?: string): Promise<number | null> {
  const keys = keyFrames
    ? ['-g', '1000', '-keyint_min', '1000', '-sc_threshold', '0', '-force_key_frames', keyFrames]
    : ['-g', '25', '-keyint_min', '25', '-sc_threshold', '0'];
  const format = url.startsWith('srt:') ? 'mpegts' : 'flv';
  const child = spawn(
    'ffmpeg',
    [
      ...['-hide_banner', '-loglevel', 'error', '-nostdin', '-re'],
      ...['-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25'],
      ...['-re', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000'],
      ...['-t', String(seconds), '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-bf', '0'],
      ...['-pix_fmt', 'yuv420p', '-b:v', '300k', '-maxrate', '300k', '-bufsize', '300k', ...keys],
      ...['-c:a', 'aac', '-b:a', '96k', '-ar', '48000', '-f', format, url],
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  child.stderr!.resume();
  return once(child, 'exit').then(([code]) => code as number | null);
}

const BASE = ['--tls-port', 'off', '--host', '127.0.0.1', '--no-multicast', '--segment-duration', '1'];

async function serveIngest(input: string, extra: string[] = []): Promise<{ serve: RunningPushcast; origin: string }> {
  const http = await freeTcpPort();
  const serve = runPushcast('serve', [...BASE, '--port', String(http), '--input', input, ...extra], {
    timeoutMs: 30_000,
  });
  return { serve, origin: `http://127.0.0.1:${http}` };
}

const count = (serve: RunningPushcast, pattern: RegExp) => serve.lines.filter((l) => pattern.test(l)).length;

/** The decode time a segment says it starts at: its first `tfdt` (ISO/IEC 14496-12 §8.8.12). */
function tfdt(bytes: Uint8Array): number {
  const b = Buffer.from(bytes);
  const at = b.indexOf('tfdt');
  assert.ok(at > 0, 'the segment has a tfdt');
  return b[at + 4] === 1 ? Number(b.readBigUInt64BE(at + 8)) : b.readUInt32BE(at + 8);
}

interface Listed {
  representation: string;
  number: number;
  t: number;
  d: number;
}

/** Every segment the MPD's SegmentTimelines list, with its number, S@t and S@d. */
function listed(mpd: string): Listed[] {
  const out: Listed[] = [];
  for (const rep of mpd.matchAll(/<Representation id="([^"]+)"[\s\S]*?<\/Representation>/g)) {
    const start = Number(/startNumber="(\d+)"/.exec(rep[0])![1]);
    let number = start;
    let t = 0;
    for (const s of rep[0].matchAll(/<S (?:t="(\d+)" )?d="(\d+)"(?: r="(\d+)")?\/>/g)) {
      if (s[1] !== undefined) t = Number(s[1]);
      const d = Number(s[2]);
      for (let i = 0; i <= Number(s[3] ?? 0); i++) {
        out.push({ representation: rep[1]!, number: number++, t, d });
        t += d;
      }
    }
  }
  return out;
}

/** The newest segment of `track` that answers 200, searching back from a little ahead of the wall clock. */
async function newestOnGrid(origin: string, track: string): Promise<number> {
  const mpd = await (await fetch(`${origin}/live/manifest.mpd`)).text();
  const startNumber = Number(/startNumber="(\d+)"/.exec(mpd)![1]);
  const ast = Date.parse(/availabilityStartTime="([^"]+)"/.exec(mpd)![1]!);
  for (let n = startNumber + Math.ceil((Date.now() - ast) / 1000) + 5; n >= startNumber; n--)
    if ((await fetch(`${origin}/live/${track}/${n}.m4s`, { method: 'HEAD' })).status === 200) return n;
  throw new Error(`no segment of ${track}`);
}

describe('ingest', () => {
  test('RTMP: a wrong key is refused and nothing published; the right key goes live; a reconnection continues the timeline', async (t) => {
    const { serve, origin } = await serveIngest('rtmp://127.0.0.1:0/live/s3cret', ['--ladder', '320x180@300k']);
    t.after(() => serve.stop());
    const listening = await serve.waitForLine(/ingest: listening on rtmp:\/\/127\.0\.0\.1:\d+\/live /);
    const port = Number(/:(\d+)\/live/.exec(listening)![1]);

    assert.notEqual(await push(`rtmp://127.0.0.1:${port}/live/wrong`, 2), 0, 'the encoder is told no');
    await serve.waitForLine(/ingest: refused 127\.0\.0\.1:\d+: wrong key/);
    assert.equal(count(serve, /encoder run|ingest: encoder connected/), 0, 'no encoder run for a wrong key');
    assert.equal((await fetch(`${origin}/live/manifest.mpd`)).status, 503, 'nothing published');

    const first = push(`rtmp://127.0.0.1:${port}/live/s3cret`, 4);
    await serve.waitForLine(/ingest: encoder connected from 127\.0\.0\.1:\d+ \(rtmp\)/);
    await serve.waitForLine(/^manifest: /);
    const mpd = await (await fetch(`${origin}/live/manifest.mpd`)).text();
    const verdict = validateMpd(mpd);
    assert.ok(verdict.valid, verdict.output);
    assert.match(mpd, /<SegmentTemplate timescale="1000" duration="1000"/, 'a regular ladder keeps @duration');
    assert.equal(await within('the first push', first, { timeoutMs: 20_000 }), 0);
    await serve.waitForLine(/ingest: encoder disconnected from 127\.0\.0\.1:\d+ \(the encoder stopped publishing\)/);

    const before = await newestOnGrid(origin, 'video-180p');
    const old = await fetch(`${origin}/live/video-180p/${before}.m4s`);
    const oldEtag = old.headers.get('etag');
    const oldBytes = Buffer.from(await old.arrayBuffer());

    const second = push(`rtmp://127.0.0.1:${port}/live/s3cret`, 3);
    await until('the encoder connected again', () => count(serve, /ingest: encoder connected/) === 2, {
      timeoutMs: 15_000,
    });
    const after = await until(
      'segments of the second connection',
      async () => {
        const n = await newestOnGrid(origin, 'video-180p');
        return n > before + 1 && n;
      },
      { timeoutMs: 20_000, intervalMs: 250 },
    );
    assert.ok(after > before, `numbers move on (${before} → ${after})`);
    const again = await fetch(`${origin}/live/video-180p/${before}.m4s`);
    assert.equal(again.headers.get('etag'), oldEtag, 'the old URL names the same segment');
    assert.deepEqual(Buffer.from(await again.arrayBuffer()), oldBytes);
    assert.equal(await within('the second push', second, { timeoutMs: 20_000 }), 0);
    const valid = validateMpd(await (await fetch(`${origin}/live/manifest.mpd`)).text());
    assert.ok(valid.valid, valid.output);
  });

  test('SRT: a wrong passphrase is refused and nothing published; the right one goes live, passed through, and the MPD validates', async (t) => {
    const udp = await freeUdpPort();
    const url = `srt://127.0.0.1:${udp}`;
    const { serve, origin } = await serveIngest(`${url}?passphrase=correct-horse`, ['--passthrough']);
    t.after(() => serve.stop());
    await serve.waitForLine(/encoder run 1 started/);

    assert.notEqual(await push(`${url}?passphrase=wrong-passphrase`, 2), 0, 'the encoder is told no');
    await serve.waitForLine(/ingest: refused: wrong passphrase/);
    assert.equal((await fetch(`${origin}/live/manifest.mpd`)).status, 503, 'nothing published');

    const pushed = push(`${url}?passphrase=correct-horse`, 4);
    await serve.waitForLine(/ingest: encoder connected \(srt\)/);
    await serve.waitForLine(/^manifest: /);
    const mpd = await (await fetch(`${origin}/live/manifest.mpd`)).text();
    const verdict = validateMpd(mpd);
    assert.ok(verdict.valid, verdict.output);
    assert.match(mpd, /<SegmentTimeline>/);
    for (const s of listed(mpd)) {
      const res = await fetch(`${origin}/live/${s.representation}/${s.number}.m4s`);
      assert.equal(res.status, 200, `${s.representation}/${s.number}`);
      assert.equal(tfdt(new Uint8Array(await res.arrayBuffer())), s.t, `${s.representation}/${s.number} starts at S@t`);
    }
    assert.equal(await within('the push', pushed, { timeoutMs: 20_000 }), 0);
    await serve.waitForLine(/ingest: encoder disconnected \(srt\); listening again/);
  });

  test('passthrough with irregular GoPs: the SegmentTimeline addresses every segment exactly, across a reconnection, no number skipped', async (t) => {
    const { serve, origin } = await serveIngest('rtmp://127.0.0.1:0/live/k', ['--passthrough']);
    t.after(() => serve.stop());
    const listening = await serve.waitForLine(/ingest: listening on rtmp:\/\/127\.0\.0\.1:\d+\/live /);
    const url = `rtmp://127.0.0.1:${/:(\d+)\/live/.exec(listening)![1]}/live/k`;
    // GoPs of 0.6, 2.52, 0.4, 0.48 and 1 s, against a 1 s target.
    const first = push(url, 5, '0,0.6,3.12,3.52,4');
    await serve.waitForLine(/^manifest: /);
    // A Warp viewer (WebSocket fallback) the whole time: the same segments, one after another.
    const viaWarp = new Map<string, Buffer[]>();
    const warpComplete: SegmentRef[] = [];
    const warp = await WarpClient.connect(`${origin}/warp/live`, {
      bufferMs: 3000,
      connect: (u) => connectWebSocketSession(u),
      sink: {
        data: (segment, bytes) =>
          viaWarp.set(segment.path!, [...(viaWarp.get(segment.path!) ?? []), Buffer.from(bytes)]),
        end: (segment, complete) => complete && warpComplete.push(segment),
      },
    });
    t.after(() => warp.close());
    assert.equal(await first, 0);
    await serve.waitForLine(/ingest: encoder disconnected/);
    assert.equal(await push(url, 3, '0,1.6'), 0);
    await until('the second disconnection', () => count(serve, /ingest: encoder disconnected/) === 2, {
      timeoutMs: 10_000,
    });

    // Cut at the grid: 0–3.12 s, 3.12–4, 4–5 of the first run, 0–1.6, 1.6–3 of the second. The last one
    // ends when the encoder has flushed it, which may come after the console's "disconnected".
    let mpd = '';
    await until(
      'the MPD lists the five segments of both runs',
      async () => {
        mpd = await (await fetch(`${origin}/live/manifest.mpd`)).text();
        return listed(mpd).filter((s) => s.representation === 'video').length >= 5;
      },
      { timeoutMs: 10_000, detail: () => JSON.stringify(listed(mpd)) },
    );
    const verdict = validateMpd(mpd);
    assert.ok(verdict.valid, verdict.output);
    const video = listed(mpd).filter((s) => s.representation === 'video');
    const timescale = Number(/<Representation id="video"[\s\S]*?timescale="(\d+)"/.exec(mpd)![1]);
    assert.ok(
      video.some((s) => s.d / timescale > 2),
      'a GoP longer than two targets is one segment, under its own number',
    );
    let gaps = 0;
    for (const [i, s] of video.entries()) {
      const res = await fetch(`${origin}/live/video/${s.number}.m4s`);
      assert.equal(res.status, 200, `video/${s.number}`);
      assert.equal(tfdt(new Uint8Array(await res.arrayBuffer())), s.t, `video/${s.number} starts at S@t`);
      const next = video[i + 1];
      if (next) {
        assert.equal(next.number, s.number + 1, 'no number skipped');
        assert.ok(next.t >= s.t + s.d, 'no overlap');
        if (next.t > s.t + s.d) gaps++;
      }
    }
    assert.equal(gaps, 1, 'the reconnection is the one gap, kept as a new S@t');

    // LL-HLS lists the same segments under the same URLs, each with its exact duration (EXTINF).
    const playlist = await (await fetch(`${origin}/live/video/index.m3u8`)).text();
    const hls = [...playlist.matchAll(/#EXTINF:([\d.]+),\n(\S+)/g)].map((m) => ({
      seconds: Number(m[1]),
      number: Number(/(\d+)\.m4s$/.exec(m[2]!)![1]),
    }));
    assert.ok(hls.length >= 5, playlist);
    for (const h of hls) {
      const s = video.find((x) => x.number === h.number);
      assert.ok(s, `video/${h.number} of the media playlist is in the MPD`);
      assert.ok(
        Math.abs(h.seconds - s.d / timescale) < 1e-5,
        `video/${h.number}: EXTINF ${h.seconds} s, S@d ${s.d / timescale} s`,
      );
    }
    assert.deepEqual(
      hls.map((h) => h.number),
      video.slice(video.length - hls.length).map((s) => s.number),
      'the newest segments, none skipped',
    );

    // Warp carried the same segments: every video segment after the viewer joined, in order, byte for byte
    // (those an encoder's departure cut short end aborted on Warp, as after an ffmpeg exit), none skipped
    // as missing or stopped as old although their lengths are not the catalog's duration.
    const warpVideo = [...viaWarp.keys()].filter((p) => p.startsWith('/live/video/'));
    const joined = video.findIndex((s) => `/live/video/${s.number}.m4s` === warpVideo[0]);
    const detail = `Warp: ${warpVideo.join(', ')}; listed ${JSON.stringify(video)}; ${JSON.stringify(warp.consumer.stats())}`;
    assert.ok(joined >= 0 && warpVideo.length >= 3, detail);
    assert.deepEqual(
      warpVideo,
      video.slice(joined).map((s) => `/live/video/${s.number}.m4s`),
      detail,
    );
    for (const path of warpVideo) {
      const served = Buffer.from(await (await fetch(`${origin}${path}`)).arrayBuffer());
      const carried = Buffer.concat(viaWarp.get(path)!);
      if (warpComplete.some((s) => s.path === path)) assert.deepEqual(carried, served, `${path} over Warp`);
      else assert.deepEqual(carried, served.subarray(0, carried.length), `${path} over Warp, as far as it went`);
    }
    const stats = warp.consumer.stats();
    assert.equal(stats.segmentsSkipped, 0, detail);
    assert.equal(stats.segmentsStopped, 0, detail);
    assert.equal(
      (await fetch(`${origin}/live/video/${video.at(-1)!.number + 1}.m4s`, { method: 'HEAD' })).status,
      404,
      'nothing beyond the last listed segment',
    );
  });

  test('multicast carries the ingested segments: a receiver on the loopback gets them byte-identical to the origin', async (t) => {
    const http = await freeTcpPort();
    const serve = runPushcast(
      'serve',
      [
        ...['--tls-port', 'off', '--host', '127.0.0.1', '--segment-duration', '1', '--port', String(http)],
        ...['--input', 'rtmp://127.0.0.1:0/live/k', '--passthrough'],
        ...['--multicast-group', '232.112.97.1', '--multicast-port', String(await freeUdpPort())],
      ],
      { timeoutMs: 30_000 },
    );
    const out = mkdtempSync(join(os.tmpdir(), 'pushcast-ingest-multicast-'));
    t.after(async () => {
      await serve.stop();
      rmSync(out, { recursive: true, force: true });
    });
    const listening = await serve.waitForLine(/ingest: listening on rtmp:\/\/127\.0\.0\.1:\d+\/live /);
    const pushed = push(`rtmp://127.0.0.1:${/:(\d+)\/live/.exec(listening)![1]}/live/k`, 12);
    const manifest = (await serve.waitForLine(/^manifest: /)).replace(/^manifest: /, '');
    await serve.waitForLine(/^multicast: video /);
    // The origin here is plain HTTP (--tls-port off): its key set is too.
    const receiver = runPushcast('multicast', [
      'receive',
      manifest,
      '--output',
      out,
      '--duration',
      '6',
      '--allow-http-key',
    ]);
    const code = await receiver.exited;
    const output = receiver.lines.join('\n');
    assert.equal(code, 0, output);
    const segments = readdirSync(join(out, 'live', 'video')).filter((f) => f.endsWith('.m4s'));
    assert.ok(segments.length >= 3, `${segments.length} video segments in 6 s:\n${output}`);
    // Every track serve multicasts (its `multicast: <track> …` lines): what was received is the origin's.
    const tracks = serve.lines.flatMap((l) => /^multicast: (\S+) /.exec(l)?.[1] ?? []);
    assert.ok(tracks.includes('video'), serve.lines.join('\n'));
    for (const track of tracks)
      for (const f of readdirSync(join(out, 'live', track))) {
        const origin = Buffer.from(
          await (await fetch(`${manifest.replace('manifest.mpd', `${track}/${f}`)}`)).arrayBuffer(),
        );
        assert.ok(readFileSync(join(out, 'live', track, f)).equals(origin), `${track}/${f}`);
      }
    const summary = JSON.parse(/^summary: (.*)$/m.exec(output)![1]!);
    assert.equal(summary.failed, 0, output);
    assert.equal(await pushed, 0);
  });
});
