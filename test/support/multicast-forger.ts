/**
 * An attacker on the multicast path, for the end-to-end test: run inside the sender's network
 * namespace, bound to the sender's own address (so source-specific joins do not filter it out), it
 * watches the session to learn where stream 0 is, then injects every `intervalMs`:
 * - a PUSH_PROMISE (and its push stream) for FORGED_PATH signed by a key of its own, a little ahead on stream 0;
 * - the same unsigned;
 * - a packet of another session ID;
 * - random bytes.
 *   node multicast-forger.js <group> <port> <source> <session-id hex> <duration s>
 */
import dgram from 'node:dgram';
import { PushSigner } from '../../src/push/index.js';
import {
  decodeFrames,
  decodeShortHeaderPacket,
  encodeFieldSection,
  encodeFrames,
  encodeHttp3Frame,
  encodePushStreamHeader,
  encodeShortHeaderPacket,
  type FieldLine,
} from '../../src/wire/index.js';

const [group, portText, source, sessionHex, durationText] = process.argv.slice(2);
const port = Number(portText);
const sessionId = Uint8Array.from(sessionHex!.match(/../g)!.map((h) => parseInt(h, 16)));
const listen = dgram.createSocket({ type: 'udp4', reuseAddr: true });
const send = dgram.createSocket('udp4');
let streamZeroEnd = 0;
let authority = '';
let path = '';
let sent = 0;

listen.on('message', (msg) => {
  try {
    const packet = decodeShortHeaderPacket(new Uint8Array(msg), { dcidLength: sessionId.length });
    for (const f of decodeFrames(packet.payload))
      if (f.kind === 'stream' && f.streamId === 0) streamZeroEnd = Math.max(streamZeroEnd, f.offset + f.data.length);
  } catch {
    // not ours to understand
  }
});

async function inject(signer: PushSigner): Promise<void> {
  if (streamZeroEnd === 0) return;
  const request: FieldLine[] = [
    { name: ':method', value: 'GET' },
    { name: ':scheme', value: 'https' },
    { name: ':authority', value: authority },
    { name: ':path', value: path },
  ];
  const body = crypto.getRandomValues(new Uint8Array(500));
  const response: FieldLine[] = [
    { name: ':status', value: '200' },
    { name: 'content-type', value: 'video/mp4' },
    { name: 'content-length', value: '500' },
    { name: 'digest', value: `sha256=${Buffer.from(await crypto.subtle.digest('SHA-256', body)).toString('base64')}` },
  ];
  const datagrams: Uint8Array[] = [];
  for (const [i, signed] of [true, false].entries()) {
    const pushId = 1_000_000 + sent * 2 + i;
    const streamId = 4 * (1_000_000 + sent * 2 + i) + 3;
    const req = signed ? [...request, ...(await signer.signRequest(request))] : request;
    const res = signed ? [...response, ...(await signer.signResponse(request, response))] : response;
    const promise = encodeHttp3Frame({ kind: 'push-promise', pushId, fieldSection: encodeFieldSection(req) });
    // Ahead of the genuine promises, but within reach (about 40 promises ahead).
    const offset = streamZeroEnd + 16_000 + i * 2_000 + (sent % 8) * 4_000;
    datagrams.push(
      encodeShortHeaderPacket(
        { dcid: sessionId, packetNumber: 7, packetNumberLength: 1 },
        encodeFrames([{ kind: 'stream', streamId: 0, offset, data: promise, fin: false }]),
      ),
    );
    const stream = Buffer.concat([
      encodePushStreamHeader(pushId),
      encodeHttp3Frame({ kind: 'headers', fieldSection: encodeFieldSection(res) }),
      encodeHttp3Frame({ kind: 'data', data: body }),
    ]);
    datagrams.push(
      encodeShortHeaderPacket(
        { dcid: sessionId, packetNumber: 8, packetNumberLength: 1 },
        encodeFrames([{ kind: 'stream', streamId, offset: 0, data: new Uint8Array(stream), fin: true }]),
      ),
    );
  }
  datagrams.push(
    encodeShortHeaderPacket(
      { dcid: new Uint8Array(sessionId.length).fill(0xee), packetNumber: 9, packetNumberLength: 1 },
      encodeFrames([{ kind: 'ping' }]),
    ),
  );
  datagrams.push(crypto.getRandomValues(new Uint8Array(300)));
  for (const d of datagrams) send.send(d, port, group);
  sent++;
}

async function main(): Promise<void> {
  const [authorityArg, pathArg] = [
    process.env.FORGER_AUTHORITY ?? 'localhost',
    process.env.FORGER_PATH ?? '/live/video-360p/999999999.m4s',
  ];
  authority = authorityArg;
  path = pathArg;
  const signer = await PushSigner.generate();
  await new Promise<void>((resolve) => listen.bind(port, group, () => resolve()));
  listen.addSourceSpecificMembership(source!, group!, source);
  await new Promise<void>((resolve) => send.bind(0, source, () => resolve()));
  send.setMulticastInterface(source!);
  send.setMulticastTTL(1);
  const timer = setInterval(() => void inject(signer), 1000);
  setTimeout(() => {
    clearInterval(timer);
    console.log(`forged: ${sent}`);
    listen.close();
    send.close();
  }, Number(durationText) * 1000);
}

void main();
