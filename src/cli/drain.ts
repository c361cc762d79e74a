/**
 * The operator's drain for `pushcast serve` and `pushcast relay`: on SIGTERM (when a successor is
 * configured) or on `POST /admin/drain`, every Warp session is sent a GOAWAY to the successor
 * (`WarpFanout.drain`: each finishes its segments under way, new sessions are refused 503 with
 * Retry-After), and the process exits once the last session has gone or at the bound (`--drain-timeout`).
 *
 * The admin endpoint exists only with an admin token (404 without one):
 * - `Authorization: Bearer <token>`, compared in constant time: 401 when missing or wrong;
 * - over TLS only (403 in clear: the token would have to travel in clear);
 * - `POST` begins the drain: the body may name the successor (`{"successor": "https://…"}`, JSON, at most
 *   `MAX_ADMIN_BODY_BYTES`), else `--successor`; 202 with what was done, 400 without a successor or with a
 *   body that is not one, 409 when a drain is under way already; `GET` says where the drain stands.
 * Every step is one console line, for whoever watches the process.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { WarpDrainReport } from '../warp/index.js';

export const ADMIN_DRAIN_PATH = '/admin/drain';
/** The largest request body the admin endpoint reads; a longer one is refused 413. */
export const MAX_ADMIN_BODY_BYTES = 4096;
export const DEFAULT_DRAIN_TIMEOUT_S = 30;
/** How often a drain under way says how many sessions are left. */
const PROGRESS_MS = 5000;

/** What a drain moves: a WarpServer or a WarpRelay. */
export interface Drainable {
  drain(successor: string, timeoutMs: number): Promise<WarpDrainReport>;
  stats(): { sessions: number };
}

export interface OperatorDrainOptions {
  successor?: string;
  timeoutSeconds: number;
  adminToken?: string;
  /** Absent when the process serves no Warp (`serve --no-warp`): a drain then only ends the process. */
  target: Drainable | undefined;
  log: (line: string) => void;
  /** Ends the process once the drain is over. */
  exit: (why: string) => unknown;
}

/** A request as the admin endpoint reads it: node's HTTP/1.1 and HTTP/2 requests (a stream) or pushcast's HTTP/3 one (`body`). */
export interface AdminRequest {
  method?: string;
  url?: string;
  headers: Record<string, string | string[] | undefined>;
  socket?: { encrypted?: boolean } | null;
  body?: Uint8Array;
  [Symbol.asyncIterator]?(): AsyncIterator<unknown>;
}

export interface AdminReply {
  writeHead(status: number, headers: Record<string, string>): { end(body: string): unknown };
}

export type DrainStart =
  | { ok: true; successor: string; sessions: number; timeoutSeconds: number }
  | { ok: false; status: 400 | 409; reason: string };

/** A successor as `--successor` or the admin body give it: an https URL. Throws with a one-line reason. */
export function checkSuccessor(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`the successor ${JSON.stringify(value)} is not a URL`);
  }
  if (url.protocol !== 'https:')
    throw new Error(`the successor must be an https URL (WebTransport), not ${JSON.stringify(value)}`);
  return url.href;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

export class OperatorDrain {
  private current: { successor: string; why: string; started: number; done: boolean } | undefined;

  constructor(private readonly o: OperatorDrainOptions) {
    if (o.successor !== undefined) o.successor = checkSuccessor(o.successor);
  }

  /** A successor is configured: SIGTERM drains rather than stops. */
  get hasSuccessor(): boolean {
    return this.o.successor !== undefined;
  }

  get draining(): boolean {
    return this.current !== undefined;
  }

  /** Begins the drain (`why`: what asked for it, for the log); refused when one is under way or no successor is known. */
  begin(why: string, successor = this.o.successor): DrainStart {
    if (this.current)
      return { ok: false, status: 409, reason: `already draining to ${this.current.successor} (${this.current.why})` };
    if (successor === undefined)
      return {
        ok: false,
        status: 400,
        reason: 'no successor: name one ({"successor": "https://…"}) or start with --successor',
      };
    const timeoutMs = this.o.timeoutSeconds * 1000;
    const started = Date.now();
    const drain = { successor, why, started, done: false };
    this.current = drain;
    const target = this.o.target;
    const sessions = target?.stats().sessions ?? 0;
    this.o.log(
      `drain (${why}): GOAWAY to ${sessions} Warp session(s), successor ${successor}; new sessions refused (503); exit when they have left or in ${this.o.timeoutSeconds} s`,
    );
    if (!target) {
      this.o.log('drain: no Warp here, nothing to move');
      drain.done = true;
      void this.o.exit('drained');
      return { ok: true, successor, sessions, timeoutSeconds: this.o.timeoutSeconds };
    }
    const progress = setInterval(() => {
      const left = target.stats().sessions;
      const seconds = Math.max(0, Math.ceil((started + timeoutMs - Date.now()) / 1000));
      this.o.log(`drain: ${left} session(s) still here, ${seconds} s left`);
    }, PROGRESS_MS);
    progress.unref();
    void target.drain(successor, timeoutMs).then((report) => {
      clearInterval(progress);
      drain.done = true;
      const seconds = (report.durationMs / 1000).toFixed(1);
      this.o.log(
        report.cut === 0
          ? `drain: all ${report.sessions} session(s) moved to ${successor} in ${seconds} s`
          : `drain: ${report.moved} session(s) moved, ${report.cut} cut at the ${this.o.timeoutSeconds} s bound with segments still under way`,
      );
      void this.o.exit('drained');
    });
    return { ok: true, successor, sessions, timeoutSeconds: this.o.timeoutSeconds };
  }

  /** Answers `ADMIN_DRAIN_PATH`; false for any other path. */
  handle(req: AdminRequest, res: AdminReply): boolean {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== ADMIN_DRAIN_PATH) return false;
    const reply = (status: number, body: object, headers: Record<string, string> = {}) =>
      res
        .writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers })
        .end(`${JSON.stringify(body)}\n`);
    const token = this.o.adminToken;
    if (token === undefined) {
      reply(404, { error: 'no admin endpoint here: start with --admin-token' });
      return true;
    }
    if (!req.socket?.encrypted) {
      reply(403, { error: 'the admin endpoint answers over TLS only' });
      return true;
    }
    const given = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ''))?.[1];
    // Digests first: equal lengths for timingSafeEqual, and no early exit on a length that differs.
    if (given === undefined || !timingSafeEqual(digest(given), digest(token))) {
      this.o.log(`admin: ${req.method} ${ADMIN_DRAIN_PATH} refused (${given === undefined ? 'no' : 'wrong'} token)`);
      reply(401, { error: 'Authorization: Bearer <admin token> needed' }, { 'www-authenticate': 'Bearer' });
      return true;
    }
    if (req.method === 'GET') {
      reply(200, {
        draining: this.draining,
        done: this.current?.done ?? false,
        successor: this.current?.successor ?? this.o.successor ?? null,
        sessions: this.o.target?.stats().sessions ?? 0,
      });
      return true;
    }
    if (req.method !== 'POST') {
      reply(405, { error: 'POST begins a drain, GET says where it stands' }, { allow: 'GET, POST' });
      return true;
    }
    void readBody(req).then(
      (body) => {
        let successor = this.o.successor;
        if (body.trim() !== '') {
          try {
            const named = (JSON.parse(body) as { successor?: unknown }).successor;
            if (named !== undefined) {
              if (typeof named !== 'string') throw new Error('"successor" must be a string');
              successor = checkSuccessor(named);
            }
          } catch (error) {
            reply(400, { error: `the body is not {"successor": "https://…"}: ${(error as Error).message}` });
            return;
          }
        }
        const started = this.begin('admin request', successor);
        if (!started.ok) reply(started.status, { error: started.reason });
        else
          reply(202, {
            draining: true,
            successor: started.successor,
            sessions: started.sessions,
            timeoutSeconds: started.timeoutSeconds,
          });
      },
      (error: Error) => reply(413, { error: error.message }),
    );
    return true;
  }
}

async function readBody(req: AdminRequest): Promise<string> {
  if (req.body) {
    if (req.body.length > MAX_ADMIN_BODY_BYTES) throw new Error(`a body of at most ${MAX_ADMIN_BODY_BYTES} bytes`);
    return new TextDecoder().decode(req.body);
  }
  const iterate = req[Symbol.asyncIterator];
  if (!iterate) return '';
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of { [Symbol.asyncIterator]: () => iterate.call(req) }) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk as Uint8Array);
    size += bytes.length;
    if (size > MAX_ADMIN_BODY_BYTES) throw new Error(`a body of at most ${MAX_ADMIN_BODY_BYTES} bytes`);
    chunks.push(bytes);
  }
  return Buffer.concat(chunks).toString('utf8');
}
