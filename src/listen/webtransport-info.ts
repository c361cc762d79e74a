import { certificateHashes, type Certificate } from './certificate.js';

/** Where a page learns how to open WebTransport to a pushcast server (origin or relay). */
export const WEBTRANSPORT_INFO_PATH = '/.well-known/pushcast/webtransport.json';

/** The body served at WEBTRANSPORT_INFO_PATH. */
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
