/**
 * The on-demand playlist page: plays the origin's items one after another with Media Source Extensions.
 *
 * Per item: `GET /video/<id>` (metadata: codecs, track files, segment index), one SourceBuffer per track,
 * the track files fetched by byte ranges that end on segment boundaries. The first range is exactly the one
 * the origin pushes with the metadata over HTTP/2 (`firstRange`), so a pushed response answers it. When an
 * item starts playing, the next item's metadata and first ranges are fetched ahead, and used when it starts.
 */

import { renderFigures, renderTable } from '../panel.js';
import type { ItemRecord, PlaylistStats } from './stats.js';

/** `GET /vod/items.json` (src/origin/vod/route.ts). */
interface ItemSummary {
  id: string;
  title: string;
  duration: number | null;
}

interface ByteRange {
  start: number;
  /** Inclusive, as in a Range header. */
  end: number;
}

/** `GET /video/<id>`, as far as the player reads it (VodMetadata in src/origin/vod/route.ts). */
interface ItemMetadata {
  id: string;
  title: string;
  duration: number;
  tracks: TrackMetadata[];
}

interface TrackMetadata {
  id: string;
  kind: 'video' | 'audio';
  codec: string;
  url: string;
  size: number;
  firstRange: ByteRange;
  segments: { start: number; duration: number; offset: number; size: number }[];
}

/** Later ranges: whole segments adding up to about this many bytes. */
const RANGE_BYTES = 1 << 20;
/** Fetching pauses while this much is buffered ahead, and what is this far behind is removed: bounded SourceBuffers. */
const MAX_AHEAD_SECONDS = 30;
const KEEP_BEHIND_SECONDS = 10;
const FETCH_ATTEMPTS = 3;
const MAX_ERRORS = 20;

const video = document.querySelector('video')!;
const panel = document.querySelector<HTMLElement>('#stats')!;
const itemTable = document.querySelector<HTMLTableSectionElement>('#items tbody')!;
video.muted = true; // autoplay policies allow muted playback without a gesture

let items: ItemSummary[] = [];
/** One per playlist item, so bounded by the playlist. */
const records: ItemRecord[] = [];
let currentIndex = -1;
let itemsPlayed = 0;
const errors: string[] = [];

function noteError(message: string): void {
  errors.push(`${new Date().toISOString()} ${message}`);
  if (errors.length > MAX_ERRORS) errors.shift();
}

// ---- fetching ----

async function fetchJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: ${res.status} ${(await res.text()).trim()}`);
  return (await res.json()) as T;
}

/** The bytes of `range`, retried on network errors and 5xx (a 503 while the origin packages is normal). */
async function fetchRange(url: string, range: ByteRange): Promise<ArrayBuffer> {
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(url, { headers: { Range: `bytes=${range.start}-${range.end}` } });
      if (res.status !== 206) {
        const retry = res.status >= 500;
        throw Object.assign(new Error(`${url} bytes ${range.start}-${range.end}: status ${res.status}`), { retry });
      }
      const bytes = await res.arrayBuffer();
      if (bytes.byteLength !== range.end - range.start + 1)
        throw new Error(`${url}: ${bytes.byteLength} bytes for range ${range.start}-${range.end}`);
      return bytes;
    } catch (err) {
      if (attempt >= FETCH_ATTEMPTS || (err as { retry?: boolean }).retry === false) throw err;
      await sleep(500 * attempt);
    }
  }
}

/**
 * The ranges to fetch of a track file: first exactly `firstRange` (what the origin pushes), then whole
 * segments grouped up to about RANGE_BYTES, each range starting where a segment starts.
 */
function planRanges(track: TrackMetadata): ByteRange[] {
  const ranges: ByteRange[] = [track.firstRange];
  let start = track.firstRange.end + 1;
  let end = start - 1;
  for (const s of track.segments) {
    if (s.offset < start) continue;
    end = s.offset + s.size - 1;
    if (end + 1 - start >= RANGE_BYTES) {
      ranges.push({ start, end });
      start = end + 1;
    }
  }
  if (start < track.size) ranges.push({ start, end: track.size - 1 });
  return ranges;
}

/** The next item's metadata and first ranges, fetched while the current one plays. */
interface Prefetch {
  id: string;
  metadata: Promise<ItemMetadata>;
  firstRanges: Promise<Map<string, ArrayBuffer>>;
}

/** At most one: the item after the one playing. */
let prefetched: Prefetch | undefined;

function prefetch(item: ItemSummary): Prefetch {
  const metadata = fetchJson<ItemMetadata>(`/video/${encodeURIComponent(item.id)}`);
  const firstRanges = metadata.then(
    async (m) =>
      new Map(await Promise.all(m.tracks.map(async (t) => [t.id, await fetchRange(t.url, t.firstRange)] as const))),
  );
  // Nobody may ever await these (the page closes first); a failure shows when the item starts.
  metadata.catch(() => {});
  firstRanges.catch(() => {});
  return { id: item.id, metadata, firstRanges };
}

// ---- playing ----

/** Appends one track's file to its SourceBuffer, range by range, keeping the buffer within bounds. */
class TrackLoader {
  constructor(
    private readonly buffer: SourceBuffer,
    private readonly track: TrackMetadata,
    private readonly firstPart?: ArrayBuffer,
  ) {}

  async load(isCurrent: () => boolean): Promise<void> {
    for (const [i, range] of planRanges(this.track).entries()) {
      if (!isCurrent()) return;
      await this.waitForRoom(isCurrent);
      const bytes = i === 0 && this.firstPart ? this.firstPart : await fetchRange(this.track.url, range);
      if (!isCurrent()) return;
      await this.append(bytes);
    }
  }

  private async waitForRoom(isCurrent: () => boolean): Promise<void> {
    while (isCurrent() && bufferedAhead(this.buffer.buffered) > MAX_AHEAD_SECONDS) {
      await sleep(500);
      const behind = video.currentTime - KEEP_BEHIND_SECONDS;
      if (behind > 0 && this.buffer.buffered.length && this.buffer.buffered.start(0) < behind)
        await this.update(() => this.buffer.remove(0, behind));
    }
  }

  private append(bytes: ArrayBuffer): Promise<void> {
    return this.update(() => this.buffer.appendBuffer(bytes));
  }

  private update(operation: () => void): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = () => {
        this.buffer.removeEventListener('updateend', done);
        this.buffer.removeEventListener('error', failed);
        resolve();
      };
      const failed = () => {
        this.buffer.removeEventListener('updateend', done);
        this.buffer.removeEventListener('error', failed);
        reject(new Error(`the ${this.track.kind} SourceBuffer rejected the media`));
      };
      this.buffer.addEventListener('updateend', done);
      this.buffer.addEventListener('error', failed);
      try {
        operation();
      } catch (err) {
        this.buffer.removeEventListener('updateend', done);
        this.buffer.removeEventListener('error', failed);
        reject(err);
      }
    });
  }
}

/** Plays item `index` to its end; the next item's data is prefetched once this one shows its first frame. */
async function playItem(item: ItemSummary, record: ItemRecord, index: number): Promise<void> {
  const dueAt = performance.now();
  currentIndex = index;
  record.state = 'loading';

  // Use what was fetched ahead for this item, if anything; if that failed, fetch as if nothing had been.
  const ahead = prefetched?.id === item.id ? prefetched : undefined;
  prefetched = undefined;
  let metadata: ItemMetadata | undefined;
  let firstParts = new Map<string, ArrayBuffer>();
  if (ahead) {
    try {
      metadata = await ahead.metadata;
      firstParts = await ahead.firstRanges;
      record.prefetched = true;
    } catch (err) {
      noteError(`prefetch of ${item.id} failed: ${(err as Error).message}`);
    }
  }
  metadata ??= await fetchJson<ItemMetadata>(`/video/${encodeURIComponent(item.id)}`);

  const mediaSource = new MediaSource();
  const objectUrl = URL.createObjectURL(mediaSource);
  try {
    video.src = objectUrl;
    await new Promise((resolve) => mediaSource.addEventListener('sourceopen', resolve, { once: true }));
    mediaSource.duration = metadata.duration;
    const loaders = metadata.tracks.map((t) => {
      const type = `${t.kind}/mp4; codecs="${t.codec}"`;
      if (!MediaSource.isTypeSupported(type)) throw new Error(`this browser cannot play ${type}`);
      return new TrackLoader(mediaSource.addSourceBuffer(type), t, firstParts.get(t.id));
    });
    const ended = new Promise((resolve) => video.addEventListener('ended', resolve, { once: true }));
    const isCurrent = () => currentIndex === index && video.src === objectUrl;
    void firstFrame(metadata.tracks.some((t) => t.kind === 'video')).then(() => {
      if (!isCurrent()) return;
      record.timeToFirstFrameMs = Math.round(performance.now() - dueAt);
      record.state = 'playing';
      const next = items[index + 1];
      if (next) prefetched = prefetch(next);
    });
    video.play().catch(() => {}); // starts as soon as data is there; autoplay is allowed for muted video
    await Promise.all(loaders.map((l) => l.load(isCurrent)));
    if (mediaSource.readyState === 'open') mediaSource.endOfStream();
    await ended;
    record.state = 'ended';
    itemsPlayed++;
  } finally {
    URL.revokeObjectURL(objectUrl);
  }
}

/** Resolves when the first frame is presented (requestVideoFrameCallback), or playback starts for audio only. */
function firstFrame(hasVideo: boolean): Promise<void> {
  return new Promise((resolve) => {
    if (hasVideo && 'requestVideoFrameCallback' in video) video.requestVideoFrameCallback(() => resolve());
    else video.addEventListener('playing', () => resolve(), { once: true });
  });
}

async function playAll(): Promise<void> {
  try {
    items = (await fetchJson<{ items: ItemSummary[] }>('/vod/items.json')).items;
  } catch (err) {
    return noteError(`cannot list the items: ${(err as Error).message}`);
  }
  records.push(
    ...items.map(
      (i): ItemRecord => ({ id: i.id, title: i.title, state: 'queued', prefetched: false, timeToFirstFrameMs: null }),
    ),
  );
  for (const [i, item] of items.entries()) {
    const record = records[i]!;
    try {
      await playItem(item, record, i);
    } catch (err) {
      record.state = 'failed';
      noteError(`${item.id}: ${(err as Error).message}`);
    }
  }
  currentIndex = -1;
}

// ---- the panel ----

function bufferedAhead(ranges: TimeRanges): number {
  const t = video.currentTime;
  for (let i = 0; i < ranges.length; i++) if (ranges.start(i) <= t + 0.1 && t < ranges.end(i)) return ranges.end(i) - t;
  return 0;
}

function snapshot(): PlaylistStats {
  const item = currentIndex >= 0 ? items[currentIndex] : undefined;
  return {
    mode: 'vod',
    current: item
      ? {
          id: item.id,
          title: item.title,
          index: currentIndex,
          currentTime: round(video.currentTime),
          duration: Number.isFinite(video.duration) ? round(video.duration) : null,
        }
      : null,
    buffer: item ? round(bufferedAhead(video.buffered)) : null,
    itemsPlayed,
    items: records.map((r) => ({ ...r })),
    errors: [...errors],
  };
}

// Not declared on Window: the live player page declares its own pushcastStats there.
(window as unknown as { pushcastStats: () => PlaylistStats }).pushcastStats = snapshot;

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

function render(): void {
  const s = snapshot();
  const rows: [string, string][] = [
    ['mode', 'on demand (MSE, byte ranges)'],
    [
      'current',
      s.current
        ? `${s.current.index + 1}. ${s.current.title} — ${s.current.currentTime.toFixed(1)} / ${s.current.duration?.toFixed(1) ?? '–'} s`
        : items.length
          ? 'done'
          : '–',
    ],
    ['buffer', s.buffer === null ? '–' : `${s.buffer.toFixed(2)} s`],
    ['items played', `${s.itemsPlayed} of ${items.length}`],
  ];
  if (s.errors.length) rows.push(['last error', s.errors.at(-1)!]);
  renderFigures(panel, rows);
  renderTable(
    itemTable,
    s.items.map((r, i) => {
      const from = r.state === 'queued' ? '' : r.prefetched ? 'prefetched data' : 'network';
      const ttff = r.timeToFirstFrameMs === null ? '' : `${r.timeToFirstFrameMs} ms`;
      return [String(i + 1), r.title, r.state, from, ttff];
    }),
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

setInterval(render, 500);
render();
void playAll();
