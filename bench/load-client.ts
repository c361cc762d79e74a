/**
 * A closed-loop HTTP/1.1 load generator, run as its own process so that it does not share an event loop
 * with the server under test: `concurrency` keep-alive connections, each asking for the next URL as soon
 * as the previous response has been read. Prints one JSON line of results.
 *   node load-client.js <seconds> <concurrency> <url>...
 */
import http from 'node:http';
import { percentile } from './figures.js';

const [seconds, concurrency, ...urls] = process.argv.slice(2);
const durationMs = Number(seconds) * 1000;
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(concurrency) });
const latencies: number[] = [];
let bytes = 0;
let errors = 0;
let next = 0;
const deadline = Date.now() + durationMs;

function get(url: string): Promise<void> {
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    const req = http.get(url, { agent }, (res) => {
      res.on('data', (d: Buffer) => (bytes += d.byteLength));
      res.on('end', () => {
        if (res.statusCode === 200) latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
        else errors++;
        resolve();
      });
    });
    req.on('error', () => {
      errors++;
      resolve();
    });
  });
}

async function worker(): Promise<void> {
  while (Date.now() < deadline) await get(urls[next++ % urls.length]!);
}

await Promise.all(Array.from({ length: Number(concurrency) }, worker));
agent.destroy();
console.log(
  JSON.stringify({
    requests: latencies.length,
    errors,
    requestsPerSecond: latencies.length / (durationMs / 1000),
    megabitsPerSecond: (bytes * 8) / 1e6 / (durationMs / 1000),
    p50: percentile(latencies, 50) ?? Number.NaN,
    p99: percentile(latencies, 99) ?? Number.NaN,
  }),
);
