import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { within } from './wait.js';

export const BIN = fileURLToPath(new URL('../../../bin/pushcast.js', import.meta.url));

export interface RunningServe extends RunningPushcast {
  player: string;
  manifest: string;
  httpsPlayer?: string;
  metrics: string;
}

export interface RunningPushcast {
  child: ChildProcess;
  /** Every line printed so far. */
  lines: string[];
  /** Resolves with the first printed line that matches. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** The exit code (null when ended by a signal), once the process has exited. */
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Runs `pushcast <subcommand> …args` exactly as a user does (the built command line), collecting what it
 * prints line by line (echoed with PUSHCAST_TEST_VERBOSE).
 */
export function runPushcast(
  subcommand: string,
  args: string[],
  options: { stdin?: Uint8Array; timeoutMs?: number; netns?: string } = {},
): RunningPushcast {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const command = [process.execPath, BIN, subcommand, ...args];
  // `ip netns exec` execs the command in place, so the child's pid is pushcast's own.
  const [file, ...argv] = options.netns ? ['ip', 'netns', 'exec', options.netns, ...command] : command;
  const child = spawn(file!, argv, {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin!.on('error', () => {});
  if (options.stdin) child.stdin!.end(options.stdin);
  const lines: string[] = [];
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  let pending = '';
  const onText = (text: string) => {
    pending += text;
    const parts = pending.split('\n');
    pending = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      if (process.env.PUSHCAST_TEST_VERBOSE) console.error(`[${subcommand}] ${line}`);
      for (const w of [...waiters]) {
        if (w.pattern.test(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  };
  child.stdout!.setEncoding('utf8').on('data', onText);
  child.stderr!.setEncoding('utf8').on('data', onText);
  const exited = once(child, 'exit').then(([code]) => code as number | null);

  const waitForLine = (pattern: RegExp, ms = timeoutMs): Promise<string> => {
    const seen = lines.find((l) => pattern.test(l));
    if (seen) return Promise.resolve(seen);
    const waiter = { pattern, resolve: (_line: string) => {} };
    const printed = new Promise<string>((resolve, reject) => {
      waiter.resolve = resolve;
      waiters.push(waiter);
      void exited.then(() =>
        reject(new Error(`pushcast ${subcommand} exited before printing ${pattern}:\n${lines.join('\n')}`)),
      );
    });
    return within(`a line matching ${pattern} from pushcast ${subcommand}`, printed, {
      timeoutMs: ms,
      detail: () => `it printed:\n${lines.join('\n')}`,
    }).finally(() => {
      if (waiters.includes(waiter)) waiters.splice(waiters.indexOf(waiter), 1);
    });
  };
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode !== null) return child.exitCode;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };
  return { child, lines, waitForLine, exited, stop };
}

/**
 * Runs `pushcast serve` exactly as a user does (the built command line, real ffmpeg), on free ports, and
 * waits for its `player:` and `manifest:` lines.
 */
export async function startServe(
  args: string[] = [],
  options: { stdin?: Uint8Array; timeoutMs?: number; netns?: string } = {},
): Promise<RunningServe> {
  const { child, lines, waitForLine, exited, stop } = runPushcast(
    'serve',
    ['--port', '0', '--tls-port', '0', '--host', '127.0.0.1', ...args],
    options,
  );
  const value = (line: string) => line.slice(line.indexOf(':') + 1).trim();
  try {
    const player = value(await waitForLine(/^player: /));
    const manifest = value(await waitForLine(/^manifest: /));
    const metrics = value(await waitForLine(/^metrics: /));
    const httpsLine = lines.find((l) => /^https player: /.test(l));
    return {
      child,
      lines,
      player,
      manifest,
      metrics,
      httpsPlayer: httpsLine && value(httpsLine),
      waitForLine,
      exited,
      stop,
    };
  } catch (err) {
    await stop('SIGKILL');
    throw err;
  }
}
