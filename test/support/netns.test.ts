// needs: root and network namespaces (ip, nft) — full lane only
/**
 * The tests' and benches' network namespaces: two labs never share a name; a lab's namespaces reach each
 * other through a veth pair or a bridge, and this namespace reaches the bridge; nftables loss drops and
 * counts; `close()` leaves nothing behind, and what a process that died left is removed by the next lab,
 * while a live process's lab is left alone.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import test from 'node:test';
import { fileURLToPath } from 'node:url';
import { NetworkLab, sh, type Namespace } from './netns.js';
import { within } from './wait.js';

const NETNS = fileURLToPath(new URL('./netns.js', import.meta.url));

const namespaces = () =>
  sh('ip', 'netns', 'list')
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter(Boolean);
const devices = () => sh('ip', '-o', 'link', 'show');
const tables = () => sh('nft', 'list', 'tables');

/** A TCP server in `ns` on `port` that answers `hi`; ended with the namespace. */
async function serveIn(ns: Namespace, port: number): Promise<ChildProcess> {
  const [ip, ...args] = ns.command(
    process.execPath,
    '-e',
    `require('net').createServer((s) => { s.on('error', () => {}); s.end('hi'); }).listen(${port}, () => console.log('up'))`,
  );
  const child = spawn(ip!, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  await within(`the server in ${ns.name}`, once(child.stdout!, 'data'));
  return child;
}

/** What a TCP connection from `ns` (undefined: here) to `address`:`port` reads within 1.5 s, or its failure. */
function fetchFrom(ns: Namespace | undefined, address: string, port: number): string {
  const script = `const s = require('net').connect(${port}, '${address}'); s.setTimeout(1500, () => { console.log('timeout'); process.exit(0); }); s.on('data', (d) => { console.log(String(d)); process.exit(0); }); s.on('error', (e) => { console.log(e.code); process.exit(0); });`;
  return (ns ? ns.run(process.execPath, '-e', script) : sh(process.execPath, '-e', script)).trim();
}

test('two labs of one process never share a name; close() removes their namespaces', async () => {
  const a = NetworkLab.create();
  const b = NetworkLab.create();
  try {
    assert.notEqual(a.tag, b.tag);
    const names = [a.namespace('x').name, b.namespace('x').name];
    assert.notEqual(names[0], names[1]);
    assert.ok(names.every((n) => namespaces().includes(n)));
    assert.ok(a.device('br').length <= 15);
    assert.notEqual(a.device('br'), b.device('br'));
  } finally {
    a.close();
    b.close();
  }
  assert.ok(!namespaces().some((n) => n.startsWith(a.tag) || n.startsWith(b.tag)), 'no namespace left');
});

test('namespaces reach each other over a veth pair and over a bridge, this namespace reaches the bridge; loss drops and counts', async (t) => {
  const lab = NetworkLab.create();
  t.after(() => lab.close());
  const subnet = lab.freeSubnet();
  const bridge = lab.bridge('br', `${subnet}.254/24`);
  const [a, b] = ['a', 'b'].map((role) => lab.namespace(role)) as [Namespace, Namespace];
  lab.attach(a, bridge, 'v0', `${subnet}.1/24`);
  lab.attach(b, bridge, 'v1', `${subnet}.2/24`);
  const server = await serveIn(b, 7777);
  assert.equal(fetchFrom(a, `${subnet}.2`, 7777), 'hi', 'a namespace to another over the bridge');
  assert.equal(
    await new Promise<string>((resolve) => {
      const s = net.connect(7777, `${subnet}.2`);
      s.on('data', (d) => resolve(String(d)));
      s.on('error', (e) => resolve(String(e)));
    }),
    'hi',
    'this namespace to one behind the bridge',
  );

  const loss = lab.loss(b, 100, ['tcp', 'dport', '7777']);
  assert.equal(fetchFrom(a, `${subnet}.2`, 7777), 'timeout', 'everything to the port dropped');
  assert.ok(loss.dropped().packets > 0, 'and counted');
  loss.remove();
  assert.equal(fetchFrom(a, `${subnet}.2`, 7777), 'hi', 'nothing dropped once removed');
  assert.throws(() => lab.loss(b, 0, []), RangeError);

  const [c, d] = ['c', 'd'].map((role) => lab.namespace(role)) as [Namespace, Namespace];
  lab.veth(
    { ns: c, dev: lab.device('c'), address: '10.9.0.1/24' },
    { ns: d, dev: lab.device('d'), address: '10.9.0.2/24' },
  );
  await serveIn(d, 7777);
  assert.equal(fetchFrom(c, '10.9.0.2', 7777), 'hi', 'over a veth pair');

  lab.close();
  await within('the server to end with its namespace', once(server, 'exit'));
  assert.ok(!devices().includes(bridge), 'the bridge is gone');
});

test("what a process that died left is removed by the next lab; a live process's lab is left alone", async () => {
  /** A process that makes a lab with a namespace, a bridge and a table, says their names, and waits. */
  const maker = async () => {
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { NetworkLab } from ${JSON.stringify(NETNS)};
         const lab = NetworkLab.create();
         const ns = lab.namespace('left');
         lab.bridge('br');
         lab.loss(undefined, 1, ['udp', 'dport', '9']);
         console.log(JSON.stringify({ ns: ns.name, tag: lab.tag }));
         setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const [line] = (await within('the lab maker', once(child.stdout!, 'data'))) as [Buffer];
    return { child, ...(JSON.parse(String(line)) as { ns: string; tag: string }) };
  };
  const dead = await maker();
  const live = await maker();
  try {
    dead.child.kill('SIGKILL');
    await once(dead.child, 'exit');
    assert.ok(namespaces().includes(dead.ns), 'SIGKILL left the namespace behind');
    const lab = NetworkLab.create();
    lab.close();
    assert.ok(lab.stale.includes(dead.ns), `removed: ${lab.stale.join(', ')}`);
    assert.ok(!namespaces().includes(dead.ns));
    assert.ok(!devices().includes(`${dead.tag}br`), "the dead process's bridge is gone");
    assert.ok(!tables().includes(dead.tag.replace('pcx', 'pcx_').replace('-', '_')), 'and its table');
    assert.ok(namespaces().includes(live.ns), "the live process's namespace is left alone");
    assert.ok(devices().includes(`${live.tag}br`));
  } finally {
    live.child.kill('SIGKILL');
    await once(live.child, 'exit');
    NetworkLab.create().close(); // removes what the live one left once it died
  }
  assert.ok(!namespaces().includes(live.ns));
});
