/**
 * A signed multicast session (PushPacketizer + PushSigner → MulticastReassembler + PushSignatureVerifier)
 * against an attacker on the path: forged promises, forged bodies, pushes signed by another key, packets
 * of another session and forged goaways never reach a consumer, and the genuine pushes still do.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { PushPacketizer, type PushResource } from '../../src/multicast/index.js';
import {
  GOAWAY,
  MulticastReassembler,
  PushSignatureVerifier,
  PushSigner,
  RESOURCE_PUSH,
  type ResourcePushEvent,
  VerificationError,
} from '../../src/push/index.js';
import {
  decodeFrames,
  decodeShortHeaderPacket,
  encodeFieldSection,
  encodeFrames,
  encodeHttp3Frame,
  encodeShortHeaderPacket,
} from '../../src/wire/index.js';
import { until } from '../support/wait.js';
import { Rng, fromHex } from '../wire/support.js';

const SESSION_ID = fromHex('5053434153540002');
const AUTHORITY = 'pushcast.example:8443';

function resources(seed: number): PushResource[] {
  const rng = new Rng(seed);
  return [
    { path: '/live/v/init.mp4', body: rng.bytes(900), responseHeaders: { 'content-type': 'video/mp4' } },
    { path: '/live/v/100.m4s', body: rng.bytes(60_000), responseHeaders: { 'content-type': 'video/mp4' } },
    { path: '/live/v/101.m4s', body: rng.bytes(30_000), responseHeaders: { 'content-type': 'video/mp4' } },
  ];
}

async function datagramsOf(
  signer: PushSigner | undefined,
  list: PushResource[],
  options: { goaway?: boolean; firstPushId?: number } = {},
): Promise<Uint8Array[]> {
  const packetizer = new PushPacketizer({
    sessionId: SESSION_ID,
    authority: AUTHORITY,
    signer,
    firstPushId: options.firstPushId,
  });
  const out: Uint8Array[] = [];
  for (const r of list) out.push(...(await packetizer.push(r)));
  if (options.goaway) out.push(...(await packetizer.goaway()));
  return out;
}

function consumer(verifier: PushSignatureVerifier) {
  const reassembler = new MulticastReassembler({ sessionId: SESSION_ID, verifier, timeoutMs: 2_000 });
  const delivered = new Map<string, Uint8Array>();
  const failures: Error[] = [];
  let events = 0;
  let goaways = 0;
  const settled: Promise<void>[] = [];
  reassembler.addEventListener(GOAWAY, () => goaways++);
  reassembler.addEventListener(RESOURCE_PUSH, (e) => {
    events++;
    const { request, response } = e as ResourcePushEvent;
    settled.push(
      response.then(
        async (r) => void delivered.set(new URL(request.url).pathname, new Uint8Array(await r.arrayBuffer())),
        (error: Error) => void failures.push(error),
      ),
    );
  });
  /** Waits until `decided` promises and goaways were verified (raised, or counted as forged), then for their pushes. */
  const drain = async (decided: number) => {
    await until(
      `${decided} promises and goaways verified`,
      () => events + goaways + reassembler.stats.forged >= decided,
      {
        detail: () => `${events} raised, ${goaways} goaways, ${reassembler.stats.forged} forged`,
      },
    );
    await Promise.all(settled);
  };
  return { reassembler, delivered, failures, drain, events: () => events, goaways: () => goaways };
}

test('a signed session delivers every push; verification covers request, response and goaway', async () => {
  const signer = await PushSigner.generate();
  const verifier = await PushSignatureVerifier.fromJwks(signer.keySet);
  const list = resources(1);
  const c = consumer(verifier);
  for (const d of await datagramsOf(signer, list, { goaway: true })) c.reassembler.enqueuePacket(d);
  await c.drain(list.length + 1);
  for (const r of list) assert.deepEqual(c.delivered.get(r.path), r.body, r.path);
  assert.equal(c.goaways(), 1, 'a signed goaway ends the session');
  assert.equal(c.reassembler.stats.forged, 0);
});

test('an unsigned session, or one signed by another key, delivers nothing and its goaway is ignored', async () => {
  const signer = await PushSigner.generate();
  const attacker = await PushSigner.generate();
  const verifier = await PushSignatureVerifier.fromJwks(signer.keySet);
  for (const forger of [undefined, attacker]) {
    const c = consumer(verifier);
    for (const d of await datagramsOf(forger, resources(2), { goaway: true })) c.reassembler.enqueuePacket(d);
    await c.drain(4);
    assert.equal(c.events(), 0, 'no event for a forged promise');
    assert.equal(c.delivered.size, 0);
    assert.equal(c.goaways(), 0, 'a forged goaway does not end the session');
    assert.equal(c.reassembler.stats.forged, 4, '3 promises + 1 goaway counted as forged');
  }
});

test('forged body bytes that arrive first fail the push (digest), never deliver; wrong session IDs are dropped', async () => {
  const signer = await PushSigner.generate();
  const verifier = await PushSignatureVerifier.fromJwks(signer.keySet);
  const list = resources(3);
  const genuine = await datagramsOf(signer, list);
  const c = consumer(verifier);
  // The attacker replays the genuine packets of 100.m4s's stream with one payload byte flipped, before the genuine ones.
  let forged = 0;
  for (const d of genuine) {
    const packet = decodeShortHeaderPacket(d, { dcidLength: SESSION_ID.length });
    if (!decodeFrames(packet.payload).some((f) => f.kind === 'stream' && f.streamId === 7 && f.offset > 2000)) continue;
    const tampered = d.slice();
    tampered[tampered.length - 1]! ^= 0xff;
    c.reassembler.enqueuePacket(tampered);
    forged++;
  }
  assert.ok(forged > 5);
  // And a whole session of another session ID, signed by the right key.
  const foreign = new PushPacketizer({ sessionId: fromHex('0000000000000000'), authority: AUTHORITY, signer });
  for (const d of await foreign.push(list[2]!)) c.reassembler.enqueuePacket(d);
  for (const d of genuine) c.reassembler.enqueuePacket(d);
  await c.drain(list.length);
  assert.deepEqual(c.delivered.get(list[0]!.path), list[0]!.body);
  assert.deepEqual(c.delivered.get(list[2]!.path), list[2]!.body);
  assert.equal(c.delivered.has(list[1]!.path), false, 'the tampered push is never delivered');
  assert.equal(c.failures.length, 1);
  assert.ok(c.failures[0] instanceof VerificationError && c.failures[0].check === 'digest');
  assert.ok(c.reassembler.stats.wrongSession > 0);
});

test('an injected promise ahead on stream 0 never becomes the point a lost hole is skipped to; stream 0 beyond 1 MiB ahead is refused', async () => {
  let now = 0;
  const timers = { now: () => now, setTimeout: () => 0, clearTimeout: () => undefined };
  const signer = await PushSigner.generate();
  const attacker = await PushSigner.generate();
  const verifier = await PushSignatureVerifier.fromJwks(signer.keySet);
  const reassembler = new MulticastReassembler({ sessionId: SESSION_ID, verifier, timeoutMs: 1_000, timers });
  const delivered: string[] = [];
  reassembler.addEventListener(RESOURCE_PUSH, (e) => {
    const { request, response } = e as ResourcePushEvent;
    void response.then(
      () => delivered.push(new URL(request.url).pathname),
      () => undefined,
    );
  });
  const settled = (path: string) => until(`${path} delivered`, () => delivered.includes(path));
  const forge = async (offset: number) => {
    const fields = [
      { name: ':method', value: 'GET' },
      { name: ':scheme', value: 'https' },
      { name: ':authority', value: AUTHORITY },
      { name: ':path', value: '/live/v/999.m4s' },
    ];
    const section = encodeFieldSection([...fields, ...(await attacker.signRequest(fields))]);
    const frame = encodeHttp3Frame({ kind: 'push-promise', pushId: 900, fieldSection: section });
    return encodeShortHeaderPacket(
      { dcid: SESSION_ID, packetNumber: 200, packetNumberLength: 1 },
      encodeFrames([{ kind: 'stream', streamId: 0, offset, data: frame, fin: false }]),
    );
  };
  const packetizer = new PushPacketizer({ sessionId: SESSION_ID, authority: AUTHORITY, signer });
  const list = resources(5);
  for (const d of await packetizer.push(list[0]!)) reassembler.enqueuePacket(d);
  reassembler.enqueuePacket(await forge(3_000)); // a little ahead of the genuine promises
  reassembler.enqueuePacket(await forge(5_000_000)); // far ahead: refused outright
  await settled(list[0]!.path);
  await until('the injected promise refused', () => reassembler.stats.forged === 1);
  const second = await packetizer.push(list[1]!);
  for (const d of second.slice(1)) reassembler.enqueuePacket(d); // its promise is lost
  now = 5_000;
  for (const d of await packetizer.push(list[2]!)) reassembler.enqueuePacket(d); // raised from an island at once
  await settled(list[2]!.path);
  now = 10_000;
  const fourth = {
    path: '/live/v/102.m4s',
    body: new Uint8Array(100),
    responseHeaders: { 'content-type': 'video/mp4' },
  };
  for (const d of await packetizer.push(fourth)) reassembler.enqueuePacket(d);
  await settled(fourth.path);
  assert.deepEqual(delivered.sort(), [list[0]!.path, list[2]!.path, fourth.path].sort());
  assert.equal(reassembler.stats.forged, 1, 'the injected promise a little ahead was parsed and refused');
  assert.equal(
    reassembler.stats.requestStreamSkips,
    1,
    'the hole of the lost promise was given up, to a genuine promise',
  );
  assert.ok(reassembler.stats.malformed >= 1, 'stream 0 far ahead is refused');
});
