/**
 * What a `@moq/publish` broadcast carries (docs/moq.md: the hang catalog, "legacy" frames: a microsecond
 * timestamp varint, then one encoded frame) rewritten as live Matroska for ffmpeg: the renditions the
 * catalog names, H.264 from Annex B to AVC with the SPS and PPS of the first key frame.
 */
import {
  annexBToAvcc,
  avcConfigFromAnnexB,
  matroskaBlock,
  matroskaCluster,
  matroskaHeader,
  opusHead,
  type MatroskaTrack,
} from '../source/matroska.js';
import { readVarint } from '../wire/index.js';

/** A rendition of the hang catalog, the fields read here. */
export interface HangRendition {
  codec: string;
  codedWidth?: number;
  codedHeight?: number;
  sampleRate?: number;
  numberOfChannels?: number;
  /** Hex: the decoder configuration (avcC for H.264 in AVC format, AudioSpecificConfig for AAC). */
  description?: string;
  container?: { kind: string };
}

export interface PickedRendition {
  track: string;
  rendition: HangRendition;
}

/** The first video and audio renditions of a hang catalog (JSON), those this muxer can carry. */
export function pickRenditions(json: unknown): { video?: PickedRendition; audio?: PickedRendition } {
  const root = (typeof json === 'object' && json !== null ? json : {}) as Record<string, unknown>;
  const first = (section: unknown): PickedRendition | undefined => {
    const renditions = (section as { renditions?: Record<string, HangRendition> } | undefined)?.renditions;
    if (typeof renditions !== 'object' || renditions === null) return undefined;
    for (const [track, rendition] of Object.entries(renditions)) {
      if (typeof rendition?.codec !== 'string') continue;
      const kind = rendition.container?.kind ?? 'legacy';
      if (kind !== 'legacy') throw new Error(`track ${track}: container ${kind} (only "legacy" is read)`);
      return { track, rendition };
    }
    return undefined;
  };
  return { video: first(root.video), audio: first(root.audio) };
}

const fromHex = (hex: string): Uint8Array => Uint8Array.from(hex.match(/../g) ?? [], (b) => Number.parseInt(b, 16));

/** The Matroska codec of a WebCodecs codec string, or why it cannot be carried. */
export function matroskaCodec(kind: 'video' | 'audio', codec: string): string {
  if (kind === 'video') {
    if (codec.startsWith('avc1') || codec.startsWith('avc3')) return 'V_MPEG4/ISO/AVC';
    if (codec === 'vp8') return 'V_VP8';
    if (codec.startsWith('vp09') || codec === 'vp9') return 'V_VP9';
  } else {
    if (codec === 'opus') return 'A_OPUS';
    if (codec.startsWith('mp4a.40')) return 'A_AAC';
  }
  throw new Error(`${kind} codec ${codec} is not taken (H.264, VP8, VP9; Opus, AAC)`);
}

/** A legacy frame: its timestamp (µs) and payload; an empty payload is a marker, not a sample. */
export function decodeLegacyFrame(frame: Uint8Array): { timestampUs: number; data: Uint8Array } {
  const { value, length } = readVarint(frame, 0);
  return { timestampUs: value, data: frame.subarray(length) };
}

/**
 * 20 ms of Opus silence (RFC 6716: TOC 0xFC, CELT full band 20 ms stereo, one frame; 0xFF 0xFE decodes with
 * the silence flag set): the audio of a publisher that sends none, so that the ladder's audio has a source.
 */
const OPUS_SILENCE = Uint8Array.of(0xfc, 0xff, 0xfe);
const SILENCE_MS = 20;

/** Blocks further than this from their cluster start a new one (a SimpleBlock's offset is 16-bit). */
const MAX_CLUSTER_SPAN_MS = 30_000;

/**
 * Writes the header at the first video key frame (the decoder configuration of H.264 comes from it), then
 * a cluster per key frame. Timestamps start at that key frame; earlier frames are dropped. Without audio,
 * Opus silence follows the video, so that the encoder always has an audio input.
 */
export class LegacyMatroskaMuxer {
  private started = false;
  private baseUs = 0;
  private clusterMs = 0;
  /** Without audio from the publisher: silence written up to here (ms). */
  private silenceMs = 0;
  private readonly videoCodec: string;
  private readonly audioCodec?: string;
  private readonly avc: boolean;
  /** Frames written (video, audio), and dropped before the first key frame. */
  readonly counts = { video: 0, audio: 0, dropped: 0 };

  constructor(
    private readonly video: HangRendition,
    private readonly audio: HangRendition | undefined,
    private readonly write: (bytes: Uint8Array) => void,
  ) {
    this.videoCodec = matroskaCodec('video', video.codec);
    if (audio) this.audioCodec = matroskaCodec('audio', audio.codec);
    // With a description the frames are AVC already; without, Annex B (hang's default).
    this.avc = this.videoCodec === 'V_MPEG4/ISO/AVC' && video.description === undefined;
  }

  get hasStarted(): boolean {
    return this.started;
  }

  /** A video frame (legacy), `keyframe` when it opens its group. */
  videoFrame(frame: Uint8Array, keyframe: boolean): void {
    const { timestampUs, data } = decodeLegacyFrame(frame);
    if (data.length === 0) return;
    if (!this.started) {
      if (!keyframe) return void this.counts.dropped++;
      this.start(data, timestampUs);
    }
    const ms = this.relativeMs(timestampUs);
    if (ms === undefined) return void this.counts.dropped++;
    if (keyframe || Math.abs(ms - this.clusterMs) > MAX_CLUSTER_SPAN_MS) {
      this.clusterMs = ms;
      this.write(matroskaCluster(ms));
    }
    this.counts.video++;
    this.write(matroskaBlock(1, ms - this.clusterMs, keyframe, this.avc ? annexBToAvcc(data) : data));
    if (!this.audio)
      for (; this.silenceMs <= ms; this.silenceMs += SILENCE_MS)
        if (Math.abs(this.silenceMs - this.clusterMs) <= MAX_CLUSTER_SPAN_MS)
          this.write(matroskaBlock(2, this.silenceMs - this.clusterMs, true, OPUS_SILENCE));
  }

  audioFrame(frame: Uint8Array): void {
    if (!this.started || !this.audio) return void this.counts.dropped++;
    const { timestampUs, data } = decodeLegacyFrame(frame);
    if (data.length === 0) return;
    const ms = this.relativeMs(timestampUs);
    if (ms === undefined) return void this.counts.dropped++;
    if (Math.abs(ms - this.clusterMs) > MAX_CLUSTER_SPAN_MS) {
      this.clusterMs = ms;
      this.write(matroskaCluster(ms));
    }
    this.counts.audio++;
    this.write(matroskaBlock(2, ms - this.clusterMs, true, data));
  }

  private relativeMs(timestampUs: number): number | undefined {
    const ms = Math.round((timestampUs - this.baseUs) / 1000);
    return ms < 0 ? undefined : ms;
  }

  private start(keyframe: Uint8Array, timestampUs: number): void {
    let codecPrivate: Uint8Array | undefined;
    if (this.video.description !== undefined) codecPrivate = fromHex(this.video.description);
    else if (this.avc) {
      codecPrivate = avcConfigFromAnnexB(keyframe);
      if (!codecPrivate) throw new Error('the first H.264 key frame has no SPS and PPS');
    }
    const tracks: MatroskaTrack[] = [
      {
        kind: 'video',
        codecId: this.videoCodec,
        codecPrivate,
        width: this.video.codedWidth,
        height: this.video.codedHeight,
      },
    ];
    if (!this.audio)
      tracks.push({
        kind: 'audio',
        codecId: 'A_OPUS',
        codecPrivate: opusHead(2, 48_000),
        sampleRate: 48_000,
        channels: 2,
      });
    if (this.audio && this.audioCodec) {
      const channels = this.audio.numberOfChannels ?? 2;
      const sampleRate = this.audio.sampleRate ?? 48_000;
      tracks.push({
        kind: 'audio',
        codecId: this.audioCodec,
        codecPrivate:
          this.audioCodec === 'A_OPUS'
            ? opusHead(channels, sampleRate)
            : this.audio.description !== undefined
              ? fromHex(this.audio.description)
              : undefined,
        sampleRate: this.audioCodec === 'A_OPUS' ? 48_000 : sampleRate,
        channels,
      });
    }
    this.started = true;
    this.baseUs = timestampUs;
    this.write(matroskaHeader(tracks));
  }
}
