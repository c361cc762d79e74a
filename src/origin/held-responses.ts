import { CACHE_NONE, type OriginResponses } from './responses.js';
import type { Request, Response } from './route.js';

/**
 * The responses held open for live resources (waiting for the next segment to start, streaming a
 * growing one, waiting for an LL-HLS part or a blocking playlist reload): at most `max` at once, beyond
 * which a request is refused with 503 at once.
 */
export class HeldResponses {
  private readonly held = new Set<Response>();
  private closing = false;
  /** Requests refused at the bound, ever. */
  refused = 0;

  constructor(
    private readonly max: number,
    private readonly responses: OriginResponses,
    /** What is awaited, for the refusal's sentence. */
    private readonly what = 'live segments',
  ) {}

  /** Responses held now. */
  get size(): number {
    return this.held.size;
  }

  /** True when `res` may be held (or already is); false past the bound or once the origin closes. */
  hold(res: Response): boolean {
    if (this.held.has(res)) return true;
    if (this.held.size >= this.max || this.closing) return false;
    this.held.add(res);
    return true;
  }

  release(res: Response): void {
    this.held.delete(res);
  }

  refuse(req: Request, res: Response, route = 'segment'): void {
    this.refused++;
    this.responses.send(
      res,
      503,
      'text/plain',
      `too many requests waiting for ${this.what}\n`,
      { 'Retry-After': '1', 'Cache-Control': CACHE_NONE },
      req,
      route,
    );
  }

  /**
   * Aborts every held response, and holds no more. Aborted, not ended: ending them would hand a
   * client a truncated segment that looks complete.
   */
  abortAll(): void {
    this.closing = true;
    for (const res of this.held) res.destroy();
    this.held.clear();
  }
}
