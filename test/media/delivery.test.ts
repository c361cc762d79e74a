/**
 * The delivery description (src/media/live/delivery.ts): what an origin writes is read back as written;
 * anything malformed is refused with a DeliveryDescriptionError that names the field.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import {
  DELIVERY_MODES,
  DeliveryDescriptionError,
  offeredModes,
  parseDeliveryDescription,
  parseModeOrder,
  type DeliveryDescription,
} from '../../src/media/index.js';

export const FULL: DeliveryDescription = {
  version: 1,
  broadcast: 'live',
  targetLatencyMs: 1500,
  order: [...DELIVERY_MODES],
  dash: { manifest: 'manifest.mpd' },
  multicast: { manifest: 'manifest.mpd?delivery=multicast', serviceWorker: '/player/sw.js', scope: '/' },
  warp: {
    path: '/warp/live',
    webTransport: { port: 8443, serverCertificateHashes: [{ algorithm: 'sha-256', value: 'ab'.repeat(32) }] },
  },
};

test('a full description reads back as written; the modes offered follow the order', () => {
  assert.deepEqual(parseDeliveryDescription(JSON.parse(JSON.stringify(FULL))), FULL);
  assert.deepEqual(offeredModes(FULL), ['multicast', 'warp-webtransport', 'warp-websocket', 'dash']);
  const { multicast: _m, ...noMulticast } = FULL;
  assert.deepEqual(offeredModes({ ...noMulticast, order: ['dash', 'multicast', 'warp-websocket'] }), [
    'dash',
    'warp-websocket',
  ]);
  const noWebTransport = { ...FULL, warp: { path: '/warp/live' } };
  assert.deepEqual(offeredModes(noWebTransport), ['multicast', 'warp-websocket', 'dash']);
});

test('malformed descriptions are refused, naming the field', () => {
  const cases: [unknown, RegExp][] = [
    [null, /the document is not an object/],
    [[], /the document is not an object/],
    [{ ...FULL, version: 2 }, /version is 2, not 1/],
    [{ ...FULL, targetLatencyMs: 10 }, /targetLatencyMs is not an integer/],
    [{ ...FULL, order: [] }, /order is not a list/],
    [{ ...FULL, order: ['dash', 'dash'] }, /order\[1\] repeats dash/],
    [{ ...FULL, order: ['smoke-signals'] }, /order\[0\] is not one of/],
    [{ ...FULL, dash: {} }, /dash.manifest is not a string/],
    [{ ...FULL, dash: { manifest: 'javascript:alert(1)' } }, /dash.manifest has scheme javascript:/],
    [{ ...FULL, dash: { manifest: 'a b' } }, /white space or control characters/],
    [{ ...FULL, multicast: { ...FULL.multicast, scope: 'x'.repeat(3000) } }, /multicast.scope is not a string/],
    [{ ...FULL, warp: { path: '/warp/live', webTransport: { port: 70000 } } }, /warp.webTransport.port/],
    [
      {
        ...FULL,
        warp: { path: '/w', webTransport: { port: 1, serverCertificateHashes: [{ algorithm: 'md5', value: '' }] } },
      },
      /serverCertificateHashes\[0\].algorithm is not sha-256/,
    ],
    [
      { ...FULL, warp: { path: '/w', webTransport: { port: 1, serverCertificateHashes: Array(9).fill({}) } } },
      /at most 8/,
    ],
  ];
  for (const [input, message] of cases)
    assert.throws(
      () => parseDeliveryDescription(input),
      (e: unknown) => e instanceof DeliveryDescriptionError && message.test(e.message),
      String(message),
    );
});

test('an operator order is checked like the description', () => {
  assert.deepEqual(parseModeOrder('warp-websocket, dash'), ['warp-websocket', 'dash']);
  assert.throws(() => parseModeOrder('dash,unicorn'), /order\[1\] is not one of/);
  assert.throws(() => parseModeOrder('dash,dash'), /repeats/);
});
