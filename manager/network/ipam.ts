/**
 * The allocator's plans for networks: a new network's subnet, gateway and VNI, and the addresses
 * of tasks on the networks they join. Pure: the allocator loop reads the store, calls these, and
 * writes the results back.
 *
 * Subnets. A spec's subnet is taken as given (validateNetworkSpec has checked it). Otherwise
 * overlays and user bridges get the first /24 of the default pool 10.0.0.0/8 that overlaps no
 * existing network; macvlan networks must say their subnet. The gateway is the subnet's first
 * host address unless the spec names one.
 *
 * VNIs. Overlays get the lowest VNI from 4096 up that no network holds and the caller does not
 * reserve; VNIs below 4096 stay free for the operator's own VXLANs, as in swarmkit.
 *
 * Task addresses. Each pending task gets one attachment per entry of its spec's `networks`, in
 * order. Its address is the lowest free one of the network's ip-range (or whole subnet), never the
 * network, broadcast or gateway address, nor any address on any task attachment in the store: a
 * task's address is freed when the task is deleted. Reusing the lowest free address is safe
 * because a MAC is derived from its address (an old neighbour entry for a reused address still
 * names the right MAC; only the FDB entry moves, and the agents reprogram that from cluster state).
 * A task that cannot get every one of its attachments gets none, and a message for its status;
 * nothing here throws for a task.
 */
import { invalidArgument, unavailable } from '../../services/common/errors';
import { Network, NetworkAttachment, NetworkSpec, Task } from '../../services/gen/swarmlet/v1/types';
import {
  Ipv4Cidr,
  broadcastAddress,
  cidrsOverlap,
  containsAddress,
  formatCidr,
  formatIpv4,
  macOfIpv4,
  parseCidr,
  parseIpv4,
  parseIpv4Interface,
} from '../../services/common/cidr';
import { VNI_MAX, VNI_MIN } from '../../services/common/vxlan';
import { HostSubnet, clusterBlocks, missingBuiltins, networkSubnet } from './network-spec';

export const DEFAULT_ADDRESS_POOL = '10.0.0.0/8';
export const DEFAULT_SUBNET_PREFIX = 24;

export interface NetworkAllocationOptions {
  /** The id of the network to make. */
  newId: string;
  /** VNIs taken besides those of `existing` (e.g. reserved by the cluster). */
  vnisInUse?: readonly number[];
  /** Subnets on the nodes' own interfaces: a subnet from the pool never overlaps them. */
  hostSubnets?: readonly HostSubnet[];
}

/**
 * The Network object for a validated spec: its id, subnet, gateway and (overlays) VNI. `meta` is
 * left for the store. Throws Unavailable when the default pool or the VNI space is exhausted, and
 * InvalidArgument for a macvlan spec without a subnet.
 */
export function planNetworkAllocation(spec: NetworkSpec, existing: Network[], opts: NetworkAllocationOptions): Network {
  const driver = spec.driver || 'bridge';
  const noAddresses = driver === 'host' || driver === 'none';
  let subnet: Ipv4Cidr | undefined;
  if (!noAddresses) {
    if (spec.ipam?.subnet) subnet = parseCidr(spec.ipam.subnet);
    else if (driver === 'macvlan') throw invalidArgument('a macvlan network needs --subnet: the subnet of the parent interface\'s LAN');
    else subnet = planPoolSubnet(existing, opts.hostSubnets ?? []);
  }
  const gateway = subnet === undefined ? '' : spec.ipam?.gateway ? formatIpv4(parseIpv4(spec.ipam.gateway, 'gateway')) : formatIpv4(subnet.base + 1);
  const vni = driver === 'overlay' ? planVni(existing, opts.vnisInUse ?? []) : 0;
  return {
    id: opts.newId,
    meta: undefined,
    spec,
    vni,
    subnet: subnet ? formatCidr(subnet) : '',
    gateway,
    builtin: false,
  };
}

/**
 * The built-in networks (bridge, host, none, ingress) that `existing` lacks, by name, with ids from
 * `newId`. The cluster makes them once, when it starts.
 */
export function planBuiltinNetworks(builtins: readonly NetworkSpec[], existing: Network[], newId: (name: string) => string): Network[] {
  const have = new Set(existing.map((n) => n.spec?.name));
  const made: Network[] = [];
  // The VNI of a built-in overlay (ingress) is chosen against every network, as a user's is.
  for (const spec of builtins.filter((s) => !have.has(s.name))) made.push({ ...planNetworkAllocation(spec, [...existing, ...made], { newId: newId(spec.name) }), builtin: true });
  return made;
}

/**
 * The first /24 of the default pool that overlaps no existing network's subnet (nor a built-in's
 * not made yet), the gateway bridge's, or a subnet on a node's interface.
 */
function planPoolSubnet(existing: Network[], hosts: readonly HostSubnet[]): Ipv4Cidr {
  const pool = parseCidr(DEFAULT_ADDRESS_POOL);
  const size = 2 ** (32 - DEFAULT_SUBNET_PREFIX);
  const end = broadcastAddress(pool);
  const taken = [
    ...[...existing, ...missingBuiltins(existing)].map(networkSubnet),
    ...clusterBlocks().map((b) => formatCidr(b.cidr)),
    ...hosts.map((h) => h.subnet),
  ]
    .filter((s) => s)
    .flatMap((s) => {
      try {
        return [parseCidr(s)];
      } catch {
        return []; // a malformed stored subnet cannot hold addresses of the pool
      }
    })
    .filter((c) => cidrsOverlap(c, pool))
    .map((c) => [c.base, broadcastAddress(c)] as const)
    .sort((a, b) => a[0] - b[0]);
  // Sweep the taken intervals in order; the candidate only ever moves up, to the next aligned block.
  let candidate = pool.base;
  for (const [start, last] of taken) {
    if (last < candidate) continue;
    if (start > candidate + size - 1) break;
    candidate = Math.ceil((last + 1) / size) * size;
  }
  if (candidate + size - 1 > end) {
    throw unavailable(`the default address pool ${DEFAULT_ADDRESS_POOL} has no free /${DEFAULT_SUBNET_PREFIX}: give the network a --subnet outside it, or remove unused networks`);
  }
  return { base: candidate, prefix: DEFAULT_SUBNET_PREFIX };
}

/** The lowest VNI from VNI_MIN up that no network holds and the caller does not reserve. */
function planVni(existing: Network[], reserved: readonly number[]): number {
  const used = new Set<number>([...existing.map((n) => n.vni), ...reserved]);
  for (let vni = VNI_MIN; vni <= VNI_MAX; vni++) if (!used.has(vni)) return vni;
  throw unavailable(`no free VNI in ${VNI_MIN}-${VNI_MAX}: remove unused overlay networks`);
}

// ---- task addresses -------------------------------------------------------------------------

export interface TaskAddressInput {
  networks: Network[];
  /** Every task in the store: the addresses on their attachments are in use. */
  tasks: Task[];
  /** Tasks that need attachments, in the order they should get them. */
  pending: Task[];
  /** Addresses taken by something other than a task (service VIPs), as "A.B.C.D" or "A.B.C.D/N". */
  reserved?: { networkId: string; address: string }[];
}

export interface TaskAddressPlan {
  attachments: { taskId: string; networks: NetworkAttachment[] }[];
  failed: { taskId: string; message: string }[];
}

/** A network's address space during one plan. */
interface Space {
  network: Network;
  name: string;
  subnet: Ipv4Cidr;
  /** The range task addresses come from: the ip-range, else the subnet. */
  range: Ipv4Cidr;
  first: number;
  last: number;
  gateway: number;
  /** Taken: the gateway, reserved addresses, other tasks' addresses and those given out in this plan. */
  used: Set<number>;
  /** Addresses pending tasks already hold, by address: each keeps its own, no one else gets it. */
  claims: Map<number, string>;
  /** No free address lies below it: within a plan, the lowest free address only moves up, except on a rollback. */
  cursor: number;
}

type Resolved = { kind: 'network'; network: Network } | { kind: 'failed'; message: string };

export function planTaskAddresses(input: TaskAddressInput): TaskAddressPlan {
  const byId = new Map<string, Network>();
  const byName = new Map<string, Network[]>();
  for (const n of input.networks) {
    byId.set(n.id, n);
    const name = n.spec?.name ?? '';
    if (!name) continue;
    const list = byName.get(name);
    if (list) list.push(n);
    else byName.set(name, [n]);
  }
  const resolve = (ref: string): Resolved => {
    const exact = byId.get(ref);
    if (exact) return { kind: 'network', network: exact };
    const named = byName.get(ref) ?? [];
    if (named.length === 1) return { kind: 'network', network: named[0] };
    if (named.length > 1) {
      const ids = named.map((n) => n.id).sort();
      return { kind: 'failed', message: `network name ${ref} is ambiguous (ids ${ids.join(', ')}): use an id` };
    }
    return { kind: 'failed', message: `network ${ref} not found` };
  };

  // Addresses in use, per network id. A pending task's own attachments (a plan run again) are
  // claims: the task keeps them, the first pending task to claim an address winning.
  const pendingIds = new Set(input.pending.map((t) => t.id));
  const usedBy = new Map<string, number[]>();
  const markUsed = (networkId: string, address: string): void => {
    const a = parseAddress(address);
    if (a === undefined) return;
    const list = usedBy.get(networkId);
    if (list) list.push(a);
    else usedBy.set(networkId, [a]);
  };
  for (const t of input.tasks) {
    if (pendingIds.has(t.id)) continue;
    for (const att of t.networks ?? []) if (att.address) markUsed(att.networkId, att.address);
  }
  for (const r of input.reserved ?? []) markUsed(r.networkId, r.address);
  const claimsBy = new Map<string, Map<number, string>>();
  for (const t of input.pending) {
    for (const att of t.networks ?? []) {
      const a = att.address ? parseAddress(att.address) : undefined;
      if (a === undefined) continue;
      let claims = claimsBy.get(att.networkId);
      if (!claims) claimsBy.set(att.networkId, (claims = new Map()));
      if (!claims.has(a)) claims.set(a, t.id);
    }
  }

  const spaces = new Map<string, Space | string>();
  const spaceOf = (n: Network): Space | string => {
    let s = spaces.get(n.id);
    if (s === undefined) spaces.set(n.id, (s = makeSpace(n, usedBy.get(n.id) ?? [], claimsBy.get(n.id) ?? new Map())));
    return s;
  };

  const plan: TaskAddressPlan = { attachments: [], failed: [] };
  for (const task of input.pending) {
    const refs = task.spec?.networks ?? [];
    const resolved = refs.map(resolve);
    const failure = resolved.find((r): r is { kind: 'failed'; message: string } => r.kind === 'failed');
    if (failure) {
      plan.failed.push({ taskId: task.id, message: failure.message });
      continue;
    }
    const networks = resolved.map((r) => (r as { network: Network }).network);
    const combination = checkCombination(networks);
    if (combination) {
      plan.failed.push({ taskId: task.id, message: combination });
      continue;
    }

    // Allocate every attachment, or none: addresses taken for a task that fails are given back.
    const fresh: { space: Space; address: number }[] = [];
    const out: NetworkAttachment[] = [];
    let message: string | undefined;
    for (const network of networks) {
      const driver = network.spec?.driver ?? '';
      if (driver === 'host' || driver === 'none') {
        out.push(attachment(network, driver, '', ''));
        continue;
      }
      const space = spaceOf(network);
      if (typeof space === 'string') {
        message = space;
        break;
      }
      let address = keptAddress(task, space);
      if (address === undefined) {
        address = takeLowestFree(space);
        if (address === undefined) {
          message = exhausted(space);
          break;
        }
        space.used.add(address);
        fresh.push({ space, address });
      }
      out.push(attachment(network, driver, `${formatIpv4(address)}/${space.subnet.prefix}`, macOfIpv4(address)));
    }
    if (message !== undefined) {
      for (const { space, address } of fresh) {
        space.used.delete(address);
        if (address < space.cursor) space.cursor = address;
      }
      plan.failed.push({ taskId: task.id, message });
      continue;
    }
    plan.attachments.push({ taskId: task.id, networks: out });
  }
  return plan;
}

/** Why a task cannot join this list of networks, if it cannot. */
function checkCombination(networks: Network[]): string | undefined {
  const seen = new Set<string>();
  for (const n of networks) {
    if (seen.has(n.id)) return `network ${n.spec?.name || n.id} is listed more than once`;
    seen.add(n.id);
  }
  for (const special of ['host', 'none']) {
    const n = networks.find((x) => x.spec?.driver === special);
    if (n && networks.length > 1) return `network ${n.spec?.name || n.id} cannot be combined with other networks`;
  }
  return undefined;
}

function attachment(network: Network, driver: string, address: string, mac: string): NetworkAttachment {
  const noAddresses = driver === 'host' || driver === 'none';
  return {
    networkId: network.id,
    networkName: network.spec?.name ?? '',
    driver,
    address,
    mac,
    gateway: noAddresses ? '' : network.gateway,
    vni: network.vni,
    internal: noAddresses ? false : Boolean(network.spec?.internal),
    options: noAddresses ? {} : { ...(network.spec?.options ?? {}) },
  };
}

/** A network's address space, or why it has none. */
function makeSpace(network: Network, used: number[], claims: Map<number, string>): Space | string {
  const name = network.spec?.name || network.id;
  const subnetText = network.subnet || network.spec?.ipam?.subnet || '';
  if (!subnetText) return `network ${name} has no subnet allocated yet`;
  let subnet: Ipv4Cidr;
  let range: Ipv4Cidr;
  let gateway: number;
  try {
    subnet = parseCidr(subnetText);
    range = network.spec?.ipam?.ipRange ? parseCidr(network.spec.ipam.ipRange, 'ip-range') : subnet;
    gateway = parseIpv4(network.gateway || formatIpv4(subnet.base + 1), 'gateway');
  } catch (err) {
    return `network ${name} has an invalid address configuration: ${(err as Error).message}`;
  }
  const first = Math.max(range.base, subnet.base + 1);
  const last = Math.min(broadcastAddress(range), broadcastAddress(subnet) - 1);
  const set = new Set<number>();
  for (const a of used) if (containsAddress(subnet, a)) set.add(a);
  set.add(gateway);
  for (const a of [...claims.keys()]) if (set.has(a)) claims.delete(a); // held by a task that is not pending
  return { network, name, subnet, range, first, last, gateway, used: set, claims, cursor: first };
}

/** The address a pending task already holds on this network, when it is still a valid one. */
function keptAddress(task: Task, space: Space): number | undefined {
  const att = (task.networks ?? []).find((a) => a.networkId === space.network.id);
  if (!att?.address) return undefined;
  const a = parseAddress(att.address);
  if (a === undefined || a < space.first || a > space.last || space.claims.get(a) !== task.id) return undefined;
  return a;
}

function takeLowestFree(space: Space): number | undefined {
  let a = space.cursor;
  while (a <= space.last && (space.used.has(a) || space.claims.has(a))) a++;
  space.cursor = a;
  return a <= space.last ? a : undefined;
}

function exhausted(space: Space): string {
  let inUse = 0;
  for (const a of space.used) if (a >= space.first && a <= space.last) inUse++;
  for (const a of space.claims.keys()) if (a >= space.first && a <= space.last) inUse++;
  const where = space.range === space.subnet ? formatCidr(space.subnet) : `${formatCidr(space.range)} (ip-range of ${formatCidr(space.subnet)})`;
  return `network ${space.name}: no free address in ${where} (${inUse} in use)`;
}

/** "10.0.1.5/24" or "10.0.1.5" -> the address; undefined when malformed (it cannot hold anything then). */
function parseAddress(text: string): number | undefined {
  try {
    return text.includes('/') ? parseIpv4Interface(text).address : parseIpv4(text);
  } catch {
    return undefined;
  }
}
