/** What the wire tests share: a seeded PRNG (no property-testing library), hex helpers, mutation. */
import assert from 'node:assert/strict';
import {
  MAX_MULTICAST_DATAGRAM,
  WireError,
  encodeShortHeaderPacket,
  frameSize,
  shortHeaderLength,
  writeFrame,
  type StreamFrame,
  type WireErrorCode,
} from '../../src/wire/index.js';

/** sfc32 (Chris Doty-Humphrey's Small Fast Counting PRNG), seeded: every run draws the same cases. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d = 1;

  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = seed >>> 0;
    for (let i = 0; i < 16; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** A float in [0, 1) with 53 random bits. */
  float(): number {
    return (this.u32() * 2 ** 21 + (this.u32() >>> 11)) / 2 ** 53;
  }

  /** An integer in [0, n), n ≤ 2^53. */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  bool(p = 0.5): boolean {
    return this.u32() / 2 ** 32 < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.int(items.length)]!;
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }

  /** A uniformly random bigint below 2^bits. */
  bigBits(bits: number): bigint {
    let v = 0n;
    for (let i = 0; i < bits; i += 32) v = (v << 32n) | BigInt(this.u32());
    return v & ((1n << BigInt(bits)) - 1n);
  }
}

export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Bytes from hex, spaces ignored (so RFC hex dumps paste as they are). */
export function fromHex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, '');
  assert.equal(clean.length % 2, 0, `odd hex: ${text}`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

export function ascii(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

/** Asserts that `fn` throws a WireError with `code`, and returns it. */
export function throwsWire(fn: () => unknown, code: WireErrorCode, message?: string): WireError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof WireError, `${message ?? ''} expected WireError(${code}), got ${String(error)}`);
    assert.equal(error.code, code, `${message ?? ''} ${error.message}`);
    return error;
  }
  assert.fail(`${message ?? ''} expected WireError(${code}), nothing thrown`);
}

/** A damaged copy of `bytes`: flipped bits, replaced, inserted or deleted bytes, cut or extended. */
export function mutate(rng: Rng, bytes: Uint8Array): Uint8Array {
  const out = Array.from(bytes);
  const edits = rng.range(1, 4);
  for (let e = 0; e < edits; e++) {
    const at = out.length === 0 ? 0 : rng.int(out.length);
    switch (rng.int(6)) {
      case 0:
        if (out.length) out[at]! ^= 1 << rng.int(8);
        break;
      case 1:
        if (out.length) out[at] = rng.int(256);
        break;
      case 2:
        out.splice(at, 0, rng.pick([0x00, 0x3f, 0x40, 0x7f, 0x80, 0xbf, 0xc0, 0xff, rng.int(256)]));
        break;
      case 3:
        out.splice(at, 1);
        break;
      case 4:
        out.length = rng.int(out.length + 1);
        break;
      default:
        for (let i = rng.range(1, 8); i > 0; i--) out.push(rng.int(256));
    }
  }
  return Uint8Array.from(out);
}

/** Where one STREAM frame of a packetized session landed. */
export interface SentFrame {
  streamId: number;
  offset: number;
  length: number;
}

/**
 * Cuts each stream's bytes into STREAM frames (Length always, Offset past 0, FIN if the stream ends), packed
 * into short-header packets of at most MAX_MULTICAST_DATAGRAM bytes with 1-byte packet numbers, as nghq sends
 * them. `frames[i]` lists the frames of `datagrams[i]`, so a test can tell what a lost packet carried.
 */
export function packetize(
  streams: { id: number; bytes: Uint8Array; fin: boolean }[],
  dcid: Uint8Array,
): { datagrams: Uint8Array[]; frames: SentFrame[][] } {
  const room = MAX_MULTICAST_DATAGRAM - shortHeaderLength(dcid.length, 1);
  const datagrams: Uint8Array[] = [];
  const frames: SentFrame[][] = [];
  let packetNumber = 0;
  let payload = new Uint8Array(room);
  let used = 0;
  let current: SentFrame[] = [];
  const flush = () => {
    datagrams.push(
      encodeShortHeaderPacket({ dcid, packetNumber: packetNumber++, packetNumberLength: 1 }, payload.subarray(0, used)),
    );
    frames.push(current);
    payload = new Uint8Array(room);
    used = 0;
    current = [];
  };
  for (const { id, bytes, fin } of streams) {
    let offset = 0;
    while (offset < bytes.length) {
      const empty = { kind: 'stream', streamId: id, offset, data: new Uint8Array(0), fin: false } as const;
      // The largest piece whose frame fits what is left of the packet (a Length field of up to 2 bytes here).
      const take = Math.min(bytes.length - offset, room - used - frameSize(empty) - 1);
      if (take < Math.min(64, bytes.length - offset)) {
        flush();
        continue;
      }
      const frame: StreamFrame = {
        ...empty,
        data: bytes.subarray(offset, offset + take),
        fin: fin && offset + take === bytes.length,
      };
      used = writeFrame(payload, used, frame);
      current.push({ streamId: id, offset, length: take });
      offset += take;
    }
    if (used > 0) flush();
  }
  return { datagrams, frames };
}
