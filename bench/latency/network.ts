/**
 * The congestion lab's network: three namespaces and two links, each link a bench/push/delay-line.py
 * (two TUN devices, a fixed one-way delay each way) with a shaper on its origin-side device, so the
 * origin→viewer direction gets rate R and a drop-tail queue of `queueMs` worth of bytes at R:
 *
 *   pcl-origin 10.79.0.1 ── link "viewers" ── 10.79.0.2 pcl-client   Chromium: the DASH and the Warp page
 *              10.79.1.1 ── link "node"    ── 10.79.1.2 pcl-node     the Node Warp viewer, on a link of its own
 *
 * Its own prefix and addresses, so that it can run beside bench:push (pcb-…, 10.77.0.x) and the multicast
 * bench (pcm-…, 10.78.0.x); a delay line always (not netem), so that the wire is the same on every kernel
 * (this one has no sch_netem; it has tbf, htb and bfifo). nftables counters on the viewers' side count
 * what crossed each link, per transport.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { onLines } from './lines.js';

export const ORIGIN_NS = 'pcl-origin';
export const CLIENT_NS = 'pcl-client';
export const NODE_NS = 'pcl-node';
export const ORIGIN_IP = '10.79.0.1';
export const CLIENT_IP = '10.79.0.2';
/** The origin's address on the Node viewer's link. */
export const ORIGIN_NODE_IP = '10.79.1.1';
export const NODE_IP = '10.79.1.2';
const TABLE = 'pcl';

/** bench/push/delay-line.py in the source tree (build/bench/latency → ../../../bench/push). */
const DELAY_LINE = fileURLToPath(new URL('../../../bench/push/delay-line.py', import.meta.url));

export type LinkName = 'viewers' | 'node';

const LINKS: Record<
  LinkName,
  { originDev: string; peerDev: string; peerNs: string; originIp: string; peerIp: string }
> = {
  viewers: { originDev: 'pcl-o0', peerDev: 'pcl-c0', peerNs: CLIENT_NS, originIp: ORIGIN_IP, peerIp: CLIENT_IP },
  node: { originDev: 'pcl-o1', peerDev: 'pcl-n0', peerNs: NODE_NS, originIp: ORIGIN_NODE_IP, peerIp: NODE_IP },
};

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
  /** Into pcl-client: TCP from :8080 and :8443 (LL-DASH), UDP from :8443 (the Warp page). */
  tcp: number;
  udp: number;
  /** Into pcl-node: the Node viewer's UDP. */
  node: number;
  /** Packets the viewers' link's shaper dropped, and the Node viewer's link's. */
  dropped: number;
  nodeDropped: number;
}

export interface Lab {
  shape(link: LinkName, s: LinkShape): void;
  counters(): LinkCounters;
  /** Runs a command inside a namespace; its standard output. */
  run(ns: string, ...cmd: string[]): string;
  /** The processes of the lab: everything in its namespaces, and the delay lines. */
  pids(): number[];
  /** Removes the namespaces (and everything in them) and stops the delay lines; synchronous, idempotent. */
  close(): void;
}

function sh(cmd: string, ...args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

const inNs = (ns: string, ...cmd: string[]) => sh('ip', 'netns', 'exec', ns, ...cmd);

function quiet(f: () => unknown): void {
  try {
    f();
  } catch {
    // gone already
  }
}

/** Kills what runs in a lab namespace and deletes it. Only this bench uses the pcl- prefix. */
function dropNamespace(ns: string): void {
  let pids: number[] = [];
  quiet(() => (pids = sh('ip', 'netns', 'pids', ns).split('\n').filter(Boolean).map(Number)));
  for (const pid of pids) quiet(() => process.kill(pid, 'SIGKILL'));
  quiet(() => sh('ip', 'netns', 'del', ns));
}

/** Namespaces and devices an interrupted run left behind; their names. */
export function removeStaleLab(): string[] {
  const stale = sh('ip', 'netns', 'list')
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith('pcl-'));
  for (const ns of stale) dropNamespace(ns);
  // A delay line of an interrupted run exits by itself once its devices are gone.
  for (const l of Object.values(LINKS))
    for (const dev of [l.originDev, l.peerDev]) quiet(() => sh('ip', 'link', 'del', dev));
  return stale;
}

/** A delay line between two new TUN devices; `command` sends a line and waits for its answer. */
async function startDelayLine(
  a: string,
  b: string,
): Promise<{ child: ChildProcess; command: (line: string) => Promise<string> }> {
  const child = spawn('/usr/bin/python3', [DELAY_LINE, a, b], { stdio: ['pipe', 'pipe', 'inherit'] });
  // Answers come in order, one line per command: each goes to the oldest waiting command.
  const waiting: ((line: string) => void)[] = [];
  onLines(child.stdout!, (line) => waiting.shift()?.(line));
  child.on('exit', (code) => {
    for (const w of waiting.splice(0)) w(`exited ${code}`);
  });
  const answer = () =>
    Promise.race([
      new Promise<string>((resolve) => waiting.push(resolve)),
      sleep(5000).then(() => Promise.reject(new Error('the delay line did not answer within 5 s'))),
    ]);
  if ((await answer()) !== 'ready') throw new Error('the delay line did not start (is /dev/net/tun there?)');
  return {
    child,
    command: (line) => {
      child.stdin!.write(`${line}\n`);
      return answer();
    },
  };
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
function splitClassifier(dev: string): void {
  quiet(() => inNs(ORIGIN_NS, 'nft', 'delete', 'table', 'inet', TABLE));
  inNs(ORIGIN_NS, 'nft', 'add', 'table', 'inet', TABLE);
  inNs(ORIGIN_NS, 'nft', 'add', 'chain', 'inet', TABLE, 'out', '{ type filter hook output priority 0 ; }');
  inNs(
    ORIGIN_NS,
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
  inNs(
    ORIGIN_NS,
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
function addCounters(ns: string, from: string, rules: [proto: string, port: string, name: string][]): void {
  inNs(ns, 'nft', 'add', 'table', 'inet', TABLE);
  inNs(ns, 'nft', 'add', 'chain', 'inet', TABLE, 'in', '{ type filter hook input priority 0 ; }');
  for (const [proto, port, name] of rules)
    inNs(
      ns,
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

function readCounters(ns: string): Record<string, number> {
  const out: Record<string, number> = {};
  const listing = JSON.parse(inNs(ns, 'nft', '-j', 'list', 'table', 'inet', TABLE)) as {
    nftables: { rule?: { comment?: string; expr: { counter?: { bytes: number } }[] } }[];
  };
  for (const { rule } of listing.nftables) {
    const bytes = rule?.expr.find((e) => e.counter)?.counter?.bytes;
    if (rule?.comment && bytes !== undefined) out[rule.comment] = (out[rule.comment] ?? 0) + bytes;
  }
  return out;
}

function drops(dev: string): number {
  const qdiscs = JSON.parse(inNs(ORIGIN_NS, 'tc', '-s', '-j', 'qdisc', 'show', 'dev', dev)) as {
    root?: boolean;
    drops?: number;
  }[];
  return (qdiscs.find((q) => q.root) ?? qdiscs[0])?.drops ?? 0;
}

/** Builds the lab with `oneWayDelayMs` each way on both links. The links start unshaped; `shape()` sets and changes them. */
export async function createLab(oneWayDelayMs: number): Promise<Lab> {
  const lines: ChildProcess[] = [];
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    for (const line of lines) {
      quiet(() => line.stdin!.end('quit\n'));
      quiet(() => line.kill('SIGTERM'));
    }
    // The shapers and the nft tables live in the namespaces and go with them.
    for (const ns of [ORIGIN_NS, CLIENT_NS, NODE_NS]) dropNamespace(ns);
  };
  try {
    for (const ns of [ORIGIN_NS, CLIENT_NS, NODE_NS]) {
      sh('ip', 'netns', 'add', ns);
      inNs(ns, 'ip', 'link', 'set', 'lo', 'up');
    }
    for (const l of Object.values(LINKS)) {
      const line = await startDelayLine(l.originDev, l.peerDev);
      lines.push(line.child);
      for (const [dev, ns, local, peer] of [
        [l.originDev, ORIGIN_NS, l.originIp, l.peerIp],
        [l.peerDev, l.peerNs, l.peerIp, l.originIp],
      ] as const) {
        // The delay line's file descriptors stay attached to a TUN device moved to another namespace.
        sh('ip', 'link', 'set', dev, 'netns', ns);
        inNs(ns, 'ip', 'addr', 'add', local, 'peer', peer, 'dev', dev);
        inNs(ns, 'ip', 'link', 'set', dev, 'up');
      }
      if ((await line.command(`delay ${oneWayDelayMs}`)) !== 'ok') throw new Error('the delay line refused the delay');
    }
    addCounters(CLIENT_NS, ORIGIN_IP, [
      ['tcp', '8080', 'tcp'],
      ['tcp', '8443', 'tcp'],
      ['udp', '8443', 'udp'],
    ]);
    addCounters(NODE_NS, ORIGIN_NODE_IP, [['udp', '8443', 'node']]);
  } catch (err) {
    close();
    throw err;
  }
  const installed: Partial<Record<LinkName, LinkShape['kind']>> = {};
  return {
    shape(name, link) {
      const dev = LINKS[name].originDev;
      const first = installed[name] !== link.kind;
      if (first) {
        if (installed[name]) inNs(ORIGIN_NS, 'tc', 'qdisc', 'del', 'dev', dev, 'root');
        if (link.kind === 'split') splitClassifier(dev);
        else if (name === 'viewers') quiet(() => inNs(ORIGIN_NS, 'nft', 'delete', 'table', 'inet', TABLE));
        installed[name] = link.kind;
      }
      const verb = first ? 'add' : 'change';
      if (link.kind === 'shared') {
        inNs(
          ORIGIN_NS,
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
      if (first) inNs(ORIGIN_NS, 'tc', 'qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'htb', 'default', '10');
      for (const [minor, rateBps] of [
        [10, link.tcpBps],
        [20, link.udpBps],
      ] as const) {
        const rate = `${Math.round(rateBps)}bit`;
        const burst = String(burstOf(rateBps));
        inNs(
          ORIGIN_NS,
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
        inNs(
          ORIGIN_NS,
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
      const viewers = readCounters(CLIENT_NS);
      const node = readCounters(NODE_NS);
      return {
        tcp: viewers.tcp ?? 0,
        udp: viewers.udp ?? 0,
        node: node.node ?? 0,
        dropped: drops(LINKS.viewers.originDev),
        nodeDropped: drops(LINKS.node.originDev),
      };
    },
    run: inNs,
    pids() {
      const inside = [ORIGIN_NS, CLIENT_NS, NODE_NS].flatMap((ns) => {
        try {
          return sh('ip', 'netns', 'pids', ns).split('\n').filter(Boolean).map(Number);
        } catch {
          return [];
        }
      });
      return [...inside, ...lines.map((l) => l.pid!).filter(Boolean)];
    },
    close,
  };
}
