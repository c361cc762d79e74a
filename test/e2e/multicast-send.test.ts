/**
 * The multicast sender as a process of its own (`pushcast multicast send`), on the host's loopback:
 * it follows a running origin's MPD, announces its sessions in a file, the origin (`serve
 * --multicast-announce`) advertises them with Alt-Svc and serves their key set, and a receiver that
 * knows only the origin's MPD URL gets the live segments byte-identical to the origin's.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { runPushcast, startServe } from '../support/pushcast-process.js';
import { until } from '../support/wait.js';

test('pushcast multicast send follows a remote origin; the origin advertises its announced sessions; a receiver gets byte-identical segments', {
  timeout: 120_000,
}, async (t) => {
  const dir = mkdtempSync(join(os.tmpdir(), 'pushcast-mcsend-'));
  const announce = join(dir, 'sessions.json');
  const serve = await startServe([
    '--ladder',
    '640x360@800k',
    '--no-audio',
    '--multicast-announce',
    announce,
    '--state-dir',
    join(dir, 'origin'),
  ]);
  const sender = runPushcast('multicast', [
    'send',
    serve.manifest,
    '--announce',
    announce,
    '--group',
    '232.112.98.1',
    '--port',
    '5400',
    '--state-dir',
    join(dir, 'sender'),
  ]);
  t.after(async () => {
    await sender.stop('SIGKILL');
    await serve.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  await until('the announcement file', () => existsSync(announce), {
    intervalMs: 100,
    detail: () => `pushcast multicast send printed:\n${sender.lines.join('\n')}`,
  });
  const announced = JSON.parse(readFileSync(announce, 'utf8'));
  assert.deepEqual(
    announced.sessions.map((s: { representation: string; group: string; port: number }) => [
      s.representation,
      s.group,
      s.port,
    ]),
    [['video-360p', '232.112.98.1', 5400]],
  );

  const head = await fetch(serve.manifest.replace('manifest.mpd', 'video-360p/init.mp4'), { method: 'HEAD' });
  assert.match(
    head.headers.get('alt-svc') ?? '',
    new RegExp(
      `^h3m-07="232\\.112\\.98\\.1:5400"; source="127\\.0\\.0\\.1"; session-id=${announced.sessions[0].sessionId}; key="https://`,
    ),
  );

  const out = join(dir, 'received');
  const receiver = runPushcast('multicast', [
    'receive',
    serve.manifest,
    '--output',
    out,
    '--duration',
    '14',
    '--ca',
    join(dir, 'origin', 'tls', 'dev-cert.pem'),
  ]);
  const code = await receiver.exited;
  const output = receiver.lines.join('\n');
  assert.equal(code, 0, output);
  const summary = JSON.parse(/^summary: (.*)$/m.exec(output)![1]!);
  const segments = readdirSync(join(out, 'live', 'video-360p')).filter((f) => f.endsWith('.m4s'));
  assert.ok(segments.length >= 4, `${segments.length} segments in 14 s:\n${output}`);
  for (const f of [...segments, 'init.mp4']) {
    const origin = Buffer.from(
      await (await fetch(serve.manifest.replace('manifest.mpd', `video-360p/${f}`))).arrayBuffer(),
    );
    assert.ok(readFileSync(join(out, 'live', 'video-360p', f)).equals(origin), f);
  }
  assert.equal(summary.failed, 0);
  assert.ok(summary.complete >= 8, `${summary.complete} pushes complete by multicast`);
  t.diagnostic(
    `received ${segments.length} segments; ${summary.complete} pushes complete, ${summary.repaired} repaired, ${summary.unicast + summary.gapFilled} by unicast`,
  );
});
