/**
 * Two network namespaces (test/support/netns.ts) joined by one link with a settable round-trip time:
 * `origin` (10.77.0.1) and `client` (10.77.0.2). Everything the bench measures crosses this link, so TCP
 * and TLS pay the named RTT on every round trip (handshake, ACK clocking, slow start), as they would on a
 * real path.
 *
 * The delay is made by `tc qdisc … netem delay RTT/2` on both ends of a veth pair when the kernel has
 * sch_netem; kernels built without it (some VM kernels) get the same wire from a user-space delay line
 * (delay-line.ts). The report says which was used.
 */
import { NetworkLab, quietly, type Namespace } from '../../test/support/netns.js';
import { startDelayLine } from './delay-line.js';

export const ORIGIN_IP = '10.77.0.1';
export const CLIENT_IP = '10.77.0.2';

export interface Network {
  /** How the delay is made, for the report. */
  readonly kind: 'netem' | 'delay-line';
  /** Where `pushcast serve` runs, and every client. */
  readonly origin: Namespace;
  readonly client: Namespace;
  /** What interrupted runs had left and was removed first. */
  readonly stale: string[];
  setRtt(ms: number): Promise<void>;
  /** Removes the namespaces (ending what runs in them) and stops the delay line; idempotent, synchronous for signal handlers. */
  close(): void;
}

type Link = Pick<Network, 'kind' | 'setRtt'> & { close?: () => void };

export async function createNetwork(): Promise<Network> {
  const lab = NetworkLab.create();
  try {
    const origin = lab.namespace('origin');
    const client = lab.namespace('client');
    const link = tryNetem(lab, origin, client) ?? (await delayLine(lab, origin, client));
    return {
      kind: link.kind,
      origin,
      client,
      stale: lab.stale,
      setRtt: link.setRtt,
      close() {
        link.close?.();
        lab.close();
      },
    };
  } catch (err) {
    lab.close();
    throw err;
  }
}

/** veth + netem on both ends; undefined when this kernel has no netem (the veth is removed again). */
function tryNetem(lab: NetworkLab, origin: Namespace, client: Namespace): Link | undefined {
  const ends = [
    { ns: origin, dev: lab.device('o'), address: `${ORIGIN_IP}/24` },
    { ns: client, dev: lab.device('c'), address: `${CLIENT_IP}/24` },
  ];
  lab.veth(ends[0]!, ends[1]!);
  try {
    for (const e of ends) e.ns.run('tc', 'qdisc', 'add', 'dev', e.dev, 'root', 'netem', 'delay', '0ms');
  } catch {
    quietly(() => origin.run('ip', 'link', 'del', ends[0]!.dev));
    return undefined;
  }
  return {
    kind: 'netem',
    async setRtt(ms) {
      // Half the RTT on each end, so that a round trip is exactly `ms`.
      for (const e of ends) e.ns.run('tc', 'qdisc', 'change', 'dev', e.dev, 'root', 'netem', 'delay', `${ms / 2}ms`);
    },
  };
}

async function delayLine(lab: NetworkLab, origin: Namespace, client: Namespace): Promise<Link> {
  const line = await startDelayLine(
    { ns: origin, dev: lab.device('o0'), address: ORIGIN_IP, peer: CLIENT_IP },
    { ns: client, dev: lab.device('c0'), address: CLIENT_IP, peer: ORIGIN_IP },
  );
  return {
    kind: 'delay-line',
    setRtt: (ms) => line.setDelay(ms / 2),
    close: line.close,
  };
}
