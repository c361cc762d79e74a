/**
 * The urgency scheduler of the WebSocket fallback on a transport built by hand (its buffer drains when
 * the test says so): lowest urgency first, round-robin frame by frame among equal urgencies, frames cut
 * at the bound, nothing handed over past the high-water mark, writes that resolve only once the
 * transport is below the mark again, the send queue's bound, a priority change, a dropped stream, FIN.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import {
  SendQueueFullError,
  StreamQueue,
  UrgencyScheduler,
  clampUrgency,
  type FrameTransport,
} from '../../src/webtransport/index.js';

/** A transport whose buffer holds every frame until `drain()`. */
class HeldTransport implements FrameTransport {
  bufferedAmount = 0;
  open = true;
  readonly frames: { id: number; bytes: number; fin: boolean }[] = [];
  private readonly sentCallbacks: (() => void)[] = [];

  send(id: number, data: Uint8Array, fin: boolean, sent: () => void): void {
    this.frames.push({ id, bytes: data.length, fin });
    this.bufferedAmount += data.length;
    this.sentCallbacks.push(sent);
  }

  /** The network took everything: the buffer is empty and every frame's `sent` runs. */
  drain(): void {
    this.bufferedAmount = 0;
    for (const sent of this.sentCallbacks.splice(0)) sent();
  }
}

/** The scheduler runs after the current task: let it. */
const turn = () => new Promise((resolve) => setImmediate(resolve));

function setup(limits: Partial<{ highWaterMark: number; maxFrameBytes: number; maxQueuedBytes: number }> = {}) {
  const transport = new HeldTransport();
  const fins: number[] = [];
  const scheduler = new UrgencyScheduler(
    transport,
    { highWaterMark: 1000, maxFrameBytes: 100, maxQueuedBytes: 1_000_000, ...limits },
    (q) => fins.push(q.id),
  );
  return { transport, scheduler, fins };
}

test('lowest urgency first; equal urgencies alternate frame by frame; frames cut at the bound', async () => {
  const { transport, scheduler, fins } = setup({ highWaterMark: 10_000 });
  const low = new StreamQueue(1, 6);
  const a = new StreamQueue(2, 3);
  const b = new StreamQueue(3, 3);
  const urgent = new StreamQueue(4, 0);
  const writes = [
    scheduler.write(low, new Uint8Array(150), true),
    scheduler.write(a, new Uint8Array(250), true),
    scheduler.write(b, new Uint8Array(200), false),
    scheduler.write(urgent, new Uint8Array(100), true),
  ];
  await turn();
  assert.deepEqual(
    transport.frames.map((f) => `${f.id}:${f.bytes}${f.fin ? ' fin' : ''}`),
    ['4:100 fin', '2:100', '3:100', '2:100', '3:100', '2:50 fin', '1:100', '1:50 fin'],
  );
  await Promise.all(writes);
  assert.deepEqual(fins, [4, 2, 1]);
  assert.equal(scheduler.queuedBytes, 0);
});

test('past the high-water mark nothing more is handed over, and writes resolve once the transport is below it', async () => {
  const { transport, scheduler } = setup({ highWaterMark: 300 });
  const q = new StreamQueue(1);
  let done = false;
  const write = scheduler.write(q, new Uint8Array(1000), true).then(() => (done = true));
  await turn();
  assert.equal(transport.frames.length, 3, 'three frames of 100 bytes reach the 300-byte mark');
  assert.equal(scheduler.queuedBytes, 700);
  for (let i = 0; i < 2; i++) {
    transport.drain();
    await turn();
  }
  assert.equal(transport.frames.length, 9);
  assert.equal(done, false, 'the last frame is not handed over yet');
  transport.drain();
  await turn();
  assert.equal(transport.frames.length, 10);
  await write; // the last frame handed over, and the transport holds 100 bytes: below the mark
  assert.equal(done, true);

  transport.drain();
  let second = false;
  void scheduler.write(new StreamQueue(2), new Uint8Array(300), false).then(() => (second = true));
  await turn();
  assert.equal(transport.bufferedAmount, 300);
  assert.equal(second, false, 'every byte handed over, but the transport is at the mark: the writer waits');
  transport.drain();
  await turn();
  assert.equal(second, true);
});

test('a higher urgency overtakes what waits; a priority change moves a stream; a dropped stream leaves the queue', async () => {
  const { transport, scheduler } = setup({ highWaterMark: 100 });
  const bulk = new StreamQueue(1, 7);
  const other = new StreamQueue(2, 7);
  void scheduler.write(bulk, new Uint8Array(500), true);
  const dropped = scheduler.write(other, new Uint8Array(500), true);
  await turn();
  assert.deepEqual(
    transport.frames.map((f) => f.id),
    [1],
  );
  const urgent = new StreamQueue(3, 1);
  void scheduler.write(urgent, new Uint8Array(200), true);
  scheduler.setPriority(other, 0, false);
  transport.drain();
  await turn();
  transport.drain();
  await turn();
  assert.deepEqual(
    transport.frames.map((f) => f.id),
    [1, 2, 2],
    'stream 2, moved to urgency 0, goes before 3 (urgency 1) and 1 (urgency 7)',
  );
  const error = new Error('reset');
  scheduler.drop(other, error);
  await assert.rejects(dropped, (e: unknown) => e === error);
  for (let i = 0; i < 10; i++) {
    transport.drain();
    await turn();
  }
  assert.deepEqual(
    transport.frames.map((f) => f.id),
    [1, 2, 2, 3, 3, 1, 1, 1, 1],
  );
  assert.equal(scheduler.queuedBytes, 0);
});

test('the send queue is bounded: a write past it is refused whole, unless the queue is empty', async () => {
  const { scheduler } = setup({ highWaterMark: 0, maxQueuedBytes: 1000 });
  const q = new StreamQueue(1);
  void scheduler.write(q, new Uint8Array(5000), false); // an empty queue takes any one write
  await assert.rejects(
    scheduler.write(q, new Uint8Array(1), false),
    (e: unknown) => e instanceof SendQueueFullError && e.queuedBytes === 5000 && e.maxQueuedBytes === 1000,
  );
  assert.equal(scheduler.queuedBytes, 5000);
  assert.equal(clampUrgency(undefined), 3);
  assert.equal(clampUrgency(9), 7);
  assert.equal(clampUrgency(-1), 0);
});
