/**
 * MulticastUdpSender over real UDP multicast on the IPv4 loopback: the sender's outgoing interface is
 * 127.0.0.1 with multicast loopback on, the receiver joins the group on 127.0.0.1. A ~300 KB push goes
 * through PushPacketizer → sender (paced) → node:dgram → MulticastReassembler and arrives identical.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import test from 'node:test';
import { MulticastUdpSender, PushPacketizer, QueueFullError, SenderClosedError } from '../../src/multicast/index.js';
import { MulticastReassembler, RESOURCE_PUSH, type ResourcePushEvent } from '../../src/push/index.js';
import { encodeShortHeaderPacket, isRepairPacket } from '../../src/wire/index.js';
import { Rng, fromHex } from '../wire/support.js';
import { until } from '../support/wait.js';

const SESSION_ID = fromHex('5053434153540042');
const GROUP = `239.255.42.${1 + (process.pid % 250)}`;

async function receiver(group: string): Promise<{ socket: dgram.Socket; port: number; packets: Uint8Array[] }> {
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((resolve) => socket.bind(0, '0.0.0.0', resolve));
  socket.addMembership(group, '127.0.0.1');
  socket.setRecvBufferSize(4 * 1024 * 1024);
  const packets: Uint8Array[] = [];
  socket.on('message', (m) => packets.push(new Uint8Array(m)));
  return { socket, port: socket.address().port, packets };
}

test('a ~300 KB push over loopback multicast arrives byte-identical, paced at the configured rate', async () => {
  const rx = await receiver(GROUP);
  const reassembler = new MulticastReassembler({ sessionId: SESSION_ID, timeoutMs: 10_000 });
  let got: Promise<{ url: string; body: Uint8Array }> | undefined;
  reassembler.addEventListener(RESOURCE_PUSH, (e) => {
    const { request, response } = e as ResourcePushEvent;
    got ??= response.then(async (r) => ({ url: request.url, body: new Uint8Array(await r.arrayBuffer()) }));
  });
  rx.socket.on('message', (m) => reassembler.enqueuePacket(new Uint8Array(m)));

  const rate = 24e6; // 3 MB/s: 300 KB in ~100 ms
  const burst = 20 * 1470;
  const sender = await MulticastUdpSender.open({
    group: GROUP,
    port: rx.port,
    rateBitsPerSecond: rate,
    burstBytes: burst,
    ttl: 0,
    multicastInterface: '127.0.0.1',
    loopback: true,
  });
  try {
    const body = new Rng(99).bytes(300_000);
    const packetizer = new PushPacketizer({ sessionId: SESSION_ID, authority: 'pushcast.example' });
    const datagrams = await packetizer.push({
      path: '/live/video/7.m4s',
      body,
      responseHeaders: { 'content-type': 'video/mp4' },
    });
    const bytes = datagrams.reduce((s, d) => s + d.length, 0);
    const started = performance.now();
    await sender.send(datagrams);
    const elapsed = performance.now() - started;
    // Pacing: everything past the burst takes (bytes − burst) / rate at least.
    const minimum = (((bytes - burst) * 8) / rate) * 1000;
    assert.ok(
      elapsed >= minimum * 0.95,
      `${elapsed.toFixed(1)} ms for ${bytes} bytes; at ${rate} bit/s at least ${minimum.toFixed(1)} ms`,
    );
    assert.ok(elapsed < minimum * 3 + 200, `${elapsed.toFixed(1)} ms: far slower than the rate`);
    assert.deepEqual(sender.stats, {
      packets: datagrams.length,
      bytes,
      drops: 0,
      droppedBytes: 0,
      rejectedSends: 0,
      errors: 0,
      queuedPackets: 0,
      queuedBytes: 0,
      repairPackets: 0,
      repairBytes: 0,
      repairDrops: 0,
    });

    const result = await await until('the PUSH_PROMISE', () => got, {
      timeoutMs: 5_000,
      detail: () => `${rx.packets.length} datagrams arrived`,
    });
    assert.equal(result.url, 'https://pushcast.example/live/video/7.m4s');
    assert.equal(Buffer.compare(Buffer.from(result.body), Buffer.from(body)), 0, 'identical body');
    assert.equal(rx.packets.length, datagrams.length, 'no loss on loopback');
    assert.equal(reassembler.stats.pushesCompleted, 1);
  } finally {
    await sender.close();
    rx.socket.close();
  }
});

test('the queue is bounded: a send past maxQueuedBytes rejects at once and is counted', async () => {
  const rx = await receiver(GROUP);
  const sender = await MulticastUdpSender.open({
    group: GROUP,
    port: rx.port,
    rateBitsPerSecond: 1e6,
    burstBytes: 1470,
    maxQueuedBytes: 10_000,
    multicastInterface: '127.0.0.1',
    loopback: true,
  });
  try {
    const packet = () => new Uint8Array(1400);
    const first = sender.send([packet(), packet(), packet(), packet(), packet()]); // 7000 bytes
    await assert.rejects(sender.send([packet(), packet(), packet()]), (error: unknown) => {
      assert.ok(error instanceof QueueFullError);
      assert.match(error.message, /queue full/);
      assert.equal(error.requestedBytes, 4200);
      return true;
    });
    const stats = sender.stats;
    assert.equal(stats.rejectedSends, 1);
    assert.equal(stats.drops, 3);
    assert.equal(stats.droppedBytes, 4200);
    assert.ok(stats.queuedBytes <= 10_000);
    await sender.send([packet(), packet()]); // 2800 more fit, once the first are on their way
    await first;
    assert.equal(sender.stats.packets, 7);
    // Close rejects what is still queued.
    const pending = sender.send([packet(), packet(), packet(), packet()]);
    await sender.close();
    await assert.rejects(pending, SenderClosedError);
    await assert.rejects(sender.send(packet()), SenderClosedError);
  } finally {
    await sender.close();
    rx.socket.close();
  }
});

test('options are checked; an IPv6 group opens a udp6 socket', async () => {
  await assert.rejects(
    MulticastUdpSender.open({ group: '10.0.0.1', port: 5000, rateBitsPerSecond: 1e6 }),
    /not a multicast address/,
  );
  await assert.rejects(
    MulticastUdpSender.open({ group: 'nope', port: 5000, rateBitsPerSecond: 1e6 }),
    /not an IP address/,
  );
  await assert.rejects(MulticastUdpSender.open({ group: '239.1.1.1', port: 0, rateBitsPerSecond: 1e6 }), RangeError);
  await assert.rejects(
    MulticastUdpSender.open({ group: '239.1.1.1', port: 5000, rateBitsPerSecond: 1e6, ttl: 256 }),
    RangeError,
  );
  await assert.rejects(MulticastUdpSender.open({ group: '239.1.1.1', port: 5000, rateBitsPerSecond: -1 }), RangeError);
  const v6 = await MulticastUdpSender.open({
    group: 'ff15::4242',
    port: 5000,
    rateBitsPerSecond: 1e6,
    ttl: 4,
    bindAddress: '::',
  });
  assert.match(v6.address().address, /:/);
  await v6.close();
});

test('FEC: repair packets go to the repair port from the same source address, right after their block, within the queue bound', async () => {
  const rx = await receiver(GROUP);
  const repairRx = await receiver(GROUP);
  const sources: string[] = [];
  const order: string[] = [];
  rx.socket.on('message', (_m, info) => {
    sources.push(info.address);
    order.push('s');
  });
  repairRx.socket.on('message', (_m, info) => {
    sources.push(info.address);
    order.push('r');
  });
  const maxQueuedBytes = 10_000;
  const sender = await MulticastUdpSender.open({
    group: GROUP,
    port: rx.port,
    rateBitsPerSecond: 2e6,
    burstBytes: 1470,
    maxQueuedBytes,
    ttl: 0,
    multicastInterface: '127.0.0.1',
    bindAddress: '127.0.0.1',
    loopback: true,
    fec: { k: 1, m: 4, port: repairRx.port, sessionId: SESSION_ID },
  });
  let most = 0;
  const sampler = setInterval(() => (most = Math.max(most, sender.stats.queuedBytes)), 1);
  try {
    // Each packet is a block of its own with 4 repair packets of ~1420 bytes: 5.7 kB on top of what waits.
    const packets = Array.from({ length: 5 }, (_, pn) =>
      encodeShortHeaderPacket({ dcid: SESSION_ID, packetNumber: pn, packetNumberLength: 1 }, new Uint8Array(1380)),
    );
    await sender.send(packets);
    await sender.flush();
    const stats = sender.stats;
    assert.equal(stats.packets, 5);
    assert.ok(stats.repairDrops > 0, 'the first blocks’ repair packets did not fit behind the queued packets');
    assert.equal(stats.repairPackets + stats.repairDrops, 5 * 4);
    assert.ok(most <= maxQueuedBytes, `${most} bytes queued`);
    await until(
      'every datagram on the loopback',
      () => rx.packets.length === 5 && repairRx.packets.length === stats.repairPackets,
    );
    assert.deepEqual(new Set(sources), new Set(['127.0.0.1']), 'one source address for both flows (SSM)');
    assert.ok(repairRx.packets.every((d) => isRepairPacket(d) && d.length <= 1470));
    // The last packet's block: its 4 repairs right after it.
    assert.deepEqual(order.slice(-5), ['s', 'r', 'r', 'r', 'r']);
    await assert.rejects(
      MulticastUdpSender.open({
        group: GROUP,
        port: 5000,
        rateBitsPerSecond: 1e6,
        fec: { k: 1, m: 1, port: 5000, sessionId: SESSION_ID },
      }),
      RangeError,
    );
  } finally {
    clearInterval(sampler);
    await sender.close();
    rx.socket.close();
    repairRx.socket.close();
  }
});
