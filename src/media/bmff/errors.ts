/**
 * Malformed or unsupported ISO BMFF input. Names the offending box and where it starts, so that an
 * operator looking at an encoder's output can find the bytes with any hex dumper.
 */
export class BmffError extends Error {
  override readonly name = 'BmffError';

  /**
   * @param detail what is wrong, e.g. `sample count 9999 exceeds box size`
   * @param box the four-character type of the offending box
   * @param offset byte offset of that box from the start of the input stream (not of a local buffer)
   */
  constructor(
    readonly detail: string,
    readonly box: string,
    readonly offset: number,
  ) {
    super(`malformed '${box}' box at byte ${offset}: ${detail}`);
  }
}
