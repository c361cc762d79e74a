import { LiveTimeline, LiveWindow, Segment, type LiveTrack, type TrackInfo } from '../../src/media/index.js';
import { PrometheusMetrics, registerOriginMetrics } from '../../src/metrics/index.js';
import { Origin, type Certificate, type OriginOptions } from '../../src/origin/index.js';

export const SEGMENT_DURATION = 2;
export const VIDEO: TrackInfo = {
  id: 'video-360p',
  kind: 'video',
  codec: 'avc1.42c01e',
  timescale: 12800,
  bandwidth: 800_000,
  width: 640,
  height: 360,
};
export const AUDIO: TrackInfo = {
  id: 'audio-128k',
  kind: 'audio',
  codec: 'mp4a.40.2',
  timescale: 48000,
  bandwidth: 128_000,
  sampleRate: 48000,
  channels: 2,
};

/** Distinct, recognisable bytes for segment `n` of a track. */
export function payload(n: number, size: number): Uint8Array {
  return Uint8Array.from({ length: size }, (_, i) => (n * 31 + i) & 0xff);
}

/** A live window built by hand: the origin's behaviour is under test here, not the packager's. */
export class Fixture {
  now = Date.parse('2026-11-21T12:00:00Z');
  readonly timeline = new LiveTimeline(SEGMENT_DURATION, () => this.now, 1);
  readonly window = new LiveWindow({ timeShiftBufferDepth: 6 });
  readonly video: LiveTrack;
  readonly audio: LiveTrack;

  constructor() {
    this.video = this.window.addTrack(VIDEO);
    this.audio = this.window.addTrack(AUDIO);
    this.video.setInit(payload(0, 700), VIDEO);
    this.audio.setInit(payload(0, 600), AUDIO);
  }

  /** Publishes segment `n` of `track` as `chunks` chunks of `chunkSize` bytes; completes it unless `open`. */
  publish(track: LiveTrack, n: number, chunks = 2, chunkSize = 1000, open = false): Segment {
    const ts = track.info.timescale;
    const start = (n - this.timeline.startNumber) * SEGMENT_DURATION * ts;
    this.timeline.offsetFor(0, 0);
    const s = new Segment(track.id, n, start, start, true, ts);
    track.startSegment(s);
    for (let i = 0; i < chunks; i++) this.chunk(track, s, chunkSize, i);
    if (!open) track.completeSegment(s);
    return s;
  }

  chunk(track: LiveTrack, s: Segment, size = 1000, i = s.chunks.length): void {
    const bytes = payload(s.number + i, size);
    track.addChunk(s, {
      bytes,
      decodeTime: s.decodeTime,
      duration: (SEGMENT_DURATION * track.info.timescale) / 2,
      sampleCount: 1,
    });
  }
}

export async function startOrigin(
  f: Fixture,
  extra: Partial<OriginOptions> = {},
  certificate?: Certificate,
  http3 = false,
  host = '127.0.0.1',
) {
  const prometheus = new PrometheusMetrics();
  const origin = new Origin({
    window: f.window,
    timeline: f.timeline,
    metrics: prometheus,
    webRoot: '/nonexistent',
    lowLatency: true,
    chunkDuration: 0.5,
    targetLatency: 3,
    ...extra,
  });
  const metrics = {
    registry: prometheus.registry,
    ...registerOriginMetrics(prometheus.registry, () => origin.stats()),
  };
  const addr = await origin.listen({ host, port: 0, tlsPort: certificate ? 0 : null, certificate, http3 });
  return { origin, metrics, base: addr.http!, tls: addr.https };
}
