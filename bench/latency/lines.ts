import type { Readable } from 'node:stream';

/** Calls `onLine` for each complete line a child's output stream carries, however the text is split. */
export function onLines(stream: Readable, onLine: (line: string) => void): void {
  let partial = '';
  stream.setEncoding('utf8').on('data', (text: string) => {
    const parts = (partial + text).split('\n');
    partial = parts.pop()!;
    parts.forEach(onLine);
  });
}
