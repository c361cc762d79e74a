/**
 * draft-ietf-moq-transport-16's CLIENT_SETUP (0x20) and SERVER_SETUP (0x21), the first messages of the
 * control stream: the version is the WebTransport protocol (`moqt-16`), so they carry parameters only.
 *
 *   CLIENT_SETUP / SERVER_SETUP { Parameters }     (moqt-parameters.ts)
 *
 * Setup parameters pushcast reads or writes: MAX_REQUEST_ID (0x2, the request IDs the peer may use),
 * IMPLEMENTATION (0x7). Pure, isomorphic; decoders throw only WireError.
 */
import { Cursor, concatBytes } from '../bytes.js';
import { expectEnd } from './message.js';
import { type MoqtParameters, readMoqtParameters, writeMoqtParameters } from './moqt-parameters.js';

export function encodeMoqtSetup(parameters: MoqtParameters): Uint8Array {
  const parts: Uint8Array[] = [];
  writeMoqtParameters(parts, parameters);
  return concatBytes(parts);
}

/** Either SETUP's payload (the two are the same in draft-16). */
export function decodeMoqtSetup(payload: Uint8Array): MoqtParameters {
  const c = new Cursor(payload);
  const parameters = readMoqtParameters(c, 'SETUP');
  expectEnd(c, 'SETUP');
  return parameters;
}
