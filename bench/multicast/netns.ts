/**
 * The bench's network (test/support/netns.ts): two namespaces joined by a veth pair, `tx` (the sender,
 * TX_IP) and `rx` (the receivers, RX_IP). The sender's datagrams leave through an interface as they would
 * through a NIC; the receiving namespace stands in for the receivers' hosts.
 *
 * Where the receiving side's kernel work runs: veth hands each packet to the peer's backlog on the
 * sending CPU, so by default the receive softirq (IP input, one skb clone per member socket, wakeups)
 * runs in the sender's own syscall. `setReceiveSteering(cpus)` sets RPS on the receiving end so that this
 * work runs on another CPU instead, as it would on separate receiver hosts; `setReceiveSteering(undefined)`
 * undoes it.
 */
import { NetworkLab, type Namespace } from '../../test/support/netns.js';
import { RX_IP, TX_IP } from './common.js';

export interface BenchNetwork {
  tx: Namespace;
  rx: Namespace;
  /** RPS on the receiving end: its softirq work on `cpus`, or (undefined) on the CPU that sent the packet. */
  setReceiveSteering(cpus: number[] | undefined): void;
  /** RX drops the receiving namespace's kernel counted (backlog full, socket buffers full). */
  receiveDrops(): { udpRcvbufErrors: number; udpInErrors: number; backlogDrops: number };
  /** Removes the namespaces, ending what runs in them; synchronous, for signal handlers. */
  close(): void;
}

export function createNetwork(): BenchNetwork {
  const lab = NetworkLab.create();
  try {
    const tx = lab.namespace('tx');
    const rx = lab.namespace('rx');
    const txDev = lab.device('tx');
    const rxDev = lab.device('rx');
    lab.veth({ ns: tx, dev: txDev, address: `${TX_IP}/24` }, { ns: rx, dev: rxDev, address: `${RX_IP}/24` });
    for (const [ns, dev] of [
      [tx, txDev],
      [rx, rxDev],
    ] as const) {
      ns.run('ip', 'link', 'set', dev, 'multicast', 'on');
      // The sender names its interface (setMulticastInterface); the routes make the group reachable anyway.
      lab.route(ns, '224.0.0.0/4', dev);
    }
    return {
      tx,
      rx,
      setReceiveSteering(cpus) {
        const mask = (cpus ?? []).reduce((m, cpu) => m | (1 << cpu), 0).toString(16);
        rx.run('sh', '-c', `echo ${mask} > /sys/class/net/${rxDev}/queues/rx-0/rps_cpus`);
      },
      receiveDrops() {
        const udp = rx
          .run('cat', '/proc/net/snmp')
          .split('\n')
          .filter((l) => l.startsWith('Udp:'));
        const names = udp[0]!.split(/\s+/);
        const values = udp[1]!.split(/\s+/).map(Number);
        const get = (name: string) => values[names.indexOf(name)] ?? 0;
        // /proc/net/softnet_stat is per CPU, machine-wide: column 2 is backlog drops (hex).
        const softnet = rx.run('cat', '/proc/net/softnet_stat').trim().split('\n');
        const backlogDrops = softnet.reduce((s, l) => s + Number.parseInt(l.split(' ')[1]!, 16), 0);
        return { udpRcvbufErrors: get('RcvbufErrors'), udpInErrors: get('InErrors'), backlogDrops };
      },
      close: () => lab.close(),
    };
  } catch (error) {
    lab.close();
    throw error;
  }
}
