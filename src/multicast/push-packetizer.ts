/**
 * The sending side of one multicast HTTP/QUIC push session (draft-pardue-quic-http-mcast,
 * ALPN `h3m-07`, laid out as BBC R&D's nghq sends it): each resource becomes the datagrams of one server
 * push, ready for a UDP socket. The inverse of `MulticastReassembler` (src/push/reassembler.ts).
 *
 * ```ts
 * const session = new PushPacketizer({ sessionId, authority: 'pushcast.example:8443' });
 * for (const d of await session.push({ path: '/live/v/1.m4s', body, responseHeaders: { 'content-type': 'video/mp4' } })) socket.send(d);
 * for (const d of await session.goaway()) socket.send(d);
 * ```
 *
 * What one push is on the wire:
 * - Stream 0 stands in for the request stream a multicast session never has (draft §5; nghq's
 *   NGHQ_INIT_REQUEST_STREAM_ID). It carries a PUSH_PROMISE (RFC 9114 §7.2.5: push ID, then a QPACK
 *   field section, RFC 9204 §4.5, static table only, prefix `00 00`) with `:method GET`, `:scheme`,
 *   `:authority`, `:path` and the request headers. Its offsets continue across pushes (RFC 9000 §2.2).
 *   The promise is sent before its push stream starts (RFC 9114 §4.6), in the same or an earlier packet.
 * - The push stream is a new server-initiated unidirectional stream (RFC 9000 §2.1: ID ≡ 3 mod 4;
 *   default 3, 7, 11, … as test/wire/push-profile.test.ts has it; nghq opens stream 3 at session start
 *   and so pushes on 7, 11, …: pass `firstPushStreamId: 7` for that). It holds the stream type 0x01 and the
 *   push ID (RFC 9114 §6.2.2), a HEADERS frame (`:status`, content-type, content-length,
 *   `digest: sha256=<base64>` over the body, as nghq's sender adds it, RFC 3230 §4.3.2), then DATA
 *   frames of at most `maxDataFrameSize` bytes (RFC 9114 §7.2.1). FIN on its last STREAM frame.
 * - STREAM frames (RFC 9000 §19.8) always carry Length, carry Offset when it is not 0 (nghq's layout),
 *   and are packed into QUIC short-header packets (RFC 9000 §17.3.1: first byte 0x40 | (pn length − 1),
 *   the session ID as Destination Connection ID, the truncated packet number, RFC 9000 §17.1), no packet
 *   protection, no padding. Each packet is filled as far as the datagram limit allows, several frames
 *   per packet; the last packet of a push may be short (each `push` returns whole datagrams).
 * - Packet numbers count up from 0 across the session (RFC 9000 §12.3); with 1 byte on the wire the
 *   receiver recovers them as RFC 9000 Appendix A.3 does.
 *
 * End of session (`goaway`, draft-pardue-quic-http-mcast-05 §5.5 as nghq's `nghq_session_close`
 * implements it; the draft text was not at hand, this is the reading from nghq's source): a PUSH_PROMISE
 * on stream 0 with `:method GET`, `:scheme`, `:path goaway`, `connection: close` (no `:authority`), then,
 * also on stream 0, a HEADERS frame `:status 200`, `connection: close`, and FIN on stream 0. No push
 * stream is opened. nghq's receiver closes the session when it sees a promise with `:path goaway` and
 * `connection: close`. (`connection` is a connection-specific field that RFC 9114 §4.2 forbids in
 * HTTP/3; the multicast profile uses it anyway as this signal.)
 *
 * Isomorphic: no Node API (WebCrypto for the digest).
 */
import {
  Http3FrameType,
  MAX_CONNECTION_ID_LENGTH,
  toBase64,
  MAX_MULTICAST_DATAGRAM,
  chunkSignatureBase,
  concatBytes,
  encodeChunkDigestFrame,
  encodeFieldSection,
  encodeHttp3Frame,
  encodeHttp3FrameHeader,
  encodePushStreamHeader,
  shortHeaderLength,
  varintLength,
  writeFrame,
  writeShortHeader,
  type FieldLine,
  type HuffmanPolicy,
  type PacketNumberLength,
} from '../wire/index.js';

/** Header fields as a record (one value per name) or as field lines (repeats allowed, order kept). */
export type HeaderInit = Readonly<Record<string, string>> | readonly FieldLine[];

export interface PushPacketizerOptions {
  /** The session ID: the Destination Connection ID of every packet (0 to 20 bytes). */
  sessionId: Uint8Array;
  /** `:authority` of every promised request (RFC 9114 §4.3.1). */
  authority: string;
  /** `:scheme` of every promised request; default `https`. */
  scheme?: string;
  /** Packet number bytes on the wire, 1 to 4; default 1, as nghq. */
  packetNumberLength?: PacketNumberLength;
  /** Largest datagram; default 1470 (`MAX_MULTICAST_DATAGRAM`). At least 64. */
  maxDatagramSize?: number;
  /** Largest DATA frame payload; default 16 384. */
  maxDataFrameSize?: number;
  /** Stream ID of the first push stream (≡ 3 mod 4); default 3. nghq: 7. */
  firstPushStreamId?: number;
  /** First push ID; default 0. */
  firstPushId?: number;
  /** First packet number; default 0. */
  firstPacketNumber?: number;
  /** QPACK string coding; default `auto` (Huffman when shorter). */
  huffman?: HuffmanPolicy;
  /**
   * Signs every promised request, response and goaway (e.g. `PushSigner`, src/push/signatures.ts): its
   * lines are appended to each field section. The profile has no packet protection; without a signer
   * receivers that verify (pushcast's do by default) refuse every push.
   */
  signer?: PushFieldSigner;
}

/** What signs a push's field sections (pseudo-fields included); returns the lines to append. */
export interface PushFieldSigner {
  signRequest(request: readonly FieldLine[]): Promise<FieldLine[]>;
  signResponse(request: readonly FieldLine[], response: readonly FieldLine[]): Promise<FieldLine[]>;
  /** For progressive pushes: the response without length and digest, and each chunk's signing base. */
  signProgressiveResponse?(request: readonly FieldLine[], response: readonly FieldLine[]): Promise<FieldLine[]>;
  signChunk?(base: Uint8Array): Promise<Uint8Array>;
}

/**
 * A push sent as its body is produced (docs/multicast.md, "Progressive pushes"): each chunk goes out
 * after a CHUNK_DIGEST frame (src/wire/chunk-digest.ts) that authenticates it; `end` sends the last one,
 * the whole body's `digest` in trailers (RFC 9114 §4.1) and FIN.
 */
export interface ProgressivePush {
  readonly pushId: number;
  readonly streamId: number;
  /** The datagrams of the next chunk of the body. */
  chunk(bytes: Uint8Array): Promise<Uint8Array[]>;
  /** The datagrams of the last chunk (may be empty), the trailers and the end of the stream. */
  end(last?: Uint8Array): Promise<Uint8Array[]>;
}

/** A progressive push's body is held (for the trailers' digest) up to this many bytes. */
export const MAX_PROGRESSIVE_BODY = 32 * 1024 * 1024;

export interface PushResource {
  /** `:path` of the promised request, starting with `/`. */
  path: string;
  /** More request fields for the PUSH_PROMISE (lowercase names, no pseudo-fields). */
  requestHeaders?: HeaderInit;
  /** Response status; default 200. */
  status?: number;
  /** Response fields (lowercase, no pseudo-fields). content-type defaults to `application/octet-stream`;
   * content-length and digest are always computed here (given values are replaced). */
  responseHeaders?: HeaderInit;
  body: Uint8Array;
}

/** What one `push` produced, besides its datagrams. */
export interface PushInfo {
  pushId: number;
  streamId: number;
  /** First and last packet number used. */
  firstPacketNumber: number;
  lastPacketNumber: number;
  /** The `digest` value sent: `sha256=<base64>`. */
  digest: string;
}

export interface PushPacketizerStats {
  pushes: number;
  packets: number;
  /** Datagram bytes. */
  bytes: number;
  /** Body bytes pushed. */
  bodyBytes: number;
}

/** Thrown by `push` and `goaway` after `goaway`. */
export class SessionClosedError extends Error {
  override name = 'SessionClosedError';
}

const REQUEST_STREAM = 0;
/** A STREAM frame piece shorter than this (and than what is left) starts a new packet instead. */
const MIN_PIECE = 16;

function fieldLines(init: HeaderInit | undefined, what: string): FieldLine[] {
  if (init === undefined) return [];
  const lines: FieldLine[] = Array.isArray(init)
    ? (init as readonly FieldLine[]).map((f) => ({ ...f }))
    : Object.entries(init as Record<string, string>).map(([name, value]) => ({ name, value }));
  for (const { name } of lines) {
    // RFC 9114 §4.2: field names are lowercase; §4.3: pseudo-fields are set by this class only.
    if (name === '' || name.startsWith(':') || name !== name.toLowerCase()) {
      throw new TypeError(`${what}: field name ${JSON.stringify(name)} must be lowercase and not a pseudo-field`);
    }
  }
  return lines;
}

/** `sha256=<base64>` over `body` (RFC 3230 §4.3.2, the algorithm token nghq writes). */
export async function sha256Digest(body: Uint8Array): Promise<string> {
  const copy = new Uint8Array(body); // an ArrayBuffer-backed copy, whatever backs `body`
  return `sha256=${toBase64(new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', copy)))}`;
}

export class PushPacketizer {
  private readonly sessionId: Uint8Array;
  private readonly authority: string;
  private readonly scheme: string;
  private readonly pnLength: PacketNumberLength;
  private readonly maxDatagramSize: number;
  private readonly maxDataFrameSize: number;
  private readonly huffman: HuffmanPolicy;
  private readonly headerLength: number;
  private readonly signer: PushFieldSigner | undefined;

  private nextPushId: number;
  private nextStreamId: number;
  private nextPacketNumber: number;
  private requestStreamOffset = 0;
  private closed = false;
  /** Calls run one after another, in call order (push awaits the digest). */
  private tail: Promise<unknown> = Promise.resolve();
  private readonly counters: PushPacketizerStats = { pushes: 0, packets: 0, bytes: 0, bodyBytes: 0 };
  private lastInfo: PushInfo | undefined;

  // The packet being filled.
  private payload: Uint8Array;
  private used = 0;
  private out: Uint8Array[] = [];

  constructor(options: PushPacketizerOptions) {
    if (options.sessionId.length > MAX_CONNECTION_ID_LENGTH)
      throw new RangeError(`a session ID is at most ${MAX_CONNECTION_ID_LENGTH} bytes (RFC 9000 §17.2)`);
    const pnLength = options.packetNumberLength ?? 1;
    if (![1, 2, 3, 4].includes(pnLength)) throw new RangeError(`packetNumberLength ${pnLength} is not 1 to 4`);
    const maxDatagramSize = options.maxDatagramSize ?? MAX_MULTICAST_DATAGRAM;
    if (!Number.isInteger(maxDatagramSize) || maxDatagramSize < 64 || maxDatagramSize > 65507) {
      throw new RangeError(`maxDatagramSize ${maxDatagramSize} is not an integer from 64 to 65507`);
    }
    const maxDataFrameSize = options.maxDataFrameSize ?? 16_384;
    if (!Number.isInteger(maxDataFrameSize) || maxDataFrameSize < 1)
      throw new RangeError(`maxDataFrameSize ${maxDataFrameSize} is not a positive integer`);
    const firstStream = options.firstPushStreamId ?? 3;
    if (!Number.isSafeInteger(firstStream) || firstStream % 4 !== 3)
      throw new RangeError(
        `firstPushStreamId ${firstStream} is not a server-initiated unidirectional stream ID (≡ 3 mod 4, RFC 9000 §2.1)`,
      );
    this.sessionId = options.sessionId.slice();
    this.authority = options.authority;
    this.scheme = options.scheme ?? 'https';
    this.pnLength = pnLength;
    this.maxDatagramSize = maxDatagramSize;
    this.maxDataFrameSize = maxDataFrameSize;
    this.huffman = options.huffman ?? 'auto';
    this.signer = options.signer;
    this.nextPushId = options.firstPushId ?? 0;
    this.nextStreamId = firstStream;
    this.nextPacketNumber = options.firstPacketNumber ?? 0;
    this.headerLength = shortHeaderLength(this.sessionId.length, pnLength);
    this.payload = new Uint8Array(maxDatagramSize - this.headerLength);
  }

  get stats(): PushPacketizerStats {
    return { ...this.counters };
  }

  /** What the last completed `push` produced (push ID, stream ID, packet numbers, digest). */
  get lastPush(): PushInfo | undefined {
    return this.lastInfo;
  }

  /** True once `goaway` was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** The datagrams of one server push, in sending order. Calls are serialised in call order. */
  push(resource: PushResource): Promise<Uint8Array[]> {
    if (this.closed) return Promise.reject(new SessionClosedError('push after goaway: the session is closed'));
    // Validate before queueing, so that a bad call fails at once and touches no state.
    let request: FieldLine[];
    let response: FieldLine[];
    try {
      ({ request, response } = this.fieldsOf(resource));
    } catch (error) {
      return Promise.reject(error);
    }
    const body = resource.body;
    const run = async () => {
      const digest = await sha256Digest(body);
      response.push({ name: 'digest', value: digest });
      if (this.signer) {
        const [requestSignature, responseSignature] = await Promise.all([
          this.signer.signRequest(request),
          this.signer.signResponse(request, response),
        ]);
        request.push(...requestSignature);
        response.push(...responseSignature);
      }
      if (this.closed) throw new SessionClosedError('push after goaway: the session is closed');
      return this.packetizePush(request, response, body, digest);
    };
    const result = this.tail.then(run, run);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /**
   * Opens a progressive push: the promise on stream 0 and the response HEADERS (no content-length, no
   * digest) on a new push stream, signed when the session is; the body follows by `chunk` and `end`.
   * Calls on every push of the session are serialised in call order, so chunks of several pushes
   * interleave in the packets as they are produced.
   */
  openPush(resource: Omit<PushResource, 'body'>): Promise<{ datagrams: Uint8Array[]; push: ProgressivePush }> {
    if (this.closed) return Promise.reject(new SessionClosedError('push after goaway: the session is closed'));
    if (this.signer && (!this.signer.signProgressiveResponse || !this.signer.signChunk))
      return Promise.reject(
        new TypeError('the signer cannot sign progressive pushes (signProgressiveResponse, signChunk)'),
      );
    let request: FieldLine[];
    let response: FieldLine[];
    try {
      ({ request, response } = this.fieldsOf({ ...resource, body: new Uint8Array(0) }));
      response = response.filter((f) => f.name !== 'content-length');
    } catch (error) {
      return Promise.reject(error);
    }
    const run = async () => {
      let created = 0;
      if (this.signer) {
        const [requestSignature, responseSignature] = await Promise.all([
          this.signer.signRequest(request),
          this.signer.signProgressiveResponse!(request, response),
        ]);
        request.push(...requestSignature);
        response.push(...responseSignature);
        const input = responseSignature.find((f) => f.name === 'signature-input')?.value ?? '';
        created = Number(/;created=(\d+)/.exec(input)?.[1] ?? 0);
      }
      if (this.closed) throw new SessionClosedError('push after goaway: the session is closed');
      const pushId = this.nextPushId++;
      const streamId = this.nextStreamId;
      this.nextStreamId += 4;
      const promise = encodeHttp3Frame({
        kind: 'push-promise',
        pushId,
        fieldSection: encodeFieldSection(request, { huffman: this.huffman }),
      });
      const head = concatBytes([
        encodePushStreamHeader(pushId),
        encodeHttp3Frame({ kind: 'headers', fieldSection: encodeFieldSection(response, { huffman: this.huffman }) }),
      ]);
      const promiseOffset = this.requestStreamOffset;
      this.writeStream(REQUEST_STREAM, promiseOffset, promise, false);
      this.requestStreamOffset += promise.length;
      this.writeStream(streamId, 0, head, false);
      // The promise and the HEADERS go twice, in two packets (RFC 9000 §2.2: data at an offset may be sent
      // again): a receiver that loses them cannot take any of the push, and must fetch it whole.
      this.flush();
      this.writeStream(REQUEST_STREAM, promiseOffset, promise, false);
      this.writeStream(streamId, 0, head, false);
      this.counters.pushes++;
      return {
        datagrams: this.finishBatch(),
        push: this.progressive(pushId, streamId, resource.path, created, head.length),
      };
    };
    const result = this.tail.then(run, run);
    this.tail = result.catch(() => undefined);
    return result;
  }

  private progressive(
    pushId: number,
    streamId: number,
    path: string,
    created: number,
    headLength: number,
  ): ProgressivePush {
    let streamOffset = headLength;
    let bodyOffset = 0;
    let index = 0;
    let ended = false;
    const body: Uint8Array[] = [];
    const send = (bytes: Uint8Array, last: boolean) => {
      if (ended) return Promise.reject(new Error(`push ${pushId} has ended`));
      if (last) ended = true;
      if (bodyOffset + bytes.length > MAX_PROGRESSIVE_BODY) {
        ended = true;
        return Promise.reject(new RangeError(`push ${pushId}: more than ${MAX_PROGRESSIVE_BODY} body bytes`));
      }
      const chunk = bytes.slice();
      const run = async () => {
        const sha256 = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', chunk));
        const digest = { index, offset: bodyOffset, length: chunk.length, last, sha256 };
        const signature = this.signer?.signChunk
          ? await this.signer.signChunk(chunkSignatureBase(this.sessionId, this.authority, path, created, digest))
          : new Uint8Array(0);
        const parts: Uint8Array[] = [encodeChunkDigestFrame({ ...digest, signature })];
        for (let at = 0; at < chunk.length; at += this.maxDataFrameSize) {
          const piece = chunk.subarray(at, Math.min(chunk.length, at + this.maxDataFrameSize));
          parts.push(encodeHttp3FrameHeader(Http3FrameType.DATA, piece.length), piece);
        }
        // The chunk's head: its CHUNK_DIGEST and the first DATA frame header, sent twice (below).
        const head = concatBytes(parts.slice(0, Math.min(parts.length, 2)));
        index++;
        bodyOffset += chunk.length;
        body.push(chunk);
        if (last) {
          // The whole body's digest in trailers, for receivers that verify whole resources.
          const whole = await sha256Digest(concatBytes(body));
          parts.push(
            encodeHttp3Frame({
              kind: 'headers',
              fieldSection: encodeFieldSection([{ name: 'digest', value: whole }], { huffman: this.huffman }),
            }),
          );
        }
        const bytesOut = concatBytes(parts);
        this.writeStream(streamId, streamOffset, bytesOut, last);
        // A receiver that loses the head cannot find where the chunk's bytes go nor check them, so the head
        // goes again in a later packet of the chunk (RFC 9000 §2.2: data at an offset may be sent more than
        // once): a chunk is then lost to the receiver only if both packets are, while any other loss maps
        // to exact body bytes that a repair fetches. The end of an empty last chunk (its CHUNK_DIGEST with the
        // last-chunk flag, the trailers, FIN) goes twice whole: without it the body never ends.
        if (chunk.length > 0 || last) {
          if (this.out.length === 0) this.flush();
          if (chunk.length > 0) this.writeStream(streamId, streamOffset, head, false);
          else this.writeStream(streamId, streamOffset, bytesOut, true);
        }
        streamOffset += bytesOut.length;
        this.counters.bodyBytes += chunk.length;
        return this.finishBatch();
      };
      const result = this.tail.then(run, run);
      this.tail = result.catch(() => undefined);
      return result;
    };
    return {
      pushId,
      streamId,
      chunk: (bytes) => send(bytes, false),
      end: (last = new Uint8Array(0)) => send(last, true),
    };
  }

  /** The end-of-session push (draft §5.5, see the file comment); later `push` calls reject. */
  goaway(): Promise<Uint8Array[]> {
    if (this.closed) return Promise.reject(new SessionClosedError('goaway already sent'));
    this.closed = true;
    const run = async () => {
      const fields: FieldLine[] = [
        { name: ':method', value: 'GET' },
        { name: ':scheme', value: this.scheme },
        { name: ':path', value: 'goaway' },
        { name: 'connection', value: 'close' },
      ];
      if (this.signer) fields.push(...(await this.signer.signRequest(fields)));
      const pushId = this.nextPushId++;
      const promise = encodeHttp3Frame({
        kind: 'push-promise',
        pushId,
        fieldSection: encodeFieldSection(fields, { huffman: this.huffman }),
      });
      const headers = encodeHttp3Frame({
        kind: 'headers',
        fieldSection: encodeFieldSection(
          [
            { name: ':status', value: '200' },
            { name: 'connection', value: 'close' },
          ],
          { huffman: this.huffman },
        ),
      });
      const bytes = concatBytes([promise, headers]);
      this.writeStream(REQUEST_STREAM, this.requestStreamOffset, bytes, true);
      this.requestStreamOffset += bytes.length;
      return this.finishBatch();
    };
    const result = this.tail.then(run, run);
    this.tail = result.catch(() => undefined);
    return result;
  }

  // -------------------------------------------------------------------------------------------------

  /** The promised request and the response fields of `resource` (content-length included), checked. */
  private fieldsOf(resource: PushResource): { request: FieldLine[]; response: FieldLine[] } {
    if (!resource.path.startsWith('/')) throw new TypeError(`:path ${JSON.stringify(resource.path)} must start with /`);
    const status = resource.status ?? 200;
    if (!Number.isInteger(status) || status < 200 || status > 599)
      throw new RangeError(`status ${status} is not a final status (RFC 9114 §4.1)`);
    const request: FieldLine[] = [
      { name: ':method', value: 'GET' },
      { name: ':scheme', value: this.scheme },
      { name: ':authority', value: this.authority },
      { name: ':path', value: resource.path },
      ...fieldLines(resource.requestHeaders, 'request header'),
    ];
    const given = fieldLines(resource.responseHeaders, 'response header').filter(
      (f) => f.name !== 'content-length' && f.name !== 'digest',
    );
    const response: FieldLine[] = [{ name: ':status', value: String(status) }];
    if (!given.some((f) => f.name === 'content-type'))
      response.push({ name: 'content-type', value: 'application/octet-stream' });
    response.push(...given, { name: 'content-length', value: String(resource.body.length) });
    return { request, response };
  }

  private packetizePush(request: FieldLine[], response: FieldLine[], body: Uint8Array, digest: string): Uint8Array[] {
    const pushId = this.nextPushId;
    const streamId = this.nextStreamId;
    const promise = encodeHttp3Frame({
      kind: 'push-promise',
      pushId,
      fieldSection: encodeFieldSection(request, { huffman: this.huffman }),
    });
    const parts: Uint8Array[] = [
      encodePushStreamHeader(pushId),
      encodeHttp3Frame({ kind: 'headers', fieldSection: encodeFieldSection(response, { huffman: this.huffman }) }),
    ];
    for (let at = 0; at < body.length; at += this.maxDataFrameSize) {
      const chunk = body.subarray(at, Math.min(body.length, at + this.maxDataFrameSize));
      parts.push(encodeHttp3FrameHeader(Http3FrameType.DATA, chunk.length), chunk);
    }
    const pushStream = concatBytes(parts);
    // Everything is encoded: now commit IDs and write packets (nothing below throws for valid state).
    this.nextPushId++;
    this.nextStreamId += 4;
    const firstPacketNumber = this.nextPacketNumber;
    this.writeStream(REQUEST_STREAM, this.requestStreamOffset, promise, false);
    this.requestStreamOffset += promise.length;
    this.writeStream(streamId, 0, pushStream, true);
    const datagrams = this.finishBatch();
    this.counters.pushes++;
    this.counters.bodyBytes += body.length;
    this.lastInfo = { pushId, streamId, firstPacketNumber, lastPacketNumber: this.nextPacketNumber - 1, digest };
    return datagrams;
  }

  /** Cuts `bytes` (stream `streamId` from `offset`) into STREAM frames in the packets being filled. */
  private writeStream(streamId: number, offset: number, bytes: Uint8Array, fin: boolean): void {
    let done = 0;
    const idLength = varintLength(streamId);
    while (done < bytes.length) {
      const left = bytes.length - done;
      const at = offset + done;
      const free = this.payload.length - this.used;
      // RFC 9000 §19.8: type byte, Stream ID, Offset (when not 0), Length, data.
      const fixed = 1 + idLength + (at === 0 ? 0 : varintLength(at));
      let take = Math.min(left, free - fixed - varintLength(Math.min(left, free)));
      while (take > 0 && fixed + varintLength(take) + take > free) take--;
      if (take < Math.min(left, MIN_PIECE)) {
        if (this.used === 0)
          throw new RangeError(`maxDatagramSize ${this.maxDatagramSize} leaves no room for a STREAM frame`);
        this.flush();
        continue;
      }
      const last = take === left;
      this.used = writeFrame(this.payload, this.used, {
        kind: 'stream',
        streamId,
        offset: at,
        data: bytes.subarray(done, done + take),
        fin: fin && last,
      });
      done += take;
      if (this.payload.length - this.used < 1 + idLength + 2 + MIN_PIECE) this.flush();
    }
    if (bytes.length === 0 && fin) {
      // An empty stream end: a STREAM frame with FIN and no data.
      const frame = { kind: 'stream', streamId, offset, data: new Uint8Array(0), fin: true } as const;
      if (this.payload.length - this.used < 1 + idLength + varintLength(offset) + 1) this.flush();
      this.used = writeFrame(this.payload, this.used, frame);
    }
  }

  private flush(): void {
    if (this.used === 0) return;
    const datagram = new Uint8Array(this.headerLength + this.used);
    const at = writeShortHeader(datagram, 0, {
      dcid: this.sessionId,
      packetNumber: this.nextPacketNumber++,
      packetNumberLength: this.pnLength,
    });
    datagram.set(this.payload.subarray(0, this.used), at);
    this.out.push(datagram);
    this.counters.packets++;
    this.counters.bytes += datagram.length;
    this.used = 0;
  }

  private finishBatch(): Uint8Array[] {
    this.flush();
    const out = this.out;
    this.out = [];
    return out;
  }
}
