import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { perScrape, scrapedCounter, scrapedGauge, type Sample } from '../../src/metrics/scrape.js';

test('a scraped counter shows each label set from its first read (at 0 too) and never goes down', async () => {
  const registry = new Registry();
  let samples: Sample[] = [[{ kind: 'a' }, 0]];
  const counter = scrapedCounter(registry, 'test_total', 'help', ['kind'], () => samples);
  const values = async () => (await counter.get()).values.map((v) => [v.labels.kind, v.value]);
  assert.deepEqual(await values(), [['a', 0]]);
  samples = [
    [{ kind: 'a' }, 5],
    [{ kind: 'b' }, 2],
  ];
  assert.deepEqual(await values(), [
    ['a', 5],
    ['b', 2],
  ]);
  samples = [
    [{ kind: 'a' }, 3],
    [{ kind: 'b' }, 4],
  ];
  assert.deepEqual(
    await values(),
    [
      ['a', 5],
      ['b', 4],
    ],
    'a total read lower than before leaves the counter where it was',
  );
});

test('a scraped gauge shows exactly the label sets of the last read', async () => {
  const registry = new Registry();
  let samples: Sample[] = [
    [{ track: 'a' }, 1],
    [{ track: 'b' }, 2],
  ];
  const gauge = scrapedGauge(registry, 'test_now', 'help', ['track'], () => samples);
  const values = async () => (await gauge.get()).values.map((v) => [v.labels.track, v.value]);
  assert.deepEqual(await values(), [
    ['a', 1],
    ['b', 2],
  ]);
  samples = [[{ track: 'b' }, 7]];
  assert.deepEqual(await values(), [['b', 7]], 'a label set no longer read is gone');
});

test('perScrape reads once for every metric of one scrape, and again at the next scrape', async () => {
  const registry = new Registry();
  let reads = 0;
  const read = perScrape(() => ++reads);
  for (const name of ['one', 'two', 'three']) scrapedGauge(registry, `test_${name}`, 'help', [], () => [[{}, read()]]);
  const first = await registry.metrics();
  for (const name of ['one', 'two', 'three']) assert.match(first, new RegExp(`^test_${name} 1$`, 'm'));
  assert.equal(reads, 1);
  const second = await registry.metrics();
  for (const name of ['one', 'two', 'three']) assert.match(second, new RegExp(`^test_${name} 2$`, 'm'));
  assert.equal(reads, 2);
});
