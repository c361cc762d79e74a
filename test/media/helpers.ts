/** Shared test helpers: fixtures made by scripts/make-fixtures.sh, a packager on a fake clock, ffprobe. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LiveTimeline, LiveWindow, TrackPackager, type LiveTrack } from '../../src/media/index.js';

/** Compiled, this file is build/test/media/helpers.js. */
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const fixtureDir = join(repoRoot, 'build', 'fixtures');

export type FixtureName = 'video-6s.mp4' | 'video-bframes-6s.mp4' | 'audio-6s.mp4' | 'video-irregular-8s.mp4';

let fixturesMade = false;

/** Path of a fixture, made on first use (the script skips files that exist). */
export function fixturePath(name: FixtureName): string {
  if (!fixturesMade) {
    const run = spawnSync('bash', [join(repoRoot, 'scripts', 'make-fixtures.sh'), fixtureDir], { encoding: 'utf8' });
    if (run.status !== 0) throw new Error(`scripts/make-fixtures.sh failed (${run.status}): ${run.stderr}`);
    fixturesMade = true;
  }
  return join(fixtureDir, name);
}

export function fixture(name: FixtureName): Uint8Array {
  return new Uint8Array(readFileSync(fixturePath(name)));
}

/** A settable wall clock, milliseconds since the epoch. */
export class FakeClock {
  constructor(public ms = 1_700_000_000_000) {}
  readonly now = (): number => this.ms;
  advance(seconds: number): void {
    this.ms += seconds * 1000;
  }
}

export interface PackagerSetup {
  segmentDuration: number;
  chunkDuration: number;
  timeShiftBufferDepth?: number;
  maxSegmentsPerTrack?: number;
  maxBoxSize?: number;
  /** Share a timeline (and its clock) with another packager of the same presentation. */
  timeline?: LiveTimeline;
  clock?: FakeClock;
  window?: LiveWindow;
  id?: string;
}

export interface Packaging {
  window: LiveWindow;
  track: LiveTrack;
  timeline: LiveTimeline;
  clock: FakeClock;
  packager: TrackPackager;
}

/** A packager publishing into a fresh live window, on a timeline with startNumber 1 and a fake clock. */
export function makePackager(setup: PackagerSetup): Packaging {
  const clock = setup.clock ?? new FakeClock();
  const timeline = setup.timeline ?? new LiveTimeline(setup.segmentDuration, clock.now, 1);
  // LiveWindow spreads its options over the defaults: an explicit undefined would replace one.
  const windowOptions = { timeShiftBufferDepth: setup.timeShiftBufferDepth ?? 3600 };
  const window =
    setup.window ??
    new LiveWindow(
      setup.maxSegmentsPerTrack === undefined
        ? windowOptions
        : { ...windowOptions, maxSegmentsPerTrack: setup.maxSegmentsPerTrack },
    );
  const track = window.addTrack({ id: setup.id ?? 'v0', kind: 'video', codec: '', timescale: 1, bandwidth: 0 });
  const packager = new TrackPackager({
    track,
    timeline,
    bandwidth: 500_000,
    segmentDuration: setup.segmentDuration,
    chunkDuration: setup.chunkDuration,
    maxBoxSize: setup.maxBoxSize,
  });
  return { window, track, timeline, clock, packager };
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The track as a player would fetch it: init segment, then every segment in the window. */
export function presentationBytes(track: LiveTrack): Uint8Array {
  if (!track.init) throw new Error(`track ${track.id} has no init segment`);
  return concat([track.init, ...track.list().map((s) => s.bytes())]);
}

const tempDirs: string[] = [];

/** Writes bytes to a new temporary file and returns its path; `removeTempFiles()` deletes them all. */
export function writeTemp(bytes: Uint8Array, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'pushcast-media-'));
  tempDirs.push(dir);
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

export function removeTempFiles(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Runs ffprobe (or ffmpeg) and returns stdout; fails the test with stderr on a non-zero exit. */
export function run(command: 'ffprobe' | 'ffmpeg', args: readonly string[]): { stdout: string; stderr: string } {
  const r = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return { stdout: r.stdout, stderr: r.stderr };
}

/** ffprobe's JSON for the first stream of a file. */
export function probeStream(path: string): Record<string, string | number | undefined> {
  const { stdout } = run('ffprobe', ['-v', 'error', '-select_streams', '0', '-show_streams', '-of', 'json', path]);
  const stream = (JSON.parse(stdout) as { streams: Record<string, string | number>[] }).streams[0];
  if (!stream) throw new Error(`ffprobe found no stream in ${path}`);
  return stream;
}

/** Pts and dts of every packet in decode order, as ffprobe reads them. */
export function probePackets(path: string): string[] {
  return run('ffprobe', [
    '-v',
    'error',
    '-select_streams',
    '0',
    '-show_entries',
    'packet=pts,dts,flags',
    '-of',
    'csv=p=0',
    path,
  ])
    .stdout.trim()
    .split('\n');
}

/** A small deterministic PRNG (mulberry32), so a failing random split can be replayed from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Feeds `bytes` in pieces of 1..maxPiece bytes. */
export function pushInPieces(packager: TrackPackager, bytes: Uint8Array, random: () => number, maxPiece = 500): void {
  for (let at = 0; at < bytes.length; ) {
    const n = 1 + Math.floor(random() * maxPiece);
    packager.push(bytes.subarray(at, at + n));
    at += n;
  }
}
