/**
 * Movie fragments (ISO/IEC 14496-12 §8.8): `moof` parsing and the location of each sample's data.
 *
 * Parsing happens in two steps because a live stream delivers the `moof` before its `mdat`: first the
 * sample table and the stream position of every sample's bytes, then, once the `mdat` is in, the bytes.
 */
import { BmffError } from './errors.js';
import type { TrackExtends } from './movie.js';
import { childrenOf, FieldReader, requireSingleChild, type Box } from './reader.js';

/** Sample flags (§8.8.3.1): set on every sample that is not a sync sample (not a random access point). */
export const SAMPLE_IS_NON_SYNC_SAMPLE = 0x0001_0000;

/** `tfhd` flags (§8.8.7.1). */
export const TFHD_BASE_DATA_OFFSET_PRESENT = 0x00_0001;
export const TFHD_SAMPLE_DESCRIPTION_INDEX_PRESENT = 0x00_0002;
export const TFHD_DEFAULT_SAMPLE_DURATION_PRESENT = 0x00_0008;
export const TFHD_DEFAULT_SAMPLE_SIZE_PRESENT = 0x00_0010;
export const TFHD_DEFAULT_SAMPLE_FLAGS_PRESENT = 0x00_0020;
export const TFHD_DURATION_IS_EMPTY = 0x01_0000;
export const TFHD_DEFAULT_BASE_IS_MOOF = 0x02_0000;

/** `trun` flags (§8.8.8.1). */
export const TRUN_DATA_OFFSET_PRESENT = 0x00_0001;
export const TRUN_FIRST_SAMPLE_FLAGS_PRESENT = 0x00_0004;
export const TRUN_SAMPLE_DURATION_PRESENT = 0x00_0100;
export const TRUN_SAMPLE_SIZE_PRESENT = 0x00_0200;
export const TRUN_SAMPLE_FLAGS_PRESENT = 0x00_0400;
export const TRUN_SAMPLE_COMPOSITION_TIME_OFFSET_PRESENT = 0x00_0800;

/**
 * Samples in one `moof`, over all its runs and track fragments. A run without a per-sample table claims
 * any count in a few bytes; a fragment holds one frame, or a segment's worth, of a media track, never
 * this many.
 */
export const MAX_SAMPLES_PER_FRAGMENT = 1 << 16;
/** The longest a track fragment's samples may last together, seconds of the track's timescale. */
export const MAX_FRAGMENT_SECONDS = 3600;

/** What the movie says of a track that its fragments need. */
export interface FragmentTrack {
  /** `mdhd` timescale: ticks per second. */
  readonly timescale: number;
  /** `trex` defaults. */
  readonly trackExtends?: TrackExtends;
}

/** Where a `moof` is read: the movie's tracks, and how much sample data can follow it. */
export interface FragmentContext {
  /** The movie's track of this ID; without one, no `trex` defaults and no duration bound. */
  readonly trackFor?: (trackId: number) => FragmentTrack | undefined;
  /**
   * The most bytes of sample data that can follow the `moof`: the bytes present after it, or the
   * largest `mdat` the reader accepts. The samples' sizes must add up to no more.
   */
  readonly maxDataBytes: number;
}

/** What the samples of a `moof` may still claim, as its runs are parsed. */
interface FragmentBudget {
  samples: number;
  dataBytes: number;
  /** Of the current track fragment; Infinity when the track's timescale is unknown. */
  ticks: number;
}

/** A sample as a track run describes it, before its data is read. */
export interface SampleInfo {
  readonly duration: number;
  readonly size: number;
  /** Sample flags (§8.8.3.1) after the tfhd/trex defaults and first_sample_flags are applied. */
  readonly flags: number;
  /** Composition time minus decode time, in track timescale ticks. */
  readonly compositionOffset: number;
  /** Stream position of the sample's first byte. */
  readonly position: number;
}

/** A `trun` (§8.8.8). */
export interface TrackRun {
  /** Stream offset of the `trun` box, for errors about its samples. */
  readonly offset: number;
  readonly samples: readonly SampleInfo[];
}

/** A `traf` (§8.8.6). */
export interface TrackFragment {
  /** Stream offset of the `traf` box. */
  readonly offset: number;
  readonly trackId: number;
  /** `tfdt` baseMediaDecodeTime (§8.8.12); absent when the fragment relies on the previous one's end. */
  readonly baseMediaDecodeTime?: number;
  readonly runs: readonly TrackRun[];
}

/** A `moof` (§8.8.4). */
export interface MovieFragment {
  /** `mfhd` sequence_number (§8.8.5). */
  readonly sequenceNumber: number;
  /** Stream offset of the `moof` box. */
  readonly offset: number;
  readonly trackFragments: readonly TrackFragment[];
}

/** A sample with its timing and bytes. */
export interface FragmentSample {
  readonly decodeTime: number;
  readonly duration: number;
  readonly size: number;
  readonly flags: number;
  readonly compositionOffset: number;
  /** A sync sample, where decoding can start (sample_is_non_sync_sample clear). */
  readonly isSync: boolean;
  /** The sample's bytes, a view into the `mdat`. */
  readonly data: Uint8Array;
}

interface TrackFragmentHeader {
  readonly trackId: number;
  readonly flags: number;
  readonly baseDataOffset?: number;
  readonly defaultSampleDuration?: number;
  readonly defaultSampleSize?: number;
  readonly defaultSampleFlags?: number;
}

/** §8.8.7: `tfhd`. */
function parseTrackFragmentHeader(tfhd: Box): TrackFragmentHeader {
  const r = new FieldReader(tfhd);
  const { flags } = r.fullBoxHeader(0);
  const trackId = r.u32('track_ID');
  const baseDataOffset = flags & TFHD_BASE_DATA_OFFSET_PRESENT ? r.u64('base_data_offset') : undefined;
  if (flags & TFHD_SAMPLE_DESCRIPTION_INDEX_PRESENT) r.u32('sample_description_index');
  const defaultSampleDuration =
    flags & TFHD_DEFAULT_SAMPLE_DURATION_PRESENT ? r.u32('default_sample_duration') : undefined;
  const defaultSampleSize = flags & TFHD_DEFAULT_SAMPLE_SIZE_PRESENT ? r.u32('default_sample_size') : undefined;
  const defaultSampleFlags = flags & TFHD_DEFAULT_SAMPLE_FLAGS_PRESENT ? r.u32('default_sample_flags') : undefined;
  return { trackId, flags, baseDataOffset, defaultSampleDuration, defaultSampleSize, defaultSampleFlags };
}

/** §8.8.12: `tfdt`. */
function parseTrackFragmentDecodeTime(tfdt: Box): number {
  const r = new FieldReader(tfdt);
  const { version } = r.fullBoxHeader(1);
  return version === 1 ? r.u64('baseMediaDecodeTime') : r.u32('baseMediaDecodeTime');
}

interface SampleDefaults {
  readonly duration?: number;
  readonly size?: number;
  readonly flags?: number;
}

/**
 * §8.8.8: `trun`. Samples without data_offset continue where the previous run's data ended
 * (`nextPosition`); with it, they start at `base` + data_offset. The samples are taken from `budget`:
 * a run claiming more samples, sample data or time than is left is refused before its samples are made.
 */
function parseTrackRun(
  trun: Box,
  defaults: SampleDefaults,
  base: number,
  nextPosition: number,
  budget: FragmentBudget,
): TrackRun & { end: number } {
  const r = new FieldReader(trun);
  const { version, flags } = r.fullBoxHeader(1);
  const sampleCount = r.u32('sample_count');
  const dataOffset = flags & TRUN_DATA_OFFSET_PRESENT ? r.i32('data_offset') : undefined;
  const firstSampleFlags = flags & TRUN_FIRST_SAMPLE_FLAGS_PRESENT ? r.u32('first_sample_flags') : undefined;
  const hasDuration = (flags & TRUN_SAMPLE_DURATION_PRESENT) !== 0;
  const hasSize = (flags & TRUN_SAMPLE_SIZE_PRESENT) !== 0;
  const hasFlags = (flags & TRUN_SAMPLE_FLAGS_PRESENT) !== 0;
  const hasCompositionOffset = (flags & TRUN_SAMPLE_COMPOSITION_TIME_OFFSET_PRESENT) !== 0;

  const bytesPerSample = 4 * [hasDuration, hasSize, hasFlags, hasCompositionOffset].filter(Boolean).length;
  if (sampleCount * bytesPerSample > r.remaining) throw r.error(`sample count ${sampleCount} exceeds box size`);
  const missing = (field: string): BmffError =>
    r.error(`sample ${field} is neither in the run nor defaulted by 'tfhd' or 'trex'`);
  if (!hasDuration && defaults.duration === undefined) throw missing('duration');
  if (!hasSize && defaults.size === undefined) throw missing('size');
  if (!hasFlags && defaults.flags === undefined && (firstSampleFlags === undefined || sampleCount > 1))
    throw missing('flags');
  // What the defaults claim is checked as a whole, before any sample is made. A sample counts at least
  // one byte: a run of empty samples describes nothing, and must not be a way around the data bound.
  if (sampleCount > budget.samples)
    throw r.error(`sample count ${sampleCount} takes the fragment past ${MAX_SAMPLES_PER_FRAGMENT} samples`);
  const overData = (bytes: number): BmffError =>
    r.error(`samples need ${bytes} bytes of data, more than the ${budget.dataBytes} that can follow the 'moof'`);
  const overTime = (ticks: number): BmffError =>
    r.error(`samples last ${ticks} ticks, more than the fragment's ${MAX_FRAGMENT_SECONDS} s of the track's timescale`);
  if (!hasSize && sampleCount * Math.max(defaults.size!, 1) > budget.dataBytes)
    throw overData(sampleCount * Math.max(defaults.size!, 1));
  if (!hasDuration && sampleCount * defaults.duration! > budget.ticks) throw overTime(sampleCount * defaults.duration!);
  budget.samples -= sampleCount;

  let position = dataOffset === undefined ? nextPosition : base + dataOffset;
  const samples: SampleInfo[] = [];
  for (let i = 0; i < sampleCount; i++) {
    const duration = hasDuration ? r.u32('sample_duration') : defaults.duration!;
    const size = hasSize ? r.u32('sample_size') : defaults.size!;
    const sampleFlags = hasFlags
      ? r.u32('sample_flags')
      : i === 0 && firstSampleFlags !== undefined
        ? firstSampleFlags
        : defaults.flags!;
    let compositionOffset = 0;
    if (hasCompositionOffset) {
      // Version 0 offsets are unsigned, version 1 signed. pushcast writes them signed, so it refuses
      // unsigned values that only a broken encoder writes (more than 2^31 ticks is hours of reordering).
      compositionOffset =
        version === 0 ? r.u32('sample_composition_time_offset') : r.i32('sample_composition_time_offset');
      if (compositionOffset > 0x7fff_ffff)
        throw r.error(`sample ${i} composition offset ${compositionOffset} exceeds 2^31-1`);
    }
    if (Math.max(size, 1) > budget.dataBytes) throw overData(Math.max(size, 1));
    if (duration > budget.ticks) throw overTime(duration);
    budget.dataBytes -= Math.max(size, 1);
    budget.ticks -= duration;
    samples.push({ duration, size, flags: sampleFlags, compositionOffset, position });
    position += size;
  }
  return { offset: trun.offset, samples, end: position };
}

/**
 * §8.8.6: `traf`. The base for data offsets is base_data_offset when present, else the `moof` start
 * when default-base-is-moof is set, else `implicitBase` (the `moof` start for the first `traf`, the end of
 * the previous `traf`'s data for the others, §8.8.7.1).
 */
function parseTrackFragment(
  traf: Box,
  moof: Box,
  implicitBase: number,
  context: FragmentContext,
  budget: FragmentBudget,
): TrackFragment & { end: number } {
  const children = childrenOf(traf);
  const header = parseTrackFragmentHeader(requireSingleChild(children, 'tfhd', traf));
  const track = context.trackFor?.(header.trackId);
  const trex = track?.trackExtends;
  budget.ticks = track ? track.timescale * MAX_FRAGMENT_SECONDS : Infinity;
  const tfdt = children.find((b) => b.type === 'tfdt');
  const defaults: SampleDefaults = {
    duration: header.defaultSampleDuration ?? trex?.defaultSampleDuration,
    size: header.defaultSampleSize ?? trex?.defaultSampleSize,
    flags: header.defaultSampleFlags ?? trex?.defaultSampleFlags,
  };
  const base = header.baseDataOffset ?? (header.flags & TFHD_DEFAULT_BASE_IS_MOOF ? moof.offset : implicitBase);
  const runs: TrackRun[] = [];
  let end = base;
  for (const trun of children.filter((b) => b.type === 'trun')) {
    const run = parseTrackRun(trun, defaults, base, end, budget);
    runs.push(run);
    end = run.end;
  }
  return {
    offset: traf.offset,
    trackId: header.trackId,
    baseMediaDecodeTime: tfdt && parseTrackFragmentDecodeTime(tfdt),
    runs,
    end,
  };
}

/**
 * Parses a `moof` (§8.8.4). `context.trackFor` gives a track's `trex` defaults (from the movie's `mvex`)
 * and timescale. Sample positions are stream positions, the `moof`'s own offset being `moof.offset`.
 * Its samples are bounded: MAX_SAMPLES_PER_FRAGMENT in all, sizes adding up to at most
 * `context.maxDataBytes`, each track's lasting at most MAX_FRAGMENT_SECONDS.
 */
export function parseMovieFragment(moof: Box, context: FragmentContext): MovieFragment {
  const children = childrenOf(moof);
  const mfhd = new FieldReader(requireSingleChild(children, 'mfhd', moof));
  mfhd.fullBoxHeader(0);
  const sequenceNumber = mfhd.u32('sequence_number');
  const trackFragments: TrackFragment[] = [];
  let implicitBase = moof.offset;
  const budget: FragmentBudget = { samples: MAX_SAMPLES_PER_FRAGMENT, dataBytes: context.maxDataBytes, ticks: 0 };
  for (const traf of children.filter((b) => b.type === 'traf')) {
    const { end, ...fragment } = parseTrackFragment(traf, moof, implicitBase, context, budget);
    trackFragments.push(fragment);
    implicitBase = end;
  }
  return { sequenceNumber, offset: moof.offset, trackFragments };
}

/**
 * The samples of a track fragment with their decode times and bytes, the data read from `mdat`.
 * A sample whose bytes are not all inside the `mdat` payload is an error naming its `trun`, and so are
 * more samples than the payload has bytes.
 *
 * @param firstDecodeTime decode time of the first sample: the `tfdt` value, or where the previous fragment ended
 */
export function readTrackFragmentSamples(
  fragment: TrackFragment,
  mdat: Box,
  firstDecodeTime: number,
): FragmentSample[] {
  const payloadStart = mdat.offset + mdat.headerSize;
  const payloadEnd = mdat.offset + mdat.bytes.length;
  // As when the moof was parsed, each sample counts at least one byte: empty samples cannot outnumber
  // the bytes of the mdat (the moof may have been parsed against a bound of the mdat's size only).
  let claimed = 0;
  const samples: FragmentSample[] = [];
  let decodeTime = firstDecodeTime;
  for (const run of fragment.runs) {
    run.samples.forEach((s, i) => {
      if (s.position < payloadStart || s.position + s.size > payloadEnd) {
        throw new BmffError(
          `sample ${i} data at bytes [${s.position}, ${s.position + s.size}) lies outside the 'mdat' payload at [${payloadStart}, ${payloadEnd})`,
          'trun',
          run.offset,
        );
      }
      claimed += Math.max(s.size, 1);
      if (claimed > payloadEnd - payloadStart)
        throw new BmffError(
          `samples need ${claimed} bytes of data, more than the ${payloadEnd - payloadStart} of the 'mdat' payload`,
          'trun',
          run.offset,
        );
      const at = s.position - mdat.offset;
      samples.push({
        decodeTime,
        duration: s.duration,
        size: s.size,
        flags: s.flags,
        compositionOffset: s.compositionOffset,
        isSync: (s.flags & SAMPLE_IS_NON_SYNC_SAMPLE) === 0,
        data: mdat.bytes.subarray(at, at + s.size),
      });
      decodeTime += s.duration;
    });
  }
  return samples;
}
