/**
 * The soak's steady viewers, in a process of their own so that their CPU and memory are never counted as
 * the server's: `perMode` viewers of each delivery mode for the whole run, each one reconnecting when its
 * session or connection is lost (counted), all on the loopback.
 *
 * - `dash-h1`, `dash-h2`, `dash-h3`: `DashLiveFollower` over HTTP/1.1, HTTP/2 and HTTP/3, one video
 *   rendition (a different one per viewer) and the audio, and the MPD again every segment duration, as a
 *   player refreshes it. Odd-numbered viewers are low-latency players: their follower's clock runs one
 *   segment ahead, so each segment is asked for 300 ms after it starts and streams chunk by chunk while
 *   it grows; even-numbered ones ask for each segment once it is complete.
 * - `warp-webtransport`, `warp-websocket`: `WarpClient` sessions at /warp/live with the token, over
 *   HTTP/3 and over the WebSocket fallback.
 * - `multicast`: a WebSocket subscriber of the origin's multicast gateway, its packets reassembled and
 *   checked against their digests by `MulticastReassembler`.
 *
 *   node build/bench/soak/viewers.js '<ViewersArgs as JSON>'
 * One JSON line on stdout per command read from stdin: `status` → a StatusLine; `quit` (or the end of
 * stdin) closes every viewer and exits.
 */
import { readFileSync } from 'node:fs';
import readline from 'node:readline';
import { WebSocket } from 'ws';
import { DashLiveFollower, createNodeFetch } from '../../src/client/index.js';
import { MulticastReassembler, RESOURCE_PUSH, type ResourcePushEvent } from '../../src/push/index.js';
import { WarpClient } from '../../src/warp/index.js';
import { connectWebSocketSession } from '../../src/webtransport/index.js';
import { fromHex } from '../../src/wire/index.js';
import { http2Fetch, http3Fetch, type CountingFetch } from './fetchers.js';

export const VIEWER_MODES = [
  'dash-h1',
  'dash-h2',
  'dash-h3',
  'warp-webtransport',
  'warp-websocket',
  'multicast',
] as const;
export type ViewerMode = (typeof VIEWER_MODES)[number];

export interface MulticastSession {
  track: string;
  group: string;
  port: number;
  source: string;
  sessionId: string;
}

export interface ViewersArgs {
  /** http://127.0.0.1:<port> */
  http: string;
  tlsPort: number;
  caFile: string;
  token: string;
  perMode: number;
  segmentSeconds: number;
  multicast: MulticastSession[];
}

export interface ViewerStatus {
  mode: ViewerMode;
  index: number;
  /** Segments received whole (DASH: fetched 200; Warp: handed over complete; multicast: reassembled and verified). */
  segments: number;
  bytes: number;
  /** Failed requests, segments skipped or cut short, refused or failed connections. */
  errors: number;
  reconnects: number;
  /** The longest time without a new segment since the viewer's first one, s. */
  longestGapSeconds: number;
  lastError?: string;
}

export interface StatusLine {
  type: 'status';
  t: number;
  viewers: ViewerStatus[];
}

interface Viewer {
  status: ViewerStatus;
  lastSegmentAt: number;
  close(): Promise<void>;
}

const args = JSON.parse(process.argv[2] ?? '{}') as ViewersArgs;
const ca = readFileSync(args.caFile, 'utf8');
const d = args.segmentSeconds * 1000;
const emit = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const message = (e: unknown) => (e instanceof Error ? e.message : String(e));
let quitting = false;

function newViewer(mode: ViewerMode, index: number): Viewer {
  return {
    status: { mode, index, segments: 0, bytes: 0, errors: 0, reconnects: 0, longestGapSeconds: 0 },
    lastSegmentAt: 0,
    close: async () => {},
  };
}

function gotSegment(v: Viewer, bytes: number): void {
  const now = Date.now();
  if (v.lastSegmentAt > 0)
    v.status.longestGapSeconds = Math.max(v.status.longestGapSeconds, (now - v.lastSegmentAt) / 1000);
  v.lastSegmentAt = now;
  v.status.segments++;
  v.status.bytes += bytes;
}

function failed(v: Viewer, why: string): void {
  v.status.errors++;
  v.status.lastError = why.slice(0, 200);
}

/** The representations a DASH viewer follows: one video rendition (by index) and every audio one. */
async function pickRepresentations(fetch: CountingFetch['fetch'], index: number): Promise<string[]> {
  const res = await fetch(`${args.http}/live/manifest.mpd`);
  if (res.status !== 200) throw new Error(`MPD: HTTP ${res.status}`);
  const ids = [...(await res.text()).matchAll(/<Representation\b[^>]*\sid="([^"]+)"/g)].map((m) => m[1]!);
  const video = ids.filter((id) => id.startsWith('video'));
  return [...(video.length ? [video[index % video.length]!] : []), ...ids.filter((id) => id.startsWith('audio'))];
}

function dashViewer(mode: 'dash-h1' | 'dash-h2' | 'dash-h3', index: number): Viewer {
  const v = newViewer(mode, index);
  const tls = `https://127.0.0.1:${args.tlsPort}`;
  const counting: CountingFetch =
    mode === 'dash-h1'
      ? { fetch: createNodeFetch({ timeoutMs: 10_000 }), reconnects: 0, close: async () => {} }
      : mode === 'dash-h2'
        ? http2Fetch(tls, ca, 'localhost')
        : http3Fetch(args.tlsPort, ca, 'localhost');
  // HTTP/1.1 on the cleartext port; HTTP/2 and HTTP/3 on the TLS port (the URL's origin is not used by them).
  const base = mode === 'dash-h1' ? args.http : tls;
  const lowLatency = index % 2 === 1;
  let follower: DashLiveFollower | undefined;
  let refresh: ReturnType<typeof setInterval> | undefined;
  void (async () => {
    while (!quitting && !follower) {
      try {
        const representations = await pickRepresentations(counting.fetch, index);
        const f = new DashLiveFollower({
          mpdUrl: `${base}/live/manifest.mpd`,
          fetch: counting.fetch,
          representations,
          onSegment: (_init, segment) => gotSegment(v, segment.body.length),
          log: (line) => failed(v, line),
          now: lowLatency ? () => Date.now() + d : undefined,
        });
        await f.start();
        follower = f;
      } catch (error) {
        failed(v, message(error));
        await sleep(2000);
      }
    }
    refresh = setInterval(() => {
      counting
        .fetch(`${base}/live/manifest.mpd`)
        .then(async (res) => {
          await res.arrayBuffer();
          if (res.status !== 200) failed(v, `MPD: HTTP ${res.status}`);
        })
        .catch((error) => failed(v, `MPD: ${message(error)}`));
    }, d);
  })();
  v.close = async () => {
    follower?.stop();
    clearInterval(refresh);
    await counting.close();
  };
  Object.defineProperty(v.status, 'reconnects', { enumerable: true, get: () => counting.reconnects });
  return v;
}

function warpViewer(mode: 'warp-webtransport' | 'warp-websocket', index: number): Viewer {
  const v = newViewer(mode, index);
  const query = `?token=${encodeURIComponent(args.token)}&latency=${d}`;
  const url =
    mode === 'warp-webtransport'
      ? `https://localhost:${args.tlsPort}/warp/live${query}`
      : `${args.http}/warp/live${query}`;
  let client: WarpClient | undefined;
  let connects = 0;
  const loop = (async () => {
    while (!quitting) {
      if (client && client.openSessions > 0) {
        await sleep(1000);
        continue;
      }
      if (client) {
        failed(v, `session closed: ${client.lastClose?.code} ${client.lastClose?.reason}`);
        await client.close();
        client = undefined;
      }
      if (connects++ > 0) v.status.reconnects++;
      try {
        client = await WarpClient.connect(url, {
          bufferMs: d,
          ca,
          connect: mode === 'warp-websocket' ? (u) => connectWebSocketSession(u, { timeoutMs: 10_000 }) : undefined,
          sink: {
            data: (_segment, bytes) => (v.status.bytes += bytes.length),
            end: (_segment, complete) => (complete ? gotSegment(v, 0) : failed(v, 'segment cut short')),
            skip: (track, _time, why) => failed(v, `${track}: segment skipped (${why})`),
          },
        });
      } catch (error) {
        failed(v, message(error));
        await sleep(2000);
      }
    }
  })();
  v.close = async () => {
    await client?.close();
    await loop;
  };
  return v;
}

function multicastViewer(index: number): Viewer {
  const v = newViewer('multicast', index);
  const s = args.multicast[index % args.multicast.length];
  if (!s) {
    failed(v, 'the origin advertises no multicast session');
    return v;
  }
  const url = `${args.http.replace(/^http/, 'ws')}/multicast/gateway?group=${s.group}&port=${s.port}&source=${s.source}&session-id=${s.sessionId}`;
  let ws: WebSocket | undefined;
  let connects = 0;
  const open = () => {
    if (quitting) return;
    if (connects++ > 0) v.status.reconnects++;
    const reassembler = new MulticastReassembler({ sessionId: fromHex(s.sessionId) });
    reassembler.addEventListener(RESOURCE_PUSH, (e) => {
      const { request, response } = e as ResourcePushEvent;
      response.then(
        async (r) => {
          const body = await r.arrayBuffer();
          if (new URL(request.url).pathname.endsWith('.m4s')) gotSegment(v, body.byteLength);
        },
        (error) => failed(v, `${new URL(request.url).pathname}: ${message(error)}`),
      );
    });
    const socket = new WebSocket(url, { origin: args.http, perMessageDeflate: false });
    ws = socket;
    socket.on('message', (data: Buffer) => reassembler.enqueuePacket(new Uint8Array(data)));
    socket.on('error', (error) => failed(v, message(error)));
    socket.on('close', () => {
      if (!quitting) setTimeout(open, 1000);
    });
  };
  open();
  v.close = async () => {
    ws?.close();
  };
  return v;
}

const viewers: Viewer[] = [];
for (let i = 0; i < args.perMode; i++) {
  viewers.push(dashViewer('dash-h1', i), dashViewer('dash-h2', i), dashViewer('dash-h3', i));
  viewers.push(warpViewer('warp-webtransport', i), warpViewer('warp-websocket', i));
  viewers.push(multicastViewer(i));
}

async function quit(): Promise<void> {
  if (quitting) return;
  quitting = true;
  await Promise.race([Promise.all(viewers.map((v) => v.close().catch(() => undefined))), sleep(5000)]);
  process.exit(0);
}

const commands = readline.createInterface({ input: process.stdin });
commands.on('line', (line) => {
  const command = JSON.parse(line) as { cmd: 'status' | 'quit' };
  if (command.cmd === 'status')
    emit({ type: 'status', t: Date.now(), viewers: viewers.map((v) => ({ ...v.status })) } satisfies StatusLine);
  else void quit();
});
commands.on('close', () => void quit());
process.on('SIGTERM', () => void quit());
