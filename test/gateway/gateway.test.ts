/**
 * The multicast gateway over real loopback multicast and real WebSockets (ws as the client): packets of
 * an advertised session reach every subscriber and reassemble byte-identical; one join is shared and
 * left with the last subscriber; unadvertised sessions, foreign origins and limits are refused with a
 * clear status; a slow subscriber loses packets alone; a subscriber that talks is closed; packets that
 * are not the session's are not forwarded.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import test from 'node:test';
import { WebSocket } from 'ws';
import { GATEWAY_PATH, MulticastGateway, type GatewaySession } from '../../src/gateway/index.js';
import { MulticastUdpSender, PushPacketizer } from '../../src/multicast/index.js';
import { MulticastReassembler, RESOURCE_PUSH, type ResourcePushEvent } from '../../src/push/index.js';
import { Rng, fromHex } from '../wire/support.js';

const SESSION: GatewaySession = {
  group: '232.112.97.1',
  port: 5601,
  source: '127.0.0.1',
  sessionId: '0102030405060708',
};
const OTHER: GatewaySession = { group: '232.112.97.2', port: 5602, source: '127.0.0.1', sessionId: '1112131415161718' };

async function setup(options: Partial<ConstructorParameters<typeof MulticastGateway>[0]> = {}) {
  const gateway = new MulticastGateway({ sessions: () => [SESSION, OTHER], pingIntervalMs: 60_000, ...options });
  const server = http.createServer((_, res) => res.end());
  server.on('upgrade', (req, socket, head) => {
    if (!gateway.handleUpgrade(req, socket, head)) socket.destroy();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const url = (s: GatewaySession) =>
    `ws://${host}${GATEWAY_PATH}?group=${s.group}&port=${s.port}&source=${s.source}&session-id=${s.sessionId}`;
  const close = async () => {
    await gateway.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  };
  return { gateway, host, url, close };
}

/** Opens a subscription; resolves with the socket and its received packets, or rejects with the refusal. */
async function subscribe(url: string, origin: string) {
  const ws = new WebSocket(url, { origin });
  const packets: Uint8Array[] = [];
  ws.on('message', (data: Buffer) => packets.push(new Uint8Array(data)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => reject(new Error(`${res.statusCode} ${body.trim()}`)));
    });
    ws.once('error', reject);
  });
  return { ws, packets };
}

async function sender(session: GatewaySession) {
  return MulticastUdpSender.open({
    group: session.group,
    port: session.port,
    rateBitsPerSecond: 50e6,
    multicastInterface: '127.0.0.1',
    bindAddress: '127.0.0.1',
    loopback: true,
    ttl: 0,
  });
}

async function until(condition: () => boolean, what: string, ms = 5000, stepMs = 20) {
  for (const start = Date.now(); !condition(); ) {
    if (Date.now() - start > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

test('two subscribers of an advertised session get every packet; the pushes reassemble byte-identical; one join, left with the last subscriber', async (t) => {
  const g = await setup();
  t.after(g.close);
  const origin = `http://${g.host}`;
  const a = await subscribe(g.url(SESSION), origin);
  const b = await subscribe(g.url(SESSION), origin);
  await until(() => g.gateway.stats.sessions === 1, 'the join');
  const tx = await sender(SESSION);
  t.after(() => tx.close());
  const body = new Rng(1).bytes(200_000);
  const packetizer = new PushPacketizer({ sessionId: fromHex(SESSION.sessionId), authority: 'example:8443' });
  const datagrams = await packetizer.push({
    path: '/live/v/1.m4s',
    body,
    responseHeaders: { 'content-type': 'video/mp4' },
  });
  await tx.send(datagrams);
  await until(
    () => a.packets.length === datagrams.length && b.packets.length === datagrams.length,
    'every packet at both subscribers',
  );
  const reassembler = new MulticastReassembler({ sessionId: fromHex(SESSION.sessionId) });
  const got = new Promise<Uint8Array>((resolve, reject) =>
    reassembler.addEventListener(RESOURCE_PUSH, (e) =>
      (e as ResourcePushEvent).response.then(async (r) => resolve(new Uint8Array(await r.arrayBuffer())), reject),
    ),
  );
  for (const p of a.packets) reassembler.enqueuePacket(p);
  assert.deepEqual(await got, body);
  assert.equal(g.gateway.stats.sessions, 1, 'one join for two subscribers');
  a.ws.close();
  await until(() => g.gateway.stats.subscribers === 1, 'one left');
  assert.equal(g.gateway.stats.sessions, 1);
  b.ws.close();
  await until(() => g.gateway.stats.sessions === 0, 'the group left with the last subscriber');
});

test('refusals: an unadvertised session, a missing parameter, a foreign Origin, past the subscriber and session limits', async (t) => {
  const g = await setup({ maxSubscribers: 2, maxSessions: 1 });
  t.after(g.close);
  const origin = `http://${g.host}`;
  await assert.rejects(
    subscribe(g.url({ ...SESSION, group: '232.1.2.3' }), origin),
    /^Error: 403 232\.1\.2\.3:5601 session 0102030405060708 is not a session this origin advertises$/,
  );
  await assert.rejects(subscribe(g.url({ ...SESSION, sessionId: 'ffff' }), origin), /403/);
  await assert.rejects(
    subscribe(`ws://${g.host}${GATEWAY_PATH}?group=232.112.97.1`, origin),
    /400 group, port and session-id are required/,
  );
  await assert.rejects(
    subscribe(g.url(SESSION), 'https://evil.example'),
    /403 origin https:\/\/evil.example may not subscribe/,
  );
  const first = await subscribe(g.url(SESSION), origin);
  await assert.rejects(subscribe(g.url(OTHER), origin), /503 the gateway joins at most 1 sessions at once/);
  const second = await subscribe(g.url(SESSION), origin);
  await assert.rejects(subscribe(g.url(SESSION), origin), /503 the gateway serves at most 2 subscribers/);
  assert.deepEqual(g.gateway.stats.refused, {
    'not-advertised': 2,
    'bad-request': 1,
    origin: 1,
    sessions: 1,
    subscribers: 1,
  });
  first.ws.close();
  second.ws.close();
  const listed = await setup({ allowedOrigins: ['https://player.example'] });
  t.after(listed.close);
  (await subscribe(listed.url(SESSION), 'https://player.example')).ws.close();
});

test('a slow subscriber loses packets alone; a subscriber that sends is closed; packets not of the session are not forwarded', async (t) => {
  const g = await setup({ maxQueuedBytes: 64 * 1024 });
  t.after(g.close);
  const origin = `http://${g.host}`;
  const fast = await subscribe(g.url(SESSION), origin);
  const slow = await subscribe(g.url(SESSION), origin);
  await until(() => g.gateway.stats.sessions === 1, 'the join');
  // The slow subscriber stops reading: its TCP window fills, then the gateway's queue for it.
  (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
  const tx = await MulticastUdpSender.open({
    group: SESSION.group,
    port: SESSION.port,
    rateBitsPerSecond: 200e6,
    multicastInterface: '127.0.0.1',
    bindAddress: '127.0.0.1',
    loopback: true,
    ttl: 0,
    maxQueuedBytes: 64 << 20,
  });
  t.after(() => tx.close());
  const packetizer = new PushPacketizer({ sessionId: fromHex(SESSION.sessionId), authority: 'example:8443' });
  // 30 MB: more than loopback TCP buffers absorb for the subscriber that does not read.
  const datagrams = (
    await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        packetizer.push({ path: `/live/v/${i}.m4s`, body: new Rng(i).bytes(1_000_000) }),
      ),
    )
  ).flat();
  await tx.send(datagrams);
  // Everything has left the sender; wait until the gateway has seen the last of it and the fast subscriber has it all.
  let seen = -1;
  await until(
    () => {
      const now = g.gateway.stats.datagrams;
      const settled = now === seen && fast.packets.length === now;
      seen = now;
      return settled;
    },
    'the fast subscriber to get all the gateway received',
    15_000,
    300,
  );
  assert.ok(seen > 0.9 * datagrams.length, `the gateway received ${seen} of ${datagrams.length} datagrams`);
  const { datagrams: received, forwarded, dropped } = g.gateway.stats;
  assert.equal(fast.packets.length, received, 'the fast subscriber lost nothing');
  assert.ok(dropped > 0, 'packets dropped for the slow subscriber');
  assert.equal(forwarded + dropped, 2 * received);
  assert.ok(slow.packets.length < received);

  // Not the session's: another session ID, a long header, garbage. Counted, not forwarded.
  const before = fast.packets.length;
  await tx.send([
    fromHex('40' + '1112131415161718' + '00' + '01'),
    fromHex(`c0${SESSION.sessionId}0001`),
    new Rng(5).bytes(40),
  ]);
  await until(() => g.gateway.stats.foreign === 3, 'three foreign datagrams counted');
  assert.equal(fast.packets.length, before);

  const closed = once(fast.ws, 'close');
  fast.ws.send('hello');
  const [code] = (await closed) as [number];
  assert.equal(code, 1008, 'a subscriber that sends is closed (policy violation)');
});
