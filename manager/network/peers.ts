/**
 * What a node must know of the overlay networks its tasks are on: every task of those networks
 * in the cluster, with the VTEP (the advertise address of its node) that reaches it. The
 * dispatcher sends this with the node's tasks, so that FDB and neighbour entries are in place on
 * every host before a task's command starts, and gone within a pass of it ending. Pure.
 */
import { Network, Node, Service, Task, TaskState } from '../../services/gen/swarmlet/v1/types';
import { OverlayNetwork, OverlayPeer } from '../../services/gen/swarmlet/v1/dispatcher';
import { ingressNetwork } from './network-spec';
import { serviceIngressPorts } from './ports';

/** A task's address counts while it is placed and has not ended. */
const holdsAddress = (t: Task) => Boolean(t.nodeId) && (t.status?.state ?? 0) >= TaskState.TASK_STATE_ASSIGNED && (t.status?.state ?? 0) < TaskState.TASK_STATE_COMPLETE;

const bareIp = (cidr: string) => cidr.split('/')[0];

/**
 * The overlays a node must have, with their peers. While any service publishes a port in ingress
 * mode, every node has the ingress network too (the mesh answers on every node), and its peers
 * include every node's ingress endpoint besides the tasks' ingress attachments.
 */
export function planOverlays(nodeId: string, tasks: Task[], networks: Network[], nodes: Node[], services: Service[] = []): OverlayNetwork[] {
  const vtep = new Map(nodes.map((n) => [n.id, n.status?.addr ?? '']));
  const live = tasks.filter(holdsAddress);
  const here = new Set(live.filter((t) => t.nodeId === nodeId).flatMap((t) => t.networks.filter((a) => a.driver === 'overlay').map((a) => a.networkId)));
  const ingress = ingressNetwork(networks);
  const mesh = ingress !== undefined && services.some((s) => serviceIngressPorts(s).length > 0);
  if (mesh) here.add(ingress.id);
  const out: OverlayNetwork[] = [];
  for (const network of networks) {
    if (!here.has(network.id)) continue;
    const peers: OverlayPeer[] = [];
    for (const t of live) {
      const a = t.networks.find((x) => x.networkId === network.id);
      const remote = vtep.get(t.nodeId);
      if (a?.address && a.mac && remote) peers.push({ ip: bareIp(a.address), mac: a.mac, vtep: remote });
    }
    if (mesh && network.id === ingress.id) {
      for (const n of nodes) {
        const a = n.ingress;
        const remote = vtep.get(n.id);
        if (a?.networkId === network.id && a.address && a.mac && remote) peers.push({ ip: bareIp(a.address), mac: a.mac, vtep: remote });
      }
    }
    peers.sort((x, y) => x.ip.localeCompare(y.ip, undefined, { numeric: true }));
    const mtu = Number(network.spec?.options?.mtu ?? 0);
    out.push({ networkId: network.id, name: network.spec?.name ?? '', vni: network.vni, subnet: network.subnet, gateway: network.gateway, mtu: Number.isInteger(mtu) ? mtu : 0, peers });
  }
  return out.sort((a, b) => a.vni - b.vni);
}

/**
 * The VTEPs every node accepts VXLAN from: the advertise addresses of all the swarm's nodes (a
 * node removed from the store is no longer one), sorted, without duplicates. Every node, not only
 * those with tasks on a shared overlay: a node whose first task of an overlay starts later is
 * already admitted everywhere.
 */
export function planVteps(nodes: Node[]): string[] {
  return [...new Set(nodes.map((n) => n.status?.addr ?? '').filter(Boolean))].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
}
