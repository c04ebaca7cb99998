/** Membership's pure decisions: what a node does to match the role the cluster wants, and whom it asks. */
import { ManagerPeer, Node, NodeRole } from '../services/gen/swarmlet/v1/types';

export type Role = 'manager' | 'worker';

/**
 * The step that brings this node to the role the cluster wants for it:
 * - none: its state and its certificate already say that role;
 * - promote: a manager certificate, then an etcd member, then the manager role;
 * - demote: the manager role and etcd member go, then a worker certificate from another manager;
 * - reissue: a worker whose certificate still says manager gets a worker one.
 */
export type RoleTransition = 'none' | 'promote' | 'demote' | 'reissue';

export function planRoleTransition(current: Role, desired: Role, certRole: string): RoleTransition {
  if (desired === current && desired === certRole) return 'none';
  if (desired === 'manager') return 'promote';
  return current === 'manager' ? 'demote' : 'reissue';
}

/** The managers to ask, in order: this node's own manager first when it runs one, then the others as last told. */
export function planManagerOrder(managers: readonly ManagerPeer[], ownManagerId?: string): ManagerPeer[] {
  const own = ownManagerId === undefined ? [] : managers.filter((m) => m.nodeId === ownManagerId);
  return [...own, ...managers.filter((m) => !own.includes(m))];
}

/** Whether the dispatcher's list of managers differs from the one this node remembers ([]: says nothing). */
export function managersChanged(known: readonly ManagerPeer[], told: readonly ManagerPeer[]): boolean {
  return told.length > 0 && JSON.stringify(told) !== JSON.stringify(known);
}

/**
 * After `swarm init --force-new-cluster` on `selfId`: the other managers' etcd members are gone, so
 * they are retired as a demotion would retire them (desired role worker). They stay listed as
 * unreachable managers until they come back (and become workers) or are removed with `node rm --force`.
 */
export function planForcedRetirements(nodes: readonly Node[], selfId: string): string[] {
  return nodes.filter((n) => n.id !== selfId && n.role === NodeRole.NODE_ROLE_MANAGER && n.spec?.desiredRole === NodeRole.NODE_ROLE_MANAGER).map((n) => n.id);
}
