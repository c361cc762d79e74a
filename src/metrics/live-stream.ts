import type { Registry } from 'prom-client';
import type { LiveSourceStats } from '../source/index.js';
import { byLabel, perScrape, scrapedCounter, unlabelled } from './scrape.js';

/** What the packager and encoder metrics read: the encoder's counts and what each track's packager published. */
export interface LiveStreamStats {
  encoder: LiveSourceStats;
  /** Media segments completed, by track. */
  segmentsPublishedByTrack: Record<string, number>;
}

/** The live encoder and its packagers (`pushcast_segments_published_total`, restarts, errors), read at each scrape. */
export function registerLiveStreamMetrics(registry: Registry, read: () => LiveStreamStats) {
  const stats = perScrape(read);
  return {
    segmentsPublished: scrapedCounter(
      registry,
      'pushcast_segments_published_total',
      'Media segments completed by the packager, by track',
      ['track'],
      () => byLabel('track', stats().segmentsPublishedByTrack),
    ),
    encoderRestarts: scrapedCounter(
      registry,
      'pushcast_encoder_restarts_total',
      'Times the live encoder died and was restarted',
      [],
      () => unlabelled(stats().encoder.restarts),
    ),
    packagerErrors: scrapedCounter(
      registry,
      'pushcast_packager_errors_total',
      'Malformed encoder output rejected by the packager, by track',
      ['track'],
      () => byLabel('track', stats().encoder.sinkErrorsByTrack),
    ),
  };
}
