export { Origin, type OriginOptions, type OriginStats, type MetricsExposition } from './origin.js';
export type { RequestCount } from './request-counts.js';
export type { ListenOptions, OriginAddresses } from './ports.js';
export type { Route, RouteContext, Request, Response } from './route.js';
export {
  ServerPush,
  DEFAULT_PUSH_POLICY,
  type PushPolicy,
  type PushResource,
  type PushOutcome,
  type GrowingBody,
  type ServerPushStats,
  type PushCount,
} from './push/server-push.js';
export { parseRange, type ByteRange } from './http-range.js';
// The TLS certificate belongs to src/listen, which the origin listens with; it is named here too
// because an origin's listen() takes one.
export { certificateHashes, developmentCertificate, loadCertificate, type Certificate } from '../listen/index.js';
