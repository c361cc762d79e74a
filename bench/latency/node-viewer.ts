/**
 * The lab's third viewer: Warp in Node — a WebTransport session and the same WarpConsumer the page uses
 * (what WarpClient does, with each stream watched on its way in) — run by bench/latency.ts in its own
 * namespace:
 *   node build/bench/latency/node-viewer.js '{"url":"https://10.79.1.1:8443/warp/live?latency=2000","bufferMs":2000}'
 * It plays nothing: the latency it reports is when each CMAF fragment is handed over in decode order
 * (the consumer's sink), minus the wall-clock time of the fragment's first sample,
 * catalog.availabilityStartTime + baseMediaDecodeTime / timescale — an arrival latency, with no
 * playout buffer on top. How each stream ended tells the sender's resets (RESET_STREAM: its resource
 * limit) from the consumer's own STOP_SENDING. With several video renditions in the catalog it chooses
 * one as the page does (RenditionChooser, SELECT). One JSON object per line on stdout; runs until SIGTERM
 * or stdin closes.
 */
import { readFragments } from '../../src/media/index.js';
import {
  RenditionChooser,
  WarpConsumer,
  encodeSelectStream,
  type IncomingWarpStream,
  type RenditionChoice,
  type SegmentRef,
  type WarpCatalog,
} from '../../src/warp/index.js';
import { connectWebTransport, StreamAbortedError, type SessionStream } from '../../src/webtransport/index.js';

export type ViewerEvent =
  | { type: 'catalog'; t: number; availabilityStartTime: number; orderPolicy: string; tracks: string[] }
  | { type: 'fragment'; t: number; track: string; kind: 'video' | 'audio'; latencyMs: number; bytes: number }
  | { type: 'segment'; t: number; track: string; path: string | null; complete: boolean; bytes: number }
  | { type: 'skip'; t: number; track: string; why: string }
  | { type: 'select'; t: number; track: string; why: string }
  | { type: 'stream'; t: number; outcome: 'fin' | 'peer-reset' | 'stopped' | 'other'; bytes: number }
  | { type: 'stats'; t: number; delivered: number; skipped: number; stopped: number; streams: number }
  | { type: 'error'; t: number; message: string };

const { url, bufferMs, initialMaxData } = JSON.parse(process.argv[2] ?? '{}') as {
  url: string;
  bufferMs: number;
  initialMaxData?: number;
};
const emit = (e: ViewerEvent) => process.stdout.write(`${JSON.stringify(e)}\n`);

/** Top-level box length at `at`, or undefined while its header is incomplete. */
function boxLength(bytes: Uint8Array, at: number): number | undefined {
  if (bytes.length - at < 8) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset + at);
  const size = view.getUint32(0);
  if (size !== 1) return size;
  if (bytes.length - at < 16) return undefined;
  return Number(view.getBigUint64(8));
}

/** Cuts a segment's bytes, as they trickle in, into whole moof+mdat fragments. */
class FragmentCutter {
  private pending = new Uint8Array(0);
  private moofAt: number | undefined;
  bytes = 0;

  constructor(private readonly onFragment: (fragment: Uint8Array) => void) {}

  push(part: Uint8Array): void {
    this.bytes += part.length;
    const joined = new Uint8Array(this.pending.length + part.length);
    joined.set(this.pending);
    joined.set(part, this.pending.length);
    let at = 0;
    let keepFrom = 0;
    for (let size; (size = boxLength(joined, at)) !== undefined && at + size <= joined.length; at += size) {
      const type = String.fromCharCode(...joined.subarray(at + 4, at + 8));
      if (type === 'moof') this.moofAt = at;
      else if (type === 'mdat' && this.moofAt !== undefined) {
        this.onFragment(joined.subarray(this.moofAt, at + size));
        this.moofAt = undefined;
      }
      if (this.moofAt === undefined) keepFrom = at + size;
    }
    if (this.moofAt !== undefined) {
      this.moofAt -= keepFrom;
    }
    this.pending = joined.slice(keepFrom);
  }
}

let catalog: WarpCatalog | undefined;
let chooser: RenditionChooser | undefined;
let selectSeq = 0;
function chose(choice: RenditionChoice | undefined): void {
  if (!choice) return;
  emit({ type: 'select', t: Date.now(), track: choice.track, why: choice.why });
  void session
    .openStream({ bidirectional: false })
    .end(encodeSelectStream(selectSeq++, choice.track))
    .catch(() => undefined);
}
const isVideo = (id: string) => catalog?.tracks.find((t) => t.id === id)?.kind === 'video';
const cutters = new Map<SegmentRef, FragmentCutter>();

const consumer = new WarpConsumer(
  {
    catalog: (c) => {
      catalog = c;
      emit({
        type: 'catalog',
        t: Date.now(),
        availabilityStartTime: c.availabilityStartTime,
        orderPolicy: c.orderPolicy,
        tracks: c.tracks.map((t) => t.id),
      });
      const videos = c.tracks.filter((t) => t.kind === 'video');
      const audio = c.tracks.filter((t) => t.kind === 'audio').reduce((n, t) => n + t.bandwidth, 0);
      if (videos.length > 1) chooser = new RenditionChooser(videos, undefined, { otherBps: audio });
    },
    progress: (segment, bytes, elapsedMs) => {
      if (isVideo(segment.track))
        chose(
          chooser?.progress(
            segment.track,
            bytes,
            elapsedMs,
            (catalog?.segmentDuration ?? 2) * 1000,
            Date.now(),
            segment,
          ),
        );
    },
    arrived: (segment, arrival) => {
      if (isVideo(segment.track)) chose(chooser?.arrived(segment.track, arrival, Date.now()));
    },
    data: (segment, bytes) => {
      let cutter = cutters.get(segment);
      if (!cutter) {
        const track = catalog!.tracks.find((t) => t.id === segment.track)!;
        cutter = new FragmentCutter((fragment) => {
          const decodeTime = readFragments(fragment)[0]?.trackFragments[0]?.baseMediaDecodeTime;
          if (decodeTime === undefined) return;
          const t = Date.now();
          emit({
            type: 'fragment',
            t,
            track: track.id,
            kind: track.kind,
            latencyMs: t - (catalog!.availabilityStartTime + (decodeTime / track.timescale) * 1000),
            bytes: fragment.length,
          });
        });
        cutters.set(segment, cutter);
      }
      cutter.push(bytes);
    },
    end: (segment, complete) => {
      emit({
        type: 'segment',
        t: Date.now(),
        track: segment.track,
        path: segment.path ?? null,
        complete,
        bytes: cutters.get(segment)?.bytes ?? 0,
      });
      cutters.delete(segment);
    },
    skip: (track, _decodeTime, why) => {
      emit({ type: 'skip', t: Date.now(), track, why });
      if (why !== 'old' && isVideo(track)) chose(chooser?.cut(track, Date.now()));
    },
  },
  { bufferMs },
);

/** The stream as the consumer reads it, reporting how it ended. */
function watched(stream: SessionStream): IncomingWarpStream {
  let stopped = false;
  let bytes = 0;
  return {
    stop(code) {
      stopped = true;
      stream.stopSending(code);
    },
    async *[Symbol.asyncIterator]() {
      let outcome: Extract<ViewerEvent, { type: 'stream' }>['outcome'] = 'fin';
      try {
        for await (const chunk of stream) {
          bytes += chunk.length;
          yield chunk;
        }
      } catch (error) {
        outcome = stopped
          ? 'stopped'
          : error instanceof StreamAbortedError && error.by === 'peer-reset'
            ? 'peer-reset'
            : 'other';
        throw error;
      } finally {
        if (stopped && outcome === 'fin') outcome = 'stopped';
        emit({ type: 'stream', t: Date.now(), outcome, bytes });
      }
    },
  };
}

// The development certificate names localhost, not the lab's address; the viewer measures, it does not authenticate.
const session = await connectWebTransport(url, { verifyPeer: false, initialMaxData });
session.on('stream', (stream) => void consumer.addStream(watched(stream)));
session.once('close', (info) =>
  emit({ type: 'error', t: Date.now(), message: `session closed: ${info.code} ${info.reason}` }),
);

const timer = setInterval(() => {
  const s = consumer.stats();
  emit({
    type: 'stats',
    t: Date.now(),
    delivered: s.segmentsDelivered,
    skipped: s.segmentsSkipped,
    stopped: s.segmentsStopped,
    streams: s.streams,
  });
}, 1000);

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  clearInterval(timer);
  consumer.close();
  void Promise.race([session.close(0, 'viewer left'), new Promise((r) => setTimeout(r, 2000))]).finally(() =>
    process.exit(0),
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop).resume();
