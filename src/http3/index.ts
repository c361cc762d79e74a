/** HTTP/3 (RFC 9114) on pushcast's QUIC endpoint, with the shared wire codecs. */
export { H3Error, H3_ALPN, Http3Client, serveHttp3, type Http3ClientResponse, type Http3Handler, type Http3Request, type Http3Response } from './http3.js';
