import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  advancePartLimit,
  blockingReloadState,
  buildMediaPlaylist,
  buildMultivariantPlaylist,
  decimalSeconds,
  parseDeliveryDirectives,
  type HlsSegment,
  type MediaPlaylistParams,
} from '../../../src/media/index.js';

/** A tag's attribute list (RFC 8216 §4.2): NAME=value pairs, quoted strings kept whole. */
function attributes(list: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of list.matchAll(/([A-Z0-9-]+)=("[^"\r\n]*"|[^,]*)(?:,|$)/g)) {
    assert.ok(!(m[1]! in out), `attribute ${m[1]} given twice in ${list}`);
    out[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1');
  }
  return out;
}

/**
 * Checks a live media playlist against RFC 8216 and draft-pantos-hls-rfc8216bis, line by line, and returns
 * what it read: the segments (with their parts) in order, the header tags and the preload hint.
 */
function validateMediaPlaylist(text: string) {
  assert.ok(text.endsWith('\n'));
  const lines = text.slice(0, -1).split('\n');
  assert.equal(lines[0], '#EXTM3U', 'RFC 8216 §4.3.1.1: the first line');
  const tags = new Map<string, string>();
  const segments: {
    uri: string;
    duration: number;
    pdt?: string;
    parts: { uri: string; duration: number; independent: boolean }[];
  }[] = [];
  let parts: (typeof segments)[number]['parts'] = [];
  let pdt: string | undefined;
  let expectUri: number | undefined;
  let hint: string | undefined;
  for (const line of lines.slice(1)) {
    assert.ok(line.length > 0, 'no blank lines');
    if (expectUri !== undefined) {
      assert.ok(!line.startsWith('#'), `RFC 8216 §4.3.2.1: EXTINF is followed by its URI, not ${line}`);
      segments.push({ uri: line, duration: expectUri, pdt, parts });
      parts = [];
      pdt = undefined;
      expectUri = undefined;
      continue;
    }
    assert.ok(line.startsWith('#EXT'), `a tag or a URI after EXTINF: ${line}`);
    assert.equal(hint, undefined, '8216bis §4.4.5.3: the preload hint comes last');
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1);
    switch (name) {
      case '#EXT-X-VERSION':
      case '#EXT-X-TARGETDURATION':
      case '#EXT-X-MEDIA-SEQUENCE':
        assert.match(value, /^\d+$/, `${name} is a decimal-integer`);
        assert.ok(!tags.has(name) && segments.length === 0, `${name} once, before the segments`);
        tags.set(name, value);
        break;
      case '#EXT-X-PART-INF':
      case '#EXT-X-SERVER-CONTROL':
      case '#EXT-X-MAP':
        assert.ok(!tags.has(name), `${name} once`);
        tags.set(name, value);
        break;
      case '#EXT-X-PROGRAM-DATE-TIME':
        assert.match(value, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'RFC 8216 §4.3.2.6: ISO 8601 with a time zone');
        pdt = value;
        break;
      case '#EXT-X-PART': {
        const a = attributes(value);
        assert.ok(a.DURATION && a.URI, '8216bis §4.4.4.9: DURATION and URI');
        parts.push({ uri: a.URI!, duration: Number(a.DURATION), independent: a.INDEPENDENT === 'YES' });
        break;
      }
      case '#EXTINF':
        assert.match(value, /^\d+(\.\d+)?,$/, 'RFC 8216 §4.3.2.1: a decimal duration and a comma');
        expectUri = Number(value.slice(0, -1));
        break;
      case '#EXT-X-PRELOAD-HINT': {
        const a = attributes(value);
        assert.equal(a.TYPE, 'PART');
        hint = a.URI;
        break;
      }
      default:
        assert.fail(`a tag this origin does not write: ${line}`);
    }
  }
  assert.equal(expectUri, undefined, 'the last EXTINF has its URI');
  const version = Number(tags.get('#EXT-X-VERSION'));
  assert.ok(version >= 6, 'RFC 8216 §7: EXT-X-MAP without I-FRAMES-ONLY needs version 6');
  const target = Number(tags.get('#EXT-X-TARGETDURATION'));
  for (const s of segments)
    assert.ok(Math.round(s.duration) <= target, `RFC 8216 §4.3.3.1: EXTINF ${s.duration} rounded is at most ${target}`);
  const partInf = attributes(tags.get('#EXT-X-PART-INF')!);
  const partTarget = Number(partInf['PART-TARGET']);
  for (const p of [...segments.flatMap((s) => s.parts), ...parts])
    assert.ok(p.duration <= partTarget, `8216bis §4.4.4.9: part ${p.uri} (${p.duration} s) within PART-TARGET`);
  const control = attributes(tags.get('#EXT-X-SERVER-CONTROL')!);
  assert.equal(control['CAN-BLOCK-RELOAD'], 'YES');
  assert.ok(Number(control['PART-HOLD-BACK']) >= 2 * partTarget, '8216bis §4.4.3.8: PART-HOLD-BACK ≥ 2 × PART-TARGET');
  assert.ok(attributes(tags.get('#EXT-X-MAP')!).URI, 'EXT-X-MAP names the init segment');
  return {
    target,
    partTarget,
    partHoldBack: Number(control['PART-HOLD-BACK']),
    mediaSequence: Number(tags.get('#EXT-X-MEDIA-SEQUENCE')),
    segments,
    /** Parts of the segment still growing (after the last EXTINF). */
    growing: { parts, pdt },
    hint,
  };
}

function segment(msn: number, durations: number[], complete = true, start = 0): HlsSegment {
  return {
    msn,
    uri: `${msn}.m4s`,
    duration: durations.reduce((a, b) => a + b, 0),
    programDateTime: Date.parse('2026-12-07T12:00:00Z') + start * 1000,
    complete,
    parts: durations.map((d, k) => ({ uri: `${msn}.${k}.m4s`, duration: d, independent: k === 0 })),
  };
}

const base: Omit<MediaPlaylistParams, 'segments'> = {
  targetDuration: 2,
  partTarget: 0.5,
  partHoldBack: 1.5,
  initUri: 'init.mp4',
};

describe('LL-HLS media playlist', () => {
  test('follows RFC 8216 and 8216bis: header, exact EXTINF, dated segments, parts, the growing segment and the hint', () => {
    const segments = [
      segment(100, [0.5, 0.5, 0.5, 0.5], true, 0),
      segment(101, [0.5, 0.5, 0.5, 0.5], true, 2),
      segment(102, [0.5, 0.5], false, 4),
    ];
    const p = validateMediaPlaylist(buildMediaPlaylist({ ...base, segments, preloadHint: '102.2.m4s' }));
    assert.equal(p.mediaSequence, 100);
    assert.equal(p.target, 2);
    assert.equal(p.partHoldBack, 1.5);
    assert.deepEqual(
      p.segments.map((s) => [s.uri, s.duration, s.pdt]),
      [
        ['100.m4s', 2, '2026-12-07T12:00:00.000Z'],
        ['101.m4s', 2, '2026-12-07T12:00:02.000Z'],
      ],
    );
    assert.deepEqual(
      p.growing.parts.map((x) => x.uri),
      ['102.0.m4s', '102.1.m4s'],
    );
    assert.equal(p.growing.pdt, '2026-12-07T12:00:04.000Z', 'the growing segment is dated too');
    assert.equal(p.hint, '102.2.m4s');
    assert.deepEqual(
      p.segments[1]!.parts.map((x) => x.independent),
      [true, false, false, false],
      'a video segment is independent at its first part only',
    );
  });

  test('each segment gets its own exact duration, never the nominal one (irregular GoPs)', () => {
    const segments = [segment(7, [0.4, 0.4, 0.4]), segment(8, [0.5, 0.5, 0.5, 0.5, 0.5, 0.3]), segment(9, [0.16667])];
    const p = validateMediaPlaylist(buildMediaPlaylist({ ...base, targetDuration: 3, segments }));
    assert.deepEqual(
      p.segments.map((s) => s.duration),
      [1.2, 2.8, 0.16667],
    );
    assert.equal(decimalSeconds(2.00533333), '2.00533');
    assert.equal(decimalSeconds(2), '2.0');
  });

  test('parts are listed only for segments within three target durations of the end', () => {
    const segments = Array.from({ length: 8 }, (_, i) => segment(i + 1, [0.5, 0.5, 0.5, 0.5], true, i * 2));
    const p = validateMediaPlaylist(buildMediaPlaylist({ ...base, segments }));
    assert.deepEqual(
      p.segments.map((s) => s.parts.length),
      [0, 0, 0, 0, 0, 4, 4, 4],
    );
  });

  test('refuses what the RFC forbids rather than write it', () => {
    assert.throws(
      () => buildMediaPlaylist({ ...base, segments: [segment(1, [0.5, 0.5, 0.5, 0.5, 0.5])] }),
      /target duration/,
    );
    assert.throws(() => buildMediaPlaylist({ ...base, segments: [segment(1, [0.6])] }), /PART-TARGET/);
    assert.throws(() => buildMediaPlaylist({ ...base, partHoldBack: 0.9, segments: [] }), /PART-HOLD-BACK/);
    assert.throws(() => buildMediaPlaylist({ ...base, segments: [segment(1, [0.5]), segment(3, [0.5])] }), /follow/);
    assert.throws(
      () => buildMediaPlaylist({ ...base, segments: [segment(1, [0.5], false), segment(2, [0.5])] }),
      /incomplete/,
    );
    assert.throws(() => buildMediaPlaylist({ ...base, initUri: 'a"b', segments: [] }), /quoted-string/);
  });
});

describe('LL-HLS multivariant playlist', () => {
  const video = (id: string, bandwidth: number, height: number) => ({
    id,
    kind: 'video' as const,
    codec: 'avc1.64001f',
    bandwidth,
    width: (height * 16) / 9,
    height,
    uri: `${id}/index.m3u8`,
  });
  const audio = {
    id: 'audio-128k',
    kind: 'audio' as const,
    codec: 'mp4a.40.2',
    bandwidth: 128_000,
    channels: 2,
    uri: 'audio-128k/index.m3u8',
  };

  test('one variant per video rendition, lowest first, with the audio group; BANDWIDTH counts the audio, CODECS names both', () => {
    const text = buildMultivariantPlaylist({
      renditions: [video('video-720p', 3_000_000, 720), audio, video('video-360p', 800_000, 360)],
      frameRate: 25,
    });
    const lines = text.trimEnd().split('\n');
    assert.deepEqual(lines.slice(0, 3), ['#EXTM3U', '#EXT-X-VERSION:6', '#EXT-X-INDEPENDENT-SEGMENTS']);
    const media = lines.filter((l) => l.startsWith('#EXT-X-MEDIA:')).map((l) => attributes(l.slice(13)));
    assert.deepEqual(media, [
      {
        TYPE: 'AUDIO',
        'GROUP-ID': 'audio',
        NAME: 'audio-128k',
        DEFAULT: 'YES',
        AUTOSELECT: 'YES',
        CHANNELS: '2',
        URI: 'audio-128k/index.m3u8',
      },
    ]);
    const variants = lines.flatMap((l, i) =>
      l.startsWith('#EXT-X-STREAM-INF:') ? [{ ...attributes(l.slice(18)), uri: lines[i + 1]! }] : [],
    );
    assert.deepEqual(variants, [
      {
        BANDWIDTH: '928000',
        CODECS: 'avc1.64001f,mp4a.40.2',
        RESOLUTION: '640x360',
        'FRAME-RATE': '25.000',
        AUDIO: 'audio',
        uri: 'video-360p/index.m3u8',
      },
      {
        BANDWIDTH: '3128000',
        CODECS: 'avc1.64001f,mp4a.40.2',
        RESOLUTION: '1280x720',
        'FRAME-RATE': '25.000',
        AUDIO: 'audio',
        uri: 'video-720p/index.m3u8',
      },
    ]);
  });

  test('audio alone: one variant per audio rendition', () => {
    assert.equal(
      buildMultivariantPlaylist({ renditions: [audio] }),
      '#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-STREAM-INF:BANDWIDTH=128000,CODECS="mp4a.40.2"\naudio-128k/index.m3u8\n',
    );
  });
});

describe('blocking playlist reload (8216bis §6.2.5.2)', () => {
  test('delivery directives: decimal integers, _HLS_part only with _HLS_msn, _HLS_skip and other parameters ignored', () => {
    assert.deepEqual(parseDeliveryDirectives(''), { msn: undefined, part: undefined });
    assert.deepEqual(parseDeliveryDirectives('_HLS_msn=12&_HLS_part=3'), { msn: 12, part: 3 });
    assert.deepEqual(parseDeliveryDirectives('x=1&_HLS_msn=5&_HLS_skip=YES'), { msn: 5, part: undefined });
    for (const bad of [
      '_HLS_part=1',
      '_HLS_msn=-1',
      '_HLS_msn=1.5',
      '_HLS_msn=',
      '_HLS_msn=1&_HLS_msn=2',
      '_HLS_msn=1&_HLS_part=x',
      '_HLS_msn=9999999999999999',
    ])
      assert.ok('error' in parseDeliveryDirectives(bad), bad);
  });

  test('the Advance Part Limit: three seconds of parts, or three parts of a second or more', () => {
    assert.equal(advancePartLimit(0.2), 15);
    assert.equal(advancePartLimit(0.5), 6);
    assert.equal(advancePartLimit(1), 3);
    assert.equal(advancePartLimit(2), 3);
  });

  // Segment 10 complete with 4 parts, 11 growing with 2.
  const states = [
    { msn: 9, complete: true, parts: 4 },
    { msn: 10, complete: true, parts: 4 },
    { msn: 11, complete: false, parts: 2 },
  ];
  const at = (msn: number, part?: number) => blockingReloadState(states, { msn, part }, 0.5);

  test('ready once the part (or a later one) is listed; waits for the next; a whole segment waits to be complete', () => {
    assert.equal(at(11, 1), 'ready');
    assert.equal(at(10, 3), 'ready');
    assert.equal(at(11, 2), 'wait');
    assert.equal(at(10), 'ready');
    assert.equal(at(11), 'wait', 'a growing segment is not yet a Media Segment of the playlist');
    assert.equal(at(12, 0), 'wait');
    assert.equal(blockingReloadState(states, {}, 0.5), 'ready', 'no directive: a plain reload');
  });

  test('a part past the last of a complete segment is part 0 of the next', () => {
    assert.equal(at(10, 4), 'ready', 'segment 11 has part 0');
    assert.equal(at(10, 9), 'ready');
    const justCompleted = [{ msn: 10, complete: true, parts: 4 }];
    assert.equal(blockingReloadState(justCompleted, { msn: 10, part: 4 }, 0.5), 'wait');
  });

  test('too far ahead: a segment beyond the last plus two, or parts beyond the Advance Part Limit', () => {
    assert.equal(at(12), 'wait');
    assert.equal(at(13), 'too-far');
    assert.equal(at(11, 7), 'wait', 'six parts ahead of part 1');
    assert.equal(at(11, 8), 'too-far');
  });
});
