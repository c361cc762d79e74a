/**
 * The hang catalog pushcast writes (src/moq/catalog.ts) is what `<moq-watch>` reads: parsed by the pinned
 * `@moq/hang`'s own schema (`RootSchema`, zod; bundled here with esbuild, as its package ships extensionless
 * imports), each rendition a CMAF container with its init segment.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { hangCatalog } from '../../src/moq/index.js';
import { WarpProducer } from '../../src/warp/index.js';
import { fromBase64 } from '../../src/wire/index.js';
import { WarpLive } from '../support/warp-live.js';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));

async function hangSchema(): Promise<{ parse(value: unknown): unknown }> {
  const out = await build({
    stdin: { contents: "export { RootSchema } from '@moq/hang/catalog';", resolveDir: REPO, loader: 'js' },
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    write: false,
    logLevel: 'silent',
  });
  const url = `data:text/javascript;base64,${Buffer.from(out.outputFiles[0]!.text).toString('base64')}`;
  return ((await import(url)) as { RootSchema: { parse(value: unknown): unknown } }).RootSchema;
}

test("the catalog parses with @moq/hang's RootSchema: every rendition, its codec, sizes and init, unchanged", async () => {
  const live = new WarpLive({ timeShiftBufferDepth: 3, renditions: true });
  live.publish(1);
  const producer = new WarpProducer({
    broadcast: 'live',
    window: live.window,
    timeline: live.timeline,
    policy: 'newest-first',
  });
  const feed = producer.feed();
  const catalog = hangCatalog(feed.catalog()!, { init: (id) => feed.init(id), framerate: 30, chunkMs: 200 });
  const RootSchema = await hangSchema();
  const parsed = RootSchema.parse(JSON.parse(JSON.stringify(catalog))) as typeof catalog;
  assert.deepEqual(Object.keys(parsed.video!.renditions), ['video', 'video-hi']);
  assert.deepEqual(Object.keys(parsed.audio!.renditions), ['audio']);
  const hi = parsed.video!.renditions['video-hi']!;
  assert.deepEqual(
    {
      codec: hi.codec,
      kind: hi.container.kind,
      w: hi.codedWidth,
      h: hi.codedHeight,
      fps: hi.framerate,
      jitter: hi.jitter,
    },
    { codec: 'avc1.42c01f', kind: 'cmaf', w: 1280, h: 720, fps: 30, jitter: 200 },
  );
  assert.deepEqual([...fromBase64(hi.container.init)], [...live.videoHi!.init!]);
  assert.deepEqual(parsed.video!.display, { width: 1280, height: 720 });
  const audio = parsed.audio!.renditions.audio!;
  assert.deepEqual([audio.sampleRate, audio.numberOfChannels, audio.codec], [48000, 2, 'mp4a.40.2']);
  // A malformed container (no init) is what the schema refuses: the check is real.
  assert.throws(() =>
    RootSchema.parse({ video: { renditions: { v: { codec: 'avc1.42c01e', container: { kind: 'cmaf' } } } } }),
  );
  producer.close();
});
