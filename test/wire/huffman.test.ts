import assert from 'node:assert/strict';
import test from 'node:test';
import { huffmanDecode, huffmanEncode, huffmanEncodedLength } from '../../src/wire/index.js';
import { HUFFMAN_EOS, huffmanCodeOf } from '../../src/wire/huffman.js';
import { Rng, ascii, fromHex, hex, throwsWire } from './support.js';

test('the transcribed table is a complete prefix code whose EOS is 30 ones (RFC 7541 Appendix B)', () => {
  const codes = Array.from({ length: HUFFMAN_EOS + 1 }, (_, symbol) => huffmanCodeOf(symbol));
  // Kraft: Σ 2^−bits = 1 exactly, i.e. Σ 2^(30 − bits) = 2^30, for a code with no unused prefix.
  assert.equal(
    codes.reduce((sum, { bits }) => sum + 2 ** (30 - bits), 0),
    2 ** 30,
  );
  // Prefix-free: sorted as bit strings, none starts with its predecessor.
  const strings = codes.map(({ code, bits }) => code.toString(2).padStart(bits, '0')).sort();
  for (let i = 1; i < strings.length; i++) assert.ok(!strings[i]!.startsWith(strings[i - 1]!), strings[i]);
  assert.deepEqual(huffmanCodeOf(HUFFMAN_EOS), { code: 0x3fffffff, bits: 30 });
  // The RFC's own worked example: '/' (47) is the 6 bits 011000, 0x18.
  assert.deepEqual(huffmanCodeOf(47), { code: 0x18, bits: 6 });
  // Some rows checked by hand against the RFC text.
  assert.deepEqual(huffmanCodeOf(0), { code: 0x1ff8, bits: 13 });
  assert.deepEqual(huffmanCodeOf(32), { code: 0x14, bits: 6 });
  assert.deepEqual(huffmanCodeOf(48), { code: 0x0, bits: 5 });
  assert.deepEqual(huffmanCodeOf(97), { code: 0x3, bits: 5 });
  assert.deepEqual(huffmanCodeOf(255), { code: 0x3ffffee, bits: 26 });
});

// RFC 7541 Appendix C.4 (requests) and C.6 (responses): every Huffman-coded literal, byte-exact.
const VECTORS: [string, string][] = [
  ['www.example.com', 'f1e3 c2e5 f23a 6ba0 ab90 f4ff'], // C.4.1
  ['no-cache', 'a8eb 1064 9cbf'], // C.4.2
  ['custom-key', '25a8 49e9 5ba9 7d7f'], // C.4.3
  ['custom-value', '25a8 49e9 5bb8 e8b4 bf'], // C.4.3
  ['302', '6402'], // C.6.1
  ['private', 'aec3 771a 4b'], // C.6.1
  ['Mon, 21 Oct 2013 20:13:21 GMT', 'd07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff'], // C.6.1
  ['https://www.example.com', '9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3'], // C.6.1
  ['307', '640e ff'], // C.6.2
  ['Mon, 21 Oct 2013 20:13:22 GMT', 'd07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff'], // C.6.3
  ['gzip', '9bd9 ab'], // C.6.3
  [
    'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1', // C.6.3
    '94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07',
  ],
];

test('RFC 7541 Appendix C.4 and C.6: the example literals encode and decode byte-exactly', () => {
  for (const [text, wire] of VECTORS) {
    const bytes = fromHex(wire);
    assert.equal(hex(huffmanEncode(ascii(text))), hex(bytes), text);
    assert.equal(huffmanEncodedLength(ascii(text)), bytes.length, text);
    assert.equal(String.fromCharCode(...huffmanDecode(bytes)), text, text);
  }
});

test('RFC 7541 §5.2: EOS in the string, padding over 7 bits, padding not all ones are errors', () => {
  throwsWire(() => huffmanDecode(fromHex('ffffffff')), 'huffman', 'EOS');
  throwsWire(() => huffmanDecode(fromHex('1fffffff ff')), 'huffman', "'a' then EOS");
  throwsWire(() => huffmanDecode(fromHex('1fff')), 'huffman', "'a' then 11 bits of padding");
  throwsWire(() => huffmanDecode(fromHex('ff')), 'huffman', '8 bits of padding');
  throwsWire(() => huffmanDecode(fromHex('18')), 'huffman', "'a' then padding 000");
  throwsWire(() => huffmanDecode(fromHex('1e')), 'huffman', "'a' then padding 110");
  assert.equal(String.fromCharCode(...huffmanDecode(fromHex('1f'))), 'a', "'a' then padding 111");
  assert.equal(huffmanDecode(new Uint8Array(0)).length, 0);
  // A code cut short (the first 8 of the 13 bits of symbol 0) reads as padding that is not all ones.
  throwsWire(() => huffmanDecode(fromHex('fe')), 'huffman');
  const error = throwsWire(() => huffmanDecode(fromHex('1f ffffffff'), 40), 'huffman');
  assert.ok(error.offset >= 40, 'offsets are the caller’s');
});

test('property: random byte strings round-trip, and the length is exact', () => {
  const rng = new Rng(7);
  for (let i = 0; i < 3000; i++) {
    const text = rng.bool(0.7)
      ? Uint8Array.from({ length: rng.range(0, 80) }, () => rng.range(0x20, 0x7e))
      : rng.bytes(rng.range(0, 80));
    const encoded = huffmanEncode(text);
    assert.equal(encoded.length, huffmanEncodedLength(text));
    assert.equal(hex(huffmanDecode(encoded)), hex(text));
  }
});
