/** A satisfiable byte range, inclusive bounds (RFC 9110 §14.1.2). */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Reads a Range header against a representation of `size` bytes (RFC 9110 §14.2).
 * - `undefined`: no usable range; serve the whole representation (absent header, another unit, or more
 *   than one range: a server may ignore Range, and pushcast serves segments whole rather than multipart;
 *   or a suffix range of an empty representation);
 * - `'unsatisfiable'`: answer 416 with `Content-Range: bytes *\/size` (§15.5.17): a first position at or
 *   past the end (so any int-range of an empty representation), or a suffix of length 0;
 * - a ByteRange: answer 206.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  // Hostile or absurd headers are not parsed at all.
  if (header.length > 200) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) return undefined;
  const [, first, last] = m;
  if (first === '' && last === '') return undefined;
  if (first === '') {
    // Suffix range: the last N bytes; satisfiable whenever N > 0 (§14.1.2), even against an empty
    // representation, whose 0 bytes no Content-Range can name (§14.4): that one is answered whole (200).
    const n = Number(last);
    if (n === 0) return 'unsatisfiable';
    if (size === 0) return undefined;
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (last !== '' && Number(last) < start) return undefined; // invalid: ignore (RFC 9110 §14.1.1)
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}
