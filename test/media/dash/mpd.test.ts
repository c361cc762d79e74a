import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildLiveMpd, xsDuration, type LiveMpdParams, type TrackInfo } from '../../../src/media/index.js';
import { validateMpd } from '../../support/xmllint.js';

const tracks: TrackInfo[] = [
  {
    id: 'video-720p',
    kind: 'video',
    codec: 'avc1.64001f',
    timescale: 12800,
    bandwidth: 3_000_000,
    width: 1280,
    height: 720,
  },
  {
    id: 'video-360p',
    kind: 'video',
    codec: 'avc1.42c01e',
    timescale: 12800,
    bandwidth: 800_000,
    width: 640,
    height: 360,
  },
  {
    id: 'audio-128k',
    kind: 'audio',
    codec: 'mp4a.40.2',
    timescale: 48000,
    bandwidth: 128_000,
    sampleRate: 48000,
    channels: 2,
  },
];

const base: LiveMpdParams = {
  tracks,
  availabilityStartTime: Date.parse('2026-11-21T10:00:00.123Z'),
  segmentDuration: 2,
  startNumber: 897_652_904,
  chunkDuration: 0.2,
  lowLatency: true,
  timeShiftBufferDepth: 60,
  minimumUpdatePeriod: 10,
  targetLatency: 3,
  utcTimingUrl: 'https://localhost:8443/time',
  frameRate: 25,
};

test('xs:duration keeps millisecond precision without trailing zeros', () => {
  assert.equal(xsDuration(2), 'PT2S');
  assert.equal(xsDuration(0.2), 'PT0.2S');
  assert.equal(xsDuration(1.8), 'PT1.8S');
  assert.equal(xsDuration(0.04), 'PT0.04S');
});

test('a low-latency live MPD validates and tells the player what LL-DASH needs', () => {
  const mpd = buildLiveMpd(base);
  const v = validateMpd(mpd);
  assert.ok(v.valid, v.output);
  assert.match(mpd, /availabilityStartTime="2026-11-21T10:00:00.123Z"/);
  assert.match(mpd, /availabilityTimeOffset="1.8" availabilityTimeComplete="false"/);
  assert.match(mpd, /startNumber="897652904"/);
  assert.match(mpd, /<Latency referenceId="0" target="3000"/);
  assert.match(
    mpd,
    /<UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-iso:2014" value="https:\/\/localhost:8443\/time"\/>/,
  );
  // Representations in ascending bandwidth, codecs from the tracks.
  const ids = [...mpd.matchAll(/<Representation id="([^"]+)"/g)].map((m) => m[1]);
  assert.deepEqual(ids, ['video-360p', 'video-720p', 'audio-128k']);
});

test('plain live DASH (no low latency) announces segments only when complete', () => {
  const mpd = buildLiveMpd({ ...base, lowLatency: false });
  assert.ok(validateMpd(mpd).valid);
  assert.doesNotMatch(mpd, /availabilityTimeOffset/);
  assert.doesNotMatch(mpd, /low-latency/);
});

test('video-only and audio-only presentations validate too', () => {
  assert.ok(validateMpd(buildLiveMpd({ ...base, tracks: tracks.filter((t) => t.kind === 'video') })).valid);
  assert.ok(validateMpd(buildLiveMpd({ ...base, tracks: tracks.filter((t) => t.kind === 'audio') })).valid);
});
