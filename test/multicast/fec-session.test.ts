/**
 * A signed multicast session with FEC over real UDP multicast on the IPv4 loopback: MulticastPushSession
 * (k = 20, m = 2) sends the session to its port and repair packets to port + 1. A receiver that drops
 * packets of the session on purpose gets them back from the repair flow through FecDecoder, and its push
 * completes with no unicast; a receiver of the session's port alone, as nghq is, sees the session it always
 * saw (no repair packet reaches it) and completes too.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { MulticastPushSession, MulticastUdpReceiver } from '../../src/multicast/index.js';
import {
  FecDecoder,
  MulticastReassembler,
  PushSignatureVerifier,
  PushSigner,
  RESOURCE_PUSH,
  type ResourcePushEvent,
} from '../../src/push/index.js';
import { decodeRepairPacket, isRepairPacket } from '../../src/wire/index.js';
import { until, within } from '../support/wait.js';
import { Rng, fromHex } from '../wire/support.js';

const SESSION_ID = fromHex('5053434153540fee');
const GROUP = '232.112.96.1';
const PORT = 5661;

function consumer(verifier: PushSignatureVerifier) {
  const reassembler = new MulticastReassembler({ sessionId: SESSION_ID, verifier, timeoutMs: 10_000 });
  const got = new Map<string, Promise<Uint8Array>>();
  reassembler.addEventListener(RESOURCE_PUSH, (e) => {
    const { request, response } = e as ResourcePushEvent;
    got.set(
      new URL(request.url).pathname,
      response.then(async (r) => new Uint8Array(await r.arrayBuffer())),
    );
  });
  const body = async (path: string) => {
    const { response } = await until(`the promise of ${path}`, () => got.has(path) && { response: got.get(path)! });
    return within(`the body of ${path}`, response);
  };
  return { reassembler, body };
}

test('FEC over loopback multicast: deterministic losses on the receiving side are recovered, the push completes with no unicast; a receiver of the session port alone is unaffected', async (t) => {
  const signer = await PushSigner.generate();
  const verifier = await PushSignatureVerifier.fromJwks(signer.keySet);
  const join = (port: number, onDatagram: (d: Uint8Array) => void) =>
    MulticastUdpReceiver.open({
      group: GROUP,
      port,
      source: '127.0.0.1',
      interfaceAddress: '127.0.0.1',
      maxDatagramBytes: 4096,
      onDatagram,
    });

  // The nghq-like receiver: the session's port, no FEC.
  const plain = consumer(verifier);
  const plainPackets: Uint8Array[] = [];
  const plainSocket = await join(PORT, (d) => {
    plainPackets.push(d.slice());
    plain.reassembler.enqueuePacket(d);
  });
  t.after(() => plainSocket.close());

  // The FEC receiver: both ports into one decoder; the 4th, 31st, 32nd and 105th packet of the session
  // are dropped as they arrive (two in one block; one in the last, short block).
  const fec = consumer(verifier);
  const decoder = new FecDecoder({ sessionId: SESSION_ID, output: (d) => fec.reassembler.enqueuePacket(d) });
  const drop = new Set([3, 30, 31, 104]);
  let arrived = 0;
  let dropped = 0;
  const repairs: Uint8Array[] = [];
  const sessionSocket = await join(PORT, (d) => {
    if (drop.has(arrived++)) dropped++;
    else decoder.enqueue(d.slice());
  });
  t.after(() => sessionSocket.close());
  const repairSocket = await join(PORT + 1, (d) => {
    repairs.push(d.slice());
    decoder.enqueue(d.slice());
  });
  t.after(() => repairSocket.close());

  const session = await MulticastPushSession.open({
    name: 'video',
    group: GROUP,
    port: PORT,
    sessionId: SESSION_ID,
    rateBitsPerSecond: 40e6,
    authority: 'pushcast.example:8443',
    signer,
    interfaceAddress: '127.0.0.1',
    ttl: 0,
    fec: { k: 20, m: 2 },
  });
  const body = new Rng(21).bytes(150_000);
  await session.pushSegment(undefined, {
    path: '/live/video/42.m4s',
    headers: { 'content-type': 'video/mp4' },
    body,
  });
  await session.close(); // the goaway, the last block's repair packets, then the sockets

  assert.deepEqual(await fec.body('/live/video/42.m4s'), body, 'recovered by FEC: complete without unicast');
  assert.deepEqual(await plain.body('/live/video/42.m4s'), body);

  const sent = session.stats;
  await until(
    'every datagram on the loopback',
    () => arrived === sent.packets && repairs.length === sent.repairPackets,
    {
      detail: () => `${arrived}/${sent.packets} packets, ${repairs.length}/${sent.repairPackets} repairs`,
    },
  );
  assert.ok(arrived > 105, `${arrived} packets: the losses fall where meant`);
  assert.equal(dropped, 4);
  const blocks = repairs.map((r) => decodeRepairPacket(r, SESSION_ID.length));
  assert.ok(
    blocks.every((b) => b.k <= 20 && (b.k === 20) === (b.m === 2)),
    'full blocks 20 + 2, short ones fewer',
  );
  assert.ok(
    sent.repairBytes / sent.bytes < 0.12,
    `repair overhead ${((100 * sent.repairBytes) / sent.bytes).toFixed(1)}% of the session's bytes`,
  );
  assert.ok(
    [...plainPackets, ...repairs].every((d) => d.length <= 1470),
    'every datagram within 1470 bytes',
  );
  // A repair packet may overtake the last packet of its block (two sockets): recovered early, counted late.
  assert.equal(decoder.stats.recovered - decoder.stats.recoveredLate, 4);
  assert.equal(decoder.stats.unrecoverable, 0);
  assert.equal(fec.reassembler.stats.lost, 0, 'the reassembler saw every packet number');

  // nghq's view: only packets of the session, none malformed, nothing lost.
  assert.equal(plainPackets.length, sent.packets);
  assert.ok(plainPackets.every((d) => !isRepairPacket(d)));
  assert.equal(plain.reassembler.stats.malformed, 0);
  assert.equal(plain.reassembler.stats.wrongSession, 0);
  assert.equal(plain.reassembler.stats.lost, 0);
});
