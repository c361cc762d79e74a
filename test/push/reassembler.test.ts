/**
 * MulticastReassembler: sessions built with the src/wire encoders, laid out as nghq sends them
 * (test/wire/push-profile.test.ts): every PUSH_PROMISE on stream 0, then one push stream per push
 * (stream header, HEADERS, DATA frames, FIN), cut into STREAM frames in packets of at most 1470 bytes.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import test from 'node:test';
import {
  IncompletePushError,
  MulticastReassembler,
  PushLimitError,
  RESOURCE_PUSH,
  type ResourcePushEvent,
  VerificationError,
  type ByteRange,
  type MulticastReassemblerOptions,
  type ReassemblerTimers,
} from '../../src/push/index.js';
import {
  encodeFieldSection,
  encodeFrames,
  encodeHttp3Frame,
  encodeHttp3FrameHeader,
  encodePushStreamHeader,
  encodeShortHeaderPacket,
  type FieldLine,
} from '../../src/wire/index.js';
import { Rng, concat, fromHex, mutate, packetize, type SentFrame } from '../wire/support.js';
import { until } from '../support/wait.js';

const SESSION_ID = fromHex('5053434153540001');
const OTHER_SESSION = fromHex('5053434153540002');

interface PushSpec {
  pushId: number;
  streamId: number;
  path: string;
  body: Uint8Array;
  /** Body split into DATA frames of these sizes (the rest in a last frame). */
  split?: number[];
  digest?: string | null;
}

/** Where each body byte lies on its push stream: pieces of [streamStart, streamStart+length) ↔ bodyStart. */
interface StreamLayout {
  streamId: number;
  bytes: Uint8Array;
  data: { streamStart: number; length: number; bodyStart: number }[];
  /** Stream offsets of frame headers (stream header + HEADERS + each DATA header): [start, end). */
  headers: ByteRange[];
}

interface Sent {
  datagrams: Uint8Array[];
  /** The STREAM frames of each datagram. */
  frames: SentFrame[][];
  layouts: Map<number, StreamLayout>;
  specs: PushSpec[];
}

const digestOf = (body: Uint8Array) => `sha256=${createHash('sha256').update(body).digest('base64')}`;

function requestFields(path: string): FieldLine[] {
  return [
    { name: ':method', value: 'GET' },
    { name: ':scheme', value: 'https' },
    { name: ':authority', value: 'pushcast.example:8443' },
    { name: ':path', value: path },
    { name: 'user-agent', value: 'pushcast-test' },
  ];
}

function pushStream(spec: PushSpec): StreamLayout {
  const response: FieldLine[] = [
    { name: ':status', value: '200' },
    { name: 'content-type', value: 'video/mp4' },
    { name: 'content-length', value: String(spec.body.length) },
  ];
  const digest = spec.digest === undefined ? digestOf(spec.body) : spec.digest;
  if (digest !== null) response.push({ name: 'digest', value: digest });
  const parts: Uint8Array[] = [
    encodePushStreamHeader(spec.pushId),
    encodeHttp3Frame({ kind: 'headers', fieldSection: encodeFieldSection(response) }),
  ];
  let at = parts[0]!.length + parts[1]!.length;
  const headers: ByteRange[] = [{ start: 0, end: at }];
  const data: StreamLayout['data'] = [];
  let bodyAt = 0;
  const sizes = [...(spec.split ?? []), spec.body.length - (spec.split ?? []).reduce((a, b) => a + b, 0)];
  for (const size of sizes) {
    const header = encodeHttp3FrameHeader(0x00, size);
    headers.push({ start: at, end: at + header.length });
    data.push({ streamStart: at + header.length, length: size, bodyStart: bodyAt });
    parts.push(header, spec.body.subarray(bodyAt, bodyAt + size));
    at += header.length + size;
    bodyAt += size;
  }
  return { streamId: spec.streamId, bytes: concat(...parts), data, headers };
}

function session(specs: PushSpec[], options: { promisesLast?: boolean; dcid?: Uint8Array } = {}): Sent {
  const promises = concat(
    ...specs.map((s) =>
      encodeHttp3Frame({
        kind: 'push-promise',
        pushId: s.pushId,
        fieldSection: encodeFieldSection(requestFields(s.path)),
      }),
    ),
  );
  const layouts = new Map(specs.map((s) => [s.streamId, pushStream(s)] as const));
  const streams = [...layouts.values()].map((l) => ({ id: l.streamId, bytes: l.bytes, fin: true }));
  const promiseStream = { id: 0, bytes: promises, fin: false };
  const { datagrams, frames } = packetize(
    options.promisesLast ? [...streams, promiseStream] : [promiseStream, ...streams],
    options.dcid ?? SESSION_ID,
  );
  return { datagrams, frames, layouts, specs };
}

const threePushes = (rng: Rng): PushSpec[] => [
  { pushId: 0, streamId: 3, path: '/live/video-360p/100.m4s', body: rng.bytes(400_000), split: [100_000] },
  { pushId: 1, streamId: 7, path: '/live/audio/100.m4s', body: rng.bytes(5_000) },
  { pushId: 2, streamId: 11, path: '/live/video-360p/init.mp4', body: rng.bytes(30_000), split: [1_000, 9_000] },
];

class FakeTimers implements ReassemblerTimers {
  time = 0;
  private tasks: { at: number; fn: () => void; id: number }[] = [];
  private nextId = 1;
  now = () => this.time;
  setTimeout = (fn: () => void, ms: number) => {
    const id = this.nextId++;
    this.tasks.push({ at: this.time + ms, fn, id });
    return id;
  };
  clearTimeout = (handle: unknown) => {
    this.tasks = this.tasks.filter((t) => t.id !== handle);
  };
  advance(ms: number): void {
    this.time += ms;
    const due = this.tasks.filter((t) => t.at <= this.time).sort((a, b) => a.at - b.at);
    this.tasks = this.tasks.filter((t) => t.at > this.time);
    for (const t of due) t.fn();
  }
}

function reassembler(options: Partial<MulticastReassemblerOptions> = {}) {
  const timers = new FakeTimers();
  const r = new MulticastReassembler({ sessionId: SESSION_ID, timers, ...options });
  const events: ResourcePushEvent[] = [];
  r.addEventListener(RESOURCE_PUSH, (e) => events.push(e as ResourcePushEvent));
  return { r, events, timers };
}

async function settle<T>(promise: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    return { ok: false, error };
  }
}

async function assertBodies(events: ResourcePushEvent[], specs: PushSpec[]): Promise<void> {
  assert.equal(events.length, specs.length);
  for (const spec of specs) {
    const event = events.find((e) => new URL(e.request.url).pathname === spec.path);
    assert.ok(event, spec.path);
    assert.equal(event.request.url, `https://pushcast.example:8443${spec.path}`);
    assert.equal(event.request.method, 'GET');
    assert.equal(event.request.headers.get('user-agent'), 'pushcast-test');
    const response = await event.response;
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'video/mp4');
    const body = new Uint8Array(await response.arrayBuffer());
    assert.ok(Buffer.from(body).equals(Buffer.from(spec.body)), `${spec.path}: body identical`);
  }
}

/** Body ranges a set of dropped stream frames takes away from a push (merged). */
function droppedBody(layout: StreamLayout, dropped: { offset: number; length: number }[]): ByteRange[] {
  const out: ByteRange[] = [];
  for (const f of dropped) {
    for (const d of layout.data) {
      const start = Math.max(f.offset, d.streamStart);
      const end = Math.min(f.offset + f.length, d.streamStart + d.length);
      if (start < end) out.push({ start: d.bodyStart + start - d.streamStart, end: d.bodyStart + end - d.streamStart });
    }
  }
  return merge(out);
}

function merge(ranges: ByteRange[]): ByteRange[] {
  const out: ByteRange[] = [];
  for (const r of [...ranges].sort((a, b) => a.start - b.start)) {
    const last = out[out.length - 1];
    if (last && r.start <= last.end) last.end = Math.max(last.end, r.end);
    else out.push({ ...r });
  }
  return out;
}

function carriesFrameHeader(sent: Sent, index: number): boolean {
  return sent.frames[index]!.some((f) => {
    const layout = sent.layouts.get(f.streamId);
    return layout?.headers.some((h) => h.start < f.offset + f.length && f.offset < h.end) ?? false;
  });
}

// ---------------------------------------------------------------------------------------------------

test('in-order delivery of 3 pushes: 3 events, bodies byte-identical, digests verified', async () => {
  const sent = session(threePushes(new Rng(1)));
  const { r, events } = reassembler();
  for (const d of sent.datagrams) r.enqueuePacket(d);
  await assertBodies(events, sent.specs);
  const stats = r.stats;
  assert.equal(stats.packets, sent.datagrams.length);
  assert.equal(stats.pushesCompleted, 3);
  assert.equal(stats.pushesFailed, 0);
  assert.equal(stats.dropped, 0);
  assert.equal(stats.bufferedBytes, 0, 'nothing kept after completion');
});

test('random permutation with duplicates: identical bodies, duplicates counted', async () => {
  const sent = session(threePushes(new Rng(2)));
  const rng = new Rng(3);
  const order = [...sent.datagrams.keys()];
  for (let i = order.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const withDuplicates = order.flatMap((i) => (rng.bool(0.2) ? [i, i] : [i]));
  for (let k = 0; k < 20; k++) withDuplicates.push(rng.int(sent.datagrams.length)); // late duplicates, after completion
  const { r, events } = reassembler();
  for (const i of withDuplicates) r.enqueuePacket(sent.datagrams[i]!);
  await assertBodies(events, sent.specs);
  assert.equal(r.stats.pushesCompleted, 3);
  assert.ok(r.stats.duplicates > 0);
  assert.equal(events.length, 3, 'duplicates raise no second event');
});

test('loss of packets carrying only body bytes: after the timeout, missing lists exactly the dropped body bytes', async () => {
  const sent = session(threePushes(new Rng(4)));
  const rng = new Rng(5);
  const droppable = [...sent.datagrams.keys()].filter(
    (i) => !sent.frames[i]!.some((f) => f.streamId === 0) && !carriesFrameHeader(sent, i),
  );
  const dropped = new Set(droppable.filter(() => rng.bool(0.1)));
  assert.ok(dropped.size > 5);
  const { r, events, timers } = reassembler({ timeoutMs: 5_000 });
  for (const [i, d] of sent.datagrams.entries()) if (!dropped.has(i)) r.enqueuePacket(d);
  assert.equal(events.length, 3);
  timers.advance(5_000);
  for (const spec of sent.specs) {
    const layout = sent.layouts.get(spec.streamId)!;
    const lost = droppedBody(
      layout,
      [...dropped].flatMap((i) => sent.frames[i]!.filter((f) => f.streamId === spec.streamId)),
    );
    const result = await settle(events.find((e) => e.request.url.endsWith(spec.path))!.response);
    if (lost.length === 0) {
      assert.ok(result.ok, `${spec.path} complete`);
      continue;
    }
    assert.ok(!result.ok && result.error instanceof IncompletePushError, spec.path);
    const error = result.error;
    assert.equal(error.reason, 'timeout');
    assert.equal(error.exact, true);
    assert.deepEqual(error.missing, lost);
    assert.equal(error.totalBytes, spec.body.length);
    assert.equal(error.receivedBytes, spec.body.length - lost.reduce((n, g) => n + g.end - g.start, 0));
    // What did arrive is handed over, so that a repair fetches only `missing` and splices it in.
    const repaired = new Uint8Array(error.partial.body!);
    assert.equal(repaired.length, spec.body.length);
    for (const g of lost) repaired.set(spec.body.subarray(g.start, g.end), g.start);
    assert.deepEqual(repaired, spec.body, 'partial body + the missing ranges = the body');
    assert.equal(error.partial.responseFields?.find((f) => f.name === ':status')?.value, '200');
    assert.equal(error.partial.requestFields?.find((f) => f.name === ':path')?.value, spec.path);
  }
});

for (const [name, dropFin] of [
  ['one DATA frame header: the last frame mapped from content-length and the final size', false],
  ['the FIN packet: DATA headers add up to content-length', true],
] as const) {
  test(`loss of ${name}`, async () => {
    const sent = session(threePushes(new Rng(6)));
    const layout = sent.layouts.get(3)!;
    const secondDataHeader = layout.headers[2];
    const onStream3 = [...sent.datagrams.keys()].filter((i) => sent.frames[i]!.some((f) => f.streamId === 3));
    const headerPacket = onStream3.find((i) =>
      sent.frames[i]!.some(
        (f) => f.streamId === 3 && f.offset < secondDataHeader!.end && secondDataHeader!.start < f.offset + f.length,
      ),
    )!;
    const dropped = new Set(
      dropFin ? [onStream3[onStream3.length - 1], onStream3[100]] : [headerPacket, onStream3[200], onStream3[10]],
    );
    const { r, events, timers } = reassembler();
    for (const [i, d] of sent.datagrams.entries()) if (!dropped.has(i)) r.enqueuePacket(d);
    timers.advance(10_000);
    const result = await settle(events[0]!.response);
    assert.ok(!result.ok && result.error instanceof IncompletePushError);
    const lost = droppedBody(
      layout,
      [...dropped].flatMap((i) => sent.frames[i!]!.filter((f) => f.streamId === 3)),
    );
    assert.equal(result.error.exact, true);
    assert.deepEqual(result.error.missing, lost);
    const repaired = new Uint8Array(result.error.partial.body!);
    for (const g of lost) repaired.set(sent.specs[0]!.body.subarray(g.start, g.end), g.start);
    assert.deepEqual(repaired, sent.specs[0]!.body);
  });
}

test('loss of the packet with the stream header and HEADERS: a superset from body 0, exact stream ranges', async () => {
  const sent = session(threePushes(new Rng(7)));
  const rng = new Rng(8);
  const onStream3 = [...sent.datagrams.keys()].filter((i) => sent.frames[i]!.some((f) => f.streamId === 3));
  const headersPacket = onStream3[0];
  assert.ok(carriesFrameHeader(sent, headersPacket!));
  const dropped = new Set([headersPacket, ...onStream3.filter(() => rng.bool(0.05))]);
  const { r, events, timers } = reassembler();
  for (const [i, d] of sent.datagrams.entries()) if (!dropped.has(i)) r.enqueuePacket(d);
  timers.advance(10_000);
  const result = await settle(
    events.find((e) => e.request.url.endsWith('/100.m4s') && e.request.url.includes('video'))!.response,
  );
  assert.ok(!result.ok && result.error instanceof IncompletePushError);
  assert.equal(result.error.exact, false);
  assert.deepEqual(result.error.missing, [{ start: 0, end: Infinity }]);
  const lostStream = merge(
    [...dropped].flatMap((i) =>
      sent.frames[i!]!.filter((f) => f.streamId === 3).map((f) => ({ start: f.offset, end: f.offset + f.length })),
    ),
  );
  assert.deepEqual(
    result.error.missingStream,
    lostStream,
    'the push stream was paired with the only unidentified stream',
  );
  // The other pushes were untouched.
  await Promise.all(events.map((e) => settle(e.response)));
  assert.equal(r.stats.pushesCompleted, 2);
});

test('PUSH_PROMISE arriving after the push stream data', async () => {
  const sent = session(threePushes(new Rng(9)), { promisesLast: true });
  const { r, events } = reassembler();
  for (const d of sent.datagrams) r.enqueuePacket(d);
  await assertBodies(events, sent.specs);
});

test('wrong digest, and a missing digest while required: VerificationError', async () => {
  const rng = new Rng(10);
  const specs: PushSpec[] = [
    { pushId: 0, streamId: 3, path: '/a', body: rng.bytes(3_000), digest: digestOf(rng.bytes(3_000)) },
    { pushId: 1, streamId: 7, path: '/b', body: rng.bytes(3_000), digest: null },
  ];
  const sent = session(specs);
  const { r, events } = reassembler();
  for (const d of sent.datagrams) r.enqueuePacket(d);
  for (const event of events) {
    const result = await settle(event.response);
    assert.ok(!result.ok && result.error instanceof VerificationError, event.request.url);
    assert.equal(result.error.check, 'digest');
  }
  assert.equal(r.stats.pushesFailed, 2);

  const lax = reassembler({ requireDigest: false });
  for (const d of sent.datagrams) lax.r.enqueuePacket(d);
  assert.ok((await settle(lax.events[0]!.response)).ok === false, 'a wrong digest fails even when not required');
  assert.equal((await lax.events[1]!.response).status, 200, 'no digest passes when not required');
});

test('the verifier: a refused request raises no event and counts as forged; a refused response fails with VerificationError', async () => {
  const specs = threePushes(new Rng(11)).slice(1);
  const sent = session(specs);
  const checked: string[] = [];
  const refuseRequests = reassembler({
    verifier: {
      verifyRequest: (fields) => {
        checked.push(fields.find((f) => f.name === ':path')!.value);
        throw new Error('unsigned');
      },
      verifyResponse: () => undefined,
    },
  });
  for (const d of sent.datagrams) refuseRequests.r.enqueuePacket(d);
  await until('both promises checked and refused', () => refuseRequests.r.stats.forged >= 2);
  assert.equal(refuseRequests.events.length, 0, 'no event for a promise whose signature fails');
  assert.equal(refuseRequests.r.stats.forged, 2);
  assert.deepEqual(checked.sort(), ['/live/audio/100.m4s', '/live/video-360p/init.mp4']);

  const seen: string[] = [];
  const refuseResponses = reassembler({
    verifier: {
      verifyRequest: () => undefined,
      verifyResponse: async (request, response) => {
        seen.push(
          `${request.find((f) => f.name === ':path')?.value} ${response.find((f) => f.name === ':status')?.value}`,
        );
        throw new Error('bad signature');
      },
    },
  });
  for (const d of sent.datagrams) refuseResponses.r.enqueuePacket(d);
  await until('both pushes raised', () => refuseResponses.events.length >= 2);
  assert.equal(refuseResponses.events.length, 2);
  for (const event of refuseResponses.events) {
    const result = await settle(event.response);
    assert.ok(!result.ok && result.error instanceof VerificationError);
    assert.equal(result.error.check, 'signature');
  }
  assert.deepEqual(seen.sort(), ['/live/audio/100.m4s 200', '/live/video-360p/init.mp4 200']);

  const accepting = reassembler({ verifier: { verifyRequest: () => undefined, verifyResponse: () => undefined } });
  for (const d of sent.datagrams) accepting.r.enqueuePacket(d);
  await until('every push raised', () => accepting.events.length >= specs.length);
  await assertBodies(accepting.events, specs);
});

test('packets of another session ID are dropped and counted', async () => {
  const specs = threePushes(new Rng(12));
  const foreign = session(specs, { dcid: OTHER_SESSION });
  const { r, events } = reassembler();
  for (const d of foreign.datagrams) r.enqueuePacket(d);
  assert.equal(events.length, 0);
  assert.equal(r.stats.wrongSession, foreign.datagrams.length);
  assert.equal(r.stats.dropped, foreign.datagrams.length);
  assert.equal(r.stats.bufferedBytes, 0);
});

test('RESET_STREAM rejects the push with IncompletePushError (reset)', async () => {
  const sent = session(threePushes(new Rng(13)));
  const { r, events } = reassembler();
  for (const d of sent.datagrams.slice(0, 50)) r.enqueuePacket(d);
  const layout = sent.layouts.get(3)!;
  r.enqueuePacket(
    encodeShortHeaderPacket(
      { dcid: SESSION_ID, packetNumber: 50, packetNumberLength: 1 },
      encodeFrames([{ kind: 'reset-stream', streamId: 3, errorCode: 0x10cn, finalSize: layout.bytes.length }]),
    ),
  );
  const result = await settle(events[0]!.response);
  assert.ok(!result.ok && result.error instanceof IncompletePushError);
  assert.equal(result.error.reason, 'reset');
  // RFC 9000 §19.4: the final size of RESET_STREAM and content-length map the rest of the body exactly.
  const notSent = sent.frames
    .slice(50)
    .flat()
    .filter((f) => f.streamId === 3);
  assert.equal(result.error.exact, true);
  assert.deepEqual(result.error.missing, droppedBody(layout, notSent));
});

test('cancel(request) rejects the push; later packets of it are ignored', async () => {
  const sent = session(threePushes(new Rng(14)));
  const { r, events } = reassembler();
  r.addEventListener(RESOURCE_PUSH, (e) => {
    const event = e as ResourcePushEvent;
    if (event.request.url.endsWith('init.mp4')) assert.equal(r.cancel(event.request), true);
  });
  for (const d of sent.datagrams) r.enqueuePacket(d);
  const init = events.find((e) => e.request.url.endsWith('init.mp4'))!;
  const result = await settle(init.response);
  assert.ok(!result.ok && result.error instanceof IncompletePushError);
  assert.equal(result.error.reason, 'cancelled');
  await Promise.all(events.map((e) => settle(e.response)));
  assert.equal(r.stats.pushesCompleted, 2);
  assert.equal(r.stats.pushesFailed, 1);
  assert.equal(r.stats.bufferedBytes, 0);
});

test('bound: concurrent pushes fails the push past it, and only it', async () => {
  const sent = session(threePushes(new Rng(15)));
  const { r, events } = reassembler({ maxConcurrentPushes: 2 });
  for (const d of sent.datagrams) r.enqueuePacket(d);
  const results = await Promise.all(events.map((e) => settle(e.response)));
  assert.ok(results[0]!.ok && results[1]!.ok);
  assert.ok(
    !results[2]!.ok && results[2]!.error instanceof PushLimitError && results[2]!.error.limit === 'concurrent-pushes',
  );
  assert.equal(r.stats.limitsHit['concurrent-pushes'], 1);
});

test('bound: bytes per push', async () => {
  const sent = session(threePushes(new Rng(16)));
  const { r, events } = reassembler({ maxBytesPerPush: 100_000 });
  for (const d of sent.datagrams) r.enqueuePacket(d);
  const results = await Promise.all(events.map((e) => settle(e.response)));
  assert.ok(
    !results[0]!.ok && results[0]!.error instanceof PushLimitError && results[0]!.error.limit === 'bytes-per-push',
  );
  assert.ok(results[1]!.ok && results[2]!.ok);
  assert.equal(r.stats.limitsHit['bytes-per-push'], 1);
});

test('bound: total bytes fails the push whose bytes go past it', async () => {
  const rng = new Rng(17);
  const specs: PushSpec[] = [0, 1, 2].map((i) => ({
    pushId: i,
    streamId: 3 + 4 * i,
    path: `/s${i}`,
    body: rng.bytes(30_000),
  }));
  // Interleave the three push streams packet by packet so that all are in flight at once.
  const promises = concat(
    ...specs.map((s) =>
      encodeHttp3Frame({
        kind: 'push-promise',
        pushId: s.pushId,
        fieldSection: encodeFieldSection(requestFields(s.path)),
      }),
    ),
  );
  const perStream = specs.map(
    (s) => packetize([{ id: s.streamId, bytes: pushStream(s).bytes, fin: true }], SESSION_ID).datagrams,
  );
  const { r, events } = reassembler({ maxTotalBytes: 70_000 });
  r.enqueuePacket(packetize([{ id: 0, bytes: promises, fin: false }], SESSION_ID).datagrams[0]!);
  for (let k = 0; k < Math.max(...perStream.map((p) => p.length)); k++)
    for (const p of perStream) if (p[k]) r.enqueuePacket(p[k]!);
  const results = await Promise.all(events.map((e) => settle(e.response)));
  const limited = results.filter((x) => !x.ok && x.error instanceof PushLimitError && x.error.limit === 'total-bytes');
  assert.equal(limited.length, 1);
  assert.equal(results.filter((x) => x.ok).length, 2);
  assert.equal(r.stats.limitsHit['total-bytes'], 1);
});

test('bound: age fails a push older than maxAgeMs, and drops an unpromised stream', async () => {
  const sent = session(threePushes(new Rng(18)));
  const { r, events, timers } = reassembler({ maxAgeMs: 1_000, timeoutMs: 60_000 });
  // Push 0's promise and its first packets only.
  for (const d of sent.datagrams.slice(0, 5)) r.enqueuePacket(d);
  timers.advance(2_000);
  r.enqueuePacket(
    encodeShortHeaderPacket(
      { dcid: SESSION_ID, packetNumber: 5, packetNumberLength: 1 },
      encodeFrames([{ kind: 'ping' }]),
    ),
  );
  const result = await settle(events[0]!.response);
  assert.ok(!result.ok && result.error instanceof PushLimitError && result.error.limit === 'age');
  assert.equal(r.stats.limitsHit.age, 1);

  const orphan = reassembler({ maxAgeMs: 1_000 });
  const late = session(threePushes(new Rng(18)), { promisesLast: true });
  for (const d of late.datagrams.slice(0, 5)) orphan.r.enqueuePacket(d);
  assert.ok(orphan.r.stats.bufferedBytes > 0);
  orphan.timers.advance(2_000);
  orphan.r.enqueuePacket(late.datagrams[5]!);
  assert.equal(orphan.r.stats.limitsHit.age, 1);
});

test('5000 random and mutated datagrams never throw; valid pushes among them still complete', async () => {
  const sent = session(threePushes(new Rng(19)).slice(1));
  const rng = new Rng(20);
  const { r, events } = reassembler({ timeoutMs: 1e9 });
  for (let i = 0; i < 5000; i++) {
    const d = rng.bool(0.3)
      ? rng.bytes(rng.int(80))
      : rng.bool(0.5)
        ? mutate(rng, rng.pick(sent.datagrams))
        : concat(Uint8Array.of(0x40), SESSION_ID, Uint8Array.of(rng.int(256)), rng.bytes(rng.int(60)));
    r.enqueuePacket(d);
  }
  const before = r.stats.malformed;
  assert.ok(before > 1000, `${before} malformed`);
  const clean = reassembler();
  for (const d of sent.datagrams) clean.r.enqueuePacket(d);
  await assertBodies(clean.events, sent.specs);
  // Whatever the mutated packets did to the first reassembler, its pushes settle or stay pending: no throw.
  assert.ok(events.length >= 0);
});
