import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRange } from '../../src/origin/http-range.js';

test('single byte ranges resolve against the representation size (RFC 9110 §14.1.2)', () => {
  assert.deepEqual(parseRange('bytes=0-9', 100), { start: 0, end: 9 });
  assert.deepEqual(parseRange('bytes=90-', 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=-10', 100), { start: 90, end: 99 });
  assert.deepEqual(
    parseRange('bytes=-1000', 100),
    { start: 0, end: 99 },
    'a suffix longer than the body is the whole body',
  );
  assert.deepEqual(parseRange('bytes=50-1000', 100), { start: 50, end: 99 }, 'the last position is clamped');
});

test('ranges that start past the end are unsatisfiable (416)', () => {
  assert.equal(parseRange('bytes=100-', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=-0', 100), 'unsatisfiable');
});

test('what a server may ignore is ignored: other units, several ranges, invalid or absurd headers', () => {
  assert.equal(parseRange(undefined, 100), undefined);
  assert.equal(parseRange('items=0-1', 100), undefined);
  assert.equal(parseRange('bytes=0-1,5-6', 100), undefined);
  assert.equal(parseRange('bytes=9-1', 100), undefined);
  assert.equal(parseRange('bytes=-', 100), undefined);
  assert.equal(parseRange(`bytes=${'9'.repeat(500)}-`, 100), undefined);
});

test('an empty representation (RFC 9110 §14.1.2, §15.5.17): a suffix range is answered whole, any other 416', () => {
  assert.equal(
    parseRange('bytes=-5', 0),
    undefined,
    'satisfiable, yet no Content-Range names 0 bytes: 200 with the empty body, not {start: 0, end: -1}',
  );
  assert.equal(parseRange('bytes=-0', 0), 'unsatisfiable', 'a suffix of length 0 is never satisfiable');
  assert.equal(parseRange('bytes=0-', 0), 'unsatisfiable');
  assert.equal(parseRange('bytes=0-0', 0), 'unsatisfiable');
  assert.equal(parseRange('bytes=3-7', 0), 'unsatisfiable');
  assert.equal(parseRange('bytes=1-0', 0), undefined, 'invalid (last before first): ignored');
});
