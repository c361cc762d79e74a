/** What the multicast Service Worker reports to the player page (and so to `window.pushcastStats()`). */

export interface SessionStats {
  representation: string;
  /** The WebSocket to the gateway. */
  state: 'connecting' | 'open' | 'closed';
  /** QUIC packets received through the gateway. */
  packets: number;
  /** Packets missing, estimated from packet-number gaps. */
  lost: number;
  /** Promises refused by the signature check. */
  forged: number;
  pushesCompleted: number;
  pushesFailed: number;
  /** Body bytes of growing pushes fetched by range while they arrived. */
  repairedBytes: number;
  /** Holes in the promise stream given up. */
  requestStreamSkips: number;
}

export interface MulticastSegmentRecord {
  url: string;
  representation: string;
  /** push: served as pushed; repaired: pushed in part, completed with `repairBytes` of unicast ranges; unicast: fetched. */
  route: 'push' | 'repaired' | 'unicast';
  repairBytes: number;
  /** When the player asked (ms since the epoch). */
  requestedAt: number;
  /** When the pushed (or repaired) segment was ready, or null for unicast. */
  arrivedAt: number | null;
}

export interface MulticastStats {
  enabled: boolean;
  /** Representations whose segments carry a multicast advertisement. */
  advertised: string[];
  /** Seconds the MPD's timeline was moved later. */
  receptionWindow: number;
  segments: { push: number; repaired: number; unicast: number };
  repairBytes: number;
  /** Bytes received: push, the gateway's packets (QUIC); unicast, segments fetched whole (their Content-Length). */
  bytes: { push: number; unicast: number };
  sessions: SessionStats[];
  cachedEntries: number;
  recent: MulticastSegmentRecord[];
  /** Why the last pushes that failed did (newest first, at most 10). */
  failures: string[];
}
