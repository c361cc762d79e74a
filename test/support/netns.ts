/**
 * Network namespaces for tests and benches, one way (Linux, root; `ip` and `nft`). A `NetworkLab` makes
 * namespaces, veth links, bridges, addresses, routes and nftables packet loss, and `close()` removes all
 * of it, ending what still runs inside.
 *
 * Every name carries the creating process's id: namespaces `pcx<pid>-<n>-<role>`, devices `pcx<pid>-<n><suffix>`,
 * nftables tables `pcx_<pid>_<n>_<name>` (pid and n in base 36, n counting the process's labs). So two
 * runs never collide, and whatever a run that died left behind is recognised by its dead pid and removed
 * by the next lab made (`removeStaleNetworks`), never a live run's. Every lab still open when its
 * process exits is closed then.
 *
 * ```ts
 * const lab = NetworkLab.create();
 * const a = lab.namespace('a');
 * const b = lab.namespace('b');
 * lab.veth({ ns: a, dev: lab.device('a'), address: '10.1.0.1/24' }, { ns: b, dev: lab.device('b'), address: '10.1.0.2/24' });
 * b.run('ping', '-c', '1', '10.1.0.1');
 * lab.close();
 * ```
 */
import { execFileSync } from 'node:child_process';

const PREFIX = 'pcx';
/** Linux's longest interface name (IFNAMSIZ − 1). */
const MAX_DEVICE_NAME = 15;

/** Runs a command; its standard output. Throws with the command's standard error when it fails. */
export function sh(cmd: string, ...args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs `f`, ignoring its failure: for removing what may be gone already. */
export function quietly(f: () => unknown): void {
  try {
    f();
  } catch {
    // gone already
  }
}

/** A network namespace of a lab. */
export interface Namespace {
  readonly name: string;
  /** Runs a command inside; its standard output. */
  run(cmd: string, ...args: string[]): string;
  /** The command line that runs `cmd` inside (`ip netns exec <name> …`): `ip netns exec` execs it in place, so a spawned child's pid is the command's own. */
  command(...cmd: string[]): string[];
  /** The processes running inside now. */
  pids(): number[];
}

/** One end of a veth pair: in `ns` (undefined: this namespace), named `dev`, with `address` (CIDR) if given, up. */
export interface VethEnd {
  ns?: Namespace;
  dev: string;
  address?: string;
}

/** Packet loss made by nftables: counts what it dropped. */
export interface Loss {
  dropped(): { packets: number; bytes: number };
  remove(): void;
}

function pidsIn(ns: string): number[] {
  try {
    return sh('ip', 'netns', 'pids', ns).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Ends what runs in namespace `ns`, then deletes it. */
function dropNamespace(ns: string): void {
  for (const pid of pidsIn(ns)) quietly(() => process.kill(pid, 'SIGKILL'));
  quietly(() => sh('ip', 'netns', 'del', ns));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid a lab's name carries, if it is one: `pcx<pid>-<n>…` (namespaces, devices) or `pcx_<pid>_<n>_…` (tables). */
function ownerOf(name: string): number | undefined {
  const m = new RegExp(`^${PREFIX}(?:([0-9a-z]{1,5})-[0-9a-z]|_([0-9a-z]{1,5})_[0-9a-z]+_)`).exec(name);
  return m ? Number.parseInt((m[1] ?? m[2])!, 36) : undefined;
}

const stale = (name: string) => {
  const pid = ownerOf(name);
  return pid !== undefined && !alive(pid);
};

/**
 * Removes the namespaces, devices and nftables tables of this host's namespace that labs of processes
 * no longer running left behind (ending what still runs in those namespaces); their names.
 */
export function removeStaleNetworks(): string[] {
  const removed: string[] = [];
  const namespaces = sh('ip', 'netns', 'list')
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(PREFIX) && stale(n));
  for (const ns of namespaces) {
    dropNamespace(ns);
    removed.push(ns);
  }
  const devices = sh('ip', '-o', 'link', 'show')
    .split('\n')
    .map((l) => /^\d+: ([^:@\s]+)/.exec(l)?.[1])
    .filter((n): n is string => n?.startsWith(PREFIX) === true && stale(n));
  for (const dev of devices) {
    quietly(() => sh('ip', 'link', 'del', dev));
    removed.push(dev);
  }
  let tables: string[] = [];
  quietly(() => (tables = sh('nft', 'list', 'tables').split('\n')));
  for (const line of tables) {
    const [, family, name] = /^table (\S+) (\S+)$/.exec(line.trim()) ?? [];
    if (!family || !name?.startsWith(PREFIX) || !stale(name)) continue;
    quietly(() => sh('nft', 'delete', 'table', family, name));
    removed.push(name);
  }
  return removed;
}

let labsMade = 0;
const open = new Set<NetworkLab>();
let closeAtExit = false;

export class NetworkLab {
  private readonly namespaces: string[] = [];
  private readonly devices: string[] = [];
  private readonly tables: { ns?: Namespace; name: string }[] = [];
  private subnets = 0;
  private lossesMade = 0;
  private closed = false;

  private constructor(readonly tag: string) {}

  /** A new lab, after removing what dead runs left (`removeStaleNetworks`, whose result is `stale`). */
  static create(): NetworkLab & { readonly stale: string[] } {
    const stale = removeStaleNetworks();
    const lab = new NetworkLab(`${PREFIX}${process.pid.toString(36)}-${(labsMade++).toString(36)}`);
    open.add(lab);
    if (!closeAtExit) {
      closeAtExit = true;
      process.on('exit', () => {
        for (const l of open) l.close();
      });
    }
    return Object.assign(lab, { stale });
  }

  /** A new namespace `<tag>-<role>`, its loopback up (Chromium and Node bind loopback sockets of their own). */
  namespace(role: string): Namespace {
    const name = `${this.tag}-${role}`;
    sh('ip', 'netns', 'add', name);
    this.namespaces.push(name);
    const ns: Namespace = {
      name,
      run: (cmd, ...args) => sh('ip', 'netns', 'exec', name, cmd, ...args),
      command: (...cmd) => ['ip', 'netns', 'exec', name, ...cmd],
      pids: () => pidsIn(name),
    };
    ns.run('ip', 'link', 'set', 'lo', 'up');
    return ns;
  }

  /** A device name of this lab, `<tag><suffix>`: unique on the host, so usable in this namespace too. */
  device(suffix: string): string {
    const name = `${this.tag}${suffix}`;
    if (name.length > MAX_DEVICE_NAME) throw new Error(`device name ${name} is longer than ${MAX_DEVICE_NAME}`);
    return name;
  }

  /** Takes a device made elsewhere (a TUN device of a delay line) into the lab: `close()` deletes it if it is still here. */
  adopt(dev: string): void {
    this.devices.push(dev);
  }

  /** A veth pair between two ends, each addressed and up; a device in another namespace goes with it. */
  veth(a: VethEnd, b: VethEnd): void {
    const where = (e: VethEnd) => (e.ns ? ['netns', e.ns.name] : []);
    sh('ip', 'link', 'add', a.dev, ...where(a), 'type', 'veth', 'peer', 'name', b.dev, ...where(b));
    if (!a.ns) this.devices.push(a.dev);
    else if (!b.ns) this.devices.push(b.dev);
    for (const e of [a, b]) this.up(e);
  }

  /** A bridge in this namespace, with `address` (CIDR) if given; multicast snooping off, so every port gets every group. */
  bridge(suffix: string, address?: string): string {
    const dev = this.device(suffix);
    sh('ip', 'link', 'add', dev, 'type', 'bridge', 'mcast_snooping', '0');
    this.devices.push(dev);
    this.up({ dev, address });
    return dev;
  }

  /** Joins `ns` to `bridge` by a veth pair: `<tag><suffix>` inside, addressed `address`, and its peer a port of the bridge. */
  attach(ns: Namespace, bridge: string, suffix: string, address: string): string {
    const dev = this.device(suffix);
    const port = this.device(`${suffix}p`);
    sh('ip', 'link', 'add', dev, 'netns', ns.name, 'type', 'veth', 'peer', 'name', port);
    this.devices.push(port);
    sh('ip', 'link', 'set', port, 'master', bridge, 'up');
    this.up({ ns, dev, address });
    return dev;
  }

  /** A route to `prefix` (CIDR) through `dev` in `ns` (undefined: this namespace). */
  route(ns: Namespace | undefined, prefix: string, dev: string): void {
    (ns?.run ?? sh)('ip', 'route', 'add', prefix, 'dev', dev);
  }

  /**
   * The first three octets of an IPv4 /24 in 10.200.0.0–10.249.255.0 that no address or route of this
   * namespace uses yet, for addresses seen from here (a bridge's); each call another one.
   */
  freeSubnet(): string {
    const used = sh('ip', '-4', '-o', 'addr', 'show') + sh('ip', '-4', 'route', 'show');
    const labNumber = Number.parseInt(this.tag.slice(this.tag.indexOf('-') + 1), 36);
    for (let attempt = 0; attempt < 1000; attempt++) {
      const n = (process.pid * 8 + labNumber * 2 + this.subnets++ + attempt * 7919) % (50 * 256);
      const prefix = `10.${200 + Math.floor(n / 256)}.${n % 256}`;
      if (!new RegExp(`(^|[^0-9])${prefix.replaceAll('.', '\\.')}\\.`, 'm').test(used)) return prefix;
    }
    throw new Error('no free /24 in 10.200.0.0/13');
  }

  /** A name for an nftables table of this lab. */
  table(name: string): string {
    return `${this.tag.replaceAll('-', '_').replace(PREFIX, `${PREFIX}_`)}_${name}`;
  }

  /**
   * Drops `percent` (to 0.1 %) of the packets matching `match` (nft expression words, e.g. `udp dport
   * 5000-5010`) on their way into `ns`'s sockets (undefined: this namespace's), at random, counting them.
   * nftables, not netem: not every kernel has sch_netem.
   */
  loss(ns: Namespace | undefined, percent: number, match: string[]): Loss {
    const name = this.table(`loss${this.lossesMade++}`);
    const nft = (...args: string[]) => (ns?.run ?? sh)('nft', ...args);
    nft('add', 'table', 'inet', name);
    this.tables.push({ ns, name });
    nft('add', 'chain', 'inet', name, 'in', '{ type filter hook input priority 0 ; }');
    const permille = Math.round(percent * 10);
    if (!(permille > 0 && permille <= 1000)) throw new RangeError(`a loss of ${percent} % is not 0.1 to 100 %`);
    const chance = permille < 1000 ? ['numgen', 'random', 'mod', '1000', '<', String(permille)] : [];
    nft('add', 'rule', 'inet', name, 'in', ...match, ...chance, 'counter', 'drop');
    return {
      dropped() {
        const m = /counter packets (\d+) bytes (\d+)/.exec(nft('list', 'table', 'inet', name));
        return { packets: Number(m?.[1] ?? 0), bytes: Number(m?.[2] ?? 0) };
      },
      remove: () => {
        quietly(() => nft('delete', 'table', 'inet', name));
        this.tables.splice(
          this.tables.findIndex((t) => t.name === name),
          1,
        );
      },
    };
  }

  /** Removes the lab's namespaces (ending what runs in them), devices and tables. Synchronous (for signal handlers), idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    open.delete(this);
    for (const { ns, name } of this.tables) if (!ns) quietly(() => sh('nft', 'delete', 'table', 'inet', name));
    for (const ns of this.namespaces) dropNamespace(ns);
    for (const dev of this.devices) quietly(() => sh('ip', 'link', 'del', dev));
  }

  private up(e: VethEnd): void {
    const run = e.ns?.run ?? sh;
    if (e.address) run('ip', 'addr', 'add', e.address, 'dev', e.dev);
    run('ip', 'link', 'set', e.dev, 'up');
  }
}
