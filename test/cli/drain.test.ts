/**
 * The operator's drain (src/cli/drain.ts) with a stand-in for the Warp server: the admin endpoint's
 * answers (no endpoint without a token, TLS only, bearer token, methods, bodies and their bound), and a
 * drain that moves the sessions, says so on the console and ends the process once.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import {
  ADMIN_DRAIN_PATH,
  MAX_ADMIN_BODY_BYTES,
  OperatorDrain,
  type AdminRequest,
  type OperatorDrainOptions,
} from '../../src/cli/drain.js';
import type { WarpDrainReport } from '../../src/warp/index.js';
import { until } from '../support/wait.js';

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

function setup(o: Partial<OperatorDrainOptions> = {}) {
  const drains: { successor: string; timeoutMs: number }[] = [];
  const exits: string[] = [];
  const lines: string[] = [];
  let finish: (report: WarpDrainReport) => void = () => undefined;
  let sessions = 3;
  const drain = new OperatorDrain({
    timeoutSeconds: 20,
    adminToken: 's3cret',
    target: {
      stats: () => ({ sessions }),
      drain: (successor, timeoutMs) => {
        drains.push({ successor, timeoutMs });
        return new Promise((resolve) => (finish = resolve));
      },
    },
    log: (line) => lines.push(line),
    exit: (why) => exits.push(why),
    ...o,
  });
  /** One request; its answer once written. */
  const ask = (req: Partial<AdminRequest>): Promise<Answer> =>
    new Promise((resolve) => {
      const handled = drain.handle(
        { method: 'POST', url: ADMIN_DRAIN_PATH, headers: {}, socket: { encrypted: true }, ...req },
        {
          writeHead: (status, headers) => ({
            end: (body: string) => resolve({ status, headers, body: JSON.parse(body) as Record<string, unknown> }),
          }),
        },
      );
      assert.ok(handled);
    });
  const bearer = { authorization: 'Bearer s3cret' };
  return {
    drain,
    drains,
    exits,
    lines,
    ask,
    bearer,
    finish: (r: Partial<WarpDrainReport>) => {
      sessions = 0;
      finish({
        successor: '',
        sessions: 3,
        byTransport: { webtransport: 3, websocket: 0 },
        moved: 3,
        cut: 0,
        durationMs: 1200,
        ...r,
      });
    },
  };
}

test('the admin endpoint: none without a token (404), TLS only (403), the bearer token (401), its methods', async () => {
  const none = setup({ adminToken: undefined });
  assert.equal((await none.ask({ headers: none.bearer })).status, 404);
  const s = setup();
  assert.equal(
    s.drain.handle({ url: '/metrics', headers: {} }, { writeHead: () => assert.fail('not its path') }),
    false,
  );
  assert.equal((await s.ask({ headers: s.bearer, socket: { encrypted: false } })).status, 403);
  const missing = await s.ask({});
  assert.equal(missing.status, 401);
  assert.equal(missing.headers['www-authenticate'], 'Bearer');
  assert.equal((await s.ask({ headers: { authorization: 'Bearer s3cre' } })).status, 401);
  assert.equal((await s.ask({ headers: { authorization: 's3cret' } })).status, 401);
  assert.equal((await s.ask({ method: 'PUT', headers: s.bearer })).status, 405);
  assert.deepEqual((await s.ask({ method: 'GET', headers: s.bearer })).body, {
    draining: false,
    done: false,
    successor: null,
    sessions: 3,
  });
  assert.equal((await s.ask({ headers: s.bearer })).status, 400, 'no successor anywhere');
  assert.equal((await s.ask({ headers: s.bearer, body: new TextEncoder().encode('{"successor": 7}') })).status, 400);
  assert.equal(
    (await s.ask({ headers: s.bearer, body: new TextEncoder().encode('{"successor": "http://b.example"}') })).status,
    400,
    'not https',
  );
  assert.equal(
    (await s.ask({ headers: s.bearer, body: new Uint8Array(MAX_ADMIN_BODY_BYTES + 1).fill(32) })).status,
    413,
  );
  assert.deepEqual(s.drains, [], 'no drain begun by any of these');
  assert.deepEqual(s.lines, [
    `admin: POST ${ADMIN_DRAIN_PATH} refused (no token)`,
    `admin: POST ${ADMIN_DRAIN_PATH} refused (wrong token)`,
    `admin: POST ${ADMIN_DRAIN_PATH} refused (no token)`,
  ]);
});

test('POST /admin/drain with a successor in the body (read as a stream): the drain, its console lines, one exit', async () => {
  const s = setup({ successor: 'https://configured.example:8445' });
  const body = ['{"successor": ', '"https://b.example:8445/warp/live?token=b"}'].map((x) => Buffer.from(x));
  const answer = await s.ask({
    headers: s.bearer,
    async *[Symbol.asyncIterator]() {
      yield* body;
    },
  });
  assert.equal(answer.status, 202);
  assert.deepEqual(answer.body, {
    draining: true,
    successor: 'https://b.example:8445/warp/live?token=b',
    sessions: 3,
    timeoutSeconds: 20,
  });
  assert.deepEqual(s.drains, [{ successor: 'https://b.example:8445/warp/live?token=b', timeoutMs: 20_000 }]);
  const again = await s.ask({ headers: s.bearer });
  assert.equal(again.status, 409);
  assert.match(String(again.body.error), /already draining to https:\/\/b\.example:8445/);
  assert.deepEqual(s.drain.begin('SIGTERM'), {
    ok: false,
    status: 409,
    reason: 'already draining to https://b.example:8445/warp/live?token=b (admin request)',
  });
  assert.deepEqual(s.exits, [], 'the process waits for the sessions');
  s.finish({});
  await until('the exit', () => s.exits.length === 1);
  assert.deepEqual(s.exits, ['drained']);
  assert.deepEqual(s.lines, [
    'drain (admin request): GOAWAY to 3 Warp session(s), successor https://b.example:8445/warp/live?token=b; new sessions refused (503); exit when they have left or in 20 s',
    'drain: all 3 session(s) moved to https://b.example:8445/warp/live?token=b in 1.2 s',
  ]);
  assert.deepEqual((await s.ask({ method: 'GET', headers: s.bearer })).body, {
    draining: true,
    done: true,
    successor: 'https://b.example:8445/warp/live?token=b',
    sessions: 0,
  });
});

test('SIGTERM with --successor: the configured successor; the sessions cut at the bound are said', async () => {
  assert.throws(() => setup({ successor: 'ftp://b.example' }), /must be an https URL/);
  const s = setup({ successor: 'https://b.example:8445' });
  assert.equal(s.drain.hasSuccessor, true);
  const started = s.drain.begin('SIGTERM');
  assert.deepEqual(started, { ok: true, successor: 'https://b.example:8445/', sessions: 3, timeoutSeconds: 20 });
  s.finish({ moved: 2, cut: 1 });
  await until('the exit', () => s.exits.length === 1);
  assert.equal(s.lines.at(-1), 'drain: 2 session(s) moved, 1 cut at the 20 s bound with segments still under way');
  const bare = setup({ target: undefined, successor: 'https://b.example:8445' });
  assert.equal(bare.drain.begin('SIGTERM').ok, true);
  assert.deepEqual(bare.exits, ['drained'], 'no Warp here: the process ends at once');
});
