/**
 * What the multicast bench's processes share: addresses, the session, the synthetic segments (2 s of
 * 1–4 Mbit/s video: 250 kB to 1 MB of random bytes each, sizes drawn from a seeded PRNG so every run
 * pushes the same sizes), packetizing them, and small statistics and /proc helpers.
 */
import { randomFillSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { PushPacketizer, type PushPacketizerOptions } from '../../src/multicast/push-packetizer.js';
import type { MulticastReassemblerOptions } from '../../src/push/reassembler.js';
import { PushSignatureVerifier, PushSigner } from '../../src/push/signatures.js';

/** The sender's and the receivers' addresses on the veth pair between their namespaces (netns.ts). */
export const TX_IP = '10.78.0.1';
export const RX_IP = '10.78.0.2';
/** An administratively scoped group (RFC 2365) and a port. */
export const GROUP = '239.78.0.1';
export const PORT = 5078;

export const SESSION_ID = Uint8Array.of(0x70, 0x63, 0x6d, 0x62, 0x65, 0x6e, 0x63, 0x68);
export const AUTHORITY = 'pushcast.bench:8443';
export const DATAGRAM_SIZE = 1470;

/** mulberry32: a small seeded PRNG, enough for sizes and shuffles. */
export class Prng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/** `count` segment bodies: 2 s at 1 to 4 Mbit/s, i.e. 250 000 to 1 000 000 bytes of random data. */
export function segmentBodies(count: number, seed = 1): Uint8Array[] {
  const rng = new Prng(seed);
  const bodies: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const bitsPerSecond = 1e6 + rng.next() * 3e6;
    bodies.push(randomFillSync(new Uint8Array(Math.round((bitsPerSecond * 2) / 8))));
  }
  return bodies;
}

/**
 * Signatures, in this one place. None yet: the bench measures the digest check only. To measure signed
 * pushes, give the packetizer its signer and the reassembler its verifier here (src/push/signatures.ts),
 * e.g. `{ name: 'ed25519', packetizer: { signer }, reassembler: { verifier } }`; both the sender's
 * packetize+send variant and every reassembler variant then use them, and the report names them.
 */
/**
 * Signatures as pushcast's sender and receivers use them: Ed25519 (RFC 9421) on every promise and
 * response, checked by the reassembler. BENCH_MC_SIGNING=none measures the digest alone.
 */
const signer = process.env.BENCH_MC_SIGNING === 'none' ? undefined : await PushSigner.generate();
export const SIGNING: {
  name: string;
  packetizer: Partial<PushPacketizerOptions>;
  reassembler: Partial<MulticastReassemblerOptions>;
} = signer
  ? {
      name: 'Ed25519 (RFC 9421) on promise and response',
      packetizer: { signer },
      reassembler: { verifier: await PushSignatureVerifier.fromJwks(signer.keySet) },
    }
  : { name: 'none (digest only)', packetizer: {}, reassembler: {} };

export function newPacketizer(): PushPacketizer {
  return new PushPacketizer({
    sessionId: SESSION_ID,
    authority: AUTHORITY,
    maxDatagramSize: DATAGRAM_SIZE,
    ...SIGNING.packetizer,
  });
}

export function segmentPath(n: number): string {
  return `/live/video-3000k/${n}.m4s`;
}

/** The datagrams of one push per body, in sending order. */
export async function packetize(
  bodies: Uint8Array[],
  packetizer = newPacketizer(),
  firstNumber = 0,
): Promise<Uint8Array[][]> {
  const out: Uint8Array[][] = [];
  for (let i = 0; i < bodies.length; i++) {
    out.push(
      await packetizer.push({
        path: segmentPath(firstNumber + i),
        body: bodies[i]!,
        responseHeaders: { 'content-type': 'video/mp4' },
      }),
    );
  }
  return out;
}

/** Per-CPU jiffies from /proc/stat (machine-wide, whatever namespace reads it): softirq and busy. */
export interface CpuTicks {
  softirq: number[];
  busy: number[];
}

export function cpuTicks(): CpuTicks {
  const softirq: number[] = [];
  const busy: number[] = [];
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^cpu(\d+) (.*)$/.exec(line);
    if (!m) continue;
    // user nice system idle iowait irq softirq steal guest guest_nice
    const f = m[2]!.trim().split(/\s+/).map(Number);
    softirq[Number(m[1])] = f[6]!;
    busy[Number(m[1])] = f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!;
  }
  return { softirq, busy };
}

export function ticksDelta(a: CpuTicks, b: CpuTicks): CpuTicks {
  return { softirq: b.softirq.map((v, i) => v - a.softirq[i]!), busy: b.busy.map((v, i) => v - a.busy[i]!) };
}

/** Reads one line of JSON per message from a child's stdout. */
export function jsonLines(stream: NodeJS.ReadableStream, onMessage: (message: Record<string, unknown>) => void): void {
  let buffered = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buffered += chunk;
    for (let nl; (nl = buffered.indexOf('\n')) >= 0; ) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line) onMessage(JSON.parse(line) as Record<string, unknown>);
    }
  });
}
