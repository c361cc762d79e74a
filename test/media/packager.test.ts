// needs: ffmpeg (fixtures made by scripts/make-fixtures.sh) — full lane only
import assert from 'node:assert/strict';
import test, { after } from 'node:test';
import { readBoxes } from '../../src/media/bmff/index.js';
import { parseInitSegment, readFragments, type LiveTrack, type Segment } from '../../src/media/index.js';
import {
  fixture,
  fixturePath,
  makePackager,
  presentationBytes,
  probePackets,
  pushInPieces,
  removeTempFiles,
  run,
  seededRandom,
  writeTemp,
  type FixtureName,
} from './helpers.js';

after(removeTempFiles);

const VIDEO_TIMESCALE = 12800; // ffmpeg's choice for 25 fps
const FRAME = VIDEO_TIMESCALE / 25;

/** Packages a whole fixture, pushed in one piece, and ends the input. */
function packageFixture(name: FixtureName, segmentDuration: number, chunkDuration: number) {
  const setup = makePackager({ segmentDuration, chunkDuration });
  setup.packager.push(fixture(name));
  setup.packager.endOfInput();
  return setup;
}

function sampleCount(segment: Segment): number {
  return segment.chunks.reduce((n, c) => n + c.sampleCount, 0);
}

/** Every published chunk, in order. */
function chunksOf(track: LiveTrack) {
  return track.list().flatMap((s) => s.chunks.map((chunk, index) => ({ segment: s, chunk, index })));
}

test('1 s segments of 25 fps video: 25 frames each, starting on a sync sample, numbered and timed back to back', () => {
  const { track, timeline } = packageFixture('video-6s.mp4', 1, 0);
  const segments = track.list();
  assert.match(track.info.codec, /^avc1\./);
  assert.equal(track.info.timescale, VIDEO_TIMESCALE);
  assert.equal(segments.length, 6);
  segments.forEach((s, i) => {
    assert.equal(s.number, timeline.startNumber + i);
    assert.equal(s.decodeTime, i * VIDEO_TIMESCALE, 'decode times continue without gap or overlap');
    assert.equal(s.decodeTime, timeline.segmentStart(s.number) * VIDEO_TIMESCALE, 'segments start on the grid');
    assert.equal(s.duration, VIDEO_TIMESCALE);
    assert.equal(sampleCount(s), 25);
    assert.ok(s.startsWithSap);
    assert.ok(s.complete);
    assert.equal(s.truncated, i === 5, 'only the segment open at the end of input is truncated');
    const [first] = readFragments(s.bytes(), parseInitSegment(track.init!))[0]!.trackFragments[0]!.samples;
    assert.ok(first!.isSync, `segment ${s.number} starts with a sync sample`);
  });
});

test('2 s segments in 0.2 s chunks: 10 chunks of 5 frames, each chunk one moof and one mdat, styp before the first', () => {
  const { track } = packageFixture('video-6s.mp4', 2, 0.2);
  const segments = track.list();
  assert.equal(segments.length, 3);
  for (const s of segments) {
    assert.deepEqual(
      s.chunks.map((c) => [c.sampleCount, c.duration]),
      Array.from({ length: 10 }, () => [5, 5 * FRAME]),
    );
    s.chunks.forEach((c, i) => {
      assert.deepEqual(
        readBoxes(c.bytes).map((b) => b.type),
        i === 0 ? ['styp', 'moof', 'mdat'] : ['moof', 'mdat'],
      );
      assert.equal(c.decodeTime, s.decodeTime + i * 5 * FRAME);
    });
  }
});

test('chunkDuration 0: every frame is its own chunk, published as it arrives', () => {
  const { track, packager } = makePackager({ segmentDuration: 1, chunkDuration: 0 });
  const chunks: number[] = [];
  track.on('chunk', (_, c) => chunks.push(c.sampleCount));
  const bytes = fixture('video-6s.mp4');
  // ftyp, moov, then three moof+mdat pairs: three frames, and three chunks out already.
  const cut = endOfBoxes(bytes, 2 + 3 * 2);
  packager.push(bytes.subarray(0, cut));
  assert.deepEqual(chunks, [1, 1, 1]);
  assert.equal(track.newest()!.complete, false, 'the segment stays open for more chunks');
  packager.push(bytes.subarray(cut));
  packager.endOfInput();
  assert.equal(chunks.length, 150);
  assert.ok(track.list().every((s) => s.chunks.every((c) => c.sampleCount === 1)));
});

/** End offset of the first `count` top-level boxes. */
function endOfBoxes(bytes: Uint8Array, count: number): number {
  let at = 0;
  for (let i = 0; i < count; i++) at += new DataView(bytes.buffer, bytes.byteOffset + at).getUint32(0);
  return at;
}

test('audio cuts on the same grid as video: segments within one AAC frame of the target, same numbers', () => {
  const video = makePackager({ segmentDuration: 1, chunkDuration: 0.2, id: 'v0' });
  const audio = makePackager({
    segmentDuration: 1,
    chunkDuration: 0.2,
    id: 'a0',
    timeline: video.timeline,
    window: video.window,
  });
  video.packager.push(fixture('video-6s.mp4'));
  audio.packager.push(fixture('audio-6s.mp4'));
  video.packager.endOfInput();
  audio.packager.endOfInput();

  assert.equal(audio.track.info.kind, 'audio');
  assert.equal(audio.track.info.codec, 'mp4a.40.2');
  const aacFrame = 1024;
  const timescale = audio.track.info.timescale;
  const full = audio.track.list().filter((s) => !s.truncated);
  assert.ok(full.length >= 5);
  for (const s of full) {
    assert.ok(Math.abs(s.duration - timescale) <= aacFrame, `audio segment ${s.number} lasts ${s.duration} ticks`);
    const start = audio.timeline.segmentStart(s.number) * timescale;
    assert.ok(
      Math.abs(s.decodeTime - start) <= aacFrame / 2,
      `audio segment ${s.number} starts within half a frame of the grid`,
    );
  }
  const videoNumbers = video.track.list().map((s) => s.number);
  assert.deepEqual(
    full.map((s) => s.number),
    videoNumbers.slice(0, full.length),
  );
});

test('any split of the input gives byte-identical output', () => {
  for (const name of ['video-6s.mp4', 'video-bframes-6s.mp4', 'audio-6s.mp4'] as FixtureName[]) {
    const whole = packageFixture(name, 1, 0.2);
    const seed = name.length * 7919;
    const pieces = makePackager({ segmentDuration: 1, chunkDuration: 0.2 });
    pushInPieces(pieces.packager, fixture(name), seededRandom(seed));
    pieces.packager.endOfInput();
    assert.deepEqual(pieces.track.init, whole.track.init, `${name}: init (seed ${seed})`);
    const layout = (track: LiveTrack) => chunksOf(track).map(({ segment, chunk }) => [segment.number, chunk.bytes]);
    assert.deepEqual(layout(pieces.track), layout(whole.track), `${name}: chunks (seed ${seed})`);
  }
});

test('the output re-parses: continuous tfdt, increasing sequence numbers, and ffmpeg decodes all 150 frames', () => {
  const { track } = packageFixture('video-6s.mp4', 2, 0.2);
  const init = parseInitSegment(track.init!);
  assert.deepEqual(init.fileType, { majorBrand: 'cmfc', minorVersion: 0, compatibleBrands: ['iso6', 'cmfc', 'dash'] });
  const source = parseInitSegment(fixture('video-6s.mp4'));
  assert.deepEqual(init.moov.bytes, source.moov.bytes, 'the encoder moov is kept byte for byte');

  const fragments = readFragments(presentationBytes(track));
  assert.deepEqual(
    fragments.map((f) => f.sequenceNumber),
    fragments.map((_, i) => i + 1),
  );
  let expected = 0;
  for (const f of fragments) {
    const [traf] = f.trackFragments;
    assert.equal(traf!.baseMediaDecodeTime, expected);
    expected += traf!.samples.reduce((n, s) => n + s.duration, 0);
  }
  assert.equal(expected, 150 * FRAME);
  assert.deepEqual(
    fragments.filter((f) => f.segmentType).map((f) => f.segmentType),
    Array.from({ length: 3 }, () => ({
      majorBrand: 'msdh',
      minorVersion: 0,
      compatibleBrands: ['msdh', 'msix', 'cmfs'],
    })),
  );

  const file = writeTemp(presentationBytes(track), 'video.mp4');
  const decoded = run('ffmpeg', ['-v', 'error', '-i', file, '-f', 'null', '-']);
  assert.equal(decoded.stderr, '', 'ffmpeg decodes without complaint');
  const count = run('ffprobe', [
    '-v',
    'error',
    '-count_frames',
    '-show_entries',
    'stream=nb_read_frames',
    '-of',
    'csv=p=0',
    file,
  ]);
  assert.equal(count.stdout.trim(), '150');
});

test('B-frames: the earliest presentation time includes the composition offset, and presentation order survives', () => {
  const { track } = packageFixture('video-bframes-6s.mp4', 2, 0.2);
  const segments = track.list();
  assert.equal(segments.length, 3);
  const init = parseInitSegment(track.init!);
  for (const s of segments) {
    const [first] = readFragments(s.bytes(), init)[0]!.trackFragments[0]!.samples;
    assert.ok(first!.compositionOffset > 0, 'x264 with B-frames delays presentation');
    assert.equal(s.earliestPresentationTime, s.decodeTime + first!.compositionOffset);
  }
  const output = writeTemp(presentationBytes(track), 'bframes.mp4');
  const before = probePackets(fixturePath('video-bframes-6s.mp4'));
  assert.equal(before.length, 150);
  assert.deepEqual(probePackets(output), before, 'same pts, dts and key flags for every packet');
});
