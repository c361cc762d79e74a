/** RFC 6381 `codecs` parameters and the media description of a track, from its sample entry. */
import { BmffError } from './errors.js';
import type { AudioSampleEntry, MovieTrack, SampleEntry } from './movie.js';

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');

/**
 * The RFC 6381 codecs parameter for a sample entry:
 * - AVC (RFC 6381 §3.3, ISO/IEC 14496-15 Annex E): `avc1.PPCCLL` from the `avcC` profile, constraint
 *   flags and level; `avc3` (parameter sets in band) keeps its own prefix.
 * - MPEG-4 audio (RFC 6381 §3.3): `mp4a.OO.A` with the object type indication in hex and, for
 *   MPEG-4 Audio (0x40), the audio object type in decimal, e.g. `mp4a.40.2` for AAC-LC.
 */
export function codecString(entry: SampleEntry): string {
  if (entry.kind === 'visual' && (entry.format === 'avc1' || entry.format === 'avc3')) {
    const avc = entry.avcConfig;
    if (!avc) throw new BmffError(`'${entry.format}' sample entry has no 'avcC' box`, entry.format, entry.offset);
    return `${entry.format}.${hex2(avc.profileIndication)}${hex2(avc.profileCompatibility)}${hex2(avc.levelIndication)}`;
  }
  if (entry.kind === 'audio' && entry.format === 'mp4a') {
    const esds = entry.esds;
    if (!esds) throw new BmffError(`'mp4a' sample entry has no 'esds' box`, entry.format, entry.offset);
    const oti = hex2(esds.objectTypeIndication);
    const config = esds.audioSpecificConfig;
    if (!config) {
      if (esds.objectTypeIndication === 0x40)
        throw new BmffError('MPEG-4 Audio without an AudioSpecificConfig', entry.format, entry.offset);
      return `mp4a.${oti}`;
    }
    return `mp4a.${oti}.${config.audioObjectType}`;
  }
  throw new BmffError(
    `unsupported sample entry '${entry.format}' (pushcast packages avc1, avc3 and mp4a)`,
    entry.format,
    entry.offset,
  );
}

/** What a manifest and a player need to know about a track, read from its init segment. */
export interface TrackDescription {
  /** `tkhd` track_ID. */
  readonly trackId: number;
  readonly kind: 'video' | 'audio';
  /** RFC 6381 codecs parameter. */
  readonly codec: string;
  /** `mdhd` timescale. */
  readonly timescale: number;
  readonly width?: number;
  readonly height?: number;
  readonly sampleRate?: number;
  readonly channels?: number;
}

/** channelConfiguration → channels (ISO/IEC 14496-3 §1.6.3.5). */
const CHANNELS_BY_CONFIGURATION = [0, 1, 2, 3, 4, 5, 6, 8];
const PARAMETRIC_STEREO = 29;

/**
 * The number of output channels. The AudioSpecificConfig is authoritative: encoders such as ffmpeg
 * write channelcount 2 in the sample entry even for mono, and HE-AAC v2 decodes one coded channel to two.
 */
function audioChannels(entry: AudioSampleEntry): number {
  const config = entry.esds?.audioSpecificConfig;
  if (!config) return entry.channelCount;
  if (config.audioObjectType === PARAMETRIC_STEREO) return 2;
  return CHANNELS_BY_CONFIGURATION[config.channelConfiguration] || entry.channelCount;
}

/** Describes a track by its first sample entry; a handler or sample entry pushcast cannot package is a BmffError. */
export function describeTrack(track: MovieTrack): TrackDescription {
  const entry = track.sampleEntries[0];
  if (!entry) throw new BmffError(`track ${track.trackId} has no sample entry`, 'stsd', 0);
  const common = { trackId: track.trackId, codec: codecString(entry), timescale: track.timescale };
  if (entry.kind === 'visual') return { ...common, kind: 'video', width: entry.width, height: entry.height };
  if (entry.kind === 'audio')
    return {
      ...common,
      kind: 'audio',
      sampleRate: entry.sampleRate || track.timescale,
      channels: audioChannels(entry),
    };
  // codecString refuses sample entries of other handlers, so this is unreachable.
  throw new BmffError(`unsupported handler '${track.handlerType}'`, entry.format, entry.offset);
}
