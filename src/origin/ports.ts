import type { Http3ServerOptions } from '../http3/index.js';
import {
  HttpPort,
  SecurePort,
  urlHost,
  type Certificate,
  type HttpTimeouts,
  type RequestHandler,
  type UpgradeHandler,
  type WebTransportInfo,
} from '../listen/index.js';
import type { QuicEndpoint } from '../quic/index.js';
import type { SessionRouter } from '../webtransport/index.js';

export interface ListenOptions {
  /** Address to listen on; default 0.0.0.0 (and :: for HTTP/3, see listenHttp3). */
  host?: string;
  /** Cleartext HTTP/1.1; 0 picks a free port; null disables. */
  port: number | null;
  /** HTTPS with HTTP/2 and HTTP/1.1 (ALPN); 0 picks a free port; null disables. */
  tlsPort: number | null;
  certificate?: Certificate;
  /** Connections open at once per port; more are closed as they arrive (node's server.maxConnections). */
  maxConnections?: number;
  /** Deadlines for what a client owes (headers, request, idle, TLS handshake); default HTTP_TIMEOUTS. */
  timeouts?: Partial<HttpTimeouts>;
  /**
   * HTTP/3 (RFC 9114) on the UDP port with the HTTPS port's number, advertised on every HTTPS response
   * with `Alt-Svc: h3=":<port>"` (RFC 7838), with WebTransport sessions when the origin has a router.
   */
  http3?: boolean;
}

export interface OriginAddresses {
  http?: string;
  https?: string;
  /** The HTTP/3 endpoint (same URL as https, over UDP). */
  http3?: string;
}

/** What answers on the origin's ports. */
export interface OriginHandlers {
  onRequest: RequestHandler;
  onUpgrade: UpgradeHandler;
  onHttp3Request: Http3ServerOptions['onRequest'];
  webTransport?: SessionRouter;
}

/** The origin's ports: cleartext HTTP/1.1, HTTPS (HTTP/2 + HTTP/1.1) and HTTP/3 on the HTTPS port's number. */
export class OriginPorts {
  private readonly cleartext: HttpPort[] = [];
  private readonly secure: SecurePort[] = [];

  /** Opens the ports `l` asks for and returns the URLs to print (host as `urlHost` shows it). */
  async listen(l: ListenOptions, h: OriginHandlers): Promise<OriginAddresses> {
    const host = l.host ?? '0.0.0.0';
    const shown = urlHost(host);
    const common = {
      host,
      maxConnections: l.maxConnections,
      timeouts: l.timeouts,
      onRequest: h.onRequest,
      onUpgrade: h.onUpgrade,
    };
    const out: OriginAddresses = {};
    if (l.port !== null) {
      const http = await HttpPort.listen({ ...common, port: l.port });
      this.cleartext.push(http);
      out.http = `http://${shown}:${http.port}`;
    }
    if (l.tlsPort !== null) {
      if (!l.certificate) throw new Error('an HTTPS port needs a certificate');
      const secure = await SecurePort.listen({
        ...common,
        port: l.tlsPort,
        certificate: l.certificate,
        http3: l.http3 ? { onRequest: h.onHttp3Request, router: h.webTransport } : undefined,
      });
      this.secure.push(secure);
      out.https = `https://${shown}:${secure.port}`;
      if (secure.quic) out.http3 = out.https;
    }
    return out;
  }

  /** The QUIC endpoint of HTTP/3, once it listens. */
  get quic(): QuicEndpoint | undefined {
    return this.secure.find((s) => s.quic)?.quic;
  }

  /** `Alt-Svc` naming HTTP/3 for HTTPS responses (RFC 7838 §3), once HTTP/3 listens. */
  get altSvc(): string | undefined {
    return this.secure.find((s) => s.altSvc)?.altSvc;
  }

  /** The WebTransport details (WEBTRANSPORT_INFO_PATH), once HTTP/3 listens. */
  get webTransportInfo(): WebTransportInfo | undefined {
    return this.secure.find((s) => s.webTransportInfo)?.webTransportInfo;
  }

  /** Stops accepting and closes every connection, destroying what is still open after 2 s. */
  async close(): Promise<void> {
    await Promise.all([...this.cleartext.map((p) => p.close()), ...this.secure.map((p) => p.close())]);
  }
}
