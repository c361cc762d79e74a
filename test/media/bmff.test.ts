// needs: ffmpeg (fixtures made by scripts/make-fixtures.sh) — full lane only
import assert from 'node:assert/strict';
import test from 'node:test';
import {
  BmffError,
  ByteWriter,
  MAX_FRAGMENT_SECONDS,
  MAX_SAMPLES_PER_FRAGMENT,
  childrenOf,
  codecString,
  describeTrack,
  parseElementaryStreamDescriptor,
  parseInitSegment,
  parseMovieFragment,
  readBoxes,
  readFragments,
  readTrackFragmentSamples,
  writeMediaDataHeader,
  writeMovieFragment,
  type AudioSampleEntry,
  type Box,
} from '../../src/media/bmff/index.js';
import { concat, fixture, fixturePath, makePackager, probeStream, type FixtureName } from './helpers.js';

const H264_PROFILE_IDC: Record<string, number> = { 'Constrained Baseline': 66, Baseline: 66, Main: 77, High: 100 };

for (const name of ['video-6s.mp4', 'video-bframes-6s.mp4', 'audio-6s.mp4'] as FixtureName[]) {
  test(`${name}: the init segment describes the track as ffprobe sees it`, () => {
    const init = parseInitSegment(fixture(name));
    assert.equal(init.tracks.length, 1);
    const [track] = init.tracks;
    const probe = probeStream(fixturePath(name));
    assert.equal(track!.timescale, Number(String(probe.time_base).split('/')[1]));
    if (probe.codec_type === 'video') {
      assert.equal(track!.kind, 'video');
      assert.match(track!.codec, /^avc1\.[0-9a-f]{6}$/);
      assert.equal(
        parseInt(track!.codec.slice(5, 7), 16),
        H264_PROFILE_IDC[String(probe.profile)],
        `profile ${probe.profile}`,
      );
      assert.equal(parseInt(track!.codec.slice(9, 11), 16), probe.level);
      if (probe.profile === 'Constrained Baseline')
        assert.ok(parseInt(track!.codec.slice(7, 9), 16) & 0x40, 'constraint_set1_flag');
      assert.equal(track!.width, probe.width);
      assert.equal(track!.height, probe.height);
    } else {
      assert.equal(track!.kind, 'audio');
      assert.equal(probe.profile, 'LC');
      assert.equal(track!.codec, 'mp4a.40.2');
      assert.equal(track!.sampleRate, Number(probe.sample_rate));
      assert.equal(track!.channels, probe.channels);
    }
    assert.ok(init.movie.fragmented);
    assert.ok(init.movie.tracks[0]!.trackExtends, 'trex defaults are read');
  });
}

/** The fixture's init segment with the four bytes of `from` (first occurrence) replaced by `to`. */
function patchedInit(from: string, to: string): { bytes: Uint8Array; at: number } {
  const bytes = fixture('video-6s.mp4');
  const init = parseInitSegment(bytes);
  const end = init.moov.offset + init.moov.bytes.length;
  const text = new TextDecoder('latin1').decode(bytes.subarray(0, end));
  const at = text.indexOf(from);
  assert.ok(at > 0);
  const patched = bytes.slice(0, end);
  patched.set(new TextEncoder().encode(to), at);
  return { bytes: patched, at };
}

test('an avc3 sample entry keeps its avc3 prefix', () => {
  const { bytes } = patchedInit('avc1', 'avc3');
  assert.match(parseInitSegment(bytes).tracks[0]!.codec, /^avc3\.42c0[0-9a-f]{2}$/);
});

test('an unsupported sample entry is a BmffError naming it and its offset', () => {
  const { bytes, at } = patchedInit('avc1', 'hvc1');
  assert.throws(
    () => parseInitSegment(bytes),
    (err: unknown) =>
      err instanceof BmffError &&
      err.box === 'hvc1' &&
      err.offset === at - 4 &&
      /unsupported sample entry/.test(err.message),
  );
});

/** An `esds` box with an AudioSpecificConfig, descriptor sizes in ffmpeg's 4-byte form. */
function esdsBox(objectTypeIndication: number, audioSpecificConfig: number[]): Box {
  const expandable = (n: number): number[] => [0x80, 0x80, 0x80, n];
  const decoderSpecificInfo = [0x05, ...expandable(audioSpecificConfig.length), ...audioSpecificConfig];
  const decoderConfig = [objectTypeIndication, 0x15, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, ...decoderSpecificInfo];
  const slConfig = [0x06, 0x01, 0x02];
  const esBody = [0x00, 0x01, 0x00, 0x04, ...expandable(decoderConfig.length), ...decoderConfig, ...slConfig];
  const w = new ByteWriter();
  w.fullBox('esds', 0, 0, () => w.bytes(Uint8Array.from([0x03, ...expandable(esBody.length), ...esBody])));
  return readBoxes(w.finish())[0]!;
}

function mp4aEntry(esds: Box): AudioSampleEntry {
  return {
    kind: 'audio',
    format: 'mp4a',
    offset: 0,
    channelCount: 2,
    sampleSize: 16,
    sampleRate: 48000,
    esds: parseElementaryStreamDescriptor(esds),
  };
}

test('mp4a codec strings and channels follow the ES descriptors and AudioSpecificConfig', () => {
  // AAC-LC, 48 kHz (index 3), stereo: 00010 0011 0010 000.
  const lc = mp4aEntry(esdsBox(0x40, [0x11, 0x90]));
  assert.equal(codecString(lc), 'mp4a.40.2');
  assert.deepEqual(lc.esds?.audioSpecificConfig, {
    audioObjectType: 2,
    samplingFrequency: 48000,
    channelConfiguration: 2,
  });
  // USAC: 11111 (escape) 001010 → 32 + 10 = 42; then 0011 (48 kHz), 0001 (mono).
  const usac = mp4aEntry(esdsBox(0x40, [0xf9, 0x46, 0x20]));
  assert.equal(codecString(usac), 'mp4a.40.42');
  assert.deepEqual(usac.esds?.audioSpecificConfig, {
    audioObjectType: 42,
    samplingFrequency: 48000,
    channelConfiguration: 1,
  });
  // MPEG-1 audio (MP3) has no audio object type.
  assert.equal(codecString(mp4aEntry(esdsBox(0x6b, []))), 'mp4a.6b');
});

test('a mono AAC track has one channel, although ffmpeg writes channelcount 2 in its sample entry', () => {
  // AAC-LC 44.1 kHz (index 4) mono, as ffmpeg -ac 1 writes it: 00010 0100 0001 000.
  const entry = mp4aEntry(esdsBox(0x40, [0x12, 0x08]));
  assert.equal(entry.channelCount, 2);
  const track = { trackId: 1, handlerType: 'soun', timescale: 44100, sampleEntries: [entry] };
  assert.equal(describeTrack(track).channels, 1);
});

test('ByteWriter grows from any capacity without losing or misplacing bytes', () => {
  const w = new ByteWriter(1);
  const expected: number[] = [];
  for (let i = 0; i < 300; i++) {
    w.u8(i & 0xff)
      .u16(0x0102)
      .u32(0x03040506)
      .bytes(Uint8Array.of(7, 8, 9));
    expected.push(i & 0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9);
  }
  assert.deepEqual([...w.finish()], expected);
});

test('box framing: size 0 runs to the end, size 1 carries a 64-bit largesize, uuid an extended type', () => {
  const userType = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
  const w = new ByteWriter();
  w.box('free', () => w.u32(7));
  w.u32(1).fourCC('skip').u64(20).u32(0xdeadbeef);
  w.u32(8 + 16 + 2)
    .fourCC('uuid')
    .bytes(userType)
    .u16(5);
  w.u32(0).fourCC('mdat').bytes(new Uint8Array(5));
  const boxes = readBoxes(w.finish(), 100);
  assert.deepEqual(
    boxes.map((b) => [b.type, b.offset, b.bytes.length, b.headerSize]),
    [
      ['free', 100, 12, 8],
      ['skip', 112, 20, 16],
      ['uuid', 132, 26, 24],
      ['mdat', 158, 13, 8],
    ],
  );
  assert.deepEqual(boxes[2]!.userType, userType);
});

test('boxes that do not fit are BmffErrors at their absolute offsets', () => {
  const tooSmall = Uint8Array.from([0, 0, 0, 4, ...new TextEncoder().encode('free')]);
  assert.throws(() => readBoxes(tooSmall, 1000), {
    name: 'BmffError',
    box: 'free',
    offset: 1000,
    message: /smaller than its 8-byte header/,
  });

  const w = new ByteWriter();
  w.box('moov', () => w.u32(100).fourCC('trak').u32(0));
  const [moov] = readBoxes(w.finish(), 5000);
  assert.throws(() => childrenOf(moov!), {
    box: 'trak',
    offset: 5008,
    message: /runs past the end of its parent 'moov'/,
  });
});

test('a trun whose sample count exceeds its box names the trun and its stream offset', () => {
  const moofBytes = writeMovieFragment({
    sequenceNumber: 1,
    trackId: 1,
    baseMediaDecodeTime: 0,
    samples: [
      { duration: 512, size: 10, flags: 0, compositionOffset: 0 },
      { duration: 512, size: 10, flags: 0x10000, compositionOffset: 0 },
    ],
    mediaDataHeaderSize: 8,
  });
  const [moof] = readBoxes(moofBytes, 70_000);
  const traf = childrenOf(moof!).find((b) => b.type === 'traf')!;
  const trun = childrenOf(traf).find((b) => b.type === 'trun')!;
  // sample_count follows the trun's 8-byte header and 4-byte version and flags.
  new DataView(moofBytes.buffer).setUint32(trun.offset - 70_000 + 12, 9999);
  assert.throws(() => parseMovieFragment(moof!, { maxDataBytes: 1 << 20 }), {
    name: 'BmffError',
    box: 'trun',
    offset: trun.offset,
    message: `malformed 'trun' box at byte ${trun.offset}: sample count 9999 exceeds box size`,
  });
});

test('written fragments read back: per-sample fields, signed composition offsets, data after the mdat header', () => {
  const samples = [
    { duration: 512, size: 3, flags: 0x02000000, compositionOffset: 1024 },
    { duration: 512, size: 2, flags: 0x01010000, compositionOffset: -512 },
    { duration: 256, size: 1, flags: 0x01010000, compositionOffset: 0 },
  ];
  const payload = Uint8Array.from([1, 2, 3, 4, 5, 6]);
  const mdatHeader = writeMediaDataHeader(payload.length);
  const moof = writeMovieFragment({
    sequenceNumber: 7,
    trackId: 3,
    baseMediaDecodeTime: 2 ** 40,
    samples,
    mediaDataHeaderSize: mdatHeader.length,
  });
  const [fragment] = readFragments(concat([moof, mdatHeader, payload]));
  assert.equal(fragment!.sequenceNumber, 7);
  const [traf] = fragment!.trackFragments;
  assert.equal(traf!.trackId, 3);
  assert.equal(traf!.baseMediaDecodeTime, 2 ** 40, 'tfdt is 64-bit');
  assert.deepEqual(
    traf!.samples.map((s) => ({
      duration: s.duration,
      size: s.size,
      flags: s.flags,
      compositionOffset: s.compositionOffset,
    })),
    samples,
  );
  assert.deepEqual(
    traf!.samples.map((s) => [...s.data]),
    [[1, 2, 3], [4, 5], [6]],
  );
  assert.deepEqual(
    traf!.samples.map((s) => s.decodeTime),
    [2 ** 40, 2 ** 40 + 512, 2 ** 40 + 1024],
  );
  assert.deepEqual(
    traf!.samples.map((s) => s.isSync),
    [true, false, false],
  );
  // Version 1 trun (signed offsets) only when there are offsets at all.
  const trunVersion = (bytes: Uint8Array): number => {
    const [box] = readBoxes(bytes);
    const traf = childrenOf(box!).find((b) => b.type === 'traf')!;
    return childrenOf(traf).find((b) => b.type === 'trun')!.bytes[8]!;
  };
  assert.equal(trunVersion(moof), 1);
  const plain = writeMovieFragment({
    sequenceNumber: 1,
    trackId: 1,
    baseMediaDecodeTime: 0,
    samples: samples.map((s) => ({ ...s, compositionOffset: 0 })),
    mediaDataHeaderSize: 8,
  });
  assert.equal(trunVersion(plain), 0);
});

test('sample data is located by base_data_offset, then run after run and track fragment after track fragment', () => {
  // No default-base-is-moof: the first traf gives an explicit base_data_offset (a stream position),
  // its trun no data_offset; the second traf has no base, so its data follows the first's (§8.8.7.1).
  const sampleDefaults = 0x08 | 0x10 | 0x20;
  const build = (baseDataOffset: number): Uint8Array => {
    const w = new ByteWriter();
    w.box('moof', () => {
      w.fullBox('mfhd', 0, 0, () => w.u32(1));
      w.box('traf', () => {
        w.fullBox('tfhd', 0, 0x01 | sampleDefaults, () => w.u32(1).u64(baseDataOffset).u32(100).u32(4).u32(0));
        w.fullBox('trun', 0, 0, () => w.u32(2));
      });
      w.box('traf', () => {
        w.fullBox('tfhd', 0, sampleDefaults, () => w.u32(2).u32(50).u32(4).u32(0));
        w.fullBox('trun', 0, 0, () => w.u32(1));
      });
    });
    return w.finish();
  };
  const moofSize = build(0).length;
  // A 'free' box first, so that the moof does not start at byte 0: base_data_offset counts from the stream start.
  const free = Uint8Array.from([0, 0, 0, 8, ...new TextEncoder().encode('free')]);
  const dataStart = free.length + moofSize + 8;
  const file = concat([free, build(dataStart), writeMediaDataHeader(12), Uint8Array.from({ length: 12 }, (_, i) => i)]);
  const [fragment] = readFragments(file);
  assert.deepEqual(
    fragment!.trackFragments.map((t) => [t.trackId, t.samples.map((s) => [...s.data])]),
    [
      [
        1,
        [
          [0, 1, 2, 3],
          [4, 5, 6, 7],
        ],
      ],
      [2, [[8, 9, 10, 11]]],
    ],
  );
});

/**
 * A `moof` whose runs carry no per-sample table: every sample from the `tfhd` defaults, each run
 * claiming `count` samples in 16 bytes. Ten runs of 2^20 make the 220-byte fragment of an abuse run,
 * which made the packager build ten million samples (~700 MiB) before its bounds.
 */
function tablelessFragment(o: {
  trackId: number;
  runs: number;
  count: number;
  size: number;
  duration: number;
  /** The samples' data starts right after the moof and an 8-byte mdat header (else at the moof's start). */
  dataFollows?: boolean;
}) {
  const w = new ByteWriter();
  let baseAt = 0;
  w.box('moof', () => {
    w.fullBox('mfhd', 0, 0, () => w.u32(1));
    w.box('traf', () => {
      // default-base-is-moof or base_data_offset, then default duration, size and flags
      const flags = (o.dataFollows ? 0x01 : 0x02_0000) | 0x08 | 0x10 | 0x20;
      w.fullBox('tfhd', 0, flags, () => {
        w.u32(o.trackId);
        baseAt = w.position;
        if (o.dataFollows) w.u64(0);
        w.u32(o.duration).u32(o.size).u32(0);
      });
      for (let i = 0; i < o.runs; i++) w.fullBox('trun', 0, 0, () => w.u32(o.count));
    });
  });
  const bytes = w.finish();
  if (o.dataFollows) new DataView(bytes.buffer).setUint32(baseAt + 4, bytes.length + 8);
  const [moof] = readBoxes(bytes);
  const traf = childrenOf(moof!).find((b) => b.type === 'traf')!;
  const truns = childrenOf(traf).filter((b) => b.type === 'trun');
  return { bytes, moof: moof!, truns };
}

test('the 220-byte hostile fragment (ten runs of 2^20 default samples) is refused at its first run, in bounded memory', () => {
  const file = fixture('video-6s.mp4');
  const { moov, movie } = parseInitSegment(file);
  const init = file.subarray(0, moov.offset + moov.bytes.length);
  const track = movie.tracks[0]!;
  const hostile = tablelessFragment({ trackId: track.trackId, runs: 10, count: 2 ** 20, size: 0, duration: 1 });
  assert.ok(hostile.bytes.length <= 220, `${hostile.bytes.length} bytes`);
  const firstRun = hostile.truns[0]!;

  const heapBefore = process.memoryUsage().heapUsed;
  // The packager, as it met the fragment: after the init segment, a moof whose mdat is yet to come.
  const { packager } = makePackager({ segmentDuration: 2, chunkDuration: 0 });
  packager.push(init);
  assert.throws(
    () => packager.push(hostile.bytes),
    (error: unknown) => {
      assert.ok(error instanceof BmffError, String(error));
      assert.equal(error.box, 'trun');
      // Stream offsets: the moof follows the init segment in the packager's input.
      assert.equal(error.offset, init.length + firstRun.offset);
      assert.match(
        error.message,
        new RegExp(`sample count 1048576 takes the fragment past ${MAX_SAMPLES_PER_FRAGMENT} samples`),
      );
      return true;
    },
  );
  // Whole-buffer reading refuses it the same way.
  assert.throws(() => readFragments(concat([init, hostile.bytes, writeMediaDataHeader(0)])), {
    name: 'BmffError',
    box: 'trun',
  });
  const grown = process.memoryUsage().heapUsed - heapBefore;
  assert.ok(grown < 32 * 1024 * 1024, `the heap grew by ${(grown / 2 ** 20).toFixed(1)} MiB`);
});

test('fragment bounds: the sample total over runs, sample data against the bytes that follow, duration against the timescale', () => {
  const track = { timescale: 1000 };
  const trackFor = () => track;
  // Each run within the total, together past it: refused at the run that crosses it.
  const many = tablelessFragment({ trackId: 1, runs: 3, count: 30_000, size: 1, duration: 1 });
  assert.throws(() => parseMovieFragment(many.moof, { trackFor, maxDataBytes: 1 << 20 }), {
    box: 'trun',
    offset: many.truns[2]!.offset,
    message: /takes the fragment past 65536 samples/,
  });
  // 1000 empty samples count 1000 bytes; the mdat that follows has 192, whatever comes after it.
  const empty = tablelessFragment({ trackId: 1, runs: 1, count: 1000, size: 0, duration: 1, dataFollows: true });
  const mdat = concat([writeMediaDataHeader(192), new Uint8Array(192)]);
  const after = concat([writeMediaDataHeader(4096), new Uint8Array(4096)]);
  assert.throws(() => readFragments(concat([empty.bytes, mdat, after])), {
    box: 'trun',
    offset: empty.truns[0]!.offset,
    message: /samples need 1000 bytes of data, more than the 192 that can follow the 'moof'/,
  });
  // Parsed against a looser bound (the packager knows only its largest box when the moof arrives), the
  // samples are refused when the mdat is read.
  const parsed = parseMovieFragment(empty.moof, { trackFor, maxDataBytes: 64 * 1024 * 1024 });
  const [mdatBox] = readBoxes(mdat, empty.bytes.length);
  assert.throws(() => readTrackFragmentSamples(parsed.trackFragments[0]!, mdatBox!, 0), {
    box: 'trun',
    message: /samples need 193 bytes of data, more than the 192 of the 'mdat' payload/,
  });
  // Sizes from the run's table count too, sample by sample.
  const sized = writeMovieFragment({
    sequenceNumber: 1,
    trackId: 1,
    baseMediaDecodeTime: 0,
    samples: [
      { duration: 1, size: 150, flags: 0, compositionOffset: 0 },
      { duration: 1, size: 150, flags: 0, compositionOffset: 0 },
    ],
    mediaDataHeaderSize: 8,
  });
  assert.throws(() => parseMovieFragment(readBoxes(sized)[0]!, { maxDataBytes: 200 }), {
    message: /samples need 150 bytes of data, more than the 50 that can follow/,
  });
  // An hour and a second of samples at this timescale.
  const long = tablelessFragment({ trackId: 1, runs: 1, count: 2, size: 1, duration: 1800_500 });
  assert.throws(() => parseMovieFragment(long.moof, { trackFor, maxDataBytes: 1 << 20 }), {
    message: new RegExp(`samples last 3601000 ticks, more than the fragment's ${MAX_FRAGMENT_SECONDS} s`),
  });
  // Within every bound: read.
  const fine = tablelessFragment({ trackId: 1, runs: 2, count: 100, size: 2, duration: 40 });
  const fragment = parseMovieFragment(fine.moof, { trackFor, maxDataBytes: 400 });
  assert.equal(fragment.trackFragments[0]!.runs.flatMap((r) => r.samples).length, 200);
});
