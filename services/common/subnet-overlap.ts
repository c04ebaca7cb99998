/**
 * Subnets that overlap what a host already holds: the gateway bridge's, and the subnets on the
 * hosts' own interfaces. The manager refuses such a network; an agent refuses to plug a task into
 * one. Pure.
 */
import { HostInterface, NetworkAttachment } from '../gen/swarmlet/v1/types';
import { Ipv4Cidr, cidrOfInterface, cidrsOverlap, formatCidr, parseCidr, parseIpv4Interface } from './cidr';

/**
 * The subnet of the host-local gateway bridge (`swb-gw`, as docker_gwbridge) that gives overlay
 * tasks their way out on every node: no network may overlap it.
 */
export const GATEWAY_BRIDGE_SUBNET = '172.18.0.0/16';
export const GATEWAY_BRIDGE_NAME = 'swb-gw';

/** Docker's words for a subnet that overlaps one in use on the host or in the cluster. */
export const POOL_OVERLAP = 'Pool overlaps with other one on this address space';

/** A subnet on an interface of a node (the underlay and the like), as its agent reports it. */
export interface HostSubnet {
  /** The node's hostname (or id). */
  node: string;
  /** The interface that holds it. */
  iface: string;
  /** Its subnet in CIDR notation (host bits clear). */
  subnet: string;
}

/**
 * Why `subnet` cannot be used next to these host interfaces (the first one it overlaps), or
 * undefined. Interfaces whose subnet does not parse are skipped. Pure.
 */
export function hostSubnetOverlap(subnet: Ipv4Cidr, hosts: readonly HostSubnet[]): string | undefined {
  for (const h of hosts) {
    let theirs: Ipv4Cidr;
    try {
      theirs = parseCidr(h.subnet);
    } catch {
      continue;
    }
    if (cidrsOverlap(subnet, theirs)) return `${POOL_OVERLAP}: subnet ${formatCidr(subnet)} overlaps ${formatCidr(theirs)} on interface ${h.iface} of ${h.node}`;
  }
  return undefined;
}

/**
 * Why a task cannot be plugged into its networks on a host with these interfaces: the first
 * overlay or bridge network whose subnet overlaps a subnet on one of the host's own interfaces
 * (swarmlet's own bridges are not among them). Its packets for that LAN would go the wrong way.
 */
export function planAttachmentOverlap(attachments: NetworkAttachment[], interfaces: readonly HostInterface[], hostname: string): string | undefined {
  for (const a of attachments) {
    if (a.driver !== 'overlay' && a.driver !== 'bridge') continue;
    let subnet: Ipv4Cidr;
    try {
      subnet = cidrOfInterface(parseIpv4Interface(a.address));
    } catch {
      continue;
    }
    const overlap = hostSubnetOverlap(subnet, interfaces.map((i) => ({ node: hostname, iface: i.name, subnet: i.subnet })));
    if (overlap) return `network ${a.networkName || a.networkId}: ${overlap}`;
  }
  return undefined;
}
