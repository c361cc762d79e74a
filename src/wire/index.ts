/**
 * Wire codecs of the multicast HTTP/QUIC push profile (draft-pardue-quic-http-mcast, ALPN `h3m-07`,
 * wire-compatible with BBC R&D's nghq): QUIC short-header packets and frames (RFC 9000), HTTP/3 frames
 * (RFC 9114), QPACK without a dynamic table (RFC 9204) and its Huffman code (RFC 7541).
 *
 * Pure functions over Uint8Array, no I/O, no Node APIs: the same code runs in the origin and in a
 * browser's Service Worker. Decoders throw only {@link WireError}.
 */
export { WireError, type WireErrorCode } from './errors.js';
export {
  VARINT_MAX,
  encodeVarint,
  readBigVarint,
  readVarint,
  varintLength,
  varintLengthOf,
  writeVarint,
  type DecodedVarint,
  type VarintLength,
} from './varint.js';
export {
  MAX_CONNECTION_ID_LENGTH,
  MAX_MULTICAST_DATAGRAM,
  decodePacketNumber,
  decodeShortHeaderPacket,
  shortHeaderPacketNumber,
  encodeShortHeaderPacket,
  packetNumberLength,
  shortHeaderLength,
  truncatePacketNumber,
  writeShortHeader,
  type DecodeShortHeaderOptions,
  type PacketNumberLength,
  type ShortHeaderFields,
  type ShortHeaderPacket,
} from './quic-packet.js';
export {
  QuicFrameType,
  decodeFrame,
  decodeFrames,
  encodeFrames,
  frameSize,
  streamFrameType,
  writeFrame,
  type PaddingFrame,
  type PingFrame,
  type QuicFrame,
  type ResetStreamFrame,
  type StreamFrame,
  type StreamFrameLayout,
} from './quic-frames.js';
export {
  DEFAULT_MAX_FRAME_PAYLOAD,
  Http3FrameReader,
  Http3FrameType,
  SETTINGS_MAX_FIELD_SECTION_SIZE,
  UniStreamType,
  decodeHttp3Frames,
  encodeHttp3Frame,
  encodeHttp3FrameHeader,
  encodePushStreamHeader,
  encodeUniStreamHeader,
  isReservedValue,
  type CancelPushFrame,
  type DataChunk,
  type DataFrame,
  type GoawayFrame,
  type HeadersFrame,
  type Http3Frame,
  type Http3FrameReaderOptions,
  type Http3StreamEvent,
  type MaxPushIdFrame,
  type PushPromiseFrame,
  type SettingsFrame,
  type UniStreamHeader,
} from './http3-frames.js';
export { huffmanDecode, huffmanEncode, huffmanEncodedLength } from './huffman.js';
export {
  DEFAULT_MAX_FIELDS,
  DEFAULT_MAX_FIELD_SECTION_SIZE,
  QPACK_STATIC_TABLE,
  decodeFieldSection,
  encodeFieldSection,
  type DecodeFieldSectionOptions,
  type EncodeFieldSectionOptions,
  type FieldLine,
  type HuffmanPolicy,
} from './qpack.js';
export {
  MULTICAST_ALPN,
  formatMulticastAltSvc,
  multicastAdvertisement,
  parseAltSvc,
  type AltSvcEntry,
  type MulticastAdvertisement,
} from './alt-svc.js';
export {
  CHUNK_DIGEST_FRAME_TYPE,
  chunkSignatureBase,
  decodeChunkDigest,
  encodeChunkDigestFrame,
  type ChunkDigest,
} from './chunk-digest.js';
export { fromBase64, fromHex, toBase64, toHex } from './encoding.js';
export { concatBytes } from './bytes.js';
export { ChunkQueue } from './chunk-queue.js';
export {
  CAPSULE_CLOSE_WEBTRANSPORT_SESSION,
  CAPSULE_DRAIN_WEBTRANSPORT_SESSION,
  CapsuleReader,
  MAX_CLOSE_REASON_BYTES,
  SETTINGS_ENABLE_CONNECT_PROTOCOL,
  SETTINGS_ENABLE_WEBTRANSPORT,
  SETTINGS_H3_DATAGRAM,
  WEBTRANSPORT_BIDI_SIGNAL,
  WEBTRANSPORT_DRAFT02_REQUEST_HEADER,
  WEBTRANSPORT_DRAFT_RESPONSE_HEADER,
  WEBTRANSPORT_UNI_STREAM,
  decodeCloseSession,
  decodeSessionDatagram,
  encodeCapsule,
  encodeCloseSession,
  encodeSessionDatagram,
  http3CodeToWebTransport,
  webTransportCodeToHttp3,
  type Capsule,
} from './webtransport.js';
export {
  WEBTRANSPORT_WS_PROTOCOL,
  WEBTRANSPORT_WS_PROTOCOL_PREFIX,
  WsFrameType,
  canReceiveOn,
  canSendOn,
  decodeWsFrame,
  encodeWsFrame,
  isServerInitiated,
  isUnidirectional,
  makeStreamId,
  type WsApplicationCloseFrame,
  type WsFrame,
  type WsResetStreamFrame,
  type WsStopSendingFrame,
  type WsStreamFrame,
} from './webtransport-ws.js';
export {
  MAX_WARP_DEPENDS,
  MAX_WARP_ORDER,
  WarpCloseCode,
  WarpMessageType,
  WarpStreamReader,
  decodeWarpHeaders,
  encodeWarpMessage,
  encodeWarpMessageHeader,
  type WarpApp,
  type WarpGoaway,
  type WarpHeaders,
  type WarpMessage,
  type WarpSegment,
  type WarpStreamEvent,
  type WarpStreamReaderOptions,
} from './warp.js';
