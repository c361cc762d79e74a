/**
 * QUIC short-header packets as the multicast profile (draft-pardue-quic-http-mcast, as nghq sends
 * them) uses them: one packet per UDP datagram, no packet protection, the session ID as Destination
 * Connection ID. Its length is not on the wire, so the receiver is configured with it.
 *
 * ```
 * 1-RTT Packet {                     RFC 9000 §17.3.1
 *   Header Form (1) = 0,  Fixed Bit (1) = 1,  Spin Bit (1),  Reserved Bits (2) = 0,
 *   Key Phase (1),  Packet Number Length (2),
 *   Destination Connection ID (0..160),  Packet Number (8..32),  Packet Payload (8..),
 * }
 * ```
 * nghq sends first bytes 0x40–0x43 (spin and key phase 0) with a 1-byte packet number.
 */
import { WireError } from './errors.js';

/** Largest datagram of the profile: fits a 1500-byte MTU with IPv6, UDP and tunnel headers. */
export const MAX_MULTICAST_DATAGRAM = 1470;

/** RFC 9000 §17.2: a connection ID is at most 20 bytes. */
export const MAX_CONNECTION_ID_LENGTH = 20;

/** Packet numbers are 62-bit (RFC 9000 §12.3); this API keeps them as numbers, exact up to 2^53−1. */
const MAX_PACKET_NUMBER = Number.MAX_SAFE_INTEGER;

export type PacketNumberLength = 1 | 2 | 3 | 4;

const HEADER_FORM = 0x80;
const FIXED_BIT = 0x40;
const SPIN_BIT = 0x20;
const RESERVED_BITS = 0x18;
const KEY_PHASE = 0x04;
const PN_LENGTH_MASK = 0x03;

/** A decoded short-header packet. `dcid` and `payload` are views into the datagram. */
export interface ShortHeaderPacket {
  readonly dcid: Uint8Array;
  /** The full packet number, recovered from its truncated form (RFC 9000 Appendix A.3). */
  readonly packetNumber: number;
  /** The packet number as it was on the wire (its `packetNumberLength` least significant bytes). */
  readonly truncatedPacketNumber: number;
  readonly packetNumberLength: PacketNumberLength;
  readonly spin: boolean;
  readonly keyPhase: boolean;
  /** Plaintext frames (this profile has no packet protection); decode with `decodeFrames`. */
  readonly payload: Uint8Array;
  /** Offset of `payload` in the datagram, to turn frame error offsets into datagram offsets. */
  readonly payloadOffset: number;
}

/** What a short header says, for {@link writeShortHeader} and {@link encodeShortHeaderPacket}. */
export interface ShortHeaderFields {
  /** The session ID, 0 to 20 bytes. */
  readonly dcid: Uint8Array;
  readonly packetNumber: number;
  /**
   * Bytes of packet number on the wire. Default: the fewest that RFC 9000 Appendix A.2 allows given
   * `largestAcked` (multicast has no acknowledgments: nghq always sends 1 byte).
   */
  readonly packetNumberLength?: PacketNumberLength;
  /** Largest packet number the receivers are known to have; without it the whole number counts. */
  readonly largestAcked?: number;
  readonly spin?: boolean;
  readonly keyPhase?: boolean;
}

export interface DecodeShortHeaderOptions {
  /** Length of the session ID (the Destination Connection ID), 0 to 20: it is not on the wire. */
  readonly dcidLength: number;
  /** Largest packet number received so far in this session, to recover the full number; none before the first. */
  readonly largestPacketNumber?: number;
}

function checkPacketNumber(value: number, what: string, at: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new WireError('invalid-argument', at, `${what} ${value} is not a non-negative safe integer`);
  }
}

/**
 * RFC 9000 §17.1 and Appendix A.2: the fewest bytes whose range is more than twice the number of
 * packets not yet acknowledged, so that receivers recover the number unambiguously.
 */
export function packetNumberLength(packetNumber: number, largestAcked?: number): PacketNumberLength {
  checkPacketNumber(packetNumber, 'packet number', 0);
  if (largestAcked !== undefined) {
    checkPacketNumber(largestAcked, 'largest acknowledged packet number', 0);
    if (largestAcked >= packetNumber) {
      throw new WireError(
        'invalid-argument',
        0,
        `packet number ${packetNumber} is not above the largest acknowledged ${largestAcked}`,
      );
    }
  }
  const unacked = largestAcked === undefined ? packetNumber + 1 : packetNumber - largestAcked;
  // min_bits = log2(unacked) + 1, num_bytes = ceil(min_bits / 8)  ⇔  2^(8·n) ≥ 2·unacked.
  for (let n = 1; n <= 4; n++) {
    if (2 ** (8 * n) >= 2 * unacked) return n as PacketNumberLength;
  }
  throw new WireError('packet-number', 0, `${unacked} unacknowledged packets do not fit a 4-byte packet number`);
}

/** The `length` least significant bytes of `packetNumber`, as sent on the wire. */
export function truncatePacketNumber(packetNumber: number, length: PacketNumberLength): number {
  checkPacketNumber(packetNumber, 'packet number', 0);
  return packetNumber % 2 ** (8 * length);
}

/**
 * RFC 9000 Appendix A.3: the packet number closest to the next expected one (`largest + 1`) whose
 * `length` least significant bytes are `truncated`. Without `largest` (the first packet a receiver
 * sees) the next expected number is taken as 0.
 */
export function decodePacketNumber(largest: number | undefined, truncated: number, length: PacketNumberLength): number {
  if (largest !== undefined) checkPacketNumber(largest, 'largest packet number', 0);
  const window = 2 ** (8 * length);
  if (!Number.isInteger(truncated) || truncated < 0 || truncated >= window) {
    throw new WireError('invalid-argument', 0, `truncated packet number ${truncated} does not fit ${length} bytes`);
  }
  const expected = largest === undefined ? 0 : largest + 1;
  const halfWindow = window / 2;
  // candidate = (expected & ~mask) | truncated, written as base + truncated so that no intermediate
  // value leaves the exact range of a double; the comparisons are the RFC's, minus `base` on both sides.
  const below = expected % window;
  const base = expected - below;
  let result: number;
  if (truncated <= below - halfWindow) {
    // candidate <= expected - pn_hwin (the RFC's other condition, candidate < 2^62 - pn_win, always
    // holds for candidates below 2^53).
    result = base + window + truncated;
  } else if (truncated > below + halfWindow && base >= window) {
    // candidate > expected + pn_hwin and candidate >= pn_win
    result = base - window + truncated;
  } else {
    result = base + truncated;
  }
  if (result > MAX_PACKET_NUMBER) throw new WireError('unsafe-integer', 0, `packet number beyond 2^53-1`);
  return result;
}

/** Bytes a short header takes: first byte, DCID and packet number. */
export function shortHeaderLength(dcidLength: number, packetNumberLength: PacketNumberLength): number {
  return 1 + dcidLength + packetNumberLength;
}

function headerPacketNumberLength(fields: ShortHeaderFields): PacketNumberLength {
  const chosen = fields.packetNumberLength;
  if (chosen === undefined) return packetNumberLength(fields.packetNumber, fields.largestAcked);
  if (chosen !== 1 && chosen !== 2 && chosen !== 3 && chosen !== 4) {
    throw new WireError('invalid-argument', 0, `packet number length ${chosen} is not 1 to 4`);
  }
  if (fields.largestAcked !== undefined && chosen < packetNumberLength(fields.packetNumber, fields.largestAcked)) {
    throw new WireError(
      'packet-number',
      0,
      `${chosen} bytes cannot carry packet number ${fields.packetNumber} past ${fields.largestAcked}`,
    );
  }
  return chosen;
}

/** Writes a short header at `out[offset]`; returns the offset of the payload. */
export function writeShortHeader(out: Uint8Array, offset: number, fields: ShortHeaderFields): number {
  const { dcid, packetNumber } = fields;
  checkPacketNumber(packetNumber, 'packet number', offset);
  if (dcid.length > MAX_CONNECTION_ID_LENGTH) {
    throw new WireError(
      'invalid-argument',
      offset + 1,
      `connection ID of ${dcid.length} bytes; at most ${MAX_CONNECTION_ID_LENGTH}`,
    );
  }
  const pnLength = headerPacketNumberLength(fields);
  const end = offset + shortHeaderLength(dcid.length, pnLength);
  if (end > out.length)
    throw new WireError('invalid-argument', offset, `no room for a ${end - offset}-byte short header`);
  out[offset] = FIXED_BIT | (fields.spin ? SPIN_BIT : 0) | (fields.keyPhase ? KEY_PHASE : 0) | (pnLength - 1);
  out.set(dcid, offset + 1);
  let truncated = truncatePacketNumber(packetNumber, pnLength);
  for (let i = end - 1; i >= end - pnLength; i--) {
    out[i] = truncated & 0xff;
    truncated = Math.floor(truncated / 256);
  }
  return end;
}

/** One datagram: a short header and `payload` (already-encoded frames, at least one byte). */
export function encodeShortHeaderPacket(
  fields: ShortHeaderFields,
  payload: Uint8Array,
  maxDatagramSize: number = MAX_MULTICAST_DATAGRAM,
): Uint8Array {
  if (payload.length === 0)
    throw new WireError('invalid-argument', 0, 'a packet carries at least one frame (RFC 9000 §12.4)');
  const pnLength = headerPacketNumberLength(fields);
  const size = shortHeaderLength(fields.dcid.length, pnLength) + payload.length;
  if (size > maxDatagramSize) {
    throw new WireError('packet-too-large', 0, `${size}-byte packet; the datagram limit is ${maxDatagramSize}`);
  }
  const out = new Uint8Array(size);
  const at = writeShortHeader(out, 0, { ...fields, packetNumberLength: pnLength });
  out.set(payload, at);
  return out;
}

/**
 * Decodes one datagram as a short-header packet of the profile. Refuses long headers, a zero fixed
 * bit (RFC 9000 §17.3.1: MUST be discarded), non-zero reserved bits (PROTOCOL_VIOLATION once packet
 * protection is removed, and this profile has none) and a packet without payload (§12.4).
 */
export function decodeShortHeaderPacket(datagram: Uint8Array, options: DecodeShortHeaderOptions): ShortHeaderPacket {
  const packetNumber = shortHeaderPacketNumber(datagram, options);
  const first = datagram[0]!;
  const pnOffset = 1 + options.dcidLength;
  const pnLength = ((first & PN_LENGTH_MASK) + 1) as PacketNumberLength;
  const payloadOffset = pnOffset + pnLength;
  let truncated = 0;
  for (let i = pnOffset; i < payloadOffset; i++) truncated = truncated * 256 + datagram[i]!;
  return {
    dcid: datagram.subarray(1, pnOffset),
    packetNumber,
    truncatedPacketNumber: truncated,
    packetNumberLength: pnLength,
    spin: (first & SPIN_BIT) !== 0,
    keyPhase: (first & KEY_PHASE) !== 0,
    payload: datagram.subarray(payloadOffset),
    payloadOffset,
  };
}

/**
 * The checks of {@link decodeShortHeaderPacket} (it throws the same errors) and the full packet number
 * only, with nothing allocated: for a receiver that reads every datagram. The DCID is
 * `datagram[1 .. 1 + dcidLength)`, the payload starts at {@link shortHeaderLength}.
 */
export function shortHeaderPacketNumber(datagram: Uint8Array, options: DecodeShortHeaderOptions): number {
  const { dcidLength } = options;
  if (!Number.isInteger(dcidLength) || dcidLength < 0 || dcidLength > MAX_CONNECTION_ID_LENGTH) {
    throw new WireError(
      'invalid-argument',
      0,
      `connection ID length ${dcidLength} is not 0 to ${MAX_CONNECTION_ID_LENGTH}`,
    );
  }
  const first = datagram[0];
  if (first === undefined) throw new WireError('truncated', 0, 'empty datagram');
  if (first & HEADER_FORM)
    throw new WireError(
      'packet-header',
      0,
      `long header packet (first byte 0x${first.toString(16)}): not in the multicast profile`,
    );
  if (!(first & FIXED_BIT))
    throw new WireError('packet-header', 0, `fixed bit is 0 (first byte 0x${first.toString(16)})`);
  if (first & RESERVED_BITS)
    throw new WireError('packet-header', 0, `reserved bits set (first byte 0x${first.toString(16)})`);
  const pnLength = ((first & PN_LENGTH_MASK) + 1) as PacketNumberLength;
  const pnOffset = 1 + dcidLength;
  const payloadOffset = pnOffset + pnLength;
  if (datagram.length < payloadOffset) {
    throw new WireError(
      'truncated',
      Math.min(pnOffset, datagram.length),
      `${datagram.length}-byte datagram; the header alone takes ${payloadOffset}`,
    );
  }
  if (datagram.length === payloadOffset)
    throw new WireError('empty-payload', payloadOffset, 'packet without frames (RFC 9000 §12.4)');
  let truncated = 0;
  for (let i = pnOffset; i < payloadOffset; i++) truncated = truncated * 256 + datagram[i]!;
  return decodePacketNumber(options.largestPacketNumber, truncated, pnLength);
}
