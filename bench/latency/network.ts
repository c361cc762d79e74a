/**
 * The congestion lab's network (test/support/netns.ts): three namespaces and two links, each link a
 * delay line (bench/push/delay-line.ts: two TUN devices, a fixed one-way delay each way) with a shaper
 * on its origin-side device, so the origin→viewer direction gets rate R and a drop-tail queue of
 * `queueMs` worth of bytes at R:
 *
 *   origin 10.79.0.1 ── link "viewers" ── 10.79.0.2 client   Chromium: the DASH and the Warp page
 *          10.79.1.1 ── link "node"    ── 10.79.1.2 node     the Node Warp viewer, on a link of its own
 *
 * A delay line always (not netem), so that the wire is the same on every kernel (this one has no
 * sch_netem; it has tbf, htb and bfifo). nftables counters on the viewers' side count what crossed each
 * link, per transport.
 */
import { NetworkLab, quietly, type Namespace } from '../../test/support/netns.js';
import { startDelayLine, type DelayLine } from '../push/delay-line.js';

export const ORIGIN_IP = '10.79.0.1';
export const CLIENT_IP = '10.79.0.2';
/** The origin's address on the Node viewer's link. */
export const ORIGIN_NODE_IP = '10.79.1.1';
export const NODE_IP = '10.79.1.2';
/** The lab's nftables table in each namespace (it goes with the namespace). */
const TABLE = 'lab';

export type LinkName = 'viewers' | 'node';

/**
 * How a link's origin→viewer direction is limited. `shared`: one token bucket (`tbf`, rate R, queue
 * `latency queueMs`) for everything on the link, as on a plain access link. `split`: an `htb` class per
 * transport (TCP — LL-DASH; UDP — Warp), each a token bucket (rate = ceil, no borrowing) feeding its own
 * drop-tail byte FIFO (`bfifo`) of queueMs at its rate, classified by nftables in the origin namespace
 * (`meta priority`): each viewer gets exactly its share, as a per-flow fair queue would give it, whatever
 * the congestion controllers do.
 */
export type LinkShape =
  | { kind: 'shared'; rateBps: number; queueMs: number }
  | { kind: 'split'; tcpBps: number; udpBps: number; queueMs: number };

/** Bytes that reached the viewers' namespaces, per transport, since the lab started; shaper drops. */
export interface LinkCounters {
  /** Into the client namespace: TCP from :8080 and :8443 (LL-DASH), UDP from :8443 (the Warp page). */
  tcp: number;
  udp: number;
  /** Into the node namespace: the Node viewer's UDP. */
  node: number;
  /** Packets the viewers' link's shaper dropped, and the Node viewer's link's. */
  dropped: number;
  nodeDropped: number;
}

export interface Lab {
  /** Where `pushcast serve` runs; Chromium; the Node viewer. */
  readonly origin: Namespace;
  readonly client: Namespace;
  readonly node: Namespace;
  /** What interrupted runs had left and was removed first. */
  readonly stale: string[];
  shape(link: LinkName, s: LinkShape): void;
  counters(): LinkCounters;
  /** The processes of the lab: everything in its namespaces, and the delay lines. */
  pids(): number[];
  /** Removes the namespaces (and everything in them) and stops the delay lines; synchronous, idempotent. */
  close(): void;
}

/**
 * Two full-size packets of burst: enough for the shaper to send at line rate between timer ticks, small
 * enough that the rate holds over a few ms.
 */
function burstOf(rateBps: number): number {
  return Math.max(3028, Math.round((rateBps / 8) * 0.002));
}

/** A queue of `queueMs` at the rate plus the burst: what tbf's `latency` gives. */
function limitOf(rateBps: number, queueMs: number): number {
  return Math.round((rateBps / 8) * (queueMs / 1000)) + burstOf(rateBps);
}

/** nftables in the origin namespace: Warp's UDP into htb class 1:20, TCP into 1:10 (also the default). */
function splitClassifier(origin: Namespace, dev: string): void {
  quietly(() => origin.run('nft', 'delete', 'table', 'inet', TABLE));
  origin.run('nft', 'add', 'table', 'inet', TABLE);
  origin.run('nft', 'add', 'chain', 'inet', TABLE, 'out', '{ type filter hook output priority 0 ; }');
  origin.run(
    'nft',
    'add',
    'rule',
    'inet',
    TABLE,
    'out',
    'oifname',
    dev,
    'meta',
    'l4proto',
    'udp',
    'meta',
    'priority',
    'set',
    '1:20',
  );
  origin.run(
    'nft',
    'add',
    'rule',
    'inet',
    TABLE,
    'out',
    'oifname',
    dev,
    'meta',
    'l4proto',
    'tcp',
    'meta',
    'priority',
    'set',
    '1:10',
  );
}

/** Counters on a viewer namespace's input, one per transport, named by their comments. */
function addCounters(ns: Namespace, from: string, rules: [proto: string, port: string, name: string][]): void {
  ns.run('nft', 'add', 'table', 'inet', TABLE);
  ns.run('nft', 'add', 'chain', 'inet', TABLE, 'in', '{ type filter hook input priority 0 ; }');
  for (const [proto, port, name] of rules)
    ns.run(
      'nft',
      'add',
      'rule',
      'inet',
      TABLE,
      'in',
      'ip',
      'saddr',
      from,
      proto,
      'sport',
      port,
      'counter',
      'comment',
      `"${name}"`,
    );
}

function readCounters(ns: Namespace): Record<string, number> {
  const out: Record<string, number> = {};
  const listing = JSON.parse(ns.run('nft', '-j', 'list', 'table', 'inet', TABLE)) as {
    nftables: { rule?: { comment?: string; expr: { counter?: { bytes: number } }[] } }[];
  };
  for (const { rule } of listing.nftables) {
    const bytes = rule?.expr.find((e) => e.counter)?.counter?.bytes;
    if (rule?.comment && bytes !== undefined) out[rule.comment] = (out[rule.comment] ?? 0) + bytes;
  }
  return out;
}

function drops(origin: Namespace, dev: string): number {
  const qdiscs = JSON.parse(origin.run('tc', '-s', '-j', 'qdisc', 'show', 'dev', dev)) as {
    root?: boolean;
    drops?: number;
  }[];
  return (qdiscs.find((q) => q.root) ?? qdiscs[0])?.drops ?? 0;
}

/** Builds the lab with `oneWayDelayMs` each way on both links. The links start unshaped; `shape()` sets and changes them. */
export async function createLab(oneWayDelayMs: number): Promise<Lab> {
  const lab = NetworkLab.create();
  const lines: DelayLine[] = [];
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    for (const line of lines) line.close();
    // The shapers and the nft tables live in the namespaces and go with them.
    lab.close();
  };
  try {
    const origin = lab.namespace('origin');
    const client = lab.namespace('client');
    const node = lab.namespace('node');
    const links: Record<LinkName, { originDev: string }> = {
      viewers: { originDev: lab.device('o0') },
      node: { originDev: lab.device('o1') },
    };
    for (const [originDev, originIp, peer, peerDev, peerIp] of [
      [links.viewers.originDev, ORIGIN_IP, client, lab.device('c0'), CLIENT_IP],
      [links.node.originDev, ORIGIN_NODE_IP, node, lab.device('n0'), NODE_IP],
    ] as const) {
      const line = await startDelayLine(
        { ns: origin, dev: originDev, address: originIp, peer: peerIp },
        { ns: peer, dev: peerDev, address: peerIp, peer: originIp },
      );
      lines.push(line);
      await line.setDelay(oneWayDelayMs);
    }
    addCounters(client, ORIGIN_IP, [
      ['tcp', '8080', 'tcp'],
      ['tcp', '8443', 'tcp'],
      ['udp', '8443', 'udp'],
    ]);
    addCounters(node, ORIGIN_NODE_IP, [['udp', '8443', 'node']]);
    const installed: Partial<Record<LinkName, LinkShape['kind']>> = {};
    return {
      origin,
      client,
      node,
      stale: lab.stale,
      shape(name, link) {
        const dev = links[name].originDev;
        const first = installed[name] !== link.kind;
        if (first) {
          if (installed[name]) origin.run('tc', 'qdisc', 'del', 'dev', dev, 'root');
          if (link.kind === 'split') splitClassifier(origin, dev);
          else if (name === 'viewers') quietly(() => origin.run('nft', 'delete', 'table', 'inet', TABLE));
          installed[name] = link.kind;
        }
        const verb = first ? 'add' : 'change';
        if (link.kind === 'shared') {
          origin.run(
            'tc',
            'qdisc',
            verb,
            'dev',
            dev,
            'root',
            'tbf',
            'rate',
            `${Math.round(link.rateBps)}bit`,
            'burst',
            String(burstOf(link.rateBps)),
            'latency',
            `${link.queueMs}ms`,
          );
          return;
        }
        if (first) origin.run('tc', 'qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'htb', 'default', '10');
        for (const [minor, rateBps] of [
          [10, link.tcpBps],
          [20, link.udpBps],
        ] as const) {
          const rate = `${Math.round(rateBps)}bit`;
          const burst = String(burstOf(rateBps));
          origin.run(
            'tc',
            'class',
            verb,
            'dev',
            dev,
            'parent',
            '1:',
            'classid',
            `1:${minor}`,
            'htb',
            'rate',
            rate,
            'ceil',
            rate,
            'burst',
            burst,
            'cburst',
            burst,
          );
          origin.run(
            'tc',
            'qdisc',
            verb,
            'dev',
            dev,
            'parent',
            `1:${minor}`,
            'handle',
            `${minor}:`,
            'bfifo',
            'limit',
            String(limitOf(rateBps, link.queueMs)),
          );
        }
      },
      counters() {
        const viewers = readCounters(client);
        const nodeCounts = readCounters(node);
        return {
          tcp: viewers.tcp ?? 0,
          udp: viewers.udp ?? 0,
          node: nodeCounts.node ?? 0,
          dropped: drops(origin, links.viewers.originDev),
          nodeDropped: drops(origin, links.node.originDev),
        };
      },
      pids: () => [...[origin, client, node].flatMap((ns) => ns.pids()), ...lines.map((l) => l.pid)],
      close,
    };
  } catch (err) {
    close();
    throw err;
  }
}
