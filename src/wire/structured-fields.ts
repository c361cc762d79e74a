/**
 * The part of HTTP Structured Field Values (RFC 8941) that HTTP Message Signatures (RFC 9421) and
 * WebTransport's protocol negotiation need: lists and dictionaries whose members are items or inner
 * lists, with parameters; bare items of type integer, string, token, byte sequence and boolean
 * (decimals are refused: no signature field uses them).
 * Parsing follows RFC 8941 §4.2 step by step; serialisation follows §4.1, so that a signature base
 * built from a parsed `Signature-Input` is byte for byte the one the signer built.
 */
import { toBase64 } from './encoding.js';
import { WireError } from './errors.js';

export type BareItem = number | string | boolean | Uint8Array | SfToken;
export type Parameters = Map<string, BareItem>;
export interface SfItem {
  value: BareItem;
  params: Parameters;
}
export interface SfInnerList {
  items: SfItem[];
  params: Parameters;
}
export type DictionaryMember = SfItem | SfInnerList;

/** A token (RFC 8941 §3.3.4), kept apart from strings because it serialises without quotes. */
export class SfToken {
  constructor(readonly value: string) {}
}

/** Fields longer than this are refused before parsing (a signature field is a few hundred bytes). */
export const MAX_STRUCTURED_FIELD = 8192;

export function isInnerList(member: DictionaryMember): member is SfInnerList {
  return 'items' in member;
}

class Parser {
  pos = 0;
  constructor(readonly input: string) {}

  fail(detail: string): never {
    throw new WireError('frame-encoding', this.pos, `structured field: ${detail}`);
  }
  peek(): string {
    return this.input[this.pos] ?? '';
  }
  skipSp(): void {
    while (this.peek() === ' ') this.pos++;
  }
  skipOws(): void {
    while (this.peek() === ' ' || this.peek() === '\t') this.pos++;
  }

  /** §4.2.3.3 */
  key(): string {
    const first = this.peek();
    if (!/^[a-z*]$/.test(first)) this.fail(`a key starts with a-z or *, not ${JSON.stringify(first)}`);
    const start = this.pos;
    while (/^[a-z0-9_\-.*]$/.test(this.peek())) this.pos++;
    return this.input.slice(start, this.pos);
  }

  /** §4.2.3.2 */
  params(): Parameters {
    const params: Parameters = new Map();
    while (this.peek() === ';') {
      this.pos++;
      this.skipSp();
      const key = this.key();
      let value: BareItem = true;
      if (this.peek() === '=') {
        this.pos++;
        value = this.bareItem();
      }
      params.set(key, value);
    }
    return params;
  }

  /** §4.2.3.1 */
  bareItem(): BareItem {
    const c = this.peek();
    if (c === '-' || (c >= '0' && c <= '9')) return this.integer();
    if (c === '"') return this.string();
    if (c === ':') return this.bytes();
    if (c === '?') return this.boolean();
    if (/^[A-Za-z*]$/.test(c)) return this.token();
    return this.fail(`no item starts with ${JSON.stringify(c)}`);
  }

  /** §4.2.4 (integers only) */
  integer(): number {
    const start = this.pos;
    if (this.peek() === '-') this.pos++;
    const digits = this.pos;
    while (this.peek() >= '0' && this.peek() <= '9') this.pos++;
    if (this.pos === digits) this.fail('an integer needs a digit');
    if (this.pos - digits > 15) this.fail('an integer has at most 15 digits');
    if (this.peek() === '.') this.fail('decimals are not supported here');
    return Number(this.input.slice(start, this.pos));
  }

  /** §4.2.5 */
  string(): string {
    this.pos++;
    let out = '';
    for (;;) {
      const c = this.input[this.pos++];
      if (c === undefined) this.fail('unterminated string');
      if (c === '"') return out;
      if (c === '\\') {
        const next = this.input[this.pos++];
        if (next !== '"' && next !== '\\') this.fail('only \\" and \\\\ are escapes in a string');
        out += next;
      } else {
        const code = c.charCodeAt(0);
        if (code < 0x20 || code > 0x7e) this.fail('a string holds printable ASCII only');
        out += c;
      }
    }
  }

  /** §4.2.6 */
  token(): SfToken {
    const start = this.pos;
    this.pos++;
    while (/^[!#$%&'*+\-.^_`|~0-9A-Za-z:/]$/.test(this.peek())) this.pos++;
    return new SfToken(this.input.slice(start, this.pos));
  }

  /** §4.2.7 */
  bytes(): Uint8Array {
    this.pos++;
    const end = this.input.indexOf(':', this.pos);
    if (end < 0) this.fail('unterminated byte sequence');
    const b64 = this.input.slice(this.pos, end);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) this.fail('a byte sequence is base64');
    this.pos = end + 1;
    let binary: string;
    try {
      binary = atob(b64);
    } catch {
      return this.fail('a byte sequence is base64');
    }
    const out = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
    return out;
  }

  /** §4.2.8 */
  boolean(): boolean {
    this.pos++;
    const c = this.input[this.pos++];
    if (c === '1') return true;
    if (c === '0') return false;
    return this.fail('a boolean is ?0 or ?1');
  }

  /** §4.2.1.2 */
  innerList(): SfInnerList {
    this.pos++;
    const items: SfItem[] = [];
    for (;;) {
      this.skipSp();
      if (this.peek() === ')') {
        this.pos++;
        return { items, params: this.params() };
      }
      const value = this.bareItem();
      items.push({ value, params: this.params() });
      const c = this.peek();
      if (c !== ' ' && c !== ')') this.fail('inner list items are separated by spaces');
    }
  }

  member(): DictionaryMember {
    if (this.peek() === '(') return this.innerList();
    const value = this.bareItem();
    return { value, params: this.params() };
  }
}

/** RFC 8941 §4.2.2: a Dictionary. Throws WireError for anything else. */
export function parseDictionary(input: string): Map<string, DictionaryMember> {
  if (input.length > MAX_STRUCTURED_FIELD)
    throw new WireError(
      'field-section-too-large',
      0,
      `structured field of ${input.length} characters (at most ${MAX_STRUCTURED_FIELD})`,
    );
  const p = new Parser(input);
  const dict = new Map<string, DictionaryMember>();
  p.skipSp();
  while (p.pos < input.length) {
    const key = p.key();
    let member: DictionaryMember;
    if (p.peek() === '=') {
      p.pos++;
      member = p.member();
    } else {
      member = { value: true, params: p.params() };
    }
    dict.set(key, member);
    p.skipOws();
    if (p.pos >= input.length) return dict;
    if (p.peek() !== ',') p.fail('dictionary members are separated by commas');
    p.pos++;
    p.skipOws();
    if (p.pos >= input.length) p.fail('trailing comma');
  }
  return dict;
}

/** RFC 8941 §4.2.1: a List (e.g. WebTransport's `WT-Available-Protocols`). Throws WireError for anything else. */
export function parseList(input: string): DictionaryMember[] {
  if (input.length > MAX_STRUCTURED_FIELD)
    throw new WireError(
      'field-section-too-large',
      0,
      `structured field of ${input.length} characters (at most ${MAX_STRUCTURED_FIELD})`,
    );
  const p = new Parser(input);
  const list: DictionaryMember[] = [];
  p.skipSp();
  while (p.pos < input.length) {
    list.push(p.member());
    p.skipOws();
    if (p.pos >= input.length) return list;
    if (p.peek() !== ',') p.fail('list members are separated by commas');
    p.pos++;
    p.skipOws();
    if (p.pos >= input.length) p.fail('trailing comma');
  }
  return list;
}

/** RFC 8941 §4.1.3.1 */
export function serializeBareItem(value: BareItem): string {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || Math.abs(value) > 999_999_999_999_999)
      throw new WireError('invalid-argument', 0, `${value} is not a structured-field integer`);
    return String(value);
  }
  if (typeof value === 'string') {
    if (!/^[\x20-\x7e]*$/.test(value))
      throw new WireError('invalid-argument', 0, 'a string holds printable ASCII only');
    return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  }
  if (typeof value === 'boolean') return value ? '?1' : '?0';
  if (value instanceof SfToken) return value.value;
  return `:${toBase64(value)}:`;
}

/** RFC 8941 §4.1.1.2 */
export function serializeParams(params: Parameters): string {
  let out = '';
  for (const [key, value] of params) out += value === true ? `;${key}` : `;${key}=${serializeBareItem(value)}`;
  return out;
}

/** RFC 8941 §4.1.1.1 */
export function serializeInnerList(list: SfInnerList): string {
  return `(${list.items.map((i) => serializeBareItem(i.value) + serializeParams(i.params)).join(' ')})${serializeParams(list.params)}`;
}

/** RFC 8941 §4.1.2 (dictionary of items and inner lists). */
export function serializeDictionary(dict: Map<string, DictionaryMember>): string {
  const parts: string[] = [];
  for (const [key, member] of dict) {
    if (isInnerList(member)) parts.push(`${key}=${serializeInnerList(member)}`);
    else if (member.value === true) parts.push(key + serializeParams(member.params));
    else parts.push(`${key}=${serializeBareItem(member.value)}${serializeParams(member.params)}`);
  }
  return parts.join(', ');
}
