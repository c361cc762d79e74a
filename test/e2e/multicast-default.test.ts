/**
 * Multicast is on by default in `pushcast serve`: the sessions are advertised and the multicast player
 * page is printed. Where the host cannot deliver multicast on the chosen interface, one plain sentence
 * says why and everything stays unicast (no advertisement); `--no-multicast` turns it off silently.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { startServe } from '../support/pushcast-process.js';

const SMALL = ['--ladder', '320x180@300k', '--no-audio', '--tls-port', 'off'];

async function altSvc(manifest: string): Promise<string | null> {
  return (await fetch(manifest.replace('manifest.mpd', 'video-180p/init.mp4'), { method: 'HEAD' })).headers.get('alt-svc');
}

test('by default: sessions advertised on the segments, a multicast player line, keys served', async (t) => {
  const serve = await startServe([...SMALL, '--multicast-group', '232.112.95.1', '--multicast-port', '5800']);
  t.after(() => serve.stop());
  assert.match(await serve.waitForLine(/^multicast player: /), /\/multicast\/$/);
  assert.match(await serve.waitForLine(/^multicast: video-180p /), /232\.112\.95\.1:5800 source 127\.0\.0\.1 session-id [0-9a-f]{16}/);
  assert.match((await altSvc(serve.manifest)) ?? '', /^h3m-07="232\.112\.95\.1:5800"; source="127\.0\.0\.1"; session-id=[0-9a-f]{16}; key="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/pushcast\/multicast-keys\.json"; gateway="\/multicast\/gateway"; ma=60$/);
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
