/**
 * Packaging of one on-demand item: ffmpeg transcodes the file into single-track fragmented MP4 (one pipe
 * per track, as the live encoder does), pushcast's own TrackPackager cuts CMAF segments from it, and each
 * track is written as ONE file, `CMAF header + every segment`, itself a valid fragmented MP4, next to an
 * index of where each segment lies in it. Players then fetch byte ranges of that file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { LiveTimeline, LiveWindow, TrackPackager, type LiveTrack, type Segment } from '../../media/index.js';
import { probeMedia, type MediaProbe } from './catalog.js';

/** Bumped whenever packaging changes what it writes, so that caches from older versions are redone. */
export const PACKAGE_FORMAT = 1;

export type VodTrackId = 'video' | 'audio';
export const VOD_TRACK_IDS: readonly VodTrackId[] = ['video', 'audio'];

/** Where one CMAF segment lies in its track file, and when it plays. */
export interface IndexedSegment {
  /** Earliest presentation time, seconds. */
  start: number;
  /** Seconds. */
  duration: number;
  /** Byte offset in the track file; the bytes there begin with `styp`. */
  offset: number;
  size: number;
}

export interface PackagedTrack {
  id: VodTrackId;
  kind: 'video' | 'audio';
  /** RFC 6381 codecs parameter, read from the CMAF header. */
  codec: string;
  timescale: number;
  /** Average bit rate of the media, bit/s. */
  bandwidth: number;
  width?: number;
  height?: number;
  sampleRate?: number;
  channels?: number;
  /** Bytes of the whole track file. */
  size: number;
  /** Bytes of the CMAF header at the start of the file. */
  initSize: number;
  segments: IndexedSegment[];
}

/** Identity of a source file: a package is valid for exactly this name, size and modification time. */
export interface SourceStamp {
  name: string;
  size: number;
  mtimeMs: number;
}

/** The JSON written beside the track files (`index.json`); its presence means the package is complete. */
export interface PackageIndex {
  format: number;
  source: SourceStamp;
  segmentDuration: number;
  /** Seconds: the end of the longest track. */
  duration: number;
  tracks: PackagedTrack[];
}

export interface PackagingOptions {
  ffmpegPath: string;
  ffprobePath: string;
  /** Seconds; the encoder puts a key frame exactly there and the packager cuts there. */
  segmentDuration: number;
  /** Milliseconds before the job is abandoned; default 60 s plus the item's duration (ffmpeg must at least keep real time). */
  timeoutMs?: number;
  /** Aborting kills ffmpeg and fails the job (the origin is closing). */
  signal?: AbortSignal;
}

const INDEX_FILE = 'index.json';
const STDERR_LINES_KEPT = 8;

export function trackFilePath(dir: string, track: VodTrackId): string {
  return join(dir, `${track}.mp4`);
}

/** The package in `dir` if it is complete and made from `source` with these settings; else undefined. */
export async function readPackage(
  dir: string,
  source: SourceStamp,
  segmentDuration: number,
): Promise<PackageIndex | undefined> {
  let index: PackageIndex;
  try {
    index = JSON.parse(await readFile(join(dir, INDEX_FILE), 'utf8')) as PackageIndex;
  } catch {
    return undefined;
  }
  const same =
    index.format === PACKAGE_FORMAT &&
    index.segmentDuration === segmentDuration &&
    index.source?.name === source.name &&
    index.source.size === source.size &&
    index.source.mtimeMs === source.mtimeMs &&
    Array.isArray(index.tracks) &&
    index.tracks.length > 0;
  if (!same) return undefined;
  for (const track of index.tracks) {
    const size = await stat(trackFilePath(dir, track.id)).then(
      (s) => s.size,
      () => -1,
    );
    if (size !== track.size) return undefined;
  }
  return index;
}

/** One ffmpeg output: a track and the descriptor its fragmented MP4 arrives on. */
interface TranscodeOutput {
  track: VodTrackId;
  fd: number;
}

/**
 * ffmpeg's command line for an on-demand item: H.264 at the file's own size but at most 720 lines, and AAC
 * if the file has audio, each as single-track fragmented MP4 on its own pipe (fd 3, 4).
 */
export function transcodeArguments(
  input: string,
  probe: MediaProbe,
  segmentDuration: number,
): { args: string[]; outputs: TranscodeOutput[] } {
  const args = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-i', input];
  const outputs: TranscodeOutput[] = [];
  // The packager reads fragments sample by sample, so how ffmpeg fragments does not matter; one second bounds its buffering.
  const fragmented = ['-f', 'mp4', '-movflags', 'empty_moov+default_base_moof', '-frag_duration', '1000000'];
  if (probe.video) {
    outputs.push({ track: 'video', fd: 3 + outputs.length });
    args.push(
      // `V`, not `v`: the first real video stream, never a cover picture.
      '-map',
      '0:V:0',
      // Even dimensions for 4:2:0; never upscaled.
      '-vf',
      "scale=-2:'trunc(min(720,ih)/2)*2',setsar=1",
      '-c:v',
      'libx264',
      '-preset',
      'veryfast',
      '-crf',
      '23',
      '-maxrate',
      '3M',
      '-bufsize',
      '6M',
      '-pix_fmt',
      'yuv420p',
      '-profile:v',
      'high',
      // No B-frames: decode order is presentation order, so a segment's times in the index are the ones a
      // SourceBuffer reports, and no edit list (which the packager does not carry) is needed to start at 0.
      '-bf',
      '0',
      // A key frame exactly on every segment boundary; the packager cuts at the first one past each.
      '-force_key_frames',
      `expr:gte(t,n_forced*${segmentDuration})`,
      ...fragmented,
      `pipe:${outputs.at(-1)!.fd}`,
    );
  }
  if (probe.audio) {
    outputs.push({ track: 'audio', fd: 3 + outputs.length });
    args.push(
      '-map',
      '0:a:0',
      '-c:a',
      'aac',
      '-b:a',
      '128k',
      '-ac',
      '2',
      '-ar',
      '48000',
      ...fragmented,
      `pipe:${outputs.at(-1)!.fd}`,
    );
  }
  return { args, outputs };
}

/** Why a packaging job failed, in words an operator (and a 502 response) can act on. */
export class PackagingError extends Error {
  override readonly name = 'PackagingError';
}

/**
 * Packages `sourcePath` into `dir`: `<track>.mp4` per track and `index.json`, written under temporary names
 * and renamed when everything is complete, the index last, so that a crash never leaves a package that
 * looks complete. Resolves with the index.
 */
export async function packageMedia(
  sourcePath: string,
  source: SourceStamp,
  dir: string,
  o: PackagingOptions,
): Promise<PackageIndex> {
  const probe = await probeMedia(sourcePath, o.ffprobePath).catch((err: Error) => {
    throw new PackagingError(err.message);
  });
  const { args, outputs } = transcodeArguments(sourcePath, probe, o.segmentDuration);
  if (outputs.length === 0) throw new PackagingError('the file has no video or audio stream');
  await mkdir(dir, { recursive: true });
  // From here on the old package, if any, is no longer the right one.
  await rm(join(dir, INDEX_FILE), { force: true });
  const timeoutMs = o.timeoutMs ?? 60_000 + (probe.duration ?? 3600) * 1000;

  const timeline = new LiveTimeline(o.segmentDuration, () => 0, 1);
  // Each segment is written to disk as it completes, before the window evicts it: two in memory at most.
  const window = new LiveWindow({ timeShiftBufferDepth: 0, maxSegmentsPerTrack: 2 });
  const writers = outputs.map(
    (out) =>
      new TrackWriter(out.track, window, timeline, o.segmentDuration, `${trackFilePath(dir, out.track)}.partial`),
  );
  try {
    await runTranscoder(o.ffmpegPath, args, outputs, writers, timeoutMs, o.signal);
    const tracks = await Promise.all(writers.map((w) => w.finish()));
    for (const w of writers) await rename(w.partialPath, trackFilePath(dir, w.id));
    const index: PackageIndex = {
      format: PACKAGE_FORMAT,
      source,
      segmentDuration: o.segmentDuration,
      duration: Math.max(...tracks.map((t) => t.segments.reduce((end, s) => Math.max(end, s.start + s.duration), 0))),
      tracks,
    };
    await writeFile(join(dir, `${INDEX_FILE}.partial`), JSON.stringify(index));
    await rename(join(dir, `${INDEX_FILE}.partial`), join(dir, INDEX_FILE));
    return index;
  } catch (err) {
    for (const w of writers) w.abandon();
    await Promise.all(writers.map((w) => rm(w.partialPath, { force: true })));
    throw err;
  }
}

/** Runs ffmpeg, feeding each pipe to its track's writer; resolves when ffmpeg exits successfully. */
function runTranscoder(
  ffmpegPath: string,
  args: string[],
  outputs: TranscodeOutput[],
  writers: TrackWriter[],
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const stdio: ('ignore' | 'pipe')[] = ['ignore', 'ignore', 'pipe', ...outputs.map((): 'pipe' => 'pipe')];
    let child: ChildProcess;
    try {
      child = spawn(ffmpegPath, args, { stdio });
    } catch (err) {
      return reject(new PackagingError(`cannot run ffmpeg: ${(err as Error).message}`));
    }
    const stderrTail: string[] = [];
    let settled = false;
    const fail = (message: string) => {
      if (settled) return;
      settled = true;
      cleanup();
      child.kill('SIGKILL');
      reject(new PackagingError(message));
    };
    const timer = setTimeout(
      () => fail(`ffmpeg did not finish within ${Number((timeoutMs / 1000).toPrecision(3))} s`),
      timeoutMs,
    );
    const onAbort = () => fail('the origin is closing');
    signal?.addEventListener('abort', onAbort);
    if (signal?.aborted) onAbort();
    const cleanup = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };

    child.on('error', (err) => fail(`cannot run ffmpeg (${ffmpegPath}): ${err.message}`));
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (text: string) => {
      for (const line of text.split('\n')) {
        if (!line.trim()) continue;
        stderrTail.push(line.trim().slice(0, 500));
        if (stderrTail.length > STDERR_LINES_KEPT) stderrTail.shift();
      }
    });
    outputs.forEach((out, i) => {
      const pipe = child.stdio[out.fd] as Readable;
      const writer = writers[i];
      writer!.source = pipe;
      writer!.onError = (err) => fail(`packaging the ${out.track} track: ${err.message}`);
      pipe.on('data', (chunk: Buffer) => writer!.push(chunk));
      pipe.on('error', () => {}); // ffmpeg dying closes the pipe; 'close' below reports it
    });
    child.on('close', (code, sig) => {
      if (settled) return;
      if (code !== 0) {
        const said = stderrTail.length ? `: ${stderrTail.slice(-3).join(' / ')}` : '';
        return fail(`ffmpeg ${sig ? `was killed by ${sig}` : `exited with code ${code}`}${said}`);
      }
      settled = true;
      cleanup();
      resolve();
    });
  });
}

/**
 * One track from ffmpeg's pipe through a TrackPackager into its file: the CMAF header, then each segment
 * as the packager completes it, with its place in the file and its time recorded for the index.
 */
class TrackWriter {
  readonly track: LiveTrack;
  private readonly packager: TrackPackager;
  private readonly file: WriteStream;
  private written = 0;
  private initSize = 0;
  private readonly segments: IndexedSegment[] = [];
  /** The pipe ffmpeg writes this track to; paused while the file is behind (back-pressure). */
  source?: Readable;
  onError: (err: Error) => void = () => {};

  constructor(
    readonly id: VodTrackId,
    window: LiveWindow,
    timeline: LiveTimeline,
    segmentDuration: number,
    readonly partialPath: string,
  ) {
    this.track = window.addTrack({ id, kind: id, codec: '', timescale: 1, bandwidth: 0 });
    // One chunk per segment: nobody streams these segments while they are being made.
    this.packager = new TrackPackager({ track: this.track, timeline, bandwidth: 0, chunkDuration: segmentDuration });
    this.file = createWriteStream(partialPath);
    this.file.on('error', (err) => this.onError(err));
    this.track.on('init', (t) => {
      this.initSize = t.init!.byteLength;
      this.write(t.init!);
    });
    this.track.on('segmentcompleted', (s) => this.writeSegment(s));
  }

  push(bytes: Buffer): void {
    try {
      this.packager.push(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    } catch (err) {
      this.onError(err as Error);
    }
  }

  private writeSegment(s: Segment): void {
    if (this.initSize === 0) return this.onError(new Error('a segment before the CMAF header'));
    this.segments.push({
      start: s.earliestPresentationTime / s.timescale,
      duration: s.durationSeconds,
      offset: this.written,
      size: s.size,
    });
    this.write(s.bytes());
  }

  private write(bytes: Uint8Array): void {
    this.written += bytes.byteLength;
    if (!this.file.write(bytes) && this.source && !this.source.isPaused()) {
      this.source.pause();
      this.file.once('drain', () => this.source?.resume());
    }
  }

  /** ffmpeg is done: completes the last segment, closes the file and describes the track. */
  async finish(): Promise<PackagedTrack> {
    this.packager.endOfInput();
    this.file.end();
    await finished(this.file);
    if (this.initSize === 0 || this.segments.length === 0) throw new PackagingError(`ffmpeg wrote no ${this.id} media`);
    const info = this.track.info;
    const seconds = this.segments.reduce((sum, s) => sum + s.duration, 0);
    return {
      id: this.id,
      kind: info.kind,
      codec: info.codec,
      timescale: info.timescale,
      bandwidth: Math.round(((this.written - this.initSize) * 8) / Math.max(seconds, 0.001)),
      ...(info.width ? { width: info.width, height: info.height } : {}),
      ...(info.sampleRate ? { sampleRate: info.sampleRate, channels: info.channels } : {}),
      size: this.written,
      initSize: this.initSize,
      segments: this.segments,
    };
  }

  abandon(): void {
    this.file.destroy();
  }
}
