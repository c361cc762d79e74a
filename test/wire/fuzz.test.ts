/**
 * Every decoder that takes bytes from the network (test/wire/fuzz-targets.ts), fed random bytes and
 * damaged valid encodings, returns a value or throws the one error class it documents (WireError for
 * the wire codecs, BmffError for the ISO BMFF readers): never another exception, never a hang (the
 * targets run in a worker, which is stopped, and the target failed, when one input takes 2 s). A fixed
 * seed and a few thousand inputs per decoder here; `npm run bench:fuzz` runs a million of each.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { FUZZ_TARGETS } from './fuzz-targets.js';
import { fuzzInWorker } from './fuzz-worker.js';
import { Rng, hex } from './support.js';

const INPUTS = 5000;
const SEED = 1;

const outcomes = fuzzInWorker(
  FUZZ_TARGETS.map((_, target) => ({ target, seed: SEED + target, inputs: INPUTS })),
  { stallMs: 2000 },
);

for (const [target, { name }] of FUZZ_TARGETS.entries()) {
  test(`fuzz: ${name}`, async () => {
    const outcome = (await outcomes)[target]!;
    assert.equal(outcome.failure, undefined, outcome.failure);
    assert.equal(outcome.inputs, INPUTS);
  });
}

test("fuzz: every corpus entry decodes (with some of its decoder's options), so that damaged copies reach deep", () => {
  for (const target of FUZZ_TARGETS) {
    for (const entry of target.corpus) {
      const errors: unknown[] = [];
      for (let seed = 0; seed < 16 && errors.length === seed; seed++) {
        try {
          target.decode(entry, new Rng(seed));
        } catch (error) {
          errors.push(error);
        }
      }
      assert.ok(errors.length < 16, `${target.name}: ${hex(entry)} never decodes: ${String(errors[0])}`);
    }
  }
});
