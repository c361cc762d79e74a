/**
 * PushPromiseStream: stream 0 of a multicast push session, its PUSH_PROMISE frames parsed in order and
 * across holes, stale holes given up only towards a trusted run, refused bytes forgotten.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { PushPromiseStream, type IslandPromise } from '../../src/push/push-promise-stream.js';
import { encodeFieldSection, encodeHttp3Frame } from '../../src/wire/index.js';
import { concat } from '../wire/support.js';

const TIMEOUT = 1000;

function promise(pushId: number, path: string): Uint8Array {
  const fieldSection = encodeFieldSection([
    { name: ':method', value: 'GET' },
    { name: ':scheme', value: 'https' },
    { name: ':authority', value: 'example.com' },
    { name: ':path', value: path },
  ]);
  return encodeHttp3Frame({ kind: 'push-promise', pushId, fieldSection });
}

function stream0() {
  const clock = { now: 0 };
  const seen: { pushId: number; from?: IslandPromise }[] = [];
  const s = new PushPromiseStream({
    onPromise: (pushId, _fieldSection, from) => seen.push({ pushId, from }),
    timeoutMs: TIMEOUT,
    now: () => clock.now,
  });
  return { s, seen, clock };
}

/** Three promises laid out on stream 0, each its own STREAM frame, as the profile's senders write them. */
const frames = [promise(0, '/a'), promise(1, '/b'), promise(2, '/c')];
const offsets = frames.map((_, i) => frames.slice(0, i).reduce((n, f) => n + f.length, 0));

test('promises in order, in any split of STREAM frames: each raised once, nothing held after', () => {
  const { s, seen } = stream0();
  const all = concat(...frames);
  for (let at = 0; at < all.length; at += 7) assert.equal(s.add(at, all.subarray(at, at + 7), Infinity), true);
  assert.deepEqual(
    seen.map((p) => [p.pushId, p.from]),
    [
      [0, undefined],
      [1, undefined],
      [2, undefined],
    ],
  );
  assert.equal(s.bufferedBytes, 0, 'the parsed prefix is released');
  assert.deepEqual(s.counts, { malformed: 0, duplicates: 0, bytes: all.length, skips: 0 });
});

test('a hole: the promises behind it are raised at once, from their run; again when the hole fills', () => {
  const { s, seen } = stream0();
  s.add(offsets[0]!, frames[0]!, Infinity);
  s.add(offsets[2]!, frames[2]!, Infinity); // frames[1] lost for now
  assert.deepEqual(
    seen.map((p) => p.pushId),
    [0, 2],
  );
  assert.deepEqual(seen[1]!.from?.frame, { start: offsets[2], end: offsets[2]! + frames[2]!.length });
  assert.equal(s.bufferedBytes, frames[2]!.length, 'the run past the hole is held');
  s.add(offsets[1]!, frames[1]!, Infinity);
  assert.deepEqual(
    seen.map((p) => p.pushId),
    [0, 2, 1, 2],
    'the main reader raises 1 and 2 again; the reassembler dedupes',
  );
  assert.equal(s.bufferedBytes, 0);
});

test('a stale hole is skipped only to a trusted run, and only after the timeout', () => {
  const { s, seen, clock } = stream0();
  s.add(offsets[0]!, frames[0]!, Infinity);
  s.add(offsets[2]!, frames[2]!, Infinity);
  clock.now = TIMEOUT + 1;
  s.skipStaleHole();
  assert.equal(s.counts.skips, 0, 'no run trusted yet: nothing to skip to');
  s.trust(seen[1]!.from!);
  clock.now = TIMEOUT / 2;
  s.skipStaleHole();
  assert.equal(s.counts.skips, 0, 'not stale yet');
  clock.now = TIMEOUT + 1;
  s.skipStaleHole();
  assert.equal(s.counts.skips, 1);
  assert.equal(s.bufferedBytes, 0, 'the bytes before and of the run are released');
  // The hole's bytes arriving after the skip are behind the parsed prefix: nothing is raised again.
  const before = seen.length;
  s.add(offsets[1]!, frames[1]!, Infinity);
  assert.equal(seen.length, before);
});

test('a refused promise past a hole is forgotten, so the genuine bytes at its offsets are taken', () => {
  const { s, seen } = stream0();
  s.add(offsets[0]!, frames[0]!, Infinity);
  const forged = promise(9, '/x');
  assert.equal(forged.length, frames[2]!.length, 'same length as the genuine frame it shadows');
  s.add(offsets[2]!, forged, Infinity);
  assert.equal(seen.at(-1)!.pushId, 9);
  s.discard(seen.at(-1)!.from!);
  assert.equal(s.bufferedBytes, 0);
  s.add(offsets[2]!, frames[2]!, Infinity);
  assert.equal(seen.at(-1)!.pushId, 2, 'the genuine promise is parsed, not a duplicate of the forged one');
  assert.equal(s.counts.duplicates, 0);
});

test('bounds: new bytes past the room are refused and not kept; bytes far ahead are refused as malformed', () => {
  const { s, seen } = stream0();
  assert.equal(s.add(0, frames[0]!, frames[0]!.length - 1), false);
  assert.equal(s.bufferedBytes, 0);
  assert.equal(seen.length, 0);
  assert.equal(s.add(2 * 1024 * 1024, frames[1]!, Infinity), true);
  assert.equal(s.counts.malformed, 1);
  assert.equal(s.bufferedBytes, 0);
  assert.equal(s.add(0, frames[0]!, frames[0]!.length), true, 'exactly the room fits');
  assert.equal(seen.length, 1);
});
