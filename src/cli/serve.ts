import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { developmentCertificate, loadCertificate } from '../listen/index.js';
import {
  DELIVERY_PATH,
  HLS_MULTIVARIANT_PATH,
  MANIFEST_PATH,
  METRICS_PATH,
  MULTICAST_KEYS_PATH,
  PLAYER_SW_PATH,
  WEBTRANSPORT_INFO_PATH,
  markMulticast,
  type DeliveryMode,
} from '../media/index.js';
import {
  PrometheusMetrics,
  registerGatewayMetrics,
  registerLiveStreamMetrics,
  registerMulticastSenderMetrics,
  registerOriginMetrics,
  registerQuicMetrics,
  registerMoqMetrics,
  registerWarpMetrics,
  registerWebSocketSessionMetrics,
} from '../metrics/index.js';
import { DEFAULT_PUSH_POLICY, Origin } from '../origin/index.js';
import { VodLibrary, vodRoute } from '../origin/vod/index.js';
import {
  DEFAULT_AUDIO,
  DEFAULT_VIDEO_LADDER,
  parseIngestUrl,
  parseLadder,
  type LiveInput,
  type VideoRendition,
} from '../source/index.js';
import { AnnouncedMulticast, LiveMulticast, probeMulticast, type LiveMulticastOptions } from './live-multicast.js';
import { LiveStream } from './live-stream.js';
import { MOQ_PATH, MoqServer } from '../moq/index.js';
import { WARP_PATH, WarpProducer, WarpServer, type WarpOrderPolicy } from '../warp/index.js';
import { SessionRouter, WebSocketSessionServer } from '../webtransport/index.js';
import { OperatorDrain, type AdminRequest } from './drain.js';

export interface ServeOptions {
  input?: string;
  passthrough: boolean;
  ladder?: string;
  fps: number;
  audio: boolean;
  segmentDuration: number;
  chunkDuration: number;
  lowLatency: boolean;
  targetLatency: number;
  timeShift: number;
  host: string;
  publicUrl?: string;
  port: number | 'off';
  tlsPort: number | 'off';
  /** The operator's certificate and key (PEM files); without them, the development certificate. */
  tlsCert?: string;
  tlsKey?: string;
  /** HTTP/3 and WebTransport on the UDP port of tlsPort. */
  http3: boolean;
  stateDir: string;
  ffmpeg: string;
  push: boolean;
  pushManifest: boolean;
  pushNext: boolean;
  pushChannel: boolean;
  pushPartialBytes: number;
  maxPushes: number;
  earlyHints: boolean;
  /** Folder of media files served as on-demand items (`/vod`). */
  vod?: string;
  /** Multicast push of every rendition (WHP 336 §4); absent = none. */
  multicast?: LiveMulticastOptions;
  /** Sessions of a separate `pushcast multicast send`, advertised from its announcement file. */
  multicastAnnounce?: string;
  /** Warp (draft-lcurley-warp-00) over WebTransport (HTTP/3) and its WebSocket fallback, at /warp/live. */
  warp: boolean;
  warpOrder: WarpOrderPolicy;
  /** Delivery orders a viewer may ask for (?order=); default every one. */
  warpOrdersAllowed?: WarpOrderPolicy[];
  /** The largest latency target (?latency=, seconds) a session's resource limit follows. */
  warpMaxLatency?: number;
  /** Tokens a Warp session must carry (?token=); none = open. */
  warpToken?: string[];
  /** MoQ (moq-lite, docs/moq.md) at /moq, for `<moq-watch>`; the same broadcast as Warp's. */
  moq: boolean;
  /** Tokens a MoQ session must carry (?token=); none = open. */
  moqToken?: string[];
  /** The WebTransport protocols MoQ answers, preferred first (`moqt-16` first: IETF for `<moq-watch>`). */
  moqProtocols?: string[];
  /** The order in which players try the delivery modes (the delivery description's `order`). */
  playerOrder: DeliveryMode[];
  /** Where a drain sends the Warp viewers (GOAWAY): SIGTERM drains when it is set. */
  successor?: string;
  /** The bearer token of `POST /admin/drain` (./drain.ts); without it, no admin endpoint. */
  adminToken?: string;
  /** A drain's bound, seconds. */
  drainTimeout: number;
}

/** build/src/cli → build/web, where scripts/build.sh puts the bundled player page. */
export const WEB_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../web');
const FONT = '/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf';

function log(line: string): void {
  console.log(`${new Date().toISOString().slice(11, 19)} ${line}`);
}

export async function serve(o: ServeOptions): Promise<void> {
  if (o.chunkDuration > o.segmentDuration) throw new Error('--chunk-duration cannot exceed --segment-duration');
  const input: LiveInput =
    o.input === undefined
      ? { kind: 'test-pattern' }
      : o.input === '-'
        ? { kind: 'stdin' }
        : (parseIngestUrl(o.input) ?? { kind: 'file', path: o.input });
  if (input.kind === 'file' && !existsSync(input.path)) throw new Error(`input file ${input.path} does not exist`);
  // A MoQ publisher's Opus and its timestamps are not what the packager takes as is: it is always transcoded.
  const passthrough = o.passthrough && input.kind !== 'test-pattern' && input.kind !== 'moq';
  if (input.kind === 'moq' && !o.moq)
    throw new Error('--input moq:// is published to /moq: MoQ cannot be off (--no-moq)');
  const video: VideoRendition[] = passthrough
    ? [{ id: 'video', width: 0, height: 0, bitrate: 5_000_000 }]
    : o.ladder
      ? parseLadder(o.ladder)
      : [...DEFAULT_VIDEO_LADDER];

  // On-demand items: the folder is scanned once, here; packaging happens on each item's first request.
  let vod: VodLibrary | undefined;
  if (o.vod !== undefined) {
    if (!existsSync(o.vod)) throw new Error(`--vod folder ${o.vod} does not exist`);
    vod = await VodLibrary.open({ dir: o.vod, cacheDir: join(o.stateDir, 'vod'), ffmpegPath: o.ffmpeg, log });
    log(`vod: ${vod.items.length} item${vod.items.length === 1 ? '' : 's'} from ${o.vod}`);
  }

  const metrics = new PrometheusMetrics();
  const stream = new LiveStream({
    source: {
      input,
      video,
      audio: o.audio ? DEFAULT_AUDIO : undefined,
      frameRate: o.fps,
      passthrough,
      fontFile: existsSync(FONT) ? FONT : undefined,
      ffmpegPath: o.ffmpeg,
      stdin: input.kind === 'stdin' ? process.stdin : undefined,
    },
    segmentDuration: o.segmentDuration,
    chunkDuration: o.chunkDuration,
    timeShiftBufferDepth: o.timeShift,
    log,
  });
  registerLiveStreamMetrics(metrics.registry, () => stream.stats());
  if (o.multicast && o.multicastAnnounce)
    throw new Error(
      '--multicast and --multicast-announce exclude each other: the sessions are sent here, or by another process',
    );
  // Multicast where the host allows it; where it does not, one plain sentence, and the player stays unicast.
  let multicast: LiveMulticast | undefined;
  if (o.multicast) {
    const why = await probeMulticast(o.multicast.group, o.multicast.port, o.multicast.interfaceAddress);
    if (why === undefined) {
      const created = await LiveMulticast.create(o.multicast, stream.window, o.stateDir);
      registerGatewayMetrics(metrics.registry, () => created.gateway.stats);
      registerMulticastSenderMetrics(metrics.registry, () => created.senderStats());
      multicast = created;
    } else
      log(
        `multicast: off, because this host does not deliver multicast on ${o.multicast.interfaceAddress} (${why}); players stay on unicast. Try --multicast-interface <address of another interface>, or --no-multicast to silence this.`,
      );
  }
  const announced = o.multicastAnnounce ? new AnnouncedMulticast(o.multicastAnnounce, log) : undefined;
  // Warp: one broadcast, "live", made from the same live window as every other mode.
  const router = new SessionRouter();
  const warp = o.warp
    ? new WarpServer({
        tokens: o.warpToken,
        ordersAllowed: o.warpOrdersAllowed,
        maxLatencyMs: o.warpMaxLatency === undefined ? undefined : o.warpMaxLatency * 1000,
        log,
      })
    : undefined;
  let producer: WarpProducer | undefined;
  if (warp) {
    router.route(WARP_PATH, warp);
    registerWarpMetrics(metrics.registry, () => warp.stats());
  }
  // MoQ: the same broadcast for MoQ clients (`<moq-watch>`), made by a Warp producer of its own.
  const moq = o.moq
    ? new MoqServer({
        tokens: o.moqToken,
        protocols: o.moqProtocols,
        framerate: passthrough ? undefined : o.fps,
        chunkMs: (o.chunkDuration || 1 / o.fps) * 1000,
        publish: stream.moq,
        log,
      })
    : undefined;
  if (moq) {
    router.route(MOQ_PATH, moq);
    registerMoqMetrics(metrics.registry, () => moq.stats());
  }
  let stop: (why: string) => Promise<void> = async () => undefined;
  const drain = new OperatorDrain({
    successor: o.successor,
    timeoutSeconds: o.drainTimeout,
    adminToken: o.adminToken,
    target: warp,
    log,
    exit: (why) => stop(why),
  });
  // The same sessions for browsers without WebTransport: the WebSocket fallback on the HTTP(S) ports.
  // MoQ's protocols may be named there too (`webtransport.moq-lite-03`); @moq/net's fallback names none.
  const webSocketSessions = new WebSocketSessionServer(router, { protocols: moq?.protocols });
  registerWebSocketSessionMetrics(metrics.registry, () => webSocketSessions.stats());
  const origin = new Origin({
    window: stream.window,
    timeline: stream.timeline,
    metrics,
    webRoot: WEB_ROOT,
    lowLatency: o.lowLatency,
    chunkDuration: o.chunkDuration || 1 / o.fps,
    targetLatency: o.targetLatency,
    frameRate: passthrough ? undefined : o.fps,
    push: o.push
      ? {
          ...DEFAULT_PUSH_POLICY,
          onManifest: o.pushManifest,
          nextSegment: o.pushNext,
          liveChannel: o.pushChannel,
          partialBytes: Math.floor(o.pushPartialBytes),
          maxConcurrentPushes: Math.floor(o.maxPushes),
        }
      : undefined,
    earlyHints: o.earlyHints,
    // What players may use, relative to DELIVERY_PATH (docs/player.md).
    delivery: (webTransport) => ({
      version: 1,
      broadcast: 'live',
      targetLatencyMs: Math.round(o.targetLatency * 1000),
      order: o.playerOrder,
      dash: { manifest: 'manifest.mpd' },
      multicast:
        multicast || announced
          ? { manifest: markMulticast('manifest.mpd'), serviceWorker: PLAYER_SW_PATH, scope: '/' }
          : undefined,
      warp: warp ? { path: '/warp/live', webTransport } : undefined,
    }),
    publicUrl: o.publicUrl === undefined ? undefined : publicBase(o.publicUrl),
    routes: [
      (req, res) => drain.handle(req as AdminRequest, res) && 'admin',
      ...(vod ? [vodRoute(vod, { webRoot: WEB_ROOT })] : []),
      ...(multicast ? [multicast.keyRoute()] : []),
      ...(announced ? [announced.keyRoute()] : []),
    ],
    altSvc: multicast
      ? (trackId) => multicast.altSvc(trackId)
      : announced
        ? (trackId) => announced.altSvc(trackId)
        : undefined,
    upgrade: (req, socket, head) =>
      webSocketSessions.handleUpgrade(req, socket, head) ||
      (multicast?.gateway.handleUpgrade(req, socket, head) ?? false),
    webTransport: router,
  });
  const port = o.port === 'off' ? null : o.port;
  const tlsPort = o.tlsPort === 'off' ? null : o.tlsPort;
  if (port === null && tlsPort === null) throw new Error('--port and --tls-port cannot both be off');
  if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) throw new Error('--tls-cert and --tls-key go together');
  const certificate =
    tlsPort === null
      ? undefined
      : o.tlsCert && o.tlsKey
        ? loadCertificate(o.tlsCert, o.tlsKey)
        : developmentCertificate(
            join(o.stateDir, 'tls'),
            o.publicUrl === undefined ? [] : [new URL(o.publicUrl).hostname],
          );
  registerOriginMetrics(metrics.registry, () => origin.stats());
  const addresses = await origin.listen({ host: o.host, port, tlsPort, certificate, http3: o.http3 });
  const quic = origin.quic;
  if (quic) registerQuicMetrics(metrics.registry, () => quic.stats);

  const what =
    input.kind === 'test-pattern'
      ? 'built-in test pattern with clock and 440 Hz tone'
      : input.kind === 'stdin'
        ? 'standard input'
        : input.kind === 'rtmp'
          ? `RTMP ingest on ${input.host}:${input.port}, application '${input.app}', stream key required`
          : input.kind === 'srt'
            ? `SRT ingest (listener) on ${input.host}:${input.port}, ${input.passphrase === undefined ? 'no passphrase: anyone may send' : 'passphrase required'}`
            : input.kind === 'moq'
              ? `MoQ publisher of broadcast '${input.name}' at ${MOQ_PATH} (@moq/publish, ?token= required)`
              : `${input.path} (looped)`;
  log(`source: ${what}`);
  log(
    `ladder: ${passthrough ? 'passthrough (no transcoding)' : video.map((v) => `${v.height}p@${(v.bitrate / 1e6).toFixed(1)}M`).join(', ')}${o.audio ? `, audio ${DEFAULT_AUDIO.bitrate / 1000}k` : ''}; segments ${o.segmentDuration} s, chunks ${o.chunkDuration || 'one frame'}${o.chunkDuration ? ' s' : ''}${o.lowLatency ? ', low latency' : ''}`,
  );
  stream.source.on('started', (run, pid) => log(`encoder run ${run} started (ffmpeg pid ${pid})`));
  let lastProgress = 0;
  stream.source.on('progress', (p) => {
    if (Date.now() - lastProgress < 10_000) return;
    lastProgress = Date.now();
    const published = [...stream.window.tracks.values()].reduce((n, t) => n + t.publishedCount, 0);
    log(
      `encoder: frame ${p.frame}, ${p.fps.toFixed(1)} fps, speed ${p.speed.toFixed(2)}x; ${published} segments published`,
    );
    if (p.speed > 0 && p.speed < 0.95 && p.frame > 100)
      log('warning: the encoder is slower than real time; use a smaller --ladder');
  });
  await stream.start();
  // Where @moq/publish sends the camera (its url with ?token=<the token of --input>, and name): before the
  // stream is live, which it becomes once a publisher sends.
  if (moq && input.kind === 'moq')
    console.log(`moq publish: ${addresses.https ?? addresses.http}${MOQ_PATH}?token=… broadcast ${input.name}`);

  let stopping = false;
  stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping`);
    vod?.close();
    // §4.7: code 0 tells viewers and relays the broadcast is over; sent before the transports go.
    const warpClosed = warp?.close();
    const moqClosed = moq?.close();
    producer?.close();
    await Promise.all([warpClosed, moqClosed]);
    await Promise.all([webSocketSessions.close(), stream.stop(), origin.close(), multicast?.close()]);
    log('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => {
    if (drain.hasSuccessor && !drain.draining) drain.begin('SIGTERM');
    else void stop(drain.draining ? 'SIGTERM during the drain' : 'SIGTERM');
  });

  await stream.whenLive();
  if (warp) {
    producer = new WarpProducer({
      broadcast: 'live',
      window: stream.window,
      timeline: stream.timeline,
      policy: o.warpOrder,
    });
    warp.add(producer);
  }
  if (moq) {
    producer ??= new WarpProducer({
      broadcast: 'live',
      window: stream.window,
      timeline: stream.timeline,
      policy: o.warpOrder,
    });
    moq.add(producer.feed());
  }
  const base = addresses.http ?? addresses.https!;
  let multicastLines: string[] = [];
  if (announced)
    announced.keyUrl =
      (o.publicUrl === undefined ? (addresses.https ?? base) : publicBase(o.publicUrl)) + MULTICAST_KEYS_PATH;
  if (multicast) {
    const pushBase = o.publicUrl === undefined ? (addresses.https ?? base) : publicBase(o.publicUrl);
    const keyBase = o.publicUrl === undefined ? (addresses.https ?? base) : publicBase(o.publicUrl);
    if (!keyBase.startsWith('https:'))
      log(
        'warning: the multicast signing keys are served without TLS (--tls-port off); receivers refuse them unless told otherwise',
      );
    const url = new URL(pushBase);
    multicastLines = await multicast.start({
      window: stream.window,
      origin,
      authority: url.host,
      scheme: url.protocol.slice(0, -1),
      keyBase,
      log,
    });
  }
  log('live');
  // The lines people and scripts look for.
  console.log(`player: ${base}/`);
  console.log(`manifest: ${base}${MANIFEST_PATH}`);
  console.log(`delivery: ${base}${DELIVERY_PATH}`);
  console.log(`hls: ${base}${HLS_MULTIVARIANT_PATH}`);
  console.log(`embed: <script type="module" src="${base}/player/pushcast-player.js"></script>`);
  console.log(`dash player: ${base}/?mode=dash`);
  console.log(`prefetch player: ${base}/?mode=prefetch`);
  console.log(`hls player: ${base}/hls/`);
  if (multicast) console.log(`multicast player: ${base}/multicast/`);
  if (warp) console.log(`warp player: ${base}/warp/`);
  // The URL and broadcast name to give <moq-watch> (WebTransport needs https; the WebSocket fallback takes either).
  if (moq) console.log(`moq: ${addresses.https ?? base}${MOQ_PATH} broadcast live`);
  if (addresses.http && addresses.https) console.log(`https player: ${addresses.https}/`);
  if (addresses.https && o.push && o.pushChannel) {
    log(
      `HTTP/2 push channel at ${addresses.https}/live/<rendition>/push; record it with: pushcast fetch-live ${addresses.https} --ca ${join(o.stateDir, 'tls', 'dev-cert.pem')}`,
    );
  }
  if (addresses.http3)
    log(
      `HTTP/3 on UDP ${new URL(addresses.http3).port} (Alt-Svc: h3); WebTransport details at ${addresses.http3}${WEBTRANSPORT_INFO_PATH}`,
    );
  console.log(`metrics: ${base}${METRICS_PATH}`);
  if (o.adminToken !== undefined && addresses.https)
    log(`admin: POST ${addresses.https}/admin/drain (bearer token) drains this server`);
  if (drain.hasSuccessor && warp)
    log(`drain: SIGTERM sends every Warp viewer to ${o.successor} first (bound ${o.drainTimeout} s)`);
  for (const line of multicastLines) console.log(line);
  if (multicast)
    log(
      `receive a rendition with: pushcast multicast receive ${addresses.https ?? base}${MANIFEST_PATH} --output received${addresses.https ? ` --ca ${join(o.stateDir, 'tls', 'dev-cert.pem')}` : ''}`,
    );
  if (vod) console.log(`playlist: ${base}/vod`);
}

/** The origin part of a --public-url, checked: scheme and host, no path, no trailing slash. */
function publicBase(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`--public-url ${url} is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('--public-url must be an http or https URL');
  return u.origin;
}
