/**
 * The members QuicEndpoint, QuicConnection and QuicStream call on one another and no one else may: the
 * steps of the packet loop (a connection's pass, a stream's queued writes, the bytes a pass read) and the
 * state they share. They are keyed by these symbols, which src/quic/index.ts does not export: code outside
 * the folder cannot call them by accident, and they are not among the classes' public names. (`#private`
 * would not reach the sibling classes, and TypeScript's `private` would not let them call each other.)
 */

// QuicConnection, for its endpoint and streams
/** The quiche connection. */
export const native = Symbol('native');
/** A datagram from the socket. */
export const receive = Symbol('receive');
/** The connection's pass at the end of this turn. */
export const pass = Symbol('pass');
/** Queues the connection for this turn's pass. */
export const schedule = Symbol('schedule');
/** A stream has writes queued. */
export const queueWrites = Symbol('queueWrites');
/** A paused stream's reader caught up. */
export const queueReads = Symbol('queueReads');
/** Some stream has an RFC 9218 priority. */
export const prioritized = Symbol('prioritized');
/** A stream's `stopped` is awaited, or no longer. */
export const watchStop = Symbol('watchStop');
export const unwatchStop = Symbol('unwatchStop');
/** Both directions of a stream are over: the connection lets go of it. */
export const release = Symbol('release');
/** Reads and drops what quiche holds of a stream. */
export const discardReceived = Symbol('discardReceived');

// QuicStream, for its connection
/** quiche's urgency of the stream. */
export const urgency = Symbol('urgency');
/** Hands quiche the stream's pending writes. */
export const drainWrites = Symbol('drainWrites');
/** Asks quiche whether the peer stopped the stream. */
export const checkStopped = Symbol('checkStopped');
/** Received bytes. */
export const deliver = Symbol('deliver');
/** The read side failed; or the whole stream. */
export const failRead = Symbol('failRead');
export const fail = Symbol('fail');
/** The connection stopped draining the stream at its read-ahead bound. */
export const paused = Symbol('paused');

// QuicEndpoint, for its connections
/** Queues a connection for this turn's pass. */
export const scheduleConnection = Symbol('scheduleConnection');
/** Where quiche writes the next outgoing packet; sends it. */
export const packetBuffer = Symbol('packetBuffer');
export const sendPacket = Symbol('sendPacket');
/** A closed connection's IDs are no longer routed. */
export const forget = Symbol('forget');
