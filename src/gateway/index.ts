/** The transport protocol gateway (WHP 336 §4.2): multicast QUIC packets to browsers over WebSocket. Node only. */
export {
  GATEWAY_PATH,
  MulticastGateway,
  type GatewaySession,
  type GatewayStats,
  type MulticastGatewayOptions,
} from './gateway.js';
