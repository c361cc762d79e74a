import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { childPids } from '../support/processes.js';
import { startServe, type RunningServe } from '../support/pushcast-process.js';
import { until } from '../support/wait.js';

/** A small, quick ladder: these tests are about the source and its supervision, not picture quality. */
const SMALL = ['--tls-port', 'off', '--ladder', '320x180@300k', '--segment-duration', '1', '--chunk-duration', '0.2'];

interface Presentation {
  startNumber: number;
  ast: number;
  duration: number;
  representations: { id: string; codecs: string }[];
}

async function presentation(serve: RunningServe): Promise<Presentation> {
  const mpd = await (await fetch(serve.manifest)).text();
  // Passed through, segments are described by a SegmentTimeline: no nominal duration, SMALL's target is 1 s.
  const template = /SegmentTemplate timescale="1000" duration="(\d+)"/.exec(mpd);
  return {
    startNumber: Number(/startNumber="(\d+)"/.exec(mpd)![1]),
    ast: Date.parse(/availabilityStartTime="([^"]+)"/.exec(mpd)![1]!),
    duration: template ? Number(template[1]) / 1000 : 1,
    representations: [...mpd.matchAll(/<Representation id="([^"]+)"[^>]*codecs="([^"]+)"/g)].map((m) => ({
      id: m[1]!,
      codecs: m[2]!,
    })),
  };
}

/**
 * The newest segment number of `track` that answers 200 now, searching back from a little ahead of the
 * wall clock (an input read faster than real time runs ahead of it).
 */
async function newestSegment(serve: RunningServe, track: string): Promise<number> {
  const p = await presentation(serve);
  const origin = new URL(serve.manifest).origin;
  for (let n = p.startNumber + Math.floor((Date.now() - p.ast) / 1000 / p.duration) + 10; n >= p.startNumber; n--) {
    const res = await fetch(`${origin}/live/${track}/${n}.m4s`, { method: 'HEAD' });
    if (res.status === 200) return n;
  }
  throw new Error(`no segment of ${track} found`);
}

/** Polls the origin every 250 ms, for up to 20 s: an encoder run takes seconds to publish. */
const POLL = { timeoutMs: 20_000, intervalMs: 250 };

function ffmpegChild(pid: number): number {
  const [ffmpeg] = childPids(pid, 'ffmpeg');
  assert.ok(ffmpeg, 'pushcast serve runs ffmpeg');
  return ffmpeg;
}

describe('encoder supervision', () => {
  let serve: RunningServe;
  before(async () => {
    serve = await startServe(SMALL);
  });
  after(async () => {
    await serve?.stop();
  });

  test('if ffmpeg dies, the origin says so, keeps what it published and restarts it; numbering moves on', async () => {
    const origin = new URL(serve.manifest).origin;
    const before = await until(
      'two segments',
      async () => {
        const n = await newestSegment(serve, 'video-180p');
        return n >= (await presentation(serve)).startNumber + 1 && n;
      },
      POLL,
    );
    const old = await fetch(`${origin}/live/video-180p/${before}.m4s`);
    const oldBytes = new Uint8Array(await old.arrayBuffer());
    const oldEtag = old.headers.get('etag');

    process.kill(ffmpegChild(serve.child.pid!), 'SIGKILL');
    await serve.waitForLine(/encoder died \(killed by SIGKILL\); restarting/);
    await serve.waitForLine(/encoder run 2 started/);

    const again = await fetch(`${origin}/live/video-180p/${before}.m4s`);
    assert.equal(again.status, 200, 'what was published before the crash is still served');
    assert.equal(again.headers.get('etag'), oldEtag);
    assert.deepEqual(new Uint8Array(await again.arrayBuffer()), oldBytes);

    const after = await until(
      'a segment from the new encoder run',
      async () => {
        const n = await newestSegment(serve, 'video-180p');
        return n > before + 1 && n;
      },
      POLL,
    );
    assert.ok(after > before, `numbering continues: ${before} then ${after}`);
    const metrics = await (await fetch(serve.metrics)).text();
    assert.match(metrics, /^pushcast_encoder_restarts_total 1$/m);
    assert.match(metrics, /^pushcast_segments_published_total\{track="video-180p"\} \d+$/m);
  });

  test('SIGTERM stops the encoder and the origin cleanly', async () => {
    const ffmpeg = ffmpegChild(serve.child.pid!);
    const code = await serve.stop('SIGTERM');
    assert.equal(code, 0);
    assert.ok(serve.lines.some((l) => / stopped$/.test(l)));
    assert.equal(spawnSync('kill', ['-0', String(ffmpeg)]).status, 1, 'ffmpeg is gone too');
  });
});

describe('inputs other than the test pattern', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pushcast-input-'));
  const file = join(dir, 'clip.mp4');
  before(() => {
    // A 3 s clip with sound, shorter than the time the test watches, so looping is visible.
    execFileSync('ffmpeg', [
      '-hide_banner',
      '-loglevel',
      'error',
      '-f',
      'lavfi',
      '-i',
      'testsrc2=size=320x180:rate=25:duration=3',
      '-f',
      'lavfi',
      '-i',
      'sine=frequency=300:duration=3',
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-g',
      '25',
      '-c:a',
      'aac',
      '-shortest',
      file,
    ]);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('--input FILE loops the file as a live stream, transcoded to the ladder with audio', async () => {
    const serve = await startServe([...SMALL, '--input', file]);
    try {
      const p = await presentation(serve);
      assert.deepEqual(p.representations.map((r) => r.id).sort(), ['audio-128k', 'video-180p']);
      const first = await newestSegment(serve, 'video-180p');
      // Run past the clip's end: the loop keeps the live edge moving.
      await until(
        'the stream to outlive the 3 s clip',
        async () => (await newestSegment(serve, 'video-180p')) >= first + 5,
        POLL,
      );
    } finally {
      assert.equal(await serve.stop(), 0);
    }
  });

  test('--input FILE --passthrough keeps the input codec (no transcoding)', async () => {
    const serve = await startServe([...SMALL, '--input', file, '--passthrough']);
    try {
      const p = await presentation(serve);
      const probe = execFileSync(
        'ffprobe',
        ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=profile,level', '-of', 'csv=p=0', file],
        { encoding: 'utf8' },
      );
      const video = p.representations.find((r) => r.id === 'video')!;
      assert.ok(video, 'one video representation, named video');
      assert.match(video.codecs, /^avc1\.(64|4d|42)/, `codec from the input: ${video.codecs} (${probe.trim()})`);
    } finally {
      assert.equal(await serve.stop(), 0);
    }
  });

  test('--input - takes fragmented MP4 on standard input; when it ends, the origin keeps serving', async () => {
    const fmp4 = execFileSync(
      'ffmpeg',
      [
        '-hide_banner',
        '-loglevel',
        'error',
        '-i',
        file,
        '-c',
        'copy',
        '-f',
        'mp4',
        '-movflags',
        'empty_moov+default_base_moof+frag_keyframe',
        '-',
      ],
      { maxBuffer: 64 * 1024 * 1024 },
    );
    const serve = await startServe([...SMALL, '--input', '-', '--passthrough'], { stdin: fmp4 });
    try {
      await serve.waitForLine(/encoder stopped \(exit code 0\)/);
      const n = await newestSegment(serve, 'video');
      const res = await fetch(`${new URL(serve.manifest).origin}/live/video/${n}.m4s`);
      assert.equal(res.status, 200);
      assert.ok((await res.arrayBuffer()).byteLength > 1000);
    } finally {
      assert.equal(await serve.stop(), 0);
    }
  });
});
