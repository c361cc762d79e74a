/**
 * The on-demand library: the catalog of a folder and, per item, its package — made on first use, shared by
 * every request that arrives while it is being made, kept on disk across restarts, remade when the file
 * changes.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ffprobeBeside, scanMediaFolder, type VodItem } from './catalog.js';
import {
  PackagingError,
  packageMedia,
  readPackage,
  trackFilePath,
  type PackageIndex,
  type SourceStamp,
  type VodTrackId,
} from './packaging.js';

export interface VodLibraryOptions {
  /** The folder whose media files are served. */
  dir: string;
  /** Where packages are kept, one folder per item (`<cacheDir>/<id>/`). */
  cacheDir: string;
  ffmpegPath?: string;
  /** Default: the ffprobe beside `ffmpegPath`. */
  ffprobePath?: string;
  /** Segment duration of packages, seconds (default 2). */
  segmentDuration?: number;
  /** Per packaging job; default 60 s plus the item's duration. */
  packagingTimeoutMs?: number;
  /** ffmpeg runs at once (default 1: the live encoder needs the rest of the machine). */
  maxConcurrentJobs?: number;
  /** Requests waiting for a package at once; beyond, 503 + Retry-After (default 256). */
  maxWaitingRequests?: number;
  /** Items in the catalog at most (default 1000). */
  maxItems?: number;
  /** After a failed job, requests get the same error for this long before packaging is tried again (default 10 s). */
  retryAfterFailureMs?: number;
  log?: (line: string) => void;
}

/** A request the library cannot satisfy, with the HTTP status that says why. */
export class VodError extends Error {
  constructor(
    readonly status: 404 | 502 | 503,
    message: string,
    /** Seconds, for `Retry-After`. */
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

/** A complete package of one item. Immutable: a new source file gives a new package object. */
export interface VodPackage {
  readonly item: VodItem;
  /** The folder holding `<track>.mp4` and `index.json`. */
  readonly dir: string;
  readonly index: PackageIndex;
  /** Changes whenever any byte of the package does; the base of the tracks' ETags. */
  readonly tag: string;
  /**
   * The inode of each track file as packaged. A repackaging renames new files over these; a request that
   * holds this package object checks the inode of what it opened, so it never sends new bytes under the
   * old package's ETag.
   */
  readonly inodes: Readonly<Partial<Record<VodTrackId, number>>>;
}

interface Failure {
  error: VodError;
  stamp: SourceStamp;
  at: number;
}

/**
 * Every map here is keyed by catalog ids, never by anything a request makes up, so each holds at most one
 * entry per item (`maxItems`); requests for unknown ids are refused before touching them.
 */
export class VodLibrary {
  readonly items: readonly VodItem[];
  private readonly byId: ReadonlyMap<string, VodItem>;
  private readonly packages = new Map<string, VodPackage>();
  private readonly jobs = new Map<string, Promise<VodPackage>>();
  private readonly failures = new Map<string, Failure>();
  /** Jobs waiting for an ffmpeg slot: at most one per item, since an item has at most one job. */
  private readonly slotQueue: (() => void)[] = [];
  private running = 0;
  private waiting = 0;
  private readonly aborter = new AbortController();
  private readonly ffmpegPath: string;
  private readonly ffprobePath: string;
  private readonly segmentDuration: number;
  private readonly log: (line: string) => void;
  /** ffmpeg packaging runs started since this library was opened. */
  packagingRuns = 0;

  static async open(o: VodLibraryOptions): Promise<VodLibrary> {
    const ffmpegPath = o.ffmpegPath ?? 'ffmpeg';
    const items = await scanMediaFolder(o.dir, {
      ffprobePath: o.ffprobePath ?? ffprobeBeside(ffmpegPath),
      maxItems: o.maxItems ?? 1000,
      log: o.log ?? (() => {}),
    });
    return new VodLibrary(items, o);
  }

  private constructor(
    items: VodItem[],
    private readonly o: VodLibraryOptions,
  ) {
    this.items = items;
    this.byId = new Map(items.map((i) => [i.id, i]));
    this.ffmpegPath = o.ffmpegPath ?? 'ffmpeg';
    this.ffprobePath = o.ffprobePath ?? ffprobeBeside(this.ffmpegPath);
    this.segmentDuration = o.segmentDuration ?? 2;
    this.log = o.log ?? (() => {});
  }

  item(id: string): VodItem | undefined {
    return this.byId.get(id);
  }

  /** The last package made for `id`, without looking at its file again (media requests); undefined before the first. */
  ready(id: string): VodPackage | undefined {
    return this.packages.get(id);
  }

  /** Packaging jobs in progress or queued, and requests waiting for them: for metrics and tests. */
  get pending(): { jobs: number; waitingRequests: number; failures: number } {
    return { jobs: this.jobs.size, waitingRequests: this.waiting, failures: this.failures.size };
  }

  /**
   * The package of `id`, up to date with its file: made on first use (or read back from the cache folder),
   * remade when the file's size or modification time changed. Concurrent calls share one job.
   * Throws a VodError: 404 unknown id or file gone, 502 packaging failed, 503 too many requests waiting.
   */
  async package(id: string): Promise<VodPackage> {
    const item = this.byId.get(id);
    if (!item) throw new VodError(404, 'no such item');
    const source = await this.stampOf(item);
    const current = this.packages.get(id);
    if (current && sameSource(current.index.source, source)) return current;
    if (this.waiting >= (this.o.maxWaitingRequests ?? 256))
      throw new VodError(503, 'too many requests are waiting for packaging', 5);
    this.waiting++;
    try {
      return await this.job(item, source);
    } finally {
      this.waiting--;
    }
  }

  private job(item: VodItem, source: SourceStamp): Promise<VodPackage> {
    const running = this.jobs.get(item.id);
    if (running) return running;
    const failure = this.failures.get(item.id);
    if (
      failure &&
      sameSource(failure.stamp, source) &&
      Date.now() - failure.at < (this.o.retryAfterFailureMs ?? 10_000)
    ) {
      return Promise.reject(failure.error);
    }
    const job = this.build(item, source).then(
      (pkg) => {
        this.packages.set(item.id, pkg);
        this.failures.delete(item.id);
        return pkg;
      },
      (err: Error) => {
        const error = new VodError(
          502,
          `packaging ${item.title} failed: ${err instanceof PackagingError ? err.message : String(err)}`,
        );
        this.failures.set(item.id, { error, stamp: source, at: Date.now() });
        this.log(`vod: ${error.message}`);
        throw error;
      },
    );
    const shared = job.finally(() => this.jobs.delete(item.id));
    this.jobs.set(item.id, shared);
    return shared;
  }

  private async build(item: VodItem, source: SourceStamp): Promise<VodPackage> {
    const dir = join(this.o.cacheDir, item.id);
    const kept = await readPackage(dir, source, this.segmentDuration);
    if (kept) return makePackage(item, dir, kept);
    const release = await this.slot();
    try {
      if (this.aborter.signal.aborted) throw new PackagingError('the origin is closing');
      this.packagingRuns++;
      const started = Date.now();
      this.log(`vod: packaging ${basename(item.path)} as ${item.id}`);
      const index = await packageMedia(item.path, source, dir, {
        ffmpegPath: this.ffmpegPath,
        ffprobePath: this.ffprobePath,
        segmentDuration: this.segmentDuration,
        timeoutMs: this.o.packagingTimeoutMs,
        signal: this.aborter.signal,
      });
      const tracks = index.tracks.map((t) => `${t.id} ${t.codec} ${t.segments.length} segments`).join(', ');
      this.log(
        `vod: packaged ${item.id} (${index.duration.toFixed(1)} s: ${tracks}) in ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
      return makePackage(item, dir, index);
    } finally {
      release();
    }
  }

  /** Waits for one of `maxConcurrentJobs` ffmpeg slots; returns its release. */
  private async slot(): Promise<() => void> {
    if (this.running >= (this.o.maxConcurrentJobs ?? 1))
      await new Promise<void>((resolve) => this.slotQueue.push(resolve));
    else this.running++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      // Hand the slot straight to the next job, or give it back.
      const next = this.slotQueue.shift();
      if (next) next();
      else this.running--;
    };
  }

  private async stampOf(item: VodItem): Promise<SourceStamp> {
    try {
      const s = await stat(item.path);
      return { name: basename(item.path), size: s.size, mtimeMs: s.mtimeMs };
    } catch {
      throw new VodError(404, 'the file of this item is gone');
    }
  }

  /** Kills running ffmpeg jobs (their requests get 502); for shutting the origin down. */
  close(): void {
    this.aborter.abort();
  }
}

function sameSource(a: SourceStamp, b: SourceStamp): boolean {
  return a.name === b.name && a.size === b.size && a.mtimeMs === b.mtimeMs;
}

async function makePackage(item: VodItem, dir: string, index: PackageIndex): Promise<VodPackage> {
  const tag = createHash('sha256').update(JSON.stringify(index)).digest('base64url').slice(0, 16);
  const inodes: Partial<Record<VodTrackId, number>> = {};
  for (const t of index.tracks) inodes[t.id] = (await stat(trackFilePath(dir, t.id))).ino;
  return { item, dir, index, tag, inodes };
}
