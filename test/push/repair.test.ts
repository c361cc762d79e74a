/**
 * Repairing a whole push whose response HEADERS was lost while its promise arrived (a sender that puts
 * them in different packets, as nghq's does): body offsets are unknown, so the origin's `Content-Length`
 * and `Repr-Digest` (RFC 9530) map the body onto the stream's end, and only the missing bytes are fetched
 * by range from a real HTTP server answering as pushcast's origin does (OriginResponses.serveBytes).
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'node:test';
import { PushPacketizer } from '../../src/multicast/index.js';
import { CACHE_SEGMENT, OriginResponses } from '../../src/origin/responses.js';
import {
  IncompletePushError,
  MulticastReassembler,
  RESOURCE_PUSH,
  repairPush,
  type ResourcePushEvent,
} from '../../src/push/index.js';
import {
  decodeFrames,
  decodeShortHeaderPacket,
  encodeFrames,
  encodeShortHeaderPacket,
  type QuicFrame,
} from '../../src/wire/index.js';
import { Rng, fromHex } from '../wire/support.js';

const SESSION_ID = fromHex('5053434153540011');
const PATH = '/live/video-360p/7.m4s';

interface Origin {
  url: string;
  requests: { method: string; range: string | undefined }[];
  serve(bytes: Uint8Array, etag: string): void;
  server: Server;
}

async function origin(): Promise<Origin> {
  const responses = new OriginResponses();
  let current: { bytes: Uint8Array; etag: string } = { bytes: new Uint8Array(0), etag: `"0"` };
  const requests: Origin['requests'] = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', range: req.headers.range });
    responses.serveBytes(req, res, current.bytes, 'video/mp4', current.etag, CACHE_SEGMENT, 'segment');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${PATH}`,
    requests,
    serve: (bytes, etag) => (current = { bytes, etag }),
    server,
  };
}

/** The push's datagrams, its first one without the push stream's frames (HEADERS lost, promise kept), and one more lost. */
async function pushWithoutHeaders(body: Uint8Array): Promise<{ datagrams: Uint8Array[]; lostBody: number }> {
  const packetizer = new PushPacketizer({
    sessionId: SESSION_ID,
    authority: 'pushcast.example',
    maxDataFrameSize: 64 * 1024 * 1024,
  });
  const datagrams = await packetizer.push({ path: PATH, body, responseHeaders: { 'content-type': 'video/mp4' } });
  const first = decodeShortHeaderPacket(datagrams[0]!, { dcidLength: SESSION_ID.length });
  const frames = decodeFrames(first.payload) as QuicFrame[];
  const kept = frames.filter((f) => f.kind === 'stream' && f.streamId === 0);
  const pushFrame = frames.find((f) => f.kind === 'stream' && f.streamId !== 0) as { data: Uint8Array };
  assert.ok(kept.length === 1 && pushFrame, 'the first packet holds the promise and the push stream head');
  const promiseOnly = encodeShortHeaderPacket(
    { dcid: SESSION_ID, packetNumber: first.packetNumber, packetNumberLength: first.packetNumberLength },
    encodeFrames(kept),
  );
  // The stream's head (stream type, push ID, HEADERS, DATA header) is lost with it: the body bytes of
  // that frame are what lies past the head, and a middle packet's frame is all body.
  const middle = decodeFrames(decodeShortHeaderPacket(datagrams[5]!, { dcidLength: SESSION_ID.length }).payload);
  const middleBytes = (middle[0] as { data: Uint8Array }).data.length;
  const headBodyBytes = pushFrame.data.length - headLength(pushFrame.data, body);
  return {
    datagrams: [promiseOnly, ...datagrams.slice(1, 5), ...datagrams.slice(6)],
    lostBody: headBodyBytes + middleBytes,
  };
}

/** Bytes of the push stream before the body in `first` (the body's first bytes end it). */
function headLength(first: Uint8Array, body: Uint8Array): number {
  for (let at = 0; at < first.length; at++) if (first.subarray(at).every((b, i) => b === body[i])) return at;
  throw new Error('no body in the first push stream frame');
}

async function incomplete(datagrams: Uint8Array[]): Promise<IncompletePushError> {
  const reassembler = new MulticastReassembler({ sessionId: SESSION_ID, timeoutMs: 200 });
  const failed = new Promise<unknown>((resolve) =>
    reassembler.addEventListener(RESOURCE_PUSH, (e) => (e as ResourcePushEvent).response.then(resolve, resolve)),
  );
  for (const d of datagrams) reassembler.enqueuePacket(d);
  const error = await failed;
  assert.ok(error instanceof IncompletePushError, `the push fails incomplete (${String(error)})`);
  return error;
}

test('a whole push whose HEADERS was lost is repaired by ranges of exactly its missing body bytes, checked against Repr-Digest', async (t) => {
  const body = new Rng(11).bytes(30_000);
  const o = await origin();
  t.after(() => o.server.close());
  o.serve(body, '"seg-7"');
  const { datagrams, lostBody } = await pushWithoutHeaders(body);
  const error = await incomplete(datagrams);
  assert.equal(error.exact, false, 'without the HEADERS, body offsets are not known from the push');
  assert.equal(error.partial.responseFields, undefined);
  assert.ok(error.partial.stream, 'the stream as received is kept for the repair');

  const repaired = await repairPush(o.url, error, { fetch: (u, init) => fetch(u, init) });
  assert.equal(repaired.route, 'repaired', repaired.reason);
  assert.deepEqual(repaired.body, body);
  assert.deepEqual(new Uint8Array(await repaired.response.arrayBuffer()), body);
  assert.equal(repaired.response.headers.get('content-type'), 'video/mp4');
  assert.equal(repaired.unicastBytes, lostBody, 'only the body bytes that were lost');
  assert.equal(o.requests[0]!.method, 'HEAD');
  assert.ok(
    o.requests.slice(1).every((r) => r.method === 'GET' && r.range),
    'then ranges only',
  );
});

test("a push whose spliced body does not match the origin's Repr-Digest is fetched whole instead", async (t) => {
  const body = new Rng(12).bytes(20_000);
  const o = await origin();
  t.after(() => o.server.close());
  const { datagrams } = await pushWithoutHeaders(body);
  const error = await incomplete(datagrams);
  // The origin now has other bytes under this URL (another representation): the pushed bytes do not fit them.
  const other = new Rng(13).bytes(20_000);
  o.serve(other, '"other"');
  const repaired = await repairPush(o.url, error, { fetch: (u, init) => fetch(u, init) });
  assert.equal(repaired.route, 'unicast');
  assert.match(repaired.reason ?? '', /Repr-Digest/);
  assert.deepEqual(repaired.body, other, "the origin's representation, whole");
});
