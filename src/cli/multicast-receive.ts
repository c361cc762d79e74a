/**
 * `pushcast multicast receive`: the non-browser client of WHP 336. Joins multicast push sessions (found
 * through an origin's Alt-Svc advertisements, or named on the command line), reassembles and verifies
 * each push, repairs what is incomplete with unicast range requests, fetches by unicast what never
 * arrived, and writes every resource to a folder under its path.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createPublicKey } from 'node:crypto';
import { basename, dirname, resolve, sep } from 'node:path';
import { createNodeFetch, type NodeFetch } from '../client/node-fetch.js';
import { MulticastUdpReceiver } from '../multicast/udp-receiver.js';
import {
  FEC_REORDER_MS,
  FecDecoder,
  GOAWAY,
  MulticastReassembler,
  PushSignatureVerifier,
  RESOURCE_PUSH,
  rangeFetcher,
  repairPush,
  type FecDecoderStats,
  type ResourcePushEvent,
} from '../push/index.js';
import { fromHex, multicastAdvertisement, type MulticastAdvertisement } from '../wire/index.js';

export interface MulticastReceiveOptions {
  source?: string;
  group?: string;
  port?: number;
  sessionId?: string;
  output: string;
  repairOrigin?: string;
  signingKey?: string;
  ca?: string;
  insecure: boolean;
  interface?: string;
  representation?: string[];
  duration?: number;
  timeout: number;
  repair: boolean;
  /** The repair port of a session named on the command line. */
  fecPort?: number;
  /** Join the FEC repair flow where one is advertised (`--no-fec`: false). */
  fec: boolean;
  allowHttpKey: boolean;
}

interface SessionPlan {
  name: string;
  ad: MulticastAdvertisement;
  /** Base for unicast repair: the trusted origin (scheme://host:port). */
  repairOrigin?: string;
  /** Pattern of media segment paths, for fetching a segment whose promise never arrived. */
  mediaPath?: (n: number) => string;
}

interface Counters {
  pushes: number;
  complete: number;
  repaired: number;
  unicast: number;
  gapFilled: number;
  failed: number;
  bytes: number;
  /** Body bytes fetched by unicast: `rangeBytes` (missing ranges of repaired pushes) + `wholeBytes` (whole resources). */
  repairBytes: number;
  rangeBytes: number;
  wholeBytes: number;
}

/** The longest a command-line value may make us wait for discovery. */
const DISCOVERY_TIMEOUT_MS = 10_000;

function log(line: string): void {
  console.error(`${new Date().toISOString().slice(11, 19)} ${line}`);
}

/** A file under `dir` for a URL path; refuses anything that would land outside it. */
export function outputFile(dir: string, pathname: string): string {
  const decoded = decodeURIComponent(pathname);
  if (!decoded.startsWith('/') || decoded.includes('\0') || decoded.split('/').some((p) => p === '..' || p === '.'))
    throw new Error(`refusing path ${JSON.stringify(pathname)}`);
  const root = resolve(dir);
  const file = resolve(root, `.${decoded.endsWith('/') ? `${decoded}index` : decoded}`);
  if (!file.startsWith(root + sep)) throw new Error(`refusing path ${JSON.stringify(pathname)}`);
  return file;
}

async function verifierFrom(
  o: MulticastReceiveOptions,
  ad: MulticastAdvertisement | undefined,
  fetch: NodeFetch,
): Promise<PushSignatureVerifier | undefined> {
  if (o.signingKey) {
    const text = await readFile(o.signingKey, 'utf8');
    // An X.509 certificate (nghq's sender.pem): its public key.
    const pem = text.includes('BEGIN CERTIFICATE')
      ? createPublicKey(text).export({ type: 'spki', format: 'pem' }).toString()
      : text;
    return PushSignatureVerifier.fromText(pem);
  }
  if (!ad?.keyUrl) return undefined;
  const url = new URL(ad.keyUrl);
  if (url.protocol !== 'https:' && !o.allowHttpKey)
    throw new Error(`the session's key set ${ad.keyUrl} is not on https: refusing it (--allow-http-key to accept)`);
  const res = await fetch(url.href);
  if (res.status !== 200) throw new Error(`key set ${ad.keyUrl}: HTTP ${res.status}`);
  return PushSignatureVerifier.fromJwks(await res.json());
}

/** Sessions from an origin: its MPD's representations, each probed with HEAD for an Alt-Svc advertisement. */
async function discover(url: string, o: MulticastReceiveOptions, fetch: NodeFetch): Promise<SessionPlan[]> {
  const target = new URL(url);
  const res = await fetch(target.href);
  if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status}`);
  const type = res.headers.get('content-type') ?? '';
  const probes: { name: string; url: URL; mediaPath?: (n: number) => string }[] = [];
  if (type.includes('dash+xml') || target.pathname.endsWith('.mpd')) {
    const mpd = await res.text();
    const ids = [...mpd.matchAll(/<Representation id="([^"]+)"/g)].map((m) => m[1]!);
    for (const id of ids) {
      if (o.representation && !o.representation.includes(id)) continue;
      const init = new URL(`${id}/init.mp4`, target);
      const media = new URL(`${id}/`, target);
      probes.push({ name: id, url: init, mediaPath: (n) => `${media.pathname}${n}.m4s` });
    }
    if (probes.length === 0)
      throw new Error(`${url}: no representation${o.representation ? ` named ${o.representation.join(', ')}` : ''}`);
  } else {
    probes.push({ name: basename(target.pathname), url: target });
  }
  const plans: SessionPlan[] = [];
  for (const p of probes) {
    const head = await fetch(p.url.href, { method: 'HEAD' });
    const altSvc = head.headers.get('alt-svc');
    const ad = altSvc ? multicastAdvertisement(altSvc) : undefined;
    if (!ad) {
      log(`${p.name}: no multicast advertised (Alt-Svc ${altSvc ?? 'absent'}); skipped`);
      continue;
    }
    plans.push({ name: p.name, ad, repairOrigin: o.repairOrigin ?? target.origin, mediaPath: p.mediaPath });
  }
  if (plans.length === 0) throw new Error(`${url}: no multicast session is advertised`);
  return plans;
}

export async function multicastReceive(url: string | undefined, o: MulticastReceiveOptions): Promise<void> {
  const fetch = createNodeFetch({
    ca: o.ca ? await readFile(o.ca) : undefined,
    insecure: o.insecure,
    timeoutMs: DISCOVERY_TIMEOUT_MS,
  });
  let plans: SessionPlan[];
  if (url !== undefined) {
    plans = await discover(url, o, fetch);
  } else {
    if (!o.group || !o.port || !o.sessionId)
      throw new Error(
        'give an origin URL, or --group, --port and --session-id (and --source for a source-specific join)',
      );
    const sessionId = o.sessionId.toLowerCase().replace(/^0x/, '');
    if (!/^([0-9a-f]{2}){1,20}$/.test(sessionId)) throw new Error('--session-id is 1 to 20 bytes in hex');
    plans = [
      {
        name: `${o.group}:${o.port}`,
        ad: {
          group: o.group,
          port: o.port,
          source: o.source,
          sessionId,
          // The decoder reads k and m from each repair packet; only the port matters here.
          ...(o.fecPort ? { fec: { scheme: 'rs', k: 1, m: 1, port: o.fecPort } as const } : {}),
          maxAge: 0,
        },
        repairOrigin: o.repairOrigin,
      },
    ];
  }

  const total: Counters = {
    pushes: 0,
    complete: 0,
    repaired: 0,
    unicast: 0,
    gapFilled: 0,
    failed: 0,
    bytes: 0,
    repairBytes: 0,
    rangeBytes: 0,
    wholeBytes: 0,
  };
  let closing = false;
  const running: {
    plan: SessionPlan;
    reassembler: MulticastReassembler;
    receiver: MulticastUdpReceiver;
    fec?: { decoder: FecDecoder; receiver: MulticastUdpReceiver };
    ended: boolean;
  }[] = [];
  const pending = new Set<Promise<void>>();
  const track = (job: Promise<void>) => {
    pending.add(job);
    void job.finally(() => pending.delete(job));
  };
  const write = async (pathname: string, body: Uint8Array) => {
    const file = outputFile(o.output, pathname);
    await mkdir(dirname(file), { recursive: true });
    const temporary = `${file}.part`;
    await writeFile(temporary, body);
    await rename(temporary, file); // a reader of the folder never sees half a file
  };

  for (const plan of plans) {
    const verifier = await verifierFrom(o, url === undefined ? undefined : plan.ad, fetch);
    if (!verifier)
      log(
        `${plan.name}: no signing key (--signing-key): pushes are checked against their digest only, not authenticated`,
      );
    const sessionId = fromHex(plan.ad.sessionId);
    const withFec = plan.ad.fec !== undefined && o.fec !== false;
    const reassembler = new MulticastReassembler({
      sessionId,
      verifier,
      timeoutMs: o.timeout,
      // With FEC, a lost packet of a growing push waits for its block's repair packets before a range request.
      reorderMs: withFec ? FEC_REORDER_MS : undefined,
      // Progressive pushes: a lost packet is fetched by range while the segment still grows.
      repair:
        plan.repairOrigin && o.repair
          ? rangeFetcher(fetch, (request) => plan.repairOrigin + new URL(request.url).pathname)
          : undefined,
    });
    // FEC: both flows into the decoder, which hands every packet and each recovered one to the reassembler.
    const decoder = withFec ? new FecDecoder({ sessionId, output: (d) => reassembler.enqueuePacket(d) }) : undefined;
    const onDatagram = decoder
      ? (d: Uint8Array) => decoder.enqueue(d)
      : (d: Uint8Array) => reassembler.enqueuePacket(d);
    const join = (port: number) =>
      MulticastUdpReceiver.open({
        group: plan.ad.group,
        port,
        source: plan.ad.source,
        // A sender on this host's loopback is only reachable by joining on the loopback.
        interfaceAddress:
          o.interface ??
          (plan.ad.source?.startsWith('127.') ? '127.0.0.1' : plan.ad.source === '::1' ? '::%lo' : undefined),
        maxDatagramBytes: 4096,
        onDatagram,
      });
    const receiver = await join(plan.ad.port);
    const fec = decoder && plan.ad.fec ? { decoder, receiver: await join(plan.ad.fec.port) } : undefined;
    const state = { plan, reassembler, receiver, fec, ended: false };
    running.push(state);
    const seen = new Set<number>();
    let lowest = Infinity;
    const number = (pathname: string) => {
      const m = /\/(\d{1,15})\.m4s$/.exec(pathname);
      return m ? Number(m[1]) : undefined;
    };
    const unicastGet = async (pathname: string, why: string) => {
      if (!plan.repairOrigin || !o.repair) return false;
      const result = await repairPush(plan.repairOrigin + pathname, new Error(why), { fetch });
      await write(pathname, result.body);
      total.bytes += result.body.length;
      total.repairBytes += result.unicastBytes;
      total.wholeBytes += result.unicastBytes;
      return true;
    };
    reassembler.addEventListener(GOAWAY, () => {
      state.ended = true;
      log(`${plan.name}: the sender ended the session (goaway)`);
    });
    reassembler.addEventListener(RESOURCE_PUSH, (e) => {
      const { request, response } = e as ResourcePushEvent;
      if (closing) {
        reassembler.cancel(request); // stopping: pushes under way finish, new ones are not taken
        response.catch(() => undefined);
        return;
      }
      const pathname = new URL(request.url).pathname;
      total.pushes++;
      const n = number(pathname);
      if (n !== undefined) {
        seen.add(n);
        // A promise lost with its packet: segment numbers jump. Fetch the skipped ones by unicast, a
        // little later, unless their promise turns up meanwhile (reordering).
        if (plan.mediaPath && lowest !== Infinity) {
          for (let k = n - 1; k > lowest && !seen.has(k) && k > n - 16; k--) {
            const missing = k;
            seen.add(missing);
            track(
              new Promise((r) => setTimeout(r, 1000)).then(async () => {
                try {
                  if (await unicastGet(plan.mediaPath!(missing), 'promise lost')) total.gapFilled++;
                } catch (error) {
                  total.failed++;
                  log(
                    `${plan.name}: ${plan.mediaPath!(missing)}: ${error instanceof Error ? error.message : String(error)}`,
                  );
                }
              }),
            );
          }
        }
        lowest = Math.min(lowest, n);
      }
      track(
        // A progressive push's response comes at once and its body may still fail: both go to repair.
        response
          .then(async (res) => new Uint8Array(await res.arrayBuffer()))
          .then(
            async (body) => {
              await write(pathname, body);
              total.complete++;
              total.bytes += body.length;
            },
            async (error: unknown) => {
              if (!plan.repairOrigin || !o.repair) {
                total.failed++;
                log(`${plan.name}: ${pathname}: ${error instanceof Error ? error.message : String(error)}`);
                return;
              }
              try {
                const result = await repairPush(plan.repairOrigin + pathname, error, { fetch, verifier });
                await write(pathname, result.body);
                if (result.route === 'repaired') {
                  total.repaired++;
                  total.rangeBytes += result.unicastBytes;
                } else {
                  total.unicast++;
                  total.wholeBytes += result.unicastBytes;
                }
                total.bytes += result.body.length;
                total.repairBytes += result.unicastBytes;
              } catch (repairError) {
                total.failed++;
                log(
                  `${plan.name}: ${pathname}: ${repairError instanceof Error ? repairError.message : String(repairError)}`,
                );
              }
            },
          ),
      );
    });
    log(
      `${plan.name}: joined ${receiver.description} session ${plan.ad.sessionId}${fec ? `, FEC repair flow ${fec.receiver.description}` : ''}${verifier ? `, keys ${verifier.keyIds.join(', ')}` : ''}${plan.repairOrigin && o.repair ? `, repair from ${plan.repairOrigin}` : ''}`,
    );
  }

  const snapshot = () => {
    const packets = running.reduce((n, s) => n + s.reassembler.stats.packets, 0);
    const lost = running.reduce((n, s) => n + s.reassembler.stats.lost, 0);
    const forged = running.reduce((n, s) => n + s.reassembler.stats.forged + s.reassembler.stats.wrongSession, 0);
    // Ranges fetched into progressive pushes while they grew.
    const grown = running.reduce((n, s) => n + s.reassembler.stats.repairedBytes, 0);
    const grownPushes = running.reduce((n, s) => n + s.reassembler.stats.pushesRepaired, 0);
    const fec = (pick: (s: FecDecoderStats) => number) =>
      running.reduce((n, s) => n + (s.fec ? pick(s.fec.decoder.stats) : 0), 0);
    return {
      ...total,
      complete: total.complete - grownPushes,
      repaired: total.repaired + grownPushes,
      rangeBytes: total.rangeBytes + grown,
      repairBytes: total.repairBytes + grown,
      packets,
      lost,
      lossPercent: packets + lost === 0 ? 0 : (100 * lost) / (packets + lost),
      forged,
      // Lost packets that FEC gave back (a repair packet that overtook its block's last packet recovers
      // a packet that was not lost: recoveredLate), its repair packets, and blocks it could not repair.
      fecRecovered: fec((f) => f.recovered - f.recoveredLate),
      fecRepairPackets: fec((f) => f.repairPackets),
      fecUnrecoverable: fec((f) => f.unrecoverable),
    };
  };
  const status = () => {
    const s = snapshot();
    const fec = running.some((r) => r.fec) ? ` after FEC, which recovered ${s.fecRecovered}` : '';
    return `packets ${s.packets}, lost ${s.lost} (${s.lossPercent.toFixed(2)}%)${fec}, pushes ${s.complete} complete, ${s.repaired} repaired, ${s.unicast + s.gapFilled} by unicast, ${s.failed} failed, ${(s.bytes / 1e6).toFixed(1)} MB (${(s.repairBytes / 1e3).toFixed(0)} kB by unicast), ${s.forged} refused packets`;
  };
  const tty = process.stderr.isTTY;
  let lastLine = 0;
  const ticker = setInterval(() => {
    if (tty) process.stderr.write(`\r${status()}\x1b[K`);
    else if (Date.now() - lastLine >= 10_000) {
      lastLine = Date.now();
      log(status());
    }
  }, 1000);

  await new Promise<void>((resolveStop) => {
    const stop = () => resolveStop();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    if (o.duration !== undefined) setTimeout(stop, o.duration * 1000).unref();
    const check = setInterval(() => {
      if (running.every((s) => s.ended)) {
        clearInterval(check);
        stop();
      }
    }, 250);
    check.unref();
  });
  // Pushes under way finish over multicast (or are repaired), bounded by the push timeout plus a fetch;
  // no new one is taken. Then the sockets close.
  closing = true;
  await Promise.race([
    Promise.allSettled([...pending]),
    new Promise((r) => setTimeout(r, o.timeout + DISCOVERY_TIMEOUT_MS)),
  ]);
  clearInterval(ticker);
  await Promise.all(running.flatMap((s) => [s.receiver.close(), s.fec?.receiver.close()]));
  if (tty) process.stderr.write('\n');
  log(status());
  console.log(`summary: ${JSON.stringify(snapshot())}`);
  process.exit(0);
}
