/**
 * Turns one encoder output — a fragmented MP4 byte stream with a single track, as it comes out of a
 * pipe — into a CMAF track (ISO/IEC 23000-19 §7.3) published into the live window: one CMAF header, then
 * segments cut on the presentation's time grid, each made of chunks written as soon as they are full.
 */
import { describeTrack } from '../bmff/codec.js';
import { BmffError } from '../bmff/errors.js';
import {
  parseMovieFragment,
  readTrackFragmentSamples,
  type FragmentSample,
  type MovieFragment,
} from '../bmff/fragment.js';
import { parseFileType, parseMovie, type MovieTrack } from '../bmff/movie.js';
import { isPrintableFourCC, readBoxHeader, type Box } from '../bmff/reader.js';
import type { LiveTrack } from '../live/live-window.js';
import { Segment, type TrackInfo } from '../live/segment.js';
import type { LiveTimeline } from '../live/timeline.js';
import { ByteQueue } from './byte-queue.js';
import { writeCmafChunk, writeCmafHeader, type ChunkSample } from './chunk.js';

export interface TrackPackagerOptions {
  /** Where the CMAF header, segments and chunks are published. */
  track: LiveTrack;
  /** The presentation's timeline, shared by all its tracks: it owns the segment grid and numbering. */
  timeline: LiveTimeline;
  /** Nominal bitrate, bit/s, for the TrackInfo. */
  bandwidth: number;
  /**
   * Target segment duration, seconds. The grid is the timeline's, so this must equal
   * `timeline.segmentDuration`; it defaults to it.
   */
  segmentDuration?: number;
  /** Target CMAF chunk duration, seconds; 0 makes every sample (one video frame) a chunk. */
  chunkDuration: number;
  /** Largest top-level box buffered from the input (default 64 MiB); a bigger one is an error at once. */
  maxBoxSize?: number;
}

const DEFAULT_MAX_BOX_SIZE = 64 * 1024 * 1024;

/** Box header bytes needed to know a box's size and type: size, type, largesize, uuid extended type. */
const MAX_BOX_HEADER_SIZE = 32;

/** A sample on its way out: timed on the output timeline. */
type OutputSample = ChunkSample & { readonly decodeTime: number };

/** What the packager knows about the current input generation (one encoder run). */
interface InputState {
  /** Stream offset of the first byte still in the input queue. */
  offset: number;
  /** The `moov` of this input, once read, and its single track. */
  moov?: Uint8Array;
  movieTrack?: MovieTrack;
  /** A `moof` waiting for its `mdat`. */
  pendingFragment?: MovieFragment;
  /** Input decode time where the last fragment ended, for fragments without `tfdt`. */
  nextDecodeTime: number;
  /** Ticks added to input decode times to place them on the presentation timeline, fixed at the first sample. */
  offsetTicks?: number;
  /** Whether any byte of this input arrived. */
  started: boolean;
  /** An error occurred: the rest of this input is ignored. */
  failed: boolean;
}

const newInputState = (): InputState => ({ offset: 0, nextDecodeTime: 0, started: false, failed: false });

export class TrackPackager {
  private readonly track: LiveTrack;
  private readonly timeline: LiveTimeline;
  private readonly bandwidth: number;
  private readonly chunkDuration: number;
  private readonly maxBoxSize: number;

  private readonly queue = new ByteQueue();
  private input: InputState = newInputState();
  private inputGeneration = 0;

  /** `mfhd` sequence number of the last chunk written; increases across inputs. */
  private sequenceNumber = 0;
  /** The segment being filled, if any. */
  private segment?: Segment;
  /** Number of the last segment started, kept across inputs. */
  private lastSegmentNumber = -Infinity;
  /** Samples of the chunk being filled, and their total duration in ticks. */
  private chunk: OutputSample[] = [];
  private chunkTicks = 0;

  constructor(options: TrackPackagerOptions) {
    this.track = options.track;
    this.timeline = options.timeline;
    this.bandwidth = options.bandwidth;
    this.chunkDuration = options.chunkDuration;
    this.maxBoxSize = options.maxBoxSize ?? DEFAULT_MAX_BOX_SIZE;
    const segmentDuration = options.segmentDuration ?? options.timeline.segmentDuration;
    if (segmentDuration !== options.timeline.segmentDuration) {
      throw new RangeError(
        `segmentDuration ${segmentDuration} s differs from the timeline's ${options.timeline.segmentDuration} s, which sets the segment grid`,
      );
    }
    if (!(this.chunkDuration >= 0))
      throw new RangeError(`chunkDuration must be 0 or more seconds, not ${this.chunkDuration}`);
  }

  /** The input generation being read: 0 for the first encoder run, one more after each input that ended. */
  get generation(): number {
    return this.inputGeneration;
  }

  /**
   * Takes the next bytes of the input, split anywhere, and publishes whatever they complete.
   * Throws a BmffError for malformed input; the rest of that input is then ignored until `endOfInput()`.
   */
  push(bytes: Uint8Array): void {
    if (this.input.failed || bytes.length === 0) return;
    this.input.started = true;
    this.queue.push(bytes);
    try {
      this.readBoxes();
    } catch (err) {
      this.abandonInput();
      throw err;
    }
  }

  /**
   * The input ended (the encoder exited). The open segment is completed as truncated; the next `push()`
   * starts a new input generation with its own `ftyp`/`moov`, placed after everything published so far.
   */
  endOfInput(): void {
    try {
      if (!this.input.failed) {
        // A partial box left in the queue was cut off by the encoder's exit; it is dropped.
        this.writeChunk();
        this.completeSegment(true);
      }
    } finally {
      if (this.input.started) this.inputGeneration++;
      this.queue.clear();
      this.input = newInputState();
    }
  }

  /**
   * After an error: the buffered input and the unwritten samples are dropped, and the open segment is
   * completed as truncated with the chunks already published, so a broken encoder run never leaves
   * a segment that changes after the fact.
   */
  private abandonInput(): void {
    this.input.failed = true;
    this.queue.clear();
    this.chunk = [];
    this.chunkTicks = 0;
    this.completeSegment(true);
  }

  /** Acts on every complete top-level box in the queue. */
  private readBoxes(): void {
    for (;;) {
      const header = readBoxHeader(this.queue.peek(MAX_BOX_HEADER_SIZE), 0, this.input.offset);
      if (!header) return;
      const { type, size } = header;
      const offset = this.input.offset;
      if (!isPrintableFourCC(type))
        throw new BmffError('not an ISO BMFF box: the type is not four printable characters', type, offset);
      if (size === 0)
        throw new BmffError(
          'a box extending to the end of the file cannot be delimited in a live stream',
          type,
          offset,
        );
      if (size > this.maxBoxSize)
        throw new BmffError(`box size ${size} exceeds the ${this.maxBoxSize}-byte limit`, type, offset);
      if (this.queue.length < size) return;
      const box: Box = {
        type,
        userType: header.userType,
        headerSize: header.headerSize,
        bytes: this.queue.take(size),
        offset,
      };
      this.input.offset += size;
      this.readBox(box);
    }
  }

  private readBox(box: Box): void {
    switch (box.type) {
      case 'ftyp':
        parseFileType(box); // only validated: the CMAF header gets its own
        return;
      case 'moov':
        return this.readMovie(box);
      case 'moof':
        return this.readMovieFragment(box);
      case 'mdat':
        return this.readMediaData(box);
      default:
        // free, skip, styp, sidx, prft, emsg, uuid, mfra, …: nothing a CMAF track needs from the input.
        return;
    }
  }

  /** `moov`: the single track's description, published with the CMAF header. */
  private readMovie(moov: Box): void {
    if (this.input.moov) {
      if (sameBytes(this.input.moov, moov.bytes)) return; // repeated verbatim: nothing changes
      throw new BmffError(
        'a second, different movie header in one input; the encoder must restart to change it',
        'moov',
        moov.offset,
      );
    }
    const movie = parseMovie(moov);
    if (movie.tracks.length !== 1)
      throw new BmffError(`expected exactly one track, found ${movie.tracks.length}`, 'moov', moov.offset);
    if (!movie.fragmented)
      throw new BmffError(
        "not a fragmented movie: no 'mvex' box (the encoder needs -movflags empty_moov+default_base_moof)",
        'moov',
        moov.offset,
      );
    const movieTrack = movie.tracks[0]!; // exactly one, checked above
    const { trackId: _, ...media } = describeTrack(movieTrack);
    const info: TrackInfo = { id: this.track.id, bandwidth: this.bandwidth, ...media };
    this.input.moov = moov.bytes;
    this.input.movieTrack = movieTrack;
    this.track.setInit(writeCmafHeader(moov.bytes), info);
  }

  /** `moof`: parsed now, its samples read when its `mdat` arrives. */
  private readMovieFragment(moof: Box): void {
    const movieTrack = this.input.movieTrack;
    if (!movieTrack) throw new BmffError("movie fragment before the movie header ('moov')", 'moof', moof.offset);
    const pending = this.input.pendingFragment;
    if (pending)
      throw new BmffError("movie fragment without 'mdat': another 'moof' follows it", 'moof', pending.offset);
    // Its mdat is yet to come: the sample data can be no larger than the largest box accepted.
    const fragment = parseMovieFragment(moof, {
      trackFor: (trackId) => (trackId === movieTrack.trackId ? movieTrack : undefined),
      maxDataBytes: this.maxBoxSize,
    });
    for (const traf of fragment.trackFragments) {
      if (traf.trackId !== movieTrack.trackId) {
        throw new BmffError(
          `fragment of track ${traf.trackId}, but the movie's only track is ${movieTrack.trackId}`,
          'traf',
          traf.offset,
        );
      }
    }
    this.input.pendingFragment = fragment;
  }

  /** `mdat`: the samples of the pending `moof`, all checked before any is published. */
  private readMediaData(mdat: Box): void {
    const fragment = this.input.pendingFragment;
    if (!fragment) return; // media data no fragment describes
    this.input.pendingFragment = undefined;
    const samples: FragmentSample[] = [];
    for (const traf of fragment.trackFragments) {
      const first = traf.baseMediaDecodeTime ?? this.input.nextDecodeTime;
      const trafSamples = readTrackFragmentSamples(traf, mdat, first);
      this.input.nextDecodeTime = trafSamples.reduce((end, s) => end + s.duration, first);
      samples.push(...trafSamples);
    }
    for (const sample of samples) this.publishSample(sample);
  }

  private get timescale(): number {
    return this.input.movieTrack!.timescale;
  }

  /** Places a sample on the output timeline, starts a segment at it if it is time to, and adds it to the chunk. */
  private publishSample(sample: FragmentSample): void {
    const timescale = this.timescale;
    if (this.input.offsetTicks === undefined) {
      const offsetSeconds = this.timeline.offsetFor(this.inputGeneration, sample.decodeTime / timescale);
      this.input.offsetTicks = Math.round(offsetSeconds * timescale);
    }
    const decodeTime = sample.decodeTime + this.input.offsetTicks;
    if (sample.isSync && this.isSegmentStart(decodeTime, sample.duration)) this.startSegment(decodeTime, sample);
    // Samples before the input's first sync sample cannot be decoded by anyone: they are dropped.
    if (!this.segment) return;

    this.chunk.push({
      decodeTime,
      duration: sample.duration,
      size: sample.size,
      flags: sample.flags,
      compositionOffset: sample.compositionOffset,
      data: sample.data,
    });
    this.chunkTicks += sample.duration;
    if (this.chunkTicks >= Math.round(this.chunkDuration * timescale)) this.writeChunk();
  }

  /**
   * A sync sample opens a segment when none is open, or when it starts at most half its duration before
   * the next segment's nominal start (or anywhere after it): the cut lands on the sample boundary nearest
   * the grid line, so the video and audio tracks of a presentation cut at the same places.
   */
  private isSegmentStart(decodeTime: number, duration: number): boolean {
    if (!this.segment) return true;
    const d = this.timeline.segmentDuration;
    // With a segment timeline numbers do not follow the grid: the next cut is at the grid line after the
    // one nearest this segment's start, so a segment lasts at least about half a target and a GoP longer
    // than the target makes one long segment.
    const nextStartTicks = this.timeline.segmentTimeline
      ? (Math.round(this.segment.decodeTime / this.timescale / d) + 1) * d * this.timescale
      : this.timeline.segmentStart(this.segment.number + 1) * this.timescale;
    // The tolerance absorbs rounding in the grid position, a float product.
    return decodeTime + duration / 2 >= nextStartTicks - 1e-6;
  }

  /** Completes the open segment (via the track) and opens the next at `sample`, a sync sample. */
  private startSegment(decodeTime: number, sample: FragmentSample): void {
    this.writeChunk();
    const previous = Math.max(this.lastSegmentNumber, this.track.newest()?.number ?? -Infinity);
    // Numbers follow the grid, and never repeat or go back even if the media runs late; with a segment
    // timeline, each is the previous one's plus one (the first on the grid, so that numbers stay at or
    // below the grid's and an origin restarted later never reuses one).
    const near = this.timeline.segmentNumberNear(decodeTime / this.timescale);
    const number =
      this.timeline.segmentTimeline && Number.isFinite(previous) ? previous + 1 : Math.max(near, previous + 1);
    const segment = new Segment(
      this.track.id,
      number,
      decodeTime,
      decodeTime + sample.compositionOffset,
      sample.isSync,
      this.timescale,
    );
    this.track.startSegment(segment);
    this.segment = segment;
    this.lastSegmentNumber = number;
  }

  /** Writes the samples gathered so far as one CMAF chunk of the open segment. */
  private writeChunk(): void {
    const segment = this.segment;
    const samples = this.chunk;
    if (!segment || samples.length === 0) return;
    this.chunk = [];
    this.chunkTicks = 0;
    const decodeTime = samples[0]!.decodeTime;
    const duration = samples.reduce((sum, s) => sum + s.duration, 0);
    const bytes = writeCmafChunk({
      sequenceNumber: ++this.sequenceNumber,
      trackId: this.input.movieTrack!.trackId,
      baseMediaDecodeTime: decodeTime,
      samples,
      startsSegment: segment.chunks.length === 0,
    });
    this.track.addChunk(segment, { bytes, decodeTime, duration, sampleCount: samples.length });
    this.timeline.notePublished((decodeTime + duration) / segment.timescale);
  }

  private completeSegment(truncated: boolean): void {
    if (this.segment) this.track.completeSegment(this.segment, truncated);
    this.segment = undefined;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
