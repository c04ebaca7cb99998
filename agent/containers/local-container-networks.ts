/**
 * ContainerNetworks on a node in no swarm: docker's local networks. `host` and `none` plug nothing
 * in (the runtime keeps the host's namespace, or gives lo alone); docker's default `bridge`
 * (172.17.0.0/16, gateway .1, NAT out, no name resolution) is a Linux bridge made by the
 * BridgeDriver under a prefix of its own (`swbl`), with addresses from a node-local IPAM: the
 * lowest free one, remembered per container (the daemon passes the endpoints its containers
 * hold back in at start, through restore()).
 */
import { Mutex } from 'async-mutex';
import { conflict, invalidArgument, notFound } from '../../services/common/errors';
import { cidrSize, formatIpv4, macOfIpv4, nthAddress, parseCidr, parseIpv4 } from '../../services/common/cidr';
import { Logger, componentLogger } from '../../services/common/logger';
import { hostSubnetOverlap, HostSubnet } from '../../services/common/subnet-overlap';
import { BridgeDriver, BridgeNetwork } from '../network/bridge-driver';
import { ContainerEndpoint, ContainerEndpointRequest, ContainerNetworks } from './container-networks';

/** Bridges and host-side veths of the node-local networks: apart from the agent's `swb` ones. */
export const LOCAL_BRIDGE_PREFIX = 'swbl';

export interface LocalNetwork {
  id: string;
  name: string;
  driver: 'bridge' | 'host' | 'none';
  subnet: string;
  gateway: string;
}

/** docker's local built-ins. The default bridge's id names its Linux bridge (swbl + 8 characters). */
export const LOCAL_BUILTIN_NETWORKS: readonly LocalNetwork[] = Object.freeze([
  { id: 'bridge', name: 'bridge', driver: 'bridge', subnet: '172.17.0.0/16', gateway: '172.17.0.1' },
  { id: 'host', name: 'host', driver: 'host', subnet: '', gateway: '' },
  { id: 'none', name: 'none', driver: 'none', subnet: '', gateway: '' },
]);

/** The network a reference names (name, id or unique id prefix), or docker's message. Pure. */
export function resolveLocalNetwork(networks: readonly LocalNetwork[], ref: string): LocalNetwork {
  const exact = networks.find((n) => n.name === ref || n.id === ref);
  if (exact) return exact;
  const byPrefix = networks.filter((n) => ref && n.id.startsWith(ref));
  if (byPrefix.length === 1) return byPrefix[0];
  throw notFound(`network ${ref} not found`);
}

/**
 * The address a container gets on a bridge network: the one asked for (refused when taken or
 * outside the subnet), else the lowest free one after the gateway. Pure.
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

export interface LocalContainerNetworksOptions {
  log: Logger;
  /** The subnets on the host's own interfaces: a bridge network may not overlap them. */
  hostSubnets: () => HostSubnet[];
  /** Path of the host's network namespace; default: this process's. */
  hostNetns?: string;
}

export class LocalContainerNetworks implements ContainerNetworks {
  private readonly log: Logger;
  readonly driver: BridgeDriver;
  private readonly mutex = new Mutex();
  /** networkId -> containerId -> address */
  private readonly addresses = new Map<string, Map<string, string>>();

  constructor(private readonly opts: LocalContainerNetworksOptions) {
    this.log = componentLogger(opts.log, 'local-container-networks');
    this.driver = new BridgeDriver({ log: opts.log, hostNetns: opts.hostNetns, namePrefix: LOCAL_BRIDGE_PREFIX });
  }

  networks(): readonly LocalNetwork[] {
    return LOCAL_BUILTIN_NETWORKS;
  }

  resolve(ref: string): LocalNetwork {
    return resolveLocalNetwork(this.networks(), ref);
  }

  private bridgeOf(net: LocalNetwork): BridgeNetwork {
    return { networkId: net.id, subnet: net.subnet, gateway: net.gateway, internal: false, mtu: 0 };
  }

  /**
   * After a daemon start: the endpoints its containers hold keep their addresses, and the host
   * gets the bridges they need (bridges of networks no container uses go).
   */
  async restore(held: { containerId: string; endpoint: ContainerEndpoint }[]): Promise<void> {
    await this.mutex.runExclusive(async () => {
      this.addresses.clear();
      for (const { containerId, endpoint } of held) this.remember(endpoint.networkId, containerId, endpoint.ipv4Cidr.split('/')[0]);
      const wanted = this.networks().filter((n) => n.driver === 'bridge' && (this.addresses.get(n.id)?.size ?? 0) > 0);
      await this.driver.reconcile(wanted.map((n) => this.bridgeOf(n)));
    });
  }

  private remember(networkId: string, containerId: string, ip: string): void {
    if (!ip) return;
    let m = this.addresses.get(networkId);
    if (!m) this.addresses.set(networkId, (m = new Map()));
    m.set(containerId, ip);
  }

  attach(req: ContainerEndpointRequest): Promise<ContainerEndpoint> {
    return this.mutex.runExclusive(async () => {
      const net = this.resolve(req.network);
      const base = { networkId: net.id, networkName: net.name, driver: net.driver, aliases: [] as string[] };
      if (net.driver !== 'bridge') return { ...base, ipv4Cidr: '' };
      if (req.aliases.length || req.ipv4) throw invalidArgument('network-scoped aliases and --ip are only supported for user-defined networks');
      const overlap = hostSubnetOverlap(parseCidr(net.subnet), this.opts.hostSubnets());
      if (overlap) throw conflict(`network ${net.name}: ${overlap}`);
      const used = new Set([...(this.addresses.get(net.id) ?? new Map<string, string>())].filter(([id]) => id !== req.containerId).map(([, ip]) => ip));
      const ip = this.addresses.get(net.id)?.get(req.containerId) ?? planLocalAddress(net, used, req.ipv4);
      const prefix = parseCidr(net.subnet).prefix;
      const mac = macOfIpv4(parseIpv4(ip), '02');
      const address = `${ip}/${prefix}`;
      this.remember(net.id, req.containerId, ip);
      try {
        await this.driver.attach(req.containerId, req.netns, [{ networkId: net.id, networkName: net.name, driver: 'bridge', address, mac, gateway: net.gateway, vni: 0, internal: false, options: {} }], [this.bridgeOf(net)]);
      } catch (err) {
        this.addresses.get(net.id)?.delete(req.containerId);
        await this.driver.detach(req.containerId).catch(() => undefined);
        throw err;
      }
      this.log.info({ containerId: req.containerId, network: net.name, address }, 'container plugged into network');
      return { ...base, ipv4Cidr: address, gateway: net.gateway, mac };
    });
  }

  detach(containerId: string, network: string): Promise<void> {
    return this.mutex.runExclusive(async () => {
      let net: LocalNetwork;
      try {
        net = this.resolve(network);
      } catch {
        return;
      }
      this.addresses.get(net.id)?.delete(containerId);
      if (net.driver === 'bridge') await this.driver.detach(containerId);
    });
  }

  close(): Promise<void> {
    return this.driver.close();
  }
}
