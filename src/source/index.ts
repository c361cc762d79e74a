export {
  LiveSource,
  type MediaSink,
  type EncoderProgress,
  type LiveSourceOptions,
  type LiveSourceStats,
} from './live-source.js';
export {
  ffmpegArguments,
  isIngest,
  parseIngestUrl,
  type LiveInput,
  type RtmpInput,
  type SrtInput,
  type MoqInput,
  type EncoderSettings,
  type EncoderOutput,
} from './ffmpeg-args.js';
export { RtmpIngestServer, RTMP_DEFAULTS, type RtmpIngestOptions, type RtmpPublisher } from './rtmp-ingest.js';
export {
  DEFAULT_VIDEO_LADDER,
  DEFAULT_AUDIO,
  parseLadder,
  type VideoRendition,
  type AudioRendition,
} from './ladder.js';
