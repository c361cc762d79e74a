import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** What `makeVodFolder` writes: two short clips (the first with audio) and a file that is not media. */
export const VOD_CLIPS = {
  withAudio: { file: 'Talk (with audio).mp4', id: 'talk-with-audio', seconds: 4, width: 320, height: 240 },
  silent: { file: 'silent clip.mkv', id: 'silent-clip', seconds: 3, width: 256, height: 144 },
} as const;

function ffmpeg(args: string[]): void {
  const run = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y', ...args], {
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(`ffmpeg failed (${run.status}): ${run.stderr}`);
}

/** A small on-demand folder made with ffmpeg at test time (about a second of encoding). */
export function makeVodFolder(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const a = VOD_CLIPS.withAudio;
  ffmpeg([
    '-f',
    'lavfi',
    '-i',
    `testsrc2=size=${a.width}x${a.height}:rate=25`,
    '-f',
    'lavfi',
    '-i',
    'sine=frequency=440:sample_rate=44100',
    '-t',
    String(a.seconds),
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    '-pix_fmt',
    'yuv420p',
    '-c:a',
    'aac',
    join(dir, a.file),
  ]);
  const s = VOD_CLIPS.silent;
  ffmpeg([
    '-f',
    'lavfi',
    '-i',
    `testsrc=size=${s.width}x${s.height}:rate=30`,
    '-t',
    String(s.seconds),
    '-c:v',
    'libx264',
    '-preset',
    'ultrafast',
    '-pix_fmt',
    'yuv420p',
    join(dir, s.file),
  ]);
  writeFileSync(join(dir, 'notes.txt'), 'not media\n');
  return dir;
}
