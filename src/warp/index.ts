export { parseCatalog, type WarpCatalog, type WarpCatalogTrack } from './catalog.js';
export {
  WARP_ORDER_POLICIES,
  segmentOrder,
  ptsFromOrder,
  INIT_ORDER,
  type WarpOrderPolicy,
} from './order.js';
export { GrowingSource, type WarpSource } from './source.js';
export type { BroadcastFeed } from './feed.js';
export { segmentPayloads } from './segment-payloads.js';
export { WarpProducer, catalogSource, initId, segmentId, type WarpProducerOptions } from './producer.js';
export { WarpSender, type StreamFraming, type WarpSenderOptions, type WarpSenderStats } from './sender.js';
export {
  WarpConsumer,
  type IncomingWarpStream,
  type SegmentArrival,
  type SegmentRef,
  type WarpConsumerOptions,
  type WarpConsumerSink,
  type WarpConsumerStats,
  type WarpConsumerTimers,
} from './consumer.js';
export { SegmentCopies, type SegmentCopiesOptions, type StopReason } from './segment-copies.js';
export { WARP_PATH, goawayUrl, type WarpTarget } from './path.js';
export {
  WarpFanout,
  type Viewer,
  type WarpFanoutOptions,
  type WarpDrainReport,
  type WarpFanoutStats,
  type WarpGoawayStats,
  type WarpRefusalStatus,
  type WarpStreamTotals,
} from './fanout.js';
export { WarpServer, type WarpServerOptions, type WarpServerStats } from './server.js';
export { WarpClient, type WarpClientOptions } from './client.js';
export { WarpRelay, type WarpRelayOptions, type WarpRelayStats } from './relay/index.js';
export { RenditionChooser, type Rendition, type RenditionChoice, type RenditionChooserOptions } from './abr.js';
export { ALL_TRACKS } from './server.js';
export { TrackSelection, encodeSelectStream, MAX_SELECT_STREAM_BYTES } from './select.js';
