/**
 * FecDecoder in front of MulticastReassembler: packets of the session go on at once; lost ones come back
 * from their block's repair packets, whatever the order, so that pushes complete with no unicast;
 * malformed, conflicting or foreign repair packets are counted, never thrown, and hand nothing on; the
 * bounds on kept packets, blocks and bytes hold.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { FecEncoder, PushPacketizer, fecSourceDatagramSize } from '../../src/multicast/index.js';
import { FecDecoder, MulticastReassembler, RESOURCE_PUSH, type ResourcePushEvent } from '../../src/push/index.js';
import { decodeRepairPacket, encodeRepair, encodeRepairPacket } from '../../src/wire/index.js';
import { within } from '../support/wait.js';
import { Rng, fromHex } from '../wire/support.js';

const SESSION_ID = fromHex('5053434153540fed');

/** The packets of pushes of these body sizes, each block's repair packets right after it, in sending order. */
async function session(sizes: number[], k = 20, m = 2) {
  const packetizer = new PushPacketizer({
    sessionId: SESSION_ID,
    authority: 'pushcast.example',
    maxDatagramSize: fecSourceDatagramSize(1470, SESSION_ID.length),
  });
  const bodies = sizes.map((n, i) => new Rng(i + 1).bytes(n));
  const flow: { datagram: Uint8Array; repair: boolean }[] = [];
  /** Where each push's packets end in `flow`. */
  const pushEnds: number[] = [];
  const encoder = new FecEncoder({
    sessionId: SESSION_ID,
    k,
    m,
    output: (repairs) => flow.push(...repairs.map((datagram) => ({ datagram, repair: true }))),
  });
  for (const [i, body] of bodies.entries()) {
    for (const datagram of await packetizer.push({ path: `/live/v/${i}.m4s`, body })) {
      flow.push({ datagram, repair: false });
      encoder.add(datagram);
    }
    pushEnds.push(flow.length);
  }
  encoder.flush();
  return { bodies, flow, pushEnds };
}

function receiver(options: Partial<ConstructorParameters<typeof FecDecoder>[0]> = {}, timeoutMs = 5_000) {
  const reassembler = new MulticastReassembler({ sessionId: SESSION_ID, timeoutMs });
  const bodies = new Map<string, Uint8Array>();
  const failures: Error[] = [];
  const settled: Promise<void>[] = [];
  reassembler.addEventListener(RESOURCE_PUSH, (e) => {
    const { request, response } = e as ResourcePushEvent;
    settled.push(
      response.then(
        async (r) => void bodies.set(new URL(request.url).pathname, new Uint8Array(await r.arrayBuffer())),
        (error: Error) => void failures.push(error),
      ),
    );
  });
  const decoder = new FecDecoder({
    sessionId: SESSION_ID,
    output: (d) => reassembler.enqueuePacket(d),
    ...options,
  });
  return { reassembler, decoder, bodies, failures, settled };
}

test('at 1 lost packet in 10, spread so no block loses more than m, every push completes from multicast alone', async () => {
  const { bodies, flow } = await session([150_000, 40_000, 900]);
  const rx = receiver();
  let source = 0;
  let dropped = 0;
  for (const { datagram, repair } of flow) {
    if (!repair && source++ % 10 === 4) {
      dropped++;
      continue;
    }
    rx.decoder.enqueue(datagram);
  }
  await within('the pushes', Promise.all(rx.settled));
  assert.equal(rx.failures.length, 0, String(rx.failures[0]));
  for (const [i, body] of bodies.entries()) assert.deepEqual(rx.bodies.get(`/live/v/${i}.m4s`), body);
  const stats = rx.decoder.stats;
  assert.equal(stats.recovered, dropped);
  assert.equal(stats.recoveredLate, 0);
  assert.equal(stats.unrecoverable, 0);
  assert.equal(stats.malformed, 0);
  assert.equal(stats.blocks, 0, 'every block settled');
  assert.equal(rx.reassembler.stats.lost, 0, 'the reassembler saw every packet number');
});

test('order does not matter: repair packets first, sources shuffled; a block with more than m losses is given up once it leaves the window', async () => {
  const { bodies, flow, pushEnds } = await session([120_000, 100_000]);
  const rng = new Rng(7);
  // Block 0 loses 2 (recovered), block 1 loses 3 (too many), the rest lose nothing.
  const lostPackets = new Set([1, 19, 20, 21, 22]);
  let source = 0;
  const kept = flow.map((f) => (f.repair || !lostPackets.has(source++) ? f : undefined));
  const first = kept.slice(0, pushEnds[0]).filter((f) => f !== undefined);
  const shuffled = [...first.filter((f) => f.repair), ...first.filter((f) => !f.repair)];
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    if (!shuffled[i]!.repair && !shuffled[j]!.repair) [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
  }
  const rx = receiver({ maxPackets: 96 }, 500); // push 0's ~85 packets all kept
  for (const { datagram } of shuffled) rx.decoder.enqueue(datagram);
  // Blocks whose repairs came before k of their sources are recovered before their last sources arrive:
  // those count as recovered late (the reassembler drops the copies); lost and recovered, block 0's two.
  const { recovered, recoveredLate } = rx.decoder.stats;
  assert.ok(recoveredLate > 0, 'some sources were overtaken by their repair packets');
  assert.equal(recovered - recoveredLate, 2);
  assert.equal(rx.decoder.stats.blocks, 1, 'block 1 waits for more symbols');
  // The second push: 96 newer packets push block 1 out of the window.
  for (const f of kept.slice(pushEnds[0])) if (f) rx.decoder.enqueue(f.datagram);
  assert.equal(rx.decoder.stats.blocks, 0);
  assert.equal(rx.decoder.stats.unrecoverable, 1);
  await within('the pushes', Promise.all(rx.settled));
  assert.equal(rx.failures.length, 1, 'the push that lost 3 packets of one block fails (a unicast repair follows)');
  assert.deepEqual(rx.bodies.get('/live/v/1.m4s'), bodies[1]);
});

test('malformed, conflicting, foreign and forged repair packets are counted, never thrown, and hand on nothing wrong', async () => {
  const { flow } = await session([30_000], 10, 2);
  const rx = receiver();
  const outputs: Uint8Array[] = [];
  const decoder = new FecDecoder({ sessionId: SESSION_ID, output: (d) => outputs.push(d) });
  const repairs = flow.filter((f) => f.repair).map((f) => f.datagram);
  const first = repairs[0]!;
  // Not a repair packet: truncated, a bad count, another type with 0x40 clear.
  for (const bad of [
    Uint8Array.of(0x01),
    Uint8Array.of(0x01, ...SESSION_ID, 0, 0, 2, 0, 0, 0),
    Uint8Array.of(0x02, 1, 2),
  ])
    decoder.enqueue(bad);
  assert.equal(decoder.stats.malformed, 3);
  // Another session's.
  const foreign = first.slice();
  foreign[1]! ^= 0xff;
  decoder.enqueue(foreign);
  assert.equal(decoder.stats.wrongSession, 1);
  // Same block, other counts.
  const sources = flow.filter((f) => !f.repair).map((f) => f.datagram);
  decoder.enqueue(first);
  const conflicting = encodeRepairPacket({
    sessionId: SESSION_ID,
    firstPacketNumber: 0,
    k: 9,
    m: 2,
    index: 1,
    symbol: encodeRepair(sources.slice(0, 9), 2)[1]!,
  });
  decoder.enqueue(conflicting);
  assert.equal(decoder.stats.malformed, 4);
  // A forged symbol for the block: the recovery is refused or its packet fails the checks; nothing goes on.
  const forged = encodeRepairPacket({
    sessionId: SESSION_ID,
    firstPacketNumber: 10,
    k: 10,
    m: 2,
    index: 0,
    symbol: new Rng(3).bytes(first.length - 12),
  });
  decoder.enqueue(forged);
  for (const s of sources.slice(10, 19)) decoder.enqueue(s); // source 19 lost
  assert.equal(decoder.stats.recovered, 0);
  assert.equal(decoder.stats.malformed, 5);
  assert.equal(outputs.length, 9, 'only the received packets went on');
  // Random bytes never throw.
  const rng = new Rng(11);
  for (let i = 0; i < 2000; i++) {
    const d = rng.bytes(rng.range(0, 60));
    if (rng.bool()) d[0] = rng.int(0x40);
    rx.decoder.enqueue(d);
  }
});

test('bounds: kept packets, blocks waiting and bytes held never pass maxPackets, maxBlocks and maxBytes', async () => {
  const { flow } = await session([400_000], 10, 2);
  const sources = flow.filter((f) => !f.repair).map((f) => f.datagram);
  const repairs = flow.filter((f) => f.repair).map((f) => f.datagram);

  // maxBlocks: a repair packet of each of 25 blocks whose sources never came.
  const blocks = new FecDecoder({ sessionId: SESSION_ID, output: () => undefined, maxBlocks: 4 });
  const firsts = repairs.filter((r) => decodeRepairPacket(r, SESSION_ID.length).index === 0).slice(0, 25);
  assert.equal(firsts.length, 25);
  for (const r of firsts) {
    blocks.enqueue(r);
    assert.ok(blocks.stats.blocks <= 4);
  }
  assert.equal(blocks.stats.unrecoverable, 21);

  // maxPackets and maxBytes: only the newest packets are kept; blocks count in the bytes too.
  const maxBytes = 20 * 1470;
  const held = new FecDecoder({ sessionId: SESSION_ID, output: () => undefined, maxPackets: 16, maxBytes });
  let most = 0;
  for (const [i, s] of sources.entries()) {
    held.enqueue(s);
    if (i % 7 === 0) held.enqueue(repairs[(i * 2) % repairs.length]!);
    most = Math.max(most, held.stats.bufferedBytes);
  }
  assert.ok(most <= maxBytes, `${most} bytes held`);
  assert.ok(held.stats.bufferedBytes <= 16 * 1470 + 2 * 1470);

  // A block whose sources left the window before its repairs came is given up, not recovered.
  const late = new FecDecoder({ sessionId: SESSION_ID, output: () => undefined, maxPackets: 16 });
  for (const s of sources.slice(1, 60)) late.enqueue(s);
  late.enqueue(repairs[0]!);
  late.enqueue(repairs[1]!);
  assert.equal(late.stats.recovered, 0);
  assert.equal(late.stats.unrecoverable, 1);
  assert.equal(late.stats.blocks, 0);

  assert.throws(() => new FecDecoder({ sessionId: SESSION_ID, output: () => undefined, maxBlocks: 0 }), RangeError);
});
