/**
 * Benchmark: one multicast session fanned out by the gateway to N WebSocket viewers, against
 * the same N viewers pulling the same segments from the origin by HTTP, side by side in one run, on the
 * host's loopback; N = 10, 100, 500 (BENCH_GW_CLIENTS). For each: bytes delivered per second, the CPU of
 * the process serving them (the `pushcast gateway` process for push; the origin's CPU above its idle
 * level for pull), drops and errors; and the origin's own CPU while the gateway serves N viewers, which
 * holds the multicast sender and must not grow with N.
 *   npm run bench  (after the other benchmarks; alone: node build/bench/gateway.js)
 * Options: BENCH_GW_SECONDS (20), BENCH_GW_CLIENTS (10,100,500).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BIN, startServe } from '../test/support/pushcast-process.js';
import { machine } from './machine.js';

const SECONDS = Number(process.env.BENCH_GW_SECONDS ?? 20);
const CLIENTS = (process.env.BENCH_GW_CLIENTS ?? '10,100,500').split(',').map(Number);
const CLIENT_SCRIPT = fileURLToPath(new URL('./gateway/clients.js', import.meta.url));
const GATEWAY_PORT = 18644;
const REP = 'video-360p';
const TICKS = 100; // USER_HZ on Linux

/** CPU seconds (user + system) a process has used so far (/proc/PID/stat fields 14 and 15). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

function run(
  args: string[],
): Promise<{ bytes: number; messages: number; errors: number; perClientMin: number; perClientMax: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLIENT_SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => (out += t));
    child.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`clients exited ${code}`)),
    );
  });
}

async function gatewayDrops(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${GATEWAY_PORT}/metrics`)).text();
  return Number(/^pushcast_gateway_packets_dropped_total (\d+)/m.exec(text)?.[1] ?? 0);
}

async function main(): Promise<void> {
  console.log(`machine: ${machine()}`);
  console.log(
    `gateway fan-out vs unicast pull: ${SECONDS} s per variant, viewers ${CLIENTS.join(', ')}, rendition ${REP} (0.8 Mbit/s), loopback\n`,
  );
  const serve = await startServe([
    '--ladder',
    '640x360@800k',
    '--no-audio',
    '--tls-port',
    'off',
    '--multicast-group',
    '232.112.94.1',
    '--multicast-port',
    '5900',
    '--gateway-url',
    `ws://127.0.0.1:${GATEWAY_PORT}/multicast/gateway`,
  ]);
  const origin = new URL(serve.player).origin;
  const gateway: ChildProcess = spawn(
    process.execPath,
    [
      BIN,
      'gateway',
      '--origin',
      serve.manifest,
      '--host',
      '127.0.0.1',
      '--port',
      String(GATEWAY_PORT),
      '--allow-origin',
      '*',
      '--max-subscribers',
      '2000',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const cleanup = () => {
    gateway.kill('SIGKILL');
    void serve.stop();
  };
  process.on('SIGINT', () => (cleanup(), process.exit(130)));
  try {
    await new Promise<void>((resolve) =>
      gateway.stdout!.setEncoding('utf8').on('data', (t: string) => t.includes('gateway: ') && resolve()),
    );
    const mpd = await (await fetch(serve.manifest)).text();
    const ast = Date.parse(/availabilityStartTime="([^"]+)"/.exec(mpd)![1]!);
    const startNumber = Number(/startNumber="(\d+)"/.exec(mpd)![1]);
    const d = Number(/duration="(\d+)"/.exec(mpd)![1]) / 1000;
    const session = /session-id=([0-9a-f]+)/.exec(
      (await fetch(serve.manifest.replace('manifest.mpd', `${REP}/init.mp4`), { method: 'HEAD' })).headers.get(
        'alt-svc',
      ) ?? '',
    )![1]!;
    const wsUrl = `ws://127.0.0.1:${GATEWAY_PORT}/multicast/gateway?group=232.112.94.1&port=5900&source=127.0.0.1&session-id=${session}`;

    // The origin at rest (packaging and multicast sending only), as the baseline for the pull variant.
    const idle0 = cpuSeconds(serve.child.pid!);
    await new Promise((r) => setTimeout(r, 5000));
    const originIdle = (cpuSeconds(serve.child.pid!) - idle0) / 5;

    const rows: string[] = [];
    const json: unknown[] = [];
    for (const n of CLIENTS) {
      // Push: N subscriptions through the gateway.
      const g0 = cpuSeconds(gateway.pid!);
      const o0 = cpuSeconds(serve.child.pid!);
      const drops0 = await gatewayDrops();
      const push = await run(['push', String(n), String(SECONDS), wsUrl, origin]);
      const gatewayCpu = (cpuSeconds(gateway.pid!) - g0) / SECONDS;
      const originCpuPush = (cpuSeconds(serve.child.pid!) - o0) / SECONDS;
      const drops = (await gatewayDrops()) - drops0;
      // Pull: the same N viewers fetching each new segment from the origin.
      const now = Date.now();
      const next = startNumber + Math.floor((now - ast) / (d * 1000));
      const nextAt = ast + (next - startNumber + 1) * d * 1000;
      const o1 = cpuSeconds(serve.child.pid!);
      const pull = await run([
        'pull',
        String(n),
        String(SECONDS),
        origin,
        REP,
        String(d),
        String(next),
        String(nextAt),
      ]);
      const originCpuPull = (cpuSeconds(serve.child.pid!) - o1) / (SECONDS + 1) - originIdle;
      const mbit = (b: number, s: number) => (b * 8) / s / 1e6;
      const pushMbit = mbit(push.bytes, SECONDS);
      const pullMbit = mbit(pull.bytes, SECONDS + 1);
      rows.push(
        `${String(n).padStart(5)}  ${pushMbit.toFixed(1).padStart(9)} ${(gatewayCpu * 100).toFixed(1).padStart(7)}% ${String(drops).padStart(7)} ${String(push.errors).padStart(6)}  ${(originCpuPush * 100).toFixed(1).padStart(7)}%   ${pullMbit.toFixed(1).padStart(9)} ${(originCpuPull * 100).toFixed(1).padStart(7)}% ${String(pull.errors).padStart(6)}   ${(gatewayCpu / Math.max(1e-9, pushMbit) / (Math.max(1e-9, originCpuPull) / Math.max(1e-9, pullMbit))).toFixed(2).padStart(6)}`,
      );
      json.push({
        viewers: n,
        push: {
          megabitsPerSecond: pushMbit,
          gatewayCpu,
          drops,
          errors: push.errors,
          originCpu: originCpuPush,
          perViewerBytes: [push.perClientMin, push.perClientMax],
        },
        pull: { megabitsPerSecond: pullMbit, originCpuAboveIdle: originCpuPull, errors: pull.errors },
      });
    }
    console.log(
      '                 push through the gateway                        |  pull from the origin          | CPU per Mbit/s',
    );
    console.log(
      'viewers     Mbit/s  gateway    drops errors  origin (sender)  |    Mbit/s  origin errors   | push ÷ pull',
    );
    for (const r of rows) console.log(r);
    console.log(
      `\norigin CPU at rest (packaging + multicast sending): ${(originIdle * 100).toFixed(1)}%; CPU shares are of one core`,
    );
    console.log(
      `bench-json: ${JSON.stringify({ bench: 'gateway', machine: machine(), seconds: SECONDS, originIdleCpu: originIdle, results: json })}`,
    );
  } finally {
    cleanup();
  }
  process.exit(0);
}

void main();
