/** What the bench's clients read from pushcast's live MPD (src/media/dash/mpd.ts writes it). */
export interface LiveTiming {
  /** availabilityStartTime, ms since the epoch. */
  ast: number;
  /** Segment duration, seconds. */
  duration: number;
  startNumber: number;
  /** availabilityTimeOffset, seconds (LL-DASH: a segment is announced this long before it is complete). */
  ato: number;
  /** Representation ids, lowest bandwidth first. */
  video: string[];
  audio: string[];
}

export function parseMpd(text: string): LiveTiming {
  const attr = (src: string, name: string) => new RegExp(`\\b${name}="([^"]*)"`).exec(src)?.[1];
  const template = /<SegmentTemplate\b[^>]*>/.exec(text)?.[0];
  const astText = attr(text, 'availabilityStartTime');
  if (!template || !astText) throw new Error('not a live pushcast MPD');
  const timescale = Number(attr(template, 'timescale') ?? 1);
  const reps = (kind: string) => {
    const set =
      new RegExp(`<AdaptationSet\\b[^>]*contentType="${kind}"[\\s\\S]*?</AdaptationSet>`).exec(text)?.[0] ?? '';
    return [...set.matchAll(/<Representation id="([^"]+)" bandwidth="(\d+)"/g)]
      .map(([, id = '', bandwidth]) => ({ id, bandwidth: Number(bandwidth) }))
      .sort((a, b) => a.bandwidth - b.bandwidth)
      .map((r) => r.id);
  };
  return {
    ast: Date.parse(astText),
    duration: Number(attr(template, 'duration')) / timescale,
    startNumber: Number(attr(template, 'startNumber') ?? 1),
    ato: Number(attr(template, 'availabilityTimeOffset') ?? 0),
    video: reps('video'),
    audio: reps('audio'),
  };
}

/** The segment whose availability time (AST + (n − startNumber + 1)·d) is the newest one ≤ `now`. */
export function newestAvailable(t: LiveTiming, now: number): number {
  return t.startNumber + Math.floor((now - t.ast) / 1000 / t.duration) - 1;
}

/** Availability time of segment `n` (ISO/IEC 23009-1 §5.3.9.5.3, without availabilityTimeOffset), ms. */
export function availableAt(t: LiveTiming, n: number): number {
  return t.ast + (n - t.startNumber + 1) * t.duration * 1000;
}

/** The next moment, at least `leadMs` from `now`, that lies `phase` seconds after a segment boundary. */
export function nextPhase(t: LiveTiming, now: number, phase: number, leadMs: number): number {
  const d = t.duration * 1000;
  const k = Math.ceil((now + leadMs - t.ast - phase * 1000) / d);
  return t.ast + k * d + phase * 1000;
}
