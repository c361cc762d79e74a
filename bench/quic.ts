/**
 * Benchmark: pushcast's QUIC endpoint on the loopback against a plain node:dgram loop of the
 * same packet size, side by side in one run; the sender is this process, the receiver a child process
 * (bench/quic/peer.ts) in both variants.
 * - bulk throughput of one connection, one stream and 16 streams with the default congestion control
 *   (BBR), and one stream with CUBIC, as a ratio to the dgram loop (goal: at least half);
 * - the sender's CPU seconds per Gbit of each;
 * - handshake time (median of 20);
 * - memory per idle connection (200 connections).
 *   npm run bench  (alone: node --expose-gc build/bench/quic.js). Options: BENCH_QUIC_SECONDS (4),
 *   BENCH_QUIC_ROUNDS (3). The receiver runs with this process's node flags, so
 *   `node --cpu-prof --expose-gc build/bench/quic.js` profiles both ends.
 */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { developmentCertificate } from '../src/origin/index.js';
import { QuicEndpoint, type CongestionControl, type QuicConnection } from '../src/quic/index.js';
import { median } from './figures.js';
import { machine } from './machine.js';

const SECONDS = Number(process.env.BENCH_QUIC_SECONDS ?? 4);
const ROUNDS = Number(process.env.BENCH_QUIC_ROUNDS ?? 3);
const PACKET = 1350;

interface Result {
  gbps: number;
  cpuSecondsPerGbit: number;
}

const PEER = fileURLToPath(new URL('./quic/peer.js', import.meta.url));

/** The receiving end in a child process; `bytes()` asks it how much it has received so far. */
async function startPeer(
  args: string[],
): Promise<{ port: number; bytes: () => Promise<number>; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, [...process.execArgv, PEER, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout! });
  const waiting: ((line: string) => void)[] = [];
  lines.on('line', (line) => waiting.shift()?.(line));
  const next = () => new Promise<string>((resolve) => waiting.push(resolve));
  const ready = await next();
  return {
    port: Number(ready.split(' ')[1]),
    bytes: async () => {
      child.stdin!.write('report\n');
      return Number((await next()).split(' ')[1]);
    },
    // A clean exit, so that a profile (--cpu-prof) gets written; killed if it does not come.
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin!.write('quit\n');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A plain dgram loop: packets of PACKET bytes sent as fast as the socket takes them to a receiver process. */
async function dgramLoop(): Promise<Result> {
  const peer = await startPeer(['dgram']);
  const tx = dgram.createSocket('udp4');
  await new Promise<void>((r) => tx.bind(0, '127.0.0.1', () => r()));
  tx.connect(peer.port, '127.0.0.1');
  await new Promise<void>((r) => tx.once('connect', () => r()));
  const packet = Buffer.alloc(PACKET, 7);
  const cpu0 = process.cpuUsage();
  const before = await peer.bytes();
  const end = Date.now() + SECONDS * 1000;
  // 64 sends per turn of the event loop.
  await new Promise<void>((resolve) => {
    const loop = () => {
      if (Date.now() >= end) return resolve();
      for (let i = 0; i < 64; i++) tx.send(packet);
      setImmediate(loop);
    };
    loop();
  });
  await new Promise((r) => setTimeout(r, 100));
  const received = (await peer.bytes()) - before;
  const cpu = process.cpuUsage(cpu0);
  tx.close();
  await peer.stop();
  const gbits = (received * 8) / 1e9;
  return { gbps: gbits / SECONDS, cpuSecondsPerGbit: (cpu.user + cpu.system) / 1e6 / Math.max(gbits, 1e-9) };
}

/** QUIC bulk transfer from this process's server to a client process, on `streams` streams. */
async function quicBulk(server: QuicEndpoint, caFile: string, streams: number): Promise<Result> {
  const accepted = new Promise<QuicConnection>((resolve) => server.once('connection', resolve));
  const peer = await startPeer(['quic', String(server.address.port), caFile]);
  const conn = await accepted;
  const chunk = new Uint8Array(64 * 1024).fill(9);
  const cpu0 = process.cpuUsage();
  const before = await peer.bytes();
  const end = Date.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: streams }, async () => {
      const s = conn.openStream({ bidirectional: false });
      while (Date.now() < end) await s.write(chunk);
      await s.end();
    }),
  );
  const received = (await peer.bytes()) - before;
  const cpu = process.cpuUsage(cpu0);
  await conn.close();
  await peer.stop();
  const gbits = (received * 8) / 1e9;
  return { gbps: gbits / SECONDS, cpuSecondsPerGbit: (cpu.user + cpu.system) / 1e6 / Math.max(gbits, 1e-9) };
}

async function main(): Promise<void> {
  console.log(`machine: ${machine()}`);
  const dir = mkdtempSync(join(os.tmpdir(), 'pushcast-bench-quic-'));
  const cert = developmentCertificate(dir);
  const listen = (congestionControl: CongestionControl) =>
    QuicEndpoint.listen({
      alpn: ['pushcast-bench'],
      key: cert.key,
      cert: cert.cert,
      host: '127.0.0.1',
      port: 0,
      initialMaxData: 64 << 20,
      initialMaxStreamData: 16 << 20,
      congestionControl,
    });
  const server = await listen('bbr');
  const cubicServer = await listen('cubic');
  try {
    const caFile = join(dir, 'dev-cert.pem');
    const rows: { name: string; run: () => Promise<Result>; results: Result[] }[] = [
      { name: `plain dgram loop, ${PACKET}-byte packets`, run: dgramLoop, results: [] },
      { name: 'QUIC, 1 stream', run: () => quicBulk(server, caFile, 1), results: [] },
      { name: 'QUIC, 16 streams', run: () => quicBulk(server, caFile, 16), results: [] },
      { name: 'QUIC, 1 stream, CUBIC', run: () => quicBulk(cubicServer, caFile, 1), results: [] },
    ];
    for (let round = 0; round < ROUNDS; round++) for (const row of rows) row.results.push(await row.run());
    const base = median(rows[0]!.results.map((r) => r.gbps));
    console.log(
      `\nloopback bulk transfer, ${SECONDS} s × ${ROUNDS} rounds (alternating), receiver in a child process; medians`,
    );
    console.log('variant                                   Gbit/s   ÷ dgram   sender CPU s per Gbit');
    for (const row of rows) {
      const gbps = median(row.results.map((r) => r.gbps));
      console.log(
        `${row.name.padEnd(40)} ${gbps.toFixed(3).padStart(7)}   ${(gbps / base).toFixed(2).padStart(6)}   ${median(
          row.results.map((r) => r.cpuSecondsPerGbit),
        )
          .toFixed(2)
          .padStart(8)}`,
      );
    }

    // Handshakes.
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      const c = await QuicEndpoint.connect({
        alpn: ['pushcast-bench'],
        host: '127.0.0.1',
        port: server.address.port,
        serverName: 'localhost',
        ca: cert.cert,
      });
      times.push(performance.now() - t0);
      await c.close();
    }
    console.log(`\nhandshake (1-RTT, ECDSA P-256 certificate verified), median of 20: ${median(times).toFixed(2)} ms`);

    // Idle connections.
    global.gc?.();
    const rss0 = process.memoryUsage().rss;
    const idle = await Promise.all(
      Array.from({ length: 200 }, () =>
        QuicEndpoint.connect({
          alpn: ['pushcast-bench'],
          host: '127.0.0.1',
          port: server.address.port,
          serverName: 'localhost',
          ca: cert.cert,
        }),
      ),
    );
    await new Promise((r) => setTimeout(r, 500));
    global.gc?.();
    const perConnection = (process.memoryUsage().rss - rss0) / 200;
    console.log(
      `memory per idle connection (both ends in this process, client socket included): ${(perConnection / 1024).toFixed(1)} KiB`,
    );
    await Promise.all(idle.map((c) => c.close()));
    console.log(
      `bench-json: ${JSON.stringify({ bench: 'quic', machine: machine(), seconds: SECONDS, rounds: ROUNDS, rows: rows.map((r) => ({ name: r.name, gbps: median(r.results.map((x) => x.gbps)), cpuSecondsPerGbit: median(r.results.map((x) => x.cpuSecondsPerGbit)) })), handshakeMs: median(times), idleConnectionBytes: perConnection })}`,
    );
  } finally {
    await Promise.all([server.close(), cubicServer.close()]);
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(0);
}

void main();
