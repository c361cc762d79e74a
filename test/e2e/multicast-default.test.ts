/**
 * Multicast is on by default in `pushcast serve`: the sessions are advertised and the multicast player
 * page is printed. Where the host cannot deliver multicast on the chosen interface, one plain sentence
 * says why and everything stays unicast (no advertisement); `--no-multicast` turns it off silently.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { WebSocket } from 'ws';
import { startServe } from '../support/pushcast-process.js';

const SMALL = ['--ladder', '320x180@300k', '--no-audio', '--tls-port', 'off'];

async function altSvc(manifest: string): Promise<string | null> {
  return (await fetch(manifest.replace('manifest.mpd', 'video-180p/init.mp4'), { method: 'HEAD' })).headers.get(
    'alt-svc',
  );
}

test('by default: sessions advertised on the segments, a multicast player line, keys served', async (t) => {
  const serve = await startServe([...SMALL, '--multicast-group', '232.112.95.1', '--multicast-port', '5800']);
  t.after(() => serve.stop());
  assert.match(await serve.waitForLine(/^multicast player: /), /\/multicast\/$/);
  assert.match(
    await serve.waitForLine(/^multicast: video-180p /),
    /232\.112\.95\.1:5800 source 127\.0\.0\.1 session-id [0-9a-f]{16}/,
  );
  assert.match(
    (await altSvc(serve.manifest)) ?? '',
    /^h3m-07="232\.112\.95\.1:5800"; source="127\.0\.0\.1"; session-id=[0-9a-f]{16}; key="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/pushcast\/multicast-keys\.json"; gateway="\/multicast\/gateway"; chunks=1; ma=60$/,
  );
  const keys = await (await fetch(new URL('/.well-known/pushcast/multicast-keys.json', serve.player))).json();
  assert.equal(keys.keys[0].crv, 'Ed25519');
});

test('a host that cannot deliver multicast on the interface: one sentence saying why, unicast only', async (t) => {
  const serve = await startServe([...SMALL, '--multicast-interface', '10.255.255.1']);
  t.after(() => serve.stop());
  const line = await serve.waitForLine(/multicast: off, because/);
  assert.match(line, /does not deliver multicast on 10\.255\.255\.1 \(.+\); players stay on unicast\./);
  assert.equal(await altSvc(serve.manifest), null, 'no advertisement');
  assert.ok(!serve.lines.some((l) => l.startsWith('multicast player: ')));
});

test('--no-multicast: nothing advertised, nothing said', async (t) => {
  const serve = await startServe([...SMALL, '--no-multicast']);
  t.after(() => serve.stop());
  assert.equal(await altSvc(serve.manifest), null);
  assert.ok(!serve.lines.some((l) => /multicast/.test(l)));
});

test('the gateway answers on the HTTPS port too (wss), for pages served over TLS', async (t) => {
  const state = mkdtempSync(join(os.tmpdir(), 'pushcast-wss-'));
  const serve = await startServe([
    '--ladder',
    '320x180@300k',
    '--no-audio',
    '--multicast-group',
    '232.112.95.11',
    '--multicast-port',
    '5810',
    '--state-dir',
    state,
  ]);
  t.after(async () => {
    await serve.stop();
    rmSync(state, { recursive: true, force: true });
  });
  const https = serve.httpsPlayer!;
  const ad = (
    await fetch(serve.manifest.replace('manifest.mpd', 'video-180p/init.mp4'), { method: 'HEAD' })
  ).headers.get('alt-svc')!;
  const sessionId = /session-id=([0-9a-f]+)/.exec(ad)![1]!;
  const url = `${https.replace('https:', 'wss:').replace(/\/$/, '')}/multicast/gateway?group=232.112.95.11&port=5810&source=127.0.0.1&session-id=${sessionId}`;
  const ws = new WebSocket(url, {
    origin: new URL(https).origin,
    ca: readFileSync(join(state, 'tls', 'dev-cert.pem')),
  });
  const first = await new Promise<Buffer>((resolve, reject) => {
    ws.once('message', (data: Buffer) => resolve(data));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
  ws.close();
  assert.equal(first[0]! & 0xc0, 0x40, 'a QUIC short-header packet');
  assert.equal(first.subarray(1, 9).toString('hex'), sessionId, 'of the advertised session');
});
