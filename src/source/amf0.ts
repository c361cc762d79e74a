/**
 * AMF0 (Adobe Action Message Format 0), the encoding of RTMP commands: just what a publishing encoder's
 * commands (`connect`, `createStream`, `publish`, …) and the server's answers use.
 */
export type Amf0Value = number | boolean | string | null | undefined | Amf0Object | Amf0Value[];
export interface Amf0Object {
  [key: string]: Amf0Value;
}

export class Amf0Error extends Error {
  override name = 'Amf0Error';
}

/** Nesting accepted in a command; encoders send two levels at most. */
const MAX_DEPTH = 16;

/** Decodes every value of `bytes` (a command message's payload). */
export function decodeAmf0(bytes: Uint8Array): Amf0Value[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const need = (n: number) => {
    if (at + n > bytes.length) throw new Amf0Error('AMF0 value cut short');
  };
  const u8 = () => {
    need(1);
    return bytes[at++]!;
  };
  const u16 = () => {
    need(2);
    const v = view.getUint16(at);
    at += 2;
    return v;
  };
  const u32 = () => {
    need(4);
    const v = view.getUint32(at);
    at += 4;
    return v;
  };
  const text = (length: number) => {
    need(length);
    const s = new TextDecoder().decode(bytes.subarray(at, at + length));
    at += length;
    return s;
  };
  const properties = (depth: number, into: Amf0Object) => {
    for (;;) {
      const key = text(u16());
      if (key === '' && bytes[at] === 9) {
        at++;
        return into;
      }
      into[key] = value(depth + 1);
    }
  };
  const value = (depth: number): Amf0Value => {
    if (depth > MAX_DEPTH) throw new Amf0Error('AMF0 nesting too deep');
    const marker = u8();
    switch (marker) {
      case 0: {
        need(8);
        const v = view.getFloat64(at);
        at += 8;
        return v;
      }
      case 1:
        return u8() !== 0;
      case 2:
        return text(u16());
      case 3:
        return properties(depth, {});
      case 5:
        return null;
      case 6:
        return undefined;
      case 8:
        u32(); // the count is a hint; the end marker ends it
        return properties(depth, {});
      case 10: {
        const count = u32();
        if (count > bytes.length - at) throw new Amf0Error('AMF0 strict array longer than its message');
        return Array.from({ length: count }, () => value(depth + 1));
      }
      case 11:
        need(10);
        at += 8;
        at += 2;
        return null;
      case 12:
        return text(u32());
      default:
        throw new Amf0Error(`AMF0 marker ${marker} not supported`);
    }
  };
  const values: Amf0Value[] = [];
  while (at < bytes.length) values.push(value(0));
  return values;
}

/** Encodes `values` one after another (numbers, strings, booleans, null, objects). */
export function encodeAmf0(...values: Amf0Value[]): Uint8Array {
  const out: number[] = [];
  const str = (s: string) => {
    const b = new TextEncoder().encode(s);
    out.push(b.length >> 8, b.length & 0xff, ...b);
  };
  const value = (v: Amf0Value) => {
    if (typeof v === 'number') {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setFloat64(0, v);
      out.push(0, ...b);
    } else if (typeof v === 'boolean') out.push(1, v ? 1 : 0);
    else if (typeof v === 'string') {
      out.push(2);
      str(v);
    } else if (v === null) out.push(5);
    else if (v === undefined) out.push(6);
    else if (Array.isArray(v)) {
      out.push(10, (v.length >>> 24) & 0xff, (v.length >>> 16) & 0xff, (v.length >>> 8) & 0xff, v.length & 0xff);
      for (const item of v) value(item);
    } else {
      out.push(3);
      for (const [k, item] of Object.entries(v)) {
        str(k);
        value(item);
      }
      out.push(0, 0, 9);
    }
  };
  for (const v of values) value(v);
  return Uint8Array.from(out);
}
