import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LiveTimeline } from '../../src/media/index.js';

test('each encoder run continues the segment grid at the wall clock, after everything published', () => {
  let now = Date.parse('2026-11-21T12:00:00.300Z');
  const timeline = new LiveTimeline(2, () => now);
  assert.equal(timeline.offsetFor(0, 0), 0);
  assert.equal(timeline.startNumber, Math.floor(timeline.availabilityStartTime! / 2000));
  timeline.notePublished(9.9);
  now += 7_000; // the encoder died at 9.9 s of media; the next run starts 7 s of wall clock later
  const offset = timeline.offsetFor(1, 0);
  assert.equal(offset % 2, 0, 'on the grid');
  assert.ok(offset >= 9.9 && offset >= 7, `after what was published and the wall clock: ${offset}`);
  assert.equal(timeline.offsetFor(1, 0), offset, 'one offset for every track of a run');
});

test('a crash-looping encoder does not grow the timeline: only the newest runs are remembered', () => {
  let now = 0;
  const timeline = new LiveTimeline(1, () => now);
  for (let generation = 0; generation < 100; generation++) {
    now += 1000;
    timeline.offsetFor(generation, 0);
  }
  const offsets = (timeline as unknown as { offsets: Map<number, number> }).offsets;
  assert.ok(offsets.size <= 4, `remembered runs: ${offsets.size}`);
  assert.ok(offsets.has(99));
});
