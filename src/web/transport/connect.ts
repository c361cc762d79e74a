/**
 * Opens a WebTransport session from a page: native WebTransport over HTTP/3 where the browser has it,
 * else (or when UDP is blocked on the way) the `@moq/web-transport-ws` polyfill over a WebSocket, which
 * pushcast serves in the same wire format (src/webtransport/websocket-session.ts). Both give the same
 * object (the polyfill implements the WebTransport interface), so the caller does not care which won.
 *
 * Happy-eyeballs style (as RFC 8305 races address families): WebTransport starts first, the WebSocket
 * after a head start (300 ms) unless WebTransport failed sooner; the first whose `ready` resolves wins
 * and the other is closed. The winner is remembered per URL (in this module and in `sessionStorage`),
 * and tried first next time, the other after the head start: a network that blocks QUIC costs the
 * head start once per tab, not on every reconnect.
 */
import WebTransportWs from '@moq/web-transport-ws';

export type TransportKind = 'webtransport' | 'websocket';

export interface ConnectTransportOptions {
  /** Only this transport, no race (and nothing remembered). */
  forceTransport?: TransportKind;
  /** How long the first transport runs alone, default 300 ms. */
  headStartMs?: number;
  /** Native WebTransport only (W3C WebTransport §6.3): certificates accepted by hash, e.g. a 13-day development certificate. */
  serverCertificateHashes?: WebTransportHash[];
  /**
   * Where the WebSocket goes (`ws:`/`wss:`/`http(s):`), when not at the WebTransport URL's own host and
   * port (the polyfill's default): e.g. the page's own origin, when the page cannot trust the
   * certificate that `serverCertificateHashes` vouches for over HTTP/3.
   */
  webSocketUrl?: string;
}

export interface ConnectedTransport {
  transport: WebTransport;
  kind: TransportKind;
  /** The transports that were started, in order (the loser's included). */
  tried: TransportKind[];
}

const DEFAULT_HEAD_START_MS = 300;
const STORAGE_PREFIX = 'pushcast.transport:';
const remembered = new Map<string, TransportKind>();

function storage(): Storage | undefined {
  try {
    return globalThis.sessionStorage; // throws in sandboxed frames without storage access
  } catch {
    return undefined;
  }
}

/** The transport that last won for `url`, if any. */
export function rememberedTransport(url: string): TransportKind | undefined {
  const known = remembered.get(url);
  if (known) return known;
  try {
    const stored = storage()?.getItem(STORAGE_PREFIX + url);
    return stored === 'webtransport' || stored === 'websocket' ? stored : undefined;
  } catch {
    return undefined;
  }
}

function remember(url: string, kind: TransportKind): void {
  remembered.set(url, kind);
  try {
    storage()?.setItem(STORAGE_PREFIX + url, kind);
  } catch {
    // storage full or denied: the module's memory still holds it
  }
}

/** Forgets what won for `url` (both memories). */
export function forgetTransport(url: string): void {
  remembered.delete(url);
  try {
    storage()?.removeItem(STORAGE_PREFIX + url);
  } catch {
    // nothing stored
  }
}

function hasNativeWebTransport(): boolean {
  return typeof (globalThis as { WebTransport?: unknown }).WebTransport === 'function';
}

function open(kind: TransportKind, url: string, options: ConnectTransportOptions): WebTransport {
  if (kind === 'websocket') return new WebTransportWs(options.webSocketUrl ?? url);
  return new WebTransport(
    url,
    options.serverCertificateHashes ? { serverCertificateHashes: options.serverCertificateHashes } : undefined,
  );
}

/**
 * Resolves once `transport` is ready; rejects when it fails first. The polyfill's `ready` never
 * rejects (a WebSocket that fails only closes), so its `closed` settling first is a failure too.
 */
function whenReady(transport: WebTransport): Promise<void> {
  const failed = transport.closed.then(
    (info) =>
      Promise.reject(
        new Error(`closed before it was ready (${info.closeCode ?? 0}${info.reason ? `: ${info.reason}` : ''})`),
      ),
    (error: unknown) => Promise.reject(error),
  );
  return Promise.race([transport.ready, failed]);
}

/**
 * Closes a transport that lost. The polyfill throws when closed before its WebSocket is open (it sends
 * APPLICATION_CLOSE at once); such a loser is closed when its `ready` comes (see connectTransport).
 */
function closeQuietly(transport: WebTransport): void {
  try {
    transport.close();
  } catch {
    // still connecting: closed once ready
  }
}

function quietly(transport: WebTransport): void {
  transport.ready.catch(() => undefined);
  transport.closed.catch(() => undefined);
}

/** Connects to `url` (an `https:` WebTransport URL; the polyfill turns it into `wss:`). */
export function connectTransport(url: string, options: ConnectTransportOptions = {}): Promise<ConnectedTransport> {
  const native = hasNativeWebTransport();
  let order: TransportKind[];
  if (options.forceTransport) order = [options.forceTransport];
  else {
    order = rememberedTransport(url) === 'websocket' ? ['websocket', 'webtransport'] : ['webtransport', 'websocket'];
    if (!native) order = ['websocket'];
  }
  const headStart = options.headStartMs ?? DEFAULT_HEAD_START_MS;
  const tried: TransportKind[] = [];
  const attempts: WebTransport[] = [];
  const errors: string[] = [];

  return new Promise<ConnectedTransport>((resolve, reject) => {
    let settled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let next = 0;

    const fail = (kind: TransportKind, error: unknown) => {
      errors.push(`${kind}: ${error instanceof Error ? error.message : String(error)}`);
      if (settled) return;
      if (next < order.length) {
        // The one running failed before its head start was over: start the next one now.
        clearTimeout(timer);
        start();
      } else if (errors.length === tried.length) {
        settled = true;
        reject(new Error(`no transport to ${url}: ${errors.join('; ')}`));
      }
    };

    const start = () => {
      const kind = order[next++]!;
      tried.push(kind);
      let transport: WebTransport;
      try {
        transport = open(kind, url, options);
      } catch (error) {
        fail(kind, error); // e.g. a URL WebTransport refuses, or no WebTransport in this context
        return;
      }
      quietly(transport);
      attempts.push(transport);
      whenReady(transport).then(
        () => {
          if (settled) {
            closeQuietly(transport); // the loser came second
            return;
          }
          settled = true;
          clearTimeout(timer);
          for (const other of attempts) if (other !== transport) closeQuietly(other);
          if (!options.forceTransport) remember(url, kind);
          resolve({ transport, kind, tried });
        },
        (error: unknown) => fail(kind, error),
      );
      if (next < order.length) timer = setTimeout(() => !settled && start(), headStart);
    };

    start();
  });
}
