/** What went wrong, by area: where to look first. */
export type PlayerErrorCategory = 'network' | 'content' | 'capability' | 'player';

/**
 * The one error class of the player: a category, a stable code for scripts, and a sentence for people
 * (shown as it is in the element).
 */
export class PlayerError extends Error {
  override name = 'PlayerError';

  constructor(
    readonly category: PlayerErrorCategory,
    /** e.g. ORIGIN_UNREACHABLE, NO_BROADCAST, DESCRIPTION_MALFORMED, NO_MODE, NO_MODE_PLAYED, MODE_FAILED. */
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
