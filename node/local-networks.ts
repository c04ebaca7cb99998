/**
 * `network ls` and `network inspect` on a node that is not a manager, as docker answers them on
 * every node: the local networks (bridge, host, none) and, on a swarm node, the swarm networks it
 * knows from its dispatcher session (its overlays, the ingress network, and the networks of the
 * tasks assigned to it). Pure: the daemon passes the last session message (none before init).
 */
import { NetworkDetail } from '../services/gen/swarmlet/v1/control';
import type { SessionMessage } from '../services/gen/swarmlet/v1/dispatcher';
import { Network, NetworkAttachment, NetworkSpec } from '../services/gen/swarmlet/v1/types';
import { cidrOfInterface, formatCidr, parseIpv4Interface } from '../services/common/cidr';
import { BUILTIN_NETWORKS, INGRESS_NETWORK_NAME } from '../manager/network/network-spec';
import { networkEndpoints, resolveNetwork } from '../manager/network-plans';

export type LocalNetworkView = Pick<SessionMessage, 'overlays' | 'tasks' | 'ingress'>;

/** The local built-ins: they exist on every node, in a swarm or not. */
const LOCAL_BUILTINS = ['bridge', 'host', 'none'];

const subnetOf = (address: string): string => {
  try {
    return formatCidr(cidrOfInterface(parseIpv4Interface(address)));
  } catch {
    return '';
  }
};

function fromAttachment(a: NetworkAttachment, builtin: boolean): Network {
  const spec: NetworkSpec = BUILTIN_NETWORKS.find((s) => builtin && s.name === a.networkName) ?? {
    name: a.networkName,
    driver: a.driver,
    ipam: { subnet: '', gateway: '', ipRange: '' },
    attachable: false,
    internal: a.internal,
    options: { ...a.options },
    labels: {},
  };
  return { id: a.networkId, meta: undefined, spec, vni: a.vni, subnet: subnetOf(a.address), gateway: a.gateway, builtin };
}

/** The networks this node knows, sorted by name (as the manager's list). */
export function planLocalNetworks(view: LocalNetworkView | undefined): Network[] {
  const byId = new Map<string, Network>();
  const byName = new Map<string, Network>();
  const add = (n: Network) => {
    if (byId.has(n.id) || byName.has(n.spec?.name ?? '')) return;
    byId.set(n.id, n);
    byName.set(n.spec?.name ?? '', n);
  };
  if (view) {
    for (const t of view.tasks) for (const a of t.networks ?? []) add(fromAttachment(a, LOCAL_BUILTINS.includes(a.networkName) || a.networkName === INGRESS_NETWORK_NAME));
    for (const o of view.overlays) {
      add({
        id: o.networkId,
        meta: undefined,
        spec: { name: o.name, driver: 'overlay', ipam: { subnet: '', gateway: '', ipRange: '' }, attachable: false, internal: false, options: o.mtu ? { mtu: String(o.mtu) } : {}, labels: {} },
        vni: o.vni,
        subnet: o.subnet,
        gateway: o.gateway,
        builtin: false,
      });
    }
    if (view.ingress?.endpoint) add(fromAttachment({ ...view.ingress.endpoint, networkId: view.ingress.networkId, networkName: INGRESS_NETWORK_NAME, driver: 'overlay', vni: view.ingress.vni }, true));
  }
  // The local built-ins a task here has not named: known by name (their cluster ids are the managers').
  for (const spec of BUILTIN_NETWORKS.filter((s) => LOCAL_BUILTINS.includes(s.name))) {
    add({ id: spec.name, meta: undefined, spec, vni: 0, subnet: spec.ipam?.subnet ?? '', gateway: spec.ipam?.gateway ?? '', builtin: true });
  }
  return [...byId.values()].sort((a, b) => (a.spec?.name ?? '').localeCompare(b.spec?.name ?? '') || a.id.localeCompare(b.id));
}

/** `network inspect` of one of them: the network and this node's tasks on it. */
export function planLocalNetworkDetail(view: LocalNetworkView | undefined, ref: string): NetworkDetail {
  const network = resolveNetwork(planLocalNetworks(view), ref);
  return { network, endpoints: networkEndpoints(network, view?.tasks ?? []) };
}

/** A node-local user bridge (made by `network create` on a node in no swarm) as `network ls` and `inspect` show networks. */
export function fromLocalNetwork(n: { id: string; name: string; subnet: string; gateway: string; labels?: Record<string, string>; internal?: boolean }): Network {
  return {
    id: n.id,
    meta: undefined,
    spec: { name: n.name, driver: 'bridge', ipam: { subnet: n.subnet, gateway: n.gateway, ipRange: '' }, attachable: false, internal: Boolean(n.internal), options: {}, labels: { ...(n.labels ?? {}) } },
    vni: 0,
    subnet: n.subnet,
    gateway: n.gateway,
    builtin: false,
  };
}
