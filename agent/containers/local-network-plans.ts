/**
 * Node-local networks for containers on a node in no swarm, in pure functions: the built-ins,
 * finding a network, a user bridge's subnet (docker's 172.x.0.0/16 series, clear of the host's
 * interfaces and the other networks), a container's address, and the embedded DNS's records of
 * a user bridge (container names and --network-alias; the default bridge gets none).
 */
import { conflict, invalidArgument, notFound } from '../../services/common/errors';
import { cidrSize, cidrsOverlap, formatCidr, formatIpv4, nthAddress, parseCidr, parseIpv4 } from '../../services/common/cidr';
import { hostSubnetOverlap, HostSubnet, GATEWAY_BRIDGE_SUBNET } from '../../services/common/subnet-overlap';
import type { NetworkServices } from '../../services/gen/swarmlet/v1/dispatcher';

export interface LocalNetwork {
  id: string;
  name: string;
  driver: 'bridge' | 'host' | 'none';
  subnet: string;
  gateway: string;
  labels?: Record<string, string>;
  internal?: boolean;
  createdAt?: string;
}

/** docker's local built-ins. The default bridge's id names its Linux bridge (swbl + 8 characters). */
export const LOCAL_BUILTIN_NETWORKS: readonly LocalNetwork[] = Object.freeze([
  { id: 'bridge', name: 'bridge', driver: 'bridge', subnet: '172.17.0.0/16', gateway: '172.17.0.1' },
  { id: 'host', name: 'host', driver: 'host', subnet: '', gateway: '' },
  { id: 'none', name: 'none', driver: 'none', subnet: '', gateway: '' },
]);

export const isBuiltinLocal = (n: Pick<LocalNetwork, 'id'>) => LOCAL_BUILTIN_NETWORKS.some((b) => b.id === n.id);

/** The network a reference names (name, id or unique id prefix), or docker's message. */
export function resolveLocalNetwork(networks: readonly LocalNetwork[], ref: string): LocalNetwork {
  const exact = networks.find((n) => n.name === ref || n.id === ref);
  if (exact) return exact;
  const byPrefix = networks.filter((n) => ref && n.id.startsWith(ref));
  if (byPrefix.length === 1) return byPrefix[0];
  throw notFound(`network ${ref} not found`);
}

/**
 * A user bridge's subnet: the one asked for (refused when it overlaps a host interface or another
 * network), else the first free /16 of 172.19-31 then 192.168.x.0/20s, as docker's default pools.
 */
export function planLocalSubnet(networks: readonly LocalNetwork[], hosts: readonly HostSubnet[], wanted?: string): { subnet: string; gateway: string } {
  // The swarm's gateway bridge subnet is left free for a node that joins a swarm later, unless asked for (as the course notes do).
  const taken = [...networks.filter((n) => n.subnet).map((n) => ({ cidr: parseCidr(n.subnet), what: `network ${n.name}` })), ...(wanted ? [] : [{ cidr: parseCidr(GATEWAY_BRIDGE_SUBNET), what: 'the gateway bridge' }])];
  const clash = (subnet: string): string | undefined => {
    const c = parseCidr(subnet);
    const other = taken.find((t) => cidrsOverlap(t.cidr, c));
    return other ? `Pool overlaps with other one on this address space: ${formatCidr(c)} overlaps ${formatCidr(other.cidr)} of ${other.what}` : hostSubnetOverlap(c, hosts);
  };
  const gatewayOf = (subnet: string) => formatIpv4(nthAddress(parseCidr(subnet), 1));
  if (wanted) {
    const c = parseCidr(wanted, 'subnet');
    if (c.prefix > 30) throw invalidArgument(`invalid subnet ${wanted}: /30 or wider`);
    const why = clash(formatCidr(c));
    if (why) throw conflict(why);
    return { subnet: formatCidr(c), gateway: gatewayOf(formatCidr(c)) };
  }
  const candidates = [...Array.from({ length: 13 }, (_, i) => `172.${19 + i}.0.0/16`), ...Array.from({ length: 16 }, (_, i) => `192.168.${i * 16}.0/20`)];
  const free = candidates.find((s) => !clash(s));
  if (!free) throw conflict('could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network');
  return { subnet: free, gateway: gatewayOf(free) };
}

/**
 * The address a container gets on a bridge network: the one asked for (refused when taken or
 * outside the subnet), else the lowest free one after the gateway.
 */
export function planLocalAddress(net: LocalNetwork, used: ReadonlySet<string>, wanted?: string): string {
  const cidr = parseCidr(net.subnet);
  const size = cidrSize(cidr);
  const taken = new Set([...used, net.gateway]);
  if (wanted) {
    const n = parseIpv4(wanted, '--ip');
    if (n <= cidr.base || n >= cidr.base + size - 1) throw invalidArgument(`Invalid address ${wanted}: It does not belong to any of this network's subnets`);
    if (taken.has(wanted)) throw conflict(`Address already in use: ${wanted}`);
    return wanted;
  }
  for (let i = 1; i < size - 1; i++) {
    const ip = formatIpv4(nthAddress(cidr, i));
    if (!taken.has(ip)) return ip;
  }
  throw conflict(`no available IPv4 addresses on this network's address pools: ${net.name} (${net.id})`);
}

export interface LocalDnsEntry {
  containerId: string;
  networkId: string;
  name: string;
  hostname: string;
  aliases: string[];
  ip: string;
}

/** The embedded DNS's records: per user bridge, each container by name, hostname and aliases. The default bridge has none. */
export function planLocalDnsRecords(networks: readonly LocalNetwork[], entries: readonly LocalDnsEntry[]): NetworkServices[] {
  return networks
    .filter((n) => n.driver === 'bridge' && !isBuiltinLocal(n))
    .map((n) => ({
      networkId: n.id,
      name: n.name,
      containers: [],
      services: entries
        .filter((e) => e.networkId === n.id)
        .flatMap((e) =>
          [e.name, ...e.aliases].map((name) => ({
            serviceId: `${e.containerId}:${name}`,
            name,
            vip: '',
            tasks: [{ taskId: e.containerId, ip: e.ip, name: e.name, hostname: e.hostname, serving: true }],
            aliases: [],
          })),
        ),
    }));
}
