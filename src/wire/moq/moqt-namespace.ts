/**
 * draft-ietf-moq-transport-16's namespace discovery, on a bidirectional stream of its own: the subscriber
 * sends SUBSCRIBE_NAMESPACE, the publisher answers REQUEST_OK (moqt-request.ts), then a NAMESPACE for
 * each namespace under the prefix now and as they come, a NAMESPACE_DONE as they go.
 *
 *   SUBSCRIBE_NAMESPACE (0x11) { Request ID (i), Namespace Prefix, Subscribe Options (i), Parameters }
 *   NAMESPACE (0x08)           { Namespace Suffix }
 *   NAMESPACE_DONE (0x0e)      { Namespace Suffix }
 *
 * Subscribe Options: 0 PUBLISH, 1 NAMESPACE, 2 both (pushcast announces namespaces only).
 * Pure, isomorphic; decoders throw only WireError.
 */
import { Cursor, concatBytes } from '../bytes.js';
import { encodeVarint } from '../varint.js';
import { expectEnd } from './message.js';
import {
  type MoqtParameters,
  readMoqtNamespace,
  readMoqtParameters,
  writeMoqtNamespace,
  writeMoqtParameters,
} from './moqt-parameters.js';

export interface MoqtSubscribeNamespace {
  requestId: number;
  prefix: string[];
  options: number;
  parameters?: MoqtParameters;
}

export function encodeMoqtSubscribeNamespace(m: MoqtSubscribeNamespace): Uint8Array {
  const parts = [encodeVarint(m.requestId)];
  writeMoqtNamespace(parts, m.prefix);
  parts.push(encodeVarint(m.options));
  writeMoqtParameters(parts, m.parameters ?? new Map());
  return concatBytes(parts);
}

export function decodeMoqtSubscribeNamespace(payload: Uint8Array): Required<MoqtSubscribeNamespace> {
  const c = new Cursor(payload);
  const requestId = c.varint('SUBSCRIBE_NAMESPACE request id');
  const prefix = readMoqtNamespace(c, 'SUBSCRIBE_NAMESPACE');
  const options = c.varint('SUBSCRIBE_NAMESPACE options');
  const parameters = readMoqtParameters(c, 'SUBSCRIBE_NAMESPACE');
  expectEnd(c, 'SUBSCRIBE_NAMESPACE');
  return { requestId, prefix, options, parameters };
}

/** NAMESPACE and NAMESPACE_DONE: the suffix under the subscribed prefix. */
export function encodeMoqtNamespaceSuffix(suffix: readonly string[]): Uint8Array {
  const parts: Uint8Array[] = [];
  writeMoqtNamespace(parts, suffix);
  return concatBytes(parts);
}

export function decodeMoqtNamespaceSuffix(payload: Uint8Array): string[] {
  const c = new Cursor(payload);
  const suffix = readMoqtNamespace(c, 'NAMESPACE');
  expectEnd(c, 'NAMESPACE');
  return suffix;
}
