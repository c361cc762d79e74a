/**
 * RFC 8941 dictionaries as RFC 9421 signature fields use them: examples from the RFCs, round trips, refusal of
 * garbage; lists as WebTransport's `WT-Available-Protocols` carries them.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { WireError } from '../../src/wire/index.js';
import {
  SfToken,
  isInnerList,
  parseDictionary,
  parseList,
  serializeBareItem,
  serializeDictionary,
  serializeInnerList,
} from '../../src/wire/structured-fields.js';
import { Rng } from './support.js';

test('RFC 9421 §2.3 signature-input parses and serialises back byte for byte', () => {
  const text =
    'sig1=("@method" "@authority" "@path" "content-digest" "content-length" "content-type");created=1618884473;keyid="test-key-rsa-pss"';
  const dict = parseDictionary(text);
  const sig1 = dict.get('sig1')!;
  assert.ok(isInnerList(sig1));
  assert.deepEqual(
    sig1.items.map((i) => i.value),
    ['@method', '@authority', '@path', 'content-digest', 'content-length', 'content-type'],
  );
  assert.equal(sig1.params.get('created'), 1618884473);
  assert.equal(sig1.params.get('keyid'), 'test-key-rsa-pss');
  assert.equal(serializeDictionary(dict), text);
});

test('items with parameters, byte sequences, tokens, booleans, escapes', () => {
  const dict = parseDictionary('a=("@path";req "x"), b=:AQID:, c=tok/en:1, d=?0, e="q\\"uo\\\\te", f;g=1');
  const a = dict.get('a')!;
  assert.ok(isInnerList(a));
  assert.equal(a.items[0]!.params.get('req'), true);
  assert.equal(serializeInnerList(a), '("@path";req "x")');
  assert.deepEqual((dict.get('b') as { value: Uint8Array }).value, new Uint8Array([1, 2, 3]));
  assert.ok((dict.get('c') as { value: SfToken }).value instanceof SfToken);
  assert.equal((dict.get('d') as { value: boolean }).value, false);
  assert.equal((dict.get('e') as { value: string }).value, 'q"uo\\te');
  assert.equal(dict.get('f')!.params.get('g'), 1);
  assert.equal(serializeDictionary(dict), 'a=("@path";req "x"), b=:AQID:, c=tok/en:1, d=?0, e="q\\"uo\\\\te", f;g=1');
});

test('malformed dictionaries are refused with WireError', () => {
  for (const bad of [
    'A=1',
    'a=',
    'a=1,',
    'a="unterminated',
    'a=("x""y")',
    'a=:not base64!:',
    'a=?2',
    'a=1.5',
    'a=1234567890123456',
    'a=1 b=2',
    'a="\u0001"',
    'a=(1',
  ]) {
    assert.throws(() => parseDictionary(bad), WireError, bad);
  }
  assert.throws(() => parseDictionary(`a="${'x'.repeat(9000)}"`), WireError, 'longer than the bound');
});

test('2000 random strings: WireError or a dictionary that round-trips, never another exception', () => {
  const rng = new Rng(7);
  const alphabet = 'ab;=()"\\:?,- 019@*/.AQID';
  for (let n = 0; n < 2000; n++) {
    let text = '';
    const length = rng.int(40);
    for (let i = 0; i < length; i++) text += alphabet[rng.int(alphabet.length)];
    let dict;
    try {
      dict = parseDictionary(text);
    } catch (error) {
      assert.ok(error instanceof WireError, `${JSON.stringify(text)}: ${String(error)}`);
      continue;
    }
    assert.deepEqual(parseDictionary(serializeDictionary(dict)), dict, JSON.stringify(text));
  }
});

test('lists: WT-Available-Protocols as Chromium sends it, parameters and inner lists kept, garbage refused', () => {
  const list = parseList('"moq-lite-05", "moq-lite-04", "moql", "moqt-19"');
  assert.deepEqual(
    list.map((m) => ('value' in m ? m.value : undefined)),
    ['moq-lite-05', 'moq-lite-04', 'moql', 'moqt-19'],
  );
  assert.deepEqual(parseList(''), []);
  const mixed = parseList('a;q=1, (1 2), "s"');
  assert.equal(mixed.length, 3);
  assert.ok(isInnerList(mixed[1]!));
  assert.equal(serializeBareItem('moql'), '"moql"');
  for (const bad of ['"a",', '"a" "b"', ',', '"unterminated', 'a,,b'])
    assert.throws(() => parseList(bad), WireError, bad);
});
