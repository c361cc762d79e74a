import { H3_ALPN, type Http3ServerOptions } from '../http3/index.js';
import { QuicEndpoint } from '../quic/index.js';
import { SessionRouter, serveHttp3Sessions } from '../webtransport/index.js';
import type { Certificate } from './certificate.js';
import { HttpPort, type HttpPortOptions } from './http-port.js';
import { webTransportInfo, type WebTransportInfo } from './webtransport-info.js';

export interface Http3PortOptions {
  host: string;
  port: number;
  certificate: Certificate;
  /** Plain HTTP/3 requests, in node's compatibility-API shape. */
  onRequest: Http3ServerOptions['onRequest'];
  /** WebTransport sessions by path; none without. */
  router?: SessionRouter;
  /** QUIC connections at once; more are refused at their first packet. Default 10000. */
  maxConnections?: number;
}

/**
 * HTTP/3 (RFC 9114) with WebTransport sessions on UDP `port`. The IPv4 any-address means IPv6 too
 * where the host has it: browsers resolve localhost to ::1 first and, unlike TCP, do not fall back to
 * 127.0.0.1 for QUIC, so a QUIC socket on 0.0.0.0 alone fails every WebTransport session to localhost.
 */
export async function listenHttp3(o: Http3PortOptions): Promise<QuicEndpoint> {
  const options = {
    alpn: [H3_ALPN],
    key: o.certificate.key,
    cert: o.certificate.cert,
    port: o.port,
    maxConnections: o.maxConnections ?? 10_000,
  };
  const endpoint =
    o.host === '0.0.0.0'
      ? await QuicEndpoint.listen({ ...options, host: '::' }).catch(() =>
          QuicEndpoint.listen({ ...options, host: o.host }),
        )
      : await QuicEndpoint.listen({ ...options, host: o.host });
  const router = o.router ?? new SessionRouter();
  endpoint.on('connection', (conn) => serveHttp3Sessions(conn, { router, onRequest: o.onRequest }));
  return endpoint;
}

export interface SecurePortOptions extends HttpPortOptions {
  certificate: Certificate;
  /** HTTP/3 on the UDP port with the HTTPS port's number; absent = HTTPS only. */
  http3?: Pick<Http3PortOptions, 'onRequest' | 'router'>;
}

/**
 * HTTPS (HTTP/2 and HTTP/1.1 on TCP) and, on the UDP port of the same number, HTTP/3 with WebTransport:
 * what a browser needs to switch to HTTP/3 (`altSvc`) and to open WebTransport (`webTransportInfo`).
 */
export class SecurePort {
  private constructor(
    readonly https: HttpPort,
    readonly quic: QuicEndpoint | undefined,
    /** The body of WEBTRANSPORT_INFO_PATH; undefined without HTTP/3. */
    readonly webTransportInfo: WebTransportInfo | undefined,
  ) {}

  static async listen(o: SecurePortOptions): Promise<SecurePort> {
    const https = await HttpPort.listen(o);
    if (!o.http3) return new SecurePort(https, undefined, undefined);
    const quic = await listenHttp3({
      ...o.http3,
      host: o.host,
      port: https.port,
      certificate: o.certificate,
      maxConnections: o.maxConnections,
    }).catch(async (error: unknown) => {
      await https.close(0);
      throw error;
    });
    return new SecurePort(https, quic, webTransportInfo(https.port, o.certificate));
  }

  /** The port number, TCP and UDP alike. */
  get port(): number {
    return this.https.port;
  }

  /** `Alt-Svc` naming HTTP/3 on this port (RFC 7838 §3), for HTTPS responses; undefined without HTTP/3. */
  get altSvc(): string | undefined {
    return this.quic ? `h3=":${this.port}"; ma=86400` : undefined;
  }

  async close(graceMs?: number): Promise<void> {
    await Promise.all([this.https.close(graceMs), this.quic?.close()]);
  }
}
