/**
 * HTTP/3 (RFC 9114) on pushcast's QUIC endpoint, with the wire codecs of src/wire (frames, QPACK
 * without a dynamic table): the same codecs the multicast profile uses, not a second copy.
 *
 * - **Control streams** (§6.2.1): each side opens one unidirectional stream of type 0x00 whose first
 *   frame is SETTINGS (§7.2.4): QPACK_MAX_TABLE_CAPACITY 0 and QPACK_BLOCKED_STREAMS 0 (RFC 9204 §5),
 *   so no encoder or decoder stream is needed (RFC 9204 §4.2 allows not opening them), and
 *   MAX_FIELD_SECTION_SIZE. Peer control streams are read for SETTINGS and GOAWAY; QPACK and unknown
 *   unidirectional streams are read and discarded (§6.2).
 * - **Requests** (§4.1): a client-initiated bidirectional stream carries HEADERS, then DATA, then FIN;
 *   the response HEADERS (`:status`), DATA, FIN. Unknown and reserved frame types are skipped (§9).
 *   A malformed request (§4.1.2) is answered 400 and its stream closed; bodies beyond `maxBodyBytes`
 *   get 413.
 */
import {
  Http3FrameReader,
  Http3FrameType,
  SETTINGS_MAX_FIELD_SECTION_SIZE,
  UniStreamType,
  WireError,
  decodeFieldSection,
  encodeFieldSection,
  encodeHttp3Frame,
  encodeHttp3FrameHeader,
  encodeUniStreamHeader,
  type FieldLine,
} from '../wire/index.js';
import type { QuicConnection, QuicStream } from '../quic/index.js';

export const H3_ALPN = 'h3';

/** RFC 9114 §8.1 error codes used here. */
export const H3Error = {
  NO_ERROR: 0x100,
  GENERAL_PROTOCOL_ERROR: 0x101,
  FRAME_UNEXPECTED: 0x105,
  REQUEST_INCOMPLETE: 0x10d,
  MESSAGE_ERROR: 0x10e,
} as const;

/** RFC 9204 §5. */
const SETTINGS_QPACK_MAX_TABLE_CAPACITY = 0x01n;
const SETTINGS_QPACK_BLOCKED_STREAMS = 0x07n;
const MAX_FIELD_SECTION = 64 * 1024;

export interface Http3Request {
  method: string;
  scheme: string;
  authority: string;
  path: string;
  headers: FieldLine[];
  body: Uint8Array;
}

export interface Http3Response {
  status: number;
  headers?: Record<string, string>;
  body?: Uint8Array;
}

export type Http3Handler = (request: Http3Request) => Promise<Http3Response> | Http3Response;

function field(fields: readonly FieldLine[], name: string): string | undefined {
  return fields.find((f) => f.name === name)?.value;
}

/** Opens this side's control stream with SETTINGS (§6.2.1, §7.2.4). */
function openControlStream(conn: QuicConnection): void {
  const stream = conn.openStream({ bidirectional: false, urgency: 0 });
  const settings = encodeHttp3Frame({
    kind: 'settings',
    settings: new Map([
      [SETTINGS_QPACK_MAX_TABLE_CAPACITY, 0n],
      [SETTINGS_QPACK_BLOCKED_STREAMS, 0n],
      [SETTINGS_MAX_FIELD_SECTION_SIZE, BigInt(MAX_FIELD_SECTION)],
    ]),
  });
  const header = encodeUniStreamHeader(UniStreamType.CONTROL);
  const out = new Uint8Array(header.length + settings.length);
  out.set(header);
  out.set(settings, header.length);
  void stream.write(out).catch(() => undefined); // the control stream stays open for the connection's life (§6.2.1)
}

/** Reads a peer's unidirectional stream: control (SETTINGS), or anything else, discarded (§6.2). */
async function readUniStream(stream: QuicStream): Promise<void> {
  const reader = new Http3FrameReader({ uniStream: true });
  try {
    for await (const chunk of stream) {
      reader.push(chunk);
      for (let e; (e = reader.next()) !== undefined; ) void e; // SETTINGS and GOAWAY: nothing here depends on them yet
    }
  } catch {
    // a malformed control stream or a reset: H3 connection errors are left to the idle timeout here
  }
}

/** Reads one message (HEADERS, DATA…, FIN) from a request or response stream. */
async function readMessage(stream: QuicStream, maxBodyBytes: number): Promise<{ fields: FieldLine[]; body: Uint8Array }> {
  const reader = new Http3FrameReader({ maxFramePayload: MAX_FIELD_SECTION + 16 });
  let fields: FieldLine[] | undefined;
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of stream) {
    reader.push(chunk);
    for (let e; (e = reader.next()) !== undefined; ) {
      if (e.kind === 'headers') {
        if (!fields) fields = decodeFieldSection(e.fieldSection);
        // a second HEADERS is trailers (§4.1): not used here
      } else if (e.kind === 'data') {
        if (!fields) throw new WireError('frame-unexpected', 0, 'DATA before HEADERS (RFC 9114 §4.1)');
        size += e.data.length;
        if (size > maxBodyBytes) throw new RangeError(`body larger than ${maxBodyBytes} bytes`);
        parts.push(e.data.slice());
      } else {
        throw new WireError('frame-unexpected', 0, `${e.kind} on a request stream (RFC 9114 §7.2)`);
      }
    }
  }
  reader.end();
  if (!fields) throw new WireError('truncated', 0, 'no HEADERS before the end of the stream');
  const body = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    body.set(p, at);
    at += p.length;
  }
  return { fields, body };
}

async function writeMessage(stream: QuicStream, fields: FieldLine[], body: Uint8Array | undefined): Promise<void> {
  await stream.write(encodeHttp3Frame({ kind: 'headers', fieldSection: encodeFieldSection(fields) }));
  if (body && body.length > 0) {
    await stream.write(encodeHttp3FrameHeader(Http3FrameType.DATA, body.length));
    await stream.write(body);
  }
  await stream.end();
}

/** Serves HTTP/3 requests on a QUIC connection that negotiated `h3`. */
export function serveHttp3(conn: QuicConnection, handler: Http3Handler, options: { maxBodyBytes?: number } = {}): void {
  // The peer's stream limits are known once the handshake is done (RFC 9000 §7.4).
  if (conn.isEstablished) openControlStream(conn);
  else conn.once('established', () => openControlStream(conn));
  conn.on('stream', (stream) => {
    if (!stream.bidirectional) return void readUniStream(stream);
    void (async () => {
      let request: Http3Request;
      try {
        const { fields, body } = await readMessage(stream, options.maxBodyBytes ?? 1024 * 1024);
        const method = field(fields, ':method');
        const path = field(fields, ':path');
        // §4.3.1: a request carries :method, :scheme and :path (and :authority or Host).
        if (!method || !path || !field(fields, ':scheme') || fields.some((f) => f.name.startsWith(':') && ![':method', ':scheme', ':authority', ':path'].includes(f.name))) {
          await writeMessage(stream, [{ name: ':status', value: '400' }], new TextEncoder().encode('malformed request (RFC 9114 §4.1.2)\n'));
          return;
        }
        request = { method, path, scheme: field(fields, ':scheme')!, authority: field(fields, ':authority') ?? '', headers: fields.filter((f) => !f.name.startsWith(':')), body };
      } catch (error) {
        const status = error instanceof RangeError ? 413 : 400;
        await writeMessage(stream, [{ name: ':status', value: String(status) }], new TextEncoder().encode(`${error instanceof Error ? error.message : String(error)}\n`)).catch(() => undefined);
        return;
      }
      try {
        const response = await handler(request);
        const fields: FieldLine[] = [{ name: ':status', value: String(response.status) }];
        for (const [name, value] of Object.entries(response.headers ?? {})) fields.push({ name: name.toLowerCase(), value });
        await writeMessage(stream, fields, request.method === 'HEAD' ? undefined : response.body);
      } catch {
        stream.reset(H3Error.GENERAL_PROTOCOL_ERROR);
      }
    })();
  });
}

export interface Http3ClientResponse {
  status: number;
  headers: FieldLine[];
  body: Uint8Array;
}

/** The client side of HTTP/3 on a QUIC connection that negotiated `h3`. */
export class Http3Client {
  constructor(
    private readonly conn: QuicConnection,
    private readonly authority: string,
  ) {
    openControlStream(conn);
    conn.on('stream', (stream) => void readUniStream(stream)); // server push is not asked for (no MAX_PUSH_ID)
  }

  async request(path: string, options: { method?: string; headers?: Record<string, string>; body?: Uint8Array; maxBodyBytes?: number } = {}): Promise<Http3ClientResponse> {
    const stream = this.conn.openStream();
    const fields: FieldLine[] = [
      { name: ':method', value: options.method ?? 'GET' },
      { name: ':scheme', value: 'https' },
      { name: ':authority', value: this.authority },
      { name: ':path', value: path },
      ...Object.entries(options.headers ?? {}).map(([name, value]) => ({ name: name.toLowerCase(), value })),
    ];
    const reply = readMessage(stream, options.maxBodyBytes ?? 64 * 1024 * 1024);
    await writeMessage(stream, fields, options.body);
    const { fields: response, body } = await reply;
    return { status: Number(field(response, ':status')), headers: response.filter((f) => !f.name.startsWith(':')), body };
  }
}
