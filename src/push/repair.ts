/**
 * Unicast repair of a multicast push that failed (WHP 336 §5.2: "repairs losses with unicast range
 * requests and falls back to unicast"). Isomorphic: it takes a `fetch`, so the command-line receiver
 * and the Service Worker share it.
 *
 * - An {@link IncompletePushError} with exact missing ranges, a known body length, the response's
 *   fields and a digest: the response fields' signature is checked first (when a verifier is given),
 *   then each missing range is fetched with `Range` (RFC 9110 §14.2; 206 and a matching
 *   `Content-Range` required), spliced into what did arrive, and the whole body must match the signed
 *   `digest`. Only then is it a repaired response: multicast bytes are never trusted on their own.
 * - An {@link IncompletePushError} without the response's HEADERS but with the stream's end known: the
 *   origin's `Content-Length` and RFC 9530 `Repr-Digest` (HEAD) map the body onto the stream's last bytes,
 *   the missing ones are fetched by range, and the whole must match that digest (`streamRepair`).
 * - Anything else (ranges not exact, no headers, a verification failure, a range answer that does not
 *   fit, a digest mismatch after splicing): the whole resource is fetched by unicast, from the origin
 *   the caller trusts (HTTPS).
 */
import { toBase64, type FieldLine } from '../wire/index.js';
import type { PushVerifier } from './reassembler.js';
import { IncompletePushError } from './reassembly-errors.js';
import type { ByteRange } from './sparse-bytes.js';

export type FetchLike = (
  url: string,
  init?: { method?: string; headers?: Record<string, string> },
) => Promise<Response>;

export interface RepairOptions {
  fetch: FetchLike;
  verifier?: PushVerifier;
  /** At most this many range requests per push: beyond, the ranges closest together are merged; default 64. */
  maxRanges?: number;
  /** Range requests at once; default 4. */
  concurrency?: number;
}

export interface RepairResult {
  response: Response;
  body: Uint8Array;
  /** `repaired`: multicast bytes + unicast ranges; `unicast`: fetched whole. */
  route: 'repaired' | 'unicast';
  /** Body bytes fetched by unicast. */
  unicastBytes: number;
  /** Why a range repair was not possible, when route is `unicast`. */
  reason?: string;
}

/** Thrown when even the unicast fetch fails. */
export class RepairError extends Error {
  override name = 'RepairError';
}

function field(fields: readonly FieldLine[], name: string): string | undefined {
  return fields.find((f) => f.name === name)?.value;
}

function headersOf(fields: readonly FieldLine[]): Headers {
  const headers = new Headers();
  for (const f of fields)
    if (!f.name.startsWith(':') && f.name !== 'signature' && f.name !== 'signature-input')
      headers.append(f.name, f.value);
  return headers;
}

export async function repairPush(url: string, failure: unknown, o: RepairOptions): Promise<RepairResult> {
  let reason: string;
  try {
    const repaired = await rangeRepair(url, failure, o);
    if (typeof repaired !== 'string') return repaired;
    reason = repaired;
  } catch (error) {
    reason = `range repair failed: ${error instanceof Error ? error.message : String(error)}`;
  }
  let response: Response;
  try {
    response = await o.fetch(url);
  } catch (error) {
    throw new RepairError(`${url}: unicast fetch failed: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (response.status !== 200) throw new RepairError(`${url}: unicast fetch answered ${response.status}`);
  const body = new Uint8Array(await response.arrayBuffer());
  return {
    response: new Response(body, { status: 200, headers: response.headers }),
    body,
    route: 'unicast',
    unicastBytes: body.length,
    reason,
  };
}

/**
 * The reassembler's `repair` hook over unicast, for progressive pushes: body bytes [start, end) by
 * `Range: bytes=start-(end-1)` (RFC 9110 §14.2) at `url(request)`. The answer must be a 206 naming exactly
 * that range; its complete length may be `*` while the segment grows (§14.4). The bytes are checked by the
 * reassembler against the push's signed chunk digests, not here.
 */
export function rangeFetcher(
  fetch: FetchLike,
  url: (request: Request) => string = (request) => request.url,
): (request: Request, range: ByteRange) => Promise<Uint8Array> {
  return async (request, range) => {
    const last = range.end - 1;
    const response = await fetch(url(request), { headers: { range: `bytes=${range.start}-${last}` } });
    const part = new Uint8Array(await response.arrayBuffer());
    const contentRange = response.headers.get('content-range') ?? '';
    if (response.status !== 206 || !contentRange.startsWith(`bytes ${range.start}-${last}/`))
      throw new RepairError(
        `${url(request)}: range ${range.start}-${last} answered ${response.status} ${contentRange}`,
      );
    return part;
  };
}

/** At most `max` ranges covering `ranges`: the smallest gaps between neighbours are bridged first. */
export function coalesce(ranges: readonly ByteRange[], max: number): ByteRange[] {
  const out = ranges.map((r) => ({ ...r }));
  while (out.length > Math.max(1, max)) {
    let best = 0;
    for (let i = 1; i < out.length - 1; i++)
      if (out[i + 1]!.start - out[i]!.end < out[best + 1]!.start - out[best]!.end) best = i;
    out.splice(best, 2, { start: out[best]!.start, end: out[best + 1]!.end });
  }
  return out;
}

/** The repaired result, or why ranges cannot do it. */
async function rangeRepair(url: string, failure: unknown, o: RepairOptions): Promise<RepairResult | string> {
  if (!(failure instanceof IncompletePushError))
    return `not incomplete: ${failure instanceof Error ? failure.message : String(failure)}`;
  const { body, responseFields, requestFields } = failure.partial;
  if (!responseFields && failure.partial.stream && failure.missingStream)
    return streamRepair(url, failure.partial.stream, failure.missingStream, o);
  if (!failure.exact || failure.totalBytes === undefined || !body || !responseFields)
    return 'missing ranges not known exactly';
  if (field(responseFields, ':status') !== '200') return 'not a 200 response';
  const digest = field(responseFields, 'digest');
  const expected = digest && /(?:^|,)\s*sha-?256=([A-Za-z0-9+/=]+)/i.exec(digest)?.[1];
  if (!expected) return 'no sha256 digest to check a spliced body against';
  if (o.verifier) {
    try {
      await o.verifier.verifyResponse(requestFields ?? [], responseFields);
    } catch (error) {
      return `response signature: ${error instanceof Error ? error.message : String(error)}`;
    }
  }
  const out = new Uint8Array(body);
  const fetched = await fetchRanges(url, out, failure.missing, failure.totalBytes, o);
  if (typeof fetched === 'string') return fetched;
  const unicastBytes = fetched;
  const actual = toBase64(new Uint8Array(await crypto.subtle.digest('SHA-256', out)));
  if (actual !== expected) return 'spliced body does not match the digest';
  return {
    response: new Response(out, { status: 200, headers: headersOf(responseFields) }),
    body: out,
    route: 'repaired',
    unicastBytes,
  };
}

/** Fetches `missing` of `url` into `out` (`total` bytes long); the bytes fetched, or why a range did not fit. */
async function fetchRanges(
  url: string,
  out: Uint8Array,
  missing: readonly ByteRange[],
  total: number,
  o: RepairOptions,
  headers: Record<string, string> = {},
): Promise<number | string> {
  const ranges = coalesce(missing, o.maxRanges ?? 64);
  let unicastBytes = 0;
  let refused: string | undefined;
  const queue = [...ranges];
  const worker = async () => {
    for (let r; (r = queue.shift()) !== undefined && refused === undefined; ) {
      const last = r.end - 1;
      const response = await o.fetch(url, { headers: { ...headers, range: `bytes=${r.start}-${last}` } });
      const part = new Uint8Array(await response.arrayBuffer());
      const contentRange = response.headers.get('content-range');
      if (
        response.status !== 206 ||
        contentRange !== `bytes ${r.start}-${last}/${total}` ||
        part.length !== r.end - r.start
      ) {
        refused = `range ${r.start}-${last} answered ${response.status} ${contentRange ?? ''}`;
        return;
      }
      out.set(part, r.start);
      unicastBytes += part.length;
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency ?? 4, ranges.length) }, worker));
  return refused ?? unicastBytes;
}

/**
 * A push whose response HEADERS (or a frame header) was lost: body offsets are unknown, but the stream's
 * end is. The origin says the body's length and digest (HEAD: `Content-Length`, RFC 9530 §3
 * `Repr-Digest`); a whole push's body is one DATA frame that ends the stream (RFC 9114 §4.1), so the body
 * is the stream's last `Content-Length` bytes. What is missing of it is fetched by range (`If-Range` on the
 * ETag, RFC 9110 §13.1.5, so that another representation cannot be spliced in), and the whole must match
 * the origin's digest: the origin is trusted as for a unicast fetch.
 */
async function streamRepair(
  url: string,
  stream: Uint8Array,
  missingStream: readonly ByteRange[],
  o: RepairOptions,
): Promise<RepairResult | string> {
  const head = await o.fetch(url, { method: 'HEAD' });
  const length = Number(head.headers.get('content-length'));
  const digest = /(?:^|,)\s*sha-256=:([A-Za-z0-9+/=]+):/.exec(head.headers.get('repr-digest') ?? '')?.[1];
  const etag = head.headers.get('etag');
  if (head.status !== 200 || !Number.isSafeInteger(length) || !digest || !etag)
    return `HEAD answered ${head.status} without a length, a Repr-Digest and an ETag`;
  const start = stream.length - length;
  // At least the DATA frame's type and length precede the body; whether the mapping is right, the digest says.
  if (start < 2) return `a body of ${length} bytes does not fit a push stream of ${stream.length}`;
  const out = stream.slice(start);
  const missing = missingStream
    .map((r) => ({ start: Math.max(r.start, start) - start, end: Math.min(r.end, stream.length) - start }))
    .filter((r) => r.end > r.start);
  const fetched = await fetchRanges(url, out, missing, length, o, { 'if-range': etag });
  if (typeof fetched === 'string') return fetched;
  const actual = toBase64(new Uint8Array(await crypto.subtle.digest('SHA-256', out)));
  if (actual !== digest) return 'spliced body does not match the Repr-Digest';
  const headers = new Headers(head.headers);
  headers.delete('content-range');
  return { response: new Response(out, { status: 200, headers }), body: out, route: 'repaired', unicastBytes: fetched };
}
