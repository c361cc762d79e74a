import type { Registry } from 'prom-client';
import type { LiveSessionStats } from '../multicast/index.js';
import { perScrape, scrapedGauge, type Sample } from './scrape.js';

/** The live multicast sender's sessions (`pushcast_multicast_*`, one series per track), read at each scrape. */
export function registerMulticastSenderMetrics(registry: Registry, read: () => readonly LiveSessionStats[]) {
  const stats = perScrape(read);
  const perTrack = (pick: (s: LiveSessionStats) => number) => (): Sample[] =>
    stats().map((s) => [{ track: s.trackId }, pick(s)]);
  return {
    segments: scrapedGauge(
      registry,
      'pushcast_multicast_segments_sent',
      'Media segments pushed into the multicast session, by track',
      ['track'],
      perTrack((s) => s.segments),
    ),
    inits: scrapedGauge(
      registry,
      'pushcast_multicast_init_pushes',
      'Init segment pushes (repeated for late joiners), by track',
      ['track'],
      perTrack((s) => s.inits),
    ),
    dropped: scrapedGauge(
      registry,
      'pushcast_multicast_pushes_dropped',
      'Pushes dropped whole because the send queue was full, by track',
      ['track'],
      perTrack((s) => s.dropped),
    ),
    packets: scrapedGauge(
      registry,
      'pushcast_multicast_packets_sent',
      'QUIC packets sent to the multicast group, by track',
      ['track'],
      perTrack((s) => s.packets),
    ),
    bytes: scrapedGauge(
      registry,
      'pushcast_multicast_bytes_sent',
      'Datagram bytes sent to the multicast group, by track',
      ['track'],
      perTrack((s) => s.bytes),
    ),
    repairPackets: scrapedGauge(
      registry,
      'pushcast_multicast_repair_packets_sent',
      'FEC repair packets sent to the repair port, by track (0 without FEC)',
      ['track'],
      perTrack((s) => s.repairPackets),
    ),
    repairBytes: scrapedGauge(
      registry,
      'pushcast_multicast_repair_bytes_sent',
      'FEC repair datagram bytes sent to the repair port, by track (0 without FEC)',
      ['track'],
      perTrack((s) => s.repairBytes),
    ),
  };
}
