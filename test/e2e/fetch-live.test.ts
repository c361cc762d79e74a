import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { startServe, type RunningServe } from '../support/pushcast-process.js';

const BIN = fileURLToPath(new URL('../../../bin/pushcast.js', import.meta.url));
const RECORD_SECONDS = 60;

let serve: RunningServe;
const out = mkdtempSync(join(tmpdir(), 'pushcast-record-'));

before(async () => {
  // A time-shift buffer longer than the recording, so that every recorded segment can still be fetched to compare.
  serve = await startServe(['--ladder', '320x180@300k,640x360@800k', '--segment-duration', '1', '--time-shift', '120']);
});
after(async () => {
  await serve?.stop();
  rmSync(out, { recursive: true, force: true });
});

test(`fetch-live records ${RECORD_SECONDS} s through the push channel, byte-identical to what the origin serves`, async (t) => {
  const https = serve.httpsPlayer!.replace(/\/$/, '');
  const child = spawn(
    process.execPath,
    [
      BIN,
      'fetch-live',
      https,
      '--ca',
      '.pushcast/tls/dev-cert.pem',
      '--duration',
      String(RECORD_SECONDS),
      '--out',
      out,
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (output += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (output += d));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 0, output);
  assert.match(output, /^\d+ s: \d+ segments/m, 'a progress line');

  const origin = new URL(serve.manifest).origin;
  let segments = 0;
  for (const rendition of ['video-180p', 'audio-128k']) {
    const files = readdirSync(join(out, rendition)).sort();
    assert.ok(files.includes('init.mp4'), `${rendition}: init recorded`);
    const numbers = files
      .filter((f) => f.endsWith('.m4s'))
      .map((f) => Number(f.slice(0, -4)))
      .sort((a, b) => a - b);
    // One segment per second for a minute, with no gap.
    assert.ok(numbers.length >= RECORD_SECONDS - 3, `${rendition}: ${numbers.length} segments`);
    assert.equal(numbers.at(-1)! - numbers[0]! + 1, numbers.length, `${rendition}: no segment missing`);
    for (const file of files) {
      const res = await fetch(`${origin}/live/${rendition}/${file}`);
      assert.equal(res.status, 200, `${rendition}/${file} still served`);
      assert.deepEqual(
        new Uint8Array(await res.arrayBuffer()),
        new Uint8Array(readFileSync(join(out, rendition, file))),
        `${rendition}/${file} identical`,
      );
      if (file.endsWith('.m4s')) segments++;
    }
  }
  assert.deepEqual(
    readdirSync(out).sort(),
    ['audio-128k', 'manifest.mpd', 'video-180p'],
    'only the chosen rendition and audio',
  );
  t.diagnostic(`recorded and verified ${segments} segments`);
});
