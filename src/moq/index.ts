export {
  HANG_CATALOG_TRACK,
  hangCatalog,
  type HangAudioRendition,
  type HangCatalog,
  type HangCatalogOptions,
  type HangVideoRendition,
} from './catalog.js';
export {
  MOQ_LITE_PROTOCOL,
  MOQ_PATH,
  MoqErrorCode,
  MoqServer,
  type MoqServerOptions,
  type MoqServerStats,
} from './server.js';
