/** TokenBucket with a fake clock: long-run rate, burst bound, debt scheduling. */
import assert from 'node:assert/strict';
import test from 'node:test';
import { TokenBucket } from '../../src/multicast/index.js';
import { Rng } from '../wire/support.js';

function fakeClock() {
  let t = 1_000;
  return {
    now: () => t,
    advance: (ms: number) => (t += ms),
    get t() {
      return t;
    },
  };
}

test('a sender that always sends as soon as allowed runs at the configured rate (within 1 %)', () => {
  for (const rate of [1e6, 8e6, 100e6]) {
    const clock = fakeClock();
    const bucket = new TokenBucket({ rateBitsPerSecond: rate, burstBytes: 20_000, now: clock.now });
    const start = clock.t;
    let bytes = 0;
    const rng = new Rng(rate);
    while (clock.t - start < 20_000) {
      const size = rng.range(100, 1470);
      clock.advance(bucket.delayFor(size));
      bytes += size;
    }
    const measured = (bytes * 8) / ((clock.t - start) / 1000);
    assert.ok(Math.abs(measured / rate - 1) < 0.01, `${rate} bit/s configured, ${measured.toFixed(0)} measured`);
  }
});

test('bursts are bounded: in any window T at most burst + rate·T bytes become sendable', () => {
  const clock = fakeClock();
  const rate = 8e6; // 1000 bytes/ms
  const burst = 15_000;
  const bucket = new TokenBucket({ rateBitsPerSecond: rate, burstBytes: burst, now: clock.now });
  const rng = new Rng(5);
  const sends: { at: number; size: number }[] = [];
  for (let i = 0; i < 5_000; i++) {
    if (rng.bool(0.02)) clock.advance(rng.range(1, 200)); // idle now and then: the bucket refills, capped
    const size = rng.range(50, 1470);
    const delay = bucket.delayFor(size);
    assert.ok(delay >= 0);
    sends.push({ at: clock.t + delay, size });
    if (rng.bool(0.5)) clock.advance(delay); // a caller that waits, or one that queues ahead
  }
  sends.sort((a, b) => a.at - b.at);
  // Sliding windows starting at each send.
  const perMs = rate / 8 / 1000;
  let worst = -Infinity;
  for (let i = 0; i < sends.length; i++) {
    let sum = 0;
    for (let j = i; j < sends.length && j < i + 400; j++) {
      sum += sends[j]!.size;
      worst = Math.max(worst, sum - (burst + perMs * (sends[j]!.at - sends[i]!.at)));
    }
  }
  assert.ok(worst <= 1e-6, `a window exceeded burst + rate·T by ${worst} bytes`);
});

test('after idling, exactly the burst goes without delay; then the debt is paid at the rate', () => {
  const clock = fakeClock();
  const bucket = new TokenBucket({ rateBitsPerSecond: 8e6, burstBytes: 10_000, now: clock.now });
  clock.advance(60_000);
  let free = 0;
  while (bucket.delayFor(1_000) === 0) free += 1_000;
  assert.equal(free, 10_000);
  // That 11th kB is owed: 1 ms at 1000 bytes/ms; the next one queues behind it.
  assert.equal(bucket.delayFor(1_000), 2);
  clock.advance(2);
  assert.equal(bucket.available, 0);
  // A request larger than the burst is allowed and waits for its whole debt.
  assert.equal(bucket.delayFor(50_000), 50);
  assert.throws(() => new TokenBucket({ rateBitsPerSecond: 0 }), RangeError);
  assert.throws(() => bucket.delayFor(-1), RangeError);
});
