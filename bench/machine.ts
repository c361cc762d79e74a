/**
 * The machine a benchmark ran on, described one way for every bench: as facts (`machineFacts()`) for a bench
 * that stores them or tabulates by core count, and as one line (`machine()`: CPU model × count, memory, OS,
 * node) made from those facts. Tool versions (ffmpeg, Chromium, nginx) come from `toolVersion()`.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';

export interface Machine {
  /** The CPU model, e.g. "AMD EPYC". */
  cpu: string;
  /** Logical CPUs. */
  cores: number;
  /** Total memory, e.g. "24 GiB". */
  memory: string;
  /** OS name and kernel release, e.g. "Linux 6.1.0". */
  kernel: string;
  /** process.version, e.g. "v20.20.2". */
  node: string;
}

export function machineFacts(): Machine {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown CPU',
    cores: cpus.length,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
  };
}

/** The machine in one line; of `m` when given (a bench's facts, which may hold more than the machine). */
export function machine(m: Machine = machineFacts()): string {
  return `${m.cpu} × ${m.cores}, ${m.memory}, ${m.kernel}, node ${m.node}`;
}

/**
 * The first line a tool prints about its version, without a copyright notice (`ffmpeg -version`), from its
 * standard output or, if that is empty, its standard error (`nginx -v`); "<command>: unknown" when it does not run.
 */
export function toolVersion(command: string, args: string[] = ['--version']): string {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  const line = (r.stdout?.trim() ? r.stdout : (r.stderr ?? '')).split('\n')[0] ?? '';
  return line.replace(/ Copyright.*/, '').trim() || `${command}: unknown`;
}
