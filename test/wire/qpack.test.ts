import assert from 'node:assert/strict';
import test from 'node:test';
import {
  QPACK_STATIC_TABLE,
  decodeFieldSection,
  encodeFieldSection,
  huffmanEncode,
  type FieldLine,
  type HuffmanPolicy,
} from '../../src/wire/index.js';
import { decodePrefixInt, encodePrefixInt } from '../../src/wire/qpack.js';
import { Rng, ascii, concat, fromHex, hex, throwsWire } from './support.js';

test('RFC 9204 Appendix A: the static table', () => {
  assert.equal(QPACK_STATIC_TABLE.length, 99);
  const spot: [number, string, string][] = [
    [0, ':authority', ''],
    [1, ':path', '/'],
    [2, 'age', '0'],
    [15, ':method', 'CONNECT'],
    [17, ':method', 'GET'],
    [23, ':scheme', 'https'],
    [25, ':status', '200'],
    [29, 'accept', '*/*'],
    [31, 'accept-encoding', 'gzip, deflate, br'],
    [41, 'cache-control', 'public, max-age=31536000'],
    [52, 'content-type', 'text/html; charset=utf-8'],
    [54, 'content-type', 'text/plain;charset=utf-8'],
    [58, 'strict-transport-security', 'max-age=31536000; includesubdomains; preload'],
    [62, 'x-xss-protection', '1; mode=block'],
    [63, ':status', '100'],
    [71, ':status', '500'],
    [72, 'accept-language', ''],
    [73, 'access-control-allow-credentials', 'FALSE'],
    [85, 'content-security-policy', "script-src 'none'; object-src 'none'; base-uri 'none'"],
    [93, 'timing-allow-origin', '*'],
    [97, 'x-frame-options', 'deny'],
    [98, 'x-frame-options', 'sameorigin'],
  ];
  for (const [index, name, value] of spot) assert.deepEqual(QPACK_STATIC_TABLE[index], [name, value], `index ${index}`);
  // Fingerprint of the whole table, counted on the RFC text: 'name:value' lines joined by newlines.
  const all = QPACK_STATIC_TABLE.map(([n, v]) => `${n}:${v}`).join('\n');
  assert.equal(all.length, 2223);
  assert.ok(QPACK_STATIC_TABLE.every(([name]) => name === name.toLowerCase() && name.length > 0));
});

test('RFC 7541 Appendix C.1: prefix integers', () => {
  assert.equal(hex(encodePrefixInt(10, 5)), '0a'); // C.1.1
  assert.equal(hex(encodePrefixInt(1337, 5)), '1f9a0a'); // C.1.2
  assert.equal(hex(encodePrefixInt(42, 8)), '2a'); // C.1.3
  assert.equal(hex(encodePrefixInt(1337, 5, 0xe0)), 'ff9a0a', 'the high bits belong to the caller');
  assert.deepEqual(decodePrefixInt(fromHex('0a'), 0, 5), { value: 10, length: 1 });
  assert.deepEqual(decodePrefixInt(fromHex('ff9a0a'), 0, 5), { value: 1337, length: 3 });
  assert.deepEqual(decodePrefixInt(fromHex('2a'), 0, 8), { value: 42, length: 1 });
  assert.deepEqual(decodePrefixInt(fromHex('1f00'), 0, 5), { value: 31, length: 2 });
  assert.deepEqual(
    decodePrefixInt(fromHex('ff 8080 00'), 0, 8),
    { value: 255, length: 4 },
    'zero continuation bytes are legal',
  );
  throwsWire(() => decodePrefixInt(fromHex('1f9a'), 0, 5), 'truncated');
  throwsWire(() => decodePrefixInt(fromHex(`ff${'80'.repeat(10)}00`), 0, 8), 'integer-overflow', 'more than 62 bits');
  throwsWire(() => decodePrefixInt(fromHex('ff ffffffffffffffff 7f'), 0, 8), 'integer-overflow', 'beyond 2^53-1');
  const rng = new Rng(8);
  for (let i = 0; i < 2000; i++) {
    const value = rng.pick([rng.int(300), rng.int(2 ** 20), rng.int(2 ** 53)]);
    const bits = rng.range(1, 8);
    assert.deepEqual(decodePrefixInt(encodePrefixInt(value, bits), 0, bits).value, value);
  }
});

test('RFC 9204 Appendix B.1: literal field line with name reference, :path /index.html', () => {
  const section = fromHex('0000 510b 2f69 6e64 6578 2e68 746d 6c');
  assert.equal(hex(encodeFieldSection([{ name: ':path', value: '/index.html' }], { huffman: 'never' })), hex(section));
  assert.deepEqual(decodeFieldSection(section), [{ name: ':path', value: '/index.html' }]);
  // The default Huffman-codes the value when shorter: 8 bytes instead of 11.
  const auto = encodeFieldSection([{ name: ':path', value: '/index.html' }]);
  assert.equal(hex(auto), '0000 51 88'.replace(/ /g, '') + hex(huffmanEncode(ascii('/index.html'))));
  assert.deepEqual(decodeFieldSection(auto), [{ name: ':path', value: '/index.html' }]);
});

test('each representation, as the encoder chooses it', () => {
  const cases: [FieldLine[], string][] = [
    [[], '0000'],
    [[{ name: ':method', value: 'GET' }], '0000 d1'], // §4.5.2 indexed, static 17
    [[{ name: ':status', value: '200' }], '0000 d9'], // static 25
    [[{ name: 'x-frame-options', value: 'sameorigin' }], '0000 ff23'], // static 98 = 63 + 35: 6-bit prefix overflow
    [[{ name: 'content-length', value: '1234' }], '0000 54 04 31323334'], // §4.5.4 name ref static 4
    [[{ name: ':status', value: '200', neverIndex: true }], '0000 7f09 03 323030'], // N bit: always a literal; name ref 24 (the first :status) = 15 + 9
    [[{ name: 'custom-key', value: 'custom-value' }], '0000 2703 637573746f6d2d6b6579 0c 637573746f6d2d76616c7565'], // §4.5.6
    [[{ name: 'custom-key', value: '', neverIndex: true }], '0000 3703 637573746f6d2d6b6579 00'],
  ];
  for (const [fields, wire] of cases) {
    const section = encodeFieldSection(fields, { huffman: 'never' });
    assert.equal(hex(section), hex(fromHex(wire)), JSON.stringify(fields));
    assert.deepEqual(decodeFieldSection(section), fields);
  }
  // Huffman-coded literal name: 001 N H=1 len(3+).
  const huffmanName = encodeFieldSection([{ name: 'custom-key', value: 'custom-value' }], { huffman: 'always' });
  assert.equal(hex(huffmanName), '0000' + '2f01' + '25a849e95ba97d7f' + '89' + '25a849e95bb8e8b4bf');
  assert.deepEqual(decodeFieldSection(huffmanName), [{ name: 'custom-key', value: 'custom-value' }]);
});

test('byte strings: every byte value survives; characters above 0xFF are refused', () => {
  const value = String.fromCharCode(...Array.from({ length: 256 }, (_, i) => i));
  const fields = [{ name: 'x-bytes', value }];
  for (const huffman of ['auto', 'always', 'never'] as const)
    assert.deepEqual(decodeFieldSection(encodeFieldSection(fields, { huffman })), fields);
  throwsWire(() => encodeFieldSection([{ name: 'x-emoji', value: 'caf\u00e9 \u2615' }]), 'invalid-argument');
});

test('decoding refuses the dynamic table and malformed sections with typed errors', () => {
  const refuse: [string, string, string][] = [
    ['0100 d1', 'qpack-dynamic-reference', 'Required Insert Count 1'],
    ['ff00 00', 'qpack-dynamic-reference', 'Required Insert Count 255+'],
    ['0080', 'qpack-decompression', 'Sign 1: negative Base'],
    ['0000 80', 'qpack-dynamic-reference', 'indexed, T=0'],
    ['0000 10', 'qpack-dynamic-reference', 'indexed post-Base'],
    ['0000 00 00', 'qpack-dynamic-reference', 'literal with post-Base name reference'],
    ['0000 08 00', 'qpack-dynamic-reference', 'literal with post-Base name reference, N=1'],
    ['0000 40 00', 'qpack-dynamic-reference', 'literal with dynamic name reference'],
    ['0000 ff24', 'qpack-static-index', 'static index 99'],
    ['0000 5f55 00', 'qpack-static-index', 'static name index 100'],
    ['', 'truncated', 'no prefix'],
    ['00', 'truncated', 'half a prefix'],
    ['0000 510b 2f69', 'truncated', 'value cut'],
    ['0000 27', 'truncated', 'name length cut'],
    ['0000 51 81 ff', 'huffman', 'value of 8 padding bits'],
    ['0000 51 81 18', 'huffman', 'padding not all ones'],
    ['0000 51 7f ffffffffffffffff 7f', 'integer-overflow', 'length beyond 2^53'],
  ];
  for (const [wire, code, why] of refuse) throwsWire(() => decodeFieldSection(fromHex(wire)), code as never, why);
  // Any Delta Base with Sign 0 is valid: nothing refers to the Base.
  assert.deepEqual(decodeFieldSection(fromHex('007f 05 d1')), [{ name: ':method', value: 'GET' }]);
});

test('decoding bounds: section size (name + value + 32 per field) and field count', () => {
  const fields = Array.from({ length: 10 }, (_, i) => ({ name: `x-field-${i}`, value: 'v'.repeat(100) }));
  const section = encodeFieldSection(fields);
  const size = fields.reduce((n, f) => n + f.name.length + f.value.length + 32, 0);
  assert.equal(decodeFieldSection(section, { maxFieldSectionSize: size }).length, 10);
  throwsWire(() => decodeFieldSection(section, { maxFieldSectionSize: size - 1 }), 'field-section-too-large');
  assert.equal(decodeFieldSection(section, { maxFields: 10 }).length, 10);
  throwsWire(() => decodeFieldSection(section, { maxFields: 9 }), 'too-many-fields');
  // The default: 64 KiB.
  const big = encodeFieldSection([{ name: 'x-big', value: 'a'.repeat(70_000) }], { huffman: 'never' });
  throwsWire(() => decodeFieldSection(big), 'field-section-too-large');
  const indexed = concat(fromHex('0000'), new Uint8Array(300).fill(0xd1));
  throwsWire(() => decodeFieldSection(indexed), 'too-many-fields', 'default 256');
});

test('property: random header lists round-trip under every Huffman policy', () => {
  const rng = new Rng(9);
  const staticNames = [...new Set(QPACK_STATIC_TABLE.map(([name]) => name))];
  const token = () =>
    Array.from({ length: rng.range(1, 20) }, () => rng.pick([...'abcdefghijklmnopqrstuvwxyz0123456789-_'])).join('');
  const value = () =>
    rng.bool(0.6)
      ? String.fromCharCode(...Array.from({ length: rng.range(0, 60) }, () => rng.range(0x20, 0x7e)))
      : String.fromCharCode(...rng.bytes(rng.range(0, 60)));
  for (let i = 0; i < 1500; i++) {
    const fields: FieldLine[] = [];
    for (let n = rng.range(0, 12); n > 0; n--) {
      const entry = rng.pick(QPACK_STATIC_TABLE);
      const field: FieldLine = rng.bool(0.3)
        ? { name: entry[0], value: entry[1] }
        : { name: rng.bool() ? rng.pick(staticNames) : token(), value: value() };
      fields.push(rng.bool(0.2) ? { ...field, neverIndex: true } : field);
    }
    const huffman = rng.pick<HuffmanPolicy>(['auto', 'always', 'never']);
    const section = encodeFieldSection(fields, { huffman });
    assert.deepEqual(decodeFieldSection(section), fields);
    if (huffman === 'auto') {
      assert.ok(section.length <= encodeFieldSection(fields, { huffman: 'never' }).length);
      assert.ok(section.length <= encodeFieldSection(fields, { huffman: 'always' }).length);
    }
  }
});
