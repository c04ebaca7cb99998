import { NodeRole } from '../services/gen/swarmlet/v1/types';
import { PeerIdentity } from '../services/pki/ca';

/** What the managers know of who may call them: each node's current role, and the revoked operator certificates' serials. */
export interface AccessView {
  nodes: ReadonlyMap<string, NodeRole>;
  revokedOperators: ReadonlySet<string>;
}

/**
 * Whether a caller whose certificate TLS has verified may go on: a node certificate only while
 * its node is in the swarm, and a manager certificate (where `managerRole` asks for it) only
 * while the node is still a manager; an operator certificate only while it is not revoked.
 * Returns the refusal, or undefined.
 */
export function planPeerAccess(peer: PeerIdentity, view: AccessView, opts: { managerRole: boolean }): string | undefined {
  if (peer.role === 'operator') {
    return view.revokedOperators.has(peer.serial) ? `operator certificate ${peer.nodeId} (serial ${peer.serial}) has been revoked` : undefined;
  }
  const role = view.nodes.get(peer.nodeId);
  if (role === undefined) return `node ${peer.nodeId} is not in this swarm (it was removed); its certificate is no longer accepted`;
  if (opts.managerRole && peer.role === 'manager' && role !== NodeRole.NODE_ROLE_MANAGER) {
    return `node ${peer.nodeId} is no longer a manager; its manager certificate is no longer accepted`;
  }
  return undefined;
}
