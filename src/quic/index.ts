/**
 * QUIC (RFC 9000) for Node on the native quiche binding: endpoint, connections, streams. The engine behind HTTP/3 and Warp.
 * Connections and streams are made by the endpoint (`connect`, the `connection` event, `openStream`, the `stream`
 * event), so only their types are exported.
 */
export { QuicEndpoint, type QuicEndpointStats } from './endpoint.js';
export type { QuicConnection, QuicConnectionEvents } from './connection.js';
export type { CongestionControl, QuicOptions } from './options.js';
export { QuicStreamError, type QuicStream } from './stream.js';
