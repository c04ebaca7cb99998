import * as os from 'node:os';
import { cidrOfInterface, formatCidr, parseIpv4Interface } from '../services/common/cidr';
import type { HostInterface } from '../services/gen/swarmlet/v1/types';

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
