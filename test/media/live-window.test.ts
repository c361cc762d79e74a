// needs: ffmpeg (fixtures made by scripts/make-fixtures.sh) — full lane only
import assert from 'node:assert/strict';
import test from 'node:test';
import { fixture, makePackager } from './helpers.js';

test('the live window keeps timeShiftBufferDepth of complete segments plus the open one, evicting older ones', () => {
  const { track, packager } = makePackager({ segmentDuration: 1, chunkDuration: 0.2, timeShiftBufferDepth: 3 });
  const evicted: number[] = [];
  track.on('segmentevicted', (s) => evicted.push(s.number));
  packager.push(fixture('video-6s.mp4'));

  const live = track.list();
  assert.deepEqual(
    live.map((s) => s.number),
    [3, 4, 5, 6],
  );
  assert.deepEqual(
    live.map((s) => s.complete),
    [true, true, true, false],
  );
  assert.deepEqual(evicted, [1, 2]);
  assert.equal(track.get(1), undefined, 'an evicted segment is gone');

  packager.endOfInput();
  assert.deepEqual(
    track.list().map((s) => s.number),
    [4, 5, 6],
  );
  assert.deepEqual(evicted, [1, 2, 3]);
  assert.equal(track.publishedCount, 6);
});

test('maxSegmentsPerTrack caps the window whatever the segment durations', () => {
  const { track, packager } = makePackager({
    segmentDuration: 1,
    chunkDuration: 0,
    timeShiftBufferDepth: 3600,
    maxSegmentsPerTrack: 2,
  });
  let mostComplete = 0;
  track.on('segmentstarted', () => {
    mostComplete = Math.max(mostComplete, track.list().filter((s) => s.complete).length);
  });
  packager.push(fixture('video-6s.mp4'));
  packager.endOfInput();
  assert.equal(mostComplete, 2);
  assert.deepEqual(
    track.list().map((s) => s.number),
    [5, 6],
  );
});
