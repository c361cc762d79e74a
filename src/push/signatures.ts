/**
 * Signatures on multicast pushes. The multicast profile has no packet protection, so anyone
 * on the path can inject packets: a receiver hands a push to nobody until the promised request and the
 * response are signed by a key it got from the origin over HTTPS, and the body matches the signed
 * `digest`. Two schemes, both on WebCrypto (Node ≥ 20, browsers, Service Workers alike):
 *
 * 1. **pushcast's own: HTTP Message Signatures (RFC 9421) with Ed25519** (§3.3.6), what
 *    {@link PushSigner} writes. Each promised request and each pushed response carries
 *    `signature-input: push=(…);created=…;keyid="…";alg="ed25519"` and `signature: push=:<base64>:`.
 *    Covered components, in this order:
 *    - promised request: `"@method" "@scheme" "@authority" "@path"`;
 *    - pushed response: `"@status" "content-type" "content-length" "digest" "@authority";req "@path";req`
 *      (RFC 9421 §2.4: `;req` names the promised request's component, binding the response to its URL);
 *    - the goaway promise (no `:authority`): `"@method" "@scheme" "@path" "connection"`.
 *    The signature base is RFC 9421 §2.5's, e.g. for a response:
 *    ```
 *    "@status": 200
 *    "content-type": video/mp4
 *    "content-length": 181034
 *    "digest": sha256=n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=
 *    "@authority";req: pushcast.example:8443
 *    "@path";req: /live/720p/881934.m4s
 *    "@signature-params": ("@status" "content-type" "content-length" "digest" "@authority";req "@path";req);created=1763776800;keyid="Xn…";alg="ed25519"
 *    ```
 *    (lines end with LF; no LF after the last). `keyid` is the key's JWK thumbprint (RFC 7638).
 * 2. **nghq's: HTTP-Signatures in the manner of draft-cavage-http-signatures, rsa-sha256**, verified only,
 *    exactly as nghq's `multicast-sender` writes them (examples/signature_fns.c, checked against a
 *    capture of its sessions): `signature: keyId="sender.pem",algorithm=rsa-sha256,headers="(request-target)
 *    :scheme :authority",signature="<base64>"` on the promise and `headers="(request-target) date
 *    content-type digest"` on the response. Its signing string differs from draft-cavage-12 §2.3: each
 *    covered name gives a line `name:value` (no space), every line ends with LF (the last too),
 *    `(request-target)` is `<:method> <:path>` of the promised request with the method as sent, e.g.
 *    ```
 *    (request-target):GET /media/data.bin
 *    :scheme:https
 *    :authority:example.org
 *    ```
 *    RSASSA-PKCS1-v1_5 with SHA-256. The draft-cavage-12 string (`name: value`, lowercase method, LF
 *    between lines only) is accepted too. A response's covered names must include `digest`, a request's
 *    `(request-target)` or `:path`.
 *
 * Keys travel as a JSON Web Key Set (RFC 7517): Ed25519 as OKP (RFC 8037), RSA as RSA; each with `kid`.
 * `created` is written and ignored on verification (a live segment has no freshness window to check).
 */
import {
  parseDictionary,
  isInnerList,
  serializeInnerList,
  type SfInnerList,
  type SfItem,
} from '../wire/structured-fields.js';
import { fromBase64, toBase64, type FieldLine } from '../wire/index.js';

export type SignatureAlgorithm = 'ed25519' | 'rsa-sha256';

/** A signature that is missing, malformed, by an unknown key, or wrong. */
export class SignatureError extends Error {
  override name = 'SignatureError';
}

/** A public key as RFC 7517 writes it; only the members used here. */
export interface PublicJwk {
  kty: 'OKP' | 'RSA';
  kid?: string;
  crv?: string;
  x?: string;
  n?: string;
  e?: string;
  alg?: string;
  use?: string;
}

export interface JsonWebKeySet {
  keys: PublicJwk[];
}

/** WebCrypto's key types, named from the global `crypto` that browsers, workers and Node share. */
type CryptoKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;
type CryptoKeyPair = { privateKey: CryptoKey; publicKey: CryptoKey };
/** An exported JWK (RFC 7517): the members read here. */
interface JsonWebKey {
  x?: string;
  d?: string;
  key_ops?: string[];
  [member: string]: unknown;
}

const ED25519 = { name: 'Ed25519' } as const;
const RSA_PKCS1 = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as const;
const encoder = new TextEncoder();

function base64url(bytes: Uint8Array): string {
  return toBase64(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** RFC 7638 JWK thumbprint (SHA-256), base64url: a key ID both ends compute from the key alone. */
export async function jwkThumbprint(jwk: PublicJwk): Promise<string> {
  const canonical = jwk.kty === 'OKP' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x } : { e: jwk.e, kty: jwk.kty, n: jwk.n };
  return base64url(new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(JSON.stringify(canonical)))));
}

/** The body of PEM armor (`-----BEGIN …-----`), decoded. */
export function pemBody(pem: string, label: string): Uint8Array<ArrayBuffer> {
  const match = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`).exec(pem);
  if (!match) throw new SignatureError(`no ${label} PEM block`);
  return fromBase64(match[1]!.replace(/\s+/g, ''));
}

export function toPem(der: Uint8Array, label: string): string {
  const b64 = toBase64(der).replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

// ---------------------------------------------------------------------------------------------------
// Signature base (RFC 9421 §2.5)

function fieldValue(fields: readonly FieldLine[], name: string): string | undefined {
  const values = fields.filter((f) => f.name === name).map((f) => f.value.trim());
  return values.length === 0 ? undefined : values.join(', '); // §2.1: combined as a list
}

function pathOnly(path: string): string {
  const q = path.indexOf('?');
  return q < 0 ? path : path.slice(0, q);
}

/** RFC 9421 §2.2 derived components and §2.1 fields, from a field section with pseudo-fields. */
function componentValue(item: SfItem, fields: readonly FieldLine[], request: readonly FieldLine[] | undefined): string {
  if (typeof item.value !== 'string') throw new SignatureError('a covered component is a string');
  const name = item.value;
  const source = item.params.has('req') ? request : fields;
  if (!source) throw new SignatureError(`"${name}";req outside a response`);
  for (const key of item.params.keys())
    if (key !== 'req') throw new SignatureError(`component parameter ;${key} is not supported`);
  let value: string | undefined;
  switch (name) {
    case '@method':
      value = fieldValue(source, ':method');
      break;
    case '@scheme':
      value = fieldValue(source, ':scheme')?.toLowerCase();
      break;
    case '@authority':
      value = fieldValue(source, ':authority')?.toLowerCase();
      break;
    case '@path': {
      const path = fieldValue(source, ':path');
      value = path === undefined ? undefined : pathOnly(path);
      break;
    }
    case '@status':
      value = fieldValue(source, ':status');
      break;
    default:
      if (name.startsWith('@') || name !== name.toLowerCase() || name.length === 0)
        throw new SignatureError(`component "${name}" is not supported`);
      value = fieldValue(source, name);
  }
  if (value === undefined) throw new SignatureError(`covered component "${name}" is not in the message`);
  return value;
}

export function signatureBase(
  params: SfInnerList,
  fields: readonly FieldLine[],
  request?: readonly FieldLine[],
): string {
  const lines: string[] = [];
  const seen = new Set<string>();
  for (const item of params.items) {
    const id = serializeInnerList({ items: [item], params: new Map() }).slice(1, -1);
    if (seen.has(id)) throw new SignatureError(`component ${id} covered twice (RFC 9421 §2.5)`);
    seen.add(id);
    lines.push(`${id}: ${componentValue(item, fields, request)}`);
  }
  lines.push(`"@signature-params": ${serializeInnerList(params)}`);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------------
// Signing (pushcast's sender)

export const REQUEST_COMPONENTS = ['@method', '@scheme', '@authority', '@path'] as const;
export const RESPONSE_COMPONENTS = ['@status', 'content-type', 'content-length', 'digest'] as const;
export const RESPONSE_REQUEST_COMPONENTS = ['@authority', '@path'] as const;
/** A progressive push's response (docs/multicast.md): its length and digest are not known when it starts. */
export const PROGRESSIVE_RESPONSE_COMPONENTS = ['@status', 'content-type'] as const;
export const GOAWAY_COMPONENTS = ['@method', '@scheme', '@path', 'connection'] as const;
const LABEL = 'push';

function componentList(names: readonly string[], reqNames: readonly string[] = []): SfItem[] {
  return [
    ...names.map((value) => ({ value, params: new Map() })),
    ...reqNames.map((value) => ({ value, params: new Map([['req', true as const]]) })),
  ];
}

export class PushSigner {
  private constructor(
    private readonly privateKey: CryptoKey,
    /** The public half, as a JWK with `kid`, ready to publish in a key set. */
    readonly publicJwk: PublicJwk,
    private readonly now: () => number,
  ) {}

  get keyId(): string {
    return this.publicJwk.kid!;
  }

  /** A new Ed25519 key. */
  static async generate(options: { now?: () => number } = {}): Promise<PushSigner> {
    const pair = (await crypto.subtle.generateKey(ED25519, true, ['sign', 'verify'])) as CryptoKeyPair;
    return PushSigner.fromKeyPair(pair.privateKey, pair.publicKey, options);
  }

  /** An Ed25519 private key in PKCS #8 (`-----BEGIN PRIVATE KEY-----`), as `exportPkcs8Pem` writes it. */
  static async fromPkcs8Pem(pem: string, options: { now?: () => number } = {}): Promise<PushSigner> {
    const der = pemBody(pem, 'PRIVATE KEY');
    let privateKey: CryptoKey;
    try {
      privateKey = await crypto.subtle.importKey('pkcs8', der, ED25519, true, ['sign']);
    } catch (error) {
      throw new SignatureError(
        `not an Ed25519 PKCS #8 private key: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    // WebCrypto derives no public key from a private one; the private JWK carries x, the public half.
    const { d: _d, key_ops: _ops, ...rest } = (await crypto.subtle.exportKey('jwk', privateKey)) as JsonWebKey;
    const publicKey = await crypto.subtle.importKey('jwk', { ...rest, key_ops: ['verify'] }, ED25519, true, ['verify']);
    return PushSigner.fromKeyPair(privateKey, publicKey, options);
  }

  private static async fromKeyPair(
    privateKey: CryptoKey,
    publicKey: CryptoKey,
    options: { now?: () => number },
  ): Promise<PushSigner> {
    const jwk = (await crypto.subtle.exportKey('jwk', publicKey)) as JsonWebKey;
    const publicJwk: PublicJwk = { kty: 'OKP', crv: 'Ed25519', x: jwk.x!, alg: 'EdDSA', use: 'sig' };
    publicJwk.kid = await jwkThumbprint(publicJwk);
    return new PushSigner(privateKey, publicJwk, options.now ?? (() => Date.now()));
  }

  async exportPkcs8Pem(): Promise<string> {
    return toPem(new Uint8Array(await crypto.subtle.exportKey('pkcs8', this.privateKey)), 'PRIVATE KEY');
  }

  /** The key set a receiver fetches from the origin. */
  get keySet(): JsonWebKeySet {
    return { keys: [{ ...this.publicJwk }] };
  }

  /** The `signature-input` and `signature` lines for a promised request (fields with pseudo-fields). */
  signRequest(request: readonly FieldLine[]): Promise<FieldLine[]> {
    const goaway = fieldValue(request, ':path') === 'goaway';
    return this.sign(componentList(goaway ? GOAWAY_COMPONENTS : REQUEST_COMPONENTS), request);
  }

  /** The `signature-input` and `signature` lines for a pushed response to `request`. */
  signResponse(request: readonly FieldLine[], response: readonly FieldLine[]): Promise<FieldLine[]> {
    return this.sign(componentList(RESPONSE_COMPONENTS, RESPONSE_REQUEST_COMPONENTS), response, request);
  }

  /** The lines for a progressive push's response: no length or digest yet; its chunks are signed one by one. */
  signProgressiveResponse(request: readonly FieldLine[], response: readonly FieldLine[]): Promise<FieldLine[]> {
    return this.sign(componentList(PROGRESSIVE_RESPONSE_COMPONENTS, RESPONSE_REQUEST_COMPONENTS), response, request);
  }

  /** Ed25519 over a chunk's signing base (src/wire/chunk-digest.ts `chunkSignatureBase`): 64 bytes. */
  async signChunk(base: Uint8Array): Promise<Uint8Array> {
    return new Uint8Array(await crypto.subtle.sign(ED25519, this.privateKey, new Uint8Array(base)));
  }

  private async sign(
    items: SfItem[],
    fields: readonly FieldLine[],
    request?: readonly FieldLine[],
  ): Promise<FieldLine[]> {
    const params: SfInnerList = {
      items,
      params: new Map<string, string | number>([
        ['created', Math.floor(this.now() / 1000)],
        ['keyid', this.keyId],
        ['alg', 'ed25519'],
      ]),
    };
    const base = signatureBase(params, fields, request);
    const signature = new Uint8Array(await crypto.subtle.sign(ED25519, this.privateKey, encoder.encode(base)));
    return [
      { name: 'signature-input', value: `${LABEL}=${serializeInnerList(params)}` },
      { name: 'signature', value: `${LABEL}=:${toBase64(signature)}:` },
    ];
  }
}

// ---------------------------------------------------------------------------------------------------
// Verification

interface VerifyKey {
  algorithm: SignatureAlgorithm;
  key: CryptoKey;
}

/** The key ID under which a key given alone (a PEM file) matches any signature's key ID. */
const ANY_KEY_ID = '*';

/** The most keys a key ring holds (a key set from an origin is small). */
export const MAX_KEYS = 16;

/**
 * Verifies both schemes against a fixed set of public keys (from the origin's key set, or a file).
 * `verifyRequest` / `verifyResponse` resolve when the fields are authentic and throw SignatureError
 * otherwise; pass the instance as the reassembler's `verifier`.
 */
export class PushSignatureVerifier {
  private constructor(private readonly keys: Map<string, VerifyKey>) {}

  get keyIds(): string[] {
    return [...this.keys.keys()];
  }

  /** From a JSON Web Key Set; keys without `kid` get their RFC 7638 thumbprint. */
  static async fromJwks(set: unknown): Promise<PushSignatureVerifier> {
    const keys = (set as JsonWebKeySet | undefined)?.keys;
    if (!Array.isArray(keys)) throw new SignatureError('a key set is {"keys": [...]} (RFC 7517 §5)');
    if (keys.length > MAX_KEYS) throw new SignatureError(`a key set of ${keys.length} keys (at most ${MAX_KEYS})`);
    const ring = new Map<string, VerifyKey>();
    for (const jwk of keys) {
      const kid = typeof jwk.kid === 'string' ? jwk.kid : await jwkThumbprint(jwk);
      ring.set(kid, await importPublicJwk(jwk));
    }
    return new PushSignatureVerifier(ring);
  }

  /**
   * From a file's text: a key set (JSON), one JWK (JSON), or a PEM public key (`BEGIN PUBLIC KEY`,
   * SPKI: Ed25519 or RSA). `keyId` names a PEM key; without one, the PEM key (the one key the user
   * named) verifies signatures of any keyId: nghq's keyId is the certificate's file name, `sender.pem`.
   */
  static async fromText(text: string, keyId?: string): Promise<PushSignatureVerifier> {
    const trimmed = text.trim();
    if (trimmed.startsWith('{')) {
      let json: unknown;
      try {
        json = JSON.parse(trimmed);
      } catch (error) {
        throw new SignatureError(`key file is not JSON: ${error instanceof Error ? error.message : String(error)}`);
      }
      const set = Array.isArray((json as JsonWebKeySet).keys) ? json : { keys: [json] };
      return PushSignatureVerifier.fromJwks(set);
    }
    const der = pemBody(trimmed, 'PUBLIC KEY');
    for (const [algorithm, params] of [
      ['ed25519', ED25519],
      ['rsa-sha256', RSA_PKCS1],
    ] as const) {
      try {
        const key = await crypto.subtle.importKey('spki', der, params, true, ['verify']);
        return new PushSignatureVerifier(new Map([[keyId ?? ANY_KEY_ID, { algorithm, key }]]));
      } catch {
        // try the next algorithm
      }
    }
    throw new SignatureError('PUBLIC KEY is neither Ed25519 nor RSA');
  }

  /** The promised request (with pseudo-fields) is signed by a known key. */
  async verifyRequest(request: readonly FieldLine[]): Promise<void> {
    const goaway = fieldValue(request, ':path') === 'goaway';
    await this.verify(
      request,
      undefined,
      goaway ? GOAWAY_COMPONENTS : REQUEST_COMPONENTS,
      [],
      goaway ? [':path'] : [':path', '(request-target)'],
    );
  }

  /** The pushed response (with pseudo-fields) is signed by a known key and bound to `request`. */
  async verifyResponse(request: readonly FieldLine[], response: readonly FieldLine[]): Promise<void> {
    await this.verify(response, request, RESPONSE_COMPONENTS, RESPONSE_REQUEST_COMPONENTS, ['digest']);
  }

  /** A progressive push's response: signed by a known key, bound to `request`; its chunks carry the rest. */
  async verifyProgressiveResponse(request: readonly FieldLine[], response: readonly FieldLine[]): Promise<void> {
    await this.verify(response, request, PROGRESSIVE_RESPONSE_COMPONENTS, RESPONSE_REQUEST_COMPONENTS, []);
  }

  /** A chunk's Ed25519 signature by the key `keyId` (the one that signed its push's response). */
  async verifyChunk(keyId: string, base: Uint8Array, signature: Uint8Array): Promise<void> {
    const key = this.keys.get(keyId);
    if (key?.algorithm !== 'ed25519') throw new SignatureError(`no Ed25519 key ${keyId} for chunks`);
    if (!(await crypto.subtle.verify(ED25519, key.key, new Uint8Array(signature), new Uint8Array(base))))
      throw new SignatureError(`bad chunk signature by key ${keyId}`);
  }

  private async verify(
    fields: readonly FieldLine[],
    request: readonly FieldLine[] | undefined,
    required: readonly string[],
    requiredReq: readonly string[],
    cavageRequired: readonly string[],
  ): Promise<void> {
    const input = fieldValue(fields, 'signature-input');
    const signature = fieldValue(fields, 'signature');
    if (signature === undefined) throw new SignatureError('not signed: no signature field');
    if (input === undefined) return this.verifyCavage(signature, fields, request ?? fields, cavageRequired);
    let inputs, signatures;
    try {
      inputs = parseDictionary(input);
      signatures = parseDictionary(signature);
    } catch (error) {
      throw new SignatureError(`malformed signature fields: ${error instanceof Error ? error.message : String(error)}`);
    }
    const params = inputs.get(LABEL);
    const value = signatures.get(LABEL);
    if (!params || !isInnerList(params)) throw new SignatureError(`no signature-input labelled ${LABEL}`);
    if (!value || isInnerList(value) || !(value.value instanceof Uint8Array))
      throw new SignatureError(`no signature labelled ${LABEL}`);
    const covered = new Set(params.items.map((i) => `${String(i.value)}${i.params.has('req') ? ';req' : ''}`));
    for (const name of required) if (!covered.has(name)) throw new SignatureError(`signature does not cover "${name}"`);
    for (const name of requiredReq)
      if (!covered.has(`${name};req`)) throw new SignatureError(`signature does not cover "${name}";req`);
    const keyid = params.params.get('keyid');
    if (typeof keyid !== 'string') throw new SignatureError('signature-input has no keyid');
    const key = this.keys.get(keyid) ?? this.keys.get(ANY_KEY_ID);
    if (!key) throw new SignatureError(`unknown key ${keyid}`);
    const alg = params.params.get('alg');
    if (alg !== undefined && alg !== (key.algorithm === 'ed25519' ? 'ed25519' : 'rsa-v1_5-sha256'))
      throw new SignatureError(`alg ${String(alg)} does not match key ${keyid}`);
    const base = signatureBase(params, fields, request);
    const ok = await crypto.subtle.verify(
      key.algorithm === 'ed25519' ? ED25519 : RSA_PKCS1,
      key.key,
      new Uint8Array(value.value),
      encoder.encode(base),
    );
    if (!ok) throw new SignatureError(`bad signature by key ${keyid}`);
  }

  /** nghq's HTTP-Signatures (see the file comment), or draft-cavage-http-signatures-12 §2.3. */
  private async verifyCavage(
    header: string,
    fields: readonly FieldLine[],
    request: readonly FieldLine[],
    required: readonly string[],
  ): Promise<void> {
    const parsed = parseCavage(header);
    const algorithm = parsed.get('algorithm');
    if (algorithm !== undefined && algorithm.toLowerCase() !== 'rsa-sha256')
      throw new SignatureError(`signature algorithm ${algorithm} is not rsa-sha256`);
    const keyId = parsed.get('keyId');
    const sig = parsed.get('signature');
    if (keyId === undefined || sig === undefined) throw new SignatureError('signature has no keyId or no signature');
    const key = this.keys.get(keyId) ?? this.keys.get(ANY_KEY_ID);
    if (!key) throw new SignatureError(`unknown key ${keyId}`);
    if (key.algorithm !== 'rsa-sha256') throw new SignatureError(`key ${keyId} is not an RSA key`);
    const names = (parsed.get('headers') ?? 'date').toLowerCase().split(/\s+/).filter(Boolean);
    if (!required.some((r) => names.includes(r)))
      throw new SignatureError(`signature covers none of ${required.join(', ')}`);
    const values = names.map((name) => {
      if (name === '(request-target)') {
        const method = fieldValue(request, ':method');
        const path = fieldValue(request, ':path');
        if (method === undefined || path === undefined)
          throw new SignatureError('(request-target) without a promised request');
        return { name, value: `${method} ${path}` };
      }
      const value = fieldValue(fields, name);
      if (value === undefined) throw new SignatureError(`signed header ${name} is not in the message`);
      return { name, value };
    });
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      bytes = fromBase64(sig);
    } catch {
      throw new SignatureError('signature is not base64');
    }
    const nghq = values.map((v) => `${v.name}:${v.value}\n`).join('');
    if (await crypto.subtle.verify(RSA_PKCS1, key.key, bytes, encoder.encode(nghq))) return;
    const cavage = values
      .map(
        (v) =>
          `${v.name}: ${v.name === '(request-target)' ? v.value.replace(/^\S+/, (m) => m.toLowerCase()) : v.value}`,
      )
      .join('\n');
    if (await crypto.subtle.verify(RSA_PKCS1, key.key, bytes, encoder.encode(cavage))) return;
    throw new SignatureError(`bad rsa-sha256 signature by key ${keyId}`);
  }
}

/** `keyId="…",algorithm=rsa-sha256,headers="…",signature="…"` (draft-cavage-12 §2.1; nghq leaves algorithm unquoted). */
function parseCavage(header: string): Map<string, string> {
  if (header.length > 8192) throw new SignatureError('signature field too long');
  const out = new Map<string, string>();
  const re = /\s*([A-Za-z]+)=(?:"([^"]*)"|([A-Za-z0-9_.-]+))\s*(,|$)/y;
  let at = 0;
  while (at < header.length) {
    re.lastIndex = at;
    const m = re.exec(header);
    if (!m) throw new SignatureError('malformed signature field');
    out.set(m[1]!, m[2] ?? m[3]!);
    at = re.lastIndex;
  }
  return out;
}

async function importPublicJwk(jwk: PublicJwk): Promise<VerifyKey> {
  try {
    if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') {
      return {
        algorithm: 'ed25519',
        key: await crypto.subtle.importKey('jwk', { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, ED25519, false, ['verify']),
      };
    }
    if (jwk.kty === 'RSA') {
      return {
        algorithm: 'rsa-sha256',
        key: await crypto.subtle.importKey('jwk', { kty: 'RSA', n: jwk.n, e: jwk.e }, RSA_PKCS1, false, ['verify']),
      };
    }
  } catch (error) {
    throw new SignatureError(`key ${jwk.kid ?? ''} refused: ${error instanceof Error ? error.message : String(error)}`);
  }
  throw new SignatureError(`unsupported key type ${String(jwk.kty)}${jwk.crv ? `/${jwk.crv}` : ''} (Ed25519 or RSA)`);
}
