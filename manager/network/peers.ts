/**
 * What a node must know of the overlay networks its tasks are on: every task of those networks
 * in the cluster, with the VTEP (the advertise address of its node) that reaches it. The
 * dispatcher sends this with the node's tasks, so that FDB and neighbour entries are in place on
 * every host before a task's command starts, and gone within a pass of it ending. Pure.
 */
import { Network, Node, NodeState, Service, Task, TaskState } from '../../services/gen/swarmlet/v1/types';
import { OverlayNetwork, OverlayPeer } from '../../services/gen/swarmlet/v1/dispatcher';
import { ingressNetwork } from './network-spec';
import { serviceIngressPorts } from './ports';

/** A task's address counts while it is placed and has not ended. */
const holdsAddress = (t: Task) => Boolean(t.nodeId) && (t.status?.state ?? 0) >= TaskState.TASK_STATE_ASSIGNED && (t.status?.state ?? 0) < TaskState.TASK_STATE_COMPLETE;

const bareIp = (cidr: string) => cidr.split('/')[0];

/** Addresses in numeric order (10.0.0.2 before 10.0.0.10); one collator, not one per comparison. */
const byAddress = new Intl.Collator(undefined, { numeric: true }).compare;

/**
 * What every node's overlays are planned from, worked out once for the whole cluster: the live
 * tasks of each network, the overlays each node's tasks are on, and (lazily, then kept) each
 * network's entry with its peers, which every node on that network gets alike. Build it once per
 * read of the cluster state, then ask it for as many nodes as needed.
 */
export class OverlayIndex {
  private readonly vtep: Map<string, string>;
  /** Per network: the first attachment to it of each live task, with the task's node. */
  private readonly live = new Map<string, { task: Task; nodeId: string; ip: string; mac: string }[]>();
  /** Per node: the overlay networks its live tasks are on. */
  private readonly onNode = new Map<string, Set<string>>();
  private readonly ingress: Network | undefined;
  private readonly mesh: boolean;
  private readonly entries = new Map<string, OverlayNetwork>();

  constructor(tasks: Task[], private readonly networks: Network[], private readonly nodes: Node[], services: Service[] = []) {
    // A node that is down is no peer: entries pointing at it go from the other hosts (and come back when it is ready again).
    this.vtep = new Map(nodes.map((n) => [n.id, n.status?.state === NodeState.NODE_STATE_DOWN ? '' : (n.status?.addr ?? '')]));
    for (const t of tasks) {
      if (!holdsAddress(t)) continue;
      for (const a of t.networks) {
        if (a.driver === 'overlay') {
          const here = this.onNode.get(t.nodeId);
          if (here) here.add(a.networkId);
          else this.onNode.set(t.nodeId, new Set([a.networkId]));
        }
        let list = this.live.get(a.networkId);
        if (!list) this.live.set(a.networkId, (list = []));
        // A task's first attachment to a network is the one that counts.
        if (list.length === 0 || list[list.length - 1]!.task !== t) list.push({ task: t, nodeId: t.nodeId, ip: a.address, mac: a.mac });
      }
    }
    this.ingress = ingressNetwork(networks);
    this.mesh = this.ingress !== undefined && services.some((s) => serviceIngressPorts(s).length > 0);
  }

  /**
   * The overlays a node must have, with their peers. While any service publishes a port in
   * ingress mode, every node has the ingress network too (the mesh answers on every node), and
   * its peers include every node's ingress endpoint besides the tasks' ingress attachments.
   */
  forNode(nodeId: string): OverlayNetwork[] {
    const here = this.onNode.get(nodeId);
    const out: OverlayNetwork[] = [];
    for (const network of this.networks) {
      if (here?.has(network.id) || (this.mesh && network.id === this.ingress!.id)) out.push(this.entry(network));
    }
    return out.sort((a, b) => a.vni - b.vni);
  }

  private entry(network: Network): OverlayNetwork {
    const cached = this.entries.get(network.id);
    if (cached) return cached;
    const peers: OverlayPeer[] = [];
    for (const a of this.live.get(network.id) ?? []) {
      const remote = this.vtep.get(a.nodeId);
      if (a.ip && a.mac && remote) peers.push({ ip: bareIp(a.ip), mac: a.mac, vtep: remote });
    }
    if (this.mesh && network.id === this.ingress!.id) {
      for (const n of this.nodes) {
        const a = n.ingress;
        const remote = this.vtep.get(n.id);
        if (a?.networkId === network.id && a.address && a.mac && remote) peers.push({ ip: bareIp(a.address), mac: a.mac, vtep: remote });
      }
    }
    peers.sort((x, y) => byAddress(x.ip, y.ip));
    const mtu = Number(network.spec?.options?.mtu ?? 0);
    const entry = { networkId: network.id, name: network.spec?.name ?? '', vni: network.vni, subnet: network.subnet, gateway: network.gateway, mtu: Number.isInteger(mtu) ? mtu : 0, peers };
    this.entries.set(network.id, entry);
    return entry;
  }
}

/** The overlays one node must have, with their peers (see OverlayIndex.forNode). */
export function planOverlays(nodeId: string, tasks: Task[], networks: Network[], nodes: Node[], services: Service[] = []): OverlayNetwork[] {
  return new OverlayIndex(tasks, networks, nodes, services).forNode(nodeId);
}

/**
 * The VTEPs every node accepts VXLAN from: the advertise addresses of all the swarm's nodes (a
 * node removed from the store is no longer one), sorted, without duplicates. Every node, not only
 * those with tasks on a shared overlay: a node whose first task of an overlay starts later is
 * already admitted everywhere.
 */
export function planVteps(nodes: Node[]): string[] {
  return [...new Set(nodes.map((n) => n.status?.addr ?? '').filter(Boolean))].sort(byAddress);
}
