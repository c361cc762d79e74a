/**
 * Two network namespaces joined by one link with a settable round-trip time: `pcb-origin` (10.77.0.1)
 * and `pcb-client` (10.77.0.2). Everything the bench measures crosses this link, so TCP and TLS pay the
 * named RTT on every round trip (handshake, ACK clocking, slow start), as they would on a real path.
 *
 * The delay is made by `tc qdisc … netem delay RTT/2` on both ends of a veth pair when the kernel has
 * sch_netem; kernels built without it (some VM kernels) get the same wire from a user-space delay line
 * (delay-line.py: two TUN devices and a fixed one-way delay per direction). The report says which was used.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ORIGIN_NS = 'pcb-origin';
export const CLIENT_NS = 'pcb-client';
export const ORIGIN_IP = '10.77.0.1';
export const CLIENT_IP = '10.77.0.2';

/** bench/push/delay-line.py in the source tree (build/bench/push → ../../../bench/push). */
const DELAY_LINE = fileURLToPath(new URL('../../../bench/push/delay-line.py', import.meta.url));

export interface Network {
  /** How the delay is made, for the report. */
  readonly kind: 'netem' | 'delay-line';
  setRtt(ms: number): Promise<void>;
  /** Removes the namespaces and stops the delay line; safe to call twice, synchronous for signal handlers. */
  close(): void;
}

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function inNs(ns: string, ...cmd: string[]): string {
  return ip('netns', 'exec', ns, ...cmd);
}

function quiet(f: () => unknown): void {
  try {
    f();
  } catch {
    // already gone
  }
}

/**
 * Deletes namespaces left by an interrupted run, and ends the processes still inside them (they can only
 * be this bench's: nothing else uses the pcb- prefix).
 */
export function removeStaleNamespaces(): string[] {
  const names = ip('netns', 'list')
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => n.startsWith('pcb-'));
  for (const ns of names) {
    let pids: number[] = [];
    quiet(() => (pids = ip('netns', 'pids', ns).split('\n').filter(Boolean).map(Number)));
    for (const pid of pids) quiet(() => process.kill(pid, 'SIGKILL'));
    quiet(() => ip('netns', 'del', ns));
  }
  // A delay line of an interrupted run exits by itself once its devices or its stdin are gone.
  for (const dev of ['pcb-o0', 'pcb-c0', 'pcbv-o', 'pcbv-c']) quiet(() => ip('link', 'del', dev));
  return names;
}

function addNamespaces(): void {
  for (const ns of [ORIGIN_NS, CLIENT_NS]) {
    ip('netns', 'add', ns);
    // Chromium and Node bind loopback sockets of their own; a namespace starts with lo down.
    inNs(ns, 'ip', 'link', 'set', 'lo', 'up');
  }
}

/** Ends what still runs in the bench's namespaces (the bench started all of it), then deletes them. */
function removeNamespaces(): void {
  for (const ns of [ORIGIN_NS, CLIENT_NS]) {
    let pids: number[] = [];
    quiet(() => (pids = ip('netns', 'pids', ns).split('\n').filter(Boolean).map(Number)));
    for (const pid of pids) quiet(() => process.kill(pid, 'SIGKILL'));
    quiet(() => ip('netns', 'del', ns));
  }
}

export async function createNetwork(): Promise<Network> {
  addNamespaces();
  try {
    return tryNetem() ?? (await delayLine());
  } catch (err) {
    removeNamespaces();
    throw err;
  }
}

/** veth + netem on both ends; undefined when this kernel has no netem (the veth is removed again). */
function tryNetem(): Network | undefined {
  ip('link', 'add', 'pcbv-o', 'netns', ORIGIN_NS, 'type', 'veth', 'peer', 'name', 'pcbv-c', 'netns', CLIENT_NS);
  const ends = [
    { ns: ORIGIN_NS, dev: 'pcbv-o', addr: `${ORIGIN_IP}/24` },
    { ns: CLIENT_NS, dev: 'pcbv-c', addr: `${CLIENT_IP}/24` },
  ];
  try {
    for (const e of ends) inNs(e.ns, 'tc', 'qdisc', 'add', 'dev', e.dev, 'root', 'netem', 'delay', '0ms');
  } catch {
    quiet(() => inNs(ORIGIN_NS, 'ip', 'link', 'del', 'pcbv-o'));
    return undefined;
  }
  for (const e of ends) {
    inNs(e.ns, 'ip', 'addr', 'add', e.addr, 'dev', e.dev);
    inNs(e.ns, 'ip', 'link', 'set', e.dev, 'up');
  }
  let closed = false;
  return {
    kind: 'netem',
    async setRtt(ms) {
      // Half the RTT on each end, so that a round trip is exactly `ms`.
      for (const e of ends) inNs(e.ns, 'tc', 'qdisc', 'change', 'dev', e.dev, 'root', 'netem', 'delay', `${ms / 2}ms`);
    },
    close() {
      if (closed) return;
      closed = true;
      removeNamespaces();
    },
  };
}

/** Two TUN devices made by the delay line in this namespace, then moved into the two namespaces. */
async function delayLine(): Promise<Network> {
  const child: ChildProcess = spawn('/usr/bin/python3', [DELAY_LINE, 'pcb-o0', 'pcb-c0'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const replies: ((line: string) => void)[] = [];
  let pending = '';
  child.stdout!.setEncoding('utf8').on('data', (text: string) => {
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) replies.shift()?.(line);
  });
  const reply = () =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the delay line did not answer')), 5000);
      replies.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
  child.on('exit', (code) => {
    for (const r of replies.splice(0)) r(`exited ${code}`);
  });
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    quiet(() => child.stdin!.end('quit\n'));
    quiet(() => child.kill('SIGTERM'));
    removeNamespaces();
  };
  try {
    if ((await reply()) !== 'ready') throw new Error('the delay line did not start');
    for (const [dev, ns, local, peer] of [
      ['pcb-o0', ORIGIN_NS, ORIGIN_IP, CLIENT_IP],
      ['pcb-c0', CLIENT_NS, CLIENT_IP, ORIGIN_IP],
    ]) {
      // The delay line's file descriptors stay attached to a TUN device moved to another namespace.
      ip('link', 'set', dev, 'netns', ns);
      inNs(ns, 'ip', 'addr', 'add', local, 'peer', peer, 'dev', dev);
      inNs(ns, 'ip', 'link', 'set', dev, 'up');
    }
  } catch (err) {
    close();
    throw err;
  }
  return {
    kind: 'delay-line',
    async setRtt(ms) {
      child.stdin!.write(`delay ${ms / 2}\n`);
      if ((await reply()) !== 'ok') throw new Error('the delay line refused the delay');
    },
    close,
  };
}
