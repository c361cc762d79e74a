/**
 * A link made by delay-line.py (a user-space wire with a fixed one-way delay each way, for kernels
 * without sch_netem) between two namespaces of a NetworkLab (test/support/netns.ts): the delay line
 * makes two TUN devices in this namespace, which are then moved into the namespaces (its file
 * descriptors stay attached) and addressed point to point.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sh, quietly, type Namespace } from '../../test/support/netns.js';
import { within } from '../../test/support/wait.js';

/** bench/push/delay-line.py in the source tree (build/bench/push → ../../../bench/push). */
const DELAY_LINE = fileURLToPath(new URL('../../../bench/push/delay-line.py', import.meta.url));

/** One end of the link: the TUN device `dev` moved into `ns`, with address `address` and its peer's `peer`. */
export interface DelayLineEnd {
  ns: Namespace;
  dev: string;
  address: string;
  peer: string;
}

export interface DelayLine {
  /** The delay line's process. */
  readonly pid: number;
  /** The one-way delay, each way, of the packets read from now on. */
  setDelay(oneWayMs: number): Promise<void>;
  /** Ends the delay line (its devices go with it); synchronous, for signal handlers, and idempotent. */
  close(): void;
}

export async function startDelayLine(a: DelayLineEnd, b: DelayLineEnd): Promise<DelayLine> {
  const child = spawn('/usr/bin/python3', [DELAY_LINE, a.dev, b.dev], { stdio: ['pipe', 'pipe', 'inherit'] });
  // It answers each command with one line, in order: each answer goes to the oldest waiting command.
  const waiting: ((line: string) => void)[] = [];
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (text: string) => {
    const lines = (partial + text).split('\n');
    partial = lines.pop()!;
    for (const line of lines) waiting.shift()?.(line);
  });
  child.on('exit', (code) => {
    for (const w of waiting.splice(0)) w(`exited ${code}`);
  });
  const answer = () =>
    within('the delay line to answer', new Promise<string>((resolve) => waiting.push(resolve)), { timeoutMs: 5000 });
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    quietly(() => child.stdin!.end('quit\n'));
    quietly(() => child.kill('SIGTERM'));
  };
  try {
    if ((await answer()) !== 'ready') throw new Error('the delay line did not start (is /dev/net/tun there?)');
    for (const end of [a, b]) {
      sh('ip', 'link', 'set', end.dev, 'netns', end.ns.name);
      end.ns.run('ip', 'addr', 'add', end.address, 'peer', end.peer, 'dev', end.dev);
      end.ns.run('ip', 'link', 'set', end.dev, 'up');
    }
  } catch (error) {
    close();
    throw error;
  }
  return {
    pid: child.pid!,
    async setDelay(oneWayMs) {
      child.stdin!.write(`delay ${oneWayMs}\n`);
      if ((await answer()) !== 'ok') throw new Error('the delay line refused the delay');
    },
    close,
  };
}
