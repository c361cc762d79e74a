/**
 * The Service Worker's reception window (src/web/sw/mpd-window.ts) on the origin's own MPD: the timeline
 * moves later by the window, low-latency announcement goes, the latency targets and the presentation
 * delay grow by it, the time-shift depth shrinks by it; the result still validates against the
 * ISO/IEC 23009-1 schema. The SegmentTemplate's URLs are marked for multicast.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { buildLiveMpd, type TrackInfo } from '../../src/media/index.js';
import { markSegmentTemplate, openReceptionWindow, parseDuration, readTemplate } from '../../src/web/sw/mpd-window.js';
import { validateMpd } from '../support/xmllint.js';

const tracks: TrackInfo[] = [
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

const mpd = buildLiveMpd({
  tracks,
  availabilityStartTime: Date.parse('2026-11-22T10:00:00.000Z'),
  segmentDuration: 2,
  startNumber: 900_000_000,
  chunkDuration: 0.2,
  lowLatency: true,
  timeShiftBufferDepth: 60,
  minimumUpdatePeriod: 10,
  targetLatency: 3,
  utcTimingUrl: 'http://localhost:8080/time',
});

test('the reception window moves the timeline by its length and leaves the latency targets, and the MPD stays valid', () => {
  assert.deepEqual(readTemplate(mpd), { segmentDuration: 2, representations: ['video-360p', 'audio-128k'] });
  const out = openReceptionWindow(mpd, 2.5);
  assert.match(out, /availabilityStartTime="2026-11-22T10:00:02\.500Z"/);
  assert.match(out, /timeShiftBufferDepth="PT57\.5S"/);
  assert.doesNotMatch(out, /availabilityTimeOffset|availabilityTimeComplete/);
  // The targets are held behind the moved edge: moving them too would add the window twice.
  assert.equal(/<Latency\b[^>]*>/.exec(out)![0], /<Latency\b[^>]*>/.exec(mpd)![0]);
  // Everything else is untouched.
  assert.equal(
    out.replace(/\s(availabilityStartTime|timeShiftBufferDepth)="[^"]*"/g, ''),
    mpd.replace(
      /\s(availabilityStartTime|timeShiftBufferDepth|availabilityTimeOffset|availabilityTimeComplete)="[^"]*"/g,
      '',
    ),
  );
  const validation = validateMpd(out);
  assert.ok(validation.valid, validation.output);
});

test('a window for segments pushed chunk by chunk keeps the low-latency announcement', () => {
  assert.match(mpd, /availabilityTimeOffset=/);
  const out = openReceptionWindow(mpd, 0.2, { lowLatency: true });
  assert.match(out, /availabilityStartTime="2026-11-22T10:00:00\.200Z"/);
  assert.equal(
    out.replace(/\s(availabilityStartTime|timeShiftBufferDepth)="[^"]*"/g, ''),
    mpd.replace(/\s(availabilityStartTime|timeShiftBufferDepth)="[^"]*"/g, ''),
  );
  const validation = validateMpd(out);
  assert.ok(validation.valid, validation.output);
});

test('xs:duration values as the origin and others write them', () => {
  assert.equal(parseDuration('PT2S'), 2);
  assert.equal(parseDuration('PT0.2S'), 0.2);
  assert.equal(parseDuration('PT1M30S'), 90);
  assert.equal(parseDuration('P1DT1H'), 90_000);
  assert.equal(parseDuration('PT'), undefined);
  assert.equal(parseDuration('2S'), undefined);
});

test('the SegmentTemplate URLs are marked for multicast, once; the rest stays, and the MPD stays valid', () => {
  const out = markSegmentTemplate(mpd);
  const template = /<SegmentTemplate\b[^>]*>/.exec(out)![0];
  assert.match(template, /\smedia="\$RepresentationID\$\/\$Number\$\.m4s\?delivery=multicast"/);
  assert.match(template, /\sinitialization="\$RepresentationID\$\/init\.mp4\?delivery=multicast"/);
  assert.equal(out.replaceAll('?delivery=multicast', ''), mpd, 'nothing else changes');
  assert.equal(markSegmentTemplate(out), out, 'marked once');
  assert.deepEqual(readTemplate(out), readTemplate(mpd));
  // The reception window and the marker go together in either order.
  assert.equal(openReceptionWindow(out, 2.5), markSegmentTemplate(openReceptionWindow(mpd, 2.5)));
  const validation = validateMpd(out);
  assert.ok(validation.valid, validation.output);
});

test('a template with its own query gets the marker as one more parameter, escaped for XML', () => {
  const other =
    '<Period><AdaptationSet><SegmentTemplate timescale="1" duration="2" media="$RepresentationID$/$Number$.m4s?token=a&amp;b=1" initialization="$RepresentationID$/init.mp4?token=a"/>' +
    '<Representation id="v"><SegmentTemplate duration="2" media="v/$Number$.m4s"></SegmentTemplate></Representation></AdaptationSet></Period>';
  assert.equal(
    markSegmentTemplate(other),
    '<Period><AdaptationSet><SegmentTemplate timescale="1" duration="2" media="$RepresentationID$/$Number$.m4s?token=a&amp;b=1&amp;delivery=multicast" initialization="$RepresentationID$/init.mp4?token=a&amp;delivery=multicast"/>' +
      '<Representation id="v"><SegmentTemplate duration="2" media="v/$Number$.m4s?delivery=multicast"></SegmentTemplate></Representation></AdaptationSet></Period>',
  );
});

test('an MPD with a SegmentTimeline per Representation (passthrough): its longest segment, every template marked, still valid', () => {
  const timelineMpd = buildLiveMpd({
    tracks,
    availabilityStartTime: Date.parse('2026-11-22T10:00:00.000Z'),
    segmentDuration: 2,
    startNumber: 900_000_000,
    chunkDuration: 0.2,
    lowLatency: true,
    timeShiftBufferDepth: 60,
    minimumUpdatePeriod: 2,
    targetLatency: 3,
    utcTimingUrl: 'http://localhost:8080/time',
    segmentTimelines: new Map([
      [
        'video-360p',
        [
          { number: 900_000_000, time: 0, duration: 12800 * 3.12 },
          { number: 900_000_001, time: 12800 * 3.12, duration: 12800 * 0.88 },
        ],
      ],
      ['audio-128k', [{ number: 900_000_000, time: 0, duration: 48000 * 2 }]],
    ]),
  });
  assert.deepEqual(readTemplate(timelineMpd), { segmentDuration: 3.12, representations: ['video-360p', 'audio-128k'] });
  const out = markSegmentTemplate(openReceptionWindow(timelineMpd, 2.5, { lowLatency: true }));
  assert.equal([...out.matchAll(/media="[^"]*delivery=multicast[^"]*"/g)].length, 2);
  const verdict = validateMpd(out);
  assert.ok(verdict.valid, verdict.output);
});
