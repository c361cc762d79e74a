export {
  LiveSource,
  type MediaSink,
  type EncoderProgress,
  type LiveSourceOptions,
  type LiveSourceStats,
} from './live-source.js';
export { ffmpegArguments, type LiveInput, type EncoderSettings, type EncoderOutput } from './ffmpeg-args.js';
export {
  DEFAULT_VIDEO_LADDER,
  DEFAULT_AUDIO,
  parseLadder,
  type VideoRendition,
  type AudioRendition,
} from './ladder.js';
