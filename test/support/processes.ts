import { execFileSync } from 'node:child_process';

/** The direct children of `pid` (pgrep -P), optionally only those named `name`. */
export function childPids(pid: number, name?: string): number[] {
  try {
    const args = ['-P', String(pid), ...(name ? [name] : [])];
    return execFileSync('pgrep', args, { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

/** SIGKILL, ignoring a process that is already gone. */
export function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
