import type { AudioRendition, VideoRendition } from './ladder.js';

/** Where the live media comes from. */
export type LiveInput =
  | { kind: 'test-pattern' }
  /** A media file looped forever at real-time speed. */
  | { kind: 'file'; path: string }
  /** Fragmented (or any streamable) MP4 arriving on pushcast's standard input. */
  | { kind: 'stdin' }
  /** An encoder publishing over RTMP to pushcast's own listener, which hands ffmpeg FLV on its standard input. */
  | RtmpInput
  /** An encoder sending over SRT (caller mode) to ffmpeg's SRT listener. */
  | SrtInput
  /** A MoQ publisher (`@moq/publish`) at `/moq`, whose frames pushcast hands ffmpeg as Matroska on its standard input. */
  | MoqInput;

export interface MoqInput {
  kind: 'moq';
  /** The broadcast the publisher announces. */
  name: string;
  /** The token it presents (`?token=`). */
  token: string;
}

export interface RtmpInput {
  kind: 'rtmp';
  host: string;
  port: number;
  /** The application, `live` in `rtmp://host:1935/live/<key>`. */
  app: string;
  key: string;
}

export interface SrtInput {
  kind: 'srt';
  host: string;
  port: number;
  /** SRT encryption passphrase (10 to 79 characters) an encoder must use; none = unencrypted, anyone may send. */
  passphrase?: string;
  /** SRT receiver latency, ms (the buffer that absorbs retransmissions). */
  latencyMs: number;
}

/** Whether the input is an encoder connecting to pushcast (RTMP, SRT): live by nature, it comes and goes. */
export function isIngest(input: LiveInput): input is RtmpInput | SrtInput | MoqInput {
  return input.kind === 'rtmp' || input.kind === 'srt' || input.kind === 'moq';
}

/**
 * Reads `--input rtmp://0.0.0.0:1935/live/<key>` or `srt://0.0.0.0:9000?passphrase=…&latency=<ms>` (listener
 * addresses), or returns undefined for anything else.
 */
export function parseIngestUrl(spec: string): RtmpInput | SrtInput | MoqInput | undefined {
  const scheme = /^(rtmp|srt|moq):\/\//i.exec(spec)?.[1]?.toLowerCase();
  if (!scheme) return undefined;
  if (scheme === 'moq') {
    // moq://<broadcast>?token=<token>: the broadcast name may hold slashes, the token is required.
    const [path = '', query = ''] = spec.slice('moq://'.length).split('?', 2);
    const name = decodeURIComponent(path).replace(/^\/+|\/+$/g, '');
    const token = new URLSearchParams(query).get('token');
    if (name === '' || !token)
      throw new Error(
        '--input moq://NAME?token=TOKEN needs a broadcast name and a token, e.g. moq://camera?token=s3cret',
      );
    return { kind: 'moq', name, token };
  }
  let url: URL;
  try {
    url = new URL(spec);
  } catch {
    throw new Error(`--input ${scheme}: '${spec}' is not a URL`);
  }
  const host = url.hostname.replace(/^\[|\]$/g, '') || '0.0.0.0';
  if (scheme === 'rtmp') {
    const parts = url.pathname.split('/').filter(Boolean);
    if (parts.length < 2)
      throw new Error(
        '--input rtmp://HOST:PORT/APP/KEY needs an application and a stream key, e.g. rtmp://0.0.0.0:1935/live/s3cret',
      );
    return {
      kind: 'rtmp',
      host,
      port: url.port === '' ? 1935 : Number(url.port),
      app: decodeURIComponent(parts.slice(0, -1).join('/')),
      key: decodeURIComponent(parts.at(-1)!),
    };
  }
  if (url.port === '') throw new Error('--input srt://HOST:PORT needs a port, e.g. srt://0.0.0.0:9000');
  const passphrase = url.searchParams.get('passphrase') ?? undefined;
  if (passphrase !== undefined && (passphrase.length < 10 || passphrase.length > 79))
    throw new Error('an SRT passphrase has 10 to 79 characters');
  const latency = url.searchParams.get('latency');
  return {
    kind: 'srt',
    host,
    port: Number(url.port),
    passphrase,
    latencyMs: latency === null ? 120 : Number(latency),
  };
}

/** The ffmpeg input URL of an SRT listener (ffmpeg's `latency` is in microseconds). */
function srtListenerUrl(input: SrtInput): string {
  const query = new URLSearchParams({ mode: 'listener', latency: String(Math.round(input.latencyMs * 1000)) });
  if (input.passphrase !== undefined) query.set('passphrase', input.passphrase);
  const host = input.host.includes(':') ? `[${input.host}]` : input.host;
  return `srt://${host}:${input.port}?${query}`;
}

export interface EncoderSettings {
  input: LiveInput;
  video: readonly VideoRendition[];
  audio?: AudioRendition;
  frameRate: number;
  /** Seconds between forced key frames: the segment duration, so that every rendition cuts at the same instants. */
  keyFrameInterval: number;
  /** Pass the input's own video and audio through instead of encoding the ladder (every input but the test pattern). */
  passthrough: boolean;
  fontFile?: string;
}

/** One encoder output: the rendition it carries and the file descriptor ffmpeg writes it to. */
export interface EncoderOutput {
  trackId: string;
  kind: 'video' | 'audio';
  fd: number;
}

/** The first descriptor after stdin/stdout/stderr; ffmpeg writes output k to `pipe:(FIRST_OUTPUT_FD + k)`. */
export const FIRST_OUTPUT_FD = 3;

/**
 * Fragmented MP4 with one fragment per frame: pushcast's packager, not ffmpeg, groups frames into CMAF
 * chunks and segments, so the encoder must hand over every frame as soon as it is encoded.
 */
const FRAGMENTED_MP4 = [
  '-f',
  'mp4',
  '-movflags',
  'empty_moov+default_base_moof+frag_every_frame',
  '-flush_packets',
  '1',
];

const INGEST_PROBE = ['-analyzeduration', '500000', '-probesize', '500000'];

function testPatternInputs(s: EncoderSettings): string[] {
  const top = s.video.reduce((a, b) => (b.width * b.height > a.width * a.height ? b : a));
  return [
    '-re',
    '-f',
    'lavfi',
    '-i',
    `testsrc2=size=${top.width}x${top.height}:rate=${s.frameRate}`,
    '-re',
    '-f',
    'lavfi',
    '-i',
    `sine=frequency=440:beep_factor=4:sample_rate=${s.audio?.sampleRate ?? 48000}`,
  ];
}

/** The burnt-in wall clock and frame counter that let a viewer (or a test) read latency off the picture. */
function overlay(s: EncoderSettings, height: number): string {
  const font = s.fontFile ? `fontfile=${s.fontFile}:` : '';
  const size = Math.max(12, Math.round(height / 16));
  return (
    `drawtext=${font}text='%{localtime}  frame %{n}':` +
    `x=(w-tw)/2:y=h-th-${size}:fontsize=${size}:fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=${Math.round(size / 4)}`
  );
}

/** ffmpeg's command line for a live encoder run, and the outputs it will write. */
export function ffmpegArguments(s: EncoderSettings): { args: string[]; outputs: EncoderOutput[] } {
  const args = ['-hide_banner', '-nostdin', '-loglevel', 'warning', '-nostats', '-progress', 'pipe:1'];
  const outputs: EncoderOutput[] = [];
  const nextFd = () => FIRST_OUTPUT_FD + outputs.length;

  switch (s.input.kind) {
    case 'test-pattern':
      args.push(...testPatternInputs(s));
      break;
    case 'file':
      args.push('-stream_loop', '-1', '-re', '-i', s.input.path);
      break;
    case 'stdin':
      // `-nostdin` only stops ffmpeg reading keyboard commands; pipe:0 is still its input.
      args.push('-i', 'pipe:0');
      break;
    // A live encoder's stream: ffmpeg's default probe would hold its first 5 s before anything is published.
    case 'rtmp':
      args.push(...INGEST_PROBE, '-f', 'flv', '-i', 'pipe:0');
      break;
    case 'srt':
      args.push(...INGEST_PROBE, '-f', 'mpegts', '-i', srtListenerUrl(s.input));
      break;
    case 'moq':
      args.push(...INGEST_PROBE, '-f', 'matroska', '-i', 'pipe:0');
      break;
  }
  const audioInput = s.input.kind === 'test-pattern' ? '1:a:0' : '0:a:0?';
  const gop = Math.max(1, Math.round(s.keyFrameInterval * s.frameRate));

  if (s.passthrough && s.input.kind !== 'test-pattern') {
    const id = s.video[0]?.id ?? 'video';
    outputs.push({ trackId: id, kind: 'video', fd: nextFd() });
    args.push('-map', '0:v:0', '-c:v', 'copy', ...FRAGMENTED_MP4, `pipe:${outputs.at(-1)!.fd}`);
    if (s.audio) {
      outputs.push({ trackId: s.audio.id, kind: 'audio', fd: nextFd() });
      // AAC in MPEG-TS (SRT) is ADTS, with no AudioSpecificConfig until the first frame: the filter takes
      // it from there, and delay_moov writes the movie header once it is known.
      const adts =
        s.input.kind === 'srt'
          ? [
              '-bsf:a',
              'aac_adtstoasc',
              '-f',
              'mp4',
              '-movflags',
              'empty_moov+default_base_moof+frag_every_frame+delay_moov',
              '-flush_packets',
              '1',
            ]
          : FRAGMENTED_MP4;
      args.push('-map', audioInput, '-c:a', 'copy', ...adts, `pipe:${outputs.at(-1)!.fd}`);
    }
    return { args, outputs };
  }

  // One decode, one split, one scaler per rendition; the overlay is drawn per rendition at its own size so it stays legible.
  const labels = s.video.map((_, i) => `v${i}`);
  const split = `[0:v]fps=${s.frameRate},split=${s.video.length}${labels.map((l) => `[${l}in]`).join('')}`;
  const scales = s.video.map(
    (r, i) =>
      `[${labels[i]}in]scale=${r.width}:${r.height}:force_original_aspect_ratio=decrease,pad=${r.width}:${r.height}:(ow-iw)/2:(oh-ih)/2,setsar=1` +
      (s.input.kind === 'test-pattern' ? `,${overlay(s, r.height)}` : '') +
      `[${labels[i]}]`,
  );
  args.push('-filter_complex', [split, ...scales].join(';'));

  s.video.forEach((r, i) => {
    outputs.push({ trackId: r.id, kind: 'video', fd: nextFd() });
    args.push(
      '-map',
      `[${labels[i]}]`,
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-tune',
      'zerolatency',
      '-pix_fmt',
      'yuv420p',
      // Closed GOPs of exactly one segment, in every rendition, so that segments align for ABR switching.
      '-g',
      String(gop),
      '-keyint_min',
      String(gop),
      '-sc_threshold',
      '0',
      '-force_key_frames',
      `expr:gte(t,n_forced*${s.keyFrameInterval})`,
      '-b:v',
      String(r.bitrate),
      '-maxrate',
      String(r.bitrate),
      '-bufsize',
      String(Math.round(r.bitrate / 2)),
      ...FRAGMENTED_MP4,
      `pipe:${outputs.at(-1)!.fd}`,
    );
  });
  if (s.audio) {
    outputs.push({ trackId: s.audio.id, kind: 'audio', fd: nextFd() });
    args.push(
      '-map',
      audioInput,
      '-c:a',
      'aac',
      '-b:a',
      String(s.audio.bitrate),
      '-ar',
      String(s.audio.sampleRate),
      '-ac',
      String(s.audio.channels),
      ...FRAGMENTED_MP4,
      `pipe:${outputs.at(-1)!.fd}`,
    );
  }
  return { args, outputs };
}
