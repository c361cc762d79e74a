/**
 * Fuzzing at length: every decoder of test/wire/fuzz-targets.ts (the wire codecs and the ISO BMFF
 * readers that take bytes from the network) fed a million inputs, random or damaged valid encodings,
 * in a worker that is stopped when one input hangs. Prints inputs/s per decoder and the machine, and
 * writes them between the fuzz markers of README.md (`--doc <file>`, or `none`; a run of some decoders
 * only, `--only`, writes nothing unless given `--doc`); exits non-zero, with the input at fault, when an
 * error of another class than the decoder's escaped or an input hung.
 *   npm run bench:fuzz [-- --seed N] [--inputs N] [--only <part of a decoder's name>] [--doc <file> | none]
 * A seed makes a run repeatable: decoder k uses seed N + k.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FUZZ_TARGETS } from '../test/wire/fuzz-targets.js';
import { fuzzInWorker, type FuzzOutcome } from '../test/wire/fuzz-worker.js';
import { writeDocSection } from './doc-section.js';
import { machine } from './machine.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: '1' },
    inputs: { type: 'string', default: '1000000' },
    only: { type: 'string' },
    doc: { type: 'string' },
  },
});
const seed = Number(values.seed);
const inputs = Number(values.inputs);
if (!Number.isInteger(seed) || !Number.isInteger(inputs) || inputs < 1)
  throw new Error(`--seed and --inputs take integers (--inputs at least 1): ${values.seed}, ${values.inputs}`);
const doc = values.doc ?? (values.only === undefined ? 'README.md' : 'none');

const runs = [...FUZZ_TARGETS.entries()]
  .filter(([, t]) => values.only === undefined || t.name.toLowerCase().includes(values.only.toLowerCase()))
  .map(([target]) => ({ target, seed: seed + target, inputs }));
if (runs.length === 0) throw new Error(`no decoder's name contains "${values.only}"`);

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const rate = (o: FuzzOutcome) => Math.round(o.inputs / o.seconds).toLocaleString('en');

function commandLine(): string {
  const given = process.argv.slice(2).join(' ');
  return process.env.npm_lifecycle_event === 'bench:fuzz'
    ? `npm run bench:fuzz${given ? ` -- ${given}` : ''}`
    : `node build/bench/fuzz.js${given ? ` ${given}` : ''}`;
}

/** The README's section: what ran, on what, and a row per decoder. */
function markdown(outcomes: readonly FuzzOutcome[], seconds: number, failed: number): string {
  const total = outcomes.reduce((n, o) => n + o.inputs, 0);
  return [
    `\`${commandLine()}\`, ${new Date().toISOString().slice(0, 10)}: ${outcomes.length} decoders × ${inputs.toLocaleString('en')} inputs, seed ${seed}; ${total.toLocaleString('en')} inputs in ${seconds.toFixed(0)} s; ${failed === 0 ? 'no failure' : `**${failed} failed**`}.`,
    `Machine: ${machine()}.`,
    '',
    '| decoder | inputs | inputs/s | outcome |',
    '| --- | ---: | ---: | --- |',
    ...outcomes.map(
      (o) =>
        `| ${o.name} | ${o.inputs.toLocaleString('en')} | ${rate(o)} | ${o.failure ? `failed: ${o.failure.split('\n')[0]!.replace(/\|/g, '\\|')}` : 'ok'} |`,
    ),
  ].join('\n');
}

console.log(`machine: ${machine()}`);
console.log(`fuzz: ${inputs} inputs per decoder, seed ${seed}\n`);
const report = (o: FuzzOutcome) => {
  console.log(`${(o.failure ? 'FAILED' : `${rate(o)} inputs/s`).padStart(18)}  ${o.name}`);
  if (o.failure) console.log(`${o.failure.replace(/^/gm, '    ')}\n`);
};
const started = performance.now();
const outcomes = await fuzzInWorker(runs, { stallMs: 10_000, onOutcome: report });
const seconds = (performance.now() - started) / 1000;
const failed = outcomes.filter((o) => o.failure);
console.log(`\n${outcomes.length} decoders, ${seconds.toFixed(0)} s; ${failed.length} failed`);
if (doc !== 'none') {
  const file = join(REPO, doc);
  writeDocSection({
    file,
    name: 'fuzz',
    writer: 'bench/fuzz.ts',
    body: markdown(outcomes, seconds, failed.length),
    title: 'Fuzzing',
  });
  console.log(`wrote ${file}`);
}
if (failed.length > 0) process.exitCode = 1;
