/**
 * A benchmark's generated section of a document: what lies between `<!-- NAME:begin (written by WRITER) -->`
 * and `<!-- NAME:end -->` is replaced and the rest of the document kept; a document without the markers
 * gets the section at its end, one that does not exist is made with `title` as its heading.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export function writeDocSection(o: { file: string; name: string; writer: string; body: string; title: string }): void {
  const begin = `<!-- ${o.name}:begin (written by ${o.writer}) -->`;
  const end = `<!-- ${o.name}:end -->`;
  const generated = `${begin}\n${o.body}\n${end}`;
  const before = existsSync(o.file) ? readFileSync(o.file, 'utf8') : `# ${o.title}\n\n${begin}\n${end}\n`;
  const a = before.indexOf(begin);
  const b = before.indexOf(end);
  writeFileSync(
    o.file,
    a >= 0 && b > a
      ? `${before.slice(0, a)}${generated}${before.slice(b + end.length)}`
      : `${before.trimEnd()}\n\n${generated}\n`,
  );
}
