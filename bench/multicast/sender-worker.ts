/**
 * The sending process of the multicast bench, run in the sender's namespace (and pinned to one CPU):
 *   ip netns exec <the sender's namespace> taskset -c 0 node build/bench/multicast/sender-worker.js '<json task>'
 * Prints one JSON line with its results.
 *
 * - `throughput`: the same pre-built datagrams sent as fast as possible, round after round, by
 *   (a) a plain node:dgram loop with up to `window` sends in flight, (b) the same loop with 1 in flight
 *   (MulticastUdpSender's model: it awaits each send's callback), (c) MulticastUdpSender with a rate that
 *   never limits, (d) PushPacketizer + MulticastUdpSender (the digest and packetizing inside the clock).
 *   The variants alternate within each round, the order reversed every other round.
 * - `paced`: one MulticastUdpSender at a fixed rate sends pre-built datagrams for about `seconds`; the
 *   process's CPU time (process.cpuUsage) over that window is the figure.
 */
import dgram from 'node:dgram';
import { MulticastUdpSender } from '../../src/multicast/udp-sender.js';
import {
  GROUP,
  PORT,
  TX_IP,
  cpuTicks,
  newPacketizer,
  packetize,
  segmentBodies,
  segmentPath,
  ticksDelta,
} from './common.js';

export type Variant = 'dgram' | 'dgram-1' | 'pushcast' | 'pushcast+packetize';
export const VARIANTS: Variant[] = ['dgram', 'dgram-1', 'pushcast', 'pushcast+packetize'];

export interface ThroughputTask {
  mode: 'throughput';
  segments: number;
  rounds: number;
  roundSeconds: number;
  window: number;
}

export interface PacedTask {
  mode: 'paced';
  rateBitsPerSecond: number;
  seconds: number;
}

export interface Run {
  variant: Variant;
  round: number;
  packets: number;
  bytes: number;
  seconds: number;
  /** process.cpuUsage() over the run, µs: user + system, and user alone. */
  cpuMicros: number;
  userMicros: number;
  errors: number;
}

export interface ThroughputResult {
  datagrams: number;
  datagramBytes: number;
  segmentBytes: number;
  runs: Run[];
}

export interface PacedResult {
  packets: number;
  bytes: number;
  seconds: number;
  userMicros: number;
  systemMicros: number;
  /** Jiffies per CPU over the window, machine-wide (/proc/stat). */
  softirqTicks: number[];
  busyTicks: number[];
}

function cpu(since: NodeJS.CpuUsage): { cpuMicros: number; userMicros: number } {
  const d = process.cpuUsage(since);
  return { cpuMicros: d.user + d.system, userMicros: d.user };
}

async function plainSocket(): Promise<dgram.Socket> {
  const socket = dgram.createSocket({ type: 'udp4' });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ port: 0, exclusive: true }, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  // What MulticastUdpSender.open does with the same options.
  socket.setMulticastTTL(1);
  socket.setMulticastLoopback(false);
  socket.setMulticastInterface(TX_IP);
  return socket;
}

/** The baseline: a plain send loop over the datagrams, at most `window` sends awaiting their callback. */
function plainRun(
  socket: dgram.Socket,
  datagrams: Uint8Array[],
  window: number,
  seconds: number,
): Promise<Omit<Run, 'variant' | 'round'>> {
  return new Promise((resolve) => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const deadline = t0 + seconds * 1000;
    let next = 0;
    let inFlight = 0;
    let packets = 0;
    let bytes = 0;
    let errors = 0;
    let stopping = false;
    const onSent = (error: Error | null, sent: number) => {
      inFlight--;
      if (error) errors++;
      else {
        packets++;
        bytes += sent;
      }
      if (!stopping) pump();
      else if (inFlight === 0)
        resolve({ packets, bytes, errors, seconds: (performance.now() - t0) / 1000, ...cpu(c0) });
    };
    const pump = () => {
      while (inFlight < window) {
        if (performance.now() >= deadline) {
          stopping = true;
          if (inFlight === 0) resolve({ packets, bytes, errors, seconds: (performance.now() - t0) / 1000, ...cpu(c0) });
          return;
        }
        const d = datagrams[next]!;
        next = next + 1 === datagrams.length ? 0 : next + 1;
        inFlight++;
        socket.send(d, PORT, GROUP, onSent);
      }
    };
    pump();
  });
}

/** MulticastUdpSender, whole pushes, up to two pushes queued (the next one queued while one drains). */
async function pushcastRun(
  sender: MulticastUdpSender,
  pushes: Uint8Array[][],
  seconds: number,
): Promise<Omit<Run, 'variant' | 'round'>> {
  const s0 = sender.stats;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  const pending: Promise<void>[] = [];
  for (let k = 0; performance.now() < deadline; k++) {
    pending.push(sender.send(pushes[k % pushes.length]!));
    if (pending.length >= 2) await pending.shift();
  }
  await Promise.all(pending);
  const s1 = sender.stats;
  return {
    packets: s1.packets - s0.packets,
    bytes: s1.bytes - s0.bytes,
    errors: s1.errors - s0.errors,
    seconds: (performance.now() - t0) / 1000,
    ...cpu(c0),
  };
}

let pushNumber = 1_000_000;
/** PushPacketizer (digest + datagrams) then MulticastUdpSender, one push packetized while the previous one sends. */
async function packetizeRun(
  sender: MulticastUdpSender,
  bodies: Uint8Array[],
  seconds: number,
): Promise<Omit<Run, 'variant' | 'round'>> {
  const packetizer = newPacketizer();
  const s0 = sender.stats;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  const pending: Promise<void>[] = [];
  for (let k = 0; performance.now() < deadline; k++) {
    const datagrams = await packetizer.push({
      path: segmentPath(pushNumber++),
      body: bodies[k % bodies.length]!,
      responseHeaders: { 'content-type': 'video/mp4' },
    });
    pending.push(sender.send(datagrams));
    if (pending.length >= 2) await pending.shift();
  }
  await Promise.all(pending);
  const s1 = sender.stats;
  return {
    packets: s1.packets - s0.packets,
    bytes: s1.bytes - s0.bytes,
    errors: s1.errors - s0.errors,
    seconds: (performance.now() - t0) / 1000,
    ...cpu(c0),
  };
}

async function throughput(task: ThroughputTask): Promise<ThroughputResult> {
  const bodies = segmentBodies(task.segments);
  const pushes = await packetize(bodies);
  const flat = pushes.flat();
  const socket = await plainSocket();
  // 10 Gbit/s and a 4 MiB bucket: the bucket refills 1.25 MB per ms, far more than a socket sends, so
  // pacing never delays a datagram here (a delay would also cost a whole timer tick).
  const sender = await MulticastUdpSender.open({
    group: GROUP,
    port: PORT,
    rateBitsPerSecond: 10e9,
    burstBytes: 4 * 1024 * 1024,
    ttl: 1,
    loopback: false,
    multicastInterface: TX_IP,
  });
  const run = (variant: Variant, seconds: number) => {
    switch (variant) {
      case 'dgram':
        return plainRun(socket, flat, task.window, seconds);
      case 'dgram-1':
        return plainRun(socket, flat, 1, seconds);
      case 'pushcast':
        return pushcastRun(sender, pushes, seconds);
      case 'pushcast+packetize':
        return packetizeRun(sender, bodies, seconds);
    }
  };
  // Warm-up (JIT, socket buffers), not reported.
  for (const v of VARIANTS) await run(v, Math.min(0.3, task.roundSeconds));
  const runs: Run[] = [];
  for (let round = 0; round < task.rounds; round++) {
    const order = round % 2 === 0 ? VARIANTS : [...VARIANTS].reverse();
    for (const variant of order) runs.push({ variant, round, ...(await run(variant, task.roundSeconds)) });
  }
  await sender.close();
  socket.close();
  return {
    datagrams: flat.length,
    datagramBytes: flat.reduce((s, d) => s + d.length, 0),
    segmentBytes: bodies.reduce((s, b) => s + b.length, 0),
    runs,
  };
}

async function paced(task: PacedTask): Promise<PacedResult> {
  // Enough segments for the window, packetized before the clock starts: the figure is the sending cost.
  const want = (task.rateBitsPerSecond / 8) * task.seconds;
  const bodies: Uint8Array[] = [];
  for (let total = 0, seed = 7; total < want; seed++) {
    const [b] = segmentBodies(1, seed);
    const body = b!.subarray(0, Math.min(b!.length, want - total));
    bodies.push(body);
    total += body.length;
  }
  const pushes = await packetize(bodies);
  const sender = await MulticastUdpSender.open({
    group: GROUP,
    port: PORT,
    rateBitsPerSecond: task.rateBitsPerSecond,
    ttl: 1,
    loopback: false,
    multicastInterface: TX_IP,
  });
  const k0 = cpuTicks();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (const datagrams of pushes) await sender.send(datagrams);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  const ticks = ticksDelta(k0, cpuTicks());
  const stats = sender.stats;
  await sender.close();
  return {
    packets: stats.packets,
    bytes: stats.bytes,
    seconds,
    userMicros: cpu.user,
    systemMicros: cpu.system,
    softirqTicks: ticks.softirq,
    busyTicks: ticks.busy,
  };
}

const task = JSON.parse(process.argv[2]!) as ThroughputTask | PacedTask;
const result = task.mode === 'throughput' ? await throughput(task) : await paced(task);
process.stdout.write(`${JSON.stringify(result)}\n`);
