/**
 * The reason the Warp page cancels a receive stream with (src/web/warp/stop-reason.ts), against stand-ins
 * for the two WebTransportError constructors: Chromium's (one init dictionary; a message string is a
 * TypeError, as Chromium 156 throws) and the W3C draft's (message, options). Giving up a segment must
 * stop its stream in both, and never throw.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { stopReason } from '../../src/web/warp/stop-reason.js';

class ChromiumError extends Error {
  readonly streamErrorCode: number | null;
  constructor(init: unknown = {}) {
    if (typeof init !== 'object' || init === null)
      throw new TypeError(
        "Failed to construct 'WebTransportError': The provided value is not of type 'WebTransportErrorInit'.",
      );
    const { message = '', streamErrorCode = null } = init as { message?: string; streamErrorCode?: number };
    super(message);
    this.streamErrorCode = streamErrorCode;
  }
}

class DraftError extends Error {
  readonly streamErrorCode: number | null;
  constructor(message = '', options: { streamErrorCode?: number } = {}) {
    super(String(message));
    this.streamErrorCode = options.streamErrorCode ?? null;
  }
}

test('a stop reason with the code in either constructor form; none (no throw) where there is no WebTransportError', () => {
  for (const ctor of [ChromiumError, DraftError]) {
    const reason = stopReason(ctor, 3);
    assert.ok(reason instanceof ctor, ctor.name);
    assert.equal((reason as { streamErrorCode: number }).streamErrorCode, 3, ctor.name);
    assert.equal((reason as Error).message, 'not needed', ctor.name);
  }
  assert.equal(stopReason(undefined, 0), undefined);
  // A constructor that throws whatever it is given: no reason, and no exception either.
  const broken = function Broken() {
    throw new TypeError('no');
  };
  assert.equal(stopReason(broken, 0), undefined);
});

test('giving up a stream cancels it in every case (the reader is cancelled even without a reason)', async () => {
  for (const ctor of [ChromiumError, DraftError, undefined]) {
    let cancelled: unknown = 'not cancelled';
    const readable = new ReadableStream<Uint8Array>({ cancel: (reason) => void (cancelled = reason) });
    const reader = readable.getReader();
    await reader.cancel(stopReason(ctor, 0));
    assert.notEqual(cancelled, 'not cancelled', String(ctor?.name));
    if (ctor) assert.equal((cancelled as { streamErrorCode: number }).streamErrorCode, 0);
  }
});
