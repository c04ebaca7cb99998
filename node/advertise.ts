import * as os from 'node:os';
import { invalidArgument } from '../services/common/errors';

/** The address to advertise when none was given: the host's only non-loopback IPv4 address. */
export function pickAdvertiseAddr(interfaces = os.networkInterfaces()): string {
  const candidates = Object.entries(interfaces).flatMap(([name, addrs]) =>
    (addrs ?? []).filter((a) => a.family === 'IPv4' && !a.internal).map((a) => ({ name, address: a.address })),
  );
  if (candidates.length === 1) return candidates[0].address;
  if (candidates.length === 0) throw invalidArgument('could not choose an address to advertise: this host has no non-loopback IPv4 address; use --advertise-addr');
  throw invalidArgument(
    `could not choose an address to advertise: this host has several (${candidates.map((c) => `${c.address} on ${c.name}`).join(', ')}); use --advertise-addr`,
  );
}

export function isLocalAddress(addr: string, interfaces = os.networkInterfaces()): boolean {
  return Object.values(interfaces).some((addrs) => (addrs ?? []).some((a) => a.address === addr));
}
