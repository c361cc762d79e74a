/**
 * The Warp consumer (§3.3, §3.4) fed by hand-made streams on a fake clock: decode order from any
 * arrival order, dependencies, skipping a missing or stalled segment when the next one is due on the
 * timeline (or has waited the buffer duration), with STOP_SENDING, stopping segments older than what is
 * playing or was played, duplicates, malformed streams, and the memory bound.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { writeMediaDataHeader, writeMovieFragment } from '../../src/media/bmff/writer.js';
import {
  WarpConsumer,
  type IncomingWarpStream,
  type WarpCatalog,
  type WarpConsumerTimers,
} from '../../src/warp/index.js';
import { encodeWarpMessage } from '../../src/wire/index.js';

const catalog: WarpCatalog = {
  version: 1,
  broadcast: 'live',
  availabilityStartTime: 0,
  segmentDuration: 2,
  orderPolicy: 'newest-first',
  tracks: [{ id: 'video', kind: 'video', codec: 'avc1.42c01e', timescale: 1000, bandwidth: 1e6, initId: 1 }],
};

function fragment(decodeTime: number, size = 100): Uint8Array {
  const moof = writeMovieFragment({
    sequenceNumber: 1,
    trackId: 1,
    baseMediaDecodeTime: decodeTime,
    samples: [{ duration: 2000, size, flags: 0, compositionOffset: 0 }],
    mediaDataHeaderSize: 8,
  });
  return new Uint8Array([...moof, ...writeMediaDataHeader(size), ...new Uint8Array(size).fill(decodeTime / 2000)]);
}

/** A stream fed by the test: `push` bytes, `end` it; records STOP_SENDING. */
class FakeStream implements IncomingWarpStream {
  stopped: number | undefined;
  private readonly chunks: Uint8Array[] = [];
  private ended = false;
  private wake: (() => void) | undefined;

  push(bytes: Uint8Array): this {
    this.chunks.push(bytes);
    this.wake?.();
    return this;
  }

  end(): this {
    this.ended = true;
    this.wake?.();
    return this;
  }

  stop(code: number): void {
    this.stopped = code;
    this.end();
  }

  /** The stream breaks (its session closed): the reader gets an error. */
  fail(): this {
    this.failed = true;
    this.wake?.();
    return this;
  }

  private failed = false;

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    for (;;) {
      const c = this.chunks.shift();
      if (c) {
        yield c;
        continue;
      }
      if (this.failed) throw new Error('session closed');
      if (this.ended) return;
      await new Promise<void>((r) => (this.wake = r));
    }
  }
}

/** The consumer's clock and interval timer, moved by the test: `advance` runs each tick that falls due, in order. */
class FakeClock implements WarpConsumerTimers {
  private readonly intervals = new Map<number, { every: number; next: number; callback: () => void }>();
  private nextHandle = 1;

  constructor(public time: number) {}

  setInterval = (callback: () => void, ms: number): unknown => {
    const handle = this.nextHandle++;
    this.intervals.set(handle, { every: ms, next: this.time + ms, callback });
    return handle;
  };

  clearInterval = (handle: unknown): void => {
    this.intervals.delete(handle as number);
  };

  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      let due: { every: number; next: number; callback: () => void } | undefined;
      for (const i of this.intervals.values()) if (i.next <= end && (!due || i.next < due.next)) due = i;
      if (!due) break;
      this.time = due.next;
      due.next += due.every;
      due.callback();
    }
    this.time = end;
  }
}

const segment = (n: number, parts = 1) => {
  const s = new FakeStream().push(
    encodeWarpMessage({ kind: 'headers', id: 64 * (n + 1), order: -n, depends: [1], path: `/live/video/${n}.m4s` }),
  );
  for (let i = 0; i < parts; i++) s.push(encodeWarpMessage({ kind: 'segment', data: fragment(n * 2000) }));
  return s;
};

function setup(bufferMs = 1000, startAt = 0) {
  const clock = new FakeClock(startAt);
  const log: string[] = [];
  const consumer = new WarpConsumer(
    {
      init: (t) => log.push(`init ${t.id}`),
      data: (s) => log.push(`data ${s.path}`),
      end: (s, complete) => log.push(`end ${s.path} ${complete ? 'whole' : 'cut'}`),
      skip: (track, time, why) => log.push(`skip ${track}@${time} ${why}`),
    },
    { bufferMs, now: () => clock.time, timers: clock, maxBufferedBytes: 2000 },
  );
  /** Moves the clock on (the consumer's periodic checks run as they fall due), then lets the streams' reads settle. */
  const tick = async (ms = 0) => {
    clock.advance(ms);
    await new Promise((r) => setImmediate(r));
  };
  const start = async () => {
    void consumer.addStream(
      new FakeStream()
        .push(encodeWarpMessage({ kind: 'headers', id: 0 }))
        .push(encodeWarpMessage({ kind: 'app', data: new TextEncoder().encode(JSON.stringify(catalog)) }))
        .end(),
    );
    void consumer.addStream(
      new FakeStream()
        .push(encodeWarpMessage({ kind: 'headers', id: 1 }))
        .push(encodeWarpMessage({ kind: 'segment', data: new Uint8Array([1, 2, 3]) }))
        .end(),
    );
    await tick();
  };
  return { consumer, log, tick, start, clock };
}

test('segments arriving out of order are handed on in decode order, after their init', async (t) => {
  const c = setup();
  t.after(() => c.consumer.close());
  // Segment 1 arrives before the catalog and the init: it waits for both (§3.3).
  const s1 = segment(1);
  void c.consumer.addStream(s1.end());
  await c.tick();
  assert.deepEqual(c.log, []);
  await c.start();
  const s3 = segment(3);
  const s2 = segment(2);
  void c.consumer.addStream(s3.end());
  void c.consumer.addStream(s2.end());
  await c.tick();
  assert.deepEqual(c.log, [
    'init video',
    'data /live/video/1.m4s',
    'end /live/video/1.m4s whole',
    'data /live/video/2.m4s',
    'end /live/video/2.m4s whole',
    'data /live/video/3.m4s',
    'end /live/video/3.m4s whole',
  ]);
  assert.equal(c.consumer.stats().segmentsSkipped, 0);
});

test('a missing segment is skipped once a later one has waited the buffer duration; a late copy is stopped', async (t) => {
  const c = setup(1000);
  t.after(() => c.consumer.close());
  await c.start();
  void c.consumer.addStream(segment(1).end());
  await c.tick();
  void c.consumer.addStream(segment(3).end()); // 2 is missing
  await c.tick();
  await c.tick(500);
  assert.ok(!c.log.includes('data /live/video/3.m4s'), 'within the buffer duration, segment 3 waits for 2');
  await c.tick(600);
  assert.ok(c.log.includes('skip video@4000 missing'));
  assert.ok(c.log.includes('end /live/video/3.m4s whole'));
  const late = segment(2);
  void c.consumer.addStream(late.end());
  await c.tick();
  assert.equal(late.stopped, 0, 'STOP_SENDING for a segment older than what was played');
  assert.ok(c.log.includes('skip video@4000 old'));
  assert.equal(c.consumer.stats().segmentsSkipped, 1);
});

test('a stalled segment is cut and its stream stopped once the next one has waited the buffer duration', async (t) => {
  const c = setup(1000);
  t.after(() => c.consumer.close());
  await c.start();
  const stalled = segment(1); // its first fragment, then nothing
  void c.consumer.addStream(stalled);
  await c.tick();
  void c.consumer.addStream(segment(2).end());
  await c.tick();
  await c.tick(500);
  assert.equal(stalled.stopped, undefined);
  await c.tick(600);
  assert.equal(stalled.stopped, 0);
  assert.ok(c.log.includes('skip video@2000 stalled'));
  assert.ok(c.log.includes('end /live/video/1.m4s cut'));
  assert.ok(c.log.includes('end /live/video/2.m4s whole'));
});

test('duplicates, malformed streams and the memory bound', async (t) => {
  const c = setup(10_000);
  t.after(() => c.consumer.close());
  await c.start();
  void c.consumer.addStream(segment(1).end());
  await c.tick();
  const copy = segment(1);
  void c.consumer.addStream(copy.end());
  await c.tick();
  assert.equal(copy.stopped, 0);
  assert.equal(c.consumer.stats().duplicates, 1);
  const garbage = new FakeStream().push(new Uint8Array([0x01, 0x05, 1, 2, 3, 4, 5])).end(); // SEGMENT before HEADERS
  await c.consumer.addStream(garbage);
  assert.equal(garbage.stopped, 0);
  assert.equal(c.consumer.stats().malformed, 1);
  // 2 is missing, so 3, 4, 5… wait; past 2000 bytes buffered the newest waiting one is dropped.
  const waiting = [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15].map((n) => segment(n));
  for (const s of waiting) void c.consumer.addStream(s.end());
  await c.tick();
  assert.ok(c.consumer.stats().bufferedBytes <= 2000, `bounded: ${c.consumer.stats().bufferedBytes}`);
  assert.ok(
    waiting.at(-1)!.stopped === 0 && waiting[0]!.stopped === undefined,
    'the newest waiting segments were dropped first',
  );
});

test('a cut-short segment keeps arriving until the next one is due on the timeline, then is cut', async (t) => {
  // The catalog's timeline starts at 0 ms: segment n (2 s each) starts at media time 2n s. Buffer 1 s.
  const c = setup(1000, 4100);
  t.after(() => c.consumer.close());
  await c.start();
  const two = segment(2); // its first fragment, then slowly the rest
  void c.consumer.addStream(two);
  await c.tick();
  await c.tick(2200); // 6.3 s: segment 3 (due at 6 s + 1 s buffer) arrives while 2 is incomplete
  void c.consumer.addStream(segment(3).end());
  await c.tick();
  two.push(encodeWarpMessage({ kind: 'segment', data: fragment(4100) }).subarray(0));
  await c.tick(500); // 6.8 s: 2 may still be shown, so its media goes on
  assert.equal(two.stopped, undefined);
  assert.equal(
    c.log.filter((l) => l === 'data /live/video/2.m4s').length,
    2,
    'what still came of segment 2 was handed on',
  );
  assert.ok(!c.log.includes('data /live/video/3.m4s'));
  await c.tick(100); // 6.9 s = 3's due time minus the switch margin: 2 is cut (well before 3 has waited the buffer duration)
  assert.equal(two.stopped, 0);
  const at = (line: string) => c.log.indexOf(line);
  assert.ok(
    at('skip video@4000 stalled') >= 0 &&
      at('skip video@4000 stalled') < at('end /live/video/2.m4s cut') &&
      at('end /live/video/2.m4s cut') < at('data /live/video/3.m4s'),
    c.log.join('\n'),
  );
});

test('a segment older than the one playing is stopped, not played after it', async (t) => {
  const c = setup(1000, 8100);
  t.after(() => c.consumer.close());
  await c.start();
  const three = segment(3);
  void c.consumer.addStream(three);
  await c.tick();
  assert.ok(c.log.includes('data /live/video/3.m4s'));
  const two = segment(2); // newest-first: the older GoP's stream comes second
  void c.consumer.addStream(two.end());
  await c.tick();
  assert.equal(two.stopped, 0);
  assert.ok(c.log.includes('skip video@4000 old'));
  assert.ok(!c.log.includes('data /live/video/2.m4s'));
});

test('GOAWAY: a second copy waits on standby and takes over where the first copy broke off', async (t) => {
  const c = setup(10_000);
  t.after(() => c.consumer.close());
  const got: Uint8Array[] = [];
  const consumer = new WarpConsumer(
    {
      data: (_s, bytes) => got.push(bytes.slice()),
      end: (s, whole) => c.log.push(`end ${s.path} ${whole ? 'whole' : 'cut'}`),
    },
    { bufferMs: 10_000, now: () => 0, timers: c.clock },
  );
  t.after(() => consumer.close());
  void consumer.addStream(
    new FakeStream()
      .push(encodeWarpMessage({ kind: 'headers', id: 0 }))
      .push(encodeWarpMessage({ kind: 'app', data: new TextEncoder().encode(JSON.stringify(catalog)) }))
      .end(),
  );
  void consumer.addStream(
    new FakeStream()
      .push(encodeWarpMessage({ kind: 'headers', id: 1 }))
      .push(encodeWarpMessage({ kind: 'segment', data: new Uint8Array([1]) }))
      .end(),
  );
  const parts = [fragment(2000, 50), fragment(2000, 60), fragment(2000, 70)];
  const headers = encodeWarpMessage({ kind: 'headers', id: 128, order: -1, depends: [1], path: '/live/video/1.m4s' });
  // The old session's copy: two fragments, then its session closes.
  const old = new FakeStream()
    .push(headers)
    .push(encodeWarpMessage({ kind: 'segment', data: parts[0]! }))
    .push(encodeWarpMessage({ kind: 'segment', data: parts[1]! }));
  void consumer.addStream(old);
  await c.tick();
  // The new session's copy, from the start, in other pieces: the first fragment and half of the second.
  const whole = new Uint8Array([...parts[0]!, ...parts[1]!, ...parts[2]!]);
  const cut = parts[0]!.length + 30;
  const copy = new FakeStream()
    .push(headers)
    .push(encodeWarpMessage({ kind: 'segment', data: parts[0]! }))
    .push(encodeWarpMessage({ kind: 'segment', data: whole.subarray(parts[0]!.length, cut) }));
  void consumer.addStream(copy);
  await c.tick();
  assert.equal(copy.stopped, undefined, 'kept on standby, not stopped');
  assert.equal(consumer.stats().duplicates, 1);
  old.fail();
  await c.tick();
  copy.push(encodeWarpMessage({ kind: 'segment', data: whole.subarray(cut) })).end();
  await c.tick();
  assert.equal(consumer.stats().takeovers, 1);
  assert.deepEqual(c.log, ['end /live/video/1.m4s whole']);
  assert.deepEqual(Buffer.concat(got), Buffer.from(whole), 'every byte once, in order');

  // A copy of a segment whose first copy ends whole is stopped then.
  const first = new FakeStream()
    .push(encodeWarpMessage({ kind: 'headers', id: 192, order: -2, depends: [1] }))
    .push(encodeWarpMessage({ kind: 'segment', data: fragment(4000) }));
  void consumer.addStream(first);
  await c.tick();
  const second = new FakeStream()
    .push(encodeWarpMessage({ kind: 'headers', id: 192, order: -2, depends: [1] }))
    .push(encodeWarpMessage({ kind: 'segment', data: fragment(4000) }));
  void consumer.addStream(second);
  await c.tick();
  assert.equal(second.stopped, undefined);
  first.end();
  await c.tick();
  assert.equal(second.stopped, 0);
});

test('a rendition switch: one decode order across renditions, the new init handed over at the switch point, arrivals reported', async () => {
  const clock = new FakeClock(0);
  const log: string[] = [];
  const two: WarpCatalog = {
    ...catalog,
    tracks: [
      ...catalog.tracks,
      { id: 'video-lo', kind: 'video', codec: 'avc1.42c01e', timescale: 1000, bandwidth: 5e5, initId: 2 },
    ],
  };
  const consumer = new WarpConsumer(
    {
      init: (t) => log.push(`init ${t.id}`),
      data: (s) => log.push(`data ${s.path}`),
      end: (s, complete) => log.push(`end ${s.path} ${complete ? 'whole' : 'cut'}`),
      skip: (track, time, why) => log.push(`skip ${track}@${time} ${why}`),
      arrived: (s, a) => log.push(`arrived ${s.path} ${a.bytes} B ${a.complete ? 'whole' : 'cut'}`),
    },
    { bufferMs: 3000, now: () => clock.time, timers: clock },
  );
  const tick = async (ms = 0) => {
    clock.advance(ms);
    await new Promise((r) => setImmediate(r));
  };
  const init = (id: number) =>
    new FakeStream()
      .push(encodeWarpMessage({ kind: 'headers', id }))
      .push(encodeWarpMessage({ kind: 'segment', data: new Uint8Array([id]) }))
      .end();
  const media = (track: string, initId: number, n: number) =>
    new FakeStream()
      .push(
        encodeWarpMessage({
          kind: 'headers',
          id: 64 * (n + 1) + initId,
          depends: [initId],
          path: `/live/${track}/${n}.m4s`,
        }),
      )
      .push(encodeWarpMessage({ kind: 'segment', data: fragment(n * 2000) }));
  void consumer.addStream(
    new FakeStream()
      .push(encodeWarpMessage({ kind: 'headers', id: 0 }))
      .push(encodeWarpMessage({ kind: 'app', data: new TextEncoder().encode(JSON.stringify(two)) }))
      .end(),
  );
  void consumer.addStream(init(1));
  const old = media('video', 1, 1);
  void consumer.addStream(old);
  await tick(2100);
  // The new rendition's segment 2 comes before its init and before the old rendition's segment 1 is done.
  void consumer.addStream(media('video-lo', 2, 2).end());
  await tick(100);
  void consumer.addStream(init(2));
  await tick(100);
  assert.deepEqual(log, ['init video', 'data /live/video/1.m4s', 'arrived /live/video-lo/2.m4s 208 B whole']);
  old.push(encodeWarpMessage({ kind: 'segment', data: fragment(2000 - 1000) })).end();
  await tick(100);
  void consumer.addStream(media('video-lo', 2, 3).end());
  await tick(100);
  assert.deepEqual(log.slice(3), [
    'data /live/video/1.m4s',
    'arrived /live/video/1.m4s 416 B whole',
    'end /live/video/1.m4s whole',
    'init video-lo',
    'data /live/video-lo/2.m4s',
    'end /live/video-lo/2.m4s whole',
    'data /live/video-lo/3.m4s',
    'arrived /live/video-lo/3.m4s 208 B whole',
    'end /live/video-lo/3.m4s whole',
  ]);
  assert.equal(consumer.stats().switches, 1);
  assert.equal(consumer.stats().segmentsSkipped, 0);
  consumer.close();
});

test('segments longer or shorter than the catalog duration (key frames where the encoder put them) play one after another by number, none skipped or stopped as old', async (t) => {
  const c = setup(1000);
  t.after(() => c.consumer.close());
  await c.start();
  // Segments 1, 2, 3 and 4 start at 0, 3.12, 4 and 7.2 s against a 2 s catalog duration.
  const at = (n: number, ms: number) =>
    new FakeStream()
      .push(
        encodeWarpMessage({ kind: 'headers', id: 64 * (n + 1), order: -n, depends: [1], path: `/live/video/${n}.m4s` }),
      )
      .push(encodeWarpMessage({ kind: 'segment', data: fragment(ms) }))
      .end();
  // As they come live: each once the one before it has ended.
  for (const [n, ms] of [
    [1, 0],
    [2, 3120],
    [3, 4000],
    [4, 7200],
  ] as const) {
    void c.consumer.addStream(at(n, ms));
    await c.tick();
  }
  assert.deepEqual(
    c.log.filter((l) => l.startsWith('data') || l.startsWith('skip')),
    [1, 2, 3, 4].map((n) => `data /live/video/${n}.m4s`),
  );
  assert.equal(c.consumer.stats().segmentsSkipped, 0);
  assert.equal(c.consumer.stats().segmentsStopped, 0);
});
