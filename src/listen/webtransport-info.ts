import { certificateHashes, type Certificate } from './certificate.js';

/**
 * The body a pushcast server (origin or relay) serves at WEBTRANSPORT_INFO_PATH (src/media's URL
 * scheme): how a page opens WebTransport to it.
 */
export interface WebTransportInfo {
  /**
   * The UDP port of HTTP/3, not a URL: the page's own host name is the one the browser's certificate
   * check uses, whichever address the server listens on.
   */
  port: number;
  /** What the page passes as WebTransport `serverCertificateHashes` (W3C WebTransport §6.3); empty for a CA-signed certificate. */
  serverCertificateHashes: { algorithm: 'sha-256'; value: string }[];
}

export function webTransportInfo(port: number, certificate: Certificate): WebTransportInfo {
  return { port, serverCertificateHashes: certificateHashes(certificate) };
}
