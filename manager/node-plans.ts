/**
 * Pure plans over nodes: which node a name means, what a node's status should be, whether a
 * change to the set of managers keeps quorum, what an update does. No I/O here.
 */
import { checkRef } from '../services/common/object-ref';
import { SwarmletError, failedPrecondition, invalidArgument, notFound } from '../services/common/errors';
import { ClusterSpec, Node, NodeAvailability, NodeRole, NodeState, Reachability } from '../services/gen/swarmlet/v1/types';

/** Finds a node by full id, hostname, or unique id prefix, as docker does. */
export function resolveNode(nodes: Node[], ref: string): Node {
  const wanted = ref.trim();
  if (!wanted) throw invalidArgument('a node id or hostname is required');
  checkRef('node', wanted);
  const byId = nodes.find((n) => n.id === wanted);
  if (byId) return byId;
  const byName = nodes.filter((n) => n.description?.hostname === wanted);
  if (byName.length === 1) return byName[0];
  if (byName.length > 1) throw invalidArgument(`node name ${wanted} is ambiguous (${byName.length} matches); use its id`);
  const byPrefix = nodes.filter((n) => n.id.startsWith(wanted));
  if (byPrefix.length === 1) return byPrefix[0];
  if (byPrefix.length > 1) throw invalidArgument(`node id prefix ${wanted} is ambiguous (${byPrefix.length} matches)`);
  throw notFound(`node ${wanted} not found`);
}

/** The status a node should have given whether its agent is heartbeating; undefined when it already has it. */
export function planNodeState(node: Node, heartbeating: boolean, now: Date): Node['status'] | undefined {
  const state = heartbeating ? NodeState.NODE_STATE_READY : NodeState.NODE_STATE_DOWN;
  if (node.status?.state === state) return undefined;
  const message = heartbeating ? '' : node.status?.state === NodeState.NODE_STATE_READY ? 'heartbeat failure' : 'no heartbeat yet';
  return { ...node.status!, addr: node.status?.addr ?? '', state, message, updatedAt: now.toISOString() };
}

export const quorum = (members: number) => Math.floor(members / 2) + 1;

export interface ManagerView {
  id: string;
  reachable: boolean;
}

/**
 * Whether taking `leavingId` out of the managers keeps a working majority among those left.
 * Returns the reason it would not, or undefined when it is safe.
 */
export function planManagerRemoval(managers: ManagerView[], leavingId: string): string | undefined {
  const rest = managers.filter((m) => m.id !== leavingId);
  if (rest.length === managers.length) return undefined;
  if (rest.length === 0) return 'it is the last manager of the swarm; the swarm would be lost';
  // The removal is itself a change etcd must commit, with a quorum of the members as they are now.
  const reachableNow = managers.filter((m) => m.reachable).length;
  if (reachableNow < quorum(managers.length)) {
    return `only ${reachableNow} of the ${managers.length} managers are reachable: the swarm has no quorum to make the change`;
  }
  const reachable = rest.filter((m) => m.reachable).length;
  if (reachable < quorum(rest.length)) {
    return `only ${reachable} of the ${rest.length} managers left would be reachable, fewer than the ${quorum(rest.length)} a quorum needs`;
  }
  return undefined;
}

/**
 * Whether adding a manager leaves a quorum once the new member runs. (Until it starts, a
 * one-manager swarm that adds a second has no quorum: etcd's rule, and why the new member is
 * started at once.)
 */
export function planManagerAddition(managers: ManagerView[]): string | undefined {
  const reachable = managers.filter((m) => m.reachable).length;
  if (reachable + 1 < quorum(managers.length + 1)) {
    return `only ${reachable} of ${managers.length} managers are reachable; with one more, ${quorum(managers.length + 1)} must be`;
  }
  return undefined;
}

const LABEL_KEY = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,251}[A-Za-z0-9])?$/;

export interface NodeUpdate {
  availability?: NodeAvailability;
  labelAdd: Record<string, string>;
  labelRm: string[];
}

/** Applies an operator's update to a node's spec; InvalidArgument for bad labels. */
export function planNodeUpdate(node: Node, update: NodeUpdate): Node {
  const labels = { ...(node.spec?.labels ?? {}) };
  for (const key of update.labelRm) {
    if (!(key in labels)) throw invalidArgument(`node ${node.description?.hostname || node.id} has no label ${LABEL_KEY.test(key) ? key : JSON.stringify(key)}`);
    delete labels[key];
  }
  for (const [key, value] of Object.entries(update.labelAdd)) {
    if (!LABEL_KEY.test(key)) throw invalidArgument(`invalid label key ${JSON.stringify(key)}: use letters, digits, '.', '-', '_' and '/'`);
    labels[key] = value;
  }
  const availability = update.availability ?? node.spec?.availability ?? NodeAvailability.NODE_AVAILABILITY_ACTIVE;
  return { ...node, spec: { ...node.spec!, desiredRole: node.spec?.desiredRole ?? node.role, availability, labels } };
}

/** Sets a node's desired role, refusing demotions that would cost the managers their quorum. */
export function planRoleChange(node: Node, role: NodeRole, managers: ManagerView[]): { node?: Node; message: string } {
  const name = node.description?.hostname || node.id;
  const desired = node.spec?.desiredRole ?? node.role;
  if (role === NodeRole.NODE_ROLE_WORKER && desired === role && node.role === NodeRole.NODE_ROLE_MANAGER) {
    return { message: `node ${name} is being demoted: it becomes a worker when it next connects; if it is gone for good, remove it with 'swarmlet node rm --force ${name}' once it is down` };
  }
  if (desired === role) {
    return { message: `node ${name} is already ${role === NodeRole.NODE_ROLE_MANAGER ? 'a manager' : 'a worker'}` };
  }
  if (role === NodeRole.NODE_ROLE_WORKER) {
    const reason = planManagerRemoval(managers, node.id);
    if (reason) throw failedPrecondition(`cannot demote node ${name}: ${reason}`);
  } else {
    const reason = planManagerAddition(managers);
    if (reason) throw failedPrecondition(`cannot promote node ${name}: ${reason}`);
  }
  const verb = role === NodeRole.NODE_ROLE_MANAGER ? 'promoted to a manager' : 'demoted to a worker';
  return { node: { ...node, spec: { ...node.spec!, desiredRole: role } }, message: `node ${name} ${verb} in the swarm` };
}

/** Whether `node rm` may go ahead. */
export function planNodeRemoval(node: Node, force: boolean): void {
  const name = node.description?.hostname || node.id;
  const demoted = node.role === NodeRole.NODE_ROLE_MANAGER && node.spec?.desiredRole === NodeRole.NODE_ROLE_WORKER;
  // A demoted manager that is down (gone, or left behind by `swarm init --force-new-cluster`) has no etcd member any more: --force removes it, as docker's `node rm --force`.
  if (demoted && force && node.status?.state === NodeState.NODE_STATE_DOWN) return;
  if (demoted) throw failedPrecondition(`node ${name} is a manager being demoted: it becomes a worker when it next connects; if it is gone for good, remove it with 'swarmlet node rm --force ${name}' once it is down`);
  if (node.role === NodeRole.NODE_ROLE_MANAGER || node.spec?.desiredRole === NodeRole.NODE_ROLE_MANAGER) {
    throw failedPrecondition(`node ${name} is a manager: demote it with 'swarmlet node demote ${name}' before removing it`);
  }
  if (node.status?.state === NodeState.NODE_STATE_READY && !force) {
    throw failedPrecondition(`node ${name} is not down and can't be removed; stop it first, or use --force`);
  }
}

/** What `node ls` shows in MANAGER STATUS: derived from the election and the managers' presence keys. */
export function deriveManagerStatus(node: Node, leaderId: string | undefined, running: Set<string>): Node {
  if (node.role !== NodeRole.NODE_ROLE_MANAGER) return { ...node, managerStatus: undefined };
  const reachability = running.has(node.id) ? Reachability.REACHABILITY_REACHABLE : Reachability.REACHABILITY_UNREACHABLE;
  return { ...node, managerStatus: { addr: node.managerStatus?.addr ?? '', leader: node.id === leaderId, reachability } };
}

export function isSwarmletError(err: unknown, kind: SwarmletError['kind']): boolean {
  return err instanceof SwarmletError && err.kind === kind;
}

/** Bounds on the cluster's timings: etcd cannot keep a lease shorter than 2 s, and a node needs a few heartbeats per period. */
export function planClusterSpec(current: ClusterSpec, change: Partial<ClusterSpec>): ClusterSpec {
  const next = { ...current, ...Object.fromEntries(Object.entries(change).filter(([, v]) => v !== undefined)) } as ClusterSpec;
  if (next.heartbeatPeriodMs < 100 || next.heartbeatPeriodMs > 60000) throw invalidArgument('the heartbeat period must be between 100ms and 1m');
  if (next.nodeDownAfterMs < 2000) throw invalidArgument('node-down-after must be at least 2s (the shortest lease etcd keeps)');
  if (next.nodeDownAfterMs < 2 * next.heartbeatPeriodMs) throw invalidArgument('node-down-after must be at least twice the heartbeat period');
  return next;
}
