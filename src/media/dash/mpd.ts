import type { TrackInfo } from '../live/segment.js';
import { SEGMENT_TEMPLATE } from '../live/url-scheme.js';

/** What a dynamic (live) MPD needs to know about the presentation. */
export interface LiveMpdParams {
  tracks: readonly TrackInfo[];
  /** Milliseconds since the epoch; MPD@availabilityStartTime. */
  availabilityStartTime: number;
  /** Nominal segment duration, seconds (SegmentTemplate@duration). */
  segmentDuration: number;
  startNumber: number;
  /** Seconds of CMAF chunk; with low latency each segment is announced this long after it starts. */
  chunkDuration: number;
  lowLatency: boolean;
  timeShiftBufferDepth: number;
  minimumUpdatePeriod: number;
  /** ServiceDescription latency target, seconds; also MPD@suggestedPresentationDelay. */
  targetLatency: number;
  /** Absolute URL of the origin's clock, for UTCTiming. */
  utcTimingUrl: string;
  frameRate?: number;
  /**
   * Each track's complete segments, oldest first, when segments are described one by one (SegmentTimeline,
   * §5.3.9.6) rather than by a nominal duration: numbered one after another, timed in the track's timescale.
   */
  segmentTimelines?: ReadonlyMap<string, readonly TimelineSegment[]>;
}

/** A segment as a SegmentTimeline lists it. */
export interface TimelineSegment {
  number: number;
  /** Decode time of its first sample, track timescale (S@t). */
  time: number;
  /** Track timescale (S@d). */
  duration: number;
}

/**
 * `S` elements for `segments` (consecutive numbers): one per run of equal durations with no gap between
 * them (S@r), each run starting with its time (S@t), so that a gap (an encoder that reconnected) is exact.
 */
export function segmentTimelineEntries(segments: readonly TimelineSegment[]): { t: number; d: number; r: number }[] {
  const runs: { t: number; d: number; r: number }[] = [];
  for (const s of segments) {
    const last = runs.at(-1);
    if (last && last.d === s.duration && last.t + (last.r + 1) * last.d === s.time) last.r++;
    else runs.push({ t: s.time, d: s.duration, r: 0 });
  }
  return runs;
}

/** xs:duration with up to millisecond precision, e.g. PT2S, PT0.2S. */
export function xsDuration(seconds: number): string {
  const ms = Math.round(seconds * 1000);
  return `PT${ms % 1000 === 0 ? ms / 1000 : (ms / 1000).toFixed(3).replace(/0+$/, '')}S`;
}

function xsDateTime(ms: number): string {
  return new Date(ms).toISOString();
}

function escapeAttr(value: string | number): string {
  return String(value).replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}

function element(
  name: string,
  attrs: Record<string, string | number | boolean | undefined>,
  children: string[] = [],
): string {
  const a = Object.entries(attrs)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${escapeAttr(String(v))}"`)
    .join('');
  if (children.length === 0) return `<${name}${a}/>`;
  return `<${name}${a}>\n${children.map((c) => indent(c)).join('\n')}\n</${name}>`;
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

/** Whole-number ratio such as 16:9 (ISO/IEC 23009-1 §5.3.3.2, @par). */
function aspectRatio(width: number, height: number): string {
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  const g = gcd(width, height);
  return `${width / g}:${height / g}`;
}

const SEGMENT_TIMESCALE = 1000;

/**
 * A dynamic MPD (ISO/IEC 23009-1 §5.3.1.2, type="dynamic") addressing segments by number with
 * SegmentTemplate@duration (§5.3.9.4), one Period, one AdaptationSet per media kind. With low latency it
 * follows the DASH-IF low-latency guidelines: availabilityTimeOffset lets a client ask for a segment while
 * its chunks are still being produced (availabilityTimeComplete="false"), and a ServiceDescription
 * (§K) states the latency the player should hold.
 */
export function buildLiveMpd(p: LiveMpdParams): string {
  const profiles = ['urn:mpeg:dash:profile:isoff-live:2011', 'urn:mpeg:dash:profile:cmaf:2019'];
  if (p.lowLatency) profiles.push('http://www.dashif.org/guidelines/low-latency-live-v5');

  // A client may fetch segment N once its first chunk is out: availabilityTimeOffset = d − chunk (§5.3.9.5.3).
  const ato = p.lowLatency ? Math.max(0, p.segmentDuration - p.chunkDuration) : undefined;
  const template = element('SegmentTemplate', {
    timescale: SEGMENT_TIMESCALE,
    duration: Math.round(p.segmentDuration * SEGMENT_TIMESCALE),
    startNumber: p.startNumber,
    initialization: SEGMENT_TEMPLATE.initialization,
    media: SEGMENT_TEMPLATE.media,
    availabilityTimeOffset: ato === undefined ? undefined : Number(ato.toFixed(3)),
    availabilityTimeComplete: p.lowLatency ? 'false' : undefined,
  });

  // With a segment timeline, each Representation has its own: its segments are its own cuts.
  const timelineTemplate = (t: TrackInfo): string[] => {
    const segments = p.segmentTimelines?.get(t.id);
    if (!segments) return [];
    return [
      element(
        'SegmentTemplate',
        {
          timescale: t.timescale,
          startNumber: segments[0]?.number ?? p.startNumber,
          initialization: SEGMENT_TEMPLATE.initialization,
          media: SEGMENT_TEMPLATE.media,
          availabilityTimeOffset: ato === undefined ? undefined : Number(ato.toFixed(3)),
          availabilityTimeComplete: p.lowLatency ? 'false' : undefined,
        },
        [
          element(
            'SegmentTimeline',
            {},
            segmentTimelineEntries(segments).map((run) =>
              element('S', { t: run.t, d: run.d, r: run.r === 0 ? undefined : run.r }),
            ),
          ),
        ],
      ),
    ];
  };
  const sharedTemplate = p.segmentTimelines ? [] : [template];
  let longest = p.segmentDuration;
  for (const [id, segments] of p.segmentTimelines ?? []) {
    const timescale = p.tracks.find((t) => t.id === id)?.timescale ?? 1;
    for (const s of segments) longest = Math.max(longest, s.duration / timescale);
  }

  const adaptationSets: string[] = [];
  const video = p.tracks.filter((t) => t.kind === 'video').sort((a, b) => a.bandwidth - b.bandwidth);
  const audio = p.tracks.filter((t) => t.kind === 'audio').sort((a, b) => a.bandwidth - b.bandwidth);
  if (video.length > 0) {
    const maxWidth = Math.max(...video.map((t) => t.width ?? 0));
    const maxHeight = Math.max(...video.map((t) => t.height ?? 0));
    adaptationSets.push(
      element(
        'AdaptationSet',
        {
          id: 0,
          contentType: 'video',
          mimeType: 'video/mp4',
          segmentAlignment: 'true',
          startWithSAP: 1,
          maxWidth: maxWidth || undefined,
          maxHeight: maxHeight || undefined,
          par: maxWidth && maxHeight ? aspectRatio(maxWidth, maxHeight) : undefined,
          frameRate: p.frameRate,
        },
        [
          element('Role', { schemeIdUri: 'urn:mpeg:dash:role:2011', value: 'main' }),
          ...sharedTemplate,
          ...video.map((t) =>
            element(
              'Representation',
              {
                id: t.id,
                bandwidth: t.bandwidth,
                codecs: t.codec,
                width: t.width,
                height: t.height,
                sar: '1:1',
              },
              timelineTemplate(t),
            ),
          ),
        ],
      ),
    );
  }
  if (audio.length > 0) {
    adaptationSets.push(
      element(
        'AdaptationSet',
        { id: 1, contentType: 'audio', mimeType: 'audio/mp4', segmentAlignment: 'true', startWithSAP: 1, lang: 'und' },
        [
          element('Role', { schemeIdUri: 'urn:mpeg:dash:role:2011', value: 'main' }),
          ...sharedTemplate,
          ...audio.map((t) =>
            element(
              'Representation',
              { id: t.id, bandwidth: t.bandwidth, codecs: t.codec, audioSamplingRate: t.sampleRate },
              [
                ...(t.channels
                  ? [
                      element('AudioChannelConfiguration', {
                        schemeIdUri: 'urn:mpeg:mpegB:cicp:ChannelConfiguration',
                        value: t.channels,
                      }),
                    ]
                  : []),
                ...timelineTemplate(t),
              ],
            ),
          ),
        ],
      ),
    );
  }

  const targetMs = Math.round(p.targetLatency * 1000);
  const serviceDescription = element('ServiceDescription', { id: 0 }, [
    element('Latency', { referenceId: 0, target: targetMs, min: Math.round(targetMs * 0.75), max: targetMs * 2 }),
    element('PlaybackRate', { min: 0.96, max: 1.04 }),
  ]);

  const mpd = element(
    'MPD',
    {
      xmlns: 'urn:mpeg:dash:schema:mpd:2011',
      profiles: profiles.join(','),
      type: 'dynamic',
      availabilityStartTime: xsDateTime(p.availabilityStartTime),
      publishTime: xsDateTime(p.availabilityStartTime),
      minimumUpdatePeriod: xsDuration(p.minimumUpdatePeriod),
      minBufferTime: xsDuration(Math.min(1, p.segmentDuration)),
      timeShiftBufferDepth: xsDuration(p.timeShiftBufferDepth),
      suggestedPresentationDelay: xsDuration(p.targetLatency),
      // Rounded up: no segment may last longer than it says (§5.3.1.2).
      maxSegmentDuration: xsDuration(Math.ceil(longest * 1000 - 1e-6) / 1000),
    },
    [
      serviceDescription,
      element('Period', { id: 'p0', start: 'PT0S' }, adaptationSets),
      // Clients align their clock with the origin's (ISO/IEC 23009-1 §5.8.5.7, http-iso scheme).
      element('UTCTiming', { schemeIdUri: 'urn:mpeg:dash:utc:http-iso:2014', value: p.utcTimingUrl }),
    ],
  );
  return `<?xml version="1.0" encoding="UTF-8"?>\n${mpd}\n`;
}
