/**
 * Benchmark: the multicast push path, each part side by side with a baseline in the same run.
 *   npm run bench  (this after origin-vs-nginx; alone: node build/bench/multicast.js; as root, about 2 minutes)
 *
 * 1. Sender: packets/s and Mbit/s of MulticastUdpSender (with and without PushPacketizer in the clock)
 *    against a plain node:dgram send loop sending the very same datagrams to the same group, as a ratio
 *    (goal ≥ 0.9). Rounds alternate the variants.
 * 2. Reassembler: MB/s of datagrams turned into digest-verified Responses by MulticastReassembler against
 *    copying the same bytes into one buffer (and SHA-256 alone, to show where the time goes); peak memory.
 * 3. Receivers 1 to 50: the sending process's CPU time per MB at a fixed paced rate while K receiver
 *    processes are joined, as a ratio to K = 1 (goal: no change), with each receiver's packet count.
 * 4. FEC (in process, multicast/fec.ts): at 1 % and 5 % random loss (seeded, drawn on the receiving side),
 *    for Reed–Solomon 20+2 (10 % overhead), 10+2 and XOR parity (10+1, the same code with m = 1): lost
 *    packets, recovered by FEC, the share recovered against a binomial model, whole pushes with and without
 *    FEC, encode and decode MB/s (÷ copying the same datagrams). Goal: RS 20+2 at 1 % loss recovers ≥ 95 %.
 *    Its figures go into docs/multicast.md (`--doc <file>`, or `none`).
 *
 * Network: a sender's and a receivers' namespace joined by a veth pair (multicast/netns.ts), made here
 * and removed at the end (and on SIGINT/SIGTERM). The sender is pinned to CPU 0, receivers to the other CPUs; part 3 runs twice: with RPS
 * steering the receiving side's kernel work to the receivers' CPUs (as separate receiver hosts would
 * have it), and without (the kernel's per-receiver copies then run inside the sender's send calls).
 *
 * Options through env: BENCH_MC_ROUNDS (9), BENCH_MC_ROUND_SECONDS (0.5), BENCH_MC_SEGMENTS (24),
 * BENCH_MC_WINDOW (64 sends in flight for the plain loop), BENCH_MC_RATE (8e6 bit/s),
 * BENCH_MC_STREAM_SECONDS (5), BENCH_MC_RECEIVERS (1,10,50), BENCH_MC_RX_ROUNDS (2),
 * BENCH_MC_PARTS (sender,reassembler,receivers,fec: the parts to run; fec alone needs no root),
 * BENCH_MC_FEC_SEGMENTS (48), BENCH_MC_FEC_SEEDS (20 loss patterns per row).
 * Prints tables, then one line `bench-json: {...}` for scripts.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Namespace } from '../test/support/netns.js';
import { writeDocSection } from './doc-section.js';
import { median, sum } from './figures.js';
import { machine } from './machine.js';
import { SIGNING, jsonLines } from './multicast/common.js';
import { fecBench, type FecResult } from './multicast/fec.js';
import { createNetwork, type BenchNetwork } from './multicast/netns.js';
import type { ReassemblerResult, ReassemblerTask, ReassemblerVariant } from './multicast/reassembler-worker.js';
import type { PacedResult, PacedTask, ThroughputResult, ThroughputTask, Variant } from './multicast/sender-worker.js';

const ROUNDS = Number(process.env.BENCH_MC_ROUNDS ?? 9);
const ROUND_SECONDS = Number(process.env.BENCH_MC_ROUND_SECONDS ?? 0.5);
const SEGMENTS = Number(process.env.BENCH_MC_SEGMENTS ?? 24);
const WINDOW = Number(process.env.BENCH_MC_WINDOW ?? 64);
const RATE = Number(process.env.BENCH_MC_RATE ?? 8e6);
const STREAM_SECONDS = Number(process.env.BENCH_MC_STREAM_SECONDS ?? 5);
const RECEIVERS = (process.env.BENCH_MC_RECEIVERS ?? '1,10,50').split(',').map(Number);
const RX_ROUNDS = Number(process.env.BENCH_MC_RX_ROUNDS ?? 2);
const PARTS = new Set((process.env.BENCH_MC_PARTS ?? 'sender,reassembler,receivers,fec').split(','));
const FEC_SEGMENTS = Number(process.env.BENCH_MC_FEC_SEGMENTS ?? 48);
const FEC_SEEDS = Number(process.env.BENCH_MC_FEC_SEEDS ?? 20);
const { values: args } = parseArgs({ options: { doc: { type: 'string' } } });
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const DOC = args.doc === 'none' ? undefined : (args.doc ?? `${REPO}docs/multicast.md`);

const SENDER = fileURLToPath(new URL('./multicast/sender-worker.js', import.meta.url));
const RECEIVER = fileURLToPath(new URL('./multicast/receiver.js', import.meta.url));
const REASSEMBLER = fileURLToPath(new URL('./multicast/reassembler-worker.js', import.meta.url));
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

const CPU_COUNT = os.cpus().length;
/** The sender's CPU, and the receivers' (all others); one CPU: no pinning, no steering. */
const SENDER_CPU = CPU_COUNT > 1 ? 0 : undefined;
const RECEIVER_CPUS = CPU_COUNT > 1 ? Array.from({ length: CPU_COUNT - 1 }, (_, i) => i + 1) : undefined;

const children = new Set<ChildProcess>();
let network: BenchNetwork | undefined;

/** Starts `node script …` in namespace `ns` (or here) pinned to `cpus` (or not). */
function start(
  script: string,
  args: string[],
  options: { ns?: Namespace; cpus?: number[]; nodeFlags?: string[]; stdin?: boolean } = {},
): ChildProcess {
  const node = [process.execPath, ...(options.nodeFlags ?? []), script, ...args];
  const pinned = options.cpus ? ['taskset', '-c', options.cpus.join(','), ...node] : node;
  const command = options.ns ? options.ns.command(...pinned) : pinned;
  const child = spawn(command[0]!, command.slice(1), { stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'inherit'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

/** A worker that answers with one JSON line and exits. */
function runWorker<T>(script: string, task: object, options: Parameters<typeof start>[2] = {}): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = start(script, [JSON.stringify(task)], options);
    let answer: T | undefined;
    jsonLines(child.stdout!, (m) => (answer = m as T));
    child.on('exit', (code) =>
      code === 0 && answer !== undefined ? resolve(answer) : reject(new Error(`${script} exited ${code}`)),
    );
  });
}

/** A receiver process (multicast/receiver.ts): commands in, one JSON answer per command out. */
class Receiver {
  private readonly child: ChildProcess;
  private readonly waiting: ((m: Record<string, unknown>) => void)[] = [];
  private readonly early: Record<string, unknown>[] = [];
  readonly exited: Promise<void>;

  constructor() {
    this.child = start(RECEIVER, [], { ns: network!.rx, cpus: RECEIVER_CPUS, stdin: true });
    jsonLines(this.child.stdout!, (m) => {
      const w = this.waiting.shift();
      if (w) w(m);
      else this.early.push(m);
    });
    this.exited = new Promise((resolve) => this.child.on('exit', () => resolve()));
  }

  next(): Promise<Record<string, unknown>> {
    const m = this.early.shift();
    return m ? Promise.resolve(m) : new Promise((resolve) => this.waiting.push(resolve));
  }

  command(line: 'join' | 'leave'): Promise<Record<string, unknown>> {
    this.child.stdin!.write(`${line}\n`);
    return this.next();
  }

  end(): Promise<void> {
    this.child.stdin!.end();
    return this.exited;
  }
}

const pad = (s: string | number, n: number) => String(s).padStart(n);
const fmt = (x: number, digits = 0) =>
  x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const MiB = 2 ** 20;

// ---------------------------------------------------------------------------------------------------

const SENDER_LABELS: Record<Variant, string> = {
  dgram: `plain dgram loop, ${WINDOW} in flight`,
  'dgram-1': 'plain dgram loop, 1 in flight',
  pushcast: 'MulticastUdpSender',
  'pushcast+packetize': 'PushPacketizer + MulticastUdpSender',
};

/** Parts 1 to 3 as printed, for their section of docs/multicast.md. */
const reported: string[] = [];
function report(line: string): void {
  console.log(line);
  reported.push(...line.split('\n').filter((l) => l !== ''));
}

function senderReport(r: ThroughputResult) {
  const byVariant = (v: Variant) => r.runs.filter((x) => x.variant === v);
  const pps = (v: Variant) => byVariant(v).map((x) => x.packets / x.seconds);
  const perRound = (v: Variant, base: Variant) =>
    Array.from({ length: ROUNDS }, (_, round) => {
      const a = r.runs.find((x) => x.variant === v && x.round === round)!;
      const b = r.runs.find((x) => x.variant === base && x.round === round)!;
      return a.packets / a.seconds / (b.packets / b.seconds);
    });
  const variants = Object.fromEntries(
    (Object.keys(SENDER_LABELS) as Variant[]).map((v) => {
      const runs = byVariant(v);
      return [
        v,
        {
          packetsPerSecond: median(pps(v)),
          megabitsPerSecond: median(runs.map((x) => (x.bytes * 8) / x.seconds / 1e6)),
          cpuMicrosPerPacket: median(runs.map((x) => x.cpuMicros / x.packets)),
          userMicrosPerPacket: median(runs.map((x) => x.userMicros / x.packets)),
          cpuShare: median(runs.map((x) => x.cpuMicros / 1e6 / x.seconds)),
          errors: sum(runs.map((x) => x.errors)),
          ratioToDgram: median(perRound(v, 'dgram')),
          ratioToDgramPerRound: perRound(v, 'dgram'),
          ratioToDgram1: median(perRound(v, 'dgram-1')),
        },
      ];
    }),
  ) as Record<
    Variant,
    {
      packetsPerSecond: number;
      megabitsPerSecond: number;
      cpuMicrosPerPacket: number;
      userMicrosPerPacket: number;
      cpuShare: number;
      errors: number;
      ratioToDgram: number;
      ratioToDgramPerRound: number[];
      ratioToDgram1: number;
    }
  >;

  report(
    `\n1. sender throughput: ${r.runs.length / 4} rounds × ${ROUND_SECONDS} s per variant, alternating; ${SEGMENTS} pushes (${fmt(r.segmentBytes / 1e6, 1)} MB of bodies) = ${fmt(r.datagrams)} datagrams of ${fmt(r.datagramBytes / r.datagrams)} B mean, from the sender's namespace → veth → the receivers', sender pinned to CPU ${SENDER_CPU ?? '-'}`,
  );
  report(
    `   ${'variant (median of rounds)'.padEnd(40)} ${pad('packets/s', 10)} ${pad('Mbit/s', 8)} ${pad('CPU µs/pkt', 10)} ${pad('of it user', 10)} ${pad('CPU', 5)}  ${pad('÷ dgram', 7)} ${pad('÷ dgram-1', 9)}  ÷ dgram per round`,
  );
  for (const v of Object.keys(SENDER_LABELS) as Variant[]) {
    const x = variants[v];
    report(
      `   ${SENDER_LABELS[v].padEnd(40)} ${pad(fmt(x.packetsPerSecond), 10)} ${pad(fmt(x.megabitsPerSecond), 8)} ${pad(fmt(x.cpuMicrosPerPacket, 2), 10)} ${pad(fmt(x.userMicrosPerPacket, 2), 10)} ${pad(`${fmt(x.cpuShare * 100)}%`, 5)}  ${pad(fmt(x.ratioToDgram, 2), 7)} ${pad(fmt(x.ratioToDgram1, 2), 9)}  ${x.ratioToDgramPerRound.map((q) => fmt(q, 2)).join(' ')}`,
    );
  }
  const errors = sum(Object.values(variants).map((x) => x.errors));
  if (errors) report(`   send errors: ${errors}`);
  const goal = variants.pushcast.ratioToDgram;
  report(`   goal MulticastUdpSender ÷ plain dgram loop ≥ 0.90: ${fmt(goal, 2)} ${goal >= 0.9 ? 'met' : 'NOT met'}`);
  return {
    datagrams: r.datagrams,
    datagramBytes: r.datagramBytes,
    segmentBytes: r.segmentBytes,
    window: WINDOW,
    variants,
    goalMet: goal >= 0.9,
  };
}

// ---------------------------------------------------------------------------------------------------

const REASSEMBLER_LABELS: Record<ReassemblerVariant, string> = {
  copy: 'copy datagram payloads into one buffer',
  sha256: 'SHA-256 of the bodies only (WebCrypto)',
  pushcast: 'MulticastReassembler, in order',
  'pushcast-shuffled': 'MulticastReassembler, shuffled + 1% dup',
};

function reassemblerReport(r: ReassemblerResult) {
  const rounds = Math.max(...r.runs.map((x) => x.round)) + 1;
  const perRound = (v: ReassemblerVariant) =>
    Array.from({ length: rounds }, (_, round) => {
      const a = r.runs.find((x) => x.variant === v && x.round === round)!;
      const b = r.runs.find((x) => x.variant === 'copy' && x.round === round)!;
      return b.seconds / a.seconds;
    });
  const variants = Object.fromEntries(
    (Object.keys(REASSEMBLER_LABELS) as ReassemblerVariant[]).map((v) => {
      const runs = r.runs.filter((x) => x.variant === v);
      return [
        v,
        {
          megabytesPerSecond: median(runs.map((x) => r.datagramBytes / 1e6 / x.seconds)),
          megabytesPerCpuSecond: median(runs.map((x) => r.datagramBytes / x.cpuMicros)),
          ratioToCopy: median(perRound(v)),
          ratioToCopyPerRound: perRound(v),
        },
      ];
    }),
  ) as Record<
    ReassemblerVariant,
    { megabytesPerSecond: number; megabytesPerCpuSecond: number; ratioToCopy: number; ratioToCopyPerRound: number[] }
  >;

  report(
    `\n2. reassembler: ${rounds} rounds, alternating; ${r.pushes} pushes, ${fmt(r.bodyBytes / 1e6, 1)} MB of bodies in ${fmt(r.datagrams)} datagrams (${fmt(r.datagramBytes / 1e6, 1)} MB); shuffled variant: ${r.duplicates} duplicates; signatures: ${r.verify}`,
  );
  report(
    `   ${'variant (median of rounds)'.padEnd(42)} ${pad('MB/s', 8)} ${pad('MB/CPU-s', 9)} ${pad('÷ copy', 8)}  ÷ copy per round`,
  );
  for (const v of Object.keys(REASSEMBLER_LABELS) as ReassemblerVariant[]) {
    const x = variants[v];
    report(
      `   ${REASSEMBLER_LABELS[v].padEnd(42)} ${pad(fmt(x.megabytesPerSecond), 8)} ${pad(fmt(x.megabytesPerCpuSecond), 9)} ${pad(fmt(x.ratioToCopy, 3), 8)}  ${x.ratioToCopyPerRound.map((q) => fmt(q, 3)).join(' ')}`,
    );
  }
  report(
    `   peak memory during one pass, above the process before it (baseline RSS ${fmt(r.baseline.rss / MiB)} MiB, holding every datagram and body):`,
  );
  report(
    `   ${''.padEnd(42)} ${pad('RSS', 9)} ${pad('heapUsed', 9)} ${pad('arrayBuf', 9)} ${pad('buffered', 9)}  (MiB; buffered = max stats.bufferedBytes)`,
  );
  for (const v of ['pushcast', 'pushcast-shuffled'] as const) {
    const m = r.memory[v];
    report(
      `   ${REASSEMBLER_LABELS[v].padEnd(42)} ${pad(fmt(m.rss / MiB, 1), 9)} ${pad(fmt(m.heapUsed / MiB, 1), 9)} ${pad(fmt(m.arrayBuffers / MiB, 1), 9)} ${pad(fmt(m.bufferedBytes / MiB, 2), 9)}`,
    );
  }
  return {
    pushes: r.pushes,
    datagrams: r.datagrams,
    datagramBytes: r.datagramBytes,
    bodyBytes: r.bodyBytes,
    duplicates: r.duplicates,
    signatures: r.verify,
    variants,
    memory: r.memory,
    baseline: r.baseline,
  };
}

// ---------------------------------------------------------------------------------------------------

interface FanoutRun {
  steering: 'steered' | 'unsteered';
  receivers: number;
  round: number;
  sender: PacedResult;
  received: number[];
  receiverCpuMicros: number[];
  rcvbuf: number;
  drops: ReturnType<BenchNetwork['receiveDrops']>;
}

async function fanout(): Promise<FanoutRun[]> {
  const most = Math.max(...RECEIVERS);
  const pool = Array.from({ length: most }, () => new Receiver());
  try {
    await Promise.all(pool.map((r) => r.next())); // ready
    const runs: FanoutRun[] = [];
    const steerings = RECEIVER_CPUS ? (['steered', 'unsteered'] as const) : (['unsteered'] as const);
    for (const steering of steerings) {
      network!.setReceiveSteering(steering === 'steered' ? RECEIVER_CPUS : undefined);
      for (let round = 0; round < RX_ROUNDS; round++) {
        const order = round % 2 === 0 ? RECEIVERS : [...RECEIVERS].reverse();
        for (const k of order) {
          const joined = await Promise.all(pool.slice(0, k).map((r) => r.command('join')));
          const d0 = network!.receiveDrops();
          const task: PacedTask = { mode: 'paced', rateBitsPerSecond: RATE, seconds: STREAM_SECONDS };
          const sender = await runWorker<PacedResult>(SENDER, task, {
            ns: network!.tx,
            cpus: SENDER_CPU === undefined ? undefined : [SENDER_CPU],
          });
          await new Promise((r) => setTimeout(r, 300)); // the last datagrams reach the receivers
          const counts = await Promise.all(pool.slice(0, k).map((r) => r.command('leave')));
          const d1 = network!.receiveDrops();
          runs.push({
            steering,
            receivers: k,
            round,
            sender,
            received: counts.map((c) => c.packets as number),
            receiverCpuMicros: counts.map((c) => c.cpuMicros as number),
            rcvbuf: Math.min(...joined.map((j) => j.rcvbuf as number)),
            drops: {
              udpRcvbufErrors: d1.udpRcvbufErrors - d0.udpRcvbufErrors,
              udpInErrors: d1.udpInErrors - d0.udpInErrors,
              backlogDrops: d1.backlogDrops - d0.backlogDrops,
            },
          });
        }
      }
    }
    return runs;
  } finally {
    await Promise.all(pool.map((r) => r.end()));
  }
}

function fanoutReport(runs: FanoutRun[]) {
  const tick = 1000 / CLOCK_TICKS;
  const rows: Record<string, unknown>[] = [];
  report(
    `\n3. receivers: MulticastUdpSender paced at ${fmt(RATE / 1e6, 1)} Mbit/s for ~${STREAM_SECONDS} s (pre-packetized), K receiver processes joined in the receivers' namespace; sending process on CPU ${SENDER_CPU ?? '-'}, receivers on CPU ${RECEIVER_CPUS?.join(',') ?? '-'}; mean of ${RX_ROUNDS} rounds`,
  );
  report(
    `   sender CPU = process.cpuUsage() of the sending process over its send window; softirq = /proc/stat (machine-wide, ${CLOCK_TICKS} Hz ticks)`,
  );
  for (const steering of ['steered', 'unsteered'] as const) {
    const mine = runs.filter((r) => r.steering === steering);
    if (mine.length === 0) continue;
    report(
      steering === 'steered'
        ? `   receive side steered (RPS) to the receivers' CPUs, as separate receiver hosts:`
        : `   receive side not steered: the kernel's per-receiver copies run in the sender's send calls (one host, or a sender-side loopback):`,
    );
    report(
      `   ${pad('K', 4)} ${pad('pkts sent', 10)} ${pad('Mbit/s', 7)} ${pad('CPU ms/MB', 10)} ${pad('user', 6)} ${pad('sys', 6)} ${pad('÷ K=1', 6)} ${pad('softirq ms cpu0/other', 22)}  received per receiver (min/median/max), rcvbuf drops, backlog drops`,
    );
    const base = mine.filter((r) => r.receivers === RECEIVERS[0]);
    const perMb = (r: FanoutRun) => (r.sender.userMicros + r.sender.systemMicros) / 1000 / (r.sender.bytes / 1e6);
    const baseCpu = sum(base.map(perMb)) / base.length;
    for (const k of RECEIVERS) {
      const ks = mine.filter((r) => r.receivers === k);
      const mean = (f: (r: FanoutRun) => number) => sum(ks.map(f)) / ks.length;
      const cpuPerMb = mean(perMb);
      const user = mean((r) => r.sender.userMicros / 1000 / (r.sender.bytes / 1e6));
      const sys = mean((r) => r.sender.systemMicros / 1000 / (r.sender.bytes / 1e6));
      const softSender = mean(
        (r) => (SENDER_CPU === undefined ? sum(r.sender.softirqTicks) : r.sender.softirqTicks[SENDER_CPU])! * tick,
      );
      const softOther = mean(
        (r) => (SENDER_CPU === undefined ? 0 : sum(r.sender.softirqTicks) - r.sender.softirqTicks[SENDER_CPU]!) * tick,
      );
      const sent = ks.map((r) => r.sender.packets);
      const received = ks.flatMap((r) => r.received);
      const lost = ks.flatMap((r) => r.received.map((n) => r.sender.packets - n));
      const rcvbufDrops = sum(ks.map((r) => r.drops.udpRcvbufErrors));
      const backlogDrops = sum(ks.map((r) => r.drops.backlogDrops));
      const mbps = mean((r) => (r.sender.bytes * 8) / r.sender.seconds / 1e6);
      report(
        `   ${pad(k, 4)} ${pad(fmt(mean((r) => r.sender.packets)), 10)} ${pad(fmt(mbps, 2), 7)} ${pad(fmt(cpuPerMb, 1), 10)} ${pad(fmt(user, 1), 6)} ${pad(fmt(sys, 1), 6)} ${pad(fmt(cpuPerMb / baseCpu, 2), 6)} ${pad(`${fmt(softSender)} / ${fmt(softOther)}`, 22)}  ${fmt(Math.min(...received))}/${fmt(median(received))}/${fmt(Math.max(...received))} of ${sent.map((n) => fmt(n)).join(', ')}; lost max ${fmt(Math.max(...lost))}; ${rcvbufDrops}, ${backlogDrops}`,
      );
      rows.push({
        steering,
        receivers: k,
        senderCpuMsPerMB: cpuPerMb,
        senderUserMsPerMB: user,
        senderSystemMsPerMB: sys,
        ratioToFirst: cpuPerMb / baseCpu,
        megabitsPerSecond: mbps,
        softirqMsSenderCpu: softSender,
        softirqMsOtherCpus: softOther,
        packetsSent: sent,
        receivedPerReceiver: ks.map((r) => r.received),
        receiverCpuMsPerSecond: mean((r) => sum(r.receiverCpuMicros) / 1000 / r.sender.seconds),
        rcvbufBytes: Math.min(...ks.map((r) => r.rcvbuf)),
        udpRcvbufErrors: rcvbufDrops,
        backlogDrops,
      });
    }
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------------

/** The FEC code the goal is about, and the goal. */
const FEC_GOAL = { code: 'RS 20+2', loss: 0.01, recovered: 0.95 };
const FEC_ROUNDS = 5;

function fecReport(r: FecResult) {
  const pct = (x: number, digits = 1) => `${fmt(100 * x, digits)} %`;
  const lines: string[] = [];
  const out = (line: string) => {
    console.log(line);
    lines.push(line);
  };
  console.log(
    `\n4. FEC: ${r.pushes} pushes, ${fmt(r.sourceBytes / 1e6, 1)} MB in ${fmt(r.sources)} source packets of at most ${r.datagramSize} B (room left for the repair header), in process; each datagram, source or repair, dropped with probability p on the receiving side (seeded), ${FEC_SEEDS} loss patterns per row`,
  );
  out(
    `   ${'code'.padEnd(16)} ${pad('overhead pkts/bytes', 19)} ${pad('loss', 5)} ${pad('lost', 7)} ${pad('recovered', 9)} ${pad('share', 8)} ${pad('model', 8)} ${pad('whole pushes w/o FEC', 20)} ${pad('with FEC', 9)} ${pad('decode MB/s', 11)}`,
  );
  for (const row of r.rows) {
    out(
      `   ${row.code.name.padEnd(16)} ${pad(`${pct((row.repairPackets / row.sources) * row.seeds)} / ${pct(row.repairBytes / row.sourceBytes)}`, 19)} ${pad(`${fmt(100 * row.loss)} %`, 5)} ${pad(fmt(row.lost), 7)} ${pad(fmt(row.recovered), 9)} ${pad(pct(row.recovered / row.lost), 8)} ${pad(pct(row.model), 8)} ${pad(pct(row.pushesWholeWithoutFec / row.pushes), 20)} ${pad(pct(row.pushesWholeWithFec / row.pushes), 9)} ${pad(fmt(row.decodeMBps), 11)}`,
    );
  }
  out(
    `   ${'code'.padEnd(16)} ${pad('encode MB/s', 11)} ${pad('copy MB/s', 10)} ${pad('÷ copy', 7)} ${pad('decode, no loss, MB/s', 22)}  (MB of source packets; median of ${FEC_ROUNDS} rounds)`,
  );
  for (const t of r.throughput) {
    out(
      `   ${t.code.name.padEnd(16)} ${pad(fmt(t.encodeMBps), 11)} ${pad(fmt(t.copyMBps), 10)} ${pad(fmt(t.encodeMBps / t.copyMBps, 3), 7)} ${pad(fmt(t.decodeCleanMBps), 22)}`,
    );
  }
  const goalRow = r.rows.find((x) => x.code.name === FEC_GOAL.code && x.loss === FEC_GOAL.loss)!;
  const share = goalRow.recovered / goalRow.lost;
  // Overhead as the goal counts it: repair packets per source packet, m / k (the last block of the run is
  // short; the bytes add each repair packet's header and length prefix).
  const overhead = goalRow.code.m / goalRow.code.k;
  const met = share >= FEC_GOAL.recovered && overhead <= 0.1;
  out(
    `   goal ${FEC_GOAL.code} (${pct(overhead)} more packets) at ${fmt(100 * FEC_GOAL.loss)} % loss: ≥ ${fmt(100 * FEC_GOAL.recovered)} % of lost packets recovered without unicast: ${pct(share)} ${met ? 'met' : 'NOT met'}`,
  );
  if (DOC)
    writeDocSection({
      file: DOC,
      name: 'fec-bench',
      writer: 'bench/multicast.ts',
      title: 'Multicast HTTP/QUIC push',
      body: [
        `\`node build/bench/multicast.js\` (part 4; \`BENCH_MC_PARTS=fec\` runs it alone, without root), ${new Date().toISOString().slice(0, 10)}, ${machine()}:`,
        `${r.pushes} pushes, ${fmt(r.sourceBytes / 1e6, 1)} MB in ${fmt(r.sources)} source packets; each datagram, source or repair, dropped with probability p on the receiving side, ${FEC_SEEDS} seeded loss patterns per row; "share" is recovered ÷ lost, "model" what independent losses predict; "whole pushes" lost no packet, or none that FEC did not give back.`,
        '',
        '```',
        ...lines.map((l) => l.slice(3)),
        '```',
      ].join('\n'),
    });
  return { ...r, goal: { ...FEC_GOAL, share, overhead, met } };
}

async function fecPart() {
  return fecReport(
    await fecBench({
      segments: FEC_SEGMENTS,
      seeds: FEC_SEEDS,
      losses: [0.01, 0.05],
      codes: [
        { name: 'RS 20+2', k: 20, m: 2 },
        { name: 'RS 10+2', k: 10, m: 2 },
        { name: 'XOR parity 10+1', k: 10, m: 1 },
      ],
      rounds: FEC_ROUNDS,
    }),
  );
}

async function main(): Promise<void> {
  const began = performance.now();
  console.log(`machine: ${machine()}`);
  console.log(
    `multicast bench: signatures ${SIGNING.name}; sender pinned to CPU ${SENDER_CPU ?? '- (one CPU)'}, receivers to CPU ${RECEIVER_CPUS?.join(',') ?? '-'}; parts ${[...PARTS].join(', ')}`,
  );
  if (!['sender', 'reassembler', 'receivers'].some((p) => PARTS.has(p))) {
    // FEC alone: in process, no network namespace.
    const fec = PARTS.has('fec') ? await fecPart() : undefined;
    if (DOC && reported.length > 0)
      writeDocSection({
        file: DOC,
        name: 'bench-multicast',
        writer: 'bench/multicast.ts',
        title: 'Multicast',
        body: [
          `\`node build/bench/multicast.js\` (parts ${['sender', 'reassembler', 'receivers'].filter((x) => PARTS.has(x)).join(', ')}), ${new Date().toISOString().slice(0, 10)}, ${machine()}:`,
          '',
          '```',
          ...reported,
          '```',
        ].join('\n'),
      });
    const seconds = (performance.now() - began) / 1000;
    console.log(`\n(${fmt(seconds)} s)`);
    console.log(`bench-json: ${JSON.stringify({ bench: 'multicast', machine: machine(), fec, seconds })}`);
    return;
  }

  network = createNetwork();
  try {
    // The receiving side's kernel work off the sender's CPU, as it would be on other hosts.
    network.setReceiveSteering(RECEIVER_CPUS);
    const throughputTask: ThroughputTask = {
      mode: 'throughput',
      segments: SEGMENTS,
      rounds: ROUNDS,
      roundSeconds: ROUND_SECONDS,
      window: WINDOW,
    };
    const sender = PARTS.has('sender')
      ? senderReport(
          await runWorker<ThroughputResult>(SENDER, throughputTask, {
            ns: network.tx,
            cpus: SENDER_CPU === undefined ? undefined : [SENDER_CPU],
          }),
        )
      : undefined;
    const reassemblerTask: ReassemblerTask = { segments: SEGMENTS, rounds: ROUNDS };
    const reassembler = PARTS.has('reassembler')
      ? reassemblerReport(
          await runWorker<ReassemblerResult>(REASSEMBLER, reassemblerTask, { nodeFlags: ['--expose-gc'] }),
        )
      : undefined;
    const receivers = PARTS.has('receivers') ? fanoutReport(await fanout()) : undefined;
    const fec = PARTS.has('fec') ? await fecPart() : undefined;
    if (DOC && reported.length > 0)
      writeDocSection({
        file: DOC,
        name: 'bench-multicast',
        writer: 'bench/multicast.ts',
        title: 'Multicast',
        body: [
          `\`node build/bench/multicast.js\` (parts ${['sender', 'reassembler', 'receivers'].filter((x) => PARTS.has(x)).join(', ')}), ${new Date().toISOString().slice(0, 10)}, ${machine()}:`,
          '',
          '```',
          ...reported,
          '```',
        ].join('\n'),
      });
    const seconds = (performance.now() - began) / 1000;
    console.log(`\n(${fmt(seconds)} s)`);
    console.log(
      'bench-json: ' +
        JSON.stringify({
          bench: 'multicast',
          machine: machine(),
          cpus: { sender: SENDER_CPU ?? null, receivers: RECEIVER_CPUS ?? null },
          settings: {
            rounds: ROUNDS,
            roundSeconds: ROUND_SECONDS,
            segments: SEGMENTS,
            window: WINDOW,
            rateBitsPerSecond: RATE,
            streamSeconds: STREAM_SECONDS,
            receivers: RECEIVERS,
            receiverRounds: RX_ROUNDS,
          },
          sender,
          reassembler,
          receivers,
          fec,
          seconds,
        }),
    );
  } finally {
    for (const c of children) c.kill('SIGKILL');
    network.close();
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    for (const c of children) c.kill('SIGKILL');
    network?.close();
    process.exit(130);
  });
}

await main();
