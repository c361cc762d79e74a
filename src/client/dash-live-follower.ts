/**
 * Follows the live edge of a dynamic MPD (ISO/IEC 23009-1 §5.3.9.4: SegmentTemplate with @duration and
 * $Number$) over HTTP, for a sender that works from a remote origin or a CDN: each new segment of each
 * representation is fetched once it is complete and handed on with its response headers.
 *
 * Segment N of a representation is complete at availabilityStartTime + (N − startNumber + 1) × d
 * (§5.3.9.5.3, ignoring availabilityTimeOffset, which only says when its first chunks may be fetched);
 * it is asked for a little after that, and again every 250 ms while the origin answers 404, until the
 * segment after it is due.
 */
import type { NodeFetch } from './node-fetch.js';

export interface FollowedResource {
  representation: string;
  number: number | 'init';
  path: string;
  /** Response header fields worth repeating (lowercase). */
  headers: Record<string, string>;
  body: Uint8Array;
}

export interface DashLiveFollowerOptions {
  mpdUrl: string;
  fetch: NodeFetch;
  /** Only these representations; default all. */
  representations?: string[];
  /** Called with the representation's init segment and each new media segment, in order. */
  onSegment: (init: FollowedResource, segment: FollowedResource) => void;
  log?: (line: string) => void;
  now?: () => number;
}

export interface DashRepresentation {
  id: string;
  bandwidth: number;
}

interface Template {
  timescale: number;
  duration: number;
  startNumber: number;
  media: string;
  initialization: string;
}

const KEPT_HEADERS = ['content-type', 'cache-control', 'etag', 'last-modified', 'accept-ranges'];
/** After a segment's end, wait this long before asking for it (the origin publishes it at its end). */
const MARGIN_MS = 300;
const RETRY_MS = 250;

function attr(element: string, name: string): string | undefined {
  return new RegExp(`\\s${name}="([^"]*)"`).exec(element)?.[1];
}

export class DashLiveFollower {
  representations: DashRepresentation[] = [];
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly o: DashLiveFollowerOptions) {
    this.now = o.now ?? (() => Date.now());
  }

  /** Reads the MPD and starts following; resolves with the representations followed. */
  async start(): Promise<DashRepresentation[]> {
    const res = await this.o.fetch(this.o.mpdUrl);
    if (res.status !== 200) throw new Error(`${this.o.mpdUrl}: HTTP ${res.status}`);
    const mpd = await res.text();
    const root = /<MPD\b[^>]*>/.exec(mpd)?.[0];
    if (!root || attr(root, 'type') !== 'dynamic') throw new Error(`${this.o.mpdUrl} is not a dynamic MPD`);
    const ast = Date.parse(attr(root, 'availabilityStartTime') ?? '');
    if (!Number.isFinite(ast)) throw new Error(`${this.o.mpdUrl}: no availabilityStartTime`);
    const templateElement = /<SegmentTemplate\b[^>]*>/.exec(mpd)?.[0];
    const template: Template | undefined =
      templateElement === undefined
        ? undefined
        : {
            timescale: Number(attr(templateElement, 'timescale') ?? 1),
            duration: Number(attr(templateElement, 'duration')),
            startNumber: Number(attr(templateElement, 'startNumber') ?? 1),
            media: attr(templateElement, 'media') ?? '',
            initialization: attr(templateElement, 'initialization') ?? '',
          };
    if (!template || !(template.duration > 0) || !template.media.includes('$Number$'))
      throw new Error(`${this.o.mpdUrl}: only SegmentTemplate@duration with $Number$ is followed`);
    this.representations = [...mpd.matchAll(/<Representation\b[^>]*>/g)]
      .map((m) => ({ id: attr(m[0], 'id') ?? '', bandwidth: Number(attr(m[0], 'bandwidth') ?? 0) }))
      .filter((r) => r.id && (!this.o.representations || this.o.representations.includes(r.id)));
    if (this.representations.length === 0) throw new Error(`${this.o.mpdUrl}: no representation to follow`);
    const d = (template.duration / template.timescale) * 1000;
    // The newest complete segment now; following starts with the one after it.
    const first = template.startNumber + Math.floor((this.now() - ast) / d);
    for (const rep of this.representations) void this.follow(rep, template, ast, d, first);
    return this.representations;
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private url(template: string, rep: string, n?: number): URL {
    return new URL(
      template.replace(/\$RepresentationID\$/g, rep).replace(/\$Number\$/g, String(n ?? '')),
      this.o.mpdUrl,
    );
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(
        () => {
          this.timers.delete(t);
          resolve();
        },
        Math.max(0, ms),
      );
      this.timers.add(t);
    });
  }

  private async get(rep: string, number: number | 'init', url: URL): Promise<FollowedResource | undefined> {
    const res = await this.o.fetch(url.href);
    if (res.status !== 200) {
      await res.arrayBuffer().catch(() => undefined);
      return undefined;
    }
    const headers: Record<string, string> = {};
    for (const name of KEPT_HEADERS) {
      const value = res.headers.get(name);
      if (value !== null) headers[name] = value;
    }
    return { representation: rep, number, path: url.pathname, headers, body: new Uint8Array(await res.arrayBuffer()) };
  }

  private async follow(
    rep: DashRepresentation,
    template: Template,
    ast: number,
    d: number,
    first: number,
  ): Promise<void> {
    let init: FollowedResource | undefined;
    let initAt = 0;
    for (let n = first; !this.stopped; n++) {
      const due = ast + (n - template.startNumber + 1) * d + MARGIN_MS;
      await this.sleep(due - this.now());
      try {
        if (!init || this.now() - initAt > 60_000) {
          init = (await this.get(rep.id, 'init', this.url(template.initialization, rep.id))) ?? init;
          initAt = this.now();
        }
        let segment: FollowedResource | undefined;
        while (
          !this.stopped &&
          !(segment = await this.get(rep.id, n, this.url(template.media, rep.id, n))) &&
          this.now() < due + d
        )
          await this.sleep(RETRY_MS);
        if (segment && init) this.o.onSegment(init, segment);
        else if (!this.stopped)
          this.o.log?.(`${rep.id}: segment ${n} not available by ${new Date(due + d).toISOString()}; skipped`);
      } catch (error) {
        this.o.log?.(`${rep.id}: segment ${n}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }
}
