/**
 * Benchmark: segment GET throughput and latency of the pushcast origin against nginx serving the very same
 * segment files, side by side in one run, while the live encoder runs; then the origin's CPU and memory.
 *   npm run bench  (options through env: BENCH_SECONDS, BENCH_ROUNDS, BENCH_CONCURRENCY)
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childPids } from '../test/support/processes.js';
import { startServe } from '../test/support/pushcast-process.js';
import { median } from './figures.js';
import { machine, toolVersion } from './machine.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const LOAD_CLIENT = fileURLToPath(new URL('./load-client.js', import.meta.url));

interface LoadResult {
  requests: number;
  errors: number;
  requestsPerSecond: number;
  megabitsPerSecond: number;
  p50: number;
  p99: number;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function runLoad(urls: string[]): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [LOAD_CLIENT, String(SECONDS), String(CONCURRENCY), ...urls], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    child.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`load client exited ${code}`)),
    );
  });
}

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat (fields 14 and 15). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function main(): Promise<void> {
  console.log(`machine: ${machine()}, ${toolVersion('nginx', ['-v']).replace('nginx version: ', '')}`);
  const serve = await startServe(['--tls-port', 'off', '--no-multicast']);
  const dir = mkdtempSync(join(os.tmpdir(), 'pushcast-bench-'));
  // nginx workers drop root privileges (to nobody) and must be able to read the files.
  chmodSync(dir, 0o755);
  let nginx: ReturnType<typeof spawn> | undefined;
  try {
    // Let a few segments accumulate, then take the newest complete ones of every video rendition.
    await new Promise((r) => setTimeout(r, 8000));
    const mpd = await (await fetch(serve.manifest)).text();
    const ast = Date.parse(/availabilityStartTime="([^"]+)"/.exec(mpd)![1]!);
    const startNumber = Number(/startNumber="(\d+)"/.exec(mpd)![1]);
    const duration = Number(/duration="(\d+)"/.exec(mpd)![1]) / 1000;
    const tracks = [...mpd.matchAll(/<Representation id="(video-[^"]+)"/g)].map((m) => m[1]);
    const newest = startNumber + Math.floor((Date.now() - ast) / 1000 / duration) - 2;
    const origin = new URL(serve.manifest).origin;
    const paths: string[] = [];
    let totalBytes = 0;
    for (const track of tracks) {
      mkdirSync(join(dir, 'live', track!), { recursive: true });
      for (let n = newest - 2; n <= newest; n++) {
        const path = `/live/${track}/${n}.m4s`;
        const res = await fetch(origin + path);
        if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
        const body = new Uint8Array(await res.arrayBuffer());
        totalBytes += body.byteLength;
        writeFileSync(join(dir, path), body);
        paths.push(path);
      }
    }
    console.log(
      `segments: ${paths.length} (${tracks.join(', ')}), mean ${(totalBytes / paths.length / 1024).toFixed(0)} KiB; ${CONCURRENCY} connections, ${ROUNDS} rounds of ${SECONDS} s each, alternating`,
    );

    // nginx as a CDN edge would run it: one worker (the origin is one Node event loop), sendfile, keep-alive.
    const nginxPort = await freePort();
    const conf = join(dir, 'nginx.conf');
    writeFileSync(
      conf,
      `worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 1024; }
http {
  access_log off; sendfile on; tcp_nopush on; keepalive_requests 1000000;
  client_body_temp_path ${dir}/tmp; proxy_temp_path ${dir}/tmp; fastcgi_temp_path ${dir}/tmp; uwsgi_temp_path ${dir}/tmp; scgi_temp_path ${dir}/tmp;
  types { video/mp4 m4s; }
  server { listen 127.0.0.1:${nginxPort}; root ${dir}; }
}
`,
    );
    nginx = spawn('nginx', ['-c', conf, '-p', dir], { stdio: 'inherit' });
    await new Promise((r) => setTimeout(r, 500));

    const results: { origin: LoadResult[]; nginx: LoadResult[] } = { origin: [], nginx: [] };
    for (let round = 0; round < ROUNDS; round++) {
      results.origin.push(await runLoad(paths.map((p) => origin + p)));
      results.nginx.push(await runLoad(paths.map((p) => `http://127.0.0.1:${nginxPort}${p}`)));
    }
    for (const [server, runs] of Object.entries(results)) {
      for (const r of runs)
        if (r.errors) throw new Error(`${server}: a load run had ${r.errors} failed requests (see ${dir}/error.log)`);
    }
    const o = {
      rps: median(results.origin.map((r) => r.requestsPerSecond)),
      mbps: median(results.origin.map((r) => r.megabitsPerSecond)),
      p50: median(results.origin.map((r) => r.p50)),
      p99: median(results.origin.map((r) => r.p99)),
    };
    const n = {
      rps: median(results.nginx.map((r) => r.requestsPerSecond)),
      mbps: median(results.nginx.map((r) => r.megabitsPerSecond)),
      p50: median(results.nginx.map((r) => r.p50)),
      p99: median(results.nginx.map((r) => r.p99)),
    };
    console.log('\nsegment GET (median of rounds)   origin      nginx     origin/nginx');
    console.log(
      `  requests/s                 ${o.rps.toFixed(0).padStart(9)} ${n.rps.toFixed(0).padStart(10)}   ${(o.rps / n.rps).toFixed(2)}`,
    );
    console.log(
      `  Mbit/s                     ${o.mbps.toFixed(0).padStart(9)} ${n.mbps.toFixed(0).padStart(10)}   ${(o.mbps / n.mbps).toFixed(2)}`,
    );
    console.log(
      `  latency p50 (ms)           ${o.p50.toFixed(2).padStart(9)} ${n.p50.toFixed(2).padStart(10)}   ${(o.p50 / n.p50).toFixed(2)}`,
    );
    console.log(
      `  latency p99 (ms)           ${o.p99.toFixed(2).padStart(9)} ${n.p99.toFixed(2).padStart(10)}   ${(o.p99 / n.p99).toFixed(2)}`,
    );

    // The origin's own cost while the live encoder runs and no one is watching.
    const pid = serve.child.pid!;
    const ffmpegPid = childPids(pid)[0];
    const c0 = cpuSeconds(pid);
    const f0 = ffmpegPid ? cpuSeconds(ffmpegPid) : 0;
    const window = 10;
    await new Promise((r) => setTimeout(r, window * 1000));
    const originCpu = ((cpuSeconds(pid) - c0) / window) * 100;
    const ffmpegCpu = ffmpegPid ? ((cpuSeconds(ffmpegPid) - f0) / window) * 100 : NaN;
    console.log(
      `\nwhile live (${window} s, no viewers): origin ${originCpu.toFixed(1)} % of a core, RSS ${rssMiB(pid).toFixed(0)} MiB; ffmpeg encoder ${ffmpegCpu.toFixed(1)} % of a core, RSS ${ffmpegPid ? rssMiB(ffmpegPid).toFixed(0) : '?'} MiB`,
    );
  } finally {
    nginx?.kill('SIGTERM');
    await serve.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
