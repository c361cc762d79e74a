/**
 * The receiving end for bench/quic.ts, in a process of its own (so that sender and receiver do not
 * share one event loop): a QUIC client that counts the bytes of every server stream, or a plain dgram
 * receiver. It prints `ready <port>` and, on each `report` line on stdin, `bytes <n>`.
 *   node peer.js quic <server port> <ca file>
 *   node peer.js dgram
 */
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import readline from 'node:readline';
import { QuicEndpoint } from '../../src/quic/index.js';

const [mode, port, caFile] = process.argv.slice(2);
let bytes = 0;

if (mode === 'dgram') {
  const socket = dgram.createSocket('udp4');
  socket.on('message', (m) => (bytes += m.length));
  socket.bind(0, '127.0.0.1', () => {
    socket.setRecvBufferSize(4 << 20);
    console.log(`ready ${socket.address().port}`);
  });
} else {
  const conn = await QuicEndpoint.connect({
    alpn: ['pushcast-bench'],
    host: '127.0.0.1',
    port: Number(port),
    serverName: 'localhost',
    ca: readFileSync(caFile!, 'utf8'),
    initialMaxData: 64 << 20,
    initialMaxStreamData: 16 << 20,
  });
  conn.on(
    'stream',
    (s) =>
      void (async () => {
        for await (const chunk of s) bytes += chunk.length;
      })().catch(() => undefined),
  );
  console.log('ready 0');
}
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'report') console.log(`bytes ${bytes}`);
  if (line === 'quit') process.exit(0);
});
