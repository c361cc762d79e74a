/**
 * Where pushcast's servers listen: cleartext HTTP/1.1, HTTPS (HTTP/2 and HTTP/1.1), HTTP/3 with
 * WebTransport on the UDP port of the HTTPS port; their bounds; the TLS certificate; the WebTransport
 * details a page reads; and the host a printed URL carries. Used by the origin and the relay and
 * gateway commands alike.
 */
export { certificateHashes, developmentCertificate, loadCertificate, type Certificate } from './certificate.js';
export {
  HTTP_TIMEOUTS,
  HttpPort,
  type HttpPortOptions,
  type HttpRequest,
  type HttpResponse,
  type HttpTimeouts,
  type RequestHandler,
  type UpgradeHandler,
} from './http-port.js';
export { SecurePort, type SecurePortOptions } from './secure-port.js';
export { webTransportInfo, type WebTransportInfo } from './webtransport-info.js';
export { urlHost } from './url-host.js';
