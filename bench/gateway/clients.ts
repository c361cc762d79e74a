/**
 * N viewers in one process, for bench/gateway.ts. `push`: N WebSocket subscriptions to the gateway,
 * counting the QUIC packets and bytes each receives. `pull`: N HTTP clients that each fetch every new
 * segment of the rendition from the origin as it becomes available (the unicast baseline).
 *   node clients.js push <N> <seconds> <gateway ws URL> <Origin>
 *   node clients.js pull <N> <seconds> <origin base URL> <representation> <segment seconds> <first number> <its completion, ms since the epoch>
 * Prints one JSON line: { bytes, messages, errors, perClientMin, perClientMax }.
 */
import http from 'node:http';
import { WebSocket } from 'ws';

const [mode, nText, secondsText, ...rest] = process.argv.slice(2);
const n = Number(nText);
const seconds = Number(secondsText);
const perClient = new Array<number>(n).fill(0);
let bytes = 0;
let messages = 0;
let errors = 0;

function report(): void {
  console.log(
    JSON.stringify({
      bytes,
      messages,
      errors,
      perClientMin: Math.min(...perClient),
      perClientMax: Math.max(...perClient),
    }),
  );
  process.exit(0);
}

if (mode === 'push') {
  const [url, origin] = rest as [string, string];
  for (let i = 0; i < n; i++) {
    const ws = new WebSocket(url, { origin, perMessageDeflate: false });
    ws.on('message', (data: Buffer) => {
      bytes += data.length;
      messages++;
      perClient[i]! += data.length;
    });
    ws.on('error', () => errors++);
  }
  setTimeout(report, seconds * 1000);
} else {
  const [base, representation, segmentText, firstText, firstAtText] = rest as [string, string, string, string, string];
  const agent = new http.Agent({ keepAlive: true, maxSockets: n });
  const segment = Number(segmentText) * 1000;
  const first = Number(firstText);
  const firstAt = Number(firstAtText) + 300;
  const end = Date.now() + seconds * 1000;
  const get = (i: number, number: number) =>
    new Promise<void>((resolve) => {
      http
        .get(`${base}/live/${representation}/${number}.m4s`, { agent }, (res) => {
          res.on('data', (c: Buffer) => {
            bytes += c.length;
            perClient[i]! += c.length;
          });
          res.on('end', () => {
            if (res.statusCode === 200) messages++;
            else errors++;
            resolve();
          });
        })
        .on('error', () => {
          errors++;
          resolve();
        });
    });
  // Every client fetches segment k as it completes, as a live player at the edge would.
  for (let k = 0; firstAt + k * segment < end; k++) {
    setTimeout(
      () => {
        for (let i = 0; i < n; i++) void get(i, first + k);
      },
      firstAt + k * segment - Date.now(),
    );
  }
  setTimeout(report, seconds * 1000 + 1000);
}
