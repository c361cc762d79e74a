import type { HttpRequest, HttpResponse } from '../listen/index.js';
import type { ServerPush } from './push/server-push.js';

/** A request over HTTP/1.1, HTTP/2 or (through its compatibility-shaped objects) HTTP/3. */
export type Request = HttpRequest;
export type Response = HttpResponse;

/** What the origin offers to routes mounted beside its own (e.g. on-demand items). */
export interface RouteContext {
  push: ServerPush;
  /** Headers every origin response carries (CORS, Timing-Allow-Origin), for responses a route writes itself. */
  headers(): Record<string, string>;
  /** Answers with headers common to every response (CORS) and counts the bytes. */
  send(
    res: Response,
    status: number,
    type: string,
    body: string | Uint8Array,
    headers: Record<string, string>,
    req: Request,
    route: string,
  ): void;
}

/** An extra route: answers a request of its own and returns its label for metrics, or false when it is not its own. */
export type Route = (req: Request, res: Response, ctx: RouteContext) => string | false;

/** The scheme a request came with: `https` over TLS (HTTP/1.1, HTTP/2, HTTP/3), else `http`. */
export function schemeOf(req: Request): 'https' | 'http' {
  return (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
}
