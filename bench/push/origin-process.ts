/**
 * `pushcast serve` inside the origin namespace, as a user runs it (built command line, real ffmpeg).
 * test/support/pushcast-process.ts binds 127.0.0.1 and free ports; the bench needs the namespace's address
 * and fixed ports, and must be able to kill it from a signal handler, hence this small variant.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Namespace } from '../../test/support/netns.js';
import { ORIGIN_IP } from './network.js';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = fileURLToPath(new URL('../../../bin/pushcast.js', import.meta.url));
export const TLS_PORT = 8443;
export const ORIGIN_URL = `https://${ORIGIN_IP}:${TLS_PORT}`;
/** Two renditions keep the live encoder within real time on a small machine while still giving a choice. */
export const LADDER = '640x360@800k,1280x720@2M';
export const SEGMENT_DURATION = 2;

export interface OriginProcess {
  child: ChildProcess;
  args: string[];
  lines: string[];
  stop(): Promise<void>;
  /** Synchronous, for signal handlers. */
  kill(): void;
}

export async function startOrigin(ns: Namespace, extraArgs: string[]): Promise<OriginProcess> {
  const args = [
    'serve',
    '--no-multicast',
    '--host',
    ORIGIN_IP,
    '--port',
    '8080',
    '--tls-port',
    String(TLS_PORT),
    '--ladder',
    LADDER,
    '--segment-duration',
    String(SEGMENT_DURATION),
    '--state-dir',
    '.pushcast',
    ...extraArgs,
  ];
  // `ip netns exec` execs node in place, so child.pid is the origin itself.
  const [ip, ...argv] = ns.command(process.execPath, BIN, ...args);
  const child = spawn(ip!, argv, {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let live!: () => void;
  const ready = new Promise<void>((resolve) => (live = resolve));
  let pending = '';
  const onText = (text: string) => {
    pending += text;
    const parts = pending.split('\n');
    pending = parts.pop()!;
    for (const line of parts) {
      lines.push(line);
      if (/^manifest: /.test(line)) live();
    }
  };
  child.stdout!.setEncoding('utf8').on('data', onText);
  child.stderr!.setEncoding('utf8').on('data', onText);
  const exited = once(child, 'exit');
  const ffmpegPids = () => {
    try {
      return execFileSync('pgrep', ['-P', String(child.pid)], { encoding: 'utf8' })
        .trim()
        .split('\n')
        .filter(Boolean)
        .map(Number);
    } catch {
      return [];
    }
  };
  const kill = () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    for (const pid of ffmpegPids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    child.kill('SIGKILL');
  };
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM'); // the origin stops its encoder and closes its connections
    const timer = setTimeout(kill, 10_000);
    await exited;
    clearTimeout(timer);
  };
  const timeout = setTimeout(() => kill(), 60_000);
  await Promise.race([ready, exited]);
  clearTimeout(timeout);
  if (child.exitCode !== null || child.signalCode !== null)
    throw new Error(`pushcast serve did not go live:\n${lines.join('\n')}`);
  return { child, args, lines, stop, kill };
}
