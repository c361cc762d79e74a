/**
 * A relayed stream's media as whole CMAF chunks: a relay passes a stream's bytes on as they come
 * (`partKind: 'raw'`, Warp messages cut anywhere), while a MoQ frame is one chunk whose size goes first.
 * `segmentPayloads(source)` follows such a source and gives a source with one part per SEGMENT message,
 * appended once the message is whole (a chunk crosses the relay within a network round of its own bytes).
 */
import { concatBytes, encodeWarpMessage, WarpStreamReader, WireError } from '../wire/index.js';
import { GrowingSource, type WarpSource } from './source.js';

const converted = new WeakMap<WarpSource, WarpSource>();
/** The HEADERS a raw source's bytes come after (its own were read upstream), so the reader starts in step. */
const PRIMER = encodeWarpMessage({ kind: 'headers' });

/** `source` with a part per SEGMENT payload; itself when its parts already are. One conversion per source. */
export function segmentPayloads(source: WarpSource): WarpSource {
  if (source.partKind !== 'raw') return source;
  const known = converted.get(source);
  if (known) return known;
  const out = new GrowingSource(source.headers, source.track, source.init, 'segment');
  out.segment = source.segment;
  const reader = new WarpStreamReader({ maxControlPayload: 64 * 1024 });
  reader.push(PRIMER);
  let pieces: Uint8Array[] = [];
  const feed = (part: Uint8Array) => {
    try {
      reader.push(part);
      for (let e = reader.next(); e !== undefined; e = reader.next()) {
        if (e.kind !== 'segment-data') continue;
        pieces.push(e.data);
        if (e.end) {
          out.append(concatBytes(pieces));
          pieces = [];
        }
      }
    } catch (error) {
      if (!(error instanceof WireError)) throw error;
      out.end(true);
    }
  };
  for (const part of source.parts) feed(part);
  if (source.complete || source.aborted) out.end(source.aborted);
  else source.follow(feed, (aborted) => out.end(aborted));
  converted.set(source, out);
  return out;
}
