export { ResourcePushEvent, RESOURCE_PUSH, type ResourcePushEventInit } from './resource-push-event.js';
export {
  GOAWAY,
  MulticastReassembler,
  type MulticastReassemblerOptions,
  type PushVerifier,
  type ReassemblerStats,
  type ReassemblerTimers,
} from './reassembler.js';
export {
  IncompletePushError,
  MalformedPushError,
  PushLimitError,
  VerificationError,
  type IncompleteReason,
  type PartialPush,
  type PushLimit,
} from './reassembly-errors.js';
export { SparseBytes, type ByteRange } from './sparse-bytes.js';
export { MAX_PENDING_CHUNKS, REPAIR_ATTEMPTS } from './progressive-body.js';
export { FEC_REORDER_MS, FecDecoder, type FecDecoderOptions, type FecDecoderStats } from './fec-decoder.js';
export {
  PushSignatureVerifier,
  PushSigner,
  SignatureError,
  type JsonWebKeySet,
  type PublicJwk,
  type SignatureAlgorithm,
} from './signatures.js';
export {
  RepairError,
  rangeFetcher,
  repairPush,
  type FetchLike,
  type RepairOptions,
  type RepairResult,
} from './repair.js';
