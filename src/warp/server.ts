/**
 * Warp sessions for broadcasts (draft-lcurley-warp-00 §4.1, §4.7, §5.4): a SessionRoute for
 * `/warp/<broadcast>`, on WebTransport over HTTP/3 and on the WebSocket fallback alike.
 *
 * - Authorization, each session's sender and resource limit, totals, GOAWAY and close are the fan-out's
 *   (`WarpFanout`, shared with the relay): tokens (401, 403), unknown broadcast (404), `maxSessions` (503).
 * - A session gets the catalog, the init segments and each track's newest segment (the newest GoP), then
 *   every new segment as the producer makes it.
 * - `latency=<ms>` in the query is the viewer's buffer: the sender's resource limit follows it, since
 *   media the player would skip anyway is not worth queuing.
 * - `tracks=<id>,<id>` picks the tracks the session starts with (400 for an unknown one), `tracks=*` every
 *   track (a relay's subscription); by default the best video rendition and every audio track. The
 *   catalog lists every track of the broadcast, and the resource limit follows the bitrate of those sent.
 * - **Rendition switching**: a viewer's SELECT (src/warp/select.ts) changes the track of a kind from the
 *   next segment number on; the new track's init is sent at once.
 * - `order=<policy>` picks the session's delivery order (§2.2) among those the operator allows (400
 *   otherwise): the producer's orders are rewritten for it as a relay's are (§4.5), and the session's
 *   catalog names it.
 * - A broadcast whose catalog is not known yet refuses sessions (503).
 * - `drain(successor)`: the operator's GOAWAY to every session, new ones refused until the process ends.
 */
import type { Session, SessionRefusal, SessionRequest, SessionRoute } from '../webtransport/index.js';
import type { WarpCatalog } from './catalog.js';
import { WarpFanout, type WarpDrainReport, type WarpFanoutOptions, type WarpFanoutStats } from './fanout.js';
import { isOrderPolicy } from './order.js';
import { parseWarpPath } from './path.js';
import { catalogSource, type WarpProducer } from './producer.js';
import { relayOrder } from './relay/reorder.js';
import { TrackSelection, bestTrack } from './select.js';

export type WarpServerOptions = WarpFanoutOptions;

/**
 * A WarpServer's counts. The stream and byte totals cover every session so far, the closed ones
 * included (they are kept when a session closes), so they never go down; backlogBytes is now.
 */
export type WarpServerStats = WarpFanoutStats;

interface ViewerChoice {
  broadcast: string;
  selection: TrackSelection;
}

/** `tracks=*` asks for every track. */
export const ALL_TRACKS = '*';

/** The best video rendition and every audio track. */
export function defaultTracks(catalog: WarpCatalog): string[] {
  const video = bestTrack(catalog, 'video');
  return [...(video ? [video.id] : []), ...catalog.tracks.filter((t) => t.kind === 'audio').map((t) => t.id)];
}

export class WarpServer implements SessionRoute {
  private readonly broadcasts = new Map<string, WarpProducer>();
  private readonly fanout: WarpFanout<ViewerChoice>;

  constructor(o: WarpServerOptions = {}) {
    this.fanout = new WarpFanout(o, 'warp');
  }

  add(producer: WarpProducer): void {
    this.broadcasts.set(producer.o.broadcast, producer);
    producer.on('segment', (source) => {
      for (const v of this.fanout)
        if (v.data.broadcast === producer.o.broadcast && v.data.selection.wants(source.track, source.segment))
          v.sender.send(source);
    });
  }

  authorize(request: SessionRequest): SessionRefusal | undefined {
    return this.fanout.authorize(
      request,
      (broadcast) => this.broadcasts.has(broadcast),
      (target) => {
        const catalog = this.broadcasts.get(target.broadcast)!.catalog();
        if (!catalog) return this.fanout.refuse(503, 'the broadcast is starting');
        const unknown = target.tracks?.filter((t) => t !== ALL_TRACKS && !catalog.tracks.some((c) => c.id === t));
        if (unknown?.length)
          return this.fanout.refuse(
            400,
            `no track named ${unknown.join(', ')} (tracks: ${catalog.tracks.map((t) => t.id).join(', ')})`,
          );
        return undefined;
      },
    );
  }

  session(session: Session, request: SessionRequest): void {
    const target = parseWarpPath(request.path)!;
    const producer = this.broadcasts.get(target.broadcast)!;
    const full = producer.catalog()!;
    const initial = target.tracks?.includes(ALL_TRACKS)
      ? full.tracks.map((t) => t.id)
      : (target.tracks ?? defaultTracks(full));
    const selection = new TrackSelection(full, initial);
    // The viewer's own delivery order, when it is not the producer's: each stream's order recomputed from it.
    const asked = isOrderPolicy(target.order) ? target.order : undefined; // checked in authorize
    const own = asked !== full.orderPolicy ? asked : undefined;
    const catalog = own === undefined ? full : { ...full, orderPolicy: own };
    const viewer = this.fanout.add(
      session,
      request,
      {
        bitsPerSecond: selection.bitsPerSecond(),
        reorder: own === undefined ? undefined : (h) => relayOrder(own, full, h),
        select: (r) => {
          const track = selection.select(r, producer.newestSegment);
          if (!track) return;
          // The new rendition's init goes ahead of its first segment, which depends on it (§3.3).
          const init = producer.init(track.id);
          if (init) viewer.sender.send(init);
          this.fanout.resize(viewer, selection.bitsPerSecond());
        },
      },
      { broadcast: target.broadcast, selection },
    );
    const { sender } = viewer;
    sender.send(catalogSource(catalog));
    for (const id of selection.tracks()) {
      const init = producer.init(id);
      if (init) sender.send(init);
    }
    for (const source of producer.current()) if (selection.wants(source.track, source.segment)) sender.send(source);
  }

  /**
   * §5.4: every session is told to connect to `url`, finishes the segments under way, then is closed
   * with code 1; `graceMs` bounds each step.
   */
  goaway(url: string, graceMs: number): Promise<void> {
    return this.fanout.goaway(url, graceMs);
  }

  /**
   * The operator's GOAWAY: every session is sent to `successor`, new ones are refused (503); resolves
   * once the last has gone, or at `timeoutMs` with the rest cut (`WarpFanout.drain`).
   */
  drain(successor: string, timeoutMs: number): Promise<WarpDrainReport> {
    return this.fanout.drain(successor, timeoutMs);
  }

  /** Counts for metrics; it walks the open sessions, so it is for a scrape, not for a hot path. */
  stats(): WarpServerStats {
    return this.fanout.stats();
  }

  /** §4.7: code 0, the broadcast is over; resolves once every session's close is sent. */
  close(): Promise<void> {
    return this.fanout.close('broadcast terminated');
  }
}
