/** ISO base media file format (ISO/IEC 14496-12) reading and writing, for fragmented MP4 / CMAF. */
export { BmffError } from './errors.js';
export {
  FieldReader,
  childrenOf,
  isPrintableFourCC,
  readBoxHeader,
  readBoxes,
  type Box,
  type BoxHeader,
} from './reader.js';
export {
  parseElementaryStreamDescriptor,
  parseFileType,
  parseMovie,
  type AudioSampleEntry,
  type AudioSpecificConfig,
  type AvcDecoderConfig,
  type ElementaryStreamConfig,
  type FileType,
  type Movie,
  type MovieTrack,
  type SampleEntry,
  type TrackExtends,
  type VisualSampleEntry,
} from './movie.js';
export { codecString, describeTrack, type TrackDescription } from './codec.js';
export {
  MAX_FRAGMENT_SECONDS,
  MAX_SAMPLES_PER_FRAGMENT,
  parseMovieFragment,
  readTrackFragmentSamples,
  type FragmentContext,
  type FragmentSample,
  type FragmentTrack,
  type MovieFragment,
  type SampleInfo,
  type TrackFragment,
  type TrackRun,
} from './fragment.js';
export {
  ByteWriter,
  writeFileTypeBox,
  writeMediaDataHeader,
  writeMovieFragment,
  type MovieFragmentFields,
  type OutputSample,
} from './writer.js';
export {
  parseInitSegment,
  readFragments,
  type InitSegment,
  type ReadFragment,
  type ReadTrackFragment,
} from './file.js';
