/**
 * The reason a Warp page cancels a receive stream with, so that its STOP_SENDING carries `code` (W3C
 * WebTransport: cancelling a receive stream with a WebTransportError sends its `streamErrorCode`).
 *
 * Browsers disagree on the constructor: Chromium takes one init dictionary, `{ message, streamErrorCode }`,
 * and throws a TypeError when given a message string; the W3C draft has `(message, { streamErrorCode })`.
 * Each form is tried, and an error is kept only when the code came through. When none works there is no
 * reason: the stream is still cancelled (STOP_SENDING with code 0), which is what giving up needs.
 * No DOM types here, so that Node tests can run it with stand-in constructors.
 */
type ErrorConstructor = new (...args: unknown[]) => { streamErrorCode?: number | null };

export function stopReason(ctor: unknown, code: number, message = 'not needed'): unknown {
  if (typeof ctor !== 'function') return undefined;
  const C = ctor as ErrorConstructor;
  const forms = [() => new C({ message, streamErrorCode: code }), () => new C(message, { streamErrorCode: code })];
  for (const make of forms) {
    try {
      const error = make();
      if (error.streamErrorCode === code) return error;
    } catch {
      // this browser's constructor takes the other form
    }
  }
  return undefined;
}
