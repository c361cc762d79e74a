import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { LiveSource, parseLadder, type MediaSink } from '../../src/source/index.js';
import { until } from '../support/wait.js';

test('the encoder counts each restart and, by track, the output its packager rejected', async (t) => {
  // An "ffmpeg" that writes bytes that are no MP4 to the first rendition's pipe, then waits to be killed.
  const dir = mkdtempSync(join(tmpdir(), 'pushcast-live-source-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ffmpeg = join(dir, 'ffmpeg');
  writeFileSync(ffmpeg, '#!/bin/sh\nprintf garbage >&3\nexec sleep 30\n');
  chmodSync(ffmpeg, 0o755);
  const rejecting: MediaSink = {
    push: () => {
      throw new Error('not ISO BMFF');
    },
    endOfInput: () => {},
  };
  const source = new LiveSource(
    {
      input: { kind: 'test-pattern' },
      video: parseLadder('320x180@300k'),
      frameRate: 25,
      keyFrameInterval: 2,
      passthrough: false,
      ffmpegPath: ffmpeg,
      restartDelay: 10,
    },
    new Map([['video-180p', rejecting]]),
  );
  assert.deepEqual(source.stats(), { restarts: 0, sinkErrorsByTrack: {} });
  const twoRestarts = new Promise<void>((resolve, reject) => {
    const deadline = setTimeout(() => reject(new Error('no second restart within 10 s')), 10_000);
    let restarts = 0;
    source.on('exited', ({ restartIn }) => {
      if (restartIn !== undefined && ++restarts === 2) {
        clearTimeout(deadline);
        resolve();
      }
    });
  });
  source.start();
  await twoRestarts;
  await source.stop();
  assert.deepEqual(source.stats(), { restarts: 2, sinkErrorsByTrack: { 'video-180p': 2 } }, 'a stop is no restart');
});

test('an SRT listener run that had an encoder is started again at once; one that never had one backs off', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pushcast-live-source-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // First run: media, then the encoder goes (exit 0); the runs after: no media, a failure (exit 1).
  const marker = join(dir, 'ran');
  const ffmpeg = join(dir, 'ffmpeg');
  writeFileSync(ffmpeg, `#!/bin/sh\nif [ -e ${marker} ]; then exit 1; fi\ntouch ${marker}\nprintf media >&3\nexit 0\n`);
  chmodSync(ffmpeg, 0o755);
  const sink: MediaSink = { push: () => {}, endOfInput: () => {} };
  const source = new LiveSource(
    {
      input: { kind: 'srt', host: '127.0.0.1', port: 9000, latencyMs: 120 },
      video: [{ id: 'video', width: 0, height: 0, bitrate: 1 }],
      frameRate: 25,
      keyFrameInterval: 1,
      passthrough: true,
      ffmpegPath: ffmpeg,
      restartDelay: 50,
      reconnectDelay: 20,
    },
    new Map([['video', sink]]),
  );
  const exits: { restartIn?: number; hadMedia: boolean }[] = [];
  const media: number[] = [];
  source.on('media', (run) => media.push(run));
  source.on('exited', ({ restartIn, hadMedia }) => exits.push({ restartIn, hadMedia }));
  source.start();
  await until('three runs ended', () => exits.length >= 3);
  await source.stop();
  assert.deepEqual(media, [1]);
  assert.deepEqual(exits.slice(0, 3), [
    { restartIn: 20, hadMedia: true },
    { restartIn: 100, hadMedia: false },
    { restartIn: 200, hadMedia: false },
  ]);
});
