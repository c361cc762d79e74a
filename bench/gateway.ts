/**
 * Benchmark: one multicast session fanned out by the gateway to N WebSocket viewers, against
 * the same N viewers pulling the same segments from the origin by HTTP, side by side in one run, on the
 * host's loopback; N = 10, 100, 500 (BENCH_GW_CLIENTS). For each: bytes delivered per second, the CPU of
 * the process serving them (the `pushcast gateway` process for push; for pull, the origin's CPU during the pull window less
 * its CPU during the push window just before, when it serves no viewer of its own, so both windows hold the
 * same packaging and multicast sending), drops and errors; and the origin's own CPU while the gateway serves
 * N viewers, which holds the multicast sender and must not grow with N. CPU per Mbit/s of each side and
 * their ratio are printed only above the noise floor: 3 σ of the difference of two such origin windows,
 * from the origin's CPU sampled every second in the push windows.
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

/** Samples a process's CPU every second while `work` runs: its share of one core over the window and per second. */
async function cpuDuring<T>(
  pid: number,
  work: () => Promise<T>,
): Promise<{ result: T; share: number; seconds: number; perSecond: number[] }> {
  const t0 = performance.now();
  const c0 = cpuSeconds(pid);
  const perSecond: number[] = [];
  let last = c0;
  const timer = setInterval(() => {
    const c = cpuSeconds(pid);
    perSecond.push(c - last);
    last = c;
  }, 1000);
  try {
    const result = await work();
    const seconds = (performance.now() - t0) / 1000;
    return { result, share: (cpuSeconds(pid) - c0) / seconds, seconds, perSecond };
  } finally {
    clearInterval(timer);
  }
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

    // The origin at rest (packaging and multicast sending only), for the report.
    const idle0 = cpuSeconds(serve.child.pid!);
    await new Promise((r) => setTimeout(r, 5000));
    const originIdle = (cpuSeconds(serve.child.pid!) - idle0) / 5;

    const measured: {
      n: number;
      push: Awaited<ReturnType<typeof run>>;
      pull: Awaited<ReturnType<typeof run>>;
      gatewayCpu: number;
      originCpuPush: number;
      originCpuPull: number;
      restSamples: number[];
      drops: number;
    }[] = [];
    for (const n of CLIENTS) {
      // Push: N subscriptions through the gateway.
      const g0 = cpuSeconds(gateway.pid!);
      const drops0 = await gatewayDrops();
      const t0 = performance.now();
      const pushWindow = await cpuDuring(serve.child.pid!, () =>
        run(['push', String(n), String(SECONDS), wsUrl, origin]),
      );
      const push = pushWindow.result;
      const gatewayCpu = (cpuSeconds(gateway.pid!) - g0) / ((performance.now() - t0) / 1000);
      const originCpuPush = pushWindow.share;
      const drops = (await gatewayDrops()) - drops0;
      // Pull: the same N viewers fetching each new segment from the origin.
      const now = Date.now();
      const next = startNumber + Math.floor((now - ast) / (d * 1000));
      const nextAt = ast + (next - startNumber + 1) * d * 1000;
      const pullWindow = await cpuDuring(serve.child.pid!, () =>
        run(['pull', String(n), String(SECONDS), origin, REP, String(d), String(next), String(nextAt)]),
      );
      // The origin above its own level of the push window just before, not above a rest level measured
      // once at the start: the latter drifts by more than serving a few viewers costs.
      const originCpuPull = pullWindow.share - originCpuPush;
      measured.push({
        n,
        push,
        pull: pullWindow.result,
        gatewayCpu,
        originCpuPush,
        originCpuPull,
        restSamples: pushWindow.perSecond,
        drops,
      });
    }

    // Noise floor: 3 σ of the difference of a push-window and a pull-window mean of the origin's CPU, σ
    // pooled from the 1-s samples within each push window (quantization to 1/TICKS s included, so it
    // errs high).
    const deviations = measured.flatMap((m) => {
      const mean = m.restSamples.reduce((a, b) => a + b, 0) / m.restSamples.length;
      return m.restSamples.map((x) => (x - mean) ** 2);
    });
    const degrees = measured.reduce((a, m) => a + m.restSamples.length - 1, 0);
    const sigma = Math.sqrt(deviations.reduce((a, b) => a + b, 0) / Math.max(1, degrees));
    const noiseFloor = 3 * sigma * Math.sqrt(1 / SECONDS + 1 / (SECONDS + 1));

    const rows: string[] = [];
    const json: unknown[] = [];
    const mbit = (b: number, s: number) => (b * 8) / s / 1e6;
    /** CPU ms per Mbit delivered (CPU share ÷ Mbit/s), or undefined under the noise floor. */
    const perMbit = (share: number, megabitsPerSecond: number) =>
      share >= noiseFloor && megabitsPerSecond > 0 ? (share * 1000) / megabitsPerSecond : undefined;
    const cell = (x: number | undefined, width: number) => (x === undefined ? '–' : x.toFixed(2)).padStart(width);
    for (const m of measured) {
      const pushMbit = mbit(m.push.bytes, SECONDS);
      const pullMbit = mbit(m.pull.bytes, SECONDS + 1);
      const pushPerMbit = perMbit(m.gatewayCpu, pushMbit);
      const pullPerMbit = perMbit(m.originCpuPull, pullMbit);
      const ratio = pushPerMbit !== undefined && pullPerMbit !== undefined ? pushPerMbit / pullPerMbit : undefined;
      rows.push(
        `${String(m.n).padStart(5)}  ${pushMbit.toFixed(1).padStart(9)} ${(m.gatewayCpu * 100).toFixed(1).padStart(7)}% ${String(m.drops).padStart(7)} ${String(m.push.errors).padStart(6)}  ${(m.originCpuPush * 100).toFixed(1).padStart(7)}%   ${pullMbit.toFixed(1).padStart(9)} ${(m.originCpuPull * 100).toFixed(1).padStart(7)}% ${String(m.pull.errors).padStart(6)}   ${cell(pushPerMbit, 6)} ${cell(pullPerMbit, 6)} ${cell(ratio, 11)}`,
      );
      json.push({
        viewers: m.n,
        push: {
          megabitsPerSecond: pushMbit,
          gatewayCpu: m.gatewayCpu,
          cpuMsPerMbit: pushPerMbit ?? null,
          drops: m.drops,
          errors: m.push.errors,
          originCpu: m.originCpuPush,
          perViewerBytes: [m.push.perClientMin, m.push.perClientMax],
        },
        pull: {
          megabitsPerSecond: pullMbit,
          originCpuAboveRest: m.originCpuPull,
          cpuMsPerMbit: pullPerMbit ?? null,
          errors: m.pull.errors,
        },
        pushPerPullCpu: ratio ?? null,
      });
    }
    console.log(
      '                 push through the gateway                        |  pull from the origin          | CPU ms per Mbit',
    );
    console.log(
      'viewers     Mbit/s  gateway    drops errors  origin (sender)  |    Mbit/s  origin errors   |   push   pull push ÷ pull',
    );
    for (const r of rows) console.log(r);
    console.log(
      `\norigin CPU at rest (packaging + multicast sending): ${(originIdle * 100).toFixed(1)}%; CPU shares are of one core`,
    );
    console.log(
      `pull origin CPU = its CPU in the pull window − in the push window before it; noise floor ${(noiseFloor * 100).toFixed(2)}% (3 σ of that difference, σ of the origin's 1-s CPU samples in the push windows ${(sigma * 100).toFixed(2)}%); CPU per Mbit and the ratio under the floor: –`,
    );
    console.log(
      `bench-json: ${JSON.stringify({ bench: 'gateway', machine: machine(), seconds: SECONDS, originIdleCpu: originIdle, noiseFloorCpu: noiseFloor, results: json })}`,
    );
  } finally {
    cleanup();
  }
  process.exit(0);
}

void main();
