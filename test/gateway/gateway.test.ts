/**
 * The multicast gateway over real loopback multicast and real WebSockets (ws as the client): packets of
 * an advertised session reach every subscriber and reassemble byte-identical; one join is shared and
 * left with the last subscriber; unadvertised sessions, foreign origins and limits are refused with a
 * clear status; a subscriber that stops reading (an in-memory connection the test stalls) loses packets
 * alone, its queue held at the bound; a subscriber that talks is closed, one that sends more than 1 KiB
 * closed with 1009, one that does not answer a ping cut off; packets that are not the session's, and
 * datagrams longer than 4096 bytes, are not forwarded; `close()` cuts off a subscriber that does not finish
 * its close handshake within `closeGraceMs`.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import { Socket, type AddressInfo } from 'node:net';
import { Duplex } from 'node:stream';
import test from 'node:test';
import { WebSocket } from 'ws';
import { GATEWAY_PATH, MulticastGateway, type GatewaySession } from '../../src/gateway/index.js';
import { MulticastUdpSender, PushPacketizer } from '../../src/multicast/index.js';
import { FecDecoder, MulticastReassembler, RESOURCE_PUSH, type ResourcePushEvent } from '../../src/push/index.js';
import { encodeRepairPacket, isRepairPacket } from '../../src/wire/index.js';
import { until, untilEvent, within } from '../support/wait.js';
import { Rng, fromHex } from '../wire/support.js';

const SESSION: GatewaySession = {
  group: '232.112.97.1',
  port: 5601,
  source: '127.0.0.1',
  sessionId: '0102030405060708',
};
const OTHER: GatewaySession = { group: '232.112.97.2', port: 5602, source: '127.0.0.1', sessionId: '1112131415161718' };
const WITH_FEC: GatewaySession = {
  group: '232.112.97.3',
  port: 5603,
  source: '127.0.0.1',
  sessionId: '2122232425262728',
  fec: { port: 5604 },
};

async function setup(options: Partial<ConstructorParameters<typeof MulticastGateway>[0]> = {}) {
  const gateway = new MulticastGateway({
    sessions: () => [SESSION, OTHER, WITH_FEC],
    pingIntervalMs: 60_000,
    ...options,
  });
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

async function sender(session: GatewaySession, port = session.port) {
  return MulticastUdpSender.open({
    group: session.group,
    port,
    rateBitsPerSecond: 50e6,
    multicastInterface: '127.0.0.1',
    bindAddress: '127.0.0.1',
    loopback: true,
    ttl: 0,
  });
}

/**
 * A subscriber on an in-memory connection, so that the test decides when it stops reading. While it
 * reads, each write of the gateway is taken at once and its WebSocket frames' payloads kept in `packets`;
 * once it stalls, the write in hand is not completed and the gateway's later writes wait behind it, as
 * on a TCP connection whose peer reads nothing once the window is full. `queuedBytes()` is what waits.
 */
function stallableSubscriber(gateway: MulticastGateway, url: string, origin: string) {
  const packets: Uint8Array[] = [];
  let received = Buffer.alloc(0);
  let upgraded = false;
  let held: (() => void) | undefined;
  const take = (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
    if (!upgraded) {
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) return;
      assert.match(received.subarray(0, end).toString(), /^HTTP\/1\.1 101 /);
      upgraded = true;
      received = received.subarray(end + 4);
    }
    // Server frames (RFC 6455 §5.2): unmasked, 7-bit, 16-bit or 64-bit length; binary ones are packets.
    for (;;) {
      if (received.length < 2) return;
      const short = received[1]! & 0x7f;
      const header = short === 126 ? 4 : short === 127 ? 10 : 2;
      if (received.length < header) return;
      const length =
        short === 126 ? received.readUInt16BE(2) : short === 127 ? Number(received.readBigUInt64BE(2)) : short;
      if (received.length < header + length) return;
      if ((received[0]! & 0x0f) === 0x2) packets.push(new Uint8Array(received.subarray(header, header + length)));
      received = received.subarray(header + length);
    }
  };
  let stalled = false;
  const socket = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      if (!stalled) {
        take(chunk);
        callback();
        return;
      }
      held = () => {
        take(chunk);
        callback();
      };
    },
  });
  const { pathname, search } = new URL(url);
  const req = new http.IncomingMessage(new Socket());
  req.method = 'GET';
  req.url = pathname + search;
  req.headers = {
    host: new URL(origin).host,
    origin,
    connection: 'Upgrade',
    upgrade: 'websocket',
    'sec-websocket-version': '13',
    'sec-websocket-key': randomBytes(16).toString('base64'),
  };
  assert.ok(gateway.handleUpgrade(req, socket, Buffer.alloc(0)), 'the gateway takes the upgrade');
  return {
    socket,
    packets,
    stall: () => {
      stalled = true;
    },
    resume: () => {
      stalled = false;
      const next = held;
      held = undefined;
      next?.();
    },
    queuedBytes: () => socket.writableLength,
  };
}

test('two subscribers of an advertised session get every packet; the pushes reassemble byte-identical; one join, left with the last subscriber', async (t) => {
  const g = await setup();
  t.after(g.close);
  const origin = `http://${g.host}`;
  const a = await subscribe(g.url(SESSION), origin);
  const b = await subscribe(g.url(SESSION), origin);
  await until('the join', () => g.gateway.stats.sessions === 1);
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
    'every packet at both subscribers',
    () => a.packets.length === datagrams.length && b.packets.length === datagrams.length,
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
  await until('one left', () => g.gateway.stats.subscribers === 1);
  assert.equal(g.gateway.stats.sessions, 1);
  b.ws.close();
  await until('the group left with the last subscriber', () => g.gateway.stats.sessions === 0);
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

test('a subscriber that stops reading loses packets alone, its queue held at maxQueuedBytes; it gets the next ones once it reads again; a subscriber that sends is closed; packets not of the session are not forwarded', async (t) => {
  const maxQueuedBytes = 64 * 1024;
  const g = await setup({ maxQueuedBytes });
  const origin = `http://${g.host}`;
  const slow = stallableSubscriber(g.gateway, g.url(SESSION), origin);
  t.after(() => {
    slow.socket.destroy(); // first: else the gateway's close waits closeGraceMs for its close handshake
    return g.close();
  });
  const fast = await subscribe(g.url(SESSION), origin);
  await until(
    'both subscribers of one join',
    () => g.gateway.stats.subscribers === 2 && g.gateway.stats.sessions === 1,
  );
  const tx = await sender(SESSION);
  t.after(() => tx.close());
  const packetizer = new PushPacketizer({ sessionId: fromHex(SESSION.sessionId), authority: 'example:8443' });

  // Both read: both get the first push whole.
  const first = await packetizer.push({ path: '/live/v/1.m4s', body: new Rng(1).bytes(30_000) });
  await tx.send(first);
  await until(
    'the first push at both subscribers',
    () => fast.packets.length === first.length && slow.packets.length === first.length,
  );
  assert.deepEqual(slow.packets, first);

  // The slow one stops reading: what the gateway writes to it stays queued, up to the bound, and the rest is dropped.
  slow.stall();
  const second = await packetizer.push({ path: '/live/v/2.m4s', body: new Rng(2).bytes(200_000) });
  await tx.send(second);
  const all = [...first, ...second];
  await until('every packet at the gateway and at the fast subscriber', () => fast.packets.length === all.length, {
    detail: () => `${fast.packets.length} of ${all.length} at the fast subscriber; ${JSON.stringify(g.gateway.stats)}`,
  });
  assert.deepEqual(fast.packets, all, 'the fast subscriber lost nothing');
  assert.equal(g.gateway.stats.datagrams, all.length);
  assert.deepEqual(slow.packets, first, 'nothing reached the subscriber that does not read');
  assert.ok(slow.queuedBytes() <= maxQueuedBytes, `${slow.queuedBytes()} bytes queued, at most ${maxQueuedBytes}`);
  assert.ok(
    slow.queuedBytes() > maxQueuedBytes - 1500,
    `the queue filled up to the bound: ${slow.queuedBytes()} bytes`,
  );
  const stalled = g.gateway.stats;
  assert.ok(stalled.dropped > 0, 'packets dropped for the slow subscriber');
  assert.equal(stalled.forwarded + stalled.dropped, 2 * all.length);

  // Reading again: it gets what was queued, the start of the second push, exactly the packets not dropped.
  slow.resume();
  const kept = second.length - stalled.dropped;
  await until('the queued packets at the slow subscriber', () => slow.packets.length === first.length + kept);
  assert.deepEqual(slow.packets, [...first, ...second.slice(0, kept)]);
  const third = await packetizer.push({ path: '/live/v/3.m4s', body: new Rng(3).bytes(10_000) });
  await tx.send(third);
  await until('the third push at both subscribers', () => slow.packets.length === first.length + kept + third.length);
  assert.deepEqual(slow.packets.slice(first.length + kept), third);

  // Not the session's: another session ID, a long header, garbage. Counted, not forwarded.
  await until('the third push at the fast subscriber', () => fast.packets.length === all.length + third.length);
  const before = fast.packets.length;
  await tx.send([
    fromHex('40' + '1112131415161718' + '00' + '01'),
    fromHex(`c0${SESSION.sessionId}0001`),
    new Rng(5).bytes(40),
  ]);
  await until('three foreign datagrams counted', () => g.gateway.stats.foreign === 3);
  assert.equal(fast.packets.length, before);

  const closed = untilEvent<[number]>('the close of a subscriber that sent a message', fast.ws, 'close');
  fast.ws.send('hello');
  const [code] = await closed;
  assert.equal(code, 1008, 'a subscriber that sends is closed (policy violation)');
});

test('a subscriber that sends a message larger than 1 KiB is closed with 1009; the other goes on', async (t) => {
  const g = await setup();
  t.after(g.close);
  const origin = `http://${g.host}`;
  const big = await subscribe(g.url(SESSION), origin);
  const other = await subscribe(g.url(SESSION), origin);
  await until('both subscribers', () => g.gateway.stats.subscribers === 2);
  const closed = untilEvent<[number]>('the close of the subscriber that sent 2 KiB', big.ws, 'close');
  big.ws.send(new Uint8Array(2048));
  const [code] = await closed;
  assert.equal(code, 1009, 'message too big');
  await until('one subscriber left', () => g.gateway.stats.subscribers === 1);
  const tx = await sender(SESSION);
  t.after(() => tx.close());
  const packetizer = new PushPacketizer({ sessionId: fromHex(SESSION.sessionId), authority: 'example:8443' });
  const push = await packetizer.push({ path: '/live/v/1.m4s', body: new Rng(1).bytes(10_000) });
  await tx.send(push);
  await until('the push at the other subscriber', () => other.packets.length === push.length);
  assert.deepEqual(other.packets, push);
});

test('a subscriber that does not answer a ping is cut off at the next one; a subscriber that answers stays', async (t) => {
  const g = await setup({ pingIntervalMs: 50 });
  const origin = `http://${g.host}`;
  // The in-memory subscriber reads the gateway's frames and never writes back: no pong.
  const silent = stallableSubscriber(g.gateway, g.url(SESSION), origin);
  t.after(() => {
    silent.socket.destroy();
    return g.close();
  });
  const answering = await subscribe(g.url(SESSION), origin);
  let pings = 0;
  answering.ws.on('ping', () => pings++);
  await until('the silent subscriber cut off', () => silent.socket.destroyed && g.gateway.stats.subscribers === 1, {
    detail: () => `${JSON.stringify(g.gateway.stats)}, ${pings} pings at the answering subscriber`,
  });
  const atCut = pings;
  await until('three more pings at the answering subscriber', () => pings >= atCut + 3);
  assert.equal(answering.ws.readyState, WebSocket.OPEN, 'the subscriber that answers pings stays');
  assert.equal(g.gateway.stats.subscribers, 1);
});

test('a subscriber that sends a message and then does not finish the close handshake is cut off after closeGraceMs', async (t) => {
  const g = await setup({ closeGraceMs: 100 });
  const origin = `http://${g.host}`;
  const silent = stallableSubscriber(g.gateway, g.url(SESSION), origin);
  t.after(() => {
    silent.socket.destroy();
    return g.close();
  });
  await until('the subscriber', () => g.gateway.stats.subscribers === 1);
  // A masked text frame "hello" (RFC 6455 §5.2; a zero mask leaves the payload as it is), then silence.
  silent.socket.push(Buffer.concat([Buffer.from([0x81, 0x85, 0, 0, 0, 0]), Buffer.from('hello')]));
  await until('the subscriber cut off', () => silent.socket.destroyed && g.gateway.stats.subscribers === 0, {
    timeoutMs: 5000, // ws alone would wait 30 s
  });
});

test('a datagram on the group longer than 4096 bytes is not forwarded, the next packets are', async (t) => {
  const g = await setup();
  t.after(g.close);
  const a = await subscribe(g.url(SESSION), `http://${g.host}`);
  await until('the join', () => g.gateway.stats.sessions === 1);
  const tx = await sender(SESSION);
  t.after(() => tx.close());
  // A short header with the session's ID, so that only its length keeps it from the subscriber.
  const oversized = new Uint8Array(5000);
  oversized.set(fromHex(`40${SESSION.sessionId}`));
  const packetizer = new PushPacketizer({ sessionId: fromHex(SESSION.sessionId), authority: 'example:8443' });
  const push = await packetizer.push({ path: '/live/v/1.m4s', body: new Rng(1).bytes(10_000) });
  await tx.send([oversized, ...push]);
  await until('the push at the subscriber', () => a.packets.length >= push.length);
  assert.deepEqual(a.packets, push, 'the oversized datagram did not reach the subscriber');
  assert.equal(g.gateway.stats.datagrams, push.length, "nor was it counted as one of the group's datagrams");
});

test('close() ends at most closeGraceMs after it began: a subscriber that does not finish its close handshake is cut off; one that does gets 1001; then upgrades are refused', async (t) => {
  const g = await setup(); // closeGraceMs: the default, 1 s
  t.after(g.close);
  const origin = `http://${g.host}`;
  // Reads the close frame and never answers it, as a peer that went away without a FIN would.
  const silent = stallableSubscriber(g.gateway, g.url(SESSION), origin);
  t.after(() => silent.socket.destroy());
  const polite = await subscribe(g.url(SESSION), origin);
  await until('both subscribers', () => g.gateway.stats.subscribers === 2);
  const politeClosed = untilEvent<[number]>('the close of the subscriber that answers', polite.ws, 'close');
  const started = performance.now();
  await within('the gateway closed (ws alone would wait 30 s for the silent subscriber)', g.gateway.close(), {
    timeoutMs: 5000,
  });
  const ms = performance.now() - started;
  assert.ok(silent.socket.destroyed, 'the silent subscriber was cut off');
  assert.ok(ms >= 900, `the silent subscriber had its grace: close took ${ms.toFixed(0)} ms`);
  const [code] = await politeClosed;
  assert.equal(code, 1001, 'going away');
  assert.equal(g.gateway.stats.subscribers, 0);
  assert.equal(g.gateway.stats.sessions, 0);
  await assert.rejects(subscribe(g.url(SESSION), origin), /^Error: 503 the gateway is shutting down$/);
});

test('FEC: subscribers that ask with fec=1 also get the repair flow, joined once and left with the last of them; the others, and sessions without FEC, get the session alone', async (t) => {
  const g = await setup();
  t.after(g.close);
  const origin = `http://${g.host}`;
  const a = await subscribe(`${g.url(WITH_FEC)}&fec=1`, origin);
  const b = await subscribe(g.url(WITH_FEC), origin);
  const d = await subscribe(`${g.url(WITH_FEC)}&fec=1`, origin);
  const noFec = await subscribe(`${g.url(SESSION)}&fec=1`, origin);
  await until('two joins and one repair flow', () => {
    const s = g.gateway.stats;
    return s.sessions === 2 && s.repairFlows === 1 && s.subscribers === 4;
  });

  const sessionId = fromHex(WITH_FEC.sessionId);
  const tx = await MulticastUdpSender.open({
    group: WITH_FEC.group,
    port: WITH_FEC.port,
    rateBitsPerSecond: 50e6,
    multicastInterface: '127.0.0.1',
    bindAddress: '127.0.0.1',
    loopback: true,
    ttl: 0,
    fec: { k: 5, m: 1, port: WITH_FEC.fec!.port, sessionId },
  });
  t.after(() => tx.close());
  const body = new Rng(4).bytes(30_000);
  const packetizer = new PushPacketizer({ sessionId, authority: 'example:8443', maxDatagramSize: 1400 });
  const datagrams = await packetizer.push({ path: '/live/v/1.m4s', body });
  await tx.send(datagrams);
  await tx.flush();
  const repairs = tx.stats.repairPackets;
  assert.equal(repairs, Math.ceil(datagrams.length / 5));
  await until(
    'the session and its repair packets at the subscribers that asked, the session alone at the other',
    () =>
      a.packets.length === datagrams.length + repairs &&
      d.packets.length === datagrams.length + repairs &&
      b.packets.length === datagrams.length,
  );
  assert.equal(a.packets.filter(isRepairPacket).length, repairs);
  assert.equal(b.packets.filter(isRepairPacket).length, 0);

  // The subscriber that asked recovers what it misses: every 5th packet dropped.
  const reassembler = new MulticastReassembler({ sessionId });
  const got = new Promise<Uint8Array>((resolve, reject) =>
    reassembler.addEventListener(RESOURCE_PUSH, (e) =>
      (e as ResourcePushEvent).response.then(async (r) => resolve(new Uint8Array(await r.arrayBuffer())), reject),
    ),
  );
  const decoder = new FecDecoder({ sessionId, output: (p) => reassembler.enqueuePacket(p) });
  let n = 0;
  for (const p of a.packets) if (isRepairPacket(p) || n++ % 5 !== 2) decoder.enqueue(p);
  assert.deepEqual(await within('the push', got), body);
  // A repair packet may overtake its block's last packet (two sockets at the gateway): recovered early, counted late.
  const { recovered, recoveredLate } = decoder.stats;
  assert.equal(recovered - recoveredLate, Math.floor((datagrams.length + 2) / 5));

  // On the repair port, only repair packets of the session go on.
  const stranger = await sender(WITH_FEC, WITH_FEC.fec!.port);
  t.after(() => stranger.close());
  const before = g.gateway.stats.foreign;
  await stranger.send([
    datagrams[0]!, // a packet of the session, on the repair port
    encodeRepairPacket({
      sessionId: fromHex('3132333435363738'),
      firstPacketNumber: 0,
      k: 1,
      m: 1,
      index: 0,
      symbol: new Uint8Array(4),
    }),
  ]);
  await until('two foreign datagrams on the repair port', () => g.gateway.stats.foreign === before + 2);
  assert.equal(a.packets.length, datagrams.length + repairs);

  a.ws.close();
  await until('one left', () => g.gateway.stats.subscribers === 3);
  assert.equal(g.gateway.stats.repairFlows, 1, 'another subscriber still asks for it');
  d.ws.close();
  await until('the repair flow left with the last subscriber that asked', () => g.gateway.stats.repairFlows === 0);
  assert.equal(g.gateway.stats.sessions, 2, 'the session itself stays joined');
  b.ws.close();
  noFec.ws.close();
  await until('every group left', () => g.gateway.stats.sessions === 0);
});
