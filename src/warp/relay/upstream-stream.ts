/**
 * Reads one upstream stream (draft-lcurley-warp-00 §4.2, §4.5: HEADERS come "at the start of each
 * stream so it is easy for a relay to parse"), and decides what it is:
 *
 * - **relay**: a stream with an ID (a segment, an init seen for the first time): the bytes after HEADERS
 *   are passed on untouched, chunk by chunk as they arrive, not at message or segment ends
 *   (`RelayedStreams`). Every chunk goes through a `WarpStreamReader` first: a malformed stream is aborted
 *   downstream (RESET_STREAM) and counted, and nothing else is affected.
 * - **control**: no ID, the upstream's hop-by-hop streams (pushcast's GOAWAY stream, §5.4): read here,
 *   never forwarded; a GOAWAY is followed.
 * - **catalog** (HEADERS id 0, one APP message, §5.3): taken as soon as its APP message is whole, not at FIN.
 * - **refresh**: an init whose ID was relayed whole already: kept for new joiners if its bytes changed.
 *
 * Bounds: streams read at once (`maxUpstreamStreams` + 64 for control streams and streams before their
 * HEADERS; past it a new stream is stopped), bytes per stream (`maxStreamBytes`), a control stream 64 KiB,
 * a catalog 256 KiB.
 */
import { StreamAbortedError, type SessionStream } from '../../webtransport/index.js';
import { WarpStreamReader, WireError, concatBytes, type WarpHeaders } from '../../wire/index.js';
import { CATALOG_ID } from '../catalog.js';
import type { Copy, DropReason } from './relayed.js';
import { RelayDrop, stopQuietly } from './relayed.js';
import type { RelayedStreams } from './relayed-streams.js';
import type { RelayStreamCounters } from './stats.js';
import type { Upstream } from './upstream.js';

const MAX_CONTROL_STREAM_BYTES = 64 * 1024;
const MAX_CATALOG_BYTES = 256 * 1024;
/** Upstream streams being read before their HEADERS / as control streams, beyond the relayed ones. */
const EXTRA_READING = 64;

type Role = 'control' | 'catalog' | 'refresh' | 'relay';

/** What the reader hands its findings to: the relay. */
export interface UpstreamStreamContext {
  readonly counters: RelayStreamCounters;
  readonly streams: RelayedStreams;
  /** The relay is stopping: new streams are stopped. */
  readonly stopping: boolean;
  /** A stream of `up` was read: the upstream serves. */
  served(): void;
  followGoaway(url: string, up: Upstream): void;
  /** The catalog's APP payload (§5.3). */
  catalog(headers: WarpHeaders, payload: Uint8Array): void;
  /** An init stream whose ID was relayed whole already, read whole again. */
  refreshInit(headers: WarpHeaders, bytes: Uint8Array): void;
  log?(line: string): void;
}

export class UpstreamStreamReader {
  private reading = 0;

  constructor(
    private readonly maxUpstreamStreams: number,
    private readonly ctx: UpstreamStreamContext,
  ) {}

  private roleOf(h: WarpHeaders): Role {
    if (h.id === undefined) return 'control';
    const media = (h.depends?.length ?? 0) > 0;
    if (!media && h.id === CATALOG_ID) return 'catalog';
    if (!media && this.ctx.streams.isComplete(h.id)) return 'refresh';
    return 'relay';
  }

  /** Reads one upstream stream: HEADERS, then each chunk validated and passed on as it comes. Never throws. */
  async read(stream: SessionStream, up: Upstream): Promise<void> {
    const { counters, streams } = this.ctx;
    counters.streamsReceived++;
    if (this.ctx.stopping || this.reading >= this.maxUpstreamStreams + EXTRA_READING) {
      counters.limited++;
      stream.stopSending(0);
      return;
    }
    this.ctx.served();
    this.reading++;
    const reader = new WarpStreamReader();
    let pre: Uint8Array[] = [];
    let headers: WarpHeaders | undefined;
    let role: Role | undefined;
    let copy: Copy | undefined;
    let bytes = 0;
    const whole: Uint8Array[] = [];
    const app: Uint8Array[] = [];
    let catalogDone = false;
    try {
      for await (const chunk of stream) {
        counters.bytesReceived += chunk.length;
        reader.push(chunk);
        let part = chunk;
        if (!headers) {
          pre.push(chunk);
          const first = reader.next();
          if (first === undefined) continue;
          if (first.kind !== 'headers') throw new RelayDrop('malformed', 'no HEADERS first'); // the reader enforces §4.2
          headers = first;
          part = concatBytes(pre).subarray(reader.offset);
          pre = [];
          role = this.roleOf(headers);
        }
        // Validate the chunk before a byte of it goes on: cut-through, but nothing malformed downstream.
        let goaway: string | undefined;
        let catalogEnd = false;
        for (let e; (e = reader.next()) !== undefined; ) {
          if (e.kind === 'goaway') goaway = e.url;
          else if (e.kind === 'app-data' && role === 'catalog' && !catalogDone) {
            app.push(e.data);
            catalogEnd ||= e.end;
          }
        }
        if (goaway !== undefined) {
          this.ctx.followGoaway(goaway, up);
          if (role !== 'control') throw new RelayDrop('malformed', 'a GOAWAY on a stream with an ID');
        }
        if (role === 'relay') {
          copy ??= streams.attach(headers, stream);
          if (!copy) return;
        }
        bytes += part.length;
        const limit =
          role === 'control'
            ? MAX_CONTROL_STREAM_BYTES
            : role === 'catalog'
              ? MAX_CATALOG_BYTES
              : streams.maxStreamBytes;
        if (bytes > limit) throw new RelayDrop('oversize', `a ${role} stream of more than ${limit} bytes`);
        if (copy) {
          streams.receive(copy, part);
          if (copy.dropped) return;
          continue;
        }
        if (role === 'refresh' && part.length > 0) whole.push(part);
        // The catalog is its APP message (§5.3): taken when that ends, not at FIN, so nothing waits for a FIN.
        if (catalogEnd) {
          catalogDone = true;
          this.ctx.catalog(headers, concatBytes(app));
        }
      }
      if (copy?.dropped) return;
      // A stream of a closed session ends without telling whether it was whole: it counts as lost.
      if (up.closed || this.ctx.stopping) throw new RelayDrop('lost', 'the upstream session closed');
      reader.end();
      if (role === 'control') counters.controlStreams++;
      else if (role === 'catalog' && !catalogDone)
        throw new RelayDrop('malformed', 'a catalog stream without an APP message');
      else if (role === 'refresh') this.ctx.refreshInit(headers!, concatBytes(whole));
      else if (copy) streams.ended(copy);
    } catch (error) {
      const why: DropReason =
        error instanceof RelayDrop
          ? error.why
          : error instanceof WireError
            ? 'malformed'
            : error instanceof StreamAbortedError || up.closed || this.ctx.stopping
              ? 'lost'
              : 'malformed';
      // `lost` counts relayed copies only (a control or catalog stream cut by its session's end is no loss).
      if (!copy?.dropped && (why !== 'lost' || copy)) {
        if (why === 'malformed' || why === 'oversize') {
          this.ctx.log?.(
            `relay: upstream stream${headers?.id === undefined ? '' : ` ${headers.id}`} dropped (${why}): ${error instanceof Error ? error.message : String(error)}`,
          );
        }
        this.count(why);
      }
      if (copy) streams.drop(copy, why);
      else if (why !== 'lost') stopQuietly(stream);
    } finally {
      this.reading--;
    }
  }

  private count(why: DropReason): void {
    const c = this.ctx.counters;
    if (why === 'malformed' || why === 'mismatch') c.malformed++;
    else if (why === 'oversize') c.oversize++;
    else if (why === 'limit') c.limited++;
    else if (why === 'lost') c.lost++;
    else c.duplicates++;
  }
}
