/**
 * ContainerNetworks on a node in no swarm: docker's local networks. `host` and `none` plug nothing
 * in (the runtime keeps the host's namespace, or gives lo alone); docker's default `bridge`
 * (172.17.0.0/16, gateway .1, NAT out, no name resolution) and the user bridges made by `network
 * create` here are Linux bridges made by the BridgeDriver under a prefix of its own (`swbl`; its
 * nft table keeps two bridges apart), with addresses from a node-local IPAM (the daemon passes the
 * endpoints its containers hold back in at start, through restore()). On user bridges the
 * embedded DNS answers container names and --network-alias. User bridges are kept in
 * `<dataDir>/local-networks.json`.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { Mutex } from 'async-mutex';
import { conflict, failedPrecondition, invalidArgument } from '../../services/common/errors';
import { macOfIpv4, parseCidr, parseIpv4 } from '../../services/common/cidr';
import { Logger, componentLogger } from '../../services/common/logger';
import { HostSubnet } from '../../services/common/subnet-overlap';
import { NetworkAttachment, NetworkSpec } from '../../services/gen/swarmlet/v1/types';
import { EmbeddedDns } from '../dns/embedded-dns';
import { BridgeDriver, BridgeNetwork } from '../network/bridge-driver';
import { ContainerEndpoint, ContainerEndpointRequest, ContainerNetworks } from './container-networks';
import {
  LOCAL_BUILTIN_NETWORKS,
  LocalDnsEntry,
  LocalNetwork,
  isBuiltinLocal,
  planLocalAddress,
  planLocalDnsRecords,
  planLocalSubnet,
  resolveLocalNetwork,
} from './local-network-plans';

/** Bridges and host-side veths of the node-local networks: apart from the agent's `swb` ones. */
export const LOCAL_BRIDGE_PREFIX = 'swbl';
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export interface LocalContainerNetworksOptions {
  log: Logger;
  /** The subnets on the host's own interfaces: a bridge network may not overlap them. */
  hostSubnets: () => HostSubnet[];
  /** Where the user bridges are kept. */
  file: string;
  /** The embedded DNS's upstreams ('' entries: the host's resolv.conf). */
  dnsUpstreams?: readonly string[];
  /** Path of the host's network namespace; default: this process's. */
  hostNetns?: string;
  now?: () => Date;
}

export class LocalContainerNetworks implements ContainerNetworks {
  private readonly log: Logger;
  readonly driver: BridgeDriver;
  private readonly dns: EmbeddedDns;
  private readonly mutex = new Mutex();
  /** networkId -> containerId -> address */
  private readonly addresses = new Map<string, Map<string, string>>();
  /** `${containerId} ${networkId}` -> its DNS entry (user bridges) */
  private readonly dnsEntries = new Map<string, LocalDnsEntry>();
  /** containerId -> its bridge attachments by interface (slot i is eth<i>; a hole is a free slot) */
  private readonly plugged = new Map<string, { netns: string; slots: (NetworkAttachment | undefined)[] }>();
  private user: LocalNetwork[];

  constructor(private readonly opts: LocalContainerNetworksOptions) {
    this.log = componentLogger(opts.log, 'local-container-networks');
    this.driver = new BridgeDriver({ log: opts.log, hostNetns: opts.hostNetns, namePrefix: LOCAL_BRIDGE_PREFIX });
    this.dns = new EmbeddedDns({ log: opts.log, upstreams: opts.dnsUpstreams ?? [] });
    this.user = this.load();
  }

  private load(): LocalNetwork[] {
    try {
      return JSON.parse(readFileSync(this.opts.file, 'utf8')) as LocalNetwork[];
    } catch {
      return [];
    }
  }

  private save(): void {
    writeFileSync(`${this.opts.file}.tmp`, JSON.stringify(this.user, null, 2));
    renameSync(`${this.opts.file}.tmp`, this.opts.file);
  }

  /** The user bridges made here. */
  userNetworks(): readonly LocalNetwork[] {
    return this.user;
  }

  networks(): readonly LocalNetwork[] {
    return [...LOCAL_BUILTIN_NETWORKS, ...this.user];
  }

  resolve(ref: string): LocalNetwork {
    return resolveLocalNetwork(this.networks(), ref);
  }

  /** Containers holding an address on the network, by id. */
  endpointsOf(networkId: string): Map<string, string> {
    return new Map(this.addresses.get(networkId) ?? []);
  }

  /** `network create NAME` on a node in no swarm: a user bridge. */
  create(spec: NetworkSpec): Promise<LocalNetwork> {
    return this.mutex.runExclusive(async () => {
      const driver = spec.driver || 'bridge';
      if (driver !== 'bridge') throw invalidArgument(`a node in no swarm makes bridge networks only, not ${driver}: run "swarmlet init" for ${driver} networks`);
      if (!NAME_RE.test(spec.name)) throw invalidArgument(`invalid network name ${JSON.stringify(spec.name)}: letters, digits, _ . -`);
      if (this.networks().some((n) => n.name === spec.name)) throw conflict(`network with name ${spec.name} already exists`);
      if (spec.ipam?.ipRange) throw invalidArgument('--ip-range is not supported on a node in no swarm yet');
      const { subnet, gateway } = planLocalSubnet(this.networks(), this.opts.hostSubnets(), spec.ipam?.subnet || undefined);
      if (spec.ipam?.gateway && spec.ipam.gateway !== gateway) throw invalidArgument('--gateway other than the subnet\'s first address is not supported on a node in no swarm yet');
      const net: LocalNetwork = { id: randomBytes(32).toString('hex'), name: spec.name, driver: 'bridge', subnet, gateway, labels: { ...spec.labels }, internal: spec.internal, createdAt: (this.opts.now?.() ?? new Date()).toISOString() };
      this.user = [...this.user, net];
      this.save();
      this.log.info({ networkId: net.id, name: net.name, subnet }, 'network created');
      return net;
    });
  }

  /** `network rm`: refused for the built-ins and for a network with containers on it (docker's words). */
  remove(ref: string): Promise<void> {
    return this.mutex.runExclusive(async () => {
      const net = this.resolve(ref);
      if (isBuiltinLocal(net)) throw failedPrecondition(`${net.name} is a pre-defined network and cannot be removed`);
      if ((this.addresses.get(net.id)?.size ?? 0) > 0) throw failedPrecondition(`error while removing network: network ${net.name} id ${net.id} has active endpoints`);
      this.user = this.user.filter((n) => n.id !== net.id);
      this.save();
      await this.reconcileBridges();
      this.log.info({ networkId: net.id, name: net.name }, 'network removed');
    });
  }

  private bridgeOf(net: LocalNetwork): BridgeNetwork {
    return { networkId: net.id, subnet: net.subnet, gateway: net.gateway, internal: Boolean(net.internal), mtu: 0 };
  }

  /** The bridges of the networks containers are on; the others go. */
  private async reconcileBridges(): Promise<void> {
    const wanted = this.networks().filter((n) => n.driver === 'bridge' && (this.addresses.get(n.id)?.size ?? 0) > 0);
    await this.driver.reconcile(wanted.map((n) => this.bridgeOf(n)));
  }

  private applyDns(): void {
    this.dns.apply(planLocalDnsRecords(this.networks(), [...this.dnsEntries.values()]));
  }

  /**
   * After a daemon start: the endpoints its containers hold keep their addresses (and names), the
   * host gets the bridges they need, and the resolver listens in the containers again.
   */
  async restore(held: { containerId: string; containerName: string; netns: string; endpoint: ContainerEndpoint }[]): Promise<void> {
    await this.mutex.runExclusive(async () => {
      this.addresses.clear();
      this.dnsEntries.clear();
      this.plugged.clear();
      for (const { containerId, containerName, netns, endpoint } of held) {
        const ip = endpoint.ipv4Cidr.split('/')[0];
        this.remember(endpoint.networkId, containerId, ip);
        if (!ip) continue;
        this.dnsEntries.set(`${containerId} ${endpoint.networkId}`, { containerId, networkId: endpoint.networkId, name: containerName, hostname: containerId.slice(0, 12), aliases: endpoint.aliases, ip });
        // Each endpoint in the interface it has (records from before names were kept: in their order).
        const p = this.plugged.get(containerId) ?? { netns, slots: [] };
        const named = /^eth(\d+)$/.exec(endpoint.interfaceName ?? '');
        const index = named && p.slots[Number(named[1])] === undefined ? Number(named[1]) : p.slots.length;
        p.slots[index] = { networkId: endpoint.networkId, networkName: endpoint.networkName, driver: 'bridge', address: endpoint.ipv4Cidr, mac: endpoint.mac ?? '', gateway: endpoint.gateway ?? '', vni: 0, internal: false, options: {} };
        this.plugged.set(containerId, p);
      }
      for (const p of this.plugged.values()) p.slots = Array.from(p.slots);
      await this.reconcileBridges();
      this.applyDns();
      await this.dns.reconcile([...this.plugged].map(([taskId, p]) => ({ taskId, netns: p.netns, attachments: p.slots.filter((a): a is NetworkAttachment => a !== undefined) })));
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
      const base = { networkId: net.id, networkName: net.name, driver: net.driver };
      if (net.driver !== 'bridge') return { ...base, ipv4Cidr: '', aliases: [] };
      const userDefined = !isBuiltinLocal(net);
      if (!userDefined && (req.aliases.length || req.ipv4)) throw invalidArgument('network-scoped aliases and --ip are only supported for user-defined networks');
      const used = new Set([...(this.addresses.get(net.id) ?? new Map<string, string>())].filter(([id]) => id !== req.containerId).map(([, ip]) => ip));
      const ip = this.addresses.get(net.id)?.get(req.containerId) ?? planLocalAddress(net, used, req.ipv4);
      const mac = macOfIpv4(parseIpv4(ip), '02');
      const address = `${ip}/${parseCidr(net.subnet).prefix}`;
      const attachment: NetworkAttachment = { networkId: net.id, networkName: net.name, driver: 'bridge', address, mac, gateway: net.gateway, vni: 0, internal: Boolean(net.internal), options: {} };
      // A namespace other than the one recorded is a new sandbox (a restart): its interfaces start again at eth0.
      const had = this.plugged.get(req.containerId);
      const p = had && had.netns === req.netns ? had : { netns: req.netns, slots: [] };
      if (p.slots.some((a) => a?.networkId === net.id)) throw conflict(`container ${req.containerName} is already attached to network ${net.name}`);
      const free = p.slots.findIndex((a) => a === undefined);
      const index = free < 0 ? p.slots.length : free;
      // The driver plugs the attachments of driver 'bridge' alone: the other slots stay as they are.
      const slots = p.slots.map((a) => ({ ...(a ?? attachment), driver: 'none' }));
      slots[index] = attachment;
      this.remember(net.id, req.containerId, ip);
      try {
        await this.driver.attach(req.containerId, req.netns, slots, [this.bridgeOf(net)]);
        p.slots[index] = attachment;
        this.plugged.set(req.containerId, p);
        if (userDefined) this.dnsEntries.set(`${req.containerId} ${net.id}`, { containerId: req.containerId, networkId: net.id, name: req.containerName, hostname: req.containerId.slice(0, 12), aliases: req.aliases, ip });
        this.applyDns();
        await this.ensureResolver(req.containerId);
      } catch (err) {
        this.addresses.get(net.id)?.delete(req.containerId);
        this.dnsEntries.delete(`${req.containerId} ${net.id}`);
        if (p.slots[index] === attachment) p.slots[index] = undefined;
        this.applyDns();
        await this.ensureResolver(req.containerId).catch(() => undefined);
        await this.driver.detach(req.containerId, index).catch(() => undefined);
        throw err;
      }
      this.log.info({ containerId: req.containerId, network: net.name, address, interface: `eth${index}` }, 'container plugged into network');
      return { ...base, ipv4Cidr: address, gateway: net.gateway, mac, aliases: userDefined ? [...req.aliases, req.containerId.slice(0, 12)] : [], interfaceName: `eth${index}` };
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
      if (this.dnsEntries.delete(`${containerId} ${net.id}`)) this.applyDns();
      if (net.driver !== 'bridge') return;
      const p = this.plugged.get(containerId);
      const index = p?.slots.findIndex((a) => a?.networkId === net.id) ?? -1;
      if (p && index >= 0) {
        p.slots[index] = undefined;
        while (p.slots.length && p.slots[p.slots.length - 1] === undefined) p.slots.pop();
        if (p.slots.length === 0) this.plugged.delete(containerId);
      }
      await this.ensureResolver(containerId);
      await this.driver.detach(containerId, index >= 0 ? index : undefined);
    });
  }

  /** The container's resolver answers for the user bridges it is on now; it closes when there are none. */
  private async ensureResolver(containerId: string): Promise<void> {
    const p = this.plugged.get(containerId);
    const attachments = (p?.slots ?? []).filter((a): a is NetworkAttachment => a !== undefined);
    if (p && attachments.some((a) => this.dnsEntries.has(`${containerId} ${a.networkId}`))) await this.dns.attach({ id: containerId, networks: attachments } as never, p.netns);
    else await this.dns.detach(containerId);
  }

  async close(): Promise<void> {
    await this.dns.close();
    await this.driver.close();
  }
}
