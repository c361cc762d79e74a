/**
 * Multicast push end to end, over real multicast between network namespaces that the test creates
 * (test/support/netns.ts):
 * `pushcast serve --multicast` in one namespace, two `pushcast multicast receive` in two others, all
 * joined by a bridge (its port in this namespace lets the test reach the origin). Every resource a
 * receiver writes must be byte-identical to the origin's. Then the same with packet loss made by
 * nftables in the receivers' namespaces (1% and 10%; this kernel has no netem): every segment still
 * ends complete, and what the receivers fetched by unicast is exactly what the origin served them and
 * a small part of the bytes. Meanwhile an attacker in the sender's namespace injects forged pushes,
 * which never reach the folders.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import { join, relative } from 'node:path';
import test from 'node:test';
import { fileURLToPath } from 'node:url';
import { NetworkLab, type Namespace } from '../support/netns.js';
import { runPushcast, startServe, type RunningServe } from '../support/pushcast-process.js';

const FORGED_PATH_SUFFIX = '/999999999.m4s';
const FORGER = fileURLToPath(new URL('../support/multicast-forger.js', import.meta.url));

/**
 * The sender's and the receivers' namespaces, each with a port on one bridge in this namespace (whose
 * address lets the test reach the origin), and a route for the source-specific groups.
 */
function network() {
  const lab = NetworkLab.create();
  try {
    const subnet = lab.freeSubnet();
    const bridge = lab.bridge('br', `${subnet}.254/24`);
    const [sender, ...receivers] = ['send', 'rx1', 'rx2'].map((role, i) => {
      const ns = lab.namespace(role);
      const dev = lab.attach(ns, bridge, `v${i}`, `${subnet}.${i + 1}/24`);
      lab.route(ns, '232.0.0.0/8', dev);
      return ns;
    });
    return { lab, sender: sender!, receivers, senderIp: `${subnet}.1` };
  } catch (error) {
    lab.close();
    throw error;
  }
}

type Network = ReturnType<typeof network>;

/** The session's datagrams, of which nftables drops a share in the lossy receivers' namespaces. */
const SESSION_PORTS = ['udp', 'dport', '5000-5010'];

interface Summary {
  pushes: number;
  complete: number;
  repaired: number;
  unicast: number;
  gapFilled: number;
  failed: number;
  bytes: number;
  repairBytes: number;
  rangeBytes: number;
  wholeBytes: number;
  packets: number;
  lost: number;
  forged: number;
}

async function receive(ns: Namespace, origin: string, out: string, ca: string, seconds: number): Promise<Summary> {
  const receiver = runPushcast(
    'multicast',
    ['receive', `${origin}/live/manifest.mpd`, '--output', out, '--ca', ca, '--duration', String(seconds)],
    { netns: ns.name },
  );
  const code = await receiver.exited;
  const line = receiver.lines.find((l) => l.startsWith('summary: '));
  assert.equal(code, 0, `receiver in ${ns.name} exited ${code}:\n${receiver.lines.join('\n')}`);
  assert.ok(line, `no summary from the receiver in ${ns.name}:\n${receiver.lines.join('\n')}`);
  return JSON.parse(line.slice('summary: '.length)) as Summary;
}

function files(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(`/${relative(dir, p)}`);
    }
  };
  walk(dir);
  return out.sort();
}

async function originBytes(net: Network, path: string): Promise<Buffer> {
  const res = await fetch(`http://${net.senderIp}:8080${path}`);
  assert.equal(res.status, 200, `origin ${path}`);
  return Buffer.from(await res.arrayBuffer());
}

/** Body bytes the origin served for init and media segments (Prometheus metrics). */
async function segmentBytesServed(net: Network): Promise<number> {
  const text = await (await fetch(`http://${net.senderIp}:8080/metrics`)).text();
  let total = 0;
  for (const m of text.matchAll(/^pushcast_http_response_body_bytes_total\{route="(?:segment|init)"\} (\d+)/gm))
    total += Number(m[1]);
  return total;
}

/** Every file a receiver wrote equals the origin's; media segments run without a gap; nothing forged. */
async function checkFolder(net: Network, dir: string, label: string): Promise<Map<string, number[]>> {
  const list = files(dir);
  assert.ok(!list.some((f) => f.endsWith('.part')), `${label}: no half-written file`);
  assert.ok(!list.some((f) => f.endsWith(FORGED_PATH_SUFFIX)), `${label}: a forged push reached the folder`);
  const numbers = new Map<string, number[]>();
  for (const f of list) {
    const m = /^\/live\/([^/]+)\/(\d+)\.m4s$/.exec(f);
    if (m)
      numbers.set(
        m[1]!,
        [...(numbers.get(m[1]!) ?? []), Number(m[2])].sort((a, b) => a - b),
      );
    assert.ok(readFileSync(join(dir, f)).equals(await originBytes(net, f)), `${label}: ${f} differs from the origin's`);
  }
  for (const [rep, ns] of numbers) {
    for (let i = 1; i < ns.length; i++)
      assert.equal(ns[i], ns[i - 1]! + 1, `${label}: ${rep} has no segment ${ns[i - 1]! + 1}`);
  }
  return numbers;
}

test('multicast push between network namespaces: two receivers, byte-identical; 1% and 10% loss repaired by exact ranges; forged pushes refused', {
  timeout: 240_000,
}, async (t) => {
  const net = network();
  const origin = `https://${net.senderIp}:8443`;
  const state = mkdtempSync(join(os.tmpdir(), 'pushcast-mc-'));
  let serve: RunningServe | undefined;
  t.after(async () => {
    await serve?.stop();
    net.lab.close();
    rmSync(state, { recursive: true, force: true });
  });
  serve = await startServe(
    [
      '--multicast',
      '--multicast-interface',
      net.senderIp,
      '--public-url',
      origin,
      '--host',
      '0.0.0.0',
      '--port',
      '8080',
      '--tls-port',
      '8443',
      '--ladder',
      '640x360@800k',
      '--time-shift',
      '300',
      '--state-dir',
      join(state, 'origin'),
    ],
    { netns: net.sender.name },
  );
  const sessions = await Promise.all(
    ['video-360p', 'audio-128k'].map((track) => serve!.waitForLine(new RegExp(`^multicast: ${track} `))),
  );
  const ca = join(state, 'origin', 'tls', 'dev-cert.pem');
  const [, group, port, source, sessionId] = /^multicast: \S+ ([\d.]+):(\d+) source (\S+) session-id ([0-9a-f]+)/.exec(
    sessions[0]!,
  )!;

  // The attacker: forged pushes for the video session all along.
  const [ip, ...forgerArgs] = net.sender.command(process.execPath, FORGER, group!, port!, source!, sessionId!, '150');
  const forger = spawn(ip!, forgerArgs, {
    stdio: 'ignore',
    env: {
      ...process.env,
      FORGER_AUTHORITY: `${net.senderIp}:8443`,
      FORGER_PATH: `/live/video-360p${FORGED_PATH_SUFFIX}`,
    },
  });
  t.after(() => forger.kill('SIGKILL'));

  // 1. No loss: 60 s of the live stream to both receivers.
  const clean = net.receivers.map((_, i) => join(state, `clean-${i}`));
  const before = await segmentBytesServed(net);
  const cleanSummaries = await Promise.all(net.receivers.map((ns, i) => receive(ns, origin, clean[i]!, ca, 60)));
  const servedClean = (await segmentBytesServed(net)) - before;
  const cleanNumbers = await Promise.all(clean.map((dir, i) => checkFolder(net, dir, `receiver ${i + 1}`)));
  for (const [i, s] of cleanSummaries.entries()) {
    const video = cleanNumbers[i]!.get('video-360p') ?? [];
    assert.ok(video.length >= 25, `receiver ${i + 1}: ${video.length} video segments in 60 s`);
    assert.ok((cleanNumbers[i]!.get('audio-128k') ?? []).length >= 25);
    assert.equal(s.failed, 0);
    assert.equal(
      s.repaired + s.unicast + s.gapFilled,
      0,
      `receiver ${i + 1}: without loss, everything arrives by multicast`,
    );
    assert.ok(s.complete >= 2 * 25, `receiver ${i + 1}: ${s.complete} complete pushes`);
    assert.ok(s.forged > 0, `receiver ${i + 1} saw the forged packets (${s.forged}) and refused them`);
  }
  // The two receivers start and stop a moment apart, so either may hold a segment more at either end; every
  // segment pushed while both were joined is in both folders (each folder has no gap, checkFolder).
  const initsOf = (dir: string) => files(dir).filter((f) => !f.endsWith('.m4s'));
  assert.deepEqual(initsOf(clean[0]!), initsOf(clean[1]!), 'both receivers wrote the same init segments');
  const [first, second] = cleanNumbers as [Map<string, number[]>, Map<string, number[]>];
  assert.deepEqual([...first.keys()].sort(), [...second.keys()].sort(), 'both receivers got every representation');
  for (const [representation, numbers] of first) {
    const other = second.get(representation)!;
    const [from, to] = [Math.max(numbers[0]!, other[0]!), Math.min(numbers.at(-1)!, other.at(-1)!)];
    assert.ok(to - from + 1 >= 25, `both receivers hold ${representation} ${from}–${to}`);
  }
  assert.equal(
    servedClean,
    cleanSummaries.reduce((n, s) => n + s.repairBytes, 0),
    'the origin served exactly what the receivers fetched by unicast',
  );

  // 2. Loss: 1% on the first receiver, 10% on the second, 30 s.
  const losses = [1, 10].map((percent, i) => net.lab.loss(net.receivers[i], percent, SESSION_PORTS));
  const lossy = net.receivers.map((_, i) => join(state, `loss-${i}`));
  const beforeLoss = await segmentBytesServed(net);
  const lossSummaries = await Promise.all(net.receivers.map((ns, i) => receive(ns, origin, lossy[i]!, ca, 30)));
  const servedLoss = (await segmentBytesServed(net)) - beforeLoss;
  const drops = losses.map((l) => l.dropped());
  for (const [i, dir] of lossy.entries()) {
    const numbers = await checkFolder(net, dir, `lossy receiver ${i + 1}`);
    assert.ok((numbers.get('video-360p') ?? []).length >= 12, 'every video segment of 30 s ends complete');
    const s = lossSummaries[i]!;
    assert.equal(s.failed, 0, `lossy receiver ${i + 1}: nothing failed`);
    const share = drops[i]!.packets / (s.packets + drops[i]!.packets);
    assert.ok(
      share > (i === 0 ? 0.003 : 0.05),
      `lossy receiver ${i + 1}: nftables dropped ${drops[i]!.packets} datagrams (${(100 * share).toFixed(1)}%)`,
    );
  }
  const [one, ten] = lossSummaries as [Summary, Summary];
  assert.ok(ten.repaired > 0, `10%: pushes repaired by ranges (${ten.repaired})`);
  assert.equal(
    servedLoss,
    one.repairBytes + ten.repairBytes,
    'the origin served exactly what the receivers fetched by unicast',
  );
  // Only missing bytes are fetched by range: never more than the datagrams dropped carried (whole
  // resources are fetched only where a push's promise or headers were lost: `wholeBytes`).
  for (const [i, s] of lossSummaries.entries()) {
    assert.ok(
      s.rangeBytes <= drops[i]!.bytes,
      `receiver ${i + 1}: ${s.rangeBytes} bytes fetched by range, ${drops[i]!.bytes} bytes dropped`,
    );
  }
  t.diagnostic(
    `clean: ${cleanSummaries.map((s) => `${s.complete} pushes, ${s.repaired} repaired, ${s.forged} refused`).join(' | ')}; ` +
      `1%: ${drops[0]!.packets} of ${one.packets + drops[0]!.packets} datagrams dropped (${(drops[0]!.bytes / 1e3).toFixed(0)} kB), ${one.repaired} repaired with ${(one.rangeBytes / 1e3).toFixed(0)} kB of ranges, ${one.unicast + one.gapFilled} fetched whole (${(one.wholeBytes / 1e3).toFixed(0)} kB), of ${(one.bytes / 1e3).toFixed(0)} kB; ` +
      `10%: ${drops[1]!.packets} of ${ten.packets + drops[1]!.packets} datagrams dropped (${(drops[1]!.bytes / 1e3).toFixed(0)} kB), ${ten.repaired} repaired with ${(ten.rangeBytes / 1e3).toFixed(0)} kB of ranges, ${ten.unicast + ten.gapFilled} fetched whole (${(ten.wholeBytes / 1e3).toFixed(0)} kB), of ${(ten.bytes / 1e3).toFixed(0)} kB`,
  );
});
