/**
 * `pushcast multicast send <MPD URL>`: the multicast sender for a remote origin (or a CDN in front of
 * one). It follows the MPD's live edge, fetches each new segment of each representation by HTTP and
 * pushes it, signed, into that representation's session. `--announce FILE` writes the sessions and the
 * public key as JSON for the origin (`pushcast serve --multicast-announce FILE`), which then advertises
 * them with Alt-Svc and serves the key set.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { DashLiveFollower, createNodeFetch } from '../client/index.js';
import { MulticastPushSession } from '../multicast/index.js';
import { toHex } from '../wire/index.js';
import { PushSigner } from '../push/index.js';
import {
  fecAdvertisement,
  loadOrCreateSigner,
  nthGroup,
  sessionFec,
  type MulticastAnnouncement,
} from './live-multicast.js';

export interface MulticastSendOptions {
  group: string;
  port: number;
  interface: string;
  ttl: number;
  headroom: number;
  fec?: { k: number; m: number };
  representation?: string[];
  signingKey?: string;
  stateDir: string;
  announce?: string;
  ca?: string;
  insecure: boolean;
}

function log(line: string): void {
  console.error(`${new Date().toISOString().slice(11, 19)} ${line}`);
}

export async function multicastSend(mpdUrl: string, o: MulticastSendOptions): Promise<void> {
  if (isIP(o.interface) !== isIP(o.group)) throw new Error('--interface and --group must be of one IP version');
  const signer = o.signingKey
    ? await PushSigner.fromPkcs8Pem(await readFile(o.signingKey, 'utf8'))
    : await loadOrCreateSigner(join(o.stateDir, 'multicast'));
  const fetch = createNodeFetch({ ca: o.ca ? await readFile(o.ca) : undefined, insecure: o.insecure });
  const origin = new URL(mpdUrl);
  const sessions = new Map<string, MulticastPushSession>();
  const pending: [string, Parameters<MulticastPushSession['pushSegment']>][] = [];
  const follower = new DashLiveFollower({
    mpdUrl,
    fetch,
    representations: o.representation,
    log,
    onSegment: (init, segment) => {
      const session = sessions.get(segment.representation);
      if (session) void session.pushSegment(init, segment);
      else pending.push([segment.representation, [init, segment]]);
    },
  });
  const representations = await follower.start();
  for (const [i, rep] of representations.entries()) {
    sessions.set(
      rep.id,
      await MulticastPushSession.open({
        name: rep.id,
        group: nthGroup(o.group, i),
        port: o.port + i,
        sessionId: crypto.getRandomValues(new Uint8Array(8)),
        rateBitsPerSecond: Math.max(64_000, rep.bandwidth * o.headroom),
        authority: origin.host,
        scheme: origin.protocol.slice(0, -1),
        signer,
        interfaceAddress: o.interface,
        ttl: o.ttl,
        fec: sessionFec(o.fec, o.port, representations.length, i),
        log,
      }),
    );
  }
  for (const [rep, args] of pending.splice(0)) void sessions.get(rep)?.pushSegment(...args);

  for (const s of sessions.values()) {
    const st = s.stats;
    const fec = s.o.fec;
    console.log(
      `multicast: ${st.trackId} ${st.group.includes(':') ? `[${st.group}]` : st.group}:${st.port} source ${o.interface} session-id ${st.sessionId} at ${(st.rateBitsPerSecond / 1e6).toFixed(1)} Mbit/s${fec ? `, FEC ${fec.k}:${fec.m} on port ${fec.port}` : ''}`,
    );
  }
  if (o.announce) {
    const announcement: MulticastAnnouncement = {
      sessions: [...sessions.values()].map((s) => ({
        representation: s.o.name,
        group: s.o.group,
        port: s.o.port,
        source: o.interface,
        sessionId: toHex(s.o.sessionId),
        fec: fecAdvertisement(s.o.fec),
      })),
      keys: signer.keySet,
    };
    await writeFile(`${o.announce}.part`, `${JSON.stringify(announcement, null, 2)}\n`);
    await rename(`${o.announce}.part`, o.announce);
    log(`announced the sessions in ${o.announce}: run the origin with --multicast-announce ${o.announce}`);
  }

  let last = 0;
  const ticker = setInterval(() => {
    if (Date.now() - last < 10_000) return;
    last = Date.now();
    log(
      [...sessions.values()]
        .map(
          (s) =>
            `${s.stats.trackId}: ${s.stats.segments} segments, ${s.stats.dropped} dropped, ${(s.stats.bytes / 1e6).toFixed(1)} MB`,
        )
        .join('; '),
    );
  }, 1000);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  clearInterval(ticker);
  follower.stop();
  await Promise.all([...sessions.values()].map((s) => s.close()));
  log('stopped: every session ended with a goaway');
  process.exit(0);
}
