/**
 * The reassembler part of the multicast bench, in a process of its own so that its memory figures are
 * its own (no network: datagrams are fed straight in):
 *   node --expose-gc build/bench/multicast/reassembler-worker.js '<json task>'
 * Prints one JSON line.
 *
 * Variants, alternating within each round (order reversed every other round), over the same datagrams:
 * - `copy`: the baseline: every datagram's bytes after the short header copied into one preallocated buffer;
 * - `sha256`: WebCrypto SHA-256 of every body, one after another (what the digest check alone costs);
 * - `pushcast`: MulticastReassembler, datagrams in order, every response awaited and read (arrayBuffer);
 * - `pushcast-shuffled`: the same with each push's datagrams shuffled and 1 % of them sent twice.
 * Each measurement repeats whole passes for at least 300 ms and reports per pass.
 * Datagrams are fed one push at a time, yielding to the event loop between pushes (as socket reads would).
 * MB/s counts the distinct datagram bytes (duplicates not counted) over wall time. Each response's bytes
 * are compared with the body pushed as they arrive (inside the clock: a memcmp, under 1 % of the time).
 * Then one instrumented pass per reassembler variant samples memory (process.memoryUsage after every
 * push and every 2 ms, reassembler bufferedBytes after every datagram).
 */
import { webcrypto } from 'node:crypto';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { MulticastReassembler } from '../../src/push/reassembler.js';
import { RESOURCE_PUSH, type ResourcePushEvent } from '../../src/push/resource-push-event.js';
import { shortHeaderLength } from '../../src/wire/index.js';
import { Prng, SESSION_ID, SIGNING, packetize, segmentBodies, segmentPath } from './common.js';

export type ReassemblerVariant = 'copy' | 'sha256' | 'pushcast' | 'pushcast-shuffled';
export const REASSEMBLER_VARIANTS: ReassemblerVariant[] = ['copy', 'sha256', 'pushcast', 'pushcast-shuffled'];

export interface ReassemblerTask {
  segments: number;
  rounds: number;
}

export interface ReassemblerRun {
  variant: ReassemblerVariant;
  round: number;
  seconds: number;
  cpuMicros: number;
}

export interface MemoryPeak {
  /** Peaks during the pass minus the values just before it (after a GC), bytes. */
  rss: number;
  heapUsed: number;
  arrayBuffers: number;
  /** Largest reassembler stats.bufferedBytes seen. */
  bufferedBytes: number;
}

export interface ReassemblerResult {
  verify: string;
  pushes: number;
  datagrams: number;
  datagramBytes: number;
  bodyBytes: number;
  duplicates: number;
  runs: ReassemblerRun[];
  memory: Record<'pushcast' | 'pushcast-shuffled', MemoryPeak>;
  /** RSS and arrayBuffers of the process with all datagrams built, before the passes. */
  baseline: { rss: number; heapUsed: number; arrayBuffers: number };
}

/** Least time per measurement. */
const MIN_MS = 300;

const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/** Each push's datagrams shuffled (Fisher–Yates), then 1 % of them (at least one per push) inserted again at random later places. */
function shuffled(pushes: Uint8Array[][], rng: Prng): { pushes: Uint8Array[][]; duplicates: number } {
  let duplicates = 0;
  const out = pushes.map((datagrams) => {
    const list = [...datagrams];
    for (let i = list.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [list[i], list[j]] = [list[j]!, list[i]!];
    }
    const extra = Math.max(1, Math.round(list.length * 0.01));
    for (let n = 0; n < extra; n++) {
      const from = rng.int(list.length);
      const to = from + 1 + rng.int(list.length - from);
      list.splice(to, 0, list[from]!);
      duplicates++;
    }
    return list;
  });
  return { pushes: out, duplicates };
}

interface Sampler {
  onDatagram(reassembler: MulticastReassembler): void;
  onPush(): void;
}

/**
 * Feeds the pushes' datagrams to a new reassembler and awaits every response's bytes, each compared with
 * the body pushed as it arrives (then dropped, so that memory figures are the reassembler's, not ours).
 */
async function reassemble(pushes: Uint8Array[][], expected: Map<string, Uint8Array>, sampler?: Sampler): Promise<void> {
  const reassembler = new MulticastReassembler({ sessionId: SESSION_ID, ...SIGNING.reassembler }); // signatures: see SIGNING in common.ts
  const done: Promise<void>[] = [];
  // With a verifier, a promise's event is raised only once its signature is checked (asynchronously):
  // the last push's event may come after its last datagram is fed, so wait for one event per push
  // (or until the reassembler's push timeout has passed, then the check below says what is missing).
  let allRaised!: () => void;
  const raised = new Promise<void>((resolve) => (allRaised = resolve));
  const timeout = setTimeout(allRaised, 10_000);
  reassembler.addEventListener(RESOURCE_PUSH, (event) => {
    const { request, response } = event as ResourcePushEvent;
    const path = new URL(request.url).pathname;
    done.push(
      response.then(async (r) => {
        const body = new Uint8Array(await r.arrayBuffer());
        const want = expected.get(path);
        if (!want || !equal(body, want)) throw new Error(`${path}: the reassembled body differs from the one pushed`);
      }),
    );
    if (done.length === pushes.length) allRaised();
  });
  for (const datagrams of pushes) {
    for (const d of datagrams) {
      reassembler.enqueuePacket(d);
      sampler?.onDatagram(reassembler);
    }
    sampler?.onPush();
    await yieldToLoop();
  }
  await raised;
  clearTimeout(timeout);
  await Promise.all(done);
  const stats = reassembler.stats;
  if (done.length !== pushes.length || stats.pushesCompleted !== pushes.length || stats.pushesFailed !== 0)
    throw new Error(`reassembler: ${JSON.stringify(stats)}`);
}

async function main(task: ReassemblerTask): Promise<ReassemblerResult> {
  const bodies = segmentBodies(task.segments, 11);
  const inOrder = await packetize(bodies);
  const { pushes: mixed, duplicates } = shuffled(inOrder, new Prng(5));
  const flat = inOrder.flat();
  const headerLength = shortHeaderLength(SESSION_ID.length, 1);
  const datagramBytes = flat.reduce((s, d) => s + d.length, 0);
  const target = new Uint8Array(datagramBytes);

  const expected = new Map(bodies.map((b, i) => [segmentPath(i), b]));

  const run = async (variant: ReassemblerVariant): Promise<{ seconds: number; cpuMicros: number }> => {
    gc();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    let passes = 1;
    switch (variant) {
      // Each variant repeats whole passes until MIN_MS have passed (a pass of the baselines takes
      // milliseconds); the figures are per pass.
      case 'copy':
        for (passes = 1; ; passes++) {
          let at = 0;
          for (const d of flat) {
            target.set(d.subarray(headerLength), at);
            at += d.length - headerLength;
          }
          if (performance.now() - t0 >= MIN_MS) break;
        }
        break;
      case 'sha256':
        for (passes = 1; ; passes++) {
          for (const b of bodies) await webcrypto.subtle.digest('SHA-256', b);
          if (performance.now() - t0 >= MIN_MS) break;
        }
        break;
      case 'pushcast':
      case 'pushcast-shuffled':
        for (passes = 1; ; passes++) {
          await reassemble(variant === 'pushcast' ? inOrder : mixed, expected);
          if (performance.now() - t0 >= MIN_MS) break;
        }
        break;
    }
    const seconds = (performance.now() - t0) / 1000 / passes;
    const cpu = process.cpuUsage(c0);
    return { seconds, cpuMicros: (cpu.user + cpu.system) / passes };
  };

  for (const v of REASSEMBLER_VARIANTS) await run(v); // warm-up
  const runs: ReassemblerRun[] = [];
  for (let round = 0; round < task.rounds; round++) {
    const order = round % 2 === 0 ? REASSEMBLER_VARIANTS : [...REASSEMBLER_VARIANTS].reverse();
    for (const variant of order) runs.push({ variant, round, ...(await run(variant)) });
  }

  gc();
  const m = process.memoryUsage();
  const baseline = { rss: m.rss, heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers };
  const memoryPass = async (pushes: Uint8Array[][]): Promise<MemoryPeak> => {
    gc();
    const m0 = process.memoryUsage();
    const peak = { rss: m0.rss, heapUsed: m0.heapUsed, arrayBuffers: m0.arrayBuffers, bufferedBytes: 0 };
    const sample = () => {
      const u = process.memoryUsage();
      peak.rss = Math.max(peak.rss, u.rss);
      peak.heapUsed = Math.max(peak.heapUsed, u.heapUsed);
      peak.arrayBuffers = Math.max(peak.arrayBuffers, u.arrayBuffers);
    };
    const timer = setInterval(sample, 2);
    await reassemble(pushes, expected, {
      onDatagram: (r) => (peak.bufferedBytes = Math.max(peak.bufferedBytes, r.stats.bufferedBytes)),
      onPush: sample,
    });
    sample();
    clearInterval(timer);
    return {
      rss: peak.rss - m0.rss,
      heapUsed: peak.heapUsed - m0.heapUsed,
      arrayBuffers: peak.arrayBuffers - m0.arrayBuffers,
      bufferedBytes: peak.bufferedBytes,
    };
  };
  const memory = { pushcast: await memoryPass(inOrder), 'pushcast-shuffled': await memoryPass(mixed) };

  return {
    verify: SIGNING.name,
    pushes: bodies.length,
    datagrams: flat.length,
    datagramBytes,
    bodyBytes: bodies.reduce((s, b) => s + b.length, 0),
    duplicates,
    runs,
    memory,
    baseline,
  };
}

const result = await main(JSON.parse(process.argv[2]!) as ReassemblerTask);
process.stdout.write(`${JSON.stringify(result)}\n`);
