import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The official MPD schema of ISO/IEC 23009-1, kept in the repository (test/fixtures/dash-schema, with its licence). */
export const MPD_SCHEMA = fileURLToPath(new URL('../../../test/fixtures/dash-schema/DASH-MPD.xsd', import.meta.url));

/** Validates an MPD with xmllint against the official schema; returns xmllint's verdict. */
export function validateMpd(mpd: string): { valid: boolean; output: string } {
  const dir = mkdtempSync(join(tmpdir(), 'pushcast-mpd-'));
  try {
    const file = join(dir, 'manifest.mpd');
    writeFileSync(file, mpd);
    const r = spawnSync('xmllint', ['--noout', '--nonet', '--schema', MPD_SCHEMA, file], { encoding: 'utf8' });
    if (r.error) throw r.error;
    return { valid: r.status === 0, output: `${r.stdout}${r.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
