/**
 * The multicast sender: {@link PushPacketizer} turns resources into the datagrams of
 * server pushes in the nghq multicast profile (isomorphic); {@link TokenBucket} paces (isomorphic);
 * {@link MulticastUdpSender} sends to a group through node:dgram (Node only). This index therefore
 * imports node:dgram: browser or Service Worker code imports `./push-packetizer.js` and
 * `./token-bucket.js` directly.
 */
export {
  PushPacketizer,
  SessionClosedError,
  type HeaderInit,
  type PushInfo,
  type PushPacketizerOptions,
  type PushPacketizerStats,
  type PushResource,
} from './push-packetizer.js';
export { TokenBucket, type TokenBucketOptions } from './token-bucket.js';
export {
  DEFAULT_FEC_FLUSH_MS,
  FecEncoder,
  checkFecOptions,
  fecSourceDatagramSize,
  type FecEncoderOptions,
  type FecEncoderStats,
  type FecOptions,
  type FecTimers,
} from './fec-encoder.js';
export {
  MulticastUdpSender,
  QueueFullError,
  SenderClosedError,
  type MulticastUdpSenderOptions,
  type MulticastUdpSenderStats,
} from './udp-sender.js';
export type { ProgressivePush, PushFieldSigner } from './push-packetizer.js';
export {
  LiveMulticastSender,
  MulticastPushSession,
  type MulticastPushSessionOptions,
  type LiveMulticastSenderOptions,
  type LiveResource,
  type LiveSessionConfig,
  type LiveSessionStats,
} from './live-sender.js';
export {
  MulticastUdpReceiver,
  type MulticastUdpReceiverOptions,
  type MulticastUdpReceiverStats,
} from './udp-receiver.js';
