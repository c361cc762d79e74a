/**
 * WebTransport over HTTP/3 wire codecs (draft-02, RFC 9297): error-code mapping at the range's ends
 * and around its GREASE gaps, capsules, CLOSE_WEBTRANSPORT_SESSION, quarter-stream-ID datagrams.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import {
  CapsuleReader,
  WireError,
  decodeCloseSession,
  decodeSessionDatagram,
  encodeCapsule,
  encodeCloseSession,
  encodeSessionDatagram,
  http3CodeToWebTransport,
  webTransportCodeToHttp3,
} from '../../src/wire/index.js';

test('application codes map into the HTTP/3 error space and back, skipping GREASE values', () => {
  assert.equal(webTransportCodeToHttp3(0), 0x52e4a40fa8dbn);
  assert.equal(webTransportCodeToHttp3(0xffffffff), 0x52e5ac983162n); // the draft's last value
  for (const code of [0, 1, 0x1d, 0x1e, 0x1f, 42, 1000, 0x7fffffff, 0xffffffff])
    assert.equal(http3CodeToWebTransport(webTransportCodeToHttp3(code)), code);
  // Each value skipped by the mapping is a GREASE code 0x1f·N + 0x21 (RFC 9114 §8.1).
  const first = webTransportCodeToHttp3(0x1d);
  const next = webTransportCodeToHttp3(0x1e);
  assert.equal(next - first, 2n);
  assert.equal((first + 1n - 0x21n) % 0x1fn, 0n);
  assert.equal(http3CodeToWebTransport(first + 1n), undefined);
  assert.equal(http3CodeToWebTransport(0x100n), undefined);
  assert.throws(() => webTransportCodeToHttp3(2 ** 32), WireError);
  assert.throws(() => webTransportCodeToHttp3(-1), WireError);
});

test('capsules arrive whole from any split; past the bound, frame-too-large', () => {
  const a = encodeCapsule(0x2843, new Uint8Array([0, 0, 0, 7, 0x68, 0x69]));
  const b = encodeCapsule(0x17n, new Uint8Array(300).fill(5));
  const stream = new Uint8Array([...a, ...b]);
  for (let split = 0; split <= stream.length; split += 7) {
    const reader = new CapsuleReader();
    reader.push(stream.subarray(0, split));
    const got = [];
    for (let c; (c = reader.next()); ) got.push(c);
    reader.push(stream.subarray(split));
    for (let c; (c = reader.next()); ) got.push(c);
    assert.deepEqual(
      got.map((c) => [c.type, c.value.length]),
      [
        [0x2843n, 6],
        [0x17n, 300],
      ],
    );
    assert.ok(reader.clean);
  }
  const small = new CapsuleReader(100);
  small.push(b.subarray(0, 4));
  assert.throws(
    () => small.next(),
    (e: unknown) => e instanceof WireError && e.code === 'frame-too-large',
  );
});

test('CLOSE_WEBTRANSPORT_SESSION: code and reason; a reason is cut at 1024 bytes on a character boundary', () => {
  const capsule = encodeCloseSession(0xdeadbeef, 'broadcast over');
  const reader = new CapsuleReader();
  reader.push(capsule);
  assert.deepEqual(decodeCloseSession(reader.next()!.value), { code: 0xdeadbeef, reason: 'broadcast over' });
  const long = encodeCloseSession(1, 'é'.repeat(600)); // 1200 bytes of two-byte characters
  const r2 = new CapsuleReader();
  r2.push(long);
  const decoded = decodeCloseSession(r2.next()!.value);
  assert.equal(decoded.reason, 'é'.repeat(512));
  assert.throws(
    () => decodeCloseSession(new Uint8Array(3)),
    (e: unknown) => e instanceof WireError && e.code === 'truncated',
  );
  assert.throws(
    () => decodeCloseSession(new Uint8Array([0, 0, 0, 0, 0xff])),
    (e: unknown) => e instanceof WireError && e.code === 'frame-encoding',
  );
});

test('datagrams carry the quarter stream ID of their session', () => {
  const d = encodeSessionDatagram(4 * 70, new Uint8Array([9, 8]));
  assert.deepEqual([...d], [0x40, 70, 9, 8]);
  assert.deepEqual(decodeSessionDatagram(d), { sessionId: 280, payload: new Uint8Array([9, 8]) });
  assert.throws(() => decodeSessionDatagram(new Uint8Array([0x40])), WireError);
});
