import { METHODS } from 'node:http';

/** How many requests one route answered with one status, for one method over one protocol. */
export interface RequestCount {
  route: string;
  method: string;
  status: string;
  protocol: string;
  count: number;
}

/**
 * Methods counted by name: those node's HTTP/1.1 parser knows. HTTP/2 and HTTP/3 carry any token as
 * `:method`, so any other is counted as `other`: a client cannot grow the table with names of its own.
 */
const NAMED_METHODS = new Set(METHODS);

/** Requests answered, by route, method, status and protocol; routes and statuses are the origin's own. */
export class RequestCounts {
  private readonly rows = new Map<string, RequestCount>();

  count(route: string, method: string, status: number, protocol: string): void {
    const named = NAMED_METHODS.has(method) ? method : 'other';
    const key = `${route} ${named} ${status} ${protocol}`;
    const row = this.rows.get(key);
    if (row) row.count++;
    else this.rows.set(key, { route, method: named, status: String(status), protocol, count: 1 });
  }

  /** A copy of every row. */
  list(): RequestCount[] {
    return [...this.rows.values()].map((row) => ({ ...row }));
  }
}
