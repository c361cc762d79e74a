/**
 * Runs fuzz targets (fuzz-targets.ts) in a worker thread, so that a decoder that hangs is caught: before
 * decoding an input the worker copies it into memory shared with the main thread, and after it counts
 * it; the main thread ends the worker once the count has not moved for `stallMs`, reports the input it
 * was stuck on, and goes on with the next target in a new worker. An error of another class than the
 * decoder's escaping is reported with its input, and the worker goes on with the next target.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { FUZZ_TARGETS, fuzzInput } from './fuzz-targets.js';
import { Rng, hex } from './support.js';

export interface FuzzRun {
  /** An index into FUZZ_TARGETS. */
  target: number;
  seed: number;
  inputs: number;
}

export interface FuzzOutcome {
  target: number;
  name: string;
  /** Inputs decoded; fewer than asked for when `failure` is set. */
  inputs: number;
  seconds: number;
  /** What went wrong: an error of another class escaped, or an input hung, with the input in hex. */
  failure?: string;
}

/** Inputs longer than this are copied in part (their first bytes) for the report of a hang. */
const MAX_RECORDED_INPUT = 64 * 1024;
/** Shared memory: [run index, inputs done, length of the current input], then the input. */
const HEADER_BYTES = 12;

/**
 * Runs every run in order, one worker for all of them (but a new one after a hang). `onOutcome` sees
 * each outcome as it comes, e.g. for a benchmark's progress.
 */
export async function fuzzInWorker(
  runs: readonly FuzzRun[],
  options: { stallMs: number; onOutcome?: (outcome: FuzzOutcome) => void },
): Promise<FuzzOutcome[]> {
  const outcomes: FuzzOutcome[] = [];
  const add = (outcome: FuzzOutcome) => {
    outcomes.push(outcome);
    options.onOutcome?.(outcome);
  };
  while (outcomes.length < runs.length) await runWorker(runs.slice(outcomes.length), options.stallMs, add);
  return outcomes;
}

/** One worker, from the first of `runs` until the last or a hang (then the outcomes stop at the hung run). */
function runWorker(
  runs: readonly FuzzRun[],
  stallMs: number,
  onOutcome: (outcome: FuzzOutcome) => void,
): Promise<void> {
  const shared = new SharedArrayBuffer(HEADER_BYTES + MAX_RECORDED_INPUT);
  const progress = new Int32Array(shared, 0, 3);
  const worker = new Worker(new URL(import.meta.url), { workerData: { runs, shared } });
  let outcomes = 0;
  return new Promise<void>((resolve, reject) => {
    let seen = -1;
    let since = performance.now();
    const watch = setInterval(
      () => {
        const done = Atomics.load(progress, 1) + Atomics.load(progress, 0) * 2 ** 31;
        if (done !== seen) {
          seen = done;
          since = performance.now();
          return;
        }
        if (performance.now() - since < stallMs) return;
        const run = runs[Atomics.load(progress, 0)]!;
        const length = Atomics.load(progress, 2);
        const input = new Uint8Array(shared, HEADER_BYTES, Math.min(length, MAX_RECORDED_INPUT)).slice();
        outcomes++;
        onOutcome({
          target: run.target,
          name: FUZZ_TARGETS[run.target]!.name,
          inputs: Atomics.load(progress, 1),
          seconds: NaN,
          failure: `no progress for ${stallMs} ms (seed ${run.seed}) on an input of ${length} bytes: ${hex(input)}`,
        });
        finish();
      },
      Math.min(250, stallMs / 4),
    );
    let settled = false;
    const finish = (error?: Error) => {
      settled = true;
      clearInterval(watch);
      void worker.terminate();
      if (error) reject(error);
      else resolve();
    };
    worker.on('message', (outcome: FuzzOutcome) => {
      if (settled) return; // a run's outcome that crossed the report of a hang
      outcomes++;
      onOutcome(outcome);
      if (outcomes === runs.length) finish();
    });
    worker.once('error', (error) => {
      if (!settled) finish(error);
    });
    worker.once('exit', (code) => {
      if (!settled && outcomes < runs.length) finish(new Error(`the fuzz worker exited (${code})`));
    });
  });
}

/** The worker's side: the inputs of each run, each recorded before it is decoded. */
function runInWorker(runs: readonly FuzzRun[], shared: SharedArrayBuffer): void {
  const progress = new Int32Array(shared, 0, 3);
  const recorded = new Uint8Array(shared, HEADER_BYTES);
  for (const [index, run] of runs.entries()) {
    const target = FUZZ_TARGETS[run.target]!;
    Atomics.store(progress, 1, 0);
    Atomics.store(progress, 0, index);
    const rng = new Rng(run.seed);
    const started = performance.now();
    let failure: string | undefined;
    let i = 0;
    for (; i < run.inputs; i++) {
      const input = fuzzInput(rng, target);
      recorded.set(input.subarray(0, MAX_RECORDED_INPUT));
      Atomics.store(progress, 2, input.length);
      try {
        target.decode(input, rng);
      } catch (error) {
        if (!(error instanceof target.error)) {
          const what = error instanceof Error ? (error.stack ?? String(error)) : String(error);
          failure = `${what}\n(seed ${run.seed}, input ${i}) on ${hex(input)}`;
          break;
        }
      }
      Atomics.store(progress, 1, i + 1);
    }
    const outcome: FuzzOutcome = {
      target: run.target,
      name: target.name,
      inputs: i,
      seconds: (performance.now() - started) / 1000,
      failure,
    };
    parentPort!.postMessage(outcome);
  }
}

if (!isMainThread && (workerData as { runs?: FuzzRun[] } | undefined)?.runs) {
  const { runs, shared } = workerData as { runs: FuzzRun[]; shared: SharedArrayBuffer };
  runInWorker(runs, shared);
}
