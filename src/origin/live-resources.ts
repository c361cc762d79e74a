import { createHash, randomBytes } from 'node:crypto';
import { initPath, segmentPath, type LiveTrack, type LiveWindow, type Segment } from '../media/index.js';
import type { GrowingBody, PushResource } from './push/server-push.js';
import { CACHE_INIT, CACHE_SEGMENT } from './responses.js';

export function mediaType(track: LiveTrack): string {
  return track.info.kind === 'audio' ? 'audio/mp4' : 'video/mp4';
}

export function initEtag(init: Uint8Array): string {
  return `"${createHash('sha256').update(init).digest('base64url').slice(0, 22)}"`;
}

/** Headers of a media segment response, whether requested or pushed. */
export function segmentHeaders(track: LiveTrack, etag: string): Record<string, string> {
  return { 'Content-Type': mediaType(track), 'Cache-Control': CACHE_SEGMENT, ETag: etag };
}

/**
 * The live window's init and media segments as the responses that carry them, wherever they go: a
 * request's answer, an HTTP/2 push, another delivery mode's copy. The same URL gets the same headers.
 */
export class LiveResources {
  /** Segment ETags name this origin run: a restarted origin's segment N is other bytes. */
  private readonly instance = randomBytes(4).toString('hex');

  constructor(
    private readonly window: LiveWindow,
    /** Headers every origin response carries (CORS). */
    private readonly commonHeaders: () => Record<string, string>,
  ) {}

  segmentEtag(trackId: string, number: number): string {
    return `"${this.instance}-${trackId}-${number}"`;
  }

  /** A partial segment's ETag (an LL-HLS part: chunk `part` of the segment). */
  partEtag(trackId: string, number: number, part: number): string {
    return `"${this.instance}-${trackId}-${number}.${part}"`;
  }

  /** The renditions a player starts with: the lowest-bandwidth video and every audio track. */
  defaultTracks(): LiveTrack[] {
    const tracks = [...this.window.tracks.values()].filter((t) => t.init);
    const video = tracks.filter((t) => t.info.kind === 'video').sort((a, b) => a.info.bandwidth - b.info.bandwidth)[0];
    return [...(video ? [video] : []), ...tracks.filter((t) => t.info.kind === 'audio')];
  }

  initResource(track: LiveTrack): PushResource {
    const init = track.init!;
    return {
      path: initPath(track.id),
      status: 200,
      headers: {
        ...this.commonHeaders(),
        'content-type': mediaType(track),
        'content-length': String(init.byteLength),
        etag: initEtag(init),
        'cache-control': CACHE_INIT,
        'accept-ranges': 'bytes',
      },
      body: init,
    };
  }

  /** A segment as its pushed response: whole when complete, else growing chunk by chunk like a LL-DASH response. */
  segmentResource(track: LiveTrack, segment: Segment): PushResource {
    const headers: Record<string, string> = {
      ...this.commonHeaders(),
      ...segmentHeaders(track, this.segmentEtag(track.id, segment.number)),
    };
    const path = segmentPath(track.id, segment.number);
    if (segment.complete) {
      const bytes = segment.bytes();
      return {
        path,
        status: 200,
        headers: { ...headers, 'content-length': String(bytes.byteLength), 'accept-ranges': 'bytes' },
        body: bytes,
      };
    }
    const body: GrowingBody = {
      parts: segment.chunks.map((c) => c.bytes),
      follow: (onPart, onEnd) => {
        const offChunk = track.on('chunk', (s, chunk) => s === segment && onPart(chunk.bytes));
        const offEnd = track.on('segmentcompleted', (s) => s === segment && onEnd());
        const offEvicted = track.on('segmentevicted', (s) => s === segment && onEnd());
        return () => {
          offChunk();
          offEnd();
          offEvicted();
        };
      },
    };
    return { path, status: 200, headers, body };
  }

  /**
   * A track's init segment, or a complete media segment, with the header fields of its unicast 200
   * response (lowercase names, no content-length): what another delivery mode sends in its place.
   */
  completeResource(
    trackId: string,
    which: number | 'init',
  ): { path: string; headers: Record<string, string>; body: Uint8Array } | undefined {
    const track = this.window.track(trackId);
    if (!track?.init) return undefined;
    if (which === 'init') {
      return {
        path: initPath(track.id),
        headers: {
          'content-type': mediaType(track),
          etag: initEtag(track.init),
          'cache-control': CACHE_INIT,
          'accept-ranges': 'bytes',
        },
        body: track.init,
      };
    }
    const segment = track.get(which);
    if (!segment?.complete || segment.truncated) return undefined;
    return { ...this.growingResource(trackId, which)!, body: segment.bytes() };
  }

  /** A media segment's URL and the header fields of its unicast 200 response, as soon as it has started. */
  growingResource(trackId: string, number: number): { path: string; headers: Record<string, string> } | undefined {
    const track = this.window.track(trackId);
    if (!track?.init || !track.get(number)) return undefined;
    return {
      path: segmentPath(track.id, number),
      headers: {
        'content-type': mediaType(track),
        etag: this.segmentEtag(track.id, number),
        'cache-control': CACHE_SEGMENT,
        'accept-ranges': 'bytes',
      },
    };
  }
}
