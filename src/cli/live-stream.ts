import { LiveTimeline, LiveWindow, TrackPackager } from '../media/index.js';
import type { LiveStreamStats } from '../metrics/index.js';
import { LiveSource, ffmpegArguments, type LiveSourceOptions, type MediaSink } from '../source/index.js';

export interface LiveStreamOptions {
  source: Omit<LiveSourceOptions, 'keyFrameInterval'>;
  segmentDuration: number;
  chunkDuration: number;
  timeShiftBufferDepth: number;
  log: (line: string) => void;
}

/**
 * The live source wired to the media layer: ffmpeg → one packager per rendition → the live window that
 * every delivery mode reads.
 */
export class LiveStream {
  readonly window: LiveWindow;
  readonly timeline: LiveTimeline;
  readonly source: LiveSource;

  constructor(o: LiveStreamOptions) {
    this.window = new LiveWindow({ timeShiftBufferDepth: o.timeShiftBufferDepth });
    this.timeline = new LiveTimeline(o.segmentDuration);
    const settings = { ...o.source, keyFrameInterval: o.segmentDuration };
    const bandwidthOf = (id: string) =>
      id === settings.audio?.id ? settings.audio.bitrate : (settings.video.find((v) => v.id === id)?.bitrate ?? 0);
    const sinks = new Map<string, MediaSink>();
    for (const output of ffmpegArguments(settings).outputs) {
      const bandwidth = bandwidthOf(output.trackId);
      // Codec, timescale and dimensions are filled in from the init segment when the encoder's moov arrives.
      const track = this.window.addTrack({ id: output.trackId, kind: output.kind, codec: '', timescale: 1, bandwidth });
      const packager = new TrackPackager({
        track,
        timeline: this.timeline,
        bandwidth,
        segmentDuration: o.segmentDuration,
        chunkDuration: o.chunkDuration,
      });
      sinks.set(output.trackId, packager);
    }
    this.source = new LiveSource(settings, sinks);
    this.source.on('sink-error', (trackId, err) => {
      o.log(`packager (${trackId}): ${err.message}; restarting the encoder, published segments are kept`);
    });
    this.source.on('exited', ({ code, signal, lastError, restartIn, requested }) => {
      if (requested) return o.log('encoder stopped');
      const why = signal ? `killed by ${signal}` : `exit code ${code}`;
      const detail = lastError ? `\n  ffmpeg said: ${lastError.split('\n').slice(-3).join('\n  ')}` : '';
      if (restartIn === undefined) {
        o.log(`encoder stopped (${why})${detail}`);
        return;
      }
      o.log(
        `encoder died (${why}); restarting in ${(restartIn / 1000).toFixed(1)} s, published segments stay available${detail}`,
      );
    });
  }

  /** The encoder's counts and the segments each track published, for metrics. */
  stats(): LiveStreamStats {
    const published: Record<string, number> = {};
    for (const [id, track] of this.window.tracks) published[id] = track.publishedCount;
    return { encoder: this.source.stats(), segmentsPublishedByTrack: published };
  }

  /** Resolves once every track has an init segment and a first complete segment: the stream is live. */
  whenLive(): Promise<void> {
    const tracks = [...this.window.tracks.values()];
    return Promise.all(
      tracks.map(
        (t) =>
          new Promise<void>((resolve) => {
            if (t.newestComplete()) return resolve();
            const off = t.on('segmentcompleted', () => {
              off();
              resolve();
            });
          }),
      ),
    ).then(() => undefined);
  }

  start(): void {
    this.source.start();
  }

  async stop(): Promise<void> {
    await this.source.stop();
  }
}
