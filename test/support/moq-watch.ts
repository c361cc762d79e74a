/**
 * `<moq-watch>` on a test page: the element bundled from node_modules with esbuild (as an application
 * would), and a page that points it at a MoQ URL with the certificate hash pushcast publishes; the page
 * exposes `window.watchState()`. Shared by test/e2e/moq-watch.test.ts and bench/moq-latency.ts.
 */
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));

/** What the page reports of its `<moq-watch>`. */
export interface WatchState {
  status: string;
  connection: string;
  transport: string | null;
  videoFrames: number;
  /** The newest decoded video frame's presentation time, ms. */
  videoTimestamp: number | null;
  /** The frame on the canvas, ms. */
  shownTimestamp: number | null;
  /** Audio decoded so far, ms of presentation time. */
  audioTimestamp: number | null;
}

/** `<moq-watch>` from node_modules, bundled for the page as an application would. */
export async function watchBundle(): Promise<string> {
  const out = await build({
    stdin: { contents: "import '@moq/watch/element';", resolveDir: REPO, loader: 'js' },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'chrome120',
    write: false,
    logLevel: 'silent',
  });
  return out.outputFiles[0]!.text;
}

/** The page: `<moq-watch>` and its canvas, the element's bundle, and how it is pointed at pushcast. */
export function moqWatchPage(o: { url: string; hash: string; websocket?: string }): string {
  return `<!doctype html><meta charset="utf-8"><title>moq-watch</title>
<script>${o.websocket ? 'delete window.WebTransport;' : ''}</script>
<moq-watch name="live"><canvas width="320" height="180"></canvas></moq-watch>
<script type="module">
import './watch.js';
const el = document.querySelector('moq-watch');
el.connection.webtransport = { serverCertificateHashes: [{ algorithm: 'sha-256', value: ${JSON.stringify(o.hash)} }] };
${o.websocket ? `el.connection.websocket = { url: new URL(${JSON.stringify(o.websocket)}), delay: 0 };` : ''}
el.setAttribute('url', ${JSON.stringify(o.url)});
window.watchState = () => ({
  status: el.broadcast.out.status.peek(),
  connection: el.connection.status.peek(),
  transport: el.connection.established.peek()?.transport ?? null,
  videoFrames: el.video.out.stats.peek()?.frameCount ?? 0,
  videoTimestamp: el.video.out.timestamp.peek() ?? null,
  shownTimestamp: el.renderer.out.timestamp.peek() ?? null,
  audioTimestamp: el.audio.out.timestamp.peek() ?? null,
});
</script>`;
}
