import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  DEFAULT_AUDIO,
  DEFAULT_VIDEO_LADDER,
  ffmpegArguments,
  parseIngestUrl,
  parseLadder,
  type EncoderSettings,
} from '../../src/source/index.js';

const settings: EncoderSettings = {
  input: { kind: 'test-pattern' },
  video: DEFAULT_VIDEO_LADDER,
  audio: DEFAULT_AUDIO,
  frameRate: 25,
  keyFrameInterval: 2,
  passthrough: false,
};

test('ladders parse from WIDTHxHEIGHT@BITRATE lists, and bad entries are refused with the reason', () => {
  assert.deepEqual(parseLadder('640x360@800k, 1280x720@3M'), [
    { id: 'video-360p', width: 640, height: 360, bitrate: 800_000 },
    { id: 'video-720p', width: 1280, height: 720, bitrate: 3_000_000 },
  ]);
  assert.throws(() => parseLadder('640x360'), /WIDTHxHEIGHT@BITRATE/);
  assert.throws(() => parseLadder('641x360@1M'), /even/);
  assert.throws(() => parseLadder('640x360@1M,480x360@1M'), /same height/);
});

test('every rendition gets its own pipe, and the audio one too', () => {
  const { args, outputs } = ffmpegArguments(settings);
  assert.deepEqual(
    outputs.map((o) => [o.trackId, o.fd]),
    [
      ['video-360p', 3],
      ['video-540p', 4],
      ['video-720p', 5],
      ['audio-128k', 6],
    ],
  );
  for (const o of outputs) assert.ok(args.includes(`pipe:${o.fd}`), `ffmpeg writes pipe:${o.fd}`);
});

test('key frames are forced on the segment grid in every rendition, one fragment per frame', () => {
  const { args } = ffmpegArguments({ ...settings, keyFrameInterval: 1.5 });
  const count = (flag: string, value: string) => args.filter((a, i) => a === flag && args[i + 1] === value).length;
  assert.equal(count('-force_key_frames', 'expr:gte(t,n_forced*1.5)'), 3);
  assert.equal(count('-g', '38'), 3, 'GOP of one segment: 1.5 s at 25 fps, rounded');
  assert.equal(count('-movflags', 'empty_moov+default_base_moof+frag_every_frame'), 4);
});

test('passthrough copies the input streams instead of encoding the ladder', () => {
  const { args, outputs } = ffmpegArguments({
    ...settings,
    input: { kind: 'file', path: 'in.mp4' },
    video: [{ id: 'video', width: 0, height: 0, bitrate: 1 }],
    passthrough: true,
  });
  assert.deepEqual(
    outputs.map((o) => o.trackId),
    ['video', 'audio-128k'],
  );
  assert.ok(!args.includes('libx264'));
  assert.ok(args.includes('-stream_loop'), 'a file is looped');
});

test('ingest addresses: rtmp://HOST[:PORT]/APP/KEY and srt://HOST:PORT?passphrase=…&latency=…, checked', () => {
  assert.deepEqual(parseIngestUrl('rtmp://0.0.0.0/live/s3cret'), {
    kind: 'rtmp',
    host: '0.0.0.0',
    port: 1935,
    app: 'live',
    key: 's3cret',
  });
  assert.deepEqual(parseIngestUrl('rtmp://127.0.0.1:0/app/inst/k%20y'), {
    kind: 'rtmp',
    host: '127.0.0.1',
    port: 0,
    app: 'app/inst',
    key: 'k y',
  });
  assert.throws(() => parseIngestUrl('rtmp://0.0.0.0:1935/live'), /application and a stream key/);
  assert.deepEqual(parseIngestUrl('srt://[::]:9000?passphrase=correct-horse&latency=200'), {
    kind: 'srt',
    host: '::',
    port: 9000,
    passphrase: 'correct-horse',
    latencyMs: 200,
  });
  assert.throws(() => parseIngestUrl('srt://0.0.0.0'), /needs a port/);
  assert.throws(() => parseIngestUrl('srt://0.0.0.0:9000?passphrase=short'), /10 to 79/);
  assert.equal(parseIngestUrl('talk.mp4'), undefined);
});

test('a MoQ publisher: moq://NAME?token=…, checked; Matroska on standard input, transcoded, the token kept out of ffmpeg', () => {
  assert.deepEqual(parseIngestUrl('moq://camera?token=s3cret'), { kind: 'moq', name: 'camera', token: 's3cret' });
  assert.deepEqual(parseIngestUrl('moq://studio/cam%201/?token=t'), { kind: 'moq', name: 'studio/cam 1', token: 't' });
  assert.throws(() => parseIngestUrl('moq://camera'), /a broadcast name and a token/);
  assert.throws(() => parseIngestUrl('moq://?token=t'), /a broadcast name and a token/);
  const moq = ffmpegArguments({ ...settings, input: { kind: 'moq', name: 'camera', token: 's3cret' } });
  const at = moq.args.indexOf('-i');
  assert.deepEqual(moq.args.slice(at - 2, at + 2), ['-f', 'matroska', '-i', 'pipe:0']);
  assert.ok(moq.args.includes('libx264'), 'transcoded to the ladder');
  assert.ok(!moq.args.join(' ').includes('s3cret'));
});

test('an RTMP input is FLV on standard input, an SRT input ffmpeg’s listener; both passed through or transcoded', () => {
  const rtmp = ffmpegArguments({
    ...settings,
    input: { kind: 'rtmp', host: '0.0.0.0', port: 1935, app: 'live', key: 's3cret' },
  });
  const at = rtmp.args.indexOf('-i');
  assert.deepEqual(rtmp.args.slice(at - 2, at + 2), ['-f', 'flv', '-i', 'pipe:0']);
  assert.ok(rtmp.args.includes('libx264'), 'transcoded to the ladder');
  assert.ok(!rtmp.args.join(' ').includes('s3cret'), 'the key stays out of ffmpeg');

  const srt = ffmpegArguments({
    ...settings,
    input: { kind: 'srt', host: '::', port: 9000, passphrase: 'correct-horse', latencyMs: 120 },
    video: [{ id: 'video', width: 0, height: 0, bitrate: 1 }],
    passthrough: true,
  });
  const url = srt.args[srt.args.indexOf('-i') + 1]!;
  assert.equal(url, 'srt://[::]:9000?mode=listener&latency=120000&passphrase=correct-horse');
  assert.ok(!srt.args.includes('libx264'));
  // AAC from MPEG-TS is ADTS: made into an AudioSpecificConfig before the movie header is written.
  assert.ok(srt.args.includes('aac_adtstoasc'));
  assert.ok(srt.args.some((a) => a.includes('delay_moov')));
});
