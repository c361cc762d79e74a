export {
  HANG_CATALOG_TRACK,
  hangCatalog,
  type HangAudioRendition,
  type HangCatalog,
  type HangCatalogOptions,
  type HangVideoRendition,
} from './catalog.js';
export { MoqtErrorCode, MoqtSession } from './ietf.js';
export {
  MOQ_LITE_PROTOCOL,
  MOQ_PATH,
  MOQ_PROTOCOLS,
  MoqErrorCode,
  MoqServer,
  type MoqServerOptions,
  type MoqServerStats,
} from './server.js';
export {
  MOQ_PUBLISH_DEFAULTS,
  MoqPublishIngest,
  type MoqPublishEvents,
  type MoqPublishOptions,
  type MoqPublisher,
} from './publish-ingest.js';
export { LegacyMatroskaMuxer, decodeLegacyFrame, matroskaCodec, pickRenditions } from './publish-mux.js';
