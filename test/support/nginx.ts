import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childPids, killQuietly } from './processes.js';
import { until } from './wait.js';

/** The CDN edge configuration that docs/cdn-nginx.md quotes, with @LISTEN@, @ORIGIN@ and @PREFIX@ to fill in. */
export const EDGE_CONFIG_TEMPLATE = fileURLToPath(new URL('../../../docs/nginx-pushcast.conf', import.meta.url));

export interface EdgeConfigValues {
  /** address:port nginx listens on */
  listen: string;
  /** host:port of the pushcast origin (cleartext) */
  origin: string;
  /** directory for the cache, temp files, logs and pid */
  prefix: string;
}

/** The template with its placeholders filled in; throws if one is left over. */
export function renderEdgeConfig(template: string, values: EdgeConfigValues): string {
  const text = template
    .replaceAll('@LISTEN@', values.listen)
    .replaceAll('@ORIGIN@', values.origin)
    .replaceAll('@PREFIX@', values.prefix);
  const left = /@[A-Z_]+@/.exec(text);
  if (left) throw new Error(`nginx template placeholder ${left[0]} has no value`);
  return text;
}

export interface RunningNginx {
  /** http://127.0.0.1:<port> */
  base: string;
  /** The temporary prefix directory (config, cache, logs). */
  dir: string;
  /** The error log so far, for failure messages. */
  errorLog(): string;
  /** Stops nginx and removes its directory. */
  stop(): Promise<void>;
}

/**
 * Runs nginx in the foreground with the edge configuration (docs/nginx-pushcast.conf) in a fresh
 * temporary directory, on a free port, in front of `origin` (host:port). Resolves once it accepts
 * connections.
 */
export async function startNginx(
  origin: string,
  options: { template?: string; timeoutMs?: number } = {},
): Promise<RunningNginx> {
  const template = readFileSync(options.template ?? EDGE_CONFIG_TEMPLATE, 'utf8');
  const dir = mkdtempSync(join(tmpdir(), 'pushcast-nginx-'));
  // The master runs as root here and creates the cache and temp directories for its workers, which run as
  // `nobody`; mkdtemp's 0700 would keep them out of the prefix itself.
  chmodSync(dir, 0o755);
  try {
    // A port found free can be taken before nginx binds it: try a few.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const conf = join(dir, 'nginx.conf');
      writeFileSync(conf, renderEdgeConfig(template, { listen: `127.0.0.1:${port}`, origin, prefix: dir }));
      const child = spawn('nginx', ['-c', conf, '-p', dir, '-g', 'daemon off;'], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr += text));
      const outcome = await until(
        `nginx to accept connections on port ${port}`,
        async () => (child.exitCode !== null || child.signalCode !== null ? 'exited' : await accepts(port)),
        { timeoutMs: options.timeoutMs ?? 10_000, intervalMs: 50, detail: () => stderr + readLog(dir) },
      ).catch((err: unknown) => {
        child.kill('SIGKILL');
        throw err;
      });
      if (outcome === true) return running(child, port, dir);
      if (attempt < 3 && /Address already in use/.test(stderr)) continue;
      throw new Error(`nginx did not start:\n${stderr}${readLog(dir)}`);
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

function running(child: ChildProcess, port: number, dir: string): RunningNginx {
  const exited = child.exitCode === null ? once(child, 'exit') : Promise.resolve();
  // Never leave an nginx behind if the test process ends without calling stop().
  const onExit = () => child.kill('SIGKILL');
  process.once('exit', onExit);
  return {
    base: `http://127.0.0.1:${port}`,
    dir,
    errorLog: () => readLog(dir),
    async stop() {
      process.off('exit', onExit);
      if (child.exitCode === null && child.signalCode === null) {
        const workers = childPids(child.pid!);
        child.kill('SIGTERM'); // fast shutdown: the master stops its workers
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          for (const pid of workers) killQuietly(pid);
        }, 5000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.once('error', reject);
  });
}

function readLog(dir: string): string {
  try {
    return readFileSync(join(dir, 'error.log'), 'utf8');
  } catch {
    return '';
  }
}
