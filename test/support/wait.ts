/**
 * Waiting in tests and benches, one way: for a condition, an event or a promise, always with a deadline,
 * and on timeout an error that names what was awaited (never a silent return as if it had happened).
 *
 * ```ts
 * await until('the join', () => gateway.stats.sessions === 1);
 * const n = await until('segment 3', async () => (await newest()) >= 3 && (await newest()));
 * const [code] = await untilEvent('the close', ws, 'close');
 * const body = await within('the response body', res.arrayBuffer(), { timeoutMs: 2000 });
 * ```
 */
import type { EventEmitter } from 'node:events';

export interface WaitOptions {
  /** Give up after this long; default 10 s. */
  timeoutMs?: number;
  /** Time between two checks of a condition; default 10 ms. */
  intervalMs?: number;
  /** Appended to the timeout message: the state that explains it. */
  detail?: () => string;
}

/** A wait that ran out of time; its message names what was awaited. */
export class WaitTimeoutError extends Error {
  override name = 'WaitTimeoutError';
}

const DEFAULT_TIMEOUT_MS = 10_000;

function timeoutError(what: string, ms: number, detail?: () => string): WaitTimeoutError {
  return new WaitTimeoutError(`timed out after ${ms} ms waiting for ${what}${detail ? `: ${detail()}` : ''}`);
}

/**
 * Checks `condition` now and every `intervalMs` until it gives a value other than false, undefined or
 * null, and resolves with that value; throws a {@link WaitTimeoutError} after `timeoutMs`. An error the
 * condition throws ends the wait with that error.
 */
export async function until<T>(
  what: string,
  condition: () => T | Promise<T>,
  options: WaitOptions = {},
): Promise<Exclude<T, false | undefined | null>> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value !== false && value !== undefined && value !== null) return value as Exclude<T, false | undefined | null>;
    if (Date.now() >= deadline) throw timeoutError(what, timeoutMs, options.detail);
    await new Promise((resolve) => setTimeout(resolve, Math.min(options.intervalMs ?? 10, deadline - Date.now())));
  }
}

/** `promise`'s outcome, or a {@link WaitTimeoutError} naming `what` once `timeoutMs` has passed. */
export function within<T>(
  what: string,
  promise: Promise<T>,
  options: Omit<WaitOptions, 'intervalMs'> = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timeoutError(what, timeoutMs, options.detail)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

type Target = Pick<EventEmitter, 'on' | 'off'> | Pick<EventTarget, 'addEventListener' | 'removeEventListener'>;

/**
 * The arguments of the first `event` from `target` (a Node EventEmitter, or a DOM EventTarget: then
 * `[event]`) that `filter` accepts; a {@link WaitTimeoutError} naming `what` after `timeoutMs`.
 */
export function untilEvent<A extends unknown[] = unknown[]>(
  what: string,
  target: Target,
  event: string,
  options: Omit<WaitOptions, 'intervalMs'> & { filter?: (...args: A) => boolean } = {},
): Promise<A> {
  let off = () => {};
  const fired = new Promise<A>((resolve) => {
    const listener = (...args: unknown[]) => {
      if (options.filter && !options.filter(...(args as A))) return;
      off();
      resolve(args as A);
    };
    // An EventEmitter first: some (ws's WebSocket) offer addEventListener too, with other arguments.
    if ('on' in target) {
      target.on(event, listener);
      off = () => target.off(event, listener);
    } else {
      target.addEventListener(event, listener);
      off = () => target.removeEventListener(event, listener);
    }
  });
  return within(what, fired, options).finally(off);
}

/** Wall-clock time, ms since the epoch, with sub-millisecond resolution: the clock of {@link sleepUntil}. */
export function wallClock(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * Sleeps until wall-clock `time` ({@link wallClock}); returns at once if it has passed. With `spinMs`, the
 * timer wakes that much early and the rest is spun, for sub-millisecond precision (a benchmark's schedule).
 */
export async function sleepUntil(time: number, options: { spinMs?: number } = {}): Promise<void> {
  const spinMs = options.spinMs ?? 0;
  const coarse = time - wallClock() - spinMs;
  if (coarse > 0) await new Promise((resolve) => setTimeout(resolve, coarse));
  while (wallClock() < time) {
    // spin: at most spinMs
  }
}
