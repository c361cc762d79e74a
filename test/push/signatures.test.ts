/**
 * Push signatures: pushcast's RFC 9421 Ed25519 scheme (signer and verifier) and nghq's draft-cavage
 * rsa-sha256 scheme (verifier), with keys from a key set, a JWK or a PEM file.
 */
import assert from 'node:assert/strict';
import { createSign, generateKeyPairSync } from 'node:crypto';
import test from 'node:test';
import { PushSignatureVerifier, PushSigner, SignatureError, signatureBase } from '../../src/push/signatures.js';
import type { FieldLine } from '../../src/wire/index.js';
import { parseDictionary } from '../../src/wire/structured-fields.js';

const request: FieldLine[] = [
  { name: ':method', value: 'GET' },
  { name: ':scheme', value: 'https' },
  { name: ':authority', value: 'Pushcast.Example:8443' },
  { name: ':path', value: '/live/720p/881934.m4s' },
];
const response: FieldLine[] = [
  { name: ':status', value: '200' },
  { name: 'content-type', value: 'video/mp4' },
  { name: 'content-length', value: '181034' },
  { name: 'digest', value: 'sha256=n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=' },
];

function replace(fields: FieldLine[], name: string, value: string): FieldLine[] {
  return fields.map((f) => (f.name === name ? { name, value } : f));
}

test('the signature base of a pushed response is RFC 9421 §2.5 text as docs and comments show it', async () => {
  const signer = await PushSigner.generate({ now: () => 1_763_776_800_000 });
  const lines = await signer.signResponse(request, response);
  const input = lines.find((l) => l.name === 'signature-input')!.value;
  assert.equal(
    input,
    `push=("@status" "content-type" "content-length" "digest" "@authority";req "@path";req);created=1763776800;keyid="${signer.keyId}";alg="ed25519"`,
  );
  assert.match(lines.find((l) => l.name === 'signature')!.value, /^push=:[A-Za-z0-9+/]{86}==:$/);
  const params = parseDictionary(input).get('push')!;
  assert.equal(
    signatureBase(params as never, response, request),
    [
      '"@status": 200',
      '"content-type": video/mp4',
      '"content-length": 181034',
      '"digest": sha256=n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=',
      '"@authority";req: pushcast.example:8443',
      '"@path";req: /live/720p/881934.m4s',
      `"@signature-params": ("@status" "content-type" "content-length" "digest" "@authority";req "@path";req);created=1763776800;keyid="${signer.keyId}";alg="ed25519"`,
    ].join('\n'),
  );
});

test('Ed25519: signed request, response and goaway verify; any change to a covered component fails', async () => {
  const signer = await PushSigner.generate();
  const verifier = await PushSignatureVerifier.fromJwks(JSON.parse(JSON.stringify(signer.keySet)));
  const signedRequest = [...request, ...(await signer.signRequest(request))];
  const signedResponse = [...response, ...(await signer.signResponse(request, response))];
  await verifier.verifyRequest(signedRequest);
  await verifier.verifyResponse(signedRequest, signedResponse);

  for (const [name, value] of [
    [':path', '/live/720p/881935.m4s'],
    [':authority', 'evil.example'],
    [':method', 'POST'],
    [':scheme', 'http'],
  ]) {
    await assert.rejects(verifier.verifyRequest(replace(signedRequest, name!, value!)), SignatureError, name);
  }
  for (const [name, value] of [
    [':path', '/live/720p/881935.m4s'],
    [':authority', 'evil.example'],
  ]) {
    await assert.rejects(
      verifier.verifyResponse(replace(signedRequest, name!, value!), signedResponse),
      SignatureError,
      `${name};req: a response moved to another URL`,
    );
  }
  for (const [name, value] of [
    [':status', '206'],
    ['content-type', 'text/html'],
    ['content-length', '1'],
    ['digest', 'sha256=AAAA'],
  ]) {
    await assert.rejects(
      verifier.verifyResponse(signedRequest, replace(signedResponse, name!, value!)),
      SignatureError,
      name,
    );
  }
  await assert.rejects(verifier.verifyResponse(signedRequest, response), /not signed/);

  const goaway: FieldLine[] = [
    { name: ':method', value: 'GET' },
    { name: ':scheme', value: 'https' },
    { name: ':path', value: 'goaway' },
    { name: 'connection', value: 'close' },
  ];
  const signedGoaway = [...goaway, ...(await signer.signRequest(goaway))];
  await verifier.verifyRequest(signedGoaway);
  await assert.rejects(verifier.verifyRequest(goaway), SignatureError, 'an unsigned goaway');
});

test('a signature by another key, a signature covering too little, or garbage fields are refused', async () => {
  const signer = await PushSigner.generate();
  const other = await PushSigner.generate();
  const verifier = await PushSignatureVerifier.fromJwks(signer.keySet);
  await assert.rejects(verifier.verifyRequest([...request, ...(await other.signRequest(request))]), /unknown key/);

  const signed = await signer.signRequest(request);
  const narrowed = signed.map((l) =>
    l.name === 'signature-input' ? { name: l.name, value: l.value.replace('"@path"', '') } : l,
  );
  await assert.rejects(verifier.verifyRequest([...request, ...narrowed]), /does not cover "@path"/);
  for (const [input, signature] of [
    ['push=("@method"', 'push=:AA==:'],
    ['push=("@method" "@scheme" "@authority" "@path");keyid="x"', 'push=1'],
    ['other=("@method")', 'other=:AA==:'],
  ] as const) {
    await assert.rejects(
      verifier.verifyRequest([
        ...request,
        { name: 'signature-input', value: input },
        { name: 'signature', value: signature },
      ]),
      SignatureError,
      input,
    );
  }
});

test('a signer saved as PKCS #8 PEM and loaded again signs with the same key ID', async () => {
  const signer = await PushSigner.generate();
  const pem = await signer.exportPkcs8Pem();
  assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n/);
  const loaded = await PushSigner.fromPkcs8Pem(pem);
  assert.equal(loaded.keyId, signer.keyId);
  const verifier = await PushSignatureVerifier.fromText(JSON.stringify(signer.keySet));
  await verifier.verifyRequest([...request, ...(await loaded.signRequest(request))]);
  await assert.rejects(
    PushSigner.fromPkcs8Pem('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'),
    SignatureError,
  );
});

test("nghq's rsa-sha256 signatures (its own signing string, and draft-cavage-12's): verify with a PEM key, fail when a signed field changes", async () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const verifier = await PushSignatureVerifier.fromText(pem);
  const sign = (text: string) => createSign('sha256').update(text).sign(privateKey, 'base64');
  // nghq: `name:value` lines, each ending in LF, (request-target) from the promised request, method as sent.
  const nghqString =
    '(request-target):GET /live/720p/881934.m4s\ncontent-type:video/mp4\ndigest:sha256=n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=\n';
  const responseSignature = `keyId="sender.pem",algorithm=rsa-sha256,headers="(request-target) content-type digest",signature="${sign(nghqString)}"`;
  const signedResponse = [...response, { name: 'signature', value: responseSignature }];
  await verifier.verifyResponse(request, signedResponse);
  await assert.rejects(
    verifier.verifyResponse(request, replace(signedResponse, 'digest', 'sha256=AAAA')),
    /bad rsa-sha256 signature/,
  );
  await assert.rejects(
    verifier.verifyResponse(replace(request, ':path', '/other.m4s'), signedResponse),
    /bad rsa-sha256 signature/,
    'moved to another URL',
  );

  // draft-cavage-12 §2.3: `name: value`, lowercase method, LF between lines.
  const cavageString = '(request-target): get /live/720p/881934.m4s\n:authority: Pushcast.Example:8443';
  await verifier.verifyRequest([
    ...request,
    {
      name: 'signature',
      value: `keyId="k",algorithm="rsa-sha256",headers="(request-target) :authority",signature="${sign(cavageString)}"`,
    },
  ]);
  const uncovered = `keyId="k",algorithm=rsa-sha256,headers="content-type",signature="${sign('content-type:video/mp4\n')}"`;
  await assert.rejects(
    verifier.verifyResponse(request, [...response, { name: 'signature', value: uncovered }]),
    /covers none of digest/,
  );
  for (const bad of ['keyId=nghq', 'keyId="a" algorithm', 'signature="AA=="']) {
    await assert.rejects(
      verifier.verifyResponse(request, [...response, { name: 'signature', value: bad }]),
      SignatureError,
      bad,
    );
  }
  const named = await PushSignatureVerifier.fromText(pem, 'sender.pem');
  await assert.rejects(
    named.verifyResponse(request, [
      ...response,
      { name: 'signature', value: responseSignature.replace('sender.pem', 'other.pem') },
    ]),
    /unknown key other.pem/,
  );
});
