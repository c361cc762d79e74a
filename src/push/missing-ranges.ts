/**
 * What is missing of a push's body, from what arrived of its push stream: the body ranges a repair
 * fetches (see IncompletePushError for how they are derived), the stream ranges, and the body as far
 * as it is known.
 */
import { Http3FrameType, varintLength, type FieldLine } from '../wire/index.js';
import type { ByteRange, SparseBytes } from './sparse-bytes.js';

/** Where one DATA frame's payload lies: stream offsets ↔ body offsets. */
export interface DataFrameMap {
  /** Stream offset of the payload. */
  streamStart: number;
  length: number;
  /** Body offset of the payload. */
  bodyStart: number;
}

/** What the reassembler knows of a push stream after walking its frame chain (RFC 9114 §4.1, §6.2.2). */
export interface WalkedPushStream {
  readonly bytes: SparseBytes;
  readonly finalSize?: number;
  /** Next frame boundary the chain walk reads at. */
  readonly pos: number;
  readonly stage: 'stream-header' | 'frames' | 'ignored';
  readonly fields?: FieldLine[];
  readonly contentLength?: number;
  /** The DATA frames found so far, in stream order. */
  readonly data: readonly DataFrameMap[];
  /** Body bytes the DATA frames found so far account for. */
  readonly bodyKnown: number;
}

export interface MissingBody {
  /** Body ranges not received, merged and sorted; end Infinity = to the end of the body. */
  missing: ByteRange[];
  /** Body bytes received where the mapping is known (a lower bound when not `exact`). */
  receivedBytes: number;
  /** The body length, from content-length or from a fully walked frame chain. */
  totalBytes: number | undefined;
  /** False when `missing` is a superset because body offsets past a lost frame header are unknown. */
  exact: boolean;
  /** Stream ranges not received, merged and sorted. */
  missingStream: ByteRange[];
  /** The body as far as known (`totalBytes` long when known), received bytes in place, holes zero. */
  body: Uint8Array;
  /** The whole stream, holes zero, when HEADERS were lost (the body cannot be mapped) and the final size is known. */
  stream?: Uint8Array;
}

/** The ranges and partial body of an incomplete push stream. */
export function missingBody(stream: WalkedPushStream): MissingBody {
  const { bytes, finalSize, contentLength } = stream;
  const missing: ByteRange[] = [];
  let received = 0;
  const mapFrame = (d: DataFrameMap) => {
    const gaps = bytes.missing(d.streamStart, d.streamStart + d.length);
    let lost = 0;
    for (const g of gaps) {
      missing.push({ start: d.bodyStart + g.start - d.streamStart, end: d.bodyStart + g.end - d.streamStart });
      lost += g.end - g.start;
    }
    received += d.length - lost;
  };
  // DATA frames known from the chain; the last one may end past what is held (its payload still arriving).
  const frames = [...stream.data];
  for (const d of frames) mapFrame(d);
  let exact = true;
  let totalBytes = contentLength;
  // The chain is complete when walked to the final size, or when the DATA frames found add up to content-length.
  const chainDone =
    stream.stage === 'frames' &&
    ((finalSize !== undefined && stream.pos >= finalSize) ||
      (contentLength !== undefined && stream.bodyKnown >= contentLength));
  if (chainDone) {
    totalBytes ??= stream.bodyKnown;
  } else if (stream.stage === 'frames' && stream.fields && contentLength !== undefined && finalSize !== undefined) {
    // The chain stopped at a lost frame header: if the rest is exactly one DATA frame, map it.
    const rest = contentLength - stream.bodyKnown;
    const headerLength = varintLength(Http3FrameType.DATA) + (rest >= 0 ? varintLength(rest) : 0);
    if (rest >= 0 && finalSize - stream.pos === headerLength + rest) {
      const derived = { streamStart: stream.pos + headerLength, length: rest, bodyStart: stream.bodyKnown };
      frames.push(derived);
      mapFrame(derived);
    } else {
      exact = false;
    }
  } else {
    exact = false;
  }
  if (!exact) missing.push({ start: stream.bodyKnown, end: totalBytes ?? Infinity });
  const streamEnd = finalSize ?? Infinity;
  const missingStream = bytes.missing(0, finalSize ?? bytes.highest);
  if (finalSize === undefined) missingStream.push({ start: bytes.highest, end: streamEnd });
  const body = new Uint8Array(totalBytes ?? stream.bodyKnown);
  for (const d of frames) {
    const length = Math.min(d.length, body.length - d.bodyStart);
    if (length > 0) bytes.copyHeld(body, d.bodyStart, d.streamStart, d.streamStart + length);
  }
  // Only a repair without the response's HEADERS maps the body from the stream's end (repair.ts).
  let whole: Uint8Array | undefined;
  if (!exact && finalSize !== undefined && !stream.fields) {
    whole = new Uint8Array(finalSize);
    bytes.copyHeld(whole, 0, 0, finalSize);
  }
  return {
    missing: mergeRanges(missing),
    receivedBytes: received,
    totalBytes,
    exact,
    missingStream: mergeRanges(missingStream),
    body,
    stream: whole,
  };
}

/** Sorted, overlapping and touching ranges joined, empty ones left out. */
function mergeRanges(ranges: ByteRange[]): ByteRange[] {
  const sorted = ranges.filter((r) => r.end > r.start).sort((a, b) => a.start - b.start);
  const out: ByteRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.start <= last.end) last.end = Math.max(last.end, r.end);
    else out.push({ ...r });
  }
  return out;
}
