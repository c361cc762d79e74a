/**
 * The layering rule, checked against the code: the table in docs/architecture.md says, for each folder of
 * src/, which other folders and npm packages it imports. Every import in the code must be allowed by its
 * folder's row, and every folder a row lists must really be imported, so the table stays the house as built.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import test from 'node:test';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

interface Row {
  /** `src/origin/push`, without the trailing slash. */
  folder: string;
  /** Folders (or files, without `.ts`) under src/ this folder may import: `media`, `warp/consumer`. */
  imports: string[];
  /** npm packages it may import, named in parentheses: `(ws)`. */
  packages: string[];
  everything: boolean;
}

function readTable(): Row[] {
  const doc = readFileSync(join(REPO, 'docs/architecture.md'), 'utf8');
  const rows: Row[] = [];
  for (const line of doc.split('\n')) {
    const m = /^\| `(src\/[^`]+?)\/?` \|.*\| ([^|]*) \|$/.exec(line);
    if (!m) continue;
    const [, folder, cell] = m as unknown as [string, string, string];
    rows.push({
      folder,
      imports: [...cell.matchAll(/`([^`]+)`/g)].map((x) => x[1]!.replace(/\/$/, '')),
      packages: [...cell.matchAll(/\(([^)]+)\)/g)].flatMap((x) => x[1]!.split(/,\s*/)),
      everything: /\beverything\b/.test(cell),
    });
  }
  return rows;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(join(REPO, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** The row whose folder is the longest prefix of `file`. */
function rowOf(rows: Row[], file: string): Row | undefined {
  return rows.filter((r) => file.startsWith(`${r.folder}/`)).sort((a, b) => b.folder.length - a.folder.length)[0];
}

const IMPORT = /^\s*(?:import|export)\s[^'";]*?from\s+'([^']+)'|^\s*import\s+'([^']+)'/gm;

test('every import of src/ is allowed by its folder’s row in docs/architecture.md, and every row is used', () => {
  const rows = readTable();
  assert.ok(rows.length >= 15, `the layer table has its rows (found ${rows.length})`);
  const used = new Map(rows.map((r) => [r, new Set<string>()]));
  const violations: string[] = [];
  for (const file of sourceFiles('src')) {
    const row = rowOf(rows, file);
    if (!row) {
      violations.push(`${file}: its folder has no row in the table`);
      continue;
    }
    const text = readFileSync(join(REPO, file), 'utf8');
    for (const m of text.matchAll(IMPORT)) {
      const spec = (m[1] ?? m[2])!;
      if (spec.startsWith('node:')) continue;
      if (!spec.startsWith('.')) {
        const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
        if (!row.everything && !row.packages.includes(pkg)) violations.push(`${file}: imports the package ${pkg}`);
        used.get(row)!.add(`(${pkg})`);
        continue;
      }
      const target = relative('src', normalize(join(dirname(file), spec))).replace(/\.js$/, '');
      if (`src/${target}`.startsWith(`${row.folder}/`)) continue; // its own folder
      const allowed = row.imports.find((f) => target === f || target.startsWith(`${f}/`));
      if (allowed) used.get(row)!.add(allowed);
      else if (!row.everything) violations.push(`${file}: imports src/${target}, not listed for ${row.folder}`);
    }
  }
  for (const [row, seen] of used) {
    for (const listed of row.imports)
      if (!seen.has(listed)) violations.push(`${row.folder}: the table lists \`${listed}\`, which it never imports`);
    for (const pkg of row.packages)
      if (!seen.has(`(${pkg})`)) violations.push(`${row.folder}: the table lists (${pkg}), which it never imports`);
  }
  assert.deepEqual(violations, [], `the layer table and the code disagree:\n${violations.join('\n')}`);
});
