/**
 * The multicast reception window (WHP 336 §5.2): the Service Worker makes the player ask for each segment
 * a little later than the origin's MPD would, so that the segment has been pushed over multicast, verified,
 * and if need be repaired before the request arrives. It does so by editing the dynamic MPD
 * (ISO/IEC 23009-1):
 * - `MPD@availabilityStartTime` moves later by the window, so every segment becomes available that much
 *   later (§5.3.9.5.3). The player's latency target (`MPD@suggestedPresentationDelay`, the
 *   ServiceDescription `Latency`, §K.4) stays as it is: the player holds it behind the moved live edge, so
 *   the latency it reaches is the target plus the window, once (adding the window to the target too would
 *   count it twice);
 * - the low-latency announcement (`availabilityTimeOffset`, `availabilityTimeComplete`) is removed unless
 *   `lowLatency`: a segment pushed whole is whole or nothing, so the player must not ask for one still
 *   being produced; a segment pushed chunk by chunk can be answered while it grows, as the origin does;
 * - `MPD@timeShiftBufferDepth` shrinks by the window: the moved timeline must not reach back to segments
 *   that the origin has already let go of (its own window ends that much earlier in the new timeline).
 * Pure string work on the MPD pushcast's origin writes (and any like it); isomorphic.
 *
 * Apart from the window, {@link markSegmentTemplate} marks the SegmentTemplate's URLs for multicast, so
 * that the segment requests of the player that asked for a marked MPD are marked too, and only those reach
 * the Service Worker's multicast path.
 */
import { markMulticast } from '../../media/live/url-scheme.js';

export interface MpdTemplate {
  /** Seconds. */
  segmentDuration: number;
  representations: string[];
}

function attr(element: string, name: string): string | undefined {
  return new RegExp(`\\s${name}="([^"]*)"`).exec(element)?.[1];
}

/** xs:duration of the form PT…S, as the origin writes it (PT1.5S, PT60S, PT1M0S…). */
export function parseDuration(text: string): number | undefined {
  const m = /^P(?:(\d+(?:\.\d+)?)D)?T?(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?$/.exec(text);
  if (!m || text === 'P' || text === 'PT') return undefined;
  return Number(m[1] ?? 0) * 86400 + Number(m[2] ?? 0) * 3600 + Number(m[3] ?? 0) * 60 + Number(m[4] ?? 0);
}

function formatDuration(seconds: number): string {
  return `PT${Number(seconds.toFixed(3))}S`;
}

/**
 * The segment duration and representation IDs of a SegmentTemplate MPD: its @duration, or with a
 * SegmentTimeline (segments of varying lengths), MPD@maxSegmentDuration, the longest a segment takes.
 */
export function readTemplate(mpd: string): MpdTemplate | undefined {
  const template = /<SegmentTemplate\b[^>]*>/.exec(mpd)?.[0];
  if (!template) return undefined;
  const representations = [...mpd.matchAll(/<Representation\b[^>]*\sid="([^"]+)"/g)].map((m) => m[1]!);
  if (attr(template, 'duration') === undefined && /<SegmentTimeline\b/.test(mpd)) {
    const root = /<MPD\b[^>]*>/.exec(mpd)?.[0] ?? '';
    const longest = parseDuration(attr(root, 'maxSegmentDuration') ?? '');
    return longest && longest > 0 ? { segmentDuration: longest, representations } : undefined;
  }
  const duration = Number(attr(template, 'duration'));
  const timescale = Number(attr(template, 'timescale') ?? 1);
  if (!(duration > 0 && timescale > 0)) return undefined;
  return { segmentDuration: duration / timescale, representations };
}

/** The MPD with its timeline moved `windowSeconds` later (see the file comment). */
export function openReceptionWindow(mpd: string, windowSeconds: number, o: { lowLatency?: boolean } = {}): string {
  let out = mpd.replace(/<MPD\b[^>]*>/, (root) => {
    let r = root.replace(/\savailabilityStartTime="([^"]*)"/, (whole, value: string) => {
      const t = Date.parse(value);
      return Number.isFinite(t)
        ? ` availabilityStartTime="${new Date(t + windowSeconds * 1000).toISOString()}"`
        : whole;
    });
    r = r.replace(/\stimeShiftBufferDepth="([^"]*)"/, (whole, value: string) => {
      const d = parseDuration(value);
      return d === undefined || d <= windowSeconds
        ? whole
        : ` timeShiftBufferDepth="${formatDuration(d - windowSeconds)}"`;
    });
    return r;
  });
  if (!o.lowLatency)
    out = out.replace(/\savailabilityTimeOffset="[^"]*"/g, '').replace(/\savailabilityTimeComplete="[^"]*"/g, '');
  return out;
}

const XML_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function xmlUnescape(value: string): string {
  return value.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-z]+);/g, (whole, name: string) =>
    name.startsWith('#x')
      ? String.fromCodePoint(Number.parseInt(name.slice(2), 16))
      : name.startsWith('#')
        ? String.fromCodePoint(Number(name.slice(1)))
        : (XML_ENTITIES[name] ?? whole),
  );
}

function xmlEscape(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * The MPD with every SegmentTemplate's `media` and `initialization` URL marked for multicast
 * (`$RepresentationID$/$Number$.m4s?delivery=multicast`; ISO/IEC 23009-1 §5.3.9.4.4 lets a template carry
 * a query, and a DASH client keeps it when it builds a segment URL). Templates already marked stay as they
 * are.
 */
export function markSegmentTemplate(mpd: string): string {
  return mpd.replace(/<SegmentTemplate\b[^>]*>/g, (template) =>
    template.replace(
      /(\s(?:media|initialization)=")([^"]*)"/g,
      (_, start: string, value: string) => `${start}${xmlEscape(markMulticast(xmlUnescape(value)))}"`,
    ),
  );
}
