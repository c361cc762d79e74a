// needs: ffmpeg (fixtures made by scripts/make-fixtures.sh) — full lane only
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildLiveMpd, LiveTimeline, segmentTimelineEntries, type Segment } from '../../src/media/index.js';
import { validateMpd } from '../support/xmllint.js';
import { FakeClock, fixture, makePackager } from './helpers.js';

/** The fixture's key frames, seconds: GoPs of 0.6, 2.52, 0.4, 0.48, 3.2 and 0.8 s (frames at 25 fps). */
const KEY_FRAMES = [0, 0.6, 3.12, 3.52, 4, 7.2];

function packageIrregular(segmentTimeline: boolean, clock = new FakeClock()) {
  const timeline = new LiveTimeline(1, clock.now, 1, { segmentTimeline });
  const p = makePackager({ segmentDuration: 1, chunkDuration: 0.2, timeline, clock });
  p.packager.push(fixture('video-irregular-8s.mp4'));
  p.packager.endOfInput();
  return p;
}

const seconds = (s: Segment, ticks: number) => Math.round((ticks / s.timescale) * 1000) / 1000;

test('irregular GoPs on the grid: a GoP longer than the target skips numbers ($Number$ with @duration cannot address them)', () => {
  const { track } = packageIrregular(false);
  const numbers = track.list().map((s) => s.number);
  assert.deepEqual(numbers, [1, 4, 5, 8]);
});

test('irregular GoPs with a segment timeline: consecutive numbers, each segment from a key frame to the next cut, exact times', () => {
  const { track } = packageIrregular(true);
  const segments = track.list();
  assert.deepEqual(
    segments.map((s) => s.number),
    [1, 2, 3, 4],
  );
  // Cuts at the first key frame past the grid line after the one nearest the segment's start.
  assert.deepEqual(
    segments.map((s) => seconds(s, s.decodeTime)),
    [0, 3.12, 4, 7.2],
  );
  assert.deepEqual(
    segments.map((s) => seconds(s, s.duration)),
    [3.12, 0.88, 3.2, 0.8],
  );
  for (const s of segments) {
    assert.ok(s.startsWithSap, `segment ${s.number} starts with a key frame`);
    assert.ok(KEY_FRAMES.includes(seconds(s, s.decodeTime)));
  }
  for (let i = 1; i < segments.length; i++)
    assert.equal(
      segments[i]!.decodeTime,
      segments[i - 1]!.decodeTime + segments[i - 1]!.duration,
      'no gap, no overlap',
    );
});

test('the MPD lists each segment exactly (S@t, S@d), keeps a reconnection gap as a new S@t, and validates', () => {
  const clock = new FakeClock();
  const p = packageIrregular(true, clock);
  // The encoder comes back 5 s after its stream ended: a new generation, numbers go on from the last one.
  clock.advance(13);
  p.packager.push(fixture('video-irregular-8s.mp4'));
  p.packager.endOfInput();
  const segments = p.track.list();
  assert.deepEqual(
    segments.map((s) => s.number),
    [1, 2, 3, 4, 5, 6, 7, 8],
  );
  const gapAt = segments[4]!;
  assert.ok(gapAt.decodeTime > segments[3]!.decodeTime + segments[3]!.duration, 'the second run starts after a gap');

  const timeline = segments.map((s) => ({ number: s.number, time: s.decodeTime, duration: s.duration }));
  const runs = segmentTimelineEntries(timeline);
  assert.equal(runs.length, 8, 'no two neighbours share a duration here');
  assert.deepEqual(
    runs.map((r) => r.t),
    segments.map((s) => s.decodeTime),
  );
  // Equal, contiguous durations fold into S@r; a gap never does.
  assert.deepEqual(
    segmentTimelineEntries([
      { number: 1, time: 0, duration: 10 },
      { number: 2, time: 10, duration: 10 },
      { number: 3, time: 25, duration: 10 },
    ]),
    [
      { t: 0, d: 10, r: 1 },
      { t: 25, d: 10, r: 0 },
    ],
  );

  const info = p.track.info;
  const mpd = buildLiveMpd({
    tracks: [info],
    availabilityStartTime: p.timeline.availabilityStartTime!,
    segmentDuration: 1,
    startNumber: p.timeline.startNumber,
    chunkDuration: 0.2,
    lowLatency: true,
    timeShiftBufferDepth: 60,
    minimumUpdatePeriod: 1,
    targetLatency: 3,
    utcTimingUrl: 'http://localhost/time',
    segmentTimelines: new Map([[info.id, timeline]]),
  });
  const verdict = validateMpd(mpd);
  assert.ok(verdict.valid, verdict.output);
  assert.match(mpd, new RegExp(`<SegmentTemplate timescale="${info.timescale}" startNumber="1"`));
  assert.equal([...mpd.matchAll(/<S t="(\d+)" d="(\d+)"\/>/g)].length, 8);
  assert.match(mpd, /maxSegmentDuration="PT3\.2S"/);
  assert.doesNotMatch(mpd, /duration="1000"/, 'no nominal duration beside the timeline');
});
