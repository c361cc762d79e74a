/**
 * The Warp sender (§4.3, §4.4, §6.1) on a real WebTransport session over the loopback: segments
 * complete strictly in delivery order, beyond QUIC's eight urgencies too; at the resource limit the
 * lowest-priority streams are reset (code 0), never the most important; a viewer's STOP_SENDING ends
 * one stream and nothing else.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { H3_ALPN } from '../../src/http3/index.js';
import { developmentCertificate } from '../../src/origin/index.js';
import { QuicEndpoint } from '../../src/quic/index.js';
import { GrowingSource, WarpSender } from '../../src/warp/index.js';
import {
  SessionRouter,
  connectWebTransport,
  serveHttp3Sessions,
  type ConnectWebTransportOptions,
  type Session,
} from '../../src/webtransport/index.js';
import { WarpStreamReader } from '../../src/wire/index.js';

const dir = mkdtempSync(join(os.tmpdir(), 'pushcast-warp-sender-'));
const certificate = developmentCertificate(dir);
test.after(() => rmSync(dir, { recursive: true, force: true }));

async function pair(
  t: test.TestContext,
  clientOptions: Partial<ConnectWebTransportOptions> = {},
): Promise<{ server: Session; client: Session }> {
  let accepted: (s: Session) => void;
  const serverSession = new Promise<Session>((r) => (accepted = r));
  const router = new SessionRouter().route('/warp', { session: (s) => accepted(s) });
  const endpoint = await QuicEndpoint.listen({
    alpn: [H3_ALPN],
    key: certificate.key,
    cert: certificate.cert,
    host: '127.0.0.1',
    port: 0,
  });
  endpoint.on('connection', (conn) => serveHttp3Sessions(conn, { router }));
  const client = await connectWebTransport(`https://localhost:${endpoint.address.port}/warp/live`, {
    ca: certificate.cert,
    ...clientOptions,
  });
  t.after(async () => (await client.close(), await endpoint.close()));
  return { server: await serverSession, client };
}

const source = (id: number, order: number, bytes: number) => {
  const s = new GrowingSource({ kind: 'headers', id, order, depends: [1] }, 'video', false);
  s.append(new Uint8Array(bytes).fill(id & 0xff));
  s.end();
  return s;
};

/** Reads every stream of the client session: the order streams complete in, and which were reset. */
function watch(
  client: Session,
  onStream?: (stream: import('../../src/webtransport/index.js').SessionStream, headersId: number) => void,
) {
  const completed: number[] = [];
  const reset: number[] = [];
  client.on('stream', (stream) => {
    void (async () => {
      const reader = new WarpStreamReader();
      let id = -1;
      try {
        for await (const chunk of stream) {
          reader.push(chunk);
          for (let e; (e = reader.next()); ) {
            if (e.kind === 'headers') {
              id = e.id!;
              onStream?.(stream, id);
            }
          }
        }
        reader.end();
        completed.push(id);
      } catch {
        reset.push(id);
      }
    })();
  });
  return { completed, reset };
}

const until = async (what: string, ok: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

test('segments complete in delivery order, smaller first, past eight priority levels', async (t) => {
  const { server, client } = await pair(t);
  const seen = watch(client);
  const sender = new WarpSender(server, { maxBacklogBytes: 64 * 1024 * 1024 });
  // Twelve segments of 300 kB, queued in a scrambled order; order = id.
  const ids = [7, 3, 11, 1, 9, 5, 12, 2, 8, 4, 10, 6];
  for (const id of ids) sender.send(source(id, id, 300_000));
  assert.ok(sender.stats().held >= 1, "streams ranked past the seventh wait in pushcast's queue");
  await until('12 segments', () => seen.completed.length === 12);
  assert.deepEqual(seen.completed, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  assert.equal(sender.stats().streamsFinished, 12);
});

test('at the resource limit the lowest-priority streams are reset with code 0; the most important arrive whole', async (t) => {
  // A viewer with small receive windows: the sender cannot hand everything to QUIC.
  const { server, client } = await pair(t, {
    initialMaxData: 256 * 1024,
    initialMaxStreamData: 128 * 1024,
    maxStreamBuffer: 64 * 1024,
  });
  const seen = watch(client);
  const sender = new WarpSender(server, { maxBacklogBytes: 1_000_000 });
  for (let id = 1; id <= 10; id++) sender.send(source(id, id, 300_000));
  await until('every segment completed or reset', () => seen.completed.length + sender.stats().streamsCancelled >= 10);
  const stats = sender.stats();
  assert.ok(stats.streamsCancelled >= 5, `${stats.streamsCancelled} cancelled`);
  assert.ok(stats.backlogBytes <= 1_000_000);
  // What completed is a prefix of the delivery order; what was cancelled is the tail.
  const whole = [...seen.completed].sort((a, b) => a - b);
  assert.deepEqual(
    whole,
    Array.from({ length: whole.length }, (_, i) => i + 1),
  );
  assert.ok(whole.includes(1), 'the most important segment is never cancelled');
});

test('STOP_SENDING from the viewer ends that stream alone', async (t) => {
  const { server, client } = await pair(t);
  const stopped: number[] = [];
  const seen = watch(client, (stream, id) => {
    if (id !== 2) return;
    stopped.push(id);
    stream.stopSending(0);
  });
  const sender = new WarpSender(server, { maxBacklogBytes: 64 * 1024 * 1024 });
  // Segment 2 is still being produced when the viewer says it no longer wants it.
  const growing = new GrowingSource({ kind: 'headers', id: 2, order: 2, depends: [1] }, 'video', false);
  growing.append(new Uint8Array(1000));
  sender.send(source(1, 1, 100_000));
  sender.send(growing);
  sender.send(source(3, 3, 100_000));
  await until('the viewer stopped segment 2', () => stopped.length === 1);
  for (let i = 0; i < 50 && sender.stats().streamsStopped === 0; i++) {
    growing.append(new Uint8Array(10_000));
    await new Promise((r) => setTimeout(r, 20));
  }
  await until(
    'segments 1 and 3 whole, nothing under way',
    // A stream the viewer stopped ends there without an error: only 1 and 3 count here.
    () => seen.completed.filter((id) => id !== 2).length >= 2 && sender.stats().active === 0,
    10_000,
  );
  assert.equal(sender.stats().streamsStopped, 1);
  assert.equal(sender.stats().streamsFinished, 2);
  assert.deepEqual(seen.completed.filter((id) => id !== 2).sort(), [1, 3]);
});
