/**
 * Interoperability with BBC R&D's nghq: a session its `multicast-sender` sent (test/fixtures/nghq,
 * captured from a real run) decodes with pushcast's reassembler, bodies intact, its rsa-sha256
 * signatures verified; and the session ends where nghq's receiver ends it (`connection: close` on the
 * last response). A flipped byte in a signature makes the push disappear.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import test from 'node:test';
import {
  GOAWAY,
  MulticastReassembler,
  PushSignatureVerifier,
  RESOURCE_PUSH,
  type ResourcePushEvent,
} from '../../src/push/index.js';
import { fromHex } from '../wire/support.js';
import { until } from '../support/wait.js';

const FIXTURES = new URL('../../../test/fixtures/nghq/', import.meta.url);

function datagrams(): Uint8Array[] {
  const bytes = readFileSync(new URL('session.bin', FIXTURES));
  const out: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; ) {
    const length = bytes.readUInt32BE(at);
    out.push(new Uint8Array(bytes.subarray(at + 4, at + 4 + length)));
    at += 4 + length;
  }
  return out;
}

async function receive(list: Uint8Array[]) {
  const verifier = await PushSignatureVerifier.fromText(readFileSync(new URL('sender-pub.pem', FIXTURES), 'utf8'));
  const reassembler = new MulticastReassembler({ sessionId: fromHex('c0ffee0123456789'), verifier });
  const got = new Map<string, { response: Response; body: Buffer }>();
  const pending: Promise<void>[] = [];
  let goaway = false;
  reassembler.addEventListener(GOAWAY, () => (goaway = true));
  reassembler.addEventListener(RESOURCE_PUSH, (e) => {
    const { request, response } = e as ResourcePushEvent;
    pending.push(
      response.then(async (r) => void got.set(request.url, { response: r, body: Buffer.from(await r.arrayBuffer()) })),
    );
  });
  for (const d of list) reassembler.enqueuePacket(d);
  // The session's three promises: each is raised, or refused as forged.
  await until('three promises raised or refused', () => pending.length + reassembler.stats.forged >= 3);
  await Promise.all(pending);
  return { got, goaway: () => goaway, stats: reassembler.stats };
}

test("a session sent by nghq's multicast-sender: 3 pushes, bodies intact, rsa-sha256 signatures verified, ended by connection: close", async () => {
  const list = datagrams();
  assert.equal(list.length, 34);
  const { got, goaway, stats } = await receive(list);
  assert.deepEqual([...got.keys()].sort(), [
    'https://example.org/media/data.bin',
    'https://example.org/media/hello.txt',
    'https://example.org/media/sub/page.html',
  ]);
  assert.equal(
    createHash('sha256').update(got.get('https://example.org/media/data.bin')!.body).digest('hex'),
    'c634ce19b3a8e800595cdba7eb20be22da8335621181ac3641d7cb71aceaeca9',
  );
  assert.deepEqual(got.get('https://example.org/media/hello.txt')!.body, readFileSync(new URL('hello.txt', FIXTURES)));
  assert.equal(got.get('https://example.org/media/sub/page.html')!.body.toString(), '<html><body>page</body></html>\n');
  assert.equal(
    got.get('https://example.org/media/hello.txt')!.response.headers.get('content-type'),
    'text/plain; charset=UTF-8',
  );
  assert.equal(stats.forged, 0);
  assert.equal(goaway(), true, 'connection: close on the last response ends the session');
});

test('the same session with one byte of a promise signature changed: that push is never raised', async () => {
  const list = datagrams();
  // The first datagram carries the first PUSH_PROMISE; its signature value is Huffman-coded near the end.
  const tampered = list.map((d) => d.slice());
  tampered[0]![tampered[0]!.length - 20]! ^= 0x01;
  const { got, stats } = await receive(tampered);
  assert.equal(got.size, 2);
  assert.equal(stats.forged, 1);
});
