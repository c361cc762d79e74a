import { Command, InvalidArgumentError, Option } from 'commander';
import { isIP } from 'node:net';
import { fetchLive } from './fetch-live.js';
import { multicastReceive } from './multicast-receive.js';
import { multicastSend } from './multicast-send.js';
import { gatewayCommand } from './gateway.js';
import { relayCommand } from './relay.js';
import { serve } from './serve.js';
import { DEFAULT_DRAIN_TIMEOUT_S, MAX_ADMIN_BODY_BYTES, checkSuccessor } from './drain.js';
import { WARP_ORDER_POLICIES, type WarpOrderPolicy } from '../warp/index.js';
import { DELIVERY_MODES, parseModeOrder, type DeliveryMode } from '../media/index.js';

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number');
  return n;
}

function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be zero or a positive number');
  return n;
}

/** A TCP port, 0 for any free one, or `off` (commander cannot store null, hence the string). */
function port(value: string): number | 'off' {
  if (value === 'off') return 'off';
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError('must be a port number (0-65535) or "off"');
  return n;
}

function ipAddress(value: string): string {
  if (isIP(value) === 0) throw new InvalidArgumentError('must be an IPv4 or IPv6 address');
  return value;
}

function udpPort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError('must be a port number (1-65535)');
  return n;
}

/** `k:m`: m FEC repair packets per block of k packets of a session. */
function fecSpec(value: string): { k: number; m: number } {
  const m = /^([0-9]{1,3}):([0-9]{1,3})$/.exec(value);
  const k = Number(m?.[1]);
  const r = Number(m?.[2]);
  // Receivers read 1-byte packet numbers within 128 of the newest: a block recovered late must stay inside.
  if (!m || k < 1 || r < 1 || k + r > 100)
    throw new InvalidArgumentError(
      'must be k:m, repair packets per block of k packets, k and m ≥ 1, k + m ≤ 100 (e.g. 20:2)',
    );
  return { k, m: r };
}

function playerOrder(value: string): DeliveryMode[] {
  try {
    return parseModeOrder(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message.replace(/^delivery description: /, ''));
  }
}

function warpOrder(value: string): WarpOrderPolicy {
  if (!(WARP_ORDER_POLICIES as readonly string[]).includes(value))
    throw new InvalidArgumentError(`one of ${WARP_ORDER_POLICIES.join(', ')}`);
  return value as WarpOrderPolicy;
}

/** Comma-separated delivery order policies: those a viewer may ask for with `?order=`. */
function warpOrders(value: string): WarpOrderPolicy[] {
  const policies = value.split(',').map((p) => p.trim());
  const unknown = policies.filter((p) => !(WARP_ORDER_POLICIES as readonly string[]).includes(p));
  if (unknown.length || policies.length === 0)
    throw new InvalidArgumentError(`comma-separated, each one of ${WARP_ORDER_POLICIES.join(', ')}`);
  return [...new Set(policies)] as WarpOrderPolicy[];
}

/** The largest latency target (seconds) a Warp session's resource limit follows. */
function maxLatency(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0.5) throw new InvalidArgumentError('must be a number of seconds, at least 0.5');
  return n;
}

function successor(value: string): string {
  try {
    return checkSuccessor(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

/** The drain's options, the same for `serve` and `relay` (./drain.ts). */
function drainOptions(viewers: string): [Option, Option, Option] {
  return [
    new Option(
      '--successor <url>',
      `where a drain sends ${viewers} (Warp GOAWAY), e.g. https://relay-b.example:8445; SIGTERM drains when given (a second SIGTERM stops at once)`,
    ).argParser(successor),
    new Option(
      '--admin-token <token>',
      `bearer token of POST /admin/drain (body, optional: {"successor": "https://…"}, at most ${MAX_ADMIN_BODY_BYTES} bytes); without it, no admin endpoint`,
    ).env('PUSHCAST_ADMIN_TOKEN'),
    new Option(
      '--drain-timeout <s>',
      'how long a drain waits for the sessions to leave before cutting the rest and exiting',
    )
      .argParser(positiveNumber)
      .default(DEFAULT_DRAIN_TIMEOUT_S),
  ];
}

function ttl(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 255) throw new InvalidArgumentError('must be 0 to 255');
  return n;
}

const program = new Command()
  .name('pushcast')
  .description('Live media push delivery for the web: a live CMAF/MPEG-DASH origin and the push modes built on it.')
  .showHelpAfterError();

program
  .command('serve')
  .description(
    'Run a live origin: encode a source with ffmpeg, package it into CMAF segments and serve MPEG-DASH with a player page.',
  )
  .option(
    '-i, --input <file|-|url>',
    'loop a media file as a live stream, read fragmented MP4 from standard input ("-"), or take an encoder\'s stream: rtmp://0.0.0.0:1935/live/<key> (RTMP, the stream key must match) or srt://0.0.0.0:9000?passphrase=<10-79 chars> (SRT listener) or moq://<name>?token=<token> (a @moq/publish page publishing <name> at /moq); default: a built-in test pattern',
  )
  .option(
    '--passthrough',
    "with --input: pass the input video and audio through without transcoding (segments cut at the encoder's key frames, described one by one in the MPD)",
    false,
  )
  .option(
    '--ladder <spec>',
    'video renditions as WIDTHxHEIGHT@BITRATE,... (default 640x360@800k,960x540@1.6M,1280x720@3M)',
  )
  .option('--fps <n>', 'frame rate of the encoded video', positiveNumber, 25)
  .option('--no-audio', 'encode no audio track')
  .option('--segment-duration <s>', 'target segment duration in seconds', positiveNumber, 2)
  .option('--chunk-duration <s>', 'CMAF chunk duration in seconds; 0 = one frame per chunk', nonNegativeNumber, 0.2)
  .option('--no-low-latency', 'plain live DASH: announce segments only when complete')
  .option('--target-latency <s>', 'live latency the player should hold (MPD ServiceDescription)', positiveNumber, 3)
  .option(
    '--time-shift <s>',
    'seconds of segments kept for time shifting (MPD timeShiftBufferDepth)',
    positiveNumber,
    60,
  )
  .option('--host <address>', 'address to listen on', '0.0.0.0')
  .option(
    '--public-url <url>',
    'public base URL of the origin for absolute URLs in the MPD (behind a CDN), e.g. https://cdn.example.com',
  )
  .option('-p, --port <port>', 'cleartext HTTP/1.1 port (0 = any free port, "off" = none)', port, 8080)
  .option('--tls-port <port>', 'HTTPS port, HTTP/2 and HTTP/1.1 (0 = any free port, "off" = none)', port, 8443)
  .option('--tls-cert <file>', 'PEM certificate (chain) for HTTPS and HTTP/3 instead of the development certificate')
  .option('--tls-key <file>', 'PEM private key of --tls-cert')
  .option('--no-http3', 'no HTTP/3 (and so no WebTransport) on the UDP port of --tls-port')
  .option('--no-warp', 'no Warp (segments on prioritised WebTransport streams, at /warp/live)')
  .option(
    '--warp-order <policy>',
    `Warp delivery order under congestion: ${WARP_ORDER_POLICIES.join(', ')} (docs/warp-wire.md)`,
    warpOrder,
    'audio-first',
  )
  .option(
    '--warp-orders-allowed <policies>',
    `delivery orders a Warp viewer may ask for with ?order=, comma-separated; default: all (${WARP_ORDER_POLICIES.join(',')})`,
    warpOrders,
  )
  .option(
    '--warp-max-latency <s>',
    "the largest latency target (?latency=) a Warp session's send queue follows, seconds",
    maxLatency,
    10,
  )
  .option('--warp-token <token...>', 'tokens a Warp viewer must present (?token=…); default: none needed')
  .option('--no-moq', 'no MoQ (moq-lite for <moq-watch>, at /moq, broadcast live; docs/moq.md)')
  .option('--moq-token <token...>', 'tokens a MoQ session must present (?token=…); default: none needed')
  .option(
    '--moq-protocols <protocols>',
    'the WebTransport protocols MoQ answers, preferred first, comma-separated, of moq-lite-03, moql, moqt-16 (docs/moq.md)',
    (v: string) => v.split(',').map((p) => p.trim()),
  )
  .option(
    '--player-order <modes>',
    `the order in which players try the delivery modes, comma-separated, of ${DELIVERY_MODES.join(', ')} (docs/player.md)`,
    playerOrder,
    [...DELIVERY_MODES],
  )
  .option('--no-push', 'no HTTP/2 server push at all')
  .option('--no-push-manifest', 'do not push init and newest segments with the MPD')
  .option('--no-push-next', 'do not push segment N+1 with segment N')
  .option('--no-push-channel', 'no live push channel (GET /live/<rendition>/push)')
  .option(
    '--push-partial-bytes <n>',
    'on-demand items: push only the first N bytes (0 = none)',
    nonNegativeNumber,
    1 << 20,
  )
  .option('--max-pushes <n>', 'concurrent pushes per HTTP/2 connection', positiveNumber, 16)
  .option('--no-early-hints', 'no 103 Early Hints on the player page and MPD')
  .option(
    '--state-dir <dir>',
    'where pushcast keeps its development certificate and packaged on-demand items',
    '.pushcast',
  )
  .addOption(new Option('--ffmpeg <path>', 'ffmpeg executable').default('ffmpeg'))
  .option(
    '--vod <dir>',
    'also serve every media file in <dir> as an on-demand item (playlist page /vod; packaged on first use into <state-dir>/vod)',
  )
  .option(
    '--multicast',
    'push every rendition over IP multicast too (HTTP/QUIC, h3m-07), advertised with Alt-Svc, with a WebSocket gateway for browsers (the default)',
    true,
  )
  .option('--no-multicast', 'no multicast push: HTTP only')
  .option(
    '--multicast-group <address>',
    'multicast group of the first rendition; the next ones take the following addresses',
    ipAddress,
    '232.112.99.1',
  )
  .option(
    '--multicast-port <port>',
    'UDP port of the first rendition; the next ones take the following ports',
    udpPort,
    5000,
  )
  .option(
    '--multicast-interface <address>',
    'interface address to send from: the source address receivers join',
    ipAddress,
    '127.0.0.1',
  )
  .option('--multicast-ttl <n>', 'multicast TTL / hop limit (1: this network only)', ttl, 1)
  .option('--multicast-headroom <x>', "pacing rate as a multiple of each rendition's bitrate", positiveNumber, 2)
  .option(
    '--multicast-whole-segments',
    'push each segment whole once complete, with its digest in HEADERS (for receivers that take no trailers), instead of chunk by chunk as it is produced',
    false,
  )
  .option(
    '--multicast-fec <k:m>',
    "forward error correction: m Reed–Solomon repair packets per k packets of each session, on the ports after the sessions' (e.g. 20:2, 10 % more bytes); advertised in Alt-Svc, unknown to nghq (default: none)",
    fecSpec,
  )
  .option(
    '--gateway-origin <origin...>',
    'page origins, besides the origin\'s own, allowed to subscribe through the multicast gateway ("*": any)',
  )
  .option(
    '--gateway-url <url>',
    "advertise this multicast gateway (a separate `pushcast gateway`, e.g. wss://gw.example:8444/multicast/gateway) instead of the origin's own",
  )
  .option(
    '--multicast-announce <file>',
    'advertise (Alt-Svc) and serve the keys of the sessions that `pushcast multicast send --announce <file>` runs',
  )
  .addOption(drainOptions('every Warp viewer')[0])
  .addOption(drainOptions('every Warp viewer')[1])
  .addOption(drainOptions('every Warp viewer')[2])
  .action(async (opts) => {
    await serve({
      ...opts,
      // A separate sender's announced sessions replace the origin's own.
      multicast:
        opts.multicast && !opts.multicastAnnounce
          ? {
              group: opts.multicastGroup,
              port: opts.multicastPort,
              interfaceAddress: opts.multicastInterface,
              ttl: opts.multicastTtl,
              headroom: opts.multicastHeadroom,
              progressive: !opts.multicastWholeSegments,
              fec: opts.multicastFec,
              gatewayOrigins: opts.gatewayOrigin,
              gatewayUrl: opts.gatewayUrl,
            }
          : undefined,
    });
  });

program
  .command('gateway')
  .description(
    'Run the multicast gateway on its own: browsers subscribe over WebSocket to the sessions the origin advertises.',
  )
  .requiredOption('--origin <mpd-url>', "the origin's MPD; its Alt-Svc advertisements say which sessions may be joined")
  .option('--host <address>', 'address to listen on', '0.0.0.0')
  .option('-p, --port <port>', 'port for WebSocket subscriptions and /metrics', udpPort, 8444)
  .option('--tls', 'wss:// with the development certificate of --state-dir', false)
  .option('--state-dir <dir>', 'where the development certificate is kept', '.pushcast')
  .option('--allow-origin <origin...>', 'page origins allowed to subscribe besides the gateway\'s own ("*": any)')
  .option('--interface <address>', 'interface address to join on', ipAddress)
  .option('--max-subscribers <n>', 'subscribers at once', positiveNumber, 1000)
  .option('--ca <file>', 'PEM certificate to trust for the origin')
  .option('-k, --insecure', 'accept any certificate from the origin (development only)', false)
  .action(async (opts) => {
    await gatewayCommand(opts);
  });

program
  .command('relay')
  .description(
    'Relay a Warp broadcast: subscribe once upstream (an origin or another relay) and serve it again over WebTransport (HTTP/3) and its WebSocket fallback.',
  )
  .requiredOption('--upstream <url>', 'the upstream broadcast, e.g. https://origin.example:8443/warp/live?token=…')
  .option('--host <address>', 'address to listen on', '0.0.0.0')
  .option(
    '-p, --port <port>',
    'UDP port for HTTP/3 and WebTransport, and the same TCP port for HTTPS (/metrics, certificate hashes) and the WebSocket fallback (0 = any free port)',
    port,
    8445,
  )
  .option('--state-dir <dir>', 'where the development certificate is kept', '.pushcast')
  .option('--tls-cert <file>', 'PEM certificate (chain) instead of the development certificate')
  .option('--tls-key <file>', 'PEM private key of --tls-cert')
  .option('--ca <file>', "PEM certificate to trust for the upstream (e.g. the origin's .pushcast/tls/dev-cert.pem)")
  .option('-k, --insecure', 'accept any certificate from the upstream (development only)', false)
  .option('--token <token...>', 'tokens a viewer must present (?token=…); default: none needed')
  .option(
    '--reorder <policy>',
    `rewrite the delivery order on the wire: ${WARP_ORDER_POLICIES.join(', ')} (docs/warp-wire.md); default: keep the upstream's`,
    warpOrder,
  )
  .option(
    '--warp-orders-allowed <policies>',
    `delivery orders a viewer may ask for with ?order=, comma-separated; default: all (${WARP_ORDER_POLICIES.join(',')})`,
    warpOrders,
  )
  .option(
    '--warp-max-latency <s>',
    "the largest latency target (?latency=) a session's send queue follows, seconds",
    maxLatency,
    10,
  )
  .option('--no-moq', 'no MoQ (moq-lite for <moq-watch>, at /moq; docs/moq.md)')
  .option(
    '--moq-protocols <protocols>',
    'the WebTransport protocols MoQ answers, preferred first, comma-separated, of moq-lite-03, moql, moqt-16 (docs/moq.md)',
    (v: string) => v.split(',').map((p) => p.trim()),
  )
  .option('--max-subscribers <n>', 'viewers (and downstream relays) at once', positiveNumber, 1000)
  .addOption(drainOptions('every viewer and downstream relay')[0])
  .addOption(drainOptions('every viewer and downstream relay')[1])
  .addOption(drainOptions('every viewer and downstream relay')[2])
  .action(async (opts) => {
    if (opts.port === 'off') throw new InvalidArgumentError('the relay needs a port');
    await relayCommand(opts);
  });

const multicast = program
  .command('multicast')
  .description("Multicast HTTP/QUIC push (draft-pardue-quic-http-mcast, as BBC R&D's nghq speaks it)");

multicast
  .command('send')
  .description(
    "Follow a live origin's MPD and push every new segment of each representation into its own multicast session.",
  )
  .argument('<mpd-url>', "the origin's (or a CDN's) MPD, e.g. https://origin.example:8443/live/manifest.mpd")
  .option(
    '--group <address>',
    'multicast group of the first representation; the next ones take the following addresses',
    ipAddress,
    '232.112.99.1',
  )
  .option(
    '--port <port>',
    'UDP port of the first representation; the next ones take the following ports',
    udpPort,
    5000,
  )
  .option(
    '--interface <address>',
    'interface address to send from: the source address receivers join',
    ipAddress,
    '127.0.0.1',
  )
  .option('--ttl <n>', 'multicast TTL / hop limit', ttl, 1)
  .option('--headroom <x>', "pacing rate as a multiple of each representation's bandwidth", positiveNumber, 2)
  .option(
    '--fec <k:m>',
    "forward error correction: m Reed–Solomon repair packets per k packets of each session, on the ports after the sessions' (e.g. 20:2, 10 % more bytes); in the announcement (default: none)",
    fecSpec,
  )
  .option('-r, --representation <id...>', 'only these representations (default all)')
  .option(
    '--signing-key <file>',
    'Ed25519 private key (PKCS #8 PEM) that signs the pushes (default: made once in <state-dir>/multicast)',
  )
  .option('--state-dir <dir>', 'where the signing key is kept', '.pushcast')
  .option(
    '--announce <file>',
    'write the sessions and the public key here, for `pushcast serve --multicast-announce <file>`',
  )
  .option('--ca <file>', 'PEM certificate to trust (e.g. .pushcast/tls/dev-cert.pem)')
  .option('-k, --insecure', 'accept any certificate (development only)', false)
  .action(async (url: string, opts) => {
    await multicastSend(url, opts);
  });

multicast
  .command('receive')
  .description(
    'Join multicast push sessions, verify and repair each pushed resource, and write it to a folder under its path.',
  )
  .argument(
    '[url]',
    "an origin's MPD (e.g. https://localhost:8443/live/manifest.mpd) or segment URL whose Alt-Svc advertises the sessions",
  )
  .option('-o, --output <dir>', 'folder to write resources to', 'received')
  .option('--source <address>', 'sender address (source-specific join)', ipAddress)
  .option('--group <address>', 'multicast group', ipAddress)
  .option('--port <port>', 'UDP port', udpPort)
  .option('--session-id <hex>', "session ID (the packets' destination connection ID), in hex")
  .option('--fec-port <port>', "the session's FEC repair port, with --group (default: none)", udpPort)
  .option('--no-fec', 'do not join the FEC repair flow even where a session advertises one')
  .option(
    '--repair-origin <url>',
    'origin to repair incomplete pushes from with range requests (default: the origin of <url>)',
  )
  .option(
    '--signing-key <file>',
    'key that signs the session: a JWK set, a JWK, a PEM public key or an X.509 certificate (default: the key set the Alt-Svc names)',
  )
  .option('-r, --representation <id...>', 'only these representations (default: every one that advertises a session)')
  .option('--interface <address>', 'interface address to join on')
  .option('-d, --duration <s>', 'stop after this many seconds (default: at goaway, or on SIGINT)', positiveNumber)
  .option('--timeout <ms>', 'time for a push to complete before it is repaired', positiveNumber, 3000)
  .option('--no-repair', 'no unicast repair: incomplete pushes are counted as failed')
  .option('--ca <file>', 'PEM certificate to trust (e.g. .pushcast/tls/dev-cert.pem)')
  .option('-k, --insecure', 'accept any certificate (development only)', false)
  .option('--allow-http-key', 'accept a key set served without TLS', false)
  .action(async (url: string | undefined, opts) => {
    await multicastReceive(url, opts);
  });

program
  .command('fetch-live')
  .description(
    "Record a live stream to disk through the origin's HTTP/2 push channels: no segment is requested, every one is pushed.",
  )
  .argument('<url>', 'HTTPS address of the origin, e.g. https://localhost:8443')
  .option('-o, --out <dir>', 'where to write the MPD, init and media segments', 'recording')
  .option('-d, --duration <s>', 'how long to record, seconds', positiveNumber, 60)
  .option('-r, --rendition <id>', 'video rendition to record (default: the lowest bandwidth)')
  .option('--no-audio', 'record no audio')
  .option('--ca <file>', 'PEM certificate to trust (e.g. .pushcast/tls/dev-cert.pem)')
  .option('-k, --insecure', 'accept any certificate (development only)', false)
  .action(async (url: string, opts) => {
    await fetchLive(url, opts);
  });

program.parseAsync(process.argv).catch((err: Error) => {
  console.error(`pushcast: ${err.message}`);
  process.exit(1);
});
