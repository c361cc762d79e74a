// needs: ffmpeg (fixtures made by scripts/make-fixtures.sh) — full lane only
import assert from 'node:assert/strict';
import test from 'node:test';
import { ByteWriter, childrenOf, readBoxes, type Box } from '../../src/media/bmff/index.js';
import { BmffError, readFragments, type LiveTrack } from '../../src/media/index.js';
import { concat, fixture, makePackager, seededRandom } from './helpers.js';

const TIMESCALE = 12800;

/** The `trun` of the `index`-th movie fragment of a stream. */
function trunOf(bytes: Uint8Array, index: number): Box {
  const moof = readBoxes(bytes).filter((b) => b.type === 'moof')[index];
  const traf = childrenOf(moof!).find((b) => b.type === 'traf')!;
  return childrenOf(traf).find((b) => b.type === 'trun')!;
}

function snapshot(track: LiveTrack): Map<number, Uint8Array> {
  return new Map(track.list().map((s) => [s.number, s.bytes()]));
}

function maxSequenceNumber(track: LiveTrack, numbers: (n: number) => boolean): number {
  const fragments = track
    .list()
    .filter((s) => numbers(s.number))
    .flatMap((s) => readFragments(s.bytes()));
  return Math.max(...fragments.map((f) => f.sequenceNumber));
}

test('a restarted encoder continues the presentation: truncated segment kept, new init, later numbers and times', () => {
  const { track, packager, clock, timeline } = makePackager({ segmentDuration: 1, chunkDuration: 0.2 });
  const inits: Uint8Array[] = [];
  track.on('init', (t) => inits.push(t.init!));
  const bytes = fixture('video-6s.mp4');

  packager.push(bytes.subarray(0, Math.floor(bytes.length * 0.55))); // the encoder dies mid-box
  const open = track.newest()!;
  assert.equal(open.complete, false);
  packager.endOfInput();
  assert.ok(open.complete && open.truncated, 'the open segment is completed, marked truncated');
  assert.ok(open.duration > 0 && open.duration < TIMESCALE);
  assert.ok(
    track
      .list()
      .slice(0, -1)
      .every((s) => s.complete && !s.truncated),
  );
  assert.equal(packager.generation, 1);
  const before = snapshot(track);
  const endBefore = open.decodeTime + open.duration;
  const sequenceBefore = maxSequenceNumber(track, () => true);

  clock.advance(20); // the encoder comes back 20 s after the presentation started
  packager.push(bytes);
  packager.endOfInput();
  assert.equal(packager.generation, 2);
  assert.equal(inits.length, 2, 'the new run publishes its init segment again');

  const after = track.list().filter((s) => s.number > open.number);
  assert.equal(after.length, 6);
  assert.equal(after[0]!.number, timeline.segmentNumberNear(20), 'numbering resumes at the wall-clock position');
  assert.equal(after[0]!.decodeTime, 20 * TIMESCALE);
  assert.ok(after[0]!.decodeTime >= endBefore);
  after.forEach((s, i) => {
    assert.equal(s.number, after[0]!.number + i);
    assert.equal(s.decodeTime, timeline.segmentStart(s.number) * TIMESCALE);
  });
  for (const [number, bytesBefore] of before)
    assert.deepEqual(track.get(number)!.bytes(), bytesBefore, `segment ${number} unchanged`);
  const firstSequenceAfter = Math.min(...readFragments(after[0]!.bytes()).map((f) => f.sequenceNumber));
  assert.equal(firstSequenceAfter, sequenceBefore + 1, 'mfhd sequence numbers keep increasing across runs');
});

test('an immediate restart still moves forward, to the grid position after everything published', () => {
  const { track, packager, timeline } = makePackager({ segmentDuration: 1, chunkDuration: 0 });
  const bytes = fixture('video-6s.mp4');
  packager.push(bytes.subarray(0, Math.floor(bytes.length * 0.55)));
  packager.endOfInput();
  const last = track.newest()!;
  packager.push(bytes);
  const next = track.list().find((s) => s.number > last.number)!;
  assert.equal(next.number, last.number + 1);
  assert.ok(next.decodeTime >= last.decodeTime + last.duration);
  assert.equal(next.decodeTime, timeline.segmentStart(next.number) * TIMESCALE);
});

test('a moov cut short by the end of input publishes no init segment; the next run does', () => {
  const { track, packager } = makePackager({ segmentDuration: 1, chunkDuration: 0 });
  const bytes = fixture('video-6s.mp4');
  const [ftyp, moov] = readBoxes(bytes);
  packager.push(bytes.subarray(0, ftyp!.bytes.length + moov!.bytes.length / 2));
  packager.endOfInput();
  assert.equal(track.init, undefined);
  assert.equal(track.list().length, 0);
  packager.push(bytes);
  packager.endOfInput();
  assert.ok(track.init);
  assert.equal(track.list().length, 6);
});

test('a malformed trun mid-stream: BmffError at its stream offset, published segments untouched, next run recovers', () => {
  // The B-frame fixture's truns carry per-sample composition offsets, so a sample count can exceed the box.
  const clean = makePackager({ segmentDuration: 2, chunkDuration: 0 });
  clean.packager.push(fixture('video-bframes-6s.mp4'));

  const bytes = fixture('video-bframes-6s.mp4').slice();
  const trun = trunOf(bytes, 59); // frame 59: the tenth of the second 2 s segment
  new DataView(bytes.buffer).setUint32(trun.offset + 12, 9999); // sample_count, after header, version and flags
  const { track, packager } = makePackager({ segmentDuration: 2, chunkDuration: 0 });

  // Fed in pieces, so the offset must be counted over the whole stream, not within a piece.
  const random = seededRandom(42);
  const errors: unknown[] = [];
  for (let at = 0; at < bytes.length; ) {
    const n = 1 + Math.floor(random() * 4096);
    try {
      packager.push(bytes.subarray(at, at + n));
    } catch (err) {
      errors.push(err);
    }
    at += n;
  }
  assert.equal(errors.length, 1, 'one error, then the rest of the input is ignored');
  const [error] = errors;
  assert.ok(error instanceof BmffError);
  assert.equal(error.box, 'trun');
  assert.equal(error.offset, trun.offset);
  assert.equal(error.message, `malformed 'trun' box at byte ${trun.offset}: sample count 9999 exceeds box size`);

  assert.equal(track.list().length, 2);
  const [s1, s2] = track.list();
  assert.deepEqual(s1!.bytes(), clean.track.get(1)!.bytes());
  assert.ok(s2!.complete && s2!.truncated, 'the segment open at the error is closed as it was');
  assert.equal(s2!.chunks.length, 9);
  assert.deepEqual(s2!.chunks, clean.track.get(2)!.chunks.slice(0, 9));

  packager.endOfInput();
  packager.push(fixture('video-bframes-6s.mp4'));
  packager.endOfInput();
  const recovered = track.list().filter((s) => s.number > 2);
  assert.equal(recovered.length, 3);
  assert.ok(recovered.slice(0, -1).every((s) => s.complete && !s.truncated && s.chunks.length === 50));
});

test('garbage is refused at once, and the rest of that input ignored', () => {
  const { track, packager } = makePackager({ segmentDuration: 1, chunkDuration: 0 });
  assert.throws(() => packager.push(new TextEncoder().encode('this is not an MP4 stream at all')), {
    name: 'BmffError',
    offset: 0,
  });
  packager.push(fixture('video-6s.mp4')); // same input: ignored
  assert.equal(track.init, undefined);
  packager.endOfInput();

  assert.throws(() => packager.push(Uint8Array.from([0, 0, 0, 16, 0xde, 0xad, 0xbe, 0xef])), {
    box: '\\xde\\xad\\xbe\\xef',
    message: /not an ISO BMFF box/,
  });
  packager.endOfInput();
  packager.push(fixture('video-6s.mp4'));
  assert.ok(track.init);
});

test('a box header claiming 1 GiB is refused with maxBoxSize 1 MiB as soon as its header arrives', () => {
  const { packager } = makePackager({ segmentDuration: 1, chunkDuration: 0, maxBoxSize: 1 << 20 });
  const bytes = fixture('video-6s.mp4');
  const [ftyp, moov] = readBoxes(bytes);
  const initEnd = ftyp!.bytes.length + moov!.bytes.length;
  packager.push(bytes.subarray(0, initEnd));
  const header = new ByteWriter()
    .u32(2 ** 30)
    .fourCC('mdat')
    .finish();
  assert.throws(() => packager.push(header), {
    name: 'BmffError',
    box: 'mdat',
    offset: initEnd,
    message: /box size 1073741824 exceeds the 1048576-byte limit/,
  });
  packager.push(new Uint8Array(2 << 20)); // the claimed payload: ignored, not buffered
});

test('sample data outside its mdat, fragments before the moov and movies of two tracks are BmffErrors', () => {
  const bytes = fixture('video-6s.mp4').slice();
  const [ftyp, moov, firstMoof] = readBoxes(bytes);

  // A data_offset pointing past the mdat.
  const trun = trunOf(bytes, 3);
  const trunFields = new DataView(bytes.buffer, trun.offset);
  const dataOffset = trunFields.getInt32(16);
  trunFields.setInt32(16, 0x7fff_0000);
  const outside = makePackager({ segmentDuration: 1, chunkDuration: 0 });
  assert.throws(() => outside.packager.push(bytes), {
    box: 'trun',
    offset: trun.offset,
    message: /sample 0 data at bytes .* lies outside the 'mdat' payload/,
  });

  // More samples than the mdat holds, in a run whose sizes all come from the tfhd defaults.
  trunFields.setInt32(16, dataOffset);
  trunFields.setUint32(12, 9999);
  const overrun = makePackager({ segmentDuration: 1, chunkDuration: 0 });
  assert.throws(() => overrun.packager.push(bytes), {
    box: 'trun',
    offset: trun.offset,
    message: /sample 1 data at bytes .* lies outside the 'mdat' payload/,
  });

  const noMoov = makePackager({ segmentDuration: 1, chunkDuration: 0 });
  assert.throws(() => noMoov.packager.push(concat([ftyp!.bytes, bytes.subarray(firstMoof!.offset)])), {
    box: 'moof',
    offset: ftyp!.bytes.length,
    message: /movie fragment before the movie header/,
  });

  // The moov with its trak twice.
  const w = new ByteWriter();
  w.box('moov', () => {
    for (const child of childrenOf(moov!)) {
      w.bytes(child.bytes);
      if (child.type === 'trak') w.bytes(child.bytes);
    }
  });
  const twoTracks = makePackager({ segmentDuration: 1, chunkDuration: 0 });
  assert.throws(() => twoTracks.packager.push(concat([ftyp!.bytes, w.finish()])), {
    box: 'moov',
    offset: ftyp!.bytes.length,
    message: /expected exactly one track, found 2/,
  });
  assert.equal(twoTracks.track.init, undefined);
});

test('boxes a CMAF track does not need (free, uuid, sidx, a stray mdat) are skipped', () => {
  const bytes = fixture('video-6s.mp4');
  const boxes = readBoxes(bytes);
  const extra = new ByteWriter();
  extra.box('free', () => extra.u8(0).u8(0).u8(0));
  extra
    .u32(8 + 16 + 4)
    .fourCC('uuid')
    .bytes(new Uint8Array(16).fill(7))
    .u32(1);
  extra.box('mdat', () => extra.u32(0xfeedface)); // no moof describes it
  extra.box('sidx', () => extra.u32(0));
  const withExtras = concat(
    boxes.flatMap((b, i) => (b.type === 'mdat' && i % 10 === 3 ? [b.bytes, extra.finish()] : [b.bytes])),
  );

  const plain = makePackager({ segmentDuration: 1, chunkDuration: 0.2 });
  plain.packager.push(bytes);
  const padded = makePackager({ segmentDuration: 1, chunkDuration: 0.2 });
  padded.packager.push(withExtras);
  assert.deepEqual(
    padded.track.list().map((s) => s.bytes()),
    plain.track.list().map((s) => s.bytes()),
  );
});
