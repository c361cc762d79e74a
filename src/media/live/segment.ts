/**
 * A CMAF media segment as the packager publishes it (ISO/IEC 23000-19 §7.3.3): one or more CMAF chunks,
 * each a `moof`+`mdat` pair, the first preceded by a `styp`. Segments grow chunk by chunk while the
 * encoder produces them so that low-latency delivery modes can forward each chunk as it arrives.
 */
export interface TrackInfo {
  /** Representation id; also the URL path component (`/live/<id>/…`). */
  readonly id: string;
  readonly kind: 'video' | 'audio';
  /** RFC 6381 codecs parameter read from the init segment's sample entry, e.g. `avc1.64001f`, `mp4a.40.2`. */
  readonly codec: string;
  /** Media timescale of the track (`mdhd`). */
  readonly timescale: number;
  /** Nominal bitrate in bit/s, as configured for the encoder; advertised in the MPD. */
  readonly bandwidth: number;
  readonly width?: number;
  readonly height?: number;
  readonly sampleRate?: number;
  readonly channels?: number;
}

export interface ChunkInfo {
  readonly bytes: Uint8Array;
  /** Decode time of the chunk's first sample, in the track timescale. */
  readonly decodeTime: number;
  /** Sum of the chunk's sample durations, in the track timescale. */
  readonly duration: number;
  readonly sampleCount: number;
}

export class Segment {
  readonly chunks: ChunkInfo[] = [];
  /** Duration so far; final once `complete`. Track timescale. */
  duration = 0;
  /** Bytes so far; final once `complete`. */
  size = 0;
  complete = false;
  /** Set when the input ended before this segment was finished: it is kept (its bytes are valid) but short. */
  truncated = false;
  private whole?: Uint8Array;

  constructor(
    readonly trackId: string,
    readonly number: number,
    /** `tfdt` baseMediaDecodeTime of the first sample, track timescale. */
    readonly decodeTime: number,
    /** Earliest presentation time (decode time + composition offset of the first sample in presentation order). */
    readonly earliestPresentationTime: number,
    readonly startsWithSap: boolean,
    readonly timescale: number,
  ) {}

  addChunk(chunk: ChunkInfo): void {
    if (this.complete) throw new Error(`segment ${this.trackId}/${this.number} is complete; no chunk can be added`);
    this.chunks.push(chunk);
    this.duration += chunk.duration;
    this.size += chunk.bytes.byteLength;
    this.whole = undefined;
  }

  /** All bytes received so far, concatenated once and cached. */
  bytes(): Uint8Array {
    if (this.whole) return this.whole;
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c.bytes, at);
      at += c.bytes.byteLength;
    }
    if (this.complete) this.whole = out;
    return out;
  }

  get durationSeconds(): number {
    return this.duration / this.timescale;
  }
}
