/**
 * Every decoder in `src/wire` throws a {@link WireError} for input it refuses, and nothing else: a
 * receiver can catch one type, map its code to the protocol's error (which the comments below name),
 * and drop the datagram or close the stream.
 */

/** Why a codec refused its input (or, for encoders, its arguments). */
export type WireErrorCode =
  /** The input ends inside a field. QUIC FRAME_ENCODING_ERROR; HTTP/3 H3_FRAME_ERROR; QPACK_DECOMPRESSION_FAILED. */
  | 'truncated'
  /** A value beyond 2^62−1, the largest QUIC variable-length integer (RFC 9000 §16). */
  | 'varint-overflow'
  /** A value the wire allows but a JS number cannot hold exactly (above 2^53−1) where this API uses numbers. */
  | 'unsafe-integer'
  /** An RFC 7541 §5.1 prefix integer longer than 62 bits or beyond 2^53−1 (always out of range here). */
  | 'integer-overflow'
  /** Not a short-header packet of the multicast profile (RFC 9000 §17.3.1). */
  | 'packet-header'
  /** A packet whose payload has no frame (RFC 9000 §12.4: PROTOCOL_VIOLATION). */
  | 'empty-payload'
  /** A packet number that cannot be encoded or recovered (RFC 9000 §17.1). */
  | 'packet-number'
  /** A datagram longer than the configured maximum. */
  | 'packet-too-large'
  /** A frame whose fields contradict each other or its length. QUIC FRAME_ENCODING_ERROR; HTTP/3 H3_FRAME_ERROR. */
  | 'frame-encoding'
  /** A QUIC frame type outside the multicast profile (PADDING, PING, RESET_STREAM, STREAM). */
  | 'unknown-frame-type'
  /** An HTTP/3 frame type reserved from HTTP/2, which must not be sent (RFC 9114 §7.2.8: H3_FRAME_UNEXPECTED). */
  | 'frame-unexpected'
  /** An HTTP/3 frame payload beyond the reader's bound (H3_EXCESSIVE_LOAD). */
  | 'frame-too-large'
  /** A SETTINGS frame with a duplicate or HTTP/2-reserved identifier (RFC 9114 §7.2.4: H3_SETTINGS_ERROR). */
  | 'settings'
  /** Invalid Huffman code: EOS in the string, or padding that is too long or not all ones (RFC 7541 §5.2). */
  | 'huffman'
  /** A reference to the QPACK dynamic table, whose capacity is 0 in this profile (QPACK_DECOMPRESSION_FAILED). */
  | 'qpack-dynamic-reference'
  /** A static table index beyond the 99 entries of RFC 9204 Appendix A (QPACK_DECOMPRESSION_FAILED). */
  | 'qpack-static-index'
  /** Any other malformed QPACK field section (QPACK_DECOMPRESSION_FAILED). */
  | 'qpack-decompression'
  /** A decoded field section larger than the decoder's bound (RFC 9114 §4.2.2 size: name + value + 32 per field). */
  | 'field-section-too-large'
  /** More field lines than the decoder's bound. */
  | 'too-many-fields'
  /**
   * FEC symbols of one block that contradict each other, or too few of them to recover it (src/wire/fec.ts):
   * the receiver gives the block up and repairs by unicast what it lacks.
   */
  | 'fec-block'
  /** An encoder was given something the wire cannot carry (a name with a character above 0xFF, a bad length…). */
  | 'invalid-argument';

/**
 * Malformed input to a decoder, or an impossible request to an encoder.
 *
 * `offset` is the byte offset, in the buffer handed to the function that threw, where the offending
 * field starts (for encoders: where it would have been written), so a hex dump of the datagram or
 * stream shows the bytes at fault.
 */
export class WireError extends Error {
  override readonly name = 'WireError';

  constructor(
    readonly code: WireErrorCode,
    readonly offset: number,
    readonly detail: string,
  ) {
    super(`${code} at byte ${offset}: ${detail}`);
  }
}
