import { LiveTimeline, LiveWindow, TrackPackager } from '../media/index.js';
import type { LiveStreamStats } from '../metrics/index.js';
import { MoqPublishIngest, type MoqPublisher } from '../moq/index.js';
import {
  LiveSource,
  RtmpIngestServer,
  ffmpegArguments,
  type LiveInput,
  type LiveSourceOptions,
  type MediaSink,
} from '../source/index.js';
import type { Readable } from 'node:stream';

/** An ingest publisher (RTMP, MoQ) as the encoder reads it. */
interface Publisher {
  readonly remote: string;
  readonly media: Readable;
  close(reason?: string): void;
}

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
  /** The RTMP ingest point, for an `rtmp` input. */
  readonly rtmp?: RtmpIngestServer;
  /** The MoQ publish point, for a `moq` input: `MoqServer` hands it the sessions with the publish token. */
  readonly moq?: MoqPublishIngest;
  /** The publisher whose media the running encoder reads, and the one that replaces it once that run ends. */
  private publisher?: Publisher;
  private nextPublisher?: Publisher;
  private readonly log: (line: string) => void;
  private readonly input: LiveInput;
  private stopping = false;

  constructor(o: LiveStreamOptions) {
    this.log = o.log;
    this.window = new LiveWindow({ timeShiftBufferDepth: o.timeShiftBufferDepth });
    // Passed through, key frames come where the encoder put them: segments are described one by one.
    this.timeline = new LiveTimeline(o.segmentDuration, Date.now, undefined, {
      segmentTimeline: o.source.passthrough,
    });
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
    const input = settings.input;
    this.input = input;
    if (input.kind === 'rtmp') this.rtmp = this.rtmpIngest(new RtmpIngestServer(input));
    if (input.kind === 'moq') this.moq = this.moqIngest(new MoqPublishIngest(input));
    if (input.kind === 'srt') {
      this.source.on('media', () => o.log('ingest: encoder connected (srt), publishing'));
      this.source.on('log', (line) => {
        // libsrt's own log line when it rejects a caller's handshake (the listener keeps listening).
        const reject = /rsp\(REJECT\): \d+ - (.*)$/.exec(line);
        if (reject)
          o.log(
            `ingest: refused: ${/passphrase|secret|unsecure/i.test(reject[1]!) ? 'wrong passphrase' : 'handshake'} (SRT: ${reject[1]})`,
          );
      });
    }
    this.source.on('exited', ({ code, signal, lastError, restartIn, requested, hadMedia }) => {
      if (requested) return o.log('encoder stopped');
      if (input.kind === 'rtmp' || input.kind === 'moq') return this.rtmpRunEnded(hadMedia, lastError);
      if (input.kind === 'srt' && hadMedia)
        return o.log(
          'ingest: encoder disconnected (srt); listening again, published segments stay and the timeline continues on reconnection',
        );
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

  /** Starts the encoder, or for an RTMP input the listener that starts one per publishing encoder. */
  async start(): Promise<void> {
    if (this.moq) return;
    if (!this.rtmp) return this.source.start();
    const address = await this.rtmp.listen();
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const app = this.input.kind === 'rtmp' ? this.input.app : '';
    this.log(`ingest: listening on rtmp://${host}:${address.port}/${app} (stream key required)`);
  }

  private rtmpIngest(server: RtmpIngestServer): RtmpIngestServer {
    server.on('refused', (remote, reason) => this.log(`ingest: refused ${remote}: ${reason}`));
    server.on('publish', (rtmp) => {
      const p = { remote: rtmp.remote, media: rtmp.flv, close: (reason?: string) => rtmp.close(reason) };
      const replacing = this.publisher !== undefined;
      this.log(
        `ingest: encoder connected from ${p.remote} (rtmp), publishing${replacing ? '; it replaces the previous connection' : ''}`,
      );
      // The newest publisher with the right key wins: an encoder that reconnects before its old
      // connection timed out must not be locked out by it.
      this.nextPublisher?.close('replaced by a newer connection');
      this.nextPublisher = p;
      this.publisher?.close('replaced by a newer connection');
      this.startNextRun();
    });
    server.on('unpublish', (rtmp, reason) => {
      if (rtmp.flv === this.nextPublisher?.media) this.nextPublisher = undefined;
      this.log(
        `ingest: encoder disconnected from ${rtmp.remote} (${reason})${this.stopping ? '' : '; published segments stay, the timeline continues when it reconnects'}`,
      );
    });
    return server;
  }

  /**
   * One publisher at a time (the ingest refuses others while one publishes); a new one waits for the
   * run of the one that left to end.
   */
  private moqIngest(ingest: MoqPublishIngest): MoqPublishIngest {
    const of = new Map<MoqPublisher, Publisher>();
    ingest.on('refused', (remote, reason) => this.log(`moq: publisher refused: ${remote}: ${reason}`));
    ingest.on('tracks', (m, description) => this.log(`moq: ${m.remote} sends ${description}`));
    ingest.on('publish', (m) => {
      const p = { remote: m.remote, media: m.mkv, close: (reason?: string) => m.close(reason) };
      of.set(m, p);
      this.log(`moq: publisher connected: ${m.remote}, publishing broadcast ${ingest.o.name}`);
      this.nextPublisher = p;
      this.startNextRun();
    });
    ingest.on('unpublish', (m, reason) => {
      if (of.get(m) === this.nextPublisher) this.nextPublisher = undefined;
      of.delete(m);
      this.log(
        `moq: publisher left: ${m.remote} (${reason})${this.stopping ? '' : '; published segments stay, the timeline continues when one publishes again'}`,
      );
    });
    return ingest;
  }

  private startNextRun(): void {
    if (this.source.running || !this.nextPublisher) return;
    this.publisher = this.nextPublisher;
    this.nextPublisher = undefined;
    this.source.start(this.publisher.media);
  }

  /** An encoder run of an RTMP publisher ended: its publisher goes with it, and a waiting one starts the next. */
  private rtmpRunEnded(hadMedia: boolean, lastError: string): void {
    const publisher = this.publisher;
    this.publisher = undefined;
    if (!hadMedia && lastError)
      this.log(`encoder run ended without media\n  ffmpeg said: ${lastError.split('\n').slice(-3).join('\n  ')}`);
    publisher?.close();
    this.startNextRun();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.moq?.close();
    await this.rtmp?.close();
    await this.source.stop();
  }
}
