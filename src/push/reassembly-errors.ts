/**
 * How a multicast push fails: incomplete (timeout, reset, cancel, a bound), with the exact body ranges
 * still missing for a repair; refused by the digest or a signature; or malformed HTTP/3.
 */
import type { FieldLine } from '../wire/index.js';
import type { ByteRange } from './sparse-bytes.js';

export type IncompleteReason = 'timeout' | 'reset' | 'cancelled' | 'limit';

/**
 * A push that did not complete. `missing` lists the body byte ranges (start inclusive, end exclusive,
 * as `Range: bytes=start-(end-1)` would request them) not received.
 *
 * How body ranges are known: each DATA frame header maps its payload's stream offsets to body offsets.
 * Where a frame header itself was lost, the chain of frames stops there; then
 * - if HEADERS declared `content-length` and the final size is known, and the rest of the stream is
 *   exactly one DATA frame (final size − break = remaining body + that frame's header length), the
 *   mapping is derived and `exact` stays true;
 * - otherwise the body from the last known body offset to the end is reported missing, as one range
 *   `{ start, end: totalBytes ?? Infinity }` (Infinity: "to the end", `Range: bytes=start-`), and
 *   `exact` is false: the range is a superset of what is missing. `missingStream` then holds the exact
 *   missing stream ranges (stream offsets, not body offsets) when the stream is known.
 * A push whose stream was never identified (its stream header lost) is paired with the only
 * unidentified push stream when exactly one promise and one such stream are waiting; if not,
 * `missing` is `[{ start: 0, end: totalBytes ?? Infinity }]` with `exact` false.
 */
export class IncompletePushError extends Error {
  override name = 'IncompletePushError';
  constructor(
    message: string,
    readonly reason: IncompleteReason,
    readonly missing: ByteRange[],
    /** Body bytes received (where the mapping is known: a lower bound when `exact` is false). */
    readonly receivedBytes: number,
    /** The body length, from content-length or from a fully walked frame chain. */
    readonly totalBytes: number | undefined,
    /** False when `missing` is a superset because body offsets could not be mapped (see the class comment). */
    readonly exact: boolean,
    /** Missing stream byte ranges of the push stream (undefined when the stream is unknown). */
    readonly missingStream: ByteRange[] | undefined,
    /** What did arrive, for a repair that fetches only `missing`; unverified until the repaired body matches the signed digest. */
    readonly partial: PartialPush = {},
  ) {
    super(message);
  }
}

/** The unverified parts of an incomplete push. */
export interface PartialPush {
  /** The promised request's field section, pseudo-fields included (verified when a verifier is set). */
  requestFields?: readonly FieldLine[];
  /** The response's field section, if its HEADERS arrived (not verified). */
  responseFields?: readonly FieldLine[];
  /** The body as far as known (`totalBytes` long when known), received bytes in place, holes zero. */
  body?: Uint8Array;
  /**
   * The whole push stream (its final size long), received bytes in place, holes zero: given when the
   * response's HEADERS were lost (body offsets unknown) but the stream's end is known, so that a repair
   * told the body's length by the origin (RFC 9530 `Repr-Digest` beside it) can map the body itself.
   */
  stream?: Uint8Array;
}

export type PushLimit = 'concurrent-pushes' | 'bytes-per-push' | 'total-bytes' | 'age';

/** A push failed because it went past a bound; an IncompletePushError, so it can be repaired by ranges. */
export class PushLimitError extends IncompletePushError {
  override name = 'PushLimitError';
  constructor(
    readonly limit: PushLimit,
    detail: string,
    base: IncompletePushError,
  ) {
    super(
      `push past the ${limit} bound: ${detail}`,
      'limit',
      base.missing,
      base.receivedBytes,
      base.totalBytes,
      base.exact,
      base.missingStream,
      base.partial,
    );
  }
}

/** The digest did not match, was missing while required, or the verifier refused a signature. */
export class VerificationError extends Error {
  override name = 'VerificationError';
  constructor(
    message: string,
    readonly check: 'digest' | 'signature',
  ) {
    super(message);
  }
}

/** The push stream broke HTTP/3 rules (a frame not allowed there, bad fields, a response Fetch refuses). */
export class MalformedPushError extends Error {
  override name = 'MalformedPushError';
}
