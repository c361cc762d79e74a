/**
 * A live window built by hand for the Warp tests (producer, server, relay): two tracks whose chunks are
 * real moof+mdat pairs with recognisable payloads, segments published on a 2 s grid.
 */
import { LiveTimeline, LiveWindow, Segment, type LiveTrack, type TrackInfo } from '../../src/media/index.js';
import { writeMediaDataHeader, writeMovieFragment } from '../../src/media/bmff/writer.js';

export const VIDEO: TrackInfo = {
  id: 'video',
  kind: 'video',
  codec: 'avc1.42c01e',
  timescale: 1000,
  bandwidth: 800_000,
  width: 640,
  height: 360,
};
export const AUDIO: TrackInfo = {
  id: 'audio',
  kind: 'audio',
  codec: 'mp4a.40.2',
  timescale: 1000,
  bandwidth: 128_000,
  sampleRate: 48000,
  channels: 2,
};
/** A second video rendition (`renditions: true`): same timescale and grid, twice the bitrate. */
export const VIDEO_HI: TrackInfo = {
  ...VIDEO,
  id: 'video-hi',
  codec: 'avc1.42c01f',
  bandwidth: 1_600_000,
  width: 1280,
  height: 720,
};
export const SEGMENT_MS = 2000;

/** A real moof+mdat (one sample) whose tfdt is `decodeTime`, with recognisable payload bytes. */
export function chunk(decodeTime: number, size: number, seed: number): Uint8Array {
  const moof = writeMovieFragment({
    sequenceNumber: seed,
    trackId: 1,
    baseMediaDecodeTime: decodeTime,
    samples: [{ duration: 500, size, flags: 0, compositionOffset: 0 }],
    mediaDataHeaderSize: 8,
  });
  const out = new Uint8Array(moof.length + 8 + size);
  out.set(moof);
  out.set(writeMediaDataHeader(size), moof.length);
  for (let i = 0; i < size; i++) out[moof.length + 8 + i] = (seed * 7 + i) & 0xff;
  return out;
}

export class WarpLive {
  readonly timeline = new LiveTimeline(SEGMENT_MS / 1000, () => Date.now(), 1);
  readonly window: LiveWindow;
  readonly video: LiveTrack;
  readonly audio: LiveTrack;
  readonly videoHi: LiveTrack | undefined;

  /**
   * `chunkBytes`: the size `add` gives a chunk by default (else 20 kB of video, 2 kB of audio);
   * `renditions`: a second video rendition, VIDEO_HI.
   */
  constructor(private readonly o: { timeShiftBufferDepth: number; chunkBytes?: number; renditions?: boolean }) {
    this.window = new LiveWindow({ timeShiftBufferDepth: o.timeShiftBufferDepth });
    this.timeline.availabilityStartTime = Date.now();
    this.video = this.window.addTrack(VIDEO);
    this.audio = this.window.addTrack(AUDIO);
    this.video.setInit(new Uint8Array(700).fill(1), VIDEO);
    this.audio.setInit(new Uint8Array(600).fill(2), AUDIO);
    if (o.renditions) {
      this.videoHi = this.window.addTrack(VIDEO_HI);
      this.videoHi.setInit(new Uint8Array(800).fill(3), VIDEO_HI);
    }
  }

  get tracks(): LiveTrack[] {
    return this.videoHi ? [this.video, this.videoHi, this.audio] : [this.video, this.audio];
  }

  start(track: LiveTrack, n: number): Segment {
    const s = new Segment(track.id, n, (n - 1) * SEGMENT_MS, (n - 1) * SEGMENT_MS, true, 1000);
    track.startSegment(s);
    return s;
  }

  add(track: LiveTrack, s: Segment, size = this.o.chunkBytes ?? this.fullChunk(track)): void {
    const i = s.chunks.length;
    track.addChunk(s, {
      bytes: chunk(s.decodeTime + i * 500, size, s.number * 10 + i),
      decodeTime: s.decodeTime + i * 500,
      duration: 500,
      sampleCount: 1,
    });
  }

  /** A whole segment of both tracks, four chunks each (20 kB of video, 2 kB of audio). */
  publish(n: number): void {
    for (const track of this.tracks) {
      const s = this.start(track, n);
      for (let i = 0; i < 4; i++) this.add(track, s, this.fullChunk(track));
      track.completeSegment(s);
    }
  }

  private fullChunk(track: LiveTrack): number {
    return track === this.video ? 20_000 : track === this.videoHi ? 30_000 : 2000;
  }
}
