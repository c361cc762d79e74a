/** A satisfiable byte range, inclusive bounds (RFC 9110 §14.1.2). */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Reads a Range header against a representation of `size` bytes (RFC 9110 §14.2).
 * - `undefined`: no usable range; serve the whole representation (absent header, another unit, or more
 *   than one range: a server may ignore Range, and pushcast serves segments whole rather than multipart);
 * - `'unsatisfiable'`: answer 416 with `Content-Range: bytes *\/size`;
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
    // Suffix range: the last N bytes.
    const n = Number(last);
    if (n === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (last !== '' && Number(last) < start) return undefined; // invalid: ignore (RFC 9110 §14.1.1)
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}
