import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Http2PushClient } from '../client/index.js';
import { MANIFEST_PATH, parseLivePath, pushChannelPath } from '../media/index.js';
import { RESOURCE_PUSH, type ResourcePushEvent } from '../push/index.js';

export interface FetchLiveOptions {
  out: string;
  duration: number;
  rendition?: string;
  audio: boolean;
  ca?: string;
  insecure: boolean;
}

/**
 * Records a live stream through the origin's push channels: one HTTP/2 connection, `GET
 * /live/<rendition>/push` held open for a video rendition (and the audio), and every pushed segment written
 * to disk as its ResourcePushEvent's response completes. No segment is ever requested.
 */
export async function fetchLive(url: string, o: FetchLiveOptions): Promise<void> {
  const base = new URL(url);
  if (base.protocol !== 'https:')
    throw new Error('fetch-live needs the HTTPS (HTTP/2) address of the origin, e.g. https://localhost:8443');
  const client = new Http2PushClient(base.origin, {
    ca: o.ca ? await readFile(o.ca) : undefined,
    insecure: o.insecure,
  });
  const stats = { segments: 0, bytes: 0, media: new Map<string, number>(), failed: 0 };
  const pending = new Set<Promise<void>>();

  client.addEventListener(RESOURCE_PUSH, (e) => {
    const event = e as ResourcePushEvent;
    const resource = parseLivePath(new URL(event.request.url).pathname);
    if (!resource) return;
    const rendition = resource.trackId;
    const name = resource.kind === 'init' ? 'init.mp4' : `${resource.number}.m4s`;
    const job = (async () => {
      try {
        const res = await event.response;
        if (res.status !== 200) throw new Error(`status ${res.status}`);
        const body = new Uint8Array(await res.arrayBuffer());
        await mkdir(join(o.out, rendition), { recursive: true });
        await writeFile(join(o.out, rendition, name), body);
        stats.bytes += body.byteLength;
        if (name !== 'init.mp4') {
          stats.segments++;
          stats.media.set(rendition, (stats.media.get(rendition) ?? 0) + 1);
        }
      } catch (err) {
        stats.failed++;
        console.error(`\npushcast fetch-live: ${rendition}/${name}: ${(err as Error).message}`);
      }
    })();
    pending.add(job);
    void job.finally(() => pending.delete(job));
  });

  const mpd = await client.get(MANIFEST_PATH);
  if (mpd.status !== 200) throw new Error(`MPD: HTTP ${mpd.status}`);
  const text = mpd.body.toString('utf8');
  await mkdir(o.out, { recursive: true });
  await writeFile(join(o.out, 'manifest.mpd'), text);
  const reps = [...text.matchAll(/<Representation id="([^"]+)" bandwidth="(\d+)"/g)].map(([, id = '', bandwidth]) => ({
    id,
    bandwidth: Number(bandwidth),
  }));
  const video =
    o.rendition ?? reps.filter((r) => r.id.startsWith('video')).sort((a, b) => a.bandwidth - b.bandwidth)[0]?.id;
  if (!video || !reps.some((r) => r.id === video))
    throw new Error(`no rendition ${video ?? ''} in the MPD (has ${reps.map((r) => r.id).join(', ')})`);
  const channels = [video, ...(o.audio ? reps.filter((r) => r.id.startsWith('audio')).map((r) => r.id) : [])];
  const replies = await Promise.all(channels.map((id) => client.request(pushChannelPath(id))));
  replies.forEach((r, i) => {
    if (r.status !== 200) throw new Error(`push channel ${channels[i]}: HTTP ${r.status}`);
    r.stream.resume(); // the channel body is a log of pushes; the pushes themselves are what we record
  });
  console.log(`recording ${channels.join(' + ')} from ${base.origin} into ${o.out} for ${o.duration} s`);

  const started = Date.now();
  const tty = process.stdout.isTTY;
  const progress = () => {
    const line = `${((Date.now() - started) / 1000).toFixed(0)} s: ${stats.segments} segments (${[...stats.media].map(([k, v]) => `${k} ${v}`).join(', ')}), ${(stats.bytes / 1e6).toFixed(1)} MB, ${client.counts.pushes} pushes${stats.failed ? `, ${stats.failed} failed` : ''}`;
    if (tty) process.stdout.write(`\r${line}   `);
    else console.log(line);
  };
  const timer = setInterval(progress, tty ? 500 : 5000);
  await new Promise((r) => setTimeout(r, o.duration * 1000));
  clearInterval(timer);
  for (const r of replies) r.stream.close();
  // Segments already promised finish arriving; nothing new is pushed once the channels are closed.
  await Promise.race([Promise.allSettled([...pending]), new Promise((r) => setTimeout(r, 5000))]);
  progress();
  if (tty) process.stdout.write('\n');
  await client.close();
  console.log(`done: ${stats.segments} segments, ${(stats.bytes / 1e6).toFixed(1)} MB in ${o.out}`);
  if (stats.failed) process.exitCode = 1;
}
