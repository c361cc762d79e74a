/**
 * Reading the player page from a test or bench, one way: `window.pushcastStats()` (src/web/player/stats.ts)
 * and waiting for a condition on it, with a deadline and the last snapshot's essentials in the message.
 */
import type { Page } from 'playwright-core';
import type { PlayerStats } from '../../src/web/player/stats.js';
import { until } from './wait.js';

/** The page's stats now; null before the player exists. */
export function playerStats(page: Page): Promise<PlayerStats | null> {
  return page.evaluate(() => (globalThis as unknown as { pushcastStats: () => PlayerStats | null }).pushcastStats());
}

/** Polls the page's stats until `ok` holds; fails naming `what` with the last snapshot's essentials. */
export function untilPlayerStats(
  page: Page,
  what: string,
  ok: (s: PlayerStats) => boolean,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<PlayerStats> {
  let last: PlayerStats | null = null;
  return until(
    what,
    async () => {
      last = await playerStats(page);
      return last !== null && ok(last) && last;
    },
    {
      timeoutMs: options.timeoutMs ?? 30_000,
      intervalMs: options.intervalMs ?? 200,
      detail: () =>
        JSON.stringify({
          state: last?.state,
          mode: last?.mode,
          message: last?.message,
          moves: last?.moves,
          attempts: last?.attempts,
          errors: last?.errors.slice(-5),
        }),
    },
  );
}
