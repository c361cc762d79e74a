/**
 * Whole-buffer reading of fragmented MP4: an init segment, or any run of `styp`/`moof`/`mdat` boxes
 * such as a CMAF segment. The packager reads a stream incrementally; these are for everything else
 * (manifest generation, inspection, tests).
 */
import { describeTrack, type TrackDescription } from './codec.js';
import { BmffError } from './errors.js';
import { parseMovieFragment, readTrackFragmentSamples, type FragmentSample, type MovieFragment } from './fragment.js';
import { parseFileType, parseMovie, type FileType, type Movie, type MovieTrack } from './movie.js';
import { readBoxes, type Box } from './reader.js';

export interface InitSegment {
  /** The `ftyp`, when there is one. */
  readonly fileType?: FileType;
  readonly movie: Movie;
  /** The `moov` box as it is in the input. */
  readonly moov: Box;
  /** Codec, timescale and dimensions of each track. */
  readonly tracks: readonly TrackDescription[];
}

/** Parses an init segment (`ftyp`? `moov`); a track that pushcast cannot package is a BmffError. */
export function parseInitSegment(bytes: Uint8Array): InitSegment {
  const boxes = readBoxes(bytes);
  const ftyp = boxes.find((b) => b.type === 'ftyp');
  const moov = boxes.find((b) => b.type === 'moov');
  if (!moov) throw new BmffError('not found: an init segment needs a movie header', 'moov', 0);
  const movie = parseMovie(moov);
  return { fileType: ftyp && parseFileType(ftyp), movie, moov, tracks: movie.tracks.map(describeTrack) };
}

export interface ReadTrackFragment {
  readonly trackId: number;
  /** `tfdt` value, when the fragment has one. */
  readonly baseMediaDecodeTime?: number;
  readonly samples: readonly FragmentSample[];
}

/** A movie fragment with its samples, as found in a run of boxes. */
export interface ReadFragment {
  readonly sequenceNumber: number;
  /** Byte offset of the `moof` in the buffer. */
  readonly offset: number;
  /** The `styp` directly before the `moof` (a segment's first chunk), if any. */
  readonly segmentType?: FileType;
  readonly trackFragments: readonly ReadTrackFragment[];
}

/**
 * The movie fragments in `bytes`, each `moof` with the `mdat` that follows it. The `trex` defaults come
 * from `init`, or from a `moov` in `bytes` itself; fragments without `tfdt` continue their track's time.
 */
export function readFragments(bytes: Uint8Array, init?: InitSegment): ReadFragment[] {
  const boxes = readBoxes(bytes);
  const moov = boxes.find((b) => b.type === 'moov');
  const movie = init?.movie ?? (moov && parseMovie(moov));
  const trackFor = (trackId: number): MovieTrack | undefined => movie?.tracks.find((t) => t.trackId === trackId);

  const nextDecodeTime = new Map<number, number>();
  const fragments: ReadFragment[] = [];
  let pending: { fragment: MovieFragment; segmentType?: FileType } | undefined;
  let segmentType: FileType | undefined;
  // The first mdat after each box, found in one pass from the end.
  const mdatAfter: (Box | undefined)[] = [];
  for (let i = boxes.length - 1, next: Box | undefined; i >= 0; i--) {
    mdatAfter[i] = next;
    if (boxes[i]!.type === 'mdat') next = boxes[i];
  }
  for (const [index, box] of boxes.entries()) {
    if (box.type === 'styp') {
      segmentType = parseFileType(box);
    } else if (box.type === 'moof') {
      if (pending) throw new BmffError(`'moof' at byte ${pending.fragment.offset} has no 'mdat'`, 'moof', box.offset);
      // The samples' data is in the mdat that follows; without one, at most the bytes after the moof.
      const mdat = mdatAfter[index];
      const maxDataBytes = mdat ? mdat.bytes.length - mdat.headerSize : bytes.length - (box.offset + box.bytes.length);
      pending = { fragment: parseMovieFragment(box, { trackFor, maxDataBytes }), segmentType };
      segmentType = undefined;
    } else if (box.type === 'mdat' && pending) {
      const { fragment } = pending;
      const trackFragments = fragment.trackFragments.map((traf): ReadTrackFragment => {
        const firstDecodeTime = traf.baseMediaDecodeTime ?? nextDecodeTime.get(traf.trackId) ?? 0;
        const samples = readTrackFragmentSamples(traf, box, firstDecodeTime);
        nextDecodeTime.set(
          traf.trackId,
          samples.reduce((end, s) => end + s.duration, firstDecodeTime),
        );
        return { trackId: traf.trackId, baseMediaDecodeTime: traf.baseMediaDecodeTime, samples };
      });
      fragments.push({
        sequenceNumber: fragment.sequenceNumber,
        offset: fragment.offset,
        segmentType: pending.segmentType,
        trackFragments,
      });
      pending = undefined;
    }
  }
  if (pending) throw new BmffError("the input ends before this fragment's 'mdat'", 'moof', pending.fragment.offset);
  return fragments;
}
