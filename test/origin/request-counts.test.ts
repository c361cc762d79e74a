import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RequestCounts } from '../../src/origin/request-counts.js';

test('requests are counted by route, method, status and protocol', () => {
  const counts = new RequestCounts();
  counts.count('segment', 'GET', 200, 'h2');
  counts.count('segment', 'GET', 200, 'h2');
  counts.count('segment', 'HEAD', 200, 'h2');
  counts.count('segment', 'GET', 200, 'http/1.1');
  counts.count('mpd', 'GET', 503, 'h3');
  assert.deepEqual(counts.list(), [
    { route: 'segment', method: 'GET', status: '200', protocol: 'h2', count: 2 },
    { route: 'segment', method: 'HEAD', status: '200', protocol: 'h2', count: 1 },
    { route: 'segment', method: 'GET', status: '200', protocol: 'http/1.1', count: 1 },
    { route: 'mpd', method: 'GET', status: '503', protocol: 'h3', count: 1 },
  ]);
});

test('methods of their own that clients send (any token over HTTP/2 and HTTP/3) are counted as one: other', () => {
  const counts = new RequestCounts();
  for (let i = 0; i < 10_000; i++) counts.count('method', `X-METHOD-${i}`, 405, 'h2');
  counts.count('method', 'PROPFIND', 405, 'h2');
  assert.deepEqual(counts.list(), [
    { route: 'method', method: 'other', status: '405', protocol: 'h2', count: 10_000 },
    { route: 'method', method: 'PROPFIND', status: '405', protocol: 'h2', count: 1 },
  ]);
});
