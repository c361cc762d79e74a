/**
 * The compatibility handshake (docs/moq.md): draft-ietf-moq-transport-14's CLIENT_SETUP and SERVER_SETUP,
 * which `@moq/net` sends when no WebTransport subprotocol was negotiated, offering moq-lite-02,
 * moq-lite-01 and draft-14. These are the payloads; the 16-bit length and the stream types (0x20, 0x21)
 * are framed around them (message.ts).
 *
 *   CLIENT_SETUP { Versions Count (i), Version (i)…, Parameters Count (i), Parameter… }
 *   SERVER_SETUP { Selected Version (i), Parameters Count (i), Parameter… }
 *   Parameter    { Type (i), even: Value (i) | odd: Length (i) + Value }
 *
 * Pure, isomorphic; decoders throw only WireError.
 */
import { Cursor, concatBytes } from '../bytes.js';
import { WireError } from '../errors.js';
import { encodeVarint } from '../varint.js';
import { expectEnd } from './message.js';

/** Versions a CLIENT_SETUP may list, and parameters a SETUP may carry (moq-net's bounds). */
export const MAX_MOQ_SETUP_VERSIONS = 128;
export const MAX_MOQ_SETUP_PARAMETERS = 64;
/** Longest bytes parameter taken. */
export const MAX_MOQ_SETUP_PARAMETER_BYTES = 4096;

/** A SETUP parameter: a varint when its type is even, bytes when odd. */
export type MoqSetupParameters = Map<bigint, bigint | Uint8Array>;

export interface MoqClientSetup {
  versions: number[];
  parameters: MoqSetupParameters;
}

export interface MoqServerSetup {
  version: number;
  parameters: MoqSetupParameters;
}

/** Setup parameter types pushcast reads or writes. */
export const MoqSetupParameter = { PATH: 0x1n, MAX_REQUEST_ID: 0x2n, IMPLEMENTATION: 0x7n } as const;

function encodeParameters(parameters: MoqSetupParameters): Uint8Array[] {
  const parts = [encodeVarint(parameters.size)];
  for (const [type, value] of parameters) {
    const even = (type & 1n) === 0n;
    if (even !== (typeof value === 'bigint'))
      throw new WireError('invalid-argument', 0, `parameter 0x${type.toString(16)}: even types are varints, odd bytes`);
    parts.push(encodeVarint(type));
    if (typeof value === 'bigint') parts.push(encodeVarint(value));
    else parts.push(encodeVarint(value.length), value);
  }
  return parts;
}

function decodeParameters(c: Cursor): MoqSetupParameters {
  const count = c.varint('parameters count');
  if (count > MAX_MOQ_SETUP_PARAMETERS)
    throw new WireError('frame-encoding', c.pos, `${count} parameters (at most ${MAX_MOQ_SETUP_PARAMETERS})`);
  const parameters: MoqSetupParameters = new Map();
  for (let i = 0; i < count; i++) {
    const at = c.pos;
    const type = c.bigVarint('parameter type');
    if (parameters.has(type)) throw new WireError('frame-encoding', at, `duplicate parameter 0x${type.toString(16)}`);
    if ((type & 1n) === 0n) parameters.set(type, c.bigVarint('parameter value'));
    else {
      const length = c.varint('parameter length');
      if (length > MAX_MOQ_SETUP_PARAMETER_BYTES)
        throw new WireError('frame-encoding', c.pos, `a parameter of ${length} bytes`);
      parameters.set(type, c.take(length, 'parameter value').slice());
    }
  }
  return parameters;
}

export function encodeMoqClientSetup(m: MoqClientSetup): Uint8Array {
  if (m.versions.length > MAX_MOQ_SETUP_VERSIONS)
    throw new WireError('invalid-argument', 0, `${m.versions.length} versions`);
  return concatBytes([
    encodeVarint(m.versions.length),
    ...m.versions.map((v) => encodeVarint(v)),
    ...encodeParameters(m.parameters),
  ]);
}

export function decodeMoqClientSetup(payload: Uint8Array): MoqClientSetup {
  const c = new Cursor(payload);
  const count = c.varint('CLIENT_SETUP versions count');
  if (count > MAX_MOQ_SETUP_VERSIONS)
    throw new WireError('frame-encoding', c.pos, `${count} versions (at most ${MAX_MOQ_SETUP_VERSIONS})`);
  const versions = Array.from({ length: count }, () => c.varint('CLIENT_SETUP version'));
  const parameters = decodeParameters(c);
  expectEnd(c, 'CLIENT_SETUP');
  return { versions, parameters };
}

export function encodeMoqServerSetup(m: MoqServerSetup): Uint8Array {
  return concatBytes([encodeVarint(m.version), ...encodeParameters(m.parameters)]);
}

export function decodeMoqServerSetup(payload: Uint8Array): MoqServerSetup {
  const c = new Cursor(payload);
  const version = c.varint('SERVER_SETUP version');
  const parameters = decodeParameters(c);
  expectEnd(c, 'SERVER_SETUP');
  return { version, parameters };
}
