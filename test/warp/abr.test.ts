/**
 * The rendition chooser (src/warp/abr.ts) on synthetic measurements: it steps down at once when segments
 * are cut or GoPs come late (to what the measured rate carries), up only after good GoPs in a row, and
 * waits longer after a failed probe; and TrackSelection (src/warp/select.ts), the sender's rule of a switch.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { RenditionChooser, TrackSelection, type SegmentArrival, type WarpCatalog } from '../../src/warp/index.js';

const LADDER = [
  { id: 'video-360p', bandwidth: 800_000 },
  { id: 'video-540p', bandwidth: 1_600_000 },
  { id: 'video-720p', bandwidth: 3_000_000 },
];
const GOP_MS = 2000;

/**
 * A GoP of `track` that came at `bps` (its own bitrate when the link carries it), `lagMs` after its end;
 * its key frame (a tenth of its bytes) crossed the path at `pathBps` (by default 3 Mbit/s: room for every
 * rendition of the ladder, short of twice the top's).
 */
function gop(
  bandwidth: number,
  o: { lagMs?: number; spanMs?: number; complete?: boolean; pathBps?: number } = {},
): SegmentArrival {
  const spanMs = o.spanMs ?? GOP_MS - 50;
  const bytes = (bandwidth / 8) * (GOP_MS / 1000);
  const headBytes = bytes / 10;
  return {
    bytes,
    durationMs: GOP_MS,
    spanMs,
    lagMs: o.lagMs ?? 150,
    complete: o.complete ?? true,
    headBytes,
    headMs: (headBytes * 8 * 1000) / (o.pathBps ?? 3e6),
  };
}

test('good GoPs: the top rendition stays; a chooser starts at the top unless told', () => {
  const c = new RenditionChooser(LADDER, undefined);
  assert.equal(c.current, 'video-720p');
  for (let i = 0; i < 10; i++) assert.equal(c.arrived('video-720p', gop(3e6), i * GOP_MS), undefined);
  assert.equal(new RenditionChooser(LADDER, 'video-540p').current, 'video-540p');
});

test('down fast: a cut segment or a late GoP is a step down at once, to what the measured rate carries', () => {
  let c = new RenditionChooser(LADDER, undefined);
  c.arrived('video-720p', gop(3e6), 0);
  assert.equal(c.arrived('video-720p', gop(3e6, { complete: false, spanMs: 3000 }), 2000)?.track, 'video-540p');
  // A late GoP whose bytes came at 1.25 Mbit/s: 540p does not fit in 0.8 × that, 360p does.
  c = new RenditionChooser(LADDER, undefined);
  c.arrived('video-720p', gop(3e6), 0);
  const late = { ...gop(3e6), spanMs: 4800, lagMs: 2950 };
  assert.deepEqual(c.arrived('video-720p', late, 2000)?.track, 'video-360p');
  // The consumer giving a segment up: one step.
  c = new RenditionChooser(LADDER, undefined);
  assert.equal(c.cut('video-720p', 0)?.track, 'video-540p');
  // What was on its way from the rendition above is not held against the new one.
  assert.equal(c.arrived('video-720p', gop(3e6, { complete: false }), 100), undefined);
  assert.equal(c.cut('video-720p', 200), undefined);
  assert.equal(c.current, 'video-540p');
  // At the bottom there is nowhere to go.
  c = new RenditionChooser(LADDER, 'video-360p');
  assert.equal(c.cut('video-360p', 0), undefined);
});

test('a lag growing above its floor steps down before anything is cut; the floor absorbs a constant offset', () => {
  const c = new RenditionChooser(LADDER, undefined);
  // A clock 5 s off: every lag is 5 s larger, and that is no congestion.
  for (let i = 0; i < 5; i++) assert.equal(c.arrived('video-720p', gop(3e6, { lagMs: 5150 }), i * GOP_MS), undefined);
  assert.equal(c.arrived('video-720p', gop(3e6, { lagMs: 5400 }), 10_000), undefined, '250 ms above: not yet');
  assert.equal(c.arrived('video-720p', gop(3e6, { lagMs: 5700 }), 12_000)?.track, 'video-540p');
});

test('up carefully: after upAfterMs of good GoPs, one step; a streak that goes on takes the next step a GoP later', () => {
  const c = new RenditionChooser(LADDER, 'video-360p', { upAfterMs: 4000 });
  assert.equal(c.arrived('video-360p', gop(0.8e6), 0), undefined, 'one good GoP (2 s) is not 4 s');
  assert.equal(c.arrived('video-360p', gop(0.8e6, { lagMs: 500 }), 2000), undefined, 'a GoP without room');
  assert.equal(c.arrived('video-360p', gop(0.8e6), 4000), undefined);
  assert.equal(c.arrived('video-360p', gop(0.8e6), 6000)?.track, 'video-540p');
  // A 360p segment still arriving after the step says nothing of 540p.
  assert.equal(c.arrived('video-360p', gop(0.8e6), 7000), undefined);
  assert.equal(c.arrived('video-540p', gop(1.6e6), 8000)?.track, 'video-720p');
  assert.equal(c.arrived('video-720p', gop(3e6), 10_000), undefined, 'the top');
});

test('a failed probe: stepping up to that rendition again needs twice the good time, for a while', () => {
  const c = new RenditionChooser(LADDER, 'video-360p', { upAfterMs: 4000, maxUpAfterMs: 8000 });
  c.arrived('video-360p', gop(0.8e6), 0);
  assert.equal(c.arrived('video-360p', gop(0.8e6), 2000)?.track, 'video-540p');
  // The first 540p GoP comes late: back down, and 540p is a failed probe.
  assert.equal(c.arrived('video-540p', gop(1.6e6, { lagMs: 900, spanMs: 2900 }), 4000)?.track, 'video-360p');
  let t = 6000;
  let steps = 0;
  while (!c.arrived('video-360p', gop(0.8e6), t)) (t += GOP_MS), steps++;
  assert.equal(c.current, 'video-540p');
  assert.equal(steps + 1, 4, 'four good GoPs (8 s) before the next probe');
  // Long after the failure, the usual 4 s again.
  const d = new RenditionChooser(LADDER, 'video-360p', { upAfterMs: 4000 });
  d.arrived('video-360p', gop(0.8e6), 0);
  d.arrived('video-360p', gop(0.8e6), 2000);
  d.arrived('video-540p', gop(1.6e6, { complete: false }), 4000);
  assert.equal(d.arrived('video-360p', gop(0.8e6), 60_000), undefined);
  assert.equal(d.arrived('video-360p', gop(0.8e6), 62_000)?.track, 'video-540p');
});

test("key frames crossing the path at twice the next rendition's bitrate waive its failed probe's wait", () => {
  /** A chooser whose 540p probe failed at 4 s: the next one needs 8 s of good GoPs, unless the path changed. */
  const failedProbe = () => {
    const c = new RenditionChooser(LADDER, 'video-360p', { upAfterMs: 4000, maxUpAfterMs: 8000 });
    c.arrived('video-360p', gop(0.8e6), 0);
    assert.equal(c.arrived('video-360p', gop(0.8e6), 2000)?.track, 'video-540p');
    assert.equal(c.arrived('video-540p', gop(1.6e6, { complete: false }), 4000)?.track, 'video-360p');
    return c;
  };
  /** When (ms) the chooser probes 540p again, given each GoP's key-frame rate. */
  const nextProbe = (c: RenditionChooser, pathBps: (t: number) => number | undefined) => {
    for (let t = 6000; t <= 20_000; t += GOP_MS)
      if (c.arrived('video-360p', gop(0.8e6, { pathBps: pathBps(t) }), t)?.track === 'video-540p') return t;
    return undefined;
  };
  // The path recovered: key frames at 8 Mbit/s (540p needs 2 × 1.6 Mbit/s): the usual 4 s.
  assert.equal(
    nextProbe(failedProbe(), () => 8e6),
    8000,
  );
  // Key frames at 3 Mbit/s: the failed probe's 8 s stands.
  assert.equal(
    nextProbe(failedProbe(), () => 3e6),
    12_000,
  );
  // One key frame read in one go next to slow ones: the slower is the path's rate.
  assert.equal(
    nextProbe(failedProbe(), (t) => (t === 8000 ? 1e12 : undefined)),
    12_000,
  );
});

test('after a failed probe, key frames slower than its bitrate make the next probe wait longer; a streak stops short of it', () => {
  /** When (ms) 360p probes 540p again after a failed probe at 4 s, given the key frames' rate. */
  const nextProbe = (pathBps: number) => {
    const c = new RenditionChooser(LADDER, 'video-360p', { upAfterMs: 2000, maxUpAfterMs: 4000 });
    assert.equal(
      c.arrived('video-360p', gop(0.8e6, { pathBps }), 0)?.track,
      'video-540p',
      'a first probe is not held back',
    );
    assert.equal(c.arrived('video-540p', gop(1.6e6, { complete: false, pathBps }), 2000)?.track, 'video-360p');
    for (let t = 4000; t <= 30_000; t += GOP_MS) if (c.arrived('video-360p', gop(0.8e6, { pathBps }), t)) return t;
    return undefined;
  };
  assert.equal(nextProbe(3e6), 6000, "room for 540p: the failed probe's 4 s");
  assert.equal(nextProbe(1.2e6), 10_000, 'key frames at 1.2 Mbit/s, short of 1.6: 8 s');
  // 540p keeps up, but 720p's probe failed lately: the streak does not go on into it.
  const c = new RenditionChooser(LADDER, 'video-540p', { upAfterMs: 2000 });
  assert.equal(c.arrived('video-540p', gop(1.6e6), 0)?.track, 'video-720p');
  assert.equal(c.arrived('video-720p', gop(3e6, { complete: false }), 2000)?.track, 'video-540p');
  assert.equal(c.arrived('video-540p', gop(1.6e6, { lagMs: 700 }), 4000)?.track, 'video-360p', 'a late GoP');
  assert.equal(c.arrived('video-360p', gop(0.8e6), 6000)?.track, 'video-540p');
  assert.equal(c.arrived('video-540p', gop(1.6e6), 8000), undefined, 'no streak into 720p');
  assert.equal(c.arrived('video-540p', gop(1.6e6), 10_000)?.track, 'video-720p', "after the failed probe's 4 s");
});

test("a probe's first GoP that comes slower than its bitrate is a step back down before the next GoP begins", () => {
  const c = new RenditionChooser(LADDER, 'video-360p');
  assert.equal(
    c.arrived('video-360p', gop(0.8e6, { lagMs: 300 }), 0)?.track,
    'video-540p',
    'one good GoP (the default)',
  );
  // Early in the GoP nothing is judged; media made 300 ms behind the timeline is not held against the link.
  assert.equal(c.progress('video-540p', 10_000, 1000, GOP_MS, 1000), undefined);
  // 1.5 s in (1.2 s made): 1.6 Mbit/s makes 240 kB by then; 180 kB came (75 %).
  assert.equal(c.progress('video-540p', 180_000, 1500, GOP_MS, 1500)?.track, 'video-360p');
  // A probe that keeps up passes, and is checked once.
  const d = new RenditionChooser(LADDER, 'video-360p');
  d.arrived('video-360p', gop(0.8e6, { lagMs: 300 }), 0);
  assert.equal(d.progress('video-540p', 230_000, 1500, GOP_MS, 1500), undefined);
  assert.equal(d.progress('video-540p', 10, 1900, GOP_MS, 1900), undefined);
  // Only a probe's first GoP: later GoPs are judged as they come whole.
  d.arrived('video-540p', gop(1.6e6, { lagMs: 300 }), 2300);
  assert.equal(d.current, 'video-720p');
  d.arrived('video-720p', gop(3e6, { lagMs: 300 }), 4300);
  assert.equal(d.progress('video-720p', 10, 1500, GOP_MS, 5500), undefined);
  // A probe that keeps up in full is the good GoP of its streak: the next step's probe follows at once.
  const e = new RenditionChooser(LADDER, 'video-360p');
  e.arrived('video-360p', gop(0.8e6, { lagMs: 300 }), 0);
  assert.equal(e.progress('video-540p', 250_000, 1500, GOP_MS, 1500)?.track, 'video-720p');
  assert.equal(e.progress('video-720p', 100_000, 1500, GOP_MS, 3500)?.track, 'video-540p', 'and is checked itself');
});

test('a probe is judged against how far this viewer usually sees a GoP at that point (calibration)', () => {
  const calibrated = () => {
    const c = new RenditionChooser(LADDER, 'video-360p', { upAfterMs: 4000 });
    assert.equal(c.arrived('video-360p', gop(0.8e6, { lagMs: 300 }), 0), undefined);
    // GoPs of 360p, 1.5 s in (1.2 s made): 120 kB due at 0.8 Mbit/s; 72 kB seen (60 %), each segment once.
    for (const [i, key] of [{}, {}, {}].entries()) {
      assert.equal(c.progress('video-360p', 72_000, 1500, GOP_MS, i * GOP_MS, key), undefined);
      assert.equal(c.progress('video-360p', 10, 1600, GOP_MS, i * GOP_MS, key), undefined, 'once per segment');
    }
    assert.equal(c.arrived('video-360p', gop(0.8e6, { lagMs: 300 }), 6000)?.track, 'video-540p');
    return c;
  };
  // 540p's probe at 62 % of its nominal bitrate: what this viewer sees of a GoP that keeps up (so the next step follows).
  assert.equal(calibrated().progress('video-540p', 150_000, 1500, GOP_MS, 7500, {})?.track, 'video-720p');
  // At 42 %: well below the usual 60 %.
  assert.match(calibrated().progress('video-540p', 100_000, 1500, GOP_MS, 7500, {})?.why ?? '', /60 % usually/);
});

const CATALOG: WarpCatalog = {
  version: 1,
  broadcast: 'live',
  availabilityStartTime: 0,
  segmentDuration: 2,
  orderPolicy: 'newest-first',
  tracks: [
    { id: 'lo', kind: 'video', codec: 'avc1', timescale: 90000, bandwidth: 1, initId: 1 },
    { id: 'hi', kind: 'video', codec: 'avc1', timescale: 90000, bandwidth: 2, initId: 2 },
    { id: 'audio', kind: 'audio', codec: 'mp4a', timescale: 48000, bandwidth: 1, initId: 3 },
  ],
};

test('TrackSelection: a SELECT switches a kind from the segment after the newest under way; stale and no-op requests are ignored', () => {
  const s = new TrackSelection(CATALOG, ['hi', 'audio']);
  assert.ok(s.wants('hi', 7) && s.wants('audio', 7) && !s.wants('lo', 7));
  assert.equal(s.select({ kind: 'select', seq: 1, track: 'lo' }, 7)?.id, 'lo');
  assert.deepEqual(s.tracks().sort(), ['audio', 'hi', 'lo']);
  // Segment 7 under way goes on on the old rendition; 8 is the new one's.
  assert.ok(s.wants('hi', 7) && !s.wants('lo', 7));
  assert.ok(!s.wants('hi', 8) && s.wants('lo', 8) && s.wants('audio', 8));
  assert.equal(s.switches, 1);
  assert.ok(!s.wants('hi', 9));
  assert.equal(s.select({ kind: 'select', seq: 1, track: 'hi' }, 9), undefined, 'not newer');
  assert.equal(s.select({ kind: 'select', seq: 2, track: 'lo' }, 9), undefined, 'already on it');
  assert.equal(s.select({ kind: 'select', seq: 3, track: 'nope' }, 9), undefined, 'unknown');
  // Asking back for the track under way calls a switch not yet made off.
  assert.equal(s.select({ kind: 'select', seq: 4, track: 'hi' }, 9)?.id, 'hi');
  assert.equal(s.select({ kind: 'select', seq: 5, track: 'lo' }, 9), undefined);
  assert.ok(s.wants('lo', 10) && !s.wants('hi', 10));
  assert.equal(s.target('video'), 'lo');
});
