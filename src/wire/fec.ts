/**
 * Forward error correction for a multicast push session: a systematic Reed–Solomon erasure code over
 * GF(2^8) (as RFC 5510 and RFC 6865 use one for FEC; the generator matrix here is a Cauchy one, so the
 * symbols are not those of RFC 5510's Vandermonde-based code), and the repair packet that carries one of
 * its repair symbols beside the session's own packets (docs/multicast.md, "Forward error correction").
 *
 * - A block is k consecutive packets of the session (by packet number). Its source symbols are the
 *   datagrams as they were sent, each prefixed with its length (2 bytes, big-endian) and zero-padded to
 *   the block's longest (FECFRAME's ADU information, RFC 6363 and RFC 6865, without the flow ID byte: one
 *   source flow), so datagrams of any size up to 65 535 bytes share one symbol length.
 * - m repair symbols per block: repair i is Σ_j C[i][j] · source_j over GF(2^8) (polynomial 0x11d),
 *   where C is a Cauchy matrix (C[i][j] = 1 / (x_i + y_j), y_j = j, x_i = 255 − i) with each column
 *   scaled so that row 0 is all ones: repair 0 is the XOR of the sources. Every square submatrix of a
 *   Cauchy matrix is invertible and scaling columns keeps that, so any k of the k + m symbols give
 *   back the block (an MDS code). k + m ≤ 255 keeps the x_i and y_j distinct.
 * - The source packets go out unchanged on the session's port: receivers that know nothing of this
 *   (nghq) see the session they always saw. Repair packets go to another port (source and repair flows
 *   apart, as FECFRAME, RFC 6363, has them):
 *
 * ```
 * Repair Packet {
 *   Type (8) = 0x01,            bits 0x80 and 0x40 clear: never a QUIC packet (RFC 9000 §17.3.1 fixes 0x40 to 1
 *                               in a short header; §17.2 sets 0x80 in a long one)
 *   Session ID (0..160),        the session's Destination Connection ID, its length not on the wire
 *   First Packet Number (i),    of the block's first source packet
 *   Source Count k (8),         1..254: source packets first .. first + k − 1
 *   Repair Count m (8),         1..254, k + m ≤ 255
 *   Repair Index (8),           0..m − 1
 *   Repair Symbol (..),         the rest of the datagram: 2 + the longest source datagram of the block
 * }
 * ```
 *
 * Pure, isomorphic; the decoder and `recoverBlock` throw only WireError.
 */
import { Cursor } from './bytes.js';
import { WireError } from './errors.js';
import { varintLength, writeVarint } from './varint.js';

/** The first byte of every repair packet. */
export const REPAIR_PACKET_TYPE = 0x01;
/** k + m of a block: the elements of GF(2^8) the Cauchy matrix draws its distinct x_i and y_j from. */
export const MAX_FEC_BLOCK = 255;
/** The longest source datagram a symbol carries (its 2-byte length prefix). */
export const MAX_FEC_SOURCE = 65_535;
const LENGTH_PREFIX = 2;
const MAX_SESSION_ID = 20;

// ---------------------------------------------------------------------------------------------------
// GF(2^8), polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11d), generator 2

const EXP = new Uint8Array(512);
const LOG = new Uint8Array(256);
/** MUL[a << 8 | b] = a · b: one row of 256 per factor, so a multiply-add is a table lookup per byte. */
const MUL = new Uint8Array(65_536);
{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = x;
    LOG[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= 0x11d;
  }
  for (let i = 255; i < 512; i++) EXP[i] = EXP[i - 255]!;
  for (let a = 1; a < 256; a++) for (let b = 1; b < 256; b++) MUL[(a << 8) | b] = EXP[LOG[a]! + LOG[b]!]!;
}

function gfMul(a: number, b: number): number {
  return MUL[(a << 8) | b]!;
}

function gfInv(a: number): number {
  return EXP[255 - LOG[a]!]!;
}

/** The coefficient of source j in repair i (see the file comment). */
export function repairCoefficient(i: number, j: number): number {
  const x = 255 - i;
  // C[i][j] / C[0][j] = (x_0 + y_j) / (x_i + y_j); + is XOR in GF(2^8).
  return gfMul(255 ^ j, gfInv(x ^ j));
}

/** dst[at + t] ^= c · src[t] for every t. */
function mulAdd(dst: Uint8Array, at: number, src: Uint8Array, c: number): void {
  const n = src.length;
  if (c === 1) {
    for (let t = 0; t < n; t++) dst[at + t]! ^= src[t]!;
    return;
  }
  if (c === 0) return;
  const row = c << 8;
  for (let t = 0; t < n; t++) dst[at + t]! ^= MUL[row | src[t]!]!;
}

/** Adds c · (length prefix ‖ datagram) to a symbol (the zero padding adds nothing). */
function mulAddSource(dst: Uint8Array, datagram: Uint8Array, c: number): void {
  const n = datagram.length;
  dst[0]! ^= gfMul(c, n >> 8);
  dst[1]! ^= gfMul(c, n & 0xff);
  mulAdd(dst, LENGTH_PREFIX, datagram, c);
}

function checkCounts(k: number, m: number, at = 0): void {
  if (!Number.isInteger(k) || k < 1)
    throw new WireError('invalid-argument', at, `a block has 1 or more sources, not ${k}`);
  if (!Number.isInteger(m) || m < 1)
    throw new WireError('invalid-argument', at, `a block has 1 or more repairs, not ${m}`);
  if (k + m > MAX_FEC_BLOCK)
    throw new WireError('invalid-argument', at, `k + m = ${k + m}: at most ${MAX_FEC_BLOCK} symbols per block`);
}

/** Bytes of one symbol of a block whose longest source datagram is `longest` bytes. */
export function symbolLength(longest: number): number {
  return LENGTH_PREFIX + longest;
}

/**
 * The m repair symbols of a block of source datagrams (in packet-number order), each 2 + the longest
 * datagram's length. Throws WireError (invalid-argument) for an empty block, k + m > 255 or a datagram
 * longer than 65 535 bytes.
 */
export function encodeRepair(sources: readonly Uint8Array[], m: number): Uint8Array[] {
  checkCounts(sources.length, m);
  let longest = 0;
  for (const s of sources) {
    if (s.length > MAX_FEC_SOURCE)
      throw new WireError(
        'invalid-argument',
        0,
        `a ${s.length}-byte datagram: symbols carry at most ${MAX_FEC_SOURCE}`,
      );
    longest = Math.max(longest, s.length);
  }
  const repairs = Array.from({ length: m }, () => new Uint8Array(symbolLength(longest)));
  for (let j = 0; j < sources.length; j++) {
    const source = sources[j]!;
    for (let i = 0; i < m; i++) mulAddSource(repairs[i]!, source, repairCoefficient(i, j));
  }
  return repairs;
}

/** The inverse of a square matrix over GF(2^8) (Gauss–Jordan); undefined if it is singular. */
function invert(matrix: number[][]): number[][] | undefined {
  const n = matrix.length;
  const a = matrix.map((row, r) => [...row, ...Array.from({ length: n }, (_, c) => (c === r ? 1 : 0))]);
  for (let col = 0; col < n; col++) {
    const pivot = a.findIndex((row, r) => r >= col && row[col] !== 0);
    if (pivot < 0) return undefined;
    [a[col], a[pivot]] = [a[pivot]!, a[col]!];
    const row = a[col]!;
    const scale = gfInv(row[col]!);
    for (let c = 0; c < 2 * n; c++) row[c] = gfMul(row[c]!, scale);
    for (let r = 0; r < n; r++) {
      const other = a[r]!;
      const f = other[col]!;
      if (r === col || f === 0) continue;
      for (let c = 0; c < 2 * n; c++) other[c]! ^= gfMul(f, row[c]!);
    }
  }
  return a.map((row) => row.slice(n));
}

/**
 * The k source datagrams of a block from any k of its k + m symbols: `sources[j]` is the j-th source
 * datagram or undefined if it was lost, `repairs[i]` the i-th repair symbol or undefined. Returns every
 * source datagram: the given ones as they are, the lost ones recovered. Throws WireError: `fec-block`
 * when fewer than k symbols are given or the symbols contradict each other (lengths that differ, a
 * recovered symbol whose length prefix or padding is impossible: a damaged or forged repair packet);
 * `invalid-argument` for counts out of range.
 */
export function recoverBlock(
  sources: readonly (Uint8Array | undefined)[],
  repairs: readonly (Uint8Array | undefined)[],
): Uint8Array[] {
  const k = sources.length;
  const m = repairs.length;
  checkCounts(k, m);
  const missing: number[] = [];
  for (let j = 0; j < k; j++) if (sources[j] === undefined) missing.push(j);
  if (missing.length === 0) return sources as Uint8Array[];
  const available: number[] = [];
  let length: number | undefined;
  for (let i = 0; i < m; i++) {
    const r = repairs[i];
    if (r === undefined) continue;
    if (length !== undefined && r.length !== length)
      throw new WireError('fec-block', 0, `repair symbols of ${length} and ${r.length} bytes in one block`);
    length = r.length;
    available.push(i);
  }
  if (available.length < missing.length)
    throw new WireError(
      'fec-block',
      0,
      `${missing.length} source packets lost and ${available.length} repair symbols: ${k} symbols are needed of ${k + m}`,
    );
  const L = length!;
  if (L < LENGTH_PREFIX) throw new WireError('fec-block', 0, `a ${L}-byte repair symbol`);
  for (const s of sources)
    if (s !== undefined && symbolLength(s.length) > L)
      throw new WireError('fec-block', 0, `a ${s.length}-byte source packet does not fit ${L}-byte symbols`);

  // Syndromes: each chosen repair symbol minus the known sources' part leaves Σ C[i][lost] · lost.
  const rows = available.slice(0, missing.length);
  const syndromes = rows.map((i) => {
    const s = repairs[i]!.slice();
    for (let j = 0; j < k; j++) {
      const source = sources[j];
      if (source !== undefined) mulAddSource(s, source, repairCoefficient(i, j));
    }
    return s;
  });
  const inverse = invert(rows.map((i) => missing.map((j) => repairCoefficient(i, j))));
  // Unreachable for this code (MDS); kept so that no bug can hand on garbage silently.
  if (!inverse) throw new WireError('fec-block', 0, 'a singular system: the code is not MDS');
  const out = sources.slice() as Uint8Array[];
  for (let b = 0; b < missing.length; b++) {
    const symbol = new Uint8Array(L);
    for (let a = 0; a < rows.length; a++) mulAdd(symbol, 0, syndromes[a]!, inverse[b]![a]!);
    const n = (symbol[0]! << 8) | symbol[1]!;
    if (symbolLength(n) > L)
      throw new WireError(
        'fec-block',
        0,
        `a recovered packet of ${n} bytes in ${L}-byte symbols: the symbols disagree`,
      );
    for (let t = LENGTH_PREFIX + n; t < L; t++)
      if (symbol[t] !== 0)
        throw new WireError('fec-block', 0, 'a recovered packet whose padding is not zero: the symbols disagree');
    out[missing[b]!] = symbol.subarray(LENGTH_PREFIX, LENGTH_PREFIX + n);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Repair packets

export interface RepairPacket {
  sessionId: Uint8Array;
  /** Packet number of the block's first source packet. */
  firstPacketNumber: number;
  /** Source packets in the block: firstPacketNumber .. firstPacketNumber + k − 1. */
  k: number;
  /** Repair symbols of the block. */
  m: number;
  /** Which repair symbol this is, 0..m − 1. */
  index: number;
  symbol: Uint8Array;
}

/** Whether a datagram is a repair packet rather than a packet of the session (its first byte's 0x80 and 0x40 clear). */
export function isRepairPacket(datagram: Uint8Array): boolean {
  return datagram.length > 0 && (datagram[0]! & 0xc0) === 0;
}

/**
 * The most a repair packet adds to the longest source datagram of its block: the type, the session ID,
 * an 8-byte packet number, the three counts and the symbol's length prefix. A sender whose source
 * datagrams are at most its limit minus this keeps its repair packets within the limit too.
 */
export function repairPacketOverhead(sessionIdLength: number): number {
  return 1 + sessionIdLength + 8 + 3 + LENGTH_PREFIX;
}

export function encodeRepairPacket(p: RepairPacket): Uint8Array {
  if (p.sessionId.length > MAX_SESSION_ID)
    throw new WireError(
      'invalid-argument',
      1,
      `a session ID of ${p.sessionId.length} bytes; at most ${MAX_SESSION_ID}`,
    );
  if (!Number.isSafeInteger(p.firstPacketNumber) || p.firstPacketNumber < 0)
    throw new WireError('invalid-argument', 1 + p.sessionId.length, `packet number ${p.firstPacketNumber}`);
  checkCounts(p.k, p.m);
  if (!Number.isInteger(p.index) || p.index < 0 || p.index >= p.m)
    throw new WireError('invalid-argument', 0, `repair index ${p.index} of ${p.m}`);
  if (p.symbol.length < LENGTH_PREFIX || p.symbol.length > symbolLength(MAX_FEC_SOURCE))
    throw new WireError('invalid-argument', 0, `a ${p.symbol.length}-byte repair symbol`);
  const sid = p.sessionId.length;
  const out = new Uint8Array(1 + sid + varintLength(p.firstPacketNumber) + 3 + p.symbol.length);
  out[0] = REPAIR_PACKET_TYPE;
  out.set(p.sessionId, 1);
  let at = writeVarint(out, 1 + sid, p.firstPacketNumber);
  out[at++] = p.k;
  out[at++] = p.m;
  out[at++] = p.index;
  out.set(p.symbol, at);
  return out;
}

/**
 * Decodes a repair packet of a session whose ID is `sessionIdLength` bytes (it is not on the wire).
 * `sessionId` and `symbol` are views into the datagram. Throws WireError.
 */
export function decodeRepairPacket(datagram: Uint8Array, sessionIdLength: number): RepairPacket {
  if (!Number.isInteger(sessionIdLength) || sessionIdLength < 0 || sessionIdLength > MAX_SESSION_ID)
    throw new WireError('invalid-argument', 0, `session ID length ${sessionIdLength} is not 0 to ${MAX_SESSION_ID}`);
  const cursor = new Cursor(datagram);
  const type = cursor.u8('packet type');
  if (type !== REPAIR_PACKET_TYPE)
    throw new WireError('packet-header', 0, `first byte 0x${type.toString(16)} is not a repair packet (0x01)`);
  const sessionId = cursor.take(sessionIdLength, 'session ID');
  const firstPacketNumber = cursor.varint('first packet number');
  const countsAt = cursor.pos;
  const k = cursor.u8('source count');
  const m = cursor.u8('repair count');
  const index = cursor.u8('repair index');
  if (k < 1 || m < 1 || k + m > MAX_FEC_BLOCK)
    throw new WireError(
      'frame-encoding',
      countsAt,
      `k = ${k}, m = ${m}: 1 or more each, at most ${MAX_FEC_BLOCK} in all`,
    );
  if (index >= m) throw new WireError('frame-encoding', countsAt + 2, `repair index ${index} of ${m}`);
  if (!Number.isSafeInteger(firstPacketNumber + k))
    throw new WireError('unsafe-integer', 1 + sessionIdLength, 'the block ends beyond 2^53 − 1');
  if (cursor.remaining < LENGTH_PREFIX)
    throw new WireError('truncated', cursor.pos, `a repair symbol of ${cursor.remaining} bytes (at least 2)`);
  if (cursor.remaining > symbolLength(MAX_FEC_SOURCE))
    throw new WireError('packet-too-large', cursor.pos, `a repair symbol of ${cursor.remaining} bytes`);
  const symbol = cursor.take(cursor.remaining, 'repair symbol');
  return { sessionId, firstPacketNumber, k, m, index, symbol };
}
