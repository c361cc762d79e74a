/**
 * The native binding of Cloudflare quiche that `@matrixai/quic` builds (its Linux x64 binary package,
 * pinned exactly), loaded directly: pushcast uses none of that package's JavaScript. The types below
 * are the part of the binding's surface the endpoint uses (from the binding's own declarations).
 * Loaded lazily, so that a platform without the binary only loses QUIC, with a clear error.
 */
import { createRequire } from 'node:module';

export interface Host {
  host: string;
  port: number;
}

export interface SendInfo {
  from: Host;
  to: Host;
  at: object;
}

export interface ConnectionError {
  isApp: boolean;
  errorCode: number;
  reason: Uint8Array;
}

export interface QuicheStats {
  recv: number;
  sent: number;
  lost: number;
  retrans: number;
  sentBytes: number;
  recvBytes: number;
  lostBytes: number;
  streamRetransBytes: number;
  pathsCount: number;
}

export interface QuichePathStats {
  rtt: number;
  cwnd: number;
  deliveryRate: number;
  pmtu: number;
  sentBytes: number;
  recvBytes: number;
  lostBytes: number;
}

export interface Config {
  setApplicationProtos(protos: string[]): void;
  setMaxIdleTimeout(ms: number): void;
  setMaxRecvUdpPayloadSize(size: number): void;
  setMaxSendUdpPayloadSize(size: number): void;
  setInitialMaxData(v: number): void;
  setInitialMaxStreamDataBidiLocal(v: number): void;
  setInitialMaxStreamDataBidiRemote(v: number): void;
  setInitialMaxStreamDataUni(v: number): void;
  setInitialMaxStreamsBidi(v: number): void;
  setInitialMaxStreamsUni(v: number): void;
  setCcAlgorithmName(name: string): void;
  enablePacing(v: boolean): void;
  setDisableActiveMigration(v: boolean): void;
  enableDgram(enabled: boolean, recvQueueLen: number, sendQueueLen: number): void;
  logKeys(): void;
}

export interface Connection {
  setKeylog(path: string): void;
  recv(data: Uint8Array, info: { from: Host; to: Host }): number;
  send(out: Uint8Array): [number, SendInfo] | null;
  streamRecv(streamId: number, out: Uint8Array): [number, boolean] | null;
  streamSend(streamId: number, data: Uint8Array, fin: boolean): number | null;
  /** Bytes the stream can take now: its flow-control credit, bounded by the congestion window's room. */
  streamCapacity(streamId: number): number;
  streamPriority(streamId: number, urgency: number, incremental: boolean): void;
  streamShutdown(streamId: number, direction: number, code: number): undefined | null;
  /** Any stream has data (or FIN, or a reset) to read: cheap, unlike iterating `readable()`. */
  isReadable(): boolean;
  readable(): Iterable<number>;
  /** Throws StreamStopped(code) once the peer sent STOP_SENDING for the stream. */
  streamWritable(streamId: number, len: number): boolean;
  dgramRecvVec(): Uint8Array | null;
  /** The largest datagram payload that fits a packet now; null until the peer's transport parameters allow datagrams. */
  dgramMaxWritableLen(): number | null;
  dgramSend(data: Uint8Array): undefined | null;
  isDgramSendQueueFull(): boolean;
  timeout(): number | null;
  onTimeout(): void;
  close(app: boolean, code: number, reason: Uint8Array): undefined | null;
  applicationProto(): Uint8Array;
  isEstablished(): boolean;
  isClosed(): boolean;
  peerError(): ConnectionError | null;
  localError(): ConnectionError | null;
  stats(): QuicheStats;
  pathStats(): QuichePathStats[];
}

export interface Header {
  ty: number;
  version: number;
  dcid: Uint8Array;
  scid: Uint8Array;
}

export interface Quiche {
  MIN_CLIENT_INITIAL_LEN: number;
  Shutdown: { Read: number; Write: number };
  Type: { Initial: number };
  negotiateVersion(scid: Uint8Array, dcid: Uint8Array, out: Uint8Array): number;
  versionIsSupported(version: number): boolean;
  Config: {
    withBoringSslCtx(
      verifyPeer: boolean,
      verifyAllowFail: boolean,
      ca?: Uint8Array | null,
      key?: Uint8Array[] | null,
      cert?: Uint8Array[] | null,
      sigalgs?: string | null,
    ): Config;
  };
  Connection: {
    connect(serverName: string | null, scid: Uint8Array, local: Host, remote: Host, config: Config): Connection;
    accept(scid: Uint8Array, odcid: Uint8Array | null, local: Host, remote: Host, config: Config): Connection;
  };
  Header: { fromSlice(data: Uint8Array, dcidLength: number): Header };
}

let binding: Quiche | undefined;

/** The binding, loaded on first use. */
export function quiche(): Quiche {
  if (!binding) {
    if (process.platform !== 'linux' || process.arch !== 'x64')
      throw new Error(
        `QUIC needs the native quiche binding, built here for Linux x64 only (this is ${process.platform} ${process.arch})`,
      );
    binding = createRequire(import.meta.url)('@matrixai/quic-linux-x64') as Quiche;
  }
  return binding;
}
