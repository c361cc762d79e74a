/**
 * The on-demand items of a folder: which files there are, under which ids, and what ffprobe says they hold.
 * An id is made from the file name once, when the folder is scanned; a request only ever names an id, and
 * the file behind it comes from this list, so no path from a request ever reaches the file system.
 */
import { execFile } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';

/** One media file offered as an on-demand item. */
export interface VodItem {
  /** `[a-z0-9-]{1,64}`, unique in the catalog; the URL component (`/video/<id>`). */
  readonly id: string;
  /** The file name without its extension. */
  readonly title: string;
  readonly path: string;
  /** Seconds, as ffprobe reads it from the container; null when the container does not say. */
  readonly duration: number | null;
}

/** What a packaging job needs to know about a file's streams. */
export interface MediaProbe {
  duration: number | null;
  /** The first video stream that is not a cover picture. */
  video?: { width: number; height: number };
  audio: boolean;
}

export const ITEM_ID = /^[a-z0-9-]{1,64}$/;
const SLUG_MAX = 56; // leaves room for a "-NNN" suffix within the 64 characters of ITEM_ID

/** Containers ffmpeg reads that can hold video or audio; anything else in the folder is ignored. */
const MEDIA_EXTENSIONS = new Set([
  '.mp4',
  '.m4v',
  '.mov',
  '.mkv',
  '.webm',
  '.ts',
  '.m2ts',
  '.mts',
  '.avi',
  '.flv',
  '.mpg',
  '.mpeg',
  '.ogv',
  '.3gp',
  '.wmv',
  '.m4a',
  '.mp3',
  '.aac',
  '.wav',
  '.flac',
  '.ogg',
  '.opus',
]);

/** `Café Talk (2024).mp4` → `cafe-talk-2024`: lower-case ASCII letters and digits joined by single dashes. */
export function slugify(fileName: string): string {
  const stem = fileName.slice(0, fileName.length - extname(fileName).length);
  const slug = stem
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '') // the accents NFKD split off
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .slice(0, SLUG_MAX)
    .replace(/^-+|-+$/g, '');
  return slug || 'item';
}

/**
 * Unique ids for `fileNames`, in the order given: a name whose slug is taken gets `-2`, `-3`, …. Callers sort
 * the names first so that the same folder gives the same ids on every start.
 */
export function itemIds(fileNames: readonly string[]): string[] {
  const taken = new Set<string>();
  return fileNames.map((name) => {
    const slug = slugify(name);
    let id = slug;
    for (let n = 2; taken.has(id); n++) id = `${slug}-${n}`;
    taken.add(id);
    return id;
  });
}

export interface ScanOptions {
  ffprobePath: string;
  /** Items kept at most; files beyond (in name order) are left out and logged. */
  maxItems: number;
  log: (line: string) => void;
}

/**
 * The media files directly in `dir` (not in subfolders), in name order, each with an id. A file that ffprobe
 * cannot read, or that has neither video nor audio, is left out with a log line.
 */
export async function scanMediaFolder(dir: string, o: ScanOptions): Promise<VodItem[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const names = entries
    .filter(
      (e) =>
        (e.isFile() || e.isSymbolicLink()) &&
        MEDIA_EXTENSIONS.has(extname(e.name).toLowerCase()) &&
        !e.name.startsWith('.'),
    )
    .map((e) => e.name)
    .sort();
  const probes = await mapLimited(names, 2, async (name) => {
    const path = join(dir, name);
    try {
      if (!(await stat(path)).isFile()) return undefined;
      const probe = await probeMedia(path, o.ffprobePath);
      if (!probe.video && !probe.audio) throw new Error('no video or audio stream');
      return { name, path, probe };
    } catch (err) {
      o.log(`vod: skipping ${name}: ${(err as Error).message}`);
      return undefined;
    }
  });
  const usable = probes.filter((p) => p !== undefined);
  if (usable.length > o.maxItems)
    o.log(`vod: ${usable.length} media files in ${dir}; serving the first ${o.maxItems} by name`);
  const kept = usable.slice(0, o.maxItems);
  const ids = itemIds(kept.map((p) => p.name));
  return kept.map((p, i) => ({
    id: ids[i]!, // one id per name
    title: p.name.slice(0, p.name.length - extname(p.name).length),
    path: p.path,
    duration: p.probe.duration,
  }));
}

/** ffprobe next to an ffmpeg given by path (`/opt/ff/bin/ffmpeg` → `/opt/ff/bin/ffprobe`), else from PATH. */
export function ffprobeBeside(ffmpegPath: string): string {
  return basename(ffmpegPath) === 'ffmpeg' && ffmpegPath.includes('/')
    ? join(dirname(ffmpegPath), 'ffprobe')
    : 'ffprobe';
}

const PROBE_TIMEOUT_MS = 20_000;

/** The streams of a media file, from `ffprobe -of json`. */
export function probeMedia(path: string, ffprobePath: string): Promise<MediaProbe> {
  const args = [
    '-v',
    'error',
    '-show_entries',
    'format=duration:stream=codec_type,width,height:stream_disposition=attached_pic',
    '-of',
    'json',
    path,
  ];
  return new Promise((resolve, reject) => {
    execFile(ffprobePath, args, { timeout: PROBE_TIMEOUT_MS, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`ffprobe: ${String(stderr).trim().split('\n').at(-1) || err.message}`));
      try {
        resolve(readProbe(JSON.parse(stdout) as FfprobeOutput));
      } catch (parseError) {
        reject(new Error(`ffprobe: unreadable output (${(parseError as Error).message})`));
      }
    });
  });
}

interface FfprobeOutput {
  format?: { duration?: string };
  streams?: { codec_type?: string; width?: number; height?: number; disposition?: { attached_pic?: number } }[];
}

function readProbe(out: FfprobeOutput): MediaProbe {
  const streams = out.streams ?? [];
  // A cover picture (mp3, m4a) is a video stream of one frame: not something to play.
  const video = streams.find((s) => s.codec_type === 'video' && !s.disposition?.attached_pic && s.width && s.height);
  const duration = Number(out.format?.duration);
  return {
    duration: Number.isFinite(duration) && duration > 0 ? duration : null,
    video: video ? { width: video.width!, height: video.height! } : undefined,
    audio: streams.some((s) => s.codec_type === 'audio'),
  };
}

/** `f` over `inputs` with at most `limit` calls in progress; results in input order. */
async function mapLimited<T, R>(inputs: readonly T[], limit: number, f: (input: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(inputs.length);
  let next = 0;
  const worker = async () => {
    while (next < inputs.length) {
      const i = next++;
      results[i] = await f(inputs[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, inputs.length) }, worker));
  return results;
}
