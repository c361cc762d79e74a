/**
 * FecEncoder: k consecutive packets make a block whose m repair packets come out as it fills; a block
 * that does not fill is closed flushMs after its first packet (with ceil(m·k'/k) repairs), a gap in the
 * packet numbers closes it at once; what the repair packets carry recovers the block.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { FecEncoder, PushPacketizer, fecSourceDatagramSize } from '../../src/multicast/index.js';
import { decodeRepairPacket, recoverBlock, repairPacketOverhead } from '../../src/wire/index.js';
import { Rng, fromHex } from '../wire/support.js';

const SESSION_ID = fromHex('5053434153540fec');

/** Timers run by hand. */
function manualTimers() {
  const pending = new Map<number, () => void>();
  let next = 0;
  return {
    timers: {
      setTimeout: (callback: () => void) => {
        pending.set(++next, callback);
        return next;
      },
      clearTimeout: (handle: unknown) => void pending.delete(handle as number),
    },
    pending: () => pending.size,
    fire: () => {
      const callbacks = [...pending.values()];
      pending.clear();
      for (const c of callbacks) c();
    },
  };
}

async function sessionPackets(bodyBytes: number, firstPacketNumber = 0): Promise<Uint8Array[]> {
  const packetizer = new PushPacketizer({
    sessionId: SESSION_ID,
    authority: 'pushcast.example',
    firstPacketNumber,
    maxDatagramSize: fecSourceDatagramSize(1470, SESSION_ID.length),
  });
  return packetizer.push({ path: '/live/v/1.m4s', body: new Rng(bodyBytes).bytes(bodyBytes) });
}

test('full blocks: m repair packets right after the k-th packet, numbered from the block’s first; they recover any m losses', async () => {
  const packets = await sessionPackets(60_000);
  assert.ok(packets.length > 40 && packets.length < 60, `${packets.length} packets`);
  const out: Uint8Array[][] = [];
  const clock = manualTimers();
  const encoder = new FecEncoder({
    sessionId: SESSION_ID,
    k: 20,
    m: 2,
    output: (r) => out.push(r),
    timers: clock.timers,
  });
  for (const [i, p] of packets.entries()) {
    encoder.add(p);
    assert.equal(out.length, Math.floor((i + 1) / 20), `after packet ${i}`);
  }
  assert.equal(clock.pending(), 1, 'the third block waits for its timer');
  for (const [b, repairs] of out.entries()) {
    assert.equal(repairs.length, 2);
    const decoded = repairs.map((r) => decodeRepairPacket(r, SESSION_ID.length));
    assert.deepEqual(
      decoded.map((d) => [d.firstPacketNumber, d.k, d.m, d.index]),
      [
        [20 * b, 20, 2, 0],
        [20 * b, 20, 2, 1],
      ],
    );
    assert.deepEqual(decoded[0]!.sessionId, SESSION_ID);
    assert.ok(
      repairs.every((r) => r.length <= 1470),
      'repair packets fit the datagram limit',
    );
    const sources = packets.slice(20 * b, 20 * b + 20);
    const lost = sources.map((s, j) => (j === 3 || j === 17 ? undefined : s));
    assert.deepEqual(
      recoverBlock(
        lost,
        decoded.map((d) => d.symbol),
      ),
      sources,
    );
  }
  assert.deepEqual(encoder.stats, {
    blocks: 2,
    sourcePackets: packets.length,
    repairPackets: 4,
    repairBytes: sum(out.flat()),
  });
});

test('a block that does not fill closes at its timer with ceil(m·k′/k) repairs; a gap closes it at once; flush and close', async () => {
  const packets = await sessionPackets(12_000); // 9 packets
  const out: Uint8Array[][] = [];
  const clock = manualTimers();
  const encoder = new FecEncoder({
    sessionId: SESSION_ID,
    k: 20,
    m: 4,
    output: (r) => out.push(r),
    timers: clock.timers,
  });
  for (const p of packets.slice(0, 5)) encoder.add(p);
  assert.equal(out.length, 0);
  clock.fire();
  assert.equal(out.length, 1);
  assert.deepEqual(
    out[0]!.map((r) => decodeRepairPacket(r, 8)).map((d) => [d.firstPacketNumber, d.k, d.m]),
    [[0, 5, 1]],
    'k′ = 5 of 20: ceil(4 · 5 / 20) = 1 repair',
  );
  // Packets 5 and 6, then 8 (7 never left): the gap closes [5, 6].
  encoder.add(packets[5]!);
  encoder.add(packets[6]!);
  encoder.add(packets[8]!);
  assert.equal(out.length, 2);
  assert.deepEqual(
    out[1]!.map((r) => decodeRepairPacket(r, 8)).map((d) => [d.firstPacketNumber, d.k, d.m]),
    [[5, 2, 1]],
  );
  encoder.flush();
  assert.deepEqual(
    out[2]!.map((r) => decodeRepairPacket(r, 8)).map((d) => [d.firstPacketNumber, d.k, d.m]),
    [[8, 1, 1]],
  );
  assert.equal(clock.pending(), 0, 'flush stops the timer');
  encoder.add(new Uint8Array([1, 2, 3])); // not a packet of the session: passed over
  encoder.flush();
  assert.equal(out.length, 3);
  encoder.add(packets[0]!);
  encoder.close();
  assert.equal(clock.pending(), 0);
  encoder.add(packets[1]!);
  encoder.flush();
  assert.equal(out.length, 3, 'nothing after close');
});

test('options are checked; the source limit leaves room for the repair header', () => {
  const output = () => undefined;
  assert.throws(() => new FecEncoder({ sessionId: SESSION_ID, k: 0, m: 2, output }), RangeError);
  assert.throws(() => new FecEncoder({ sessionId: SESSION_ID, k: 20, m: 0, output }), RangeError);
  assert.throws(() => new FecEncoder({ sessionId: SESSION_ID, k: 250, m: 6, output }), RangeError);
  assert.throws(() => new FecEncoder({ sessionId: SESSION_ID, k: 2, m: 1, flushMs: -1, output }), RangeError);
  assert.equal(fecSourceDatagramSize(1470, 8) + repairPacketOverhead(8), 1470);
});

function sum(list: Uint8Array[]): number {
  return list.reduce((n, d) => n + d.length, 0);
}
