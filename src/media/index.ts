/**
 * The media layer of pushcast: the live window every delivery mode reads, the timeline that numbers
 * its segments, and the packager that fills it from an encoder's fragmented MP4 output.
 */
export { LiveWindow, LiveTrack, type LiveWindowOptions, type LiveTrackEvents } from './live/live-window.js';
export { Segment, type TrackInfo, type ChunkInfo } from './live/segment.js';
export { LiveTimeline } from './live/timeline.js';
export { TrackPackager, type TrackPackagerOptions } from './cmaf/packager.js';
export { BmffError } from './bmff/errors.js';
export {
  parseInitSegment,
  readFragments,
  type InitSegment,
  type ReadFragment,
  type ReadTrackFragment,
} from './bmff/file.js';
export { codecString, type TrackDescription } from './bmff/codec.js';
export type { FragmentSample } from './bmff/fragment.js';
export type { SampleEntry } from './bmff/movie.js';
export {
  buildLiveMpd,
  segmentTimelineEntries,
  xsDuration,
  type LiveMpdParams,
  type TimelineSegment,
} from './dash/mpd.js';
export {
  DELIVERY_MODES,
  DeliveryDescriptionError,
  offeredModes,
  parseDeliveryDescription,
  parseModeOrder,
  type DeliveryDescription,
  type DeliveryMode,
} from './live/delivery.js';
export {
  DELIVERY_PATH,
  HLS_MULTIVARIANT_PATH,
  LIVE_PREFIX,
  MANIFEST_PATH,
  METRICS_PATH,
  MULTICAST_DELIVERY_PARAM,
  MULTICAST_DELIVERY_VALUE,
  MULTICAST_KEYS_PATH,
  PLAYER_SW_PATH,
  SEGMENT_TEMPLATE,
  TIME_PATH,
  TRACK_ID,
  WEBTRANSPORT_INFO_PATH,
  initPath,
  isMulticastMarked,
  markMulticast,
  mediaPlaylistPath,
  parseHlsPath,
  partPath,
  parseLivePath,
  pushChannelPath,
  segmentNumberOf,
  segmentPath,
  unmarkMulticast,
  type HlsResource,
  type LiveResource,
} from './live/url-scheme.js';
export {
  HLS_VERSION,
  buildMediaPlaylist,
  buildMultivariantPlaylist,
  decimalSeconds,
  type HlsPart,
  type HlsRendition,
  type HlsSegment,
  type MediaPlaylistParams,
  type MultivariantPlaylistParams,
} from './hls/playlist.js';
export {
  advancePartLimit,
  blockingReloadState,
  parseDeliveryDirectives,
  type DeliveryDirectives,
  type PlaylistSegmentState,
} from './hls/blocking.js';
