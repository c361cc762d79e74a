import type { Registry } from 'prom-client';
import type { QuicEndpointStats } from '../quic/index.js';
import { perScrape, scrapedCounter, scrapedGauge, unlabelled } from './scrape.js';

/** The QUIC endpoint of HTTP/3 and WebTransport (`pushcast_quic_*`), read at each scrape. */
export function registerQuicMetrics(registry: Registry, read: () => QuicEndpointStats) {
  const stats = perScrape(read);
  return {
    connections: scrapedGauge(
      registry,
      'pushcast_quic_connections',
      'QUIC connections open now (HTTP/3 and WebTransport)',
      [],
      () => unlabelled(stats().connections),
    ),
    connectionsAccepted: scrapedCounter(
      registry,
      'pushcast_quic_connections_total',
      'QUIC connections accepted',
      [],
      () => unlabelled(stats().connectionsAccepted),
    ),
    packets: scrapedCounter(
      registry,
      'pushcast_quic_packets_total',
      'UDP datagrams of the QUIC endpoint, by direction (in: received, out: sent)',
      ['direction'],
      () => [
        [{ direction: 'in' }, stats().datagramsIn],
        [{ direction: 'out' }, stats().datagramsOut],
      ],
    ),
    bytes: scrapedCounter(
      registry,
      'pushcast_quic_bytes_total',
      'UDP payload bytes of the QUIC endpoint, by direction (in: received, out: sent)',
      ['direction'],
      () => [
        [{ direction: 'in' }, stats().bytesIn],
        [{ direction: 'out' }, stats().bytesOut],
      ],
    ),
    packetsDropped: scrapedCounter(
      registry,
      'pushcast_quic_packets_dropped_total',
      'Received UDP datagrams dropped by the QUIC endpoint: not QUIC, no such connection, or past the connection limit',
      [],
      () => unlabelled(stats().dropped),
    ),
  };
}
