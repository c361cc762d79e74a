/**
 * Parsers for the boxes of an initialization segment: `ftyp` and the `moov` tree down to the sample
 * entries and the `mvex` defaults that movie fragments rely on.
 */
import { BmffError } from './errors.js';
import { childrenOf, FieldReader, readBoxes, requireChild, requireSingleChild, type Box } from './reader.js';

/** `ftyp` / `styp` (ISO/IEC 14496-12 §4.3, §8.16.2). */
export interface FileType {
  readonly majorBrand: string;
  readonly minorVersion: number;
  readonly compatibleBrands: readonly string[];
}

export function parseFileType(box: Box): FileType {
  const r = new FieldReader(box);
  const majorBrand = r.fourCC('major_brand');
  const minorVersion = r.u32('minor_version');
  if (r.remaining % 4 !== 0) throw r.error(`compatible brands take ${r.remaining} bytes, not a multiple of 4`);
  const compatibleBrands: string[] = [];
  while (r.remaining > 0) compatibleBrands.push(r.fourCC('a compatible brand'));
  return { majorBrand, minorVersion, compatibleBrands };
}

/** AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1). */
export interface AvcDecoderConfig {
  readonly profileIndication: number;
  readonly profileCompatibility: number;
  readonly levelIndication: number;
  /** Bytes of the length prefix of each NAL unit in a sample (1, 2 or 4). */
  readonly nalUnitLengthSize: number;
  readonly sequenceParameterSets: readonly Uint8Array[];
  readonly pictureParameterSets: readonly Uint8Array[];
}

/** ISO/IEC 14496-15 §5.3.3.1.2: the record inside an `avcC` box. */
export function parseAvcDecoderConfig(box: Box): AvcDecoderConfig {
  const r = new FieldReader(box);
  const configurationVersion = r.u8('configurationVersion');
  if (configurationVersion !== 1) throw r.error(`unsupported configurationVersion ${configurationVersion}`);
  const profileIndication = r.u8('AVCProfileIndication');
  const profileCompatibility = r.u8('profile_compatibility');
  const levelIndication = r.u8('AVCLevelIndication');
  const nalUnitLengthSize = (r.u8('lengthSizeMinusOne') & 0b11) + 1;
  if (nalUnitLengthSize === 3) throw r.error('NAL unit length size 3 is not allowed');
  const readParameterSets = (count: number, what: string): Uint8Array[] => {
    const sets: Uint8Array[] = [];
    for (let i = 0; i < count; i++) sets.push(r.bytes(r.u16(`${what} length`), what));
    return sets;
  };
  const sequenceParameterSets = readParameterSets(
    r.u8('numOfSequenceParameterSets') & 0b11111,
    'a sequence parameter set',
  );
  const pictureParameterSets = readParameterSets(r.u8('numOfPictureParameterSets'), 'a picture parameter set');
  // High profiles may append chroma format and bit depth fields; nothing here needs them.
  return {
    profileIndication,
    profileCompatibility,
    levelIndication,
    nalUnitLengthSize,
    sequenceParameterSets,
    pictureParameterSets,
  };
}

/** What an MPEG-4 elementary stream descriptor (`esds`) says about the stream. */
export interface ElementaryStreamConfig {
  /** DecoderConfigDescriptor.objectTypeIndication (0x40 = MPEG-4 Audio). */
  readonly objectTypeIndication: number;
  readonly streamType: number;
  readonly maxBitrate: number;
  readonly avgBitrate: number;
  /** DecoderSpecificInfo payload: the AudioSpecificConfig for MPEG-4 Audio. */
  readonly decoderSpecificInfo?: Uint8Array;
  /** The DecoderSpecificInfo read as an AudioSpecificConfig, for MPEG-4 Audio. */
  readonly audioSpecificConfig?: AudioSpecificConfig;
}

// Descriptor tags, ISO/IEC 14496-1 §7.2.2.1.
const ES_DESCRIPTOR_TAG = 0x03;
const DECODER_CONFIG_DESCRIPTOR_TAG = 0x04;
const DECODER_SPECIFIC_INFO_TAG = 0x05;
const MPEG4_AUDIO_OBJECT_TYPE = 0x40;

interface Descriptor {
  readonly tag: number;
  /** Reader positioned at the first byte of the descriptor's body. */
  readonly bodyStart: number;
  readonly bodyEnd: number;
}

/** Reads a descriptor header: tag and expandable size (ISO/IEC 14496-1 §7.2.2.3, §8.3.3). */
function readDescriptor(r: FieldReader, limit: number): Descriptor {
  const tag = r.u8('a descriptor tag');
  let size = 0;
  for (let i = 0; ; i++) {
    if (i === 4) throw r.error(`descriptor 0x${tag.toString(16)} has a size field longer than 4 bytes`);
    const b = r.u8('a descriptor size');
    size = size * 128 + (b & 0x7f);
    if (!(b & 0x80)) break;
  }
  const bodyStart = r.position;
  if (bodyStart + size > limit) {
    throw r.error(
      `descriptor 0x${tag.toString(16)} of ${size} bytes runs past its parent (${limit - bodyStart} bytes left)`,
    );
  }
  return { tag, bodyStart, bodyEnd: bodyStart + size };
}

/**
 * Walks sibling descriptors from the reader's position up to `end` and stops at the first one tagged
 * `tag`, with the reader at the start of its body; skips the others (e.g. SLConfigDescriptor).
 */
function findDescriptor(r: FieldReader, end: number, tag: number): Descriptor | undefined {
  while (r.position < end) {
    const d = readDescriptor(r, end);
    if (d.tag === tag) return d;
    r.skip(d.bodyEnd - r.position, 'a descriptor');
  }
  return undefined;
}

/** ISO/IEC 14496-1 §7.2.6.5: ES_Descriptor → DecoderConfigDescriptor → DecoderSpecificInfo, inside a full box (ISO/IEC 14496-14 §5.6). */
export function parseElementaryStreamDescriptor(box: Box): ElementaryStreamConfig {
  const r = new FieldReader(box);
  r.fullBoxHeader(0);
  const end = box.bytes.length;
  const es = readDescriptor(r, end);
  if (es.tag !== ES_DESCRIPTOR_TAG)
    throw r.error(`expected an ES_Descriptor (tag 0x03), found tag 0x${es.tag.toString(16)}`);
  // §7.2.6.5.1: ES_ID, then flags saying which optional fields follow.
  r.u16('ES_ID');
  const esFlags = r.u8('ES_Descriptor flags');
  if (esFlags & 0x80) r.u16('dependsOn_ES_ID');
  if (esFlags & 0x40) r.skip(r.u8('URLlength'), 'URLstring');
  if (esFlags & 0x20) r.u16('OCR_ES_Id');
  const decoderConfig = findDescriptor(r, es.bodyEnd, DECODER_CONFIG_DESCRIPTOR_TAG);
  if (!decoderConfig) throw r.error('ES_Descriptor has no DecoderConfigDescriptor (tag 0x04)');
  // §7.2.6.6.1: 13 bytes of fixed fields, then optional DecoderSpecificInfo and profile descriptors.
  if (decoderConfig.bodyEnd - decoderConfig.bodyStart < 13)
    throw r.error('DecoderConfigDescriptor is shorter than its 13 fixed bytes');
  const objectTypeIndication = r.u8('objectTypeIndication');
  const streamType = r.u8('streamType') >> 2;
  r.skip(3, 'bufferSizeDB');
  const maxBitrate = r.u32('maxBitrate');
  const avgBitrate = r.u32('avgBitrate');
  const specificInfo = findDescriptor(r, decoderConfig.bodyEnd, DECODER_SPECIFIC_INFO_TAG);
  const decoderSpecificInfo = specificInfo
    ? r.bytes(specificInfo.bodyEnd - specificInfo.bodyStart, 'DecoderSpecificInfo')
    : undefined;
  const audioSpecificConfig =
    objectTypeIndication === MPEG4_AUDIO_OBJECT_TYPE && decoderSpecificInfo
      ? parseAudioSpecificConfig(decoderSpecificInfo, box)
      : undefined;
  return { objectTypeIndication, streamType, maxBitrate, avgBitrate, decoderSpecificInfo, audioSpecificConfig };
}

/** The leading fields of an MPEG-4 AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1). */
export interface AudioSpecificConfig {
  /** e.g. 2 = AAC-LC, 5 = SBR (HE-AAC), 29 = PS (HE-AAC v2), 42 = USAC. */
  readonly audioObjectType: number;
  /** Sampling frequency of the core decoder, Hz. */
  readonly samplingFrequency: number;
  /** 0 = defined in the payload's program config element; 1–6 = that many channels; 7 = 7.1 (8 channels); … */
  readonly channelConfiguration: number;
}

/** samplingFrequencyIndex → Hz (ISO/IEC 14496-3 §1.6.3.4). */
const SAMPLING_FREQUENCIES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

/**
 * Reads audioObjectType (5 bits, 31 escaping to 32 + the next 6 bits), samplingFrequencyIndex (4 bits,
 * 15 escaping to a 24-bit frequency) and channelConfiguration (4 bits) from an AudioSpecificConfig.
 *
 * @param box the box that carries it, named in errors
 */
export function parseAudioSpecificConfig(bytes: Uint8Array, box: Box): AudioSpecificConfig {
  let bitPosition = 0;
  const bits = (count: number): number => {
    if (bitPosition + count > bytes.length * 8)
      throw new BmffError(
        `AudioSpecificConfig of ${bytes.length} bytes ends inside its header fields`,
        box.type,
        box.offset,
      );
    let value = 0;
    for (let i = 0; i < count; i++, bitPosition++)
      value = value * 2 + ((bytes[bitPosition >> 3]! >> (7 - (bitPosition & 7))) & 1); // within the bytes, checked above
    return value;
  };
  const firstBits = bits(5);
  const audioObjectType = firstBits === 31 ? 32 + bits(6) : firstBits;
  const frequencyIndex = bits(4);
  const samplingFrequency = frequencyIndex === 15 ? bits(24) : SAMPLING_FREQUENCIES[frequencyIndex];
  if (samplingFrequency === undefined)
    throw new BmffError(`reserved samplingFrequencyIndex ${frequencyIndex}`, box.type, box.offset);
  return { audioObjectType, samplingFrequency, channelConfiguration: bits(4) };
}

/** VisualSampleEntry (ISO/IEC 14496-12 §12.1.3) with the boxes pushcast understands. */
export interface VisualSampleEntry {
  readonly kind: 'visual';
  /** Sample entry type, e.g. `avc1`. */
  readonly format: string;
  readonly offset: number;
  readonly width: number;
  readonly height: number;
  readonly avcConfig?: AvcDecoderConfig;
}

/** AudioSampleEntry (ISO/IEC 14496-12 §12.2.3) with the boxes pushcast understands. */
export interface AudioSampleEntry {
  readonly kind: 'audio';
  readonly format: string;
  readonly offset: number;
  /** The channelcount field; MP4 writers often leave it at its template value 2 whatever the stream. */
  readonly channelCount: number;
  readonly sampleSize: number;
  /** Integer part of the 16.16 samplerate field: the output rate (for HE-AAC, twice the core rate). */
  readonly sampleRate: number;
  readonly esds?: ElementaryStreamConfig;
}

/** A sample entry of a handler pushcast does not read into. */
export interface OtherSampleEntry {
  readonly kind: 'other';
  readonly format: string;
  readonly offset: number;
}

export type SampleEntry = VisualSampleEntry | AudioSampleEntry | OtherSampleEntry;

// SampleEntry (§8.5.2.2): 6 reserved bytes and data_reference_index.
const SAMPLE_ENTRY_HEADER_SIZE = 8;

function parseVisualSampleEntry(box: Box): VisualSampleEntry {
  const r = new FieldReader(box);
  r.skip(SAMPLE_ENTRY_HEADER_SIZE, 'the sample entry header');
  r.skip(16, 'pre_defined and reserved fields');
  const width = r.u16('width');
  const height = r.u16('height');
  r.skip(4 + 4 + 4 + 2 + 32 + 2 + 2, 'resolution, frame_count, compressorname and depth');
  const children = readBoxes(box.bytes.subarray(r.position), box.offset + r.position, box);
  const avcC = children.find((b) => b.type === 'avcC');
  return {
    kind: 'visual',
    format: box.type,
    offset: box.offset,
    width,
    height,
    avcConfig: avcC && parseAvcDecoderConfig(avcC),
  };
}

function parseAudioSampleEntry(box: Box): AudioSampleEntry {
  const r = new FieldReader(box);
  r.skip(SAMPLE_ENTRY_HEADER_SIZE, 'the sample entry header');
  // AudioSampleEntryV1 (§12.2.3.2) keeps the version 0 layout; QuickTime's larger layouts are not ISO.
  const entryVersion = r.u16('entry_version');
  if (entryVersion > 1) throw r.error(`unsupported audio sample entry version ${entryVersion}`);
  r.skip(6, 'reserved fields');
  const channelCount = r.u16('channelcount');
  const sampleSize = r.u16('samplesize');
  r.skip(4, 'pre_defined and reserved fields');
  const sampleRate = r.u32('samplerate') >>> 16;
  const children = readBoxes(box.bytes.subarray(r.position), box.offset + r.position, box);
  const esds = children.find((b) => b.type === 'esds');
  return {
    kind: 'audio',
    format: box.type,
    offset: box.offset,
    channelCount,
    sampleSize,
    sampleRate,
    esds: esds && parseElementaryStreamDescriptor(esds),
  };
}

/** `stsd` (§8.5.2): the sample entries, read according to the track's handler type. */
function parseSampleDescriptions(stsd: Box, handlerType: string): SampleEntry[] {
  const r = new FieldReader(stsd);
  r.fullBoxHeader(0);
  const entryCount = r.u32('entry_count');
  const entries = childrenOf(stsd, 8);
  if (entries.length !== entryCount) throw r.error(`entry_count ${entryCount} but ${entries.length} sample entries`);
  if (entryCount === 0) throw r.error('no sample entry');
  return entries.map((entry): SampleEntry => {
    if (handlerType === 'vide') return parseVisualSampleEntry(entry);
    if (handlerType === 'soun') return parseAudioSampleEntry(entry);
    return { kind: 'other', format: entry.type, offset: entry.offset };
  });
}

/** TrackExtendsBox (§8.8.3): sample defaults for the track's movie fragments. */
export interface TrackExtends {
  readonly trackId: number;
  readonly defaultSampleDescriptionIndex: number;
  readonly defaultSampleDuration: number;
  readonly defaultSampleSize: number;
  readonly defaultSampleFlags: number;
}

export function parseTrackExtends(box: Box): TrackExtends {
  const r = new FieldReader(box);
  r.fullBoxHeader(0);
  return {
    trackId: r.u32('track_ID'),
    defaultSampleDescriptionIndex: r.u32('default_sample_description_index'),
    defaultSampleDuration: r.u32('default_sample_duration'),
    defaultSampleSize: r.u32('default_sample_size'),
    defaultSampleFlags: r.u32('default_sample_flags'),
  };
}

/** One `trak` of a movie, with what packaging needs. */
export interface MovieTrack {
  /** `tkhd` track_ID. */
  readonly trackId: number;
  /** `hdlr` handler_type: `vide`, `soun`, … */
  readonly handlerType: string;
  /** `mdhd` timescale: ticks per second of the track's media time. */
  readonly timescale: number;
  /** `stsd` sample entries; fragments normally use the first. */
  readonly sampleEntries: readonly SampleEntry[];
  /** `mvex`/`trex` defaults for this track; absent in a movie that is not fragmented. */
  readonly trackExtends?: TrackExtends;
}

export interface Movie {
  /** `mvhd` timescale. */
  readonly timescale: number;
  readonly tracks: readonly MovieTrack[];
  /** Whether the movie has an `mvex` box, i.e. its media is in movie fragments (§8.8.1). */
  readonly fragmented: boolean;
}

/** `tkhd` (§8.3.2): the track_ID. */
function parseTrackId(tkhd: Box): number {
  const r = new FieldReader(tkhd);
  const { version } = r.fullBoxHeader(1);
  r.skip(version === 1 ? 16 : 8, 'creation and modification times');
  const trackId = r.u32('track_ID');
  if (trackId === 0) throw r.error('track_ID 0 is reserved');
  return trackId;
}

/** `mdhd` (§8.4.2): the media timescale. */
function parseMediaTimescale(mdhd: Box): number {
  const r = new FieldReader(mdhd);
  const { version } = r.fullBoxHeader(1);
  r.skip(version === 1 ? 16 : 8, 'creation and modification times');
  const timescale = r.u32('timescale');
  if (timescale === 0) throw r.error('timescale 0');
  r.skip(version === 1 ? 8 : 4, 'duration');
  return timescale;
}

/** `hdlr` (§8.4.3): the handler type. */
function parseHandlerType(hdlr: Box): string {
  const r = new FieldReader(hdlr);
  r.fullBoxHeader(0);
  r.skip(4, 'pre_defined');
  return r.fourCC('handler_type');
}

/** `mvhd` (§8.2.2): the movie timescale. */
function parseMovieTimescale(mvhd: Box): number {
  const r = new FieldReader(mvhd);
  const { version } = r.fullBoxHeader(1);
  r.skip(version === 1 ? 16 : 8, 'creation and modification times');
  return r.u32('timescale');
}

function parseTrack(trak: Box, trackExtends: readonly TrackExtends[]): MovieTrack {
  const trakChildren = childrenOf(trak);
  const trackId = parseTrackId(requireChild(trakChildren, 'tkhd', trak));
  const mdia = requireChild(trakChildren, 'mdia', trak);
  const mdiaChildren = childrenOf(mdia);
  const timescale = parseMediaTimescale(requireChild(mdiaChildren, 'mdhd', mdia));
  const handlerType = parseHandlerType(requireChild(mdiaChildren, 'hdlr', mdia));
  const minf = requireChild(mdiaChildren, 'minf', mdia);
  const stbl = requireChild(childrenOf(minf), 'stbl', minf);
  const stsd = requireChild(childrenOf(stbl), 'stsd', stbl);
  return {
    trackId,
    handlerType,
    timescale,
    sampleEntries: parseSampleDescriptions(stsd, handlerType),
    trackExtends: trackExtends.find((t) => t.trackId === trackId),
  };
}

/** `moov` (§8.2.1): the movie header, its tracks and, for a fragmented movie, the `mvex` defaults. */
export function parseMovie(moov: Box): Movie {
  const children = childrenOf(moov);
  const timescale = parseMovieTimescale(requireSingleChild(children, 'mvhd', moov));
  const mvex = children.find((b) => b.type === 'mvex');
  const trackExtends = mvex
    ? childrenOf(mvex)
        .filter((b) => b.type === 'trex')
        .map(parseTrackExtends)
    : [];
  const tracks = children.filter((b) => b.type === 'trak').map((trak) => parseTrack(trak, trackExtends));
  return { timescale, tracks, fragmented: mvex !== undefined };
}
