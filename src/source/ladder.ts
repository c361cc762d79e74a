/** One video rendition of the encoding ladder. */
export interface VideoRendition {
  id: string;
  width: number;
  height: number;
  /** bit/s */
  bitrate: number;
}

export interface AudioRendition {
  id: string;
  /** bit/s */
  bitrate: number;
  sampleRate: number;
  channels: number;
}

export const DEFAULT_VIDEO_LADDER: readonly VideoRendition[] = [
  { id: 'video-360p', width: 640, height: 360, bitrate: 800_000 },
  { id: 'video-540p', width: 960, height: 540, bitrate: 1_600_000 },
  { id: 'video-720p', width: 1280, height: 720, bitrate: 3_000_000 },
];

export const DEFAULT_AUDIO: AudioRendition = { id: 'audio-128k', bitrate: 128_000, sampleRate: 48_000, channels: 2 };

/** Parses `640x360@800k,1280x720@3M` into renditions named by their height. */
export function parseLadder(spec: string): VideoRendition[] {
  const renditions = spec.split(',').map((part) => {
    const m = /^\s*(\d+)x(\d+)@(\d+(?:\.\d+)?)([kKmM]?)\s*$/.exec(part);
    if (!m) throw new Error(`ladder entry '${part}' is not WIDTHxHEIGHT@BITRATE (e.g. 1280x720@3M)`);
    const [, w, h, rate, unit] = m;
    const scale = { m: 1e6, k: 1e3 }[unit?.toLowerCase() ?? ''] ?? 1;
    const width = Number(w);
    const height = Number(h);
    // H.264 4:2:0 needs even dimensions.
    if (width % 2 || height % 2 || width < 16 || height < 16)
      throw new Error(`ladder entry '${part}': width and height must be even and at least 16`);
    return { id: `video-${height}p`, width, height, bitrate: Math.round(Number(rate) * scale) };
  });
  const ids = new Set(renditions.map((r) => r.id));
  if (ids.size !== renditions.length) throw new Error(`ladder '${spec}' has two renditions of the same height`);
  return renditions;
}
