import assert from 'node:assert/strict';
import { test } from 'node:test';
import { urlHost } from '../../src/listen/index.js';

test('the host a printed URL carries: localhost for the any-address, IPv6 in brackets, the rest as given', () => {
  assert.equal(urlHost('0.0.0.0'), 'localhost');
  assert.equal(urlHost('::'), 'localhost');
  assert.equal(urlHost('::1'), '[::1]');
  assert.equal(urlHost('fd00::2'), '[fd00::2]');
  assert.equal(urlHost('127.0.0.1'), '127.0.0.1');
  assert.equal(urlHost('media.example'), 'media.example');
  assert.equal(new URL(`https://${urlHost('::1')}:8443/`).port, '8443', 'a URL parser reads the port back');
});
