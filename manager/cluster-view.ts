import { Cluster, ManagerPeer, Node, NodeRole, Reachability } from '../services/gen/swarmlet/v1/types';
import { deriveManagerStatus, ManagerView } from './node-plans';
import { Store } from './store/store';
import { unavailable } from '../services/common/errors';

/** One consistent read of what the Control API and the dispatcher show: nodes with their manager status derived. */
export interface ClusterView {
  cluster: Cluster;
  nodes: Node[];
  leaderId?: string;
}

export async function readClusterView(store: Store, leaderId: () => Promise<string | undefined>): Promise<ClusterView> {
  const [cluster, nodes, running, leader] = await Promise.all([store.getCluster(), store.listNodes(), store.runningManagers(), leaderId()]);
  if (!cluster) throw unavailable('the cluster store holds no cluster');
  return { cluster, nodes: nodes.map((n) => deriveManagerStatus(n, leader, running)), leaderId: leader };
}

/** The managers that vote: manager certificates that are not being demoted. */
export function votingManagers(nodes: Node[]): ManagerView[] {
  return nodes
    .filter((n) => n.role === NodeRole.NODE_ROLE_MANAGER && n.spec?.desiredRole === NodeRole.NODE_ROLE_MANAGER)
    .map((n) => ({ id: n.id, reachable: n.managerStatus?.reachability === Reachability.REACHABILITY_REACHABLE }));
}

/** Managers an agent may open a session with, reachable ones first. */
export function managerPeers(nodes: Node[]): ManagerPeer[] {
  return nodes
    .filter((n) => n.role === NodeRole.NODE_ROLE_MANAGER && n.managerStatus?.addr)
    .sort((a, b) => (b.managerStatus?.reachability ?? 0) - (a.managerStatus?.reachability ?? 0) || a.id.localeCompare(b.id))
    .map((n) => ({ nodeId: n.id, addr: n.managerStatus!.addr }));
}
