/**
 * Low-latency HLS playlists over the live window's CMAF segments (RFC 8216, and its second edition
 * draft-pantos-hls-rfc8216bis, "8216bis" below, for the low-latency tags). Pure text from plain values:
 * the origin decides what the segments are, this module only writes them down, so a unit test can check
 * every rule on the text alone.
 *
 * One URL space with DASH: a media segment's URI is the DASH segment (`<n>.m4s`), the init segment is the
 * DASH init (`EXT-X-MAP`), and each CMAF chunk of a segment is a partial segment with a URL of its own
 * (`<n>.<k>.m4s`, the chunk's bytes exactly: the segment is its parts end to end). Own URLs rather than byte
 * ranges of the growing segment because a part must be cacheable by its URL alone: a caching proxy (nginx
 * among them) drops `Range` when it fills its cache and keys by URL, so byte-range parts would reach
 * viewers only once the whole segment is done; and a preload hint's open-ended range cannot be answered
 * with a 206 before the part's last byte is known (docs/hls.md).
 */

/** A partial segment: one CMAF chunk (8216bis §4.4.4.9, EXT-X-PART). */
export interface HlsPart {
  /** Relative to the media playlist. */
  readonly uri: string;
  /** Seconds, exact (the chunk's sample durations over the track's timescale). */
  readonly duration: number;
  /** It starts with a sync sample (INDEPENDENT=YES). */
  readonly independent: boolean;
}

/** A media segment of a media playlist: complete (EXTINF), or still growing (its parts only). */
export interface HlsSegment {
  /** Media Sequence Number (RFC 8216 §3). */
  readonly msn: number;
  /** Relative to the media playlist. */
  readonly uri: string;
  /** Seconds, exact: the published segment's own duration, never a nominal one. Final once complete. */
  readonly duration: number;
  /** Wall-clock time of the segment's first sample, ms since the epoch (EXT-X-PROGRAM-DATE-TIME). */
  readonly programDateTime: number;
  readonly complete: boolean;
  readonly parts: readonly HlsPart[];
}

export interface MediaPlaylistParams {
  /** EXT-X-TARGETDURATION, whole seconds: the same in every media playlist of the presentation. */
  readonly targetDuration: number;
  /** EXT-X-PART-INF PART-TARGET, seconds: no part is longer. */
  readonly partTarget: number;
  /** EXT-X-SERVER-CONTROL PART-HOLD-BACK, seconds: at least twice the part target. */
  readonly partHoldBack: number;
  /** EXT-X-MAP URI of the init segment. */
  readonly initUri: string;
  /** Oldest first; consecutive Media Sequence Numbers; only the last may be incomplete. */
  readonly segments: readonly HlsSegment[];
  /** URI of the part that comes next (EXT-X-PRELOAD-HINT TYPE=PART), if one is expected. */
  readonly preloadHint?: string;
}

/** EXT-X-VERSION: EXT-X-MAP in a playlist without EXT-X-I-FRAMES-ONLY needs 6 (RFC 8216 §7). */
export const HLS_VERSION = 6;

/** Parts are listed for segments this many target durations from the end of the playlist (8216bis §4.4.4.9). */
export const PART_LISTING_TARGET_DURATIONS = 3;

/** Decimal seconds with up to 5 decimals (RFC 8216 §4.2 decimal-floating-point), trailing zeros dropped. */
export function decimalSeconds(seconds: number): string {
  const text = seconds.toFixed(5).replace(/0+$/, '');
  return text.endsWith('.') ? `${text}0` : text;
}

/** RFC 8216 §4.3.2.6: an ISO 8601 date-time with milliseconds and a time zone. */
function dateTime(ms: number): string {
  return new Date(ms).toISOString();
}

/** A quoted-string attribute value (RFC 8216 §4.2): no double quote, CR or LF. */
function quoted(value: string): string {
  if (/["\r\n]/.test(value)) throw new Error(`an HLS quoted-string cannot hold ${JSON.stringify(value)}`);
  return `"${value}"`;
}

/**
 * A media playlist of a live rendition (RFC 8216 §4.3, 8216bis §4.4.3.7–8 and §4.4.4.9, §4.4.5.3):
 * every complete segment with its exact EXTINF and its PROGRAM-DATE-TIME, the parts of the segments near
 * the live edge, the growing segment's parts, and a preload hint for the next part. No EXT-X-ENDLIST: the
 * presentation is live.
 */
export function buildMediaPlaylist(p: MediaPlaylistParams): string {
  if (p.partHoldBack < 2 * p.partTarget)
    throw new Error(`PART-HOLD-BACK ${p.partHoldBack} is under twice PART-TARGET ${p.partTarget} (8216bis §4.4.3.8)`);
  const lines = [
    '#EXTM3U',
    `#EXT-X-VERSION:${HLS_VERSION}`,
    `#EXT-X-TARGETDURATION:${p.targetDuration}`,
    `#EXT-X-PART-INF:PART-TARGET=${decimalSeconds(p.partTarget)}`,
    `#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=${decimalSeconds(p.partHoldBack)}`,
    `#EXT-X-MEDIA-SEQUENCE:${p.segments[0]?.msn ?? 0}`,
    `#EXT-X-MAP:URI=${quoted(p.initUri)}`,
  ];
  // Parts are listed from the segment that ends within 3 target durations of the playlist's end on.
  let fromEnd = 0;
  let firstWithParts = p.segments.length;
  for (let i = p.segments.length - 1; i >= 0; i--) {
    if (fromEnd >= PART_LISTING_TARGET_DURATIONS * p.targetDuration) break;
    firstWithParts = i;
    fromEnd += p.segments[i]!.duration;
  }
  p.segments.forEach((s, i) => {
    if (!s.complete && i !== p.segments.length - 1)
      throw new Error(`segment ${s.msn} is incomplete but not the last of the playlist`);
    if (i > 0 && s.msn !== p.segments[i - 1]!.msn + 1)
      throw new Error(`Media Sequence Numbers must follow each other (${p.segments[i - 1]!.msn} then ${s.msn})`);
    // PROGRAM-DATE-TIME on every segment: a hole in the timeline (an encoder restarted) is dated exactly.
    lines.push(`#EXT-X-PROGRAM-DATE-TIME:${dateTime(s.programDateTime)}`);
    if (i >= firstWithParts || !s.complete)
      for (const part of s.parts) {
        if (part.duration > p.partTarget + 1e-9)
          throw new Error(`part ${part.uri} lasts ${part.duration} s, over PART-TARGET ${p.partTarget}`);
        lines.push(
          `#EXT-X-PART:DURATION=${decimalSeconds(part.duration)},URI=${quoted(part.uri)}${part.independent ? ',INDEPENDENT=YES' : ''}`,
        );
      }
    if (!s.complete) return;
    // RFC 8216 §4.3.3.1: each EXTINF, rounded to the nearest integer, is at most the target duration.
    if (Math.round(s.duration) > p.targetDuration)
      throw new Error(`segment ${s.msn} lasts ${s.duration} s, over the target duration ${p.targetDuration}`);
    lines.push(`#EXTINF:${decimalSeconds(s.duration)},`, s.uri);
  });
  if (p.preloadHint !== undefined) lines.push(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI=${quoted(p.preloadHint)}`);
  return `${lines.join('\n')}\n`;
}

/** A rendition as the multivariant playlist names it. */
export interface HlsRendition {
  readonly id: string;
  readonly kind: 'video' | 'audio';
  /** RFC 6381 codecs parameter. */
  readonly codec: string;
  /** Nominal bit/s. */
  readonly bandwidth: number;
  readonly width?: number;
  readonly height?: number;
  readonly channels?: number;
  /** Its media playlist, relative to the multivariant playlist. */
  readonly uri: string;
}

export interface MultivariantPlaylistParams {
  readonly renditions: readonly HlsRendition[];
  readonly frameRate?: number;
}

const AUDIO_GROUP = 'audio';

/**
 * The multivariant playlist (RFC 8216 §4.3.4, 8216bis §4.4.6): one variant stream per video rendition,
 * lowest bandwidth first, each with the audio renditions as an EXT-X-MEDIA group (alternative renditions,
 * §4.3.4.2.1); with no video, one variant per audio rendition.
 */
export function buildMultivariantPlaylist(p: MultivariantPlaylistParams): string {
  const video = p.renditions.filter((r) => r.kind === 'video').sort((a, b) => a.bandwidth - b.bandwidth);
  const audio = p.renditions.filter((r) => r.kind === 'audio').sort((a, b) => a.bandwidth - b.bandwidth);
  const lines = ['#EXTM3U', `#EXT-X-VERSION:${HLS_VERSION}`, '#EXT-X-INDEPENDENT-SEGMENTS'];
  if (video.length === 0) {
    for (const a of audio) lines.push(`#EXT-X-STREAM-INF:BANDWIDTH=${a.bandwidth},CODECS=${quoted(a.codec)}`, a.uri);
    return `${lines.join('\n')}\n`;
  }
  audio.forEach((a, i) => {
    const attrs = [
      'TYPE=AUDIO',
      `GROUP-ID=${quoted(AUDIO_GROUP)}`,
      `NAME=${quoted(a.id)}`,
      `DEFAULT=${i === 0 ? 'YES' : 'NO'}`,
      'AUTOSELECT=YES',
      ...(a.channels ? [`CHANNELS=${quoted(String(a.channels))}`] : []),
      `URI=${quoted(a.uri)}`,
    ];
    lines.push(`#EXT-X-MEDIA:${attrs.join(',')}`);
  });
  // BANDWIDTH is the peak of the whole variant, its audio included (§4.3.4.2); CODECS names every format in it.
  const audioPeak = Math.max(0, ...audio.map((a) => a.bandwidth));
  const audioCodecs = [...new Set(audio.map((a) => a.codec))];
  for (const v of video) {
    const attrs = [
      `BANDWIDTH=${v.bandwidth + audioPeak}`,
      `CODECS=${quoted([v.codec, ...audioCodecs].join(','))}`,
      ...(v.width && v.height ? [`RESOLUTION=${v.width}x${v.height}`] : []),
      ...(p.frameRate ? [`FRAME-RATE=${p.frameRate.toFixed(3)}`] : []),
      ...(audio.length > 0 ? [`AUDIO=${quoted(AUDIO_GROUP)}`] : []),
    ];
    lines.push(`#EXT-X-STREAM-INF:${attrs.join(',')}`, v.uri);
  }
  return `${lines.join('\n')}\n`;
}
