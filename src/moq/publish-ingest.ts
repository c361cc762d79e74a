/**
 * Contribution over MoQ: a `@moq/publish` page publishes a broadcast to `/moq` with the publish token,
 * and pushcast takes its media as an encoder's input (docs/moq.md). In moq-lite the session is symmetric:
 * this side asks the publisher for its announcements (ANNOUNCE_PLEASE), subscribes to the catalog of the
 * expected broadcast, then to its first video and audio renditions, reads the group streams the
 * publisher opens, and writes their frames as Matroska (`publish-mux.ts`) to a stream ffmpeg reads.
 *
 * - One publisher of the broadcast at a time: another with the token is refused while it publishes.
 * - Bounds: sessions that have not announced yet (`maxPending`), the announce within `announceTimeoutMs`,
 *   a frame `maxFrameBytes`, control messages `maxMessageBytes`, silence `idleTimeoutMs` once publishing,
 *   and Matroska not yet read by the encoder `maxBufferedBytes` (past it the publisher is cut off).
 */
import { EventEmitter } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import type { Session, SessionStream } from '../webtransport/index.js';
import {
  MoqLiteStream,
  MoqLiteVersion,
  type MoqLiteDraft,
  MoqStreamReader,
  WireError,
  decodeMoqAnnounce,
  decodeMoqAnnounceInit,
  decodeMoqClientSetup,
  decodeMoqGroup,
  encodeMoqAnnouncePlease,
  encodeMoqServerSetup,
  encodeMoqStreamStart,
  encodeMoqSubscribe,
  frameMoqMessage,
  frameMoqtMessage,
} from '../wire/index.js';
import { LegacyMatroskaMuxer, pickRenditions, type PickedRendition } from './publish-mux.js';

export interface MoqPublishOptions {
  /** The broadcast a publisher must announce. */
  name: string;
  /** The token a publisher presents (`?token=`). */
  token: string;
  /** Publisher sessions that have not announced the broadcast yet, at once. Default 4. */
  maxPending?: number;
  /** From the session's start to the announce of the broadcast. Default 10 s. */
  announceTimeoutMs?: number;
  /** A publisher that sends no frame for this long is cut off. Default 10 s. */
  idleTimeoutMs?: number;
  /** The largest frame. Default 4 MiB. */
  maxFrameBytes?: number;
  /** The largest control message (announces, the catalog is a frame). Default 16 KiB. */
  maxMessageBytes?: number;
  /** Matroska written and not yet read by the encoder. Default 32 MiB. */
  maxBufferedBytes?: number;
  /** How long a catalog with video and no audio waits for an audio rendition before going on without. Default 3 s. */
  audioWaitMs?: number;
}

/** A publisher of the broadcast: its media as Matroska, for the encoder's standard input. */
export interface MoqPublisher {
  /** `publisher <n> (<transport>)`. */
  readonly remote: string;
  readonly mkv: Readable;
  close(reason?: string): void;
}

export interface MoqPublishEvents {
  /** A session announced the broadcast and is its publisher now. */
  publish: [publisher: MoqPublisher];
  /** The publisher's catalog was read: what it sends, as the encoder will read it. */
  tracks: [publisher: MoqPublisher, description: string];
  /** The publisher left: it unannounced, the session closed, it went silent, or `close()`. */
  unpublish: [publisher: MoqPublisher, reason: string];
  /** A session with the token was refused (another publishes, too many waiting, no announce in time, …). */
  refused: [remote: string, reason: string];
}

export const MOQ_PUBLISH_DEFAULTS = {
  maxPending: 4,
  announceTimeoutMs: 10_000,
  idleTimeoutMs: 10_000,
  maxFrameBytes: 4 * 1024 * 1024,
  maxMessageBytes: 16 * 1024,
  maxBufferedBytes: 32 * 1024 * 1024,
  audioWaitMs: 3000,
} as const;

/** Session and stream codes sent to a publisher (the application codes of `MoqServer`). */
const Code = { GOING_AWAY: 0x0, PROTOCOL: 0x3, VERSION: 0x4, TIMEOUT: 0x5, NOT_FOUND: 0x10, TOO_MANY: 0x11 } as const;

const CATALOG_TRACK = 'catalog.json';
const SUB = { catalog: 0, video: 1, audio: 2 } as const;

export class MoqPublishIngest extends EventEmitter<MoqPublishEvents> {
  readonly o: Required<MoqPublishOptions>;
  private active?: PublisherSession;
  private readonly pending = new Set<PublisherSession>();
  private count = 0;
  readonly counters = { accepted: 0, refused: 0 };

  constructor(o: MoqPublishOptions) {
    super();
    this.o = { ...MOQ_PUBLISH_DEFAULTS, ...o };
  }

  /** Whether a session request (its path with the query) is a publisher's: it carries the publish token. */
  accepts(path: string): boolean {
    return new URL(path, 'https://moq.invalid').searchParams.get('token') === this.o.token;
  }

  get publishing(): boolean {
    return this.active !== undefined;
  }

  /** A session that presented the publish token; `draft` as `MoqServer` negotiated it. */
  session(session: Session, draft: MoqLiteDraft): void {
    const remote = `publisher ${++this.count} (${session.transport})`;
    if (this.pending.size >= this.o.maxPending) {
      this.refuse(remote, `more than ${this.o.maxPending} publishers waiting to announce`);
      void session.close(Code.TOO_MANY, 'too many publishers').catch(() => undefined);
      return;
    }
    const p = new PublisherSession(this, session, draft, remote);
    this.pending.add(p);
  }

  refuse(remote: string, reason: string): void {
    this.counters.refused++;
    this.emit('refused', remote, reason);
  }

  /** `p` announced the broadcast: it publishes, unless another does. */
  claim(p: PublisherSession): boolean {
    this.pending.delete(p);
    if (this.active) return false;
    this.active = p;
    this.counters.accepted++;
    this.emit('publish', p);
    return true;
  }

  left(p: PublisherSession, reason: string, published: boolean): void {
    this.pending.delete(p);
    if (this.active === p) this.active = undefined;
    if (published) this.emit('unpublish', p, reason);
  }

  close(): void {
    for (const p of [...this.pending]) p.close('the server stops');
    this.active?.close('the server stops');
  }
}

class PublisherSession implements MoqPublisher {
  readonly mkv = new PassThrough({ highWaterMark: 1024 * 1024 });
  private setUp: boolean;
  private published = false;
  private ended = false;
  private muxer?: LegacyMatroskaMuxer;
  private video?: PickedRendition;
  private audio?: PickedRendition;
  private readonly subscribed = new Set<number>();
  private timer: ReturnType<typeof setTimeout>;
  private audioWait?: ReturnType<typeof setTimeout>;

  constructor(
    private readonly ingest: MoqPublishIngest,
    private readonly session: Session,
    private readonly draft: MoqLiteDraft,
    readonly remote: string,
  ) {
    this.setUp = draft >= 3;
    this.timer = setTimeout(
      () => this.fail(Code.TIMEOUT, 'no announce of the broadcast in time'),
      ingest.o.announceTimeoutMs,
    );
    session.on('stream', (stream) => void this.read(stream).catch(() => undefined));
    session.once('close', (info) =>
      this.end(`session closed${info.reason ? `: ${info.reason}` : info.code ? ` (code ${info.code})` : ''}`),
    );
    if (this.setUp) this.askAnnounces();
  }

  close(reason = 'closed'): void {
    this.end(reason);
    void this.session.close(Code.GOING_AWAY, reason).catch(() => undefined);
  }

  private fail(code: number, reason: string): void {
    if (!this.published) this.ingest.refuse(this.remote, reason);
    this.end(reason);
    void this.session.close(code, reason).catch(() => undefined);
  }

  private end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    clearTimeout(this.audioWait);
    this.mkv.end();
    this.ingest.left(this, reason, this.published);
  }

  /** Frames keep coming: the idle timer starts over. */
  private alive(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.close('no media in time'), this.ingest.o.idleTimeoutMs);
  }

  private async read(stream: SessionStream): Promise<void> {
    if (!stream.bidirectional) return this.readGroup(stream);
    // The publisher's own requests: its SETUP (moq-lite-02); nothing else is served to a publisher (its probe).
    const reader = new MoqStreamReader({ maxMessage: this.ingest.o.maxMessageBytes });
    let type: number | undefined;
    let answered = false;
    try {
      for await (const chunk of stream) {
        reader.push(chunk);
        if (type === undefined) {
          type = reader.varint();
          if (type === undefined) continue;
          if (type !== MoqLiteStream.CLIENT_COMPAT || this.setUp) {
            stream.reset(Code.NOT_FOUND);
            stream.stopSending(Code.NOT_FOUND);
            return;
          }
        }
        if (answered) {
          // The session stream stays open; what follows the SETUP (SESSION_INFO) is of no use here.
          while (reader.message() !== undefined);
          continue;
        }
        const m = reader.message('u16');
        if (m) {
          answered = true;
          this.answerSetup(m, stream);
        }
      }
    } catch (error) {
      if (error instanceof WireError) this.fail(Code.PROTOCOL, `malformed SETUP: ${error.message}`);
    }
  }

  private answerSetup(payload: Uint8Array, stream: SessionStream): void {
    const setup = decodeMoqClientSetup(payload);
    if (!setup.versions.includes(MoqLiteVersion.LITE_02))
      return this.fail(Code.VERSION, 'no version in common (moq-lite-02)');
    this.setUp = true;
    void stream
      .write(
        encodeMoqStreamStart(
          MoqLiteStream.SERVER_COMPAT,
          frameMoqtMessage(encodeMoqServerSetup({ version: MoqLiteVersion.LITE_02, parameters: new Map() })),
        ),
      )
      .catch(() => undefined);
    this.askAnnounces();
  }

  /** ANNOUNCE_PLEASE for every broadcast; the expected one, once announced, is subscribed to. */
  private askAnnounces(): void {
    const stream = this.session.openStream({ bidirectional: true, urgency: 0 });
    void stream
      .write(encodeMoqStreamStart(MoqLiteStream.ANNOUNCE, frameMoqMessage(encodeMoqAnnouncePlease(''))))
      .catch(() => undefined);
    void (async () => {
      const reader = new MoqStreamReader({ maxMessage: this.ingest.o.maxMessageBytes });
      let first = true;
      try {
        for await (const chunk of stream) {
          reader.push(chunk);
          for (let m = reader.message(); m !== undefined; m = reader.message()) {
            if (first && this.draft < 3) {
              first = false;
              for (const suffix of decodeMoqAnnounceInit(m)) this.announced(suffix, true);
              continue;
            }
            const a = decodeMoqAnnounce(m, this.draft);
            this.announced(a.suffix, a.active);
          }
        }
        this.announced(this.ingest.o.name, false);
      } catch (error) {
        if (error instanceof WireError) this.fail(Code.PROTOCOL, `malformed ANNOUNCE: ${error.message}`);
        else this.announced(this.ingest.o.name, false);
      }
    })();
  }

  private announced(name: string, active: boolean): void {
    if (this.ended || name.replace(/^\/+|\/+$/g, '') !== this.ingest.o.name) return;
    if (!active) {
      if (this.published) this.close('the broadcast was unannounced');
      return;
    }
    if (this.published) return;
    if (!this.ingest.claim(this)) return this.fail(Code.TOO_MANY, `broadcast ${name} already has a publisher`);
    this.published = true;
    this.alive();
    this.subscribe(SUB.catalog, CATALOG_TRACK, 100);
  }

  private subscribe(id: number, track: string, priority: number): void {
    if (this.subscribed.has(id)) return;
    this.subscribed.add(id);
    const stream = this.session.openStream({ bidirectional: true, urgency: 0 });
    const m = encodeMoqSubscribe({ id, broadcast: this.ingest.o.name, track, priority }, this.draft);
    void stream.write(encodeMoqStreamStart(MoqLiteStream.SUBSCRIBE, frameMoqMessage(m))).catch(() => undefined);
    // SUBSCRIBE_OK (and moq-lite-03's delivery fields) are not needed: the groups are what count. The
    // stream ends with the track, or the publisher's reset refuses it.
    void (async () => {
      let bytes = 0;
      try {
        for await (const chunk of stream) {
          bytes += chunk.length;
          if (bytes > this.ingest.o.maxMessageBytes) throw new Error('SUBSCRIBE_OK too long');
        }
      } catch (error) {
        if (!this.ended && id !== SUB.audio)
          this.close(`track ${track} refused or ended: ${error instanceof Error ? error.message : String(error)}`);
      }
    })();
  }

  /** A group stream: type 0, GROUP, then its frames. */
  private async readGroup(stream: SessionStream): Promise<void> {
    if (!this.published) {
      stream.stopSending(Code.PROTOCOL);
      return;
    }
    const reader = new MoqStreamReader({ maxMessage: this.ingest.o.maxFrameBytes });
    let type: number | undefined;
    let group: { subscribe: number; sequence: number } | undefined;
    let index = 0;
    try {
      for await (const chunk of stream) {
        reader.push(chunk);
        if (type === undefined) {
          type = reader.varint();
          if (type === undefined) continue;
          if (type !== 0) throw new WireError('frame-encoding', 0, `unidirectional stream of type ${type}`);
        }
        if (!group) {
          const m = reader.message();
          if (!m) continue;
          group = decodeMoqGroup(m);
          if (!this.subscribed.has(group.subscribe)) {
            stream.stopSending(Code.NOT_FOUND);
            return;
          }
        }
        for (let f = reader.message(); f !== undefined; f = reader.message()) this.frame(group.subscribe, f, index++);
      }
    } catch (error) {
      if (error instanceof WireError) this.fail(Code.PROTOCOL, `malformed group: ${error.message}`);
      else if (error instanceof Error && !(error.name === 'StreamAbortedError')) this.close(error.message);
    }
  }

  private frame(subscribe: number, frame: Uint8Array, index: number): void {
    if (this.ended) return;
    if (subscribe === SUB.catalog) return this.catalog(frame);
    this.alive();
    if (!this.muxer) return;
    if (subscribe === SUB.video) this.muxer.videoFrame(frame, index === 0);
    else if (subscribe === SUB.audio) this.muxer.audioFrame(frame);
    // Both sides of the pass-through: what waits to be transformed and what waits to be read.
    const waiting = this.mkv.writableLength + this.mkv.readableLength;
    if (waiting > this.ingest.o.maxBufferedBytes) this.close(`the encoder is not reading (${waiting} bytes waiting)`);
  }

  /** A catalog (one frame per group): the renditions to take, subscribed to once. */
  private catalog(frame: Uint8Array): void {
    let picked: ReturnType<typeof pickRenditions>;
    try {
      picked = pickRenditions(JSON.parse(new TextDecoder().decode(frame)));
    } catch (error) {
      return this.close(`catalog: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (!this.video && picked.video) {
      this.video = picked.video;
      this.subscribe(SUB.video, picked.video.track, 60);
    }
    if (!this.audio && picked.audio && !this.muxer) {
      this.audio = picked.audio;
      this.subscribe(SUB.audio, picked.audio.track, 80);
    }
    if (!this.video || this.muxer) return;
    if (this.audio) return this.startMuxer();
    // The audio encoder is often configured after the video's: its rendition comes in a later catalog.
    // Without it for a while, the publisher has none, and the Matroska carries silence in its place.
    this.audioWait ??= setTimeout(() => !this.ended && !this.muxer && this.startMuxer(), this.ingest.o.audioWaitMs);
  }

  private startMuxer(): void {
    clearTimeout(this.audioWait);
    const video = this.video!;
    try {
      this.muxer = new LegacyMatroskaMuxer(video.rendition, this.audio?.rendition, (bytes) => this.mkv.write(bytes));
    } catch (error) {
      return this.close(error instanceof Error ? error.message : String(error));
    }
    const v = video.rendition;
    const a = this.audio?.rendition;
    this.ingest.emit(
      'tracks',
      this,
      `video ${video.track} ${v.codec} ${v.codedWidth ?? '?'}x${v.codedHeight ?? '?'}` +
        (a
          ? `, audio ${this.audio!.track} ${a.codec} ${a.sampleRate ?? '?'} Hz ${a.numberOfChannels ?? '?'} ch`
          : ', no audio (silence in its place)'),
    );
  }
}
