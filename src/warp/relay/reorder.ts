/**
 * Order rewrite at a relay (draft-lcurley-warp-00 §4.5: "A relay MAY change the delivery order, in which
 * case it SHOULD update the value on the wire for future hops"), with `reorder: <policy>`.
 *
 * The relay cannot see presentation times without parsing media, but pushcast's catalog names the
 * upstream's policy, and each policy is a known function of (kind, PTS) (src/warp/order.ts): the relay
 * inverts it to recover the PTS of a segment from its upstream order and applies its own policy. The new
 * order goes into the HEADERS it writes (`WarpSender`'s `reorder`), and the catalog it forwards names the
 * new policy, so the next hop can do the same. Inits and the catalog keep their order (§3.2: a segment is
 * never ordered before what it depends on). Unknown upstream policy: orders pass unchanged.
 */
import type { WarpHeaders } from '../../wire/index.js';
import type { WarpCatalog } from '../catalog.js';
import { INIT_ORDER, isOrderPolicy, ptsFromOrder, segmentOrder, type WarpOrderPolicy } from '../order.js';

/** The order a relay with `policy` writes for a stream, given the upstream's catalog. */
export function relayOrder(policy: WarpOrderPolicy, catalog: WarpCatalog | undefined, h: WarpHeaders): number {
  const order = h.order ?? 0;
  if (!h.depends?.length || !catalog || !isOrderPolicy(catalog.orderPolicy)) return order;
  const track = catalog.tracks.find((t) => h.depends!.includes(t.initId));
  if (!track) return order;
  const pts = ptsFromOrder(catalog.orderPolicy, track.kind, order);
  return segmentOrder(policy, track.kind, pts, [INIT_ORDER]);
}

/** The catalog payload a relay forwards: the upstream's, naming `policy` when the relay rewrites orders. */
export function forwardedCatalog(
  payload: Uint8Array,
  catalog: WarpCatalog,
  policy: WarpOrderPolicy | undefined,
): Uint8Array {
  const rewrite = policy !== undefined && isOrderPolicy(catalog.orderPolicy) && catalog.orderPolicy !== policy;
  return rewrite ? new TextEncoder().encode(JSON.stringify({ ...catalog, orderPolicy: policy })) : payload;
}
