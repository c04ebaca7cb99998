/**
 * Validation of a network spec as the operator wrote it, against the networks that exist. Pure:
 * the Control API calls it before it writes anything, so bad input changes nothing.
 *
 * The result is a normalized copy: the driver filled in (bridge, as in docker), `ipam` always
 * present, addresses in canonical form, `mtu` as a plain integer. The spec keeps what the operator
 * asked for; what the allocator chose (a subnet from the pools, the default gateway, a VNI) goes
 * on the Network object (see ipam.ts).
 */
import { checkRef } from '../../services/common/object-ref';
import { conflict, invalidArgument, notFound } from '../../services/common/errors';
import { Network, NetworkSpec } from '../../services/gen/swarmlet/v1/types';
import {
  Ipv4Cidr,
  broadcastAddress,
  cidrSize,
  cidrsOverlap,
  containsAddress,
  containsCidr,
  formatCidr,
  formatIpv4,
  parseCidr,
  parseIpv4,
} from '../../services/common/cidr';
export { GATEWAY_BRIDGE_NAME, GATEWAY_BRIDGE_SUBNET, POOL_OVERLAP, hostSubnetOverlap, planAttachmentOverlap } from '../../services/common/subnet-overlap';
export type { HostSubnet } from '../../services/common/subnet-overlap';
import { GATEWAY_BRIDGE_NAME, GATEWAY_BRIDGE_SUBNET, HostSubnet, POOL_OVERLAP, hostSubnetOverlap } from '../../services/common/subnet-overlap';

/** Drivers an operator can create networks with. */
export const CREATABLE_DRIVERS = ['bridge', 'overlay', 'macvlan'] as const;
export type CreatableDriver = (typeof CREATABLE_DRIVERS)[number];

export const MTU_MIN = 576;
export const MTU_MAX = 9000;
/** Subnets between these prefix lengths: a /31 or /32 has no room for a gateway and a task. */
export const SUBNET_PREFIX_MIN = 8;
export const SUBNET_PREFIX_MAX = 30;

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const NAME_MAX = 63;
/** Linux interface names: 1 to 15 bytes, no '/', ':' or white space (dev_valid_name). */
const IFNAME = /^[^\s/:]{1,15}$/;
const OPTIONS_HELP = 'use mtu=N, or parent=IFACE on a macvlan network';

/** Blocks no network may use: "this network", loopback, link-local, multicast, reserved and broadcast. */
const RESERVED_BLOCKS: { cidr: Ipv4Cidr; what: string }[] = [
  { cidr: parseCidr('0.0.0.0/8'), what: '"this network" block 0.0.0.0/8' },
  { cidr: parseCidr('127.0.0.0/8'), what: 'loopback block 127.0.0.0/8' },
  { cidr: parseCidr('169.254.0.0/16'), what: 'link-local block 169.254.0.0/16' },
  { cidr: parseCidr('224.0.0.0/4'), what: 'multicast block 224.0.0.0/4' },
  { cidr: parseCidr('240.0.0.0/4'), what: 'reserved block 240.0.0.0/4' },
];

function builtin(name: string, driver: string, subnet = '', gateway = ''): NetworkSpec {
  return Object.freeze({
    name,
    driver,
    ipam: Object.freeze({ subnet, gateway, ipRange: '' }),
    attachable: false,
    internal: false,
    options: Object.freeze({}),
    labels: Object.freeze({}),
  }) as NetworkSpec;
}

/** The routing mesh's overlay: every node has an address on it, and so do the tasks of services with ingress ports. */
export const INGRESS_NETWORK_NAME = 'ingress';

/**
 * The networks every cluster has, made by the cluster and never removed: `bridge` (the per-host
 * default with NAT to the outside, on docker0's 172.17.0.0/16), `host` (the host's own network
 * namespace), `none` (loopback only) and `ingress` (the routing mesh's overlay, as docker's).
 */
export const BUILTIN_NETWORKS: readonly NetworkSpec[] = Object.freeze([
  builtin('bridge', 'bridge', '172.17.0.0/16', '172.17.0.1'),
  builtin('host', 'host'),
  builtin('none', 'none'),
  builtin(INGRESS_NETWORK_NAME, 'overlay', '10.255.0.0/16', '10.255.0.1'),
]);

/** The cluster's ingress network, when it has been made. */
export const ingressNetwork = (networks: Network[]): Network | undefined => networks.find((n) => n.builtin && n.spec?.name === INGRESS_NETWORK_NAME);

export const BUILTIN_NETWORK_NAMES: readonly string[] = Object.freeze(BUILTIN_NETWORKS.map((s) => s.name));

/** The subnets the nodes report on their interfaces (NodeDescription.interfaces), with their nodes. */
export function hostSubnetsOf(nodes: { id: string; description?: { hostname: string; interfaces: { name: string; subnet: string }[] } }[]): HostSubnet[] {
  return nodes.flatMap((n) => (n.description?.interfaces ?? []).map((i) => ({ node: n.description?.hostname || n.id, iface: i.name, subnet: i.subnet })));
}

/** The subnets no network may take besides those of the networks: the gateway bridge's. */
export function clusterBlocks(): { cidr: Ipv4Cidr; what: string }[] {
  return [{ cidr: parseCidr(GATEWAY_BRIDGE_SUBNET), what: `the gateway bridge ${GATEWAY_BRIDGE_NAME}` }];
}

/** The subnet a network holds: the allocated one, else the one its spec asks for; '' when none. */
export function networkSubnet(n: Network): string {
  return n.subnet || n.spec?.ipam?.subnet || '';
}

/**
 * Throws InvalidArgument for a spec that cannot make a network, Conflict for one that clashes with
 * an existing network (its name, or a subnet that overlaps); returns a normalized copy.
 */
export function validateNetworkSpec(spec: NetworkSpec, existing: Network[], hosts: readonly HostSubnet[] = []): NetworkSpec {
  const name = validateName(spec.name ?? '', existing);
  const driver = validateDriver(spec.driver ?? '');
  const ipam = validateIpam(spec, driver, existing, hosts);
  if (spec.internal && driver === 'macvlan') {
    throw invalidArgument('--internal is for bridge and overlay networks: a macvlan network is on the parent\'s own LAN');
  }
  const options = validateOptions(spec.options ?? {}, driver);
  const labels = { ...(spec.labels ?? {}) };
  for (const key of Object.keys(labels)) {
    if (!key.trim()) throw invalidArgument('a network label needs a key: use --label KEY=VALUE');
  }
  return { name, driver, ipam, attachable: Boolean(spec.attachable), internal: Boolean(spec.internal), options, labels };
}

function validateName(name: string, existing: Network[]): string {
  if (!name) throw invalidArgument('a network name is required');
  if (name.length > NAME_MAX || !NAME.test(name)) {
    throw invalidArgument(
      `invalid network name ${JSON.stringify(name)}: use 1 to ${NAME_MAX} letters, digits, '_', '.' and '-', starting with a letter or digit`,
    );
  }
  if (BUILTIN_NETWORK_NAMES.includes(name)) throw conflict(`network ${name} already exists: it is built in`);
  for (const n of existing) {
    if (n.spec?.name === name) throw conflict(`network ${name} already exists (id ${n.id})`);
    if (n.id === name) throw conflict(`${name} is the id of network ${n.spec?.name ?? n.id}: choose another name`);
  }
  return name;
}

function validateDriver(driver: string): CreatableDriver {
  if (!driver) return 'bridge';
  if ((CREATABLE_DRIVERS as readonly string[]).includes(driver)) return driver as CreatableDriver;
  if (driver === 'host' || driver === 'none') {
    throw invalidArgument(`the ${driver} network is built in and there is only one: use --network ${driver} on the service`);
  }
  throw invalidArgument(`unknown network driver ${JSON.stringify(driver)}: use ${CREATABLE_DRIVERS.join(', ')}`);
}

function validateIpam(spec: NetworkSpec, driver: CreatableDriver, existing: Network[], hosts: readonly HostSubnet[]): NonNullable<NetworkSpec['ipam']> {
  const subnetText = spec.ipam?.subnet ?? '';
  const gatewayText = spec.ipam?.gateway ?? '';
  const rangeText = spec.ipam?.ipRange ?? '';
  if (!subnetText) {
    if (driver === 'macvlan') throw invalidArgument('a macvlan network needs --subnet: the subnet of the parent interface\'s LAN');
    if (gatewayText) throw invalidArgument('--gateway needs --subnet');
    if (rangeText) throw invalidArgument('--ip-range needs --subnet');
    return { subnet: '', gateway: '', ipRange: '' };
  }

  const subnet = parseCidr(subnetText, 'subnet');
  if (subnet.prefix < SUBNET_PREFIX_MIN || subnet.prefix > SUBNET_PREFIX_MAX) {
    throw invalidArgument(`subnet ${formatCidr(subnet)} is ${subnet.prefix < SUBNET_PREFIX_MIN ? 'too large' : 'too small'}: use a prefix length from /${SUBNET_PREFIX_MIN} to /${SUBNET_PREFIX_MAX}`);
  }
  for (const r of RESERVED_BLOCKS) {
    if (cidrsOverlap(subnet, r.cidr)) throw invalidArgument(`subnet ${formatCidr(subnet)} overlaps the ${r.what}`);
  }
  const network = subnet.base;
  const broadcast = broadcastAddress(subnet);

  let gateway: number | undefined;
  if (gatewayText) {
    gateway = parseIpv4(gatewayText, 'gateway');
    if (!containsAddress(subnet, gateway)) throw invalidArgument(`gateway ${formatIpv4(gateway)} is outside subnet ${formatCidr(subnet)}`);
    if (gateway === network) throw invalidArgument(`gateway ${formatIpv4(gateway)} is the network address of ${formatCidr(subnet)}`);
    if (gateway === broadcast) throw invalidArgument(`gateway ${formatIpv4(gateway)} is the broadcast address of ${formatCidr(subnet)}`);
  }
  const gw = gateway ?? network + 1;

  let range: Ipv4Cidr | undefined;
  if (rangeText) {
    range = parseCidr(rangeText, 'ip-range');
    if (!containsCidr(subnet, range)) throw invalidArgument(`ip-range ${formatCidr(range)} is outside subnet ${formatCidr(subnet)}`);
    const reserved = [network, broadcast, gw].filter((a) => containsAddress(range!, a)).length;
    if (cidrSize(range) - reserved <= 0) {
      throw invalidArgument(`ip-range ${formatCidr(range)} leaves no address for tasks (network, broadcast and gateway addresses are taken)`);
    }
  }

  for (const b of clusterBlocks()) {
    if (cidrsOverlap(subnet, b.cidr)) throw conflict(`${POOL_OVERLAP}: subnet ${formatCidr(subnet)} overlaps ${b.what} (${formatCidr(b.cidr)})`);
  }
  // A macvlan network lives on its parent's LAN: its subnet is a host interface's by design.
  if (driver !== 'macvlan') {
    const overlap = hostSubnetOverlap(subnet, hosts);
    if (overlap) throw conflict(overlap);
  }
  const others = [...existing, ...missingBuiltins(existing)];
  for (const other of others) {
    const text = networkSubnet(other);
    if (!text) continue;
    let theirs: Ipv4Cidr;
    try {
      theirs = parseCidr(text);
    } catch {
      continue; // a stored network with a malformed subnet is not this spec's fault
    }
    if (cidrsOverlap(subnet, theirs)) {
      throw conflict(`subnet ${formatCidr(subnet)} overlaps network ${other.spec?.name || other.id} (${formatCidr(theirs)})`);
    }
  }

  return {
    subnet: formatCidr(subnet),
    gateway: gateway === undefined ? '' : formatIpv4(gateway),
    ipRange: range ? formatCidr(range) : '',
  };
}

/** The built-in networks with a subnet (bridge, ingress) that `existing` lacks: their subnets are taken even before the cluster makes them. */
export function missingBuiltins(existing: Network[]): Network[] {
  return BUILTIN_NETWORKS.filter((spec) => spec.ipam?.subnet && !existing.some((n) => n.spec?.name === spec.name)).map((spec) => ({
    id: spec.name,
    meta: undefined,
    spec,
    vni: 0,
    subnet: spec.ipam!.subnet,
    gateway: spec.ipam!.gateway,
    builtin: true,
  }));
}

function validateOptions(options: { [key: string]: string }, driver: CreatableDriver): { [key: string]: string } {
  const out: { [key: string]: string } = {};
  for (const key of Object.keys(options).sort()) {
    const value = options[key] ?? '';
    switch (key) {
      case 'mtu': {
        if (!/^[1-9][0-9]*$/.test(value) || Number(value) < MTU_MIN || Number(value) > MTU_MAX) {
          throw invalidArgument(`invalid option mtu=${value}: use a whole number from ${MTU_MIN} to ${MTU_MAX}`);
        }
        out.mtu = String(Number(value));
        break;
      }
      case 'parent': {
        if (driver !== 'macvlan') throw invalidArgument(`option parent is for macvlan networks, not ${driver}`);
        if (!IFNAME.test(value) || value === '.' || value === '..') {
          throw invalidArgument(`invalid option parent=${value}: use the name of a host interface, such as eth0 or eth0.10`);
        }
        out.parent = value;
        break;
      }
      default:
        throw invalidArgument(`unknown network option ${JSON.stringify(key)}: ${OPTIONS_HELP}`);
    }
  }
  if (driver === 'macvlan' && !out.parent) {
    throw invalidArgument('a macvlan network needs --opt parent=IFACE: the host interface its addresses live on');
  }
  return out;
}

/** Finds a network by full id, name, or unique id prefix. */
export function resolveNetwork(networks: Network[], ref: string): Network {
  const wanted = ref.trim();
  if (!wanted) throw invalidArgument('a network name or id is required');
  checkRef('network', wanted);
  const exact = networks.find((n) => n.id === wanted) ?? networks.find((n) => n.spec?.name === wanted);
  if (exact) return exact;
  const byPrefix = networks.filter((n) => n.id.startsWith(wanted));
  if (byPrefix.length === 1) return byPrefix[0];
  if (byPrefix.length > 1) throw invalidArgument(`network id prefix ${wanted} is ambiguous (${byPrefix.length} matches)`);
  throw notFound(`network ${wanted} not found`);
}
