export { ResourcePushEvent, RESOURCE_PUSH, type ResourcePushEventInit } from './resource-push-event.js';
export {
  GOAWAY,
  IncompletePushError,
  MalformedPushError,
  MulticastReassembler,
  PushLimitError,
  VerificationError,
  type IncompleteReason,
  type MulticastReassemblerOptions,
  type PushLimit,
  type ReassemblerStats,
  type ReassemblerTimers,
} from './reassembler.js';
export { SparseBytes, type ByteRange } from './sparse-bytes.js';
