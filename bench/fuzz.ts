/**
 * Fuzzing at length: every decoder of test/wire/fuzz-targets.ts (the wire codecs and the ISO BMFF
 * readers that take bytes from the network) fed a million inputs, random or damaged valid encodings,
 * in a worker that is stopped when one input hangs. Prints inputs/s per decoder and the machine; exits
 * non-zero, with the input at fault, when an error of another class than the decoder's escaped or an
 * input hung.
 *   npm run bench:fuzz [-- --seed N] [--inputs N] [--only <part of a decoder's name>]
 * A seed makes a run repeatable: decoder k uses seed N + k.
 */
import { parseArgs } from 'node:util';
import { FUZZ_TARGETS } from '../test/wire/fuzz-targets.js';
import { fuzzInWorker, type FuzzOutcome } from '../test/wire/fuzz-worker.js';
import { machine } from './machine.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: '1' },
    inputs: { type: 'string', default: '1000000' },
    only: { type: 'string' },
  },
});
const seed = Number(values.seed);
const inputs = Number(values.inputs);
if (!Number.isInteger(seed) || !Number.isInteger(inputs) || inputs < 1)
  throw new Error(`--seed and --inputs take integers (--inputs at least 1): ${values.seed}, ${values.inputs}`);

const runs = [...FUZZ_TARGETS.entries()]
  .filter(([, t]) => values.only === undefined || t.name.toLowerCase().includes(values.only.toLowerCase()))
  .map(([target]) => ({ target, seed: seed + target, inputs }));
if (runs.length === 0) throw new Error(`no decoder's name contains "${values.only}"`);

console.log(`machine: ${machine()}`);
console.log(`fuzz: ${inputs} inputs per decoder, seed ${seed}\n`);
const report = (o: FuzzOutcome) => {
  const rate = o.failure ? 'FAILED' : `${Math.round(o.inputs / o.seconds).toLocaleString('en')} inputs/s`;
  console.log(`${rate.padStart(18)}  ${o.name}`);
  if (o.failure) console.log(`${o.failure.replace(/^/gm, '    ')}\n`);
};
const started = performance.now();
const outcomes = await fuzzInWorker(runs, { stallMs: 10_000, onOutcome: report });
const failed = outcomes.filter((o) => o.failure);
console.log(
  `\n${outcomes.length} decoders, ${((performance.now() - started) / 1000).toFixed(0)} s; ${failed.length} failed`,
);
if (failed.length > 0) process.exitCode = 1;
