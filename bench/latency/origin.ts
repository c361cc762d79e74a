/**
 * `pushcast serve` in the lab's origin namespace, as a user runs it (built command line, real ffmpeg),
 * listening on every address of the namespace (one per link), with its own state directory (so its
 * development certificate never replaces the one other benches and tests share in .pushcast/).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { onLines } from './lines.js';
import type { Namespace } from '../../test/support/netns.js';
import { ORIGIN_IP, ORIGIN_NODE_IP } from './network.js';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = fileURLToPath(new URL('../../../bin/pushcast.js', import.meta.url));
export const HTTP_BASE = `http://${ORIGIN_IP}:8080`;
/** The origin as the Node viewer reaches it, over its own link. */
export const NODE_HTTPS_BASE = `https://${ORIGIN_NODE_IP}:8443`;

export interface Origin {
  args: string[];
  lines: string[];
  /** SIGTERM (the origin stops its encoder), SIGKILL after 10 s. */
  stop(): Promise<void>;
  /** Synchronous, for exit paths: the origin and its ffmpeg. */
  kill(): void;
}

export async function startOrigin(ns: Namespace, extraArgs: string[], stateDir: string): Promise<Origin> {
  const args = [
    'serve',
    '--no-multicast',
    '--port',
    '8080',
    '--tls-port',
    '8443',
    '--state-dir',
    stateDir,
    ...extraArgs,
  ];
  // `ip netns exec` execs node in place: child.pid is the origin's.
  const [ip, ...argv] = ns.command(process.execPath, BIN, ...args);
  const child: ChildProcess = spawn(ip!, argv, {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let ready!: () => void;
  const live = new Promise<void>((r) => (ready = r));
  const onLine = (line: string) => {
    lines.push(line);
    if (lines.length > 400) lines.splice(0, 100);
    // The last of the lines serve prints once live.
    if (line.startsWith('metrics: ')) ready();
  };
  onLines(child.stdout!, onLine);
  onLines(child.stderr!, onLine);
  const exited = once(child, 'exit');
  const running = () => child.exitCode === null && child.signalCode === null;
  const kill = () => {
    if (!running()) return;
    let encoders: number[] = [];
    try {
      encoders = execFileSync('pgrep', ['-P', String(child.pid)], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean)
        .map(Number);
    } catch {
      // no children
    }
    for (const pid of encoders) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    child.kill('SIGKILL');
  };
  const timeout = setTimeout(kill, 60_000);
  await Promise.race([live, exited]);
  clearTimeout(timeout);
  if (!running()) throw new Error(`pushcast serve did not go live:\n${lines.join('\n')}`);
  return {
    args,
    lines,
    kill,
    async stop() {
      if (!running()) return;
      child.kill('SIGTERM');
      const timer = setTimeout(kill, 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
