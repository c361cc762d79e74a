import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { LiveSource, parseLadder, type MediaSink } from '../../src/source/index.js';

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
