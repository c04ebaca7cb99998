/**
 * IPv4 addresses and CIDR blocks as plain numbers: the one IP/CIDR module of both sides (manager
 * and agent), built on ipaddr.js. Pure.
 *
 * An address is an unsigned 32-bit integer (0 ..= 0xffffffff); a block is its first address and
 * its prefix length. Parsing is strict, as Go's net package is since 1.17: four decimal octets of
 * at most 255, no leading zeros (they read as octal elsewhere), no spaces, and a subnet must not
 * have host bits set. Malformed input throws an InvalidArgument error whose message says what to
 * write instead.
 */
import ipaddr from 'ipaddr.js';
import { invalidArgument } from './errors';

export interface Ipv4Cidr {
  /** The block's first address (host bits clear). */
  readonly base: number;
  /** 0 ..= 32 */
  readonly prefix: number;
}

/** An address with the prefix length of its subnet, as an interface carries it: 10.0.1.5/24. */
export interface Ipv4Interface {
  readonly address: number;
  readonly prefix: number;
}

const PREFIX = /^(0|[1-9][0-9]?)$/;

/** The netmask of a prefix length, as an unsigned number. */
export function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parses a dotted-quad address; `what` names it in the error (e.g. "gateway"). */
export function parseIpv4(text: string, what = 'address'): number {
  const address = readIpv4(text);
  if (address === undefined) throw invalidArgument(`invalid ${what} ${JSON.stringify(text)}: use an IPv4 address such as 10.0.1.5`);
  return address;
}

/** A dotted-quad address as a number; undefined when `text` is not one (as strictly as parseIpv4). */
export function readIpv4(text: string): number | undefined {
  if (typeof text !== 'string' || !ipaddr.IPv4.isValidFourPartDecimal(text)) return undefined;
  return ipaddr.IPv4.parse(text)
    .toByteArray()
    .reduce((acc, octet) => acc * 256 + octet, 0);
}

/** Whether `text` is a dotted-quad IPv4 address. */
export function isIPv4(text: string): boolean {
  return readIpv4(text) !== undefined;
}

/** A subnet "A.B.C.D/N" (host bits cleared); undefined when `text` is not one. */
export function readCidr(text: string): Ipv4Cidr | undefined {
  try {
    return cidrOfInterface(parseIpv4Interface(text));
  } catch {
    return undefined;
  }
}

export function formatIpv4(address: number): string {
  return [address >>> 24, (address >>> 16) & 0xff, (address >>> 8) & 0xff, address & 0xff].join('.');
}

/** Splits "A.B.C.D/N" into an address and a prefix length, the address's host bits left as they are. */
export function parseIpv4Interface(text: string, what = 'address'): Ipv4Interface {
  const slash = typeof text === 'string' ? text.indexOf('/') : -1;
  if (slash < 0) throw invalidArgument(`invalid ${what} ${JSON.stringify(text)}: use CIDR notation such as 10.0.1.0/24`);
  const address = readIpv4(text.slice(0, slash));
  if (address === undefined) {
    throw invalidArgument(`invalid ${what} ${JSON.stringify(text)}: use CIDR notation with an IPv4 address, such as 10.0.1.0/24`);
  }
  const prefixText = text.slice(slash + 1);
  if (!PREFIX.test(prefixText) || Number(prefixText) > 32) {
    throw invalidArgument(`invalid ${what} ${JSON.stringify(text)}: the prefix length must be a whole number from 0 to 32`);
  }
  return { address, prefix: Number(prefixText) };
}

/** Parses a subnet in CIDR notation; one with host bits set is refused with the subnet it probably meant. */
export function parseCidr(text: string, what = 'subnet'): Ipv4Cidr {
  const { address, prefix } = parseIpv4Interface(text, what);
  const base = (address & prefixMask(prefix)) >>> 0;
  if (base !== address) {
    throw invalidArgument(`invalid ${what}: ${text} has host bits set; did you mean ${formatCidr({ base, prefix })}?`);
  }
  return { base, prefix };
}

export function formatCidr(cidr: Ipv4Cidr): string {
  return `${formatIpv4(cidr.base)}/${cidr.prefix}`;
}

/** The block an interface address lies in: 10.0.1.5/24 -> 10.0.1.0/24. */
export function cidrOfInterface(iface: Ipv4Interface): Ipv4Cidr {
  return { base: (iface.address & prefixMask(iface.prefix)) >>> 0, prefix: iface.prefix };
}

/** How many addresses the block holds (2^(32 - prefix)). */
export function cidrSize(cidr: Ipv4Cidr): number {
  return 2 ** (32 - cidr.prefix);
}

/** The block's last address; for a subnet of /30 or larger, its broadcast address. */
export function broadcastAddress(cidr: Ipv4Cidr): number {
  return cidr.base + cidrSize(cidr) - 1;
}

/** The block's n-th address (0 is the network address); throws when n lies outside the block. */
export function nthAddress(cidr: Ipv4Cidr, n: number): number {
  if (!Number.isInteger(n) || n < 0 || n >= cidrSize(cidr)) {
    throw invalidArgument(`${formatCidr(cidr)} has no address number ${n}: it holds ${cidrSize(cidr)}`);
  }
  return cidr.base + n;
}

export function containsAddress(cidr: Ipv4Cidr, address: number): boolean {
  return address >= cidr.base && address <= broadcastAddress(cidr);
}

/** Whether `inner` lies wholly inside `outer` (a block contains itself). */
export function containsCidr(outer: Ipv4Cidr, inner: Ipv4Cidr): boolean {
  return inner.prefix >= outer.prefix && containsAddress(outer, inner.base);
}

/** Whether two blocks share any address (CIDR blocks either nest or are disjoint). */
export function cidrsOverlap(a: Ipv4Cidr, b: Ipv4Cidr): boolean {
  return containsAddress(a, b.base) || containsAddress(b, a.base);
}

/**
 * The stable MAC address of an interface address, as docker derives it: 02:42 and the four octets
 * in hex (`first` other than 02 for the host end of a pair, which must differ).
 */
export function macOfIpv4(address: number, first = '02'): string {
  const octets = [address >>> 24, (address >>> 16) & 0xff, (address >>> 8) & 0xff, address & 0xff];
  return [first, '42', ...octets.map((o) => o.toString(16).padStart(2, '0'))].join(':');
}
