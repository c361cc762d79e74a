export { Origin, type OriginOptions, type ListenOptions, type OriginAddresses } from './origin.js';
export { OriginMetrics } from './metrics.js';
export { developmentCertificate, type Certificate } from './dev-certificate.js';
export { parseRange, type ByteRange } from './http-range.js';
