/**
 * The bench's network: two namespaces joined by a veth pair, `pcm-tx` (the sender, 10.78.0.1 on pcmv-tx)
 * and `pcm-rx` (the receivers, 10.78.0.2 on pcmv-rx). The sender's datagrams leave through an interface
 * as they would through a NIC; the receiving namespace stands in for the receivers' hosts.
 *
 * Where the receiving side's kernel work runs: veth hands each packet to the peer's backlog on the
 * sending CPU, so by default the receive softirq (IP input, one skb clone per member socket, wakeups)
 * runs in the sender's own syscall. `setReceiveSteering(cpus)` sets RPS on pcmv-rx so that this work runs
 * on another CPU instead, as it would on separate receiver hosts; `setReceiveSteering(undefined)` undoes it.
 */
import { execFileSync } from 'node:child_process';
import { RX_DEV, RX_IP, RX_NS, TX_DEV, TX_IP, TX_NS } from './common.js';

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function quiet(f: () => unknown): void {
  try {
    f();
  } catch {
    // already gone
  }
}

function pidsIn(ns: string): number[] {
  let pids: number[] = [];
  quiet(() => (pids = ip('netns', 'pids', ns).split('\n').filter(Boolean).map(Number)));
  return pids;
}

/** Ends what runs in the bench's namespaces (only this bench uses the pcm- prefix), then deletes them. Synchronous, for signal handlers. */
export function removeNetwork(): void {
  let list: string[] = [];
  quiet(
    () =>
      (list = ip('netns', 'list')
        .split('\n')
        .map((l) => l.split(' ')[0])
        .filter((n) => n.startsWith('pcm-'))),
  );
  for (const ns of list) {
    for (const pid of pidsIn(ns)) quiet(() => process.kill(pid, 'SIGKILL'));
    quiet(() => ip('netns', 'del', ns));
  }
  quiet(() => ip('link', 'del', TX_DEV));
}

export function createNetwork(): void {
  removeNetwork(); // an interrupted run's leftovers
  try {
    for (const ns of [TX_NS, RX_NS]) {
      ip('netns', 'add', ns);
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    ip('link', 'add', TX_DEV, 'netns', TX_NS, 'type', 'veth', 'peer', 'name', RX_DEV, 'netns', RX_NS);
    ip('-n', TX_NS, 'addr', 'add', `${TX_IP}/24`, 'dev', TX_DEV);
    ip('-n', RX_NS, 'addr', 'add', `${RX_IP}/24`, 'dev', RX_DEV);
    ip('-n', TX_NS, 'link', 'set', TX_DEV, 'up', 'multicast', 'on');
    ip('-n', RX_NS, 'link', 'set', RX_DEV, 'up', 'multicast', 'on');
    // The sender names its interface (setMulticastInterface); the routes make the group reachable anyway.
    ip('-n', TX_NS, 'route', 'add', '224.0.0.0/4', 'dev', TX_DEV);
    ip('-n', RX_NS, 'route', 'add', '224.0.0.0/4', 'dev', RX_DEV);
  } catch (error) {
    removeNetwork();
    throw error;
  }
}

/** RPS on the receiving end: its softirq work on `cpus`, or (undefined) on the CPU that sent the packet. */
export function setReceiveSteering(cpus: number[] | undefined): void {
  const mask = (cpus ?? []).reduce((m, cpu) => m | (1 << cpu), 0).toString(16);
  ip('netns', 'exec', RX_NS, 'sh', '-c', `echo ${mask} > /sys/class/net/${RX_DEV}/queues/rx-0/rps_cpus`);
}

/** RX drops the receiving namespace's kernel counted (backlog full, socket buffers full). */
export function receiveDrops(): { udpRcvbufErrors: number; udpInErrors: number; backlogDrops: number } {
  const snmp = ip('netns', 'exec', RX_NS, 'cat', '/proc/net/snmp').split('\n');
  const udp = snmp.filter((l) => l.startsWith('Udp:'));
  const names = udp[0].split(/\s+/);
  const values = udp[1].split(/\s+/).map(Number);
  const get = (name: string) => values[names.indexOf(name)] ?? 0;
  // /proc/net/softnet_stat is per CPU, machine-wide: column 2 is backlog drops (hex).
  const softnet = ip('netns', 'exec', RX_NS, 'cat', '/proc/net/softnet_stat').trim().split('\n');
  const backlogDrops = softnet.reduce((s, l) => s + parseInt(l.split(' ')[1], 16), 0);
  return { udpRcvbufErrors: get('RcvbufErrors'), udpInErrors: get('InErrors'), backlogDrops };
}
