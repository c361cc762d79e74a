/**
 * HTTP/3 (RFC 9114) on pushcast's QUIC endpoint, with the wire codecs of src/wire (frames, QPACK
 * without a dynamic table): the same codecs the multicast profile uses, not a second copy.
 *
 * - **Control streams** (§6.2.1): each side opens one unidirectional stream of type 0x00 whose first
 *   frame is SETTINGS (§7.2.4): QPACK_MAX_TABLE_CAPACITY 0 and QPACK_BLOCKED_STREAMS 0 (RFC 9204 §5),
 *   so no encoder or decoder stream is needed (RFC 9204 §4.2 allows not opening them),
 *   MAX_FIELD_SECTION_SIZE, and whatever an extension adds (WebTransport). Peer control streams are
 *   read for SETTINGS; QPACK and unknown unidirectional streams are read and discarded (§6.2) unless an
 *   extension takes them.
 * - **Requests** (§4.1): a client-initiated bidirectional stream carries HEADERS, then DATA, then FIN;
 *   the response HEADERS (`:status`, after any 1xx such as 103 Early Hints, RFC 8297), DATA, FIN.
 *   Unknown and reserved frame types are skipped (§9). A malformed request (§4.1.2) is answered 400
 *   and its stream closed; bodies beyond `maxBodyBytes` get 413. Responses are written through an
 *   object shaped like node's HTTP compatibility API (`writeHead`, `write`, `end`, `'close'`), so
 *   that one request handler serves HTTP/1.1, HTTP/2 and HTTP/3.
 * - **Extended CONNECT** (RFC 9220): a CONNECT with `:protocol` goes to an extension, and its stream
 *   stays open beyond the response; a bidirectional stream that starts with a signal value other than
 *   an HTTP/3 frame (WebTransport's 0x41) can be taken by an extension too.
 */
import { EventEmitter } from 'node:events';
import {
  Http3FrameReader,
  Http3FrameType,
  SETTINGS_MAX_FIELD_SECTION_SIZE,
  UniStreamType,
  WireError,
  concatBytes,
  decodeFieldSection,
  encodeFieldSection,
  encodeHttp3Frame,
  encodeHttp3FrameHeader,
  encodeUniStreamHeader,
  encodeVarint,
  readBigVarint,
  varintLengthOf,
  type FieldLine,
} from '../wire/index.js';
import type { QuicConnection, QuicStream } from '../quic/index.js';

export const H3_ALPN = 'h3';

/** RFC 9114 §8.1 error codes used here. */
export const H3Error = {
  NO_ERROR: 0x100,
  GENERAL_PROTOCOL_ERROR: 0x101,
  INTERNAL_ERROR: 0x102,
  FRAME_UNEXPECTED: 0x105,
  REQUEST_CANCELLED: 0x10c,
  REQUEST_INCOMPLETE: 0x10d,
  MESSAGE_ERROR: 0x10e,
} as const;

/** RFC 9204 §5. */
const SETTINGS_QPACK_MAX_TABLE_CAPACITY = 0x01n;
const SETTINGS_QPACK_BLOCKED_STREAMS = 0x07n;
const MAX_FIELD_SECTION = 64 * 1024;
/** RFC 9114 §4.2: connection-specific fields must not appear in HTTP/3 messages. */
const CONNECTION_FIELDS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

const encoder = new TextEncoder();

function field(fields: readonly FieldLine[], name: string): string | undefined {
  return fields.find((f) => f.name === name)?.value;
}

/** A peer stream's first bytes, read before deciding who owns the stream. */
export interface StreamStart {
  /** The first varint (a unidirectional stream type, or a bidirectional stream's first frame type or signal). */
  type: bigint;
  /** Bytes read after it, not yet consumed. */
  rest: Uint8Array;
}

/** What an extension of HTTP/3 (here: WebTransport) adds to a connection. */
export interface Http3Extension {
  /** SETTINGS this side sends besides HTTP/3's own. */
  settings: ReadonlyMap<bigint, bigint>;
  /** A peer unidirectional stream of a type HTTP/3 does not know: true when taken. */
  uniStream?(stream: QuicStream, start: StreamStart): boolean;
  /** A peer bidirectional stream that starts with a value that is not an HTTP/3 frame of a request: true when taken. */
  bidiStream?(stream: QuicStream, start: StreamStart): boolean;
  /**
   * An extended CONNECT request (RFC 9220 §3): the extension answers through `respond` and owns the
   * stream from then on; `reader` holds what was read after the request's HEADERS.
   */
  connect?(request: Http3ConnectRequest): void;
}

export interface Http3ConnectRequest {
  protocol: string;
  authority: string;
  path: string;
  scheme: string;
  /** Every field of the request, pseudo-fields included. */
  fields: FieldLine[];
  stream: QuicStream;
  reader: Http3FrameReader;
  /** Sends the response HEADERS; the stream stays open. */
  respond(status: number, headers?: Record<string, string>): Promise<void>;
}

/** One side's HTTP/3 connection state: control streams, SETTINGS, and the dispatch of peer streams. */
export class Http3Connection {
  /** The peer's SETTINGS, once its control stream delivered them. */
  readonly peerSettings: Promise<ReadonlyMap<bigint, bigint>>;
  private resolveSettings!: (settings: ReadonlyMap<bigint, bigint>) => void;

  constructor(
    readonly quic: QuicConnection,
    private readonly extension?: Http3Extension,
  ) {
    this.peerSettings = new Promise((resolve) => (this.resolveSettings = resolve));
    // The peer's stream limits are known once the handshake is done (RFC 9000 §7.4).
    if (quic.isEstablished) this.openControlStream();
    else quic.once('established', () => this.openControlStream());
  }

  /** Opens this side's control stream with SETTINGS (§6.2.1, §7.2.4). */
  private openControlStream(): void {
    const stream = this.quic.openStream({ bidirectional: false, urgency: 0 });
    const settings = new Map<bigint, bigint>([
      [SETTINGS_QPACK_MAX_TABLE_CAPACITY, 0n],
      [SETTINGS_QPACK_BLOCKED_STREAMS, 0n],
      [SETTINGS_MAX_FIELD_SECTION_SIZE, BigInt(MAX_FIELD_SECTION)],
      ...(this.extension?.settings ?? []),
    ]);
    const header = encodeUniStreamHeader(UniStreamType.CONTROL);
    const frame = encodeHttp3Frame({ kind: 'settings', settings });
    void stream.write(concatBytes([header, frame])).catch(() => undefined); // the control stream stays open for the connection's life (§6.2.1)
  }

  /** A stream the peer opened: unidirectional ones are dispatched here; bidirectional ones are returned with their start. */
  async acceptUni(stream: QuicStream): Promise<void> {
    const start = await readStreamStart(stream);
    if (!start) return;
    if (start.type === BigInt(UniStreamType.CONTROL)) return this.readControl(stream, start.rest);
    if (this.extension?.uniStream?.(stream, start)) return;
    // §6.2: QPACK streams (unused: no dynamic table) and unknown types are read and discarded.
    try {
      for await (const chunk of stream) void chunk;
    } catch {
      // a reset is fine for a discarded stream
    }
  }

  private async readControl(stream: QuicStream, rest: Uint8Array): Promise<void> {
    const reader = new Http3FrameReader();
    try {
      reader.push(rest);
      const drain = () => {
        for (let e; (e = reader.next()) !== undefined; ) if (e.kind === 'settings') this.resolveSettings(e.settings);
      };
      drain();
      for await (const chunk of stream) {
        reader.push(chunk);
        drain();
      }
    } catch {
      // a malformed control stream or a reset: H3 connection errors are left to the idle timeout here
    }
  }

  /** Offers a peer bidirectional stream's start to the extension; true when it took the stream. */
  offerBidi(stream: QuicStream, start: StreamStart): boolean {
    return this.extension?.bidiStream?.(stream, start) ?? false;
  }

  get extensionConnect(): Http3Extension['connect'] {
    return this.extension?.connect?.bind(this.extension);
  }
}

/** Reads a stream's first varint; undefined when the stream ended (or failed) before it. */
export function readStreamStart(stream: QuicStream): Promise<StreamStart | undefined> {
  return readLeadingVarint(stream, new Uint8Array(0), (type, rest) => ({ type, rest }));
}

/** Reads varints after a stream start (e.g. a WebTransport session ID); undefined if the stream ends first. */
export function readVarintAfter(
  stream: QuicStream,
  rest: Uint8Array,
): Promise<{ value: bigint; rest: Uint8Array } | undefined> {
  return readLeadingVarint(stream, rest, (value, rest) => ({ value, rest }));
}

/**
 * The varint that starts `rest` and, when `rest` does not hold all of it, the stream's next bytes;
 * `undefined` if the stream ends or fails first. The two readers above return its promise as is (no
 * `await` in between), so a stream start is taken as early as before they shared it.
 */
async function readLeadingVarint<T>(
  stream: QuicStream,
  rest: Uint8Array,
  result: (value: bigint, rest: Uint8Array) => T,
): Promise<T | undefined> {
  let buffered = rest;
  const complete = () => buffered.length > 0 && buffered.length >= varintLengthOf(buffered[0]!);
  if (!complete()) {
    try {
      for await (const chunk of stream) {
        buffered = concatBytes([buffered, chunk]);
        if (complete()) break;
      }
    } catch {
      return undefined; // e.g. reset before the varint's bytes
    }
    if (!complete()) return undefined;
  }
  const { value, length } = readBigVarint(buffered);
  return result(value, buffered.subarray(length));
}

/** A request as the origin's handler reads it: the subset of node's IncomingMessage it uses. */
export class Http3ServerRequest {
  readonly httpVersion = '3.0';
  readonly method: string;
  readonly url: string;
  /** Lowercase names; pseudo-fields included, as node:http2 does. Repeated fields joined with ", ". */
  readonly headers: Record<string, string> = {};
  readonly socket: { encrypted: true; remoteAddress: string; remotePort: number };

  constructor(
    readonly fields: FieldLine[],
    readonly body: Uint8Array,
    conn: QuicConnection,
  ) {
    for (const f of fields)
      this.headers[f.name] =
        f.name in this.headers ? `${this.headers[f.name]}${f.name === 'cookie' ? '; ' : ', '}${f.value}` : f.value;
    this.method = this.headers[':method']!;
    this.url = this.headers[':path']!;
    this.socket = { encrypted: true, remoteAddress: conn.remote.host, remotePort: conn.remote.port };
  }
}

type HeaderValue = string | number | readonly string[];

/**
 * A response written the way node's ServerResponse is (the subset pushcast's origin uses): headers on
 * the first write, each write one DATA frame, `end()` a FIN. `'finish'` once every byte was taken by
 * QUIC, `'close'` after that, or when the stream or connection failed first.
 */
export class Http3ServerResponse extends EventEmitter {
  statusCode = 200;
  headersSent = false;
  writableEnded = false;
  destroyed = false;
  private readonly headers = new Map<string, HeaderValue>();
  private closed = false;

  constructor(
    private readonly stream: QuicStream,
    conn: QuicConnection,
    private readonly head: boolean,
  ) {
    super();
    const onConnClose = () => this.closeOnce();
    conn.once('close', onConnClose);
    this.once('close', () => conn.off('close', onConnClose));
  }

  setHeader(name: string, value: HeaderValue): this {
    this.headers.set(name.toLowerCase(), value);
    return this;
  }

  getHeader(name: string): HeaderValue | undefined {
    return this.headers.get(name.toLowerCase());
  }

  removeHeader(name: string): void {
    this.headers.delete(name.toLowerCase());
  }

  writeHead(status: number, headers: Record<string, HeaderValue | undefined> = {}): this {
    if (this.headersSent) throw new Error('headers already sent');
    this.statusCode = status;
    for (const [name, value] of Object.entries(headers)) if (value !== undefined) this.setHeader(name, value);
    this.headersSent = true;
    this.send(encodeHttp3Frame({ kind: 'headers', fieldSection: encodeFieldSection(toFields(status, this.headers)) }));
    return this;
  }

  /** RFC 8297 over HTTP/3: an interim HEADERS with :status 103 before the response (RFC 9114 §4.1). */
  writeEarlyHints(hints: Record<string, HeaderValue>): void {
    if (this.headersSent) return;
    this.send(
      encodeHttp3Frame({
        kind: 'headers',
        fieldSection: encodeFieldSection(toFields(103, new Map(Object.entries(hints)))),
      }),
    );
  }

  write(chunk: Uint8Array | string): boolean {
    if (this.writableEnded || this.destroyed) return false;
    if (!this.headersSent) this.writeHead(this.statusCode);
    const bytes = typeof chunk === 'string' ? encoder.encode(chunk) : chunk;
    if (bytes.length === 0 || this.head) return true;
    this.send(encodeHttp3FrameHeader(Http3FrameType.DATA, bytes.length));
    this.send(bytes);
    return true;
  }

  end(chunk?: Uint8Array | string): this {
    if (this.writableEnded || this.destroyed) return this;
    if (chunk !== undefined) this.write(chunk);
    else if (!this.headersSent) this.writeHead(this.statusCode);
    this.writableEnded = true;
    this.stream.end().then(
      () => {
        this.emit('finish');
        this.closeOnce();
      },
      () => this.closeOnce(),
    );
    return this;
  }

  /** Abandons the response: RESET_STREAM with H3_REQUEST_CANCELLED (§8.1), so no truncated body looks complete. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    try {
      this.stream.reset(H3Error.REQUEST_CANCELLED);
    } catch {
      // the connection is gone already
    }
    this.closeOnce();
  }

  private send(bytes: Uint8Array): void {
    this.stream.write(bytes).catch(() => {
      this.destroyed = true;
      this.closeOnce();
    });
  }

  private closeOnce(): void {
    if (this.closed) return;
    this.closed = true;
    this.emit('close');
  }
}

function toFields(status: number, headers: ReadonlyMap<string, HeaderValue>): FieldLine[] {
  const fields: FieldLine[] = [{ name: ':status', value: String(status) }];
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (CONNECTION_FIELDS.has(lower)) continue;
    for (const v of Array.isArray(value) ? value : [String(value)]) fields.push({ name: lower, value: v });
  }
  return fields;
}

export interface Http3ServerOptions {
  /** Every request, in node's compatibility-API shape (so the same handler serves HTTP/1.1 and HTTP/2). */
  onRequest(request: Http3ServerRequest, response: Http3ServerResponse): void;
  /** Largest request body; beyond, 413. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Extended CONNECT and extra stream types (WebTransport). */
  extension?: Http3Extension;
}

/** Serves HTTP/3 on a QUIC connection that negotiated `h3`. */
export function serveHttp3(conn: QuicConnection, options: Http3ServerOptions): Http3Connection {
  const h3 = new Http3Connection(conn, options.extension);
  conn.on('stream', (stream) => {
    if (!stream.bidirectional) return void h3.acceptUni(stream);
    void serveRequestStream(h3, stream, options);
  });
  return h3;
}

async function answer(stream: QuicStream, status: number, text: string): Promise<void> {
  const body = encoder.encode(`${text}\n`);
  await stream.write(
    encodeHttp3Frame({
      kind: 'headers',
      fieldSection: encodeFieldSection([
        { name: ':status', value: String(status) },
        { name: 'content-type', value: 'text/plain' },
      ]),
    }),
  );
  await stream.write(encodeHttp3Frame({ kind: 'data', data: body }));
  await stream.end();
}

async function serveRequestStream(h3: Http3Connection, stream: QuicStream, options: Http3ServerOptions): Promise<void> {
  const start = await readStreamStart(stream);
  if (!start) return;
  if (h3.offerBidi(stream, start)) return;
  const reader = new Http3FrameReader({ maxFramePayload: MAX_FIELD_SECTION + 16 });
  // The start was the first frame's type: give its bytes back to the frame reader.
  reader.push(encodeVarint(start.type));
  reader.push(start.rest);
  let fields: FieldLine[];
  let body: Uint8Array;
  try {
    const headers = await readHeaders(stream, reader);
    fields = headers;
    const method = field(fields, ':method');
    const protocol = field(fields, ':protocol');
    // RFC 9220 §4: an extended CONNECT carries :protocol, :scheme, :path and :authority.
    if (method === 'CONNECT' && protocol !== undefined) {
      const connect = h3.extensionConnect;
      if (!connect || !field(fields, ':path') || !field(fields, ':scheme') || !field(fields, ':authority')) {
        return void (await answer(
          stream,
          connect ? 400 : 501,
          connect ? 'malformed extended CONNECT (RFC 9220 §4)' : `no ${protocol} here`,
        ).catch(() => undefined));
      }
      return connect({
        protocol,
        authority: field(fields, ':authority')!,
        path: field(fields, ':path')!,
        scheme: field(fields, ':scheme')!,
        fields,
        stream,
        reader,
        respond: (status, headers = {}) =>
          stream.write(
            encodeHttp3Frame({
              kind: 'headers',
              fieldSection: encodeFieldSection(toFields(status, new Map(Object.entries(headers)))),
            }),
          ),
      });
    }
    // §4.3.1: a request carries :method, :scheme and :path (and :authority or Host), and no other pseudo-field.
    if (
      !method ||
      !field(fields, ':path') ||
      !field(fields, ':scheme') ||
      method === 'CONNECT' ||
      fields.some((f) => f.name.startsWith(':') && ![':method', ':scheme', ':authority', ':path'].includes(f.name))
    ) {
      return void (await answer(stream, 400, 'malformed request (RFC 9114 §4.1.2)').catch(() => undefined));
    }
    body = await readBody(stream, reader, options.maxBodyBytes ?? 1024 * 1024);
  } catch (error) {
    const status = error instanceof RangeError ? 413 : 400;
    await answer(stream, status, error instanceof Error ? error.message : String(error)).catch(() => undefined);
    return;
  }
  const request = new Http3ServerRequest(fields, body, h3.quic);
  const response = new Http3ServerResponse(stream, h3.quic, request.method === 'HEAD');
  try {
    options.onRequest(request, response);
  } catch {
    if (!response.headersSent) response.writeHead(500).end();
    else response.destroy();
  }
}

/** Reads until the first HEADERS frame of a message (frames before it other than unknown ones are errors). */
async function readHeaders(stream: QuicStream, reader: Http3FrameReader): Promise<FieldLine[]> {
  const take = (): FieldLine[] | undefined => {
    for (let e; (e = reader.next()) !== undefined; ) {
      if (e.kind === 'headers') return decodeFieldSection(e.fieldSection);
      throw new WireError('frame-unexpected', 0, `${e.kind} before HEADERS (RFC 9114 §4.1)`);
    }
    return undefined;
  };
  let fields = take();
  if (fields) return fields;
  for await (const chunk of stream) {
    reader.push(chunk);
    if ((fields = take())) return fields;
  }
  reader.end();
  throw new WireError('truncated', 0, 'no HEADERS before the end of the stream');
}

/** Reads DATA until FIN (trailers are read and ignored), at most `maxBodyBytes`. */
async function readBody(stream: QuicStream, reader: Http3FrameReader, maxBodyBytes: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let size = 0;
  const drain = () => {
    for (let e; (e = reader.next()) !== undefined; ) {
      if (e.kind === 'data') {
        size += e.data.length;
        if (size > maxBodyBytes) throw new RangeError(`body larger than ${maxBodyBytes} bytes`);
        parts.push(e.data.slice());
      } else if (e.kind !== 'headers') {
        // (a HEADERS here is trailers, §4.1: not used)
        throw new WireError('frame-unexpected', 0, `${e.kind} on a request stream (RFC 9114 §7.2)`);
      }
    }
  };
  drain();
  for await (const chunk of stream) {
    reader.push(chunk);
    drain();
  }
  reader.end();
  return concatBytes(parts);
}

export interface Http3ClientResponse {
  status: number;
  headers: FieldLine[];
  body: Uint8Array;
  /** 1xx responses before the final one (e.g. 103 Early Hints). */
  informational: FieldLine[][];
}

/** The client side of HTTP/3 on a QUIC connection that negotiated `h3`. */
export class Http3Client {
  readonly h3: Http3Connection;

  constructor(
    private readonly conn: QuicConnection,
    private readonly authority: string,
    extension?: Http3Extension,
  ) {
    this.h3 = new Http3Connection(conn, extension);
    conn.on('stream', (stream) => {
      // Server push is not asked for (no MAX_PUSH_ID); server-initiated bidirectional streams only exist with an extension.
      if (!stream.bidirectional) return void this.h3.acceptUni(stream);
      void readStreamStart(stream).then((start) => {
        if (start && !this.h3.offerBidi(stream, start)) stream.stopSending(H3Error.GENERAL_PROTOCOL_ERROR);
      });
    });
  }

  async request(
    path: string,
    options: { method?: string; headers?: Record<string, string>; body?: Uint8Array; maxBodyBytes?: number } = {},
  ): Promise<Http3ClientResponse> {
    const stream = this.conn.openStream();
    const fields: FieldLine[] = [
      { name: ':method', value: options.method ?? 'GET' },
      { name: ':scheme', value: 'https' },
      { name: ':authority', value: this.authority },
      { name: ':path', value: path },
      ...Object.entries(options.headers ?? {}).map(([name, value]) => ({ name: name.toLowerCase(), value })),
    ];
    const reply = this.readResponse(stream, options.maxBodyBytes ?? 64 * 1024 * 1024);
    await stream.write(encodeHttp3Frame({ kind: 'headers', fieldSection: encodeFieldSection(fields) }));
    if (options.body && options.body.length > 0) {
      await stream.write(encodeHttp3FrameHeader(Http3FrameType.DATA, options.body.length));
      await stream.write(options.body);
    }
    await stream.end();
    return reply;
  }

  /**
   * Sends an extended CONNECT (RFC 9220) and resolves with the response's HEADERS once they arrive; the
   * stream stays open. `reader` holds what followed them.
   */
  async connect(
    path: string,
    protocol: string,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; fields: FieldLine[]; stream: QuicStream; reader: Http3FrameReader }> {
    const stream = this.conn.openStream();
    const fields: FieldLine[] = [
      { name: ':method', value: 'CONNECT' },
      { name: ':protocol', value: protocol },
      { name: ':scheme', value: 'https' },
      { name: ':authority', value: this.authority },
      { name: ':path', value: path },
      ...Object.entries(headers).map(([name, value]) => ({ name: name.toLowerCase(), value })),
    ];
    await stream.write(encodeHttp3Frame({ kind: 'headers', fieldSection: encodeFieldSection(fields) }));
    const reader = new Http3FrameReader({ maxFramePayload: MAX_FIELD_SECTION + 16 });
    for (;;) {
      const response = await readHeaders(stream, reader);
      const status = Number(field(response, ':status'));
      if (status >= 200) return { status, fields: response, stream, reader };
    }
  }

  private async readResponse(stream: QuicStream, maxBodyBytes: number): Promise<Http3ClientResponse> {
    const reader = new Http3FrameReader({ maxFramePayload: MAX_FIELD_SECTION + 16 });
    const informational: FieldLine[][] = [];
    for (;;) {
      const fields = await readHeaders(stream, reader);
      const status = Number(field(fields, ':status'));
      if (!Number.isInteger(status) || status < 100 || status > 599)
        throw new WireError('frame-encoding', 0, `response :status ${field(fields, ':status')} (RFC 9114 §4.3.2)`);
      if (status < 200) {
        informational.push(fields);
        continue;
      }
      const body = await readBody(stream, reader, maxBodyBytes);
      return { status, headers: fields.filter((f) => !f.name.startsWith(':')), body, informational };
    }
  }
}
