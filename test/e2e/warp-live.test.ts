/**
 * Warp from `pushcast serve` (real ffmpeg, real packager) to a Node viewer over WebTransport: every
 * segment and init it receives is byte-identical to what the origin serves at the same path over
 * HTTPS, in decode order, nothing skipped; a wrong token is refused with its status; a second viewer
 * on the WebSocket fallback gets the same bytes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { createNodeFetch } from '../../src/client/index.js';
import { WarpClient, type SegmentRef } from '../../src/warp/index.js';
import { SessionRefusedError, connectWebSocketSession } from '../../src/webtransport/index.js';
import { startServe } from '../support/pushcast-process.js';
import { until } from '../support/wait.js';

test('a Node viewer receives the live broadcast over Warp, byte-identical to HTTP', async (t) => {
  const state = mkdtempSync(join(os.tmpdir(), 'pushcast-warp-live-'));
  const serve = await startServe([
    '--ladder',
    '320x180@300k',
    '--no-multicast',
    '--warp-token',
    'letmein',
    '--state-dir',
    state,
  ]);
  t.after(async () => {
    await serve.stop();
    rmSync(state, { recursive: true, force: true });
  });
  const https = (await serve.waitForLine(/^https player: /)).replace(/^https player: /, '').replace(/\/$/, '');
  const port = new URL(https).port;
  const url = `https://localhost:${port}/warp/live`;
  const ca = readFileSync(join(state, 'tls', 'dev-cert.pem'), 'utf8');

  await assert.rejects(
    WarpClient.connect(`${url}?token=wrong`, { sink: {}, bufferMs: 2000, ca }),
    (e: unknown) => e instanceof SessionRefusedError && e.status === 403,
  );

  const inits = new Map<string, Uint8Array>();
  const parts = new Map<string, Uint8Array[]>();
  const completed: SegmentRef[] = [];
  const skipped: string[] = [];
  const client = await WarpClient.connect(`${url}?token=letmein`, {
    bufferMs: 3000,
    ca,
    sink: {
      init: (track, bytes) => inits.set(track.id, bytes),
      data: (segment, bytes) => parts.set(segment.path!, [...(parts.get(segment.path!) ?? []), bytes]),
      end: (segment, complete) => complete && completed.push(segment),
      skip: (track, time, why) => skipped.push(`${track}@${time}: ${why}`),
    },
  });
  t.after(() => client.close());
  await until(
    'three whole video segments over WebTransport',
    () => completed.filter((s) => s.track.startsWith('video')).length >= 3,
    { timeoutMs: 30_000, intervalMs: 200 },
  );
  const catalog = client.consumer.catalog!;
  assert.deepEqual(catalog.tracks.map((t) => t.kind).sort(), ['audio', 'video']);
  const fetch = createNodeFetch({ ca });
  for (const track of catalog.tracks) {
    const init = new Uint8Array(await (await fetch(`${https}/live/${track.id}/init.mp4`)).arrayBuffer());
    assert.deepEqual(inits.get(track.id), init, `${track.id} init`);
  }
  const video = completed.filter((s) => s.track.startsWith('video'));
  assert.ok(video.length >= 3, `3 video segments within 30 s (got ${video.length})`);
  for (const segment of completed) {
    const response = await fetch(`${https}${segment.path}`);
    assert.equal(response.status, 200, segment.path);
    assert.deepEqual(
      new Uint8Array(Buffer.concat(parts.get(segment.path!)!)),
      new Uint8Array(await response.arrayBuffer()),
      segment.path,
    );
  }
  for (const track of catalog.tracks) {
    const times = completed.filter((s) => s.track === track.id).map((s) => s.decodeTime);
    assert.deepEqual(
      times,
      [...times].sort((a, b) => a - b),
    );
  }
  assert.deepEqual(skipped, []);

  // The WebSocket fallback on the same HTTPS port: the same broadcast, the same bytes.
  const viaWs = new Map<string, Uint8Array[]>();
  const wsCompleted: SegmentRef[] = [];
  const ws = await WarpClient.connect(`${url}?token=letmein`, {
    bufferMs: 3000,
    connect: (u) => connectWebSocketSession(u, { ca }),
    sink: {
      data: (segment, bytes) => viaWs.set(segment.path!, [...(viaWs.get(segment.path!) ?? []), bytes]),
      end: (segment, complete) => complete && wsCompleted.push(segment),
    },
  });
  t.after(() => ws.close());
  await until(
    'two whole video segments over the WebSocket fallback',
    () => wsCompleted.filter((s) => s.track.startsWith('video')).length >= 2,
    { timeoutMs: 20_000, intervalMs: 200 },
  );
  assert.ok(
    wsCompleted.filter((s) => s.track.startsWith('video')).length >= 2,
    'two video segments over the WebSocket fallback',
  );
  for (const segment of wsCompleted) {
    const response = await fetch(`${https}${segment.path}`);
    assert.deepEqual(
      new Uint8Array(Buffer.concat(viaWs.get(segment.path!)!)),
      new Uint8Array(await response.arrayBuffer()),
      `${segment.path} over WebSocket`,
    );
  }

  // /metrics counts both sessions, the refused one, their streams and bytes, and the QUIC connection.
  const metrics = await (await fetch(serve.metrics)).text();
  const sample = (series: string) => {
    const line = metrics.split('\n').find((l) => l.startsWith(`${series} `));
    assert.ok(line, `${series} in /metrics`);
    return Number(line.slice(series.length + 1));
  };
  assert.ok(sample('pushcast_warp_sessions_accepted_total{transport="webtransport"}') >= 1);
  assert.ok(sample('pushcast_warp_sessions_accepted_total{transport="websocket"}') >= 1);
  assert.equal(sample('pushcast_warp_sessions_refused_total{status="403"}'), 1, 'the wrong token');
  assert.equal(sample('pushcast_warp_sessions'), 2);
  assert.ok(
    sample('pushcast_warp_streams_total{outcome="opened"}') >=
      sample('pushcast_warp_streams_total{outcome="finished"}'),
  );
  assert.ok(sample('pushcast_warp_streams_total{outcome="finished"}') >= completed.length + wsCompleted.length);
  assert.ok(sample('pushcast_warp_bytes_total') > 0);
  assert.ok(sample('pushcast_warp_backlog_bytes') >= 0);
  assert.ok(sample('pushcast_quic_connections_total') >= 1);
  assert.ok(sample('pushcast_quic_connections') >= 1);
  assert.ok(
    sample('pushcast_quic_packets_total{direction="in"}') > 0 &&
      sample('pushcast_quic_packets_total{direction="out"}') > 0,
  );
  assert.ok(
    sample('pushcast_quic_bytes_total{direction="in"}') > 0 && sample('pushcast_quic_bytes_total{direction="out"}') > 0,
  );
  const declared = metrics.match(/^# TYPE pushcast_(warp|quic)_\w+/gm) ?? [];
  assert.ok(declared.length >= 10, `${declared.length} Warp and QUIC metrics`);
  for (const type of declared)
    assert.match(metrics, new RegExp(`^# HELP ${type.slice('# TYPE '.length)} \\w`, 'm'), 'a HELP line in words');
});
