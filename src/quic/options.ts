/** What a QUIC endpoint is configured with (`QuicOptions`), and the quiche configuration made of it. */
import { quiche, type Config } from './quiche.js';

export type CongestionControl = 'bbr' | 'cubic' | 'reno';

export interface QuicOptions {
  /** ALPN protocols (RFC 7301), in preference order. */
  alpn: string[];
  /** PEM key and certificate chain (server; a client presenting one is not supported). */
  key?: string;
  cert?: string;
  /** Client: PEM certificates to trust; `verifyPeer: false` accepts any (development only). */
  ca?: string;
  verifyPeer?: boolean;
  /**
   * Default CUBIC. quiche's BBR, as this endpoint drives it (its packets sent when made, not at quiche's
   * pacing times), carried 1.4 Mbit/s of a 3.1 Mbit/s Warp stream on a 6.3 Mbit/s, 40 ms path with no
   * loss: its bandwidth estimate stays near what a bursty, often application-limited sender delivers.
   * CUBIC carried all of it (docs/latency.md). BBR stays selectable.
   */
  congestionControl?: CongestionControl;
  maxIdleTimeoutMs?: number;
  /** Connection-level receive credit, bytes (server default 16 MiB; client default: none, see CLIENT_MAX_DATA). */
  initialMaxData?: number;
  /** Per-stream receive window, bytes. */
  initialMaxStreamData?: number;
  maxStreamsBidi?: number;
  maxStreamsUni?: number;
  /** Queue lengths for RFC 9221 datagrams; 0 disables them. */
  datagramQueue?: number;
  /** Bytes read ahead of a stream's consumer before the stream stops being drained. */
  maxStreamBuffer?: number;
  /** Append TLS secrets in SSLKEYLOGFILE format here (for Wireshark/tshark). */
  keylogFile?: string;
  /** Connections at once (server); more are refused at their first packet. */
  maxConnections?: number;
  /**
   * The UDP socket's kernel receive and send buffers, bytes (default 4 MiB; Linux caps them at
   * net.core.rmem_max / wmem_max). The default 208 KiB overflows under a burst of one congestion
   * window, and every datagram dropped there is a loss the congestion controller backs off for.
   */
  socketBufferSize?: number;
}

/** The largest UDP payload sent or taken, bytes: at least 1200 (RFC 9000 §14), and room for tunnel headers on a 1500-byte MTU. */
export const MAX_UDP = 1350;
/**
 * A client's connection-level receive credit (RFC 9000 §4.1): 2^50 bytes, i.e. no connection limit;
 * the per-stream windows and stream counts bound what a server can make it buffer. Because quiche 0.18
 * (this binding's) cannot sustain a connection limit over a long session whose streams get cut: once the
 * initial credit is used up, its window is 48 KiB (DEFAULT_CONNECTION_WINDOW), grown only by autotuning,
 * while bytes of streams reset by the peer or stopped by us are counted as received and never as
 * consumed (cloudflare/quiche#2158, fixed upstream in 2025, not in any binding on npm). A Warp viewer or
 * relay upstream, whose streams are cut whenever the link is short, stalled for good after about its
 * initial credit: 16 MiB, minutes of video. test/quic/flow-credit.test.ts reproduces it.
 */
const CLIENT_MAX_DATA = 2 ** 50;

/** quiche's configuration for a server's or a client's connections. */
export function makeConfig(o: QuicOptions, server: boolean): Config {
  const enc = (s: string | undefined) => (s === undefined ? undefined : new TextEncoder().encode(s));
  const config = server
    ? quiche().Config.withBoringSslCtx(false, false, null, [enc(o.key)!], [enc(o.cert)!], null)
    : quiche().Config.withBoringSslCtx(o.verifyPeer ?? true, false, enc(o.ca) ?? null, null, null, null);
  config.setApplicationProtos(o.alpn);
  config.setMaxIdleTimeout(o.maxIdleTimeoutMs ?? 30_000);
  config.setMaxRecvUdpPayloadSize(MAX_UDP);
  config.setMaxSendUdpPayloadSize(MAX_UDP);
  const maxData = o.initialMaxData ?? (server ? 16 * 1024 * 1024 : CLIENT_MAX_DATA);
  const streamData = o.initialMaxStreamData ?? 4 * 1024 * 1024;
  config.setInitialMaxData(maxData);
  config.setInitialMaxStreamDataBidiLocal(streamData);
  config.setInitialMaxStreamDataBidiRemote(streamData);
  config.setInitialMaxStreamDataUni(streamData);
  config.setInitialMaxStreamsBidi(o.maxStreamsBidi ?? 128);
  config.setInitialMaxStreamsUni(o.maxStreamsUni ?? 128);
  config.setCcAlgorithmName(o.congestionControl ?? 'cubic');
  config.enablePacing(true);
  config.setDisableActiveMigration(true);
  if ((o.datagramQueue ?? 256) > 0) config.enableDgram(true, o.datagramQueue ?? 256, o.datagramQueue ?? 256);
  if (o.keylogFile) config.logKeys();
  return config;
}
