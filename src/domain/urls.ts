import { isIP } from 'node:net';
import { fail } from './errors';

/**
 * The SSRF guard of external blob URLs, pure: given the addresses a host resolved to, is
 * any of them one the server must not be sent to (private, loopback, link-local, multicast,
 * unspecified, reserved)? The DNS lookup itself lives in the backend.
 */

/** An http(s) URL with a host, or URL_FORBIDDEN saying why not. */
export function parseExternalUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return fail('URL_FORBIDDEN', `${JSON.stringify(raw.slice(0, 100))} is not an absolute URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') fail('URL_FORBIDDEN', `external blob URLs must be http or https, got ${url.protocol.replace(':', '')}`);
  if (url.hostname === '') fail('URL_FORBIDDEN', 'the URL has no host');
  if (url.username || url.password) fail('URL_FORBIDDEN', 'the URL must not carry credentials');
  if (raw.length > 2048) fail('URL_FORBIDDEN', 'the URL is longer than 2048 characters');
  return url;
}

/** The hostname as the resolver wants it: IPv6 literals lose their brackets. */
export function hostOf(url: URL): string {
  return url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
}

/** Why an address is not public, or null when it is a public unicast address. */
export function disallowedReason(address: string): string | null {
  const family = isIP(address);
  if (family === 4) return ipv4Reason(ipv4Bytes(address));
  if (family === 6) return ipv6Reason(ipv6Words(address));
  return 'not an IP address';
}

const V4_RANGES: readonly [number[], number, string][] = [
  [[0, 0, 0, 0], 8, 'unspecified ("this network")'],
  [[10, 0, 0, 0], 8, 'private'],
  [[100, 64, 0, 0], 10, 'shared address space (carrier-grade NAT)'],
  [[127, 0, 0, 0], 8, 'loopback'],
  [[169, 254, 0, 0], 16, 'link-local'],
  [[172, 16, 0, 0], 12, 'private'],
  [[192, 0, 0, 0], 24, 'IETF protocol assignments'],
  [[192, 0, 2, 0], 24, 'documentation'],
  [[192, 168, 0, 0], 16, 'private'],
  [[198, 18, 0, 0], 15, 'benchmarking'],
  [[198, 51, 100, 0], 24, 'documentation'],
  [[203, 0, 113, 0], 24, 'documentation'],
  [[224, 0, 0, 0], 4, 'multicast'],
  [[240, 0, 0, 0], 4, 'reserved (and broadcast)'],
];

function ipv4Bytes(address: string): number[] {
  return address.split('.').map(Number);
}

function ipv4Reason(bytes: number[]): string | null {
  const value = toUint32(bytes);
  for (const [base, bits, reason] of V4_RANGES) {
    const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
    if ((value & mask) >>> 0 === (toUint32(base) & mask) >>> 0) return reason;
  }
  return null;
}

function toUint32(b: number[]): number {
  return ((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]) >>> 0;
}

/** Eight 16-bit words; handles "::" and a trailing dotted IPv4 part. */
function ipv6Words(address: string): number[] {
  let text = address.split('%')[0].toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const b = ipv4Bytes(dotted[1]);
    text = `${text.slice(0, -dotted[1].length)}${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const parse = (s: string | undefined) => (s ? s.split(':').map((w) => parseInt(w, 16)) : []);
  const left = parse(head);
  const right = parse(tail);
  const zeros = tail === undefined ? 0 : 8 - left.length - right.length;
  return [...left, ...new Array<number>(zeros).fill(0), ...right];
}

function ipv6Reason(w: number[]): string | null {
  const allZeroUntil = (n: number) => w.slice(0, n).every((x) => x === 0);
  const embeddedV4 = () => [w[6] >> 8, w[6] & 0xff, w[7] >> 8, w[7] & 0xff];
  if (allZeroUntil(8)) return 'unspecified';
  if (allZeroUntil(7) && w[7] === 1) return 'loopback';
  // IPv4-mapped (::ffff:a.b.c.d) and the deprecated IPv4-compatible (::a.b.c.d): judge the IPv4 address.
  if (allZeroUntil(5) && w[5] === 0xffff) return ipv4Reason(embeddedV4());
  if (allZeroUntil(6)) return ipv4Reason(embeddedV4());
  // NAT64 (64:ff9b::/96) reaches the embedded IPv4 address too.
  if (w[0] === 0x64 && w[1] === 0xff9b && w.slice(2, 6).every((x) => x === 0)) return ipv4Reason(embeddedV4());
  if ((w[0] & 0xfe00) === 0xfc00) return 'unique local (private)';
  if ((w[0] & 0xffc0) === 0xfe80) return 'link-local';
  if ((w[0] & 0xffc0) === 0xfec0) return 'site-local (deprecated, private)';
  if ((w[0] & 0xff00) === 0xff00) return 'multicast';
  if (w[0] === 0x2001 && w[1] === 0x0db8) return 'documentation';
  if (w[0] === 0x0100 && w.slice(1, 4).every((x) => x === 0)) return 'discard-only';
  return null;
}

/** URL_FORBIDDEN naming the first address that is not public. */
export function assertPublicAddresses(host: string, addresses: readonly string[]): void {
  if (addresses.length === 0) fail('URL_FORBIDDEN', `host ${host} does not resolve`);
  for (const address of addresses) {
    const reason = disallowedReason(address);
    if (reason) fail('URL_FORBIDDEN', `host ${host} resolves to ${address}, a ${reason} address; external blob URLs must point to public addresses`);
  }
}
