export {
  Origin,
  WEBTRANSPORT_INFO_PATH,
  type OriginOptions,
  type ListenOptions,
  type OriginAddresses,
  type Route,
  type RouteContext,
  type Request,
  type Response,
} from './origin.js';
export {
  ServerPush,
  DEFAULT_PUSH_POLICY,
  CACHED_HEADER,
  type PushPolicy,
  type PushResource,
  type PushOutcome,
  type GrowingBody,
} from './push/server-push.js';
export { OriginMetrics } from './metrics.js';
export { certificateHashes, developmentCertificate, loadCertificate, type Certificate } from './dev-certificate.js';
export { parseRange, type ByteRange } from './http-range.js';
