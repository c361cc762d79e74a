/**
 * The Warp relay: `WarpRelay` (relay.ts) and what it is made of: upstream sessions (upstream.ts), the
 * reading of each upstream stream (upstream-stream.ts), relayed streams by ID with dedup and takeover
 * (relayed-streams.ts), the cache for late joiners (cache.ts), the order rewrite (reorder.ts) and its
 * counts (stats.ts; src/metrics/warp-relay.ts maps them to Prometheus). Downstream it is a `WarpFanout`
 * like the origin's server.
 *
 * Bounds (§6.1): subscribers (`maxSessions`, 503), cache bytes / segments per track /
 * tracks / inits, bytes per upstream stream, upstream streams relayed at once (lowest priority stopped,
 * §4.4) and read at once, remembered IDs, per-subscriber backlog (the sender's resource limit); a control
 * stream 64 KiB, a catalog 256 KiB, media held for the catalog 256 streams.
 */
export { WarpRelay, type WarpRelayOptions } from './relay.js';
export type { WarpRelayStats } from './stats.js';
