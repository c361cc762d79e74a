import { isIP } from 'node:net';

/**
 * The host a URL printed to the user carries for a server listening on `address`: `localhost` for the
 * any-address (`0.0.0.0`, `::`), which names no host a browser can open; an IPv6 literal in brackets
 * (RFC 3986 §3.2.2); a host name or IPv4 address as given.
 */
export function urlHost(address: string): string {
  if (address === '' || address === '0.0.0.0' || address === '::' || address === '::0') return 'localhost';
  return isIP(address) === 6 ? `[${address}]` : address;
}
