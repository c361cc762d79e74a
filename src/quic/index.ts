/** QUIC (RFC 9000) for Node on the native quiche binding: endpoint, connections, streams. The engine behind HTTP/3 and Warp. */
export {
  QuicConnection,
  QuicEndpoint,
  QuicStream,
  QuicStreamError,
  type CongestionControl,
  type QuicConnectionEvents,
  type QuicEndpointStats,
  type QuicOptions,
} from './endpoint.js';
