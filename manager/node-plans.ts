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

/** What the node-health loop knows of a node's liveness when it plans the node's status. */
export interface NodeLiveness {
  /** Its heartbeat key stands: its agent heartbeated within the heartbeat lease. */
  heartbeating: boolean;
  /**
   * Whether its host answered a probe of its address just now (a TCP handshake or a refusal: the
   * host's kernel is up, whatever its daemon does); undefined when it was not probed or has no address.
   */
  hostAnswers?: boolean;
  /** Since when this leader has seen it silent without a break (its own view: kept in memory). */
  silentSince?: Date;
}

/** The message of a ready node whose heartbeats stopped while its host still answers: its grace runs from the status's updatedAt. */
export const HEARTBEAT_MISSED = 'heartbeat missed; the host answers: waiting for its daemon';
/** The message of a node marked down because its heartbeats stopped (docker's words). */
export const HEARTBEAT_FAILURE = 'heartbeat failure';
/** The message of a node whose agent said it leaves the swarm (`swarm leave`): down at once, with no grace. */
export const NODE_LEFT = 'node left the swarm';

/** Whether the node's agent said it leaves the swarm (its status says so). */
export const hasLeft = (node: Node) => node.status?.state === NodeState.NODE_STATE_DOWN && node.status.message === NODE_LEFT;

/** A node's status once its agent has said it leaves; undefined when it shows that already. */
export function planLeftNode(node: Node, now: Date): Node['status'] | undefined {
  if (hasLeft(node)) return undefined;
  return { ...node.status!, addr: node.status?.addr ?? '', state: NodeState.NODE_STATE_DOWN, message: NODE_LEFT, updatedAt: now.toISOString() };
}
/** While a node is in its grace, its host is probed again this often (a host that dies meanwhile is down within about this). */
export const SUSPECT_REPROBE_MS = 1000;
/**
 * A silent node whose host answers is marked HEARTBEAT_MISSED (a write) only once it has been
 * silent this long: a heartbeat late under load (its lease is two periods) costs no write.
 */
export const SUSPECT_AFTER_MS = 1000;

const isSuspect = (node: Node) => node.status?.state === NodeState.NODE_STATE_READY && node.status.message === HEARTBEAT_MISSED;

/** Whether the loop must probe the node's host before planning its status: it is ready, and its heartbeats stopped. */
export function needsHostProbe(node: Node, heartbeating: boolean): boolean {
  return !heartbeating && node.status?.state === NodeState.NODE_STATE_READY;
}

/**
 * The status a node should have; undefined when it already has it.
 * - Heartbeating: ready.
 * - Silent, and not ready before: down ('no heartbeat yet' for a node that never was ready).
 * - Silent and ready, its host not answering: down at once ('heartbeat failure'): the host is dead or cut off.
 * - Silent and ready, its host answering (or not probed): its daemon is restarting or stuck, and its
 *   tasks are most likely running still. It stays ready, marked HEARTBEAT_MISSED (once silent for
 *   SUSPECT_AFTER_MS, from when it fell silent), for
 *   `graceMs` (the cluster's node-down-after); then down. The start of the grace is kept in the
 *   node's status, in etcd, so that a new leader does not start it again from zero.
 */
export function planNodeState(node: Node, live: NodeLiveness, now: Date, graceMs: number): Node['status'] | undefined {
  const status = (state: NodeState, message: string, at = now): Node['status'] => ({ ...node.status!, addr: node.status?.addr ?? '', state, message, updatedAt: at.toISOString() });
  const state = node.status?.state;
  // A node that left stays down: its agent wiped its state and joins again, if ever, as a new node;
  // a heartbeat key its last session left behind for a moment changes nothing.
  if (hasLeft(node)) return undefined;
  if (live.heartbeating) return state === NodeState.NODE_STATE_READY && !node.status?.message ? undefined : status(NodeState.NODE_STATE_READY, '');
  if (state !== NodeState.NODE_STATE_READY) return state === NodeState.NODE_STATE_DOWN ? undefined : status(NodeState.NODE_STATE_DOWN, 'no heartbeat yet');
  if (live.hostAnswers === false) return status(NodeState.NODE_STATE_DOWN, HEARTBEAT_FAILURE);
  if (!isSuspect(node)) {
    const since = live.silentSince ?? now;
    if (now.getTime() - since.getTime() < SUSPECT_AFTER_MS) return undefined;
    return status(NodeState.NODE_STATE_READY, HEARTBEAT_MISSED, since);
  }
  const since = Date.parse(node.status?.updatedAt ?? '');
  if (Number.isFinite(since) && now.getTime() - since < graceMs) return undefined;
  return status(NodeState.NODE_STATE_DOWN, `${HEARTBEAT_FAILURE} (its host answered, its daemon did not for ${Math.round(graceMs / 1000)}s)`);
}

/** How soon the node-health loop must look again without a change in the store: undefined when no node is in its grace. */
export function planNextHealthCheck(nodes: Node[], now: Date, graceMs: number): number | undefined {
  let next: number | undefined;
  for (const n of nodes) {
    if (!isSuspect(n)) continue;
    const left = Date.parse(n.status?.updatedAt ?? '') + graceMs - now.getTime();
    const wait = Math.max(0, Math.min(SUSPECT_REPROBE_MS, Number.isFinite(left) ? left : 0));
    next = next === undefined ? wait : Math.min(next, wait);
  }
  return next;
}

/**
 * How long an agent may be silent before the manager that holds its session ends its heartbeat
 * lease (the key goes, and the leader looks at the node): two heartbeat periods, and never under
 * the 1 s etcd keeps a lease at the least (with the embedded members' 500 ms election timeout).
 */
export const heartbeatSilenceSeconds = (spec: Pick<ClusterSpec, 'heartbeatPeriodMs'> | undefined) => Math.max(1, Math.ceil((2 * (spec?.heartbeatPeriodMs || 500)) / 1000));

/**
 * How long a heartbeat key's lease lives: two silences. Its manager renews it once a silence of it
 * has passed (every other heartbeat at most), and ends it itself when its agent falls silent; the
 * lease runs out alone only when that manager died too. Renewing it on every heartbeat, as a lease
 * of one silence needs, was about 40% of etcd's CPU with 1,000 nodes creating tasks (bench:control-plane).
 */
export const heartbeatLeaseSeconds = (spec: Pick<ClusterSpec, 'heartbeatPeriodMs'> | undefined) => 2 * heartbeatSilenceSeconds(spec);

/**
 * A new swarm's timings: agents heartbeat every 500 ms (their heartbeat key's lease lives 1 s); a
 * node whose host still answers keeps its tasks for 20 s without heartbeats (a daemon restart: one
 * took 8.3 s on a loaded lab host).
 */
export const DEFAULT_CLUSTER_SPEC: Readonly<ClusterSpec> = Object.freeze({ heartbeatPeriodMs: 500, nodeDownAfterMs: 20000 });

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

/** Bounds on the cluster's timings: a node's grace (node-down-after) of at least 2 s and two heartbeat periods. */
export function planClusterSpec(current: ClusterSpec, change: Partial<ClusterSpec>): ClusterSpec {
  const next = { ...current, ...Object.fromEntries(Object.entries(change).filter(([, v]) => v !== undefined)) } as ClusterSpec;
  if (next.heartbeatPeriodMs < 100 || next.heartbeatPeriodMs > 60000) throw invalidArgument('the heartbeat period must be between 100ms and 1m');
  if (next.nodeDownAfterMs < 2000) throw invalidArgument('node-down-after must be at least 2s');
  if (next.nodeDownAfterMs < 2 * next.heartbeatPeriodMs) throw invalidArgument('node-down-after must be at least twice the heartbeat period');
  return next;
}

/**
 * The node that keeps a joining host from using `addr`: one shown Ready there whose agent still
 * heartbeats. A node whose heartbeats have stopped is not in the way, even while the leader waits
 * out the daemon-restart grace before showing it Down: it is this host's old self after
 * `swarm leave`, or a record restored from a backup. Pure.
 */
export function addressHolder(nodes: Node[], addr: string, heartbeating: Set<string>): Node | undefined {
  return nodes.find((n) => n.status?.addr === addr && n.status?.state === NodeState.NODE_STATE_READY && heartbeating.has(n.id));
}
