/**
 * Receiving progressive pushes (MulticastReassembler with progressive-body.ts): the response is given at
 * the HEADERS and its body releases each chunk once it is whole and verified, in order; a forged chunk
 * ends the body before any of its bytes; a loss is repaired by range while the push still grows and the
 * repaired bytes are checked like pushed ones.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { PushPacketizer } from '../../src/multicast/index.js';
import {
  IncompletePushError,
  MAX_PENDING_CHUNKS,
  REPAIR_ATTEMPTS,
  MulticastReassembler,
  PushSignatureVerifier,
  PushSigner,
  RESOURCE_PUSH,
  VerificationError,
  type ByteRange,
  type ReassemblerTimers,
  type ResourcePushEvent,
} from '../../src/push/index.js';
import { CHUNK_DIGEST_FRAME_TYPE, decodeFrames, decodeShortHeaderPacket } from '../../src/wire/index.js';
import { until } from '../support/wait.js';
import { Rng, fromHex } from '../wire/support.js';

const SESSION_ID = fromHex('5053434153540009');
const AUTHORITY = 'pushcast.example:8443';
const PATH = '/live/v/3.m4s';
/** CHUNK_DIGEST's type as a varint (RFC 9000 §16: 4 bytes, 0x80 prefix, for 0x4000 to 0x3fffffff). */
const HEAD = [0x80, 0x00, CHUNK_DIGEST_FRAME_TYPE >> 8, CHUNK_DIGEST_FRAME_TYPE & 0xff];

interface Sent {
  /** The datagrams of the promise and HEADERS, then of each chunk. */
  open: Uint8Array[];
  chunks: Uint8Array[][];
  body: Uint8Array[];
  streamId: number;
}

async function progressivePush(
  sizes: number[],
  seed = 1,
  chunkSigner?: PushSigner,
): Promise<Sent & { verifier: PushSignatureVerifier }> {
  const genuine = await PushSigner.generate();
  const verifier = await PushSignatureVerifier.fromJwks(genuine.keySet);
  const signer = {
    signRequest: genuine.signRequest.bind(genuine),
    signResponse: genuine.signResponse.bind(genuine),
    signProgressiveResponse: genuine.signProgressiveResponse.bind(genuine),
    signChunk: (chunkSigner ?? genuine).signChunk.bind(chunkSigner ?? genuine),
  };
  const packetizer = new PushPacketizer({
    sessionId: SESSION_ID,
    authority: AUTHORITY,
    signer,
    maxDataFrameSize: 64 * 1024 * 1024,
  });
  const rng = new Rng(seed);
  const body = sizes.map((n) => rng.bytes(n));
  const opened = await packetizer.openPush({ path: PATH, responseHeaders: { 'content-type': 'video/mp4' } });
  const chunks: Uint8Array[][] = [];
  for (const [i, bytes] of body.entries())
    chunks.push(await (i === body.length - 1 ? opened.push.end(bytes) : opened.push.chunk(bytes)));
  return { open: opened.datagrams, chunks, body, streamId: opened.push.streamId, verifier };
}

/** The push-stream STREAM frames of a datagram: offsets and lengths. */
function pushFrames(datagram: Uint8Array, streamId: number): { offset: number; length: number; head: boolean }[] {
  const packet = decodeShortHeaderPacket(datagram, { dcidLength: SESSION_ID.length });
  return decodeFrames(packet.payload)
    .filter((f) => f.kind === 'stream' && f.streamId === streamId)
    .map((f) => {
      const data = (f as { data: Uint8Array }).data;
      return {
        offset: (f as { offset: number }).offset,
        length: data.length,
        head: HEAD.every((b, i) => data[i] === b),
      };
    });
}

interface Receiver {
  reassembler: MulticastReassembler;
  response: Promise<Response>;
  /** Chunks as the reader got them. */
  got: Uint8Array[];
  done: Promise<Uint8Array>;
}

function receiver(
  verifier: PushSignatureVerifier,
  options: {
    repair?: (request: Request, range: ByteRange) => Promise<Uint8Array>;
    timeoutMs?: number;
    timers?: ReassemblerTimers;
  } = {},
): Receiver {
  const reassembler = new MulticastReassembler({
    sessionId: SESSION_ID,
    verifier,
    timeoutMs: options.timeoutMs ?? 5_000,
    repair: options.repair,
    reorderMs: 5,
    timers: options.timers,
  });
  const got: Uint8Array[] = [];
  let resolveResponse!: (r: Response) => void;
  const response = new Promise<Response>((resolve) => (resolveResponse = resolve));
  const done = response.then(async (r) => {
    const reader = r.body!.getReader();
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) break;
      got.push(value);
    }
    return Uint8Array.from(got.flatMap((c) => [...c]));
  });
  done.catch(() => undefined);
  reassembler.addEventListener(
    RESOURCE_PUSH,
    (e) => void (e as ResourcePushEvent).response.then(resolveResponse, () => undefined),
  );
  return { reassembler, response, got, done };
}

const concat = (parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((c) => [...c]));

test('a progressive push is given at its HEADERS and each chunk is released once whole and verified, before the next is sent', async () => {
  const sent = await progressivePush([9_000, 1_200, 15_000]);
  // A clock of its own, moved a chunk interval on before each chunk: a chunk that arrives whole, however
  // long after the one before, is never repaired.
  let clock = 0;
  const timers: ReassemblerTimers = { now: () => clock, setTimeout: () => undefined, clearTimeout: () => undefined };
  const repairs: ByteRange[] = [];
  const r = receiver(sent.verifier, {
    timers,
    repair: async (_request, range) => {
      repairs.push(range);
      return new Uint8Array(range.end - range.start);
    },
  });
  for (const d of sent.open) r.reassembler.enqueuePacket(d);
  const response = await r.response;
  assert.equal(response.headers.get('content-type'), 'video/mp4');
  assert.equal(response.headers.get('content-length'), null);
  for (const [i, datagrams] of sent.chunks.entries()) {
    clock += 200;
    for (const d of datagrams) r.reassembler.enqueuePacket(d);
    await until(`chunk ${i} released`, () => r.got.length === i + 1);
    assert.deepEqual(r.got[i], sent.body[i]);
  }
  assert.deepEqual(await r.done, concat(sent.body));
  assert.deepEqual(repairs, [], 'nothing was lost, nothing repaired');
  const stats = r.reassembler.stats;
  assert.equal(stats.pushesCompleted, 1);
  assert.equal(stats.bufferedBytes, 0, 'nothing held once the body is released');
});

test('a chunk whose bytes were changed ends the body before any of its bytes: the chunks before it stay', async () => {
  const sent = await progressivePush([4_000, 4_000, 4_000], 2);
  const r = receiver(sent.verifier);
  // Flip one byte in the middle of the second chunk's payload (its SHA-256 no longer matches).
  const target = sent.chunks[1]![0]!;
  target[target.length - 10]! ^= 0xff;
  for (const d of [...sent.open, ...sent.chunks.flat()]) r.reassembler.enqueuePacket(d);
  await assert.rejects(r.done, (e: unknown) => e instanceof VerificationError && /SHA-256 mismatch/.test(e.message));
  assert.equal(r.got.length, 1);
  assert.deepEqual(r.got[0], sent.body[0]);
  assert.equal(r.reassembler.stats.pushesFailed, 1);
});

test('a chunk signed by another key than the push it claims to belong to is refused, nothing of it released', async () => {
  const sent = await progressivePush([3_000, 3_000], 3, await PushSigner.generate());
  const r = receiver(sent.verifier);
  for (const d of [...sent.open, ...sent.chunks.flat()]) r.reassembler.enqueuePacket(d);
  await assert.rejects(r.done, (e: unknown) => e instanceof VerificationError && e.check === 'signature');
  assert.equal(r.got.length, 0);
});

test('a lost packet is repaired by a range of exactly its body bytes while the push grows; the head of a chunk goes twice', async () => {
  const sent = await progressivePush([14_000, 14_000, 2_000], 4);
  const ranges: ByteRange[] = [];
  const whole = concat(sent.body);
  const r = receiver(sent.verifier, {
    repair: async (request, range) => {
      assert.equal(new URL(request.url).pathname, PATH);
      ranges.push(range);
      return whole.slice(range.start, range.end);
    },
  });
  // Chunk 0 loses its first packet (its head: the copy in a later packet maps it) and a middle one;
  // chunk 1 loses its last packet. Nothing of chunk 2 is sent yet.
  const c0 = sent.chunks[0]!;
  const c1 = sent.chunks[1]!;
  assert.ok(pushFrames(c0[0]!, sent.streamId)[0]!.head, 'a chunk starts its first packet with its CHUNK_DIGEST');
  assert.ok(
    c0.slice(1).some((d) => pushFrames(d, sent.streamId).some((f) => f.head)),
    "the chunk's head is sent again in a later packet",
  );
  const lost = new Set([c0[0], c0[4], c1[c1.length - 2]]);
  for (const d of [...sent.open, ...c0, ...c1]) if (!lost.has(d)) r.reassembler.enqueuePacket(d);
  await until('chunks 0 and 1 released by repair', () => r.got.length === 2);
  assert.deepEqual(concat(r.got), concat(sent.body.slice(0, 2)));
  const lostPayload = [...lost].reduce(
    (n, d) => n + pushFrames(d!, sent.streamId).reduce((m, f) => m + f.length, 0),
    0,
  );
  const repaired = ranges.reduce((n, x) => n + x.end - x.start, 0);
  assert.ok(repaired > 0 && repaired <= lostPayload, `repaired ${repaired} bytes for ${lostPayload} stream bytes lost`);
  assert.equal(r.reassembler.stats.repairedBytes, repaired);
  for (const d of sent.chunks[2]!) r.reassembler.enqueuePacket(d);
  assert.deepEqual(await r.done, whole);
});

test(`a repair that meets a network error is tried again, up to ${REPAIR_ATTEMPTS} times, before the body fails`, async () => {
  for (const failing of [REPAIR_ATTEMPTS - 1, REPAIR_ATTEMPTS]) {
    const sent = await progressivePush([6_000, 6_000], 7 + failing);
    const whole = concat(sent.body);
    let calls = 0;
    const r = receiver(sent.verifier, {
      repair: async (_request, range) => {
        if (++calls <= failing) throw new TypeError('Failed to fetch');
        return whole.slice(range.start, range.end);
      },
    });
    const c0 = sent.chunks[0]!;
    for (const d of [...sent.open, ...c0.slice(0, 2), ...c0.slice(3), ...sent.chunks[1]!])
      r.reassembler.enqueuePacket(d);
    if (failing < REPAIR_ATTEMPTS) {
      assert.deepEqual(await r.done, whole, `repaired after ${failing} failures`);
    } else {
      await assert.rejects(r.done, (e: unknown) => e instanceof TypeError, 'failed at the last attempt');
      assert.equal(r.got.length, 0, 'nothing of the damaged chunk released');
    }
    assert.equal(calls, failing < REPAIR_ATTEMPTS ? failing + 1 : REPAIR_ATTEMPTS);
  }
});

test('the end of a push (an empty last chunk) goes twice: losing one copy still ends the body', async () => {
  const sent = await progressivePush([6_000, 0], 21);
  const end = sent.chunks[1]!;
  assert.equal(end.length, 2, 'the end is sent in two packets');
  const r = receiver(sent.verifier, { timeoutMs: 5_000 });
  for (const d of [...sent.open, ...sent.chunks[0]!, end[1]!]) r.reassembler.enqueuePacket(d);
  assert.deepEqual(await r.done, sent.body[0]);
  assert.equal(r.reassembler.stats.pushesCompleted, 1);
});

test("a push whose end was lost fails soon after the session's next push is promised, not at the timeout", async () => {
  const signer = await PushSigner.generate();
  const verifier = await PushSignatureVerifier.fromJwks(signer.keySet);
  const packetizer = new PushPacketizer({ sessionId: SESSION_ID, authority: AUTHORITY, signer });
  const rng = new Rng(31);
  const first = await packetizer.openPush({ path: PATH, responseHeaders: { 'content-type': 'video/mp4' } });
  const chunk = rng.bytes(5_000);
  const chunkDatagrams = await first.push.chunk(chunk);
  await first.push.end(); // both copies of the end lost
  const second = await packetizer.openPush({ path: '/live/v/4.m4s', responseHeaders: { 'content-type': 'video/mp4' } });
  const r = receiver(verifier, { timeoutMs: 60_000 });
  for (const d of [...first.datagrams, ...chunkDatagrams]) r.reassembler.enqueuePacket(d);
  await until('the chunk released', () => r.got.length === 1);
  for (const d of second.datagrams) r.reassembler.enqueuePacket(d);
  await assert.rejects(
    r.done,
    (e: unknown) =>
      e instanceof IncompletePushError &&
      /after a later push was promised/.test(e.message) &&
      e.missing[0]!.start === 5_000,
  );
  assert.deepEqual(r.got, [chunk], 'what was released stays');
});

test('a chunk whose head was lost in both copies fails the push soon after later bytes arrive, not at the timeout', async () => {
  const sent = await progressivePush([6_000, 6_000, 6_000], 41);
  const r = receiver(sent.verifier, { timeoutMs: 60_000 });
  const c1 = sent.chunks[1]!;
  const heads = c1.filter((d) => pushFrames(d, sent.streamId).some((f) => f.head));
  assert.equal(heads.length, 2, "the chunk's head went in two packets");
  for (const d of [...sent.open, ...sent.chunks[0]!, ...c1.filter((d) => !heads.includes(d)), ...sent.chunks[2]!])
    r.reassembler.enqueuePacket(d);
  await assert.rejects(
    r.done,
    (e: unknown) =>
      e instanceof IncompletePushError && /was lost, both copies/.test(e.message) && e.missing[0]!.start === 6_000,
  );
  assert.deepEqual(r.got, [sent.body[0]], 'the chunk before it stays released');
});

test('without a repair, a progressive push with a hole ends its body with what is missing at the timeout', async () => {
  const sent = await progressivePush([8_000, 8_000], 5);
  const r = receiver(sent.verifier, { timeoutMs: 300 });
  const c1 = sent.chunks[1]!;
  for (const d of [...sent.open, ...sent.chunks[0]!, ...c1.slice(0, -2), ...c1.slice(-1)])
    r.reassembler.enqueuePacket(d);
  await assert.rejects(
    r.done,
    (e: unknown) => e instanceof IncompletePushError && e.reason === 'timeout' && e.receivedBytes === 8_000,
  );
  assert.deepEqual(r.got, [sent.body[0]]);
});

test(`more than ${MAX_PENDING_CHUNKS} CHUNK_DIGEST frames ahead of the response's verification fail the push (a bound)`, async () => {
  const sent = await progressivePush(new Array<number>(MAX_PENDING_CHUNKS + 1).fill(0), 6);
  const r = receiver(sent.verifier);
  // All at once: the response's signature is still being checked while the walk reads every digest.
  for (const d of [...sent.open, ...sent.chunks.flat()]) r.reassembler.enqueuePacket(d);
  await until('the push failed', () => r.reassembler.stats.pushesFailed === 1);
  assert.equal(r.reassembler.stats.pushesCompleted, 0);
  assert.equal(r.reassembler.stats.bufferedBytes, 0);
});
