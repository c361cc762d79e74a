/**
 * SegmentCopies, the takeover between two copies of one segment that the relay and the consumer share:
 * a standby takes over at the exact byte where the feeding copy broke, whatever the pieces; it is
 * stopped once the feeding copy ends whole, or past its bound; a copy whose bytes differ from what was
 * handed on is stopped; an orphaned segment takes a later copy; a third copy finds no room.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { SegmentCopies, type StopReason } from '../../src/warp/index.js';

const bytes = (from: number, to: number) => Uint8Array.from({ length: to - from }, (_, i) => (from + i) % 251);

function setup(o: { maxStandbyBytes?: number; check?: boolean } = {}) {
  const out: Uint8Array[] = [];
  const events: string[] = [];
  const copies: SegmentCopies<string, 'lost'> = new SegmentCopies<string, 'lost'>({
    deliver: (b) => out.push(b),
    complete: () => events.push('complete'),
    orphaned: (why) => events.push(`orphaned ${why}`),
    stopCopy: (copy: string, why: StopReason) => events.push(`stop ${copy} ${why}`),
    tookOver: (copy) => events.push(`takeover ${copy}`),
    maxStandbyBytes: o.maxStandbyBytes ?? 1_000_000,
    handedOn: o.check ? () => out : undefined,
  });
  const handedOn = () => Uint8Array.from(out.flatMap((b) => [...b]));
  return { copies, events, handedOn };
}

test('the feeding copy hands on its bytes as they come and completes at FIN', () => {
  const s = setup();
  assert.equal(s.copies.attach('a'), 'feeding');
  s.copies.receive('a', bytes(0, 10));
  assert.deepEqual(s.handedOn(), bytes(0, 10));
  s.copies.receive('a', bytes(10, 25));
  s.copies.end('a');
  assert.deepEqual(s.handedOn(), bytes(0, 25));
  assert.deepEqual(s.events, ['complete']);
  assert.equal(s.copies.finished, true);
  assert.equal(s.copies.attach('late'), undefined, 'a finished segment takes no copy');
});

test('a standby takes over at the exact byte where the feeding copy broke, in other pieces', () => {
  for (const check of [false, true]) {
    const s = setup({ check });
    s.copies.attach('old');
    s.copies.receive('old', bytes(0, 40));
    assert.equal(s.copies.attach('new'), 'standby');
    s.copies.receive('new', bytes(0, 15));
    s.copies.receive('new', bytes(15, 55)); // 15 bytes ahead of the old copy: held
    assert.deepEqual(s.handedOn(), bytes(0, 40), 'the standby hands on nothing while the first lasts');
    s.copies.receive('old', bytes(40, 50));
    s.copies.drop('old', 'lost');
    assert.deepEqual(s.handedOn(), bytes(0, 55), 'from byte 50 on, the standby: every byte once, in order');
    s.copies.receive('new', bytes(55, 70));
    s.copies.end('new');
    assert.deepEqual(s.handedOn(), bytes(0, 70));
    assert.deepEqual(s.events, ['takeover new', 'complete'], `check ${check}`);
  }
});

test('a standby behind the feeding copy catches up from the byte the first stopped at', () => {
  const s = setup({ check: true });
  s.copies.attach('old');
  s.copies.receive('old', bytes(0, 60));
  s.copies.attach('new');
  s.copies.receive('new', bytes(0, 20));
  s.copies.drop('old', 'lost');
  assert.deepEqual(s.handedOn(), bytes(0, 60), 'nothing handed on twice');
  s.copies.receive('new', bytes(20, 80));
  s.copies.end('new');
  assert.deepEqual(s.handedOn(), bytes(0, 80));
  assert.deepEqual(s.events, ['takeover new', 'complete']);
});

test('once the feeding copy ends whole the standby is stopped; a standby past its bound is stopped', () => {
  const s = setup({ maxStandbyBytes: 30 });
  s.copies.attach('a');
  s.copies.receive('a', bytes(0, 10));
  s.copies.attach('b');
  s.copies.receive('b', bytes(0, 10));
  s.copies.end('a');
  assert.deepEqual(s.events, ['stop b not-needed', 'complete']);

  const t = setup({ maxStandbyBytes: 30 });
  t.copies.attach('a');
  t.copies.receive('a', bytes(0, 10));
  t.copies.attach('b');
  t.copies.receive('b', bytes(0, 40)); // 30 ahead: at the bound, held
  assert.deepEqual(t.events, []);
  t.copies.receive('b', bytes(40, 41));
  assert.deepEqual(t.events, ['stop b standby-bound']);
  assert.equal(t.copies.attach('c'), 'standby', 'room for another standby');
  t.copies.drop('a', 'lost');
  assert.deepEqual(t.events, ['stop b standby-bound', 'takeover c']);
});

test('a copy whose bytes differ from what was handed on is stopped; without a standby the segment is orphaned', () => {
  const s = setup({ check: true });
  s.copies.attach('a');
  s.copies.receive('a', bytes(0, 20));
  s.copies.attach('b');
  const wrong = bytes(0, 10);
  wrong[7] = 255;
  s.copies.receive('b', wrong);
  assert.deepEqual(s.events, ['stop b mismatch']);
  // The feeding copy breaks: nothing waits, the segment is orphaned; a later copy takes over.
  s.copies.drop('a', 'lost');
  assert.deepEqual(s.events.slice(1), ['orphaned lost']);
  assert.equal(s.copies.orphaned, true);
  assert.equal(s.copies.attach('c'), 'feeding');
  s.copies.receive('c', bytes(0, 30));
  s.copies.end('c');
  assert.deepEqual(s.handedOn(), bytes(0, 30));
  assert.deepEqual(s.events.slice(2), ['takeover c', 'complete']);
  // A copy that ends shorter than what was handed on differs too.
  const t = setup({ check: true });
  t.copies.attach('a');
  t.copies.receive('a', bytes(0, 20));
  t.copies.drop('a', 'lost');
  t.copies.attach('short');
  t.copies.receive('short', bytes(0, 12));
  t.copies.end('short');
  assert.deepEqual(t.events, ['orphaned lost', 'takeover short', 'stop short mismatch', 'orphaned mismatch']);
});

test('two copies at most; stop() lets go of every copy still reading', () => {
  const s = setup();
  s.copies.attach('a');
  s.copies.attach('b');
  assert.equal(s.copies.hasRoom, false);
  assert.equal(s.copies.attach('c'), undefined);
  s.copies.receive('c', bytes(0, 5));
  assert.deepEqual(s.handedOn(), new Uint8Array(0), 'a copy not attached is ignored');
  s.copies.stop();
  assert.deepEqual(s.events, ['stop a not-needed', 'stop b not-needed']);
  assert.equal(s.copies.finished, true);
});
