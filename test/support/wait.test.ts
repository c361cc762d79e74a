/**
 * The tests' one way to wait: it resolves with what it waited for, and on timeout it throws an error
 * naming what was awaited (never returns as if it had happened).
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import test from 'node:test';
import { WaitTimeoutError, sleepUntil, until, untilEvent, wallClock, within } from './wait.js';

test('until resolves with the first value that is not false, undefined or null, sync or async', async () => {
  let n = 0;
  assert.equal(await until('n to reach 3', () => ++n >= 3 && n), 3);
  let m = 0;
  assert.deepEqual(await until('an object', async () => (++m < 2 ? undefined : { m })), { m: 2 });
  assert.equal(await until('zero counts', () => 0), 0);
});

test('until throws a WaitTimeoutError naming what it awaited, with the detail, after the deadline', async () => {
  const started = Date.now();
  await assert.rejects(
    until('the impossible', () => false, { timeoutMs: 50, detail: () => 'state: stuck' }),
    (e: unknown) =>
      e instanceof WaitTimeoutError && e.message === 'timed out after 50 ms waiting for the impossible: state: stuck',
  );
  assert.ok(Date.now() - started >= 50);
  await assert.rejects(
    until('a failing probe', () => {
      throw new Error('probe broke');
    }),
    /probe broke/,
  );
});

test('within passes the outcome through, or times out naming what it awaited', async () => {
  assert.equal(await within('a value', Promise.resolve(7)), 7);
  await assert.rejects(within('a failure', Promise.reject(new Error('no'))), /no/);
  await assert.rejects(
    within('a promise that never settles', new Promise(() => {}), { timeoutMs: 20 }),
    /timed out after 20 ms waiting for a promise that never settles/,
  );
});

test('untilEvent resolves with the arguments of the first event its filter accepts, from an EventEmitter or an EventTarget', async () => {
  const emitter = new EventEmitter();
  const fired = untilEvent<[number, string]>('an even number', emitter, 'n', { filter: (n) => n % 2 === 0 });
  emitter.emit('n', 1, 'one');
  emitter.emit('n', 2, 'two');
  assert.deepEqual(await fired, [2, 'two']);
  assert.equal(emitter.listenerCount('n'), 0, 'the listener is removed');
  const target = new EventTarget();
  const event = untilEvent<[Event]>('a ping', target, 'ping');
  target.dispatchEvent(new Event('ping'));
  assert.equal((await event)[0].type, 'ping');
  await assert.rejects(untilEvent('a silent event', emitter, 'never', { timeoutMs: 20 }), WaitTimeoutError);
  assert.equal(emitter.listenerCount('never'), 0, 'the listener is removed on timeout too');
});

test('sleepUntil returns at the time given, not before', async () => {
  const target = wallClock() + 30;
  await sleepUntil(target, { spinMs: 5 });
  assert.ok(wallClock() >= target);
  const past = wallClock() - 1000;
  await sleepUntil(past);
});
