/**
 * missingBody: the body ranges a repair fetches, from what arrived of a push stream and what the frame
 * chain walk learnt of it. Streams laid out with the src/wire encoders (stream header, HEADERS, DATA…).
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { missingBody, type DataFrameMap, type WalkedPushStream } from '../../src/push/missing-ranges.js';
import { SparseBytes } from '../../src/push/sparse-bytes.js';
import { encodeFieldSection, encodeHttp3Frame, encodePushStreamHeader, type FieldLine } from '../../src/wire/index.js';
import { Rng, concat } from '../wire/support.js';

const FIELDS: FieldLine[] = [
  { name: ':status', value: '200' },
  { name: 'content-length', value: '150' },
];

/** A push stream whose body (150 bytes) is two DATA frames of 100 and 50 bytes. */
function layout() {
  const body = new Rng(7).bytes(150);
  const head = concat(
    encodePushStreamHeader(0),
    encodeHttp3Frame({ kind: 'headers', fieldSection: encodeFieldSection(FIELDS) }),
  );
  const data1 = encodeHttp3Frame({ kind: 'data', data: body.subarray(0, 100) });
  const data2 = encodeHttp3Frame({ kind: 'data', data: body.subarray(100) });
  const bytes = concat(head, data1, data2);
  const header1 = data1.length - 100;
  const header2 = data2.length - 50;
  const frame1: DataFrameMap = { streamStart: head.length + header1, length: 100, bodyStart: 0 };
  const data2At = head.length + data1.length;
  const frame2: DataFrameMap = { streamStart: data2At + header2, length: 50, bodyStart: 100 };
  return { body, bytes, frame1, frame2, data2At, header2 };
}

/** The stream's bytes with the ranges [start, end) left out. */
function held(bytes: Uint8Array, holes: [number, number][]): SparseBytes {
  const out = new SparseBytes();
  let at = 0;
  for (const [start, end] of holes) {
    if (start > at) out.add(at, bytes.subarray(at, start));
    at = end;
  }
  if (at < bytes.length) out.add(at, bytes.subarray(at));
  return out;
}

test('a hole inside a DATA payload: exactly its body bytes are missing; the body has zeros there', () => {
  const l = layout();
  const holeStart = l.frame2.streamStart + 10;
  const stream: WalkedPushStream = {
    bytes: held(l.bytes, [[holeStart, holeStart + 10]]),
    finalSize: l.bytes.length,
    pos: l.bytes.length,
    stage: 'frames',
    fields: FIELDS,
    contentLength: 150,
    data: [l.frame1, l.frame2],
    bodyKnown: 150,
  };
  const m = missingBody(stream);
  assert.deepEqual(m.missing, [{ start: 110, end: 120 }]);
  assert.equal(m.exact, true);
  assert.equal(m.receivedBytes, 140);
  assert.equal(m.totalBytes, 150);
  assert.deepEqual(m.missingStream, [{ start: holeStart, end: holeStart + 10 }]);
  const expected = l.body.slice();
  expected.fill(0, 110, 120);
  assert.deepEqual(m.body, expected);
});

test('a lost DATA frame header whose frame is the rest of the stream: its mapping is derived, exact', () => {
  const l = layout();
  const stream: WalkedPushStream = {
    bytes: held(l.bytes, [[l.data2At, l.data2At + l.header2]]),
    finalSize: l.bytes.length,
    pos: l.data2At, // the walk stopped at the lost header
    stage: 'frames',
    fields: FIELDS,
    contentLength: 150,
    data: [l.frame1],
    bodyKnown: 100,
  };
  const m = missingBody(stream);
  assert.deepEqual(m.missing, [], 'every body byte arrived: only a frame header was lost');
  assert.equal(m.exact, true);
  assert.equal(m.receivedBytes, 150);
  assert.deepEqual(m.body, l.body);
  assert.deepEqual(m.missingStream, [{ start: l.data2At, end: l.data2At + l.header2 }]);
});

test('a lost DATA frame header without content-length: the rest of the body is a superset, the stream ranges stay exact', () => {
  const l = layout();
  const stream: WalkedPushStream = {
    bytes: held(l.bytes, [[l.data2At, l.data2At + l.header2]]),
    finalSize: l.bytes.length,
    pos: l.data2At,
    stage: 'frames',
    fields: FIELDS.slice(0, 1),
    data: [l.frame1],
    bodyKnown: 100,
  };
  const m = missingBody(stream);
  assert.deepEqual(m.missing, [{ start: 100, end: Infinity }]);
  assert.equal(m.exact, false);
  assert.equal(m.totalBytes, undefined);
  assert.equal(m.receivedBytes, 100);
  assert.deepEqual(m.missingStream, [{ start: l.data2At, end: l.data2At + l.header2 }]);
  assert.deepEqual(m.body, l.body.subarray(0, 100));
});

test('no FIN yet: the stream is missing from its highest byte on; the body up to content-length', () => {
  const l = layout();
  const end = l.frame2.streamStart + 20;
  const bytes = new SparseBytes();
  bytes.add(0, l.bytes.subarray(0, end));
  const stream: WalkedPushStream = {
    bytes,
    pos: l.frame2.streamStart + 50,
    stage: 'frames',
    fields: FIELDS,
    contentLength: 150,
    data: [l.frame1, l.frame2],
    bodyKnown: 150,
  };
  const m = missingBody(stream);
  assert.deepEqual(m.missing, [{ start: 120, end: 150 }]);
  assert.equal(m.exact, true);
  assert.deepEqual(m.missingStream, [{ start: end, end: Infinity }]);
});
