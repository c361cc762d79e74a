export {
  DEFAULT_MAX_PEER_STREAMS,
  PeerStreams,
  SessionRefusedError,
  SessionRouter,
  StreamAbortedError,
  WT_AVAILABLE_PROTOCOLS,
  WT_PROTOCOL,
  selectWebTransportProtocol,
  type Session,
  type SessionCloseInfo,
  type SessionEvents,
  type SessionRefusal,
  type SessionRequest,
  type SessionRoute,
  type SessionStats,
  type SessionStream,
  type SessionTransport,
  type StreamOptions,
} from './session.js';
export {
  Http3Session,
  WebTransportHttp3,
  connectWebTransport,
  serveHttp3Sessions,
  type ConnectWebTransportOptions,
  type ServeHttp3SessionsOptions,
  type WebTransportHttp3Options,
  type WebTransportHttp3Stats,
} from './http3-session.js';
export {
  SendQueueFullError,
  StreamQueue,
  UrgencyScheduler,
  clampUrgency,
  type FrameTransport,
  type UrgencySchedulerLimits,
} from './urgency-scheduler.js';
export {
  WebSocketSession,
  StreamReceiveOverflowError,
  type WebSocketSessionLimits,
  type WebSocketSessionOptions,
} from './websocket-session.js';
export {
  WebSocketSessionServer,
  type WebSocketSessionServerOptions,
  type WebSocketSessionServerStats,
} from './websocket-server.js';
export { connectWebSocketSession, webSocketUrl, type ConnectWebSocketSessionOptions } from './websocket-client.js';
