import assert from 'node:assert/strict';
import test from 'node:test';
import {
  HLS_MULTIVARIANT_PATH,
  MULTICAST_DELIVERY_PARAM,
  MULTICAST_DELIVERY_VALUE,
  SEGMENT_TEMPLATE,
  initPath,
  isMulticastMarked,
  markMulticast,
  mediaPlaylistPath,
  parseHlsPath,
  parseLivePath,
  partPath,
  pushChannelPath,
  segmentNumberOf,
  segmentPath,
  unmarkMulticast,
} from '../../src/media/index.js';

test('paths name init and media segments, and parse back to what they name', () => {
  assert.equal(initPath('video-360p'), '/live/video-360p/init.mp4');
  assert.equal(segmentPath('audio-128k', 884641234), '/live/audio-128k/884641234.m4s');
  assert.equal(pushChannelPath('video-720p'), '/live/video-720p/push');
  assert.deepEqual(parseLivePath(initPath('video-360p')), { kind: 'init', trackId: 'video-360p' });
  assert.deepEqual(parseLivePath(segmentPath('a_b-1', 7)), { kind: 'segment', trackId: 'a_b-1', number: 7 });
});

test('the MPD template, expanded as a DASH client does, gives the same paths', () => {
  const expand = (template: string, id: string, n?: number) =>
    `/live/${template.replace('$RepresentationID$', id).replace('$Number$', String(n))}`;
  assert.equal(expand(SEGMENT_TEMPLATE.initialization, 'v'), initPath('v'));
  assert.equal(expand(SEGMENT_TEMPLATE.media, 'v', 42), segmentPath('v', 42));
});

test('anything else is no live resource: other folders, traversal, bad ids, long numbers, the push channel', () => {
  for (const path of [
    '/live/manifest.mpd',
    '/live/video/push',
    '/live/../etc/init.mp4',
    '/live/a/b/1.m4s',
    '/vod/video/1.m4s',
    `/live/${'x'.repeat(65)}/1.m4s`,
    '/live/v/1234567890123456.m4s',
    '/live/v/1.m4s?x=1',
    '/live/v%2F/1.m4s',
  ])
    assert.equal(parseLivePath(path), undefined, path);
});

test('segment numbers are read from a path or a URL with a query', () => {
  assert.equal(segmentNumberOf('https://h/live/v/12.m4s?token=a'), 12);
  assert.equal(segmentNumberOf('/live/v/init.mp4'), undefined);
});

test('the multicast marker: added once, kept beside other parameters and a fragment, removed leaving them', () => {
  assert.equal(`${MULTICAST_DELIVERY_PARAM}=${MULTICAST_DELIVERY_VALUE}`, 'delivery=multicast');
  const cases: [string, string][] = [
    ['/live/manifest.mpd', '/live/manifest.mpd?delivery=multicast'],
    ['https://h:8443/live/v/12.m4s', 'https://h:8443/live/v/12.m4s?delivery=multicast'],
    ['/live/v/12.m4s?token=a', '/live/v/12.m4s?token=a&delivery=multicast'],
    ['/live/v/init.mp4?', '/live/v/init.mp4?delivery=multicast'],
    ['/live/manifest.mpd#t=10', '/live/manifest.mpd?delivery=multicast#t=10'],
    ['$RepresentationID$/$Number$.m4s', '$RepresentationID$/$Number$.m4s?delivery=multicast'],
  ];
  for (const [plain, marked] of cases) {
    assert.equal(isMulticastMarked(plain), false, plain);
    assert.equal(markMulticast(plain), marked);
    assert.equal(isMulticastMarked(marked), true, marked);
    assert.equal(markMulticast(marked), marked, 'marked once');
    assert.equal(unmarkMulticast(marked), plain === '/live/v/init.mp4?' ? '/live/v/init.mp4' : plain);
  }
  assert.equal(unmarkMulticast('/x?a=1&delivery=multicast&b=2'), '/x?a=1&b=2');
  assert.equal(unmarkMulticast('/live/v/1.m4s'), '/live/v/1.m4s', 'unmarked: unchanged');
  // Only the exact pair marks: not another value, another name, or the words in a path or fragment.
  for (const url of [
    '/x?delivery=unicast',
    '/x?delivery=multicast2',
    '/x?xdelivery=multicast',
    '/delivery=multicast/x',
    '/x#delivery=multicast',
  ]) {
    assert.equal(isMulticastMarked(url), false, url);
    assert.equal(unmarkMulticast(url), url, url);
  }
});

test('LL-HLS paths: the multivariant playlist, a media playlist per track, a part per chunk; segments stay DASH paths', () => {
  assert.equal(HLS_MULTIVARIANT_PATH, '/live/master.m3u8');
  assert.equal(mediaPlaylistPath('video-360p'), '/live/video-360p/index.m3u8');
  assert.equal(partPath('video-360p', 898326572, 3), '/live/video-360p/898326572.3.m4s');
  assert.deepEqual(parseHlsPath(HLS_MULTIVARIANT_PATH), { kind: 'multivariant' });
  assert.deepEqual(parseHlsPath('/live/video-360p/index.m3u8'), { kind: 'playlist', trackId: 'video-360p' });
  assert.deepEqual(parseHlsPath('/live/video-360p/898326572.3.m4s'), {
    kind: 'part',
    trackId: 'video-360p',
    number: 898326572,
    part: 3,
  });
  for (const other of [
    '/live/video-360p/5.m4s',
    '/live/video-360p/init.mp4',
    '/live/a/b/index.m3u8',
    '/live/v/1.2.3.m4s',
  ])
    assert.equal(parseHlsPath(other), undefined, other);
  assert.equal(parseLivePath('/live/video-360p/5.3.m4s'), undefined, 'a part is not a DASH segment');
  assert.equal(segmentNumberOf('/live/video-360p/5.3.m4s'), undefined);
});
