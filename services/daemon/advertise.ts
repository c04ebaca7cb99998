import * as os from 'node:os';
import { cidrOfInterface, formatCidr, parseIpv4Interface } from '../common/cidr';
import { invalidArgument } from '../common/errors';
import type { HostInterface } from '../gen/swarmlet/v1/types';

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

/**
 * The IPv4 subnets on this host's own interfaces (the underlay and the like), as the node reports
 * them to the managers: not loopback, and not the interfaces swarmlet makes itself (names starting
 * with `ownPrefix`: its bridge networks' bridges and the gateway bridge).
 */
export function hostInterfaceSubnets(ownPrefix: string, interfaces = os.networkInterfaces()): HostInterface[] {
  const out = new Map<string, HostInterface>();
  for (const [name, addrs] of Object.entries(interfaces).sort((a, b) => a[0].localeCompare(b[0]))) {
    if (name.startsWith(ownPrefix)) continue;
    for (const a of addrs ?? []) {
      if (a.family !== 'IPv4' || a.internal || !a.cidr) continue;
      try {
        const subnet = formatCidr(cidrOfInterface(parseIpv4Interface(a.cidr)));
        out.set(`${name} ${subnet}`, { name, subnet });
      } catch {
        // not an address this check can read
      }
    }
  }
  return [...out.values()];
}
