/** The bytes of a CMAF header and of CMAF chunks (ISO/IEC 23000-19 §7.3). */
import { writeFileTypeBox, writeMediaDataHeader, writeMovieFragment, type OutputSample } from '../bmff/writer.js';

/**
 * `ftyp` of a CMAF header: `cmfc` declares a CMAF track (ISO/IEC 23000-19 §7.3); `iso6` the ISO BMFF
 * edition whose boxes the fragments use (tfdt and trun version 1); `dash` delivery as MPEG-DASH.
 */
const CMAF_HEADER_FILE_TYPE = writeFileTypeBox('ftyp', 'cmfc', 0, ['iso6', 'cmfc', 'dash']);

/**
 * `styp` opening each CMAF segment (ISO/IEC 23000-19 §7.3): `cmfs` a CMAF segment; `msdh` a DASH media
 * segment (ISO/IEC 23009-1 §6.3.4.2); `msix` the indexed-segment brand (§6.3.4.3) that DASH packagers
 * customarily declare with it, although a segment published chunk by chunk carries no `sidx`.
 */
const CMAF_SEGMENT_TYPE = writeFileTypeBox('styp', 'msdh', 0, ['msdh', 'msix', 'cmfs']);

/** The CMAF header (init segment): a CMAF `ftyp` followed by the encoder's `moov`, byte for byte. */
export function writeCmafHeader(moov: Uint8Array): Uint8Array {
  const header = new Uint8Array(CMAF_HEADER_FILE_TYPE.length + moov.length);
  header.set(CMAF_HEADER_FILE_TYPE);
  header.set(moov, CMAF_HEADER_FILE_TYPE.length);
  return header;
}

export interface ChunkSample extends OutputSample {
  readonly data: Uint8Array;
}

export interface CmafChunkFields {
  readonly sequenceNumber: number;
  readonly trackId: number;
  readonly baseMediaDecodeTime: number;
  readonly samples: readonly ChunkSample[];
  /** The chunk opens a CMAF segment, so it starts with the segment's `styp`. */
  readonly startsSegment: boolean;
}

/** A CMAF chunk (ISO/IEC 23000-19 §7.3): [`styp`] `moof` `mdat`, the `mdat` holding exactly the `moof`'s samples. */
export function writeCmafChunk(fields: CmafChunkFields): Uint8Array {
  const payloadSize = fields.samples.reduce((sum, s) => sum + s.data.length, 0);
  const mdatHeader = writeMediaDataHeader(payloadSize);
  const moof = writeMovieFragment({ ...fields, mediaDataHeaderSize: mdatHeader.length });
  const segmentType = fields.startsSegment ? CMAF_SEGMENT_TYPE : new Uint8Array(0);

  const chunk = new Uint8Array(segmentType.length + moof.length + mdatHeader.length + payloadSize);
  let at = 0;
  for (const part of [segmentType, moof, mdatHeader, ...fields.samples.map((s) => s.data)]) {
    chunk.set(part, at);
    at += part.length;
  }
  return chunk;
}
