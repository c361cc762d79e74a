/** Alt-Svc (RFC 7838 §3) advertisements of multicast sessions: format, parse back, refuse garbage. */
import assert from 'node:assert/strict';
import test from 'node:test';
import {
  WireError,
  formatMulticastAltSvc,
  multicastAdvertisement,
  parseAltSvc,
  parseFec,
} from '../../src/wire/index.js';
import { Rng } from './support.js';

test('an IPv4 and an IPv6 advertisement round-trip', () => {
  const v4 = {
    group: '232.112.99.1',
    port: 5000,
    source: '10.0.0.1',
    sessionId: '5fa3c2e19b0d4e77',
    keyUrl: 'https://o.example:8443/.well-known/pushcast/multicast-keys.json',
    gateway: '/multicast/gateway',
    maxAge: 60,
  };
  const text = formatMulticastAltSvc(v4);
  assert.equal(
    text,
    'h3m-07="232.112.99.1:5000"; source="10.0.0.1"; session-id=5fa3c2e19b0d4e77; key="https://o.example:8443/.well-known/pushcast/multicast-keys.json"; gateway="/multicast/gateway"; ma=60',
  );
  assert.deepEqual(multicastAdvertisement(text), v4);
  const v6 = {
    group: 'ff3e::8000:1',
    port: 6000,
    source: 'fd00::1',
    sessionId: 'ab',
    keyUrl: undefined,
    gateway: undefined,
    maxAge: 5,
  };
  assert.equal(formatMulticastAltSvc(v6), 'h3m-07="[ff3e::8000:1]:6000"; source="fd00::1"; session-id=ab; ma=5');
  assert.deepEqual(multicastAdvertisement(formatMulticastAltSvc(v6)), v6);
  const progressive = { ...v6, progressive: true };
  assert.equal(
    formatMulticastAltSvc(progressive),
    'h3m-07="[ff3e::8000:1]:6000"; source="fd00::1"; session-id=ab; chunks=1; ma=5',
  );
  assert.deepEqual(multicastAdvertisement(formatMulticastAltSvc(progressive)), progressive);
});

test('other alternatives are skipped; h3m-07 entries without a usable session are ignored', () => {
  const value =
    'h3=":8443"; ma=86400, h3m-07="232.1.1.1:5000"; ma=10, h3m-07="232.1.1.2:5001"; session-id=0A0b; unknown=1';
  assert.equal(parseAltSvc(value).length, 3);
  assert.deepEqual(multicastAdvertisement(value), {
    group: '232.1.1.2',
    port: 5001,
    source: undefined,
    sessionId: '0a0b',
    keyUrl: undefined,
    gateway: undefined,
    maxAge: 86_400,
  });
  assert.equal(multicastAdvertisement('clear'), undefined);
  assert.equal(multicastAdvertisement('h3m-07="232.1.1.1:99999"; session-id=00'), undefined);
});

test('malformed values throw WireError; random strings never throw anything else', () => {
  for (const bad of ['h3m-07', 'h3m-07="232.1.1.1:1', 'h3m-07="a:1"; ma', 'a="b" c="d"', `h3="${'x'.repeat(5000)}"`]) {
    assert.throws(() => parseAltSvc(bad), WireError, bad);
  }
  const rng = new Rng(3);
  const alphabet = 'h3m-07=":;, \\[]ab1.%sesion-d';
  for (let n = 0; n < 3000; n++) {
    let text = '';
    for (let i = rng.int(50); i > 0; i--) text += alphabet[rng.int(alphabet.length)];
    try {
      multicastAdvertisement(text);
    } catch (error) {
      assert.ok(error instanceof WireError, `${JSON.stringify(text)}: ${String(error)}`);
    }
  }
});

test('the fec parameter round-trips; one this reader does not know is ignored with the session kept', () => {
  const ad = {
    group: '232.112.99.1',
    port: 5000,
    source: '10.0.0.1',
    sessionId: '5fa3c2e19b0d4e77',
    keyUrl: undefined,
    gateway: '/multicast/gateway',
    fec: { scheme: 'rs', k: 20, m: 2, port: 5001 } as const,
    maxAge: 60,
  };
  const text = formatMulticastAltSvc(ad);
  assert.equal(
    text,
    'h3m-07="232.112.99.1:5000"; source="10.0.0.1"; session-id=5fa3c2e19b0d4e77; gateway="/multicast/gateway"; fec="rs;k=20;m=2;port=5001"; ma=60',
  );
  assert.deepEqual(multicastAdvertisement(text), ad);
  assert.deepEqual(parseFec('rs; port=7; m=1; k=254; future=3'), { scheme: 'rs', k: 254, m: 1, port: 7 });
  const { fec: _, ...without } = ad;
  for (const value of [
    'xor;k=20;m=2;port=5001',
    'rs;k=20;m=2',
    'rs;k=254;m=2;port=5001',
    'rs;k=0;m=2;port=1',
    'rs;k=2;m=2;port=70000',
  ]) {
    assert.equal(parseFec(value), undefined, value);
    assert.deepEqual(multicastAdvertisement(text.replace('rs;k=20;m=2;port=5001', value)), without, value);
  }
  assert.throws(() => formatMulticastAltSvc({ ...ad, fec: { scheme: 'rs', k: 250, m: 10, port: 1 } }), WireError);
});
