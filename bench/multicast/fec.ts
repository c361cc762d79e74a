/**
 * The FEC part of the multicast bench, in process (no network: losses are drawn on the receiving side):
 * the session's datagrams (the bench's segments, packetized with room for the repair header) go through
 * FecEncoder; each datagram, source or repair, is then dropped with probability p (a seeded PRNG, one
 * loss pattern per seed) and what is left is fed to FecDecoder in sending order.
 *
 * Per code and loss rate: source packets lost, recovered by FEC, the share recovered, the share a binomial
 * model of independent losses predicts (a lost source comes back when at most m − 1 of the other k + m − 1
 * symbols of its block are lost too), pushes that lose nothing with and without FEC, and the repair
 * overhead in bytes. Encode and decode throughput over the same datagrams, with copying them into one
 * buffer as the baseline (÷ copy), median of rounds.
 */
import { FecEncoder, fecSourceDatagramSize } from '../../src/multicast/fec-encoder.js';
import { PushPacketizer } from '../../src/multicast/push-packetizer.js';
import { FecDecoder } from '../../src/push/fec-decoder.js';
import { median } from '../figures.js';
import { AUTHORITY, DATAGRAM_SIZE, Prng, SESSION_ID, packetize, segmentBodies } from './common.js';

export interface FecCode {
  name: string;
  k: number;
  m: number;
}

export interface FecTask {
  segments: number;
  /** Loss patterns per row. */
  seeds: number;
  losses: number[];
  codes: FecCode[];
  /** Throughput rounds. */
  rounds: number;
}

export interface FecRow {
  code: FecCode;
  loss: number;
  sources: number;
  lost: number;
  recovered: number;
  /** Lost sources no block could give back. */
  unrecovered: number;
  /** Blocks the decoder gave up. */
  unrecoverable: number;
  model: number;
  /** Loss patterns: sources and pushes are summed over them, repair counts are per pattern. */
  seeds: number;
  pushes: number;
  pushesWholeWithoutFec: number;
  pushesWholeWithFec: number;
  repairBytes: number;
  sourceBytes: number;
  repairPackets: number;
  decodeMBps: number;
}

export interface FecThroughput {
  code: FecCode;
  encodeMBps: number;
  copyMBps: number;
  /** Decoding with no loss: bookkeeping only. */
  decodeCleanMBps: number;
}

export interface FecResult {
  pushes: number;
  sources: number;
  sourceBytes: number;
  datagramSize: number;
  rows: FecRow[];
  throughput: FecThroughput[];
}

/** P(a lost source is recovered) for independent losses at rate p: at most m − 1 of the other k + m − 1 symbols lost. */
export function modelRecovery(k: number, m: number, p: number): number {
  const n = k + m - 1;
  let sum = 0;
  let binomial = 1; // C(n, i)
  for (let i = 0; i <= m - 1; i++) {
    if (i > 0) binomial = (binomial * (n - i + 1)) / i;
    sum += binomial * p ** i * (1 - p) ** (n - i);
  }
  return sum;
}

interface Flow {
  datagram: Uint8Array;
  repair: boolean;
  /** Index of the push a source packet belongs to. */
  push: number;
}

function encode(pushes: Uint8Array[][], code: FecCode): { flow: Flow[]; repairBytes: number; repairPackets: number } {
  const flow: Flow[] = [];
  const encoder = new FecEncoder({
    sessionId: SESSION_ID,
    k: code.k,
    m: code.m,
    output: (repairs) => {
      for (const datagram of repairs) flow.push({ datagram, repair: true, push: -1 });
    },
  });
  for (const [push, datagrams] of pushes.entries()) {
    for (const datagram of datagrams) {
      flow.push({ datagram, repair: false, push });
      encoder.add(datagram);
    }
  }
  encoder.flush();
  const { repairBytes, repairPackets } = encoder.stats;
  encoder.close();
  return { flow, repairBytes, repairPackets };
}

export async function fecBench(task: FecTask): Promise<FecResult> {
  const datagramSize = fecSourceDatagramSize(DATAGRAM_SIZE, SESSION_ID.length);
  const packetizer = new PushPacketizer({ sessionId: SESSION_ID, authority: AUTHORITY, maxDatagramSize: datagramSize });
  const pushes = await packetize(segmentBodies(task.segments), packetizer);
  const all = pushes.flat();
  const sourceBytes = all.reduce((n, d) => n + d.length, 0);
  const rows: FecRow[] = [];
  const throughput: FecThroughput[] = [];
  // Each loss pattern's seed drawn from one seeded stream: mulberry32 streams of nearby seeds are
  // correlated (their states differ by the same small amount at every step), far-apart ones are not.
  const seeds = new Prng(0xfec);

  for (const code of task.codes) {
    const { flow, repairBytes, repairPackets } = encode(pushes, code);
    for (const loss of task.losses) {
      const row: FecRow = {
        code,
        loss,
        sources: 0,
        lost: 0,
        recovered: 0,
        unrecovered: 0,
        unrecoverable: 0,
        model: modelRecovery(code.k, code.m, loss),
        seeds: task.seeds,
        pushes: 0,
        pushesWholeWithoutFec: 0,
        pushesWholeWithFec: 0,
        repairBytes,
        sourceBytes,
        repairPackets,
        decodeMBps: 0,
      };
      const rates: number[] = [];
      for (let pattern = 0; pattern < task.seeds; pattern++) {
        const rng = new Prng(Math.floor(seeds.next() * 2 ** 32));
        const kept = flow.filter(() => rng.next() >= loss);
        const lostByPush = new Array<number>(pushes.length).fill(0);
        const got = new Set<Uint8Array>();
        for (const f of kept) if (!f.repair) got.add(f.datagram);
        for (const f of flow) if (!f.repair && !got.has(f.datagram)) lostByPush[f.push]!++;
        const handed = new Set<Uint8Array>();
        const decoder = new FecDecoder({ sessionId: SESSION_ID, output: (d) => handed.add(d) });
        const began = performance.now();
        for (const f of kept) decoder.enqueue(f.datagram);
        rates.push(sourceBytes / 1e6 / ((performance.now() - began) / 1000));
        const s = decoder.stats;
        const lost = all.length - got.size;
        const recovered = s.recovered - s.recoveredLate;
        row.sources += all.length;
        row.lost += lost;
        row.recovered += recovered;
        row.unrecovered += lost - recovered;
        row.unrecoverable += s.unrecoverable;
        // A push is whole when every packet of it arrived or was recovered: recovered packets are new
        // arrays, so count the lost ones of each push that came back by their packet numbers' push.
        const recoveredByPush = countRecoveredByPush(pushes, handed, got);
        row.pushes += pushes.length;
        for (let p = 0; p < pushes.length; p++) {
          if (lostByPush[p] === 0) row.pushesWholeWithoutFec++;
          if (lostByPush[p] === recoveredByPush[p]) row.pushesWholeWithFec++;
        }
      }
      row.decodeMBps = median(rates);
      rows.push(row);
    }

    // Throughput over the same datagrams, alternating encode and the copy baseline.
    const encodeRates: number[] = [];
    const copyRates: number[] = [];
    const cleanRates: number[] = [];
    const buffer = new Uint8Array(sourceBytes);
    for (let round = 0; round < task.rounds; round++) {
      let began = performance.now();
      encode(pushes, code);
      encodeRates.push(sourceBytes / 1e6 / ((performance.now() - began) / 1000));
      began = performance.now();
      let at = 0;
      for (const d of all) {
        buffer.set(d, at);
        at += d.length;
      }
      copyRates.push(sourceBytes / 1e6 / ((performance.now() - began) / 1000));
      const decoder = new FecDecoder({ sessionId: SESSION_ID, output: () => undefined });
      began = performance.now();
      for (const f of flow) decoder.enqueue(f.datagram);
      cleanRates.push(sourceBytes / 1e6 / ((performance.now() - began) / 1000));
    }
    throughput.push({
      code,
      encodeMBps: median(encodeRates),
      copyMBps: median(copyRates),
      decodeCleanMBps: median(cleanRates),
    });
  }
  return { pushes: pushes.length, sources: all.length, sourceBytes, datagramSize, rows, throughput };
}

/** Per push, how many of its lost packets the decoder handed on (recovered ones are new arrays of equal bytes). */
function countRecoveredByPush(pushes: Uint8Array[][], handed: Set<Uint8Array>, got: Set<Uint8Array>): number[] {
  const recovered = new Map<string, number>();
  for (const d of handed) {
    if (got.has(d)) continue;
    const key = Buffer.from(d).toString('base64');
    recovered.set(key, (recovered.get(key) ?? 0) + 1);
  }
  return pushes.map((datagrams) => {
    let n = 0;
    for (const d of datagrams) {
      if (got.has(d)) continue;
      const key = Buffer.from(d).toString('base64');
      const left = recovered.get(key) ?? 0;
      if (left > 0) {
        n++;
        recovered.set(key, left - 1);
      }
    }
    return n;
  });
}
