/**
 * The scheduler's plan: which node each pending task goes to. Pure.
 *
 * Filters, in order: the node is ready and active (pause and drain take no new tasks); it
 * satisfies the task's constraints; its described resources hold the task's reservations on top
 * of those of the tasks already there (desired and actual state at most RUNNING; a node that
 * describes no CPU or no memory has no limit on it); no live task there (assigned to running, desired
 * running) publishes one of the task's host-mode ports, nor does one of the node's own containers
 * (its description's container_ports). Among the nodes left, spread: the fewest
 * tasks of the same service, then the fewest tasks overall, then the smallest node id.
 *
 * Tasks are placed one at a time and every placement counts for the next. Pinned tasks (a global
 * service's, which come with their node id) go first, checked against their node alone; the rest
 * go by groups of identical needs (service, constraints, reservations), in the order each group
 * first appears in `pending`. A group's candidate nodes are filtered once and kept in a heap
 * ordered by the spread; a node found too full for the group is dropped from its heap (nothing
 * frees resources during a plan). That makes a plan O(groups × nodes + tasks × log nodes) rather
 * than O(tasks × nodes), with the same placements as a scan of every node for every task.
 */
import { Node, NodeAvailability, NodeState, Service, Task, TaskState } from '../../services/gen/swarmlet/v1/types';
import { claimName, serviceHostPorts } from '../network/ports';
import { Constraint, matchConstraints, parseConstraint } from './constraints';

export interface SchedulingInput {
  nodes: Node[];
  /** Every task, to count what runs where. */
  tasks: Task[];
  /** Tasks to place: state PENDING, desired RUNNING; no node, or (global services) the node they must go to. */
  pending: Task[];
  /** The services, for their host-mode published ports: a node holds each (port, protocol) for one task at most. */
  services?: Service[];
}

export interface SchedulingPlan {
  assignments: { taskId: string; nodeId: string }[];
  unassigned: { taskId: string; message: string }[];
}

const RUNNING = TaskState.TASK_STATE_RUNNING;

/** Why nodes were turned down, in filter order; the message lists the most frequent reason first. */
interface Refusals {
  notAvailable: number;
  constraints: number;
  resources: number;
  /** Nodes where a host-mode port the task publishes is in use, and the first such port (`8080/tcp`). */
  ports?: number;
  port?: string;
}

const nodes1 = (n: number) => `${n} node${n === 1 ? '' : 's'}`;

export function explainRefusals(r: Refusals, nodeCount: number): string {
  if (nodeCount === 0) return 'no suitable node (no nodes in the swarm)';
  const parts: [number, string][] = [
    [r.notAvailable, `${nodes1(r.notAvailable)} not available for new tasks`],
    [r.constraints, `scheduling constraints not satisfied on ${nodes1(r.constraints)}`],
    [r.resources, `insufficient resources on ${nodes1(r.resources)}`],
    [r.ports ?? 0, `host port ${r.port ?? ''} in use on ${nodes1(r.ports ?? 0)}`],
  ];
  const shown = parts.filter(([n]) => n > 0).sort((a, b) => b[0] - a[0]); // stable: ties keep filter order
  return `no suitable node (${shown.map(([, text]) => text).join('; ')})`;
}

interface Group {
  serviceId: string;
  constraintsKey: string;
  constraints: Constraint[];
  cpu: number;
  mem: number;
  /** Host-mode ports its tasks publish, as `tcp/8080`. */
  hostPorts: string[];
  tasks: Task[];
}

interface Eligible {
  nodes: Int32Array;
  notAvailable: number;
  constraints: number;
}

export function planScheduling(input: SchedulingInput): SchedulingPlan {
  const nodes = [...input.nodes].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const n = nodes.length;
  const indexOf = new Map<string, number>();
  const available = new Uint8Array(n);
  const cpuCap = new Float64Array(n);
  const memCap = new Float64Array(n);
  nodes.forEach((node, i) => {
    indexOf.set(node.id, i);
    available[i] = Number(
      node.status?.state === NodeState.NODE_STATE_READY && (node.spec?.availability ?? NodeAvailability.NODE_AVAILABILITY_ACTIVE) === NodeAvailability.NODE_AVAILABILITY_ACTIVE,
    );
    const res = node.description?.resources;
    cpuCap[i] = res && res.nanoCpus > 0 ? res.nanoCpus : Infinity;
    memCap[i] = res && res.memoryBytes > 0 ? res.memoryBytes : Infinity;
  });

  // What already runs where.
  const cpuUsed = new Float64Array(n);
  const memUsed = new Float64Array(n);
  const total = new Int32Array(n);
  const perService = new Map<string, Map<number, number>>();
  const serviceCounts = (serviceId: string): Map<number, number> => {
    let m = perService.get(serviceId);
    if (!m) perService.set(serviceId, (m = new Map()));
    return m;
  };
  const pendingIds = new Set(input.pending.map((t) => t.id));
  const hostPortsOf = new Map((input.services ?? []).map((s) => [s.id, serviceHostPorts(s).map((p) => claimName(p.protocol, p.publishedPort))]));
  const portsOf = (t: Task) => hostPortsOf.get(t.serviceId) ?? [];
  // Host ports the nodes' own containers publish: no host-mode port of a task there.
  const portsUsed: Set<string>[] = nodes.map((node) => new Set((node.description?.containerPorts ?? []).map((p) => claimName(p.protocol, p.publishedPort))));
  for (const t of input.tasks) {
    // A container's network attachment is no workload: it does not count against its node.
    if (!t.nodeId || pendingIds.has(t.id) || t.desiredState > RUNNING || (t.status?.state ?? 0) > RUNNING || t.spec?.attachment) continue;
    const i = indexOf.get(t.nodeId);
    if (i === undefined) continue;
    // Host ports count from ASSIGNED: a task not yet placed holds none.
    if ((t.status?.state ?? 0) >= TaskState.TASK_STATE_ASSIGNED) portsOf(t).forEach((p) => portsUsed[i].add(p));
    total[i]++;
    const counts = serviceCounts(t.serviceId);
    counts.set(i, (counts.get(i) ?? 0) + 1);
    const r = t.spec?.resources?.reservations;
    if (r) {
      cpuUsed[i] += r.nanoCpus;
      memUsed[i] += r.memoryBytes;
    }
  }

  const assignments: SchedulingPlan['assignments'] = [];
  const unassigned: SchedulingPlan['unassigned'] = [];
  const fits = (i: number, cpu: number, mem: number): boolean =>
    (cpu <= 0 || cpuUsed[i] + cpu <= cpuCap[i]) && (mem <= 0 || memUsed[i] + mem <= memCap[i]);
  const portsFree = (i: number, ports: string[]): boolean => ports.every((p) => !portsUsed[i].has(p));
  const portLabelOf = (claim: string) => claim.split('/').reverse().join('/');
  const place = (i: number, t: Task, cpu: number, mem: number): void => {
    portsOf(t).forEach((p) => portsUsed[i].add(p));
    total[i]++;
    cpuUsed[i] += cpu;
    memUsed[i] += mem;
    const counts = serviceCounts(t.serviceId);
    counts.set(i, (counts.get(i) ?? 0) + 1);
    assignments.push({ taskId: t.id, nodeId: nodes[i].id });
  };

  // Group the tasks, pinned ones first.
  const groups = new Map<string, Group>();
  const pinned: { task: Task; constraints: Constraint[] }[] = [];
  for (const t of input.pending) {
    let constraints: Constraint[];
    try {
      constraints = (t.spec?.placement?.constraints ?? []).map(parseConstraint);
    } catch (err) {
      unassigned.push({ taskId: t.id, message: `no suitable node (${(err as Error).message})` });
      continue;
    }
    if (t.nodeId) {
      pinned.push({ task: t, constraints });
      continue;
    }
    const r = t.spec?.resources?.reservations;
    const cpu = r?.nanoCpus ?? 0;
    const mem = r?.memoryBytes ?? 0;
    const constraintsKey = constraints.map((c) => `${c.key}${c.op}${c.value.toLowerCase()}`).join('\u0000');
    const key = `${t.serviceId}\u0001${constraintsKey}\u0001${cpu}\u0001${mem}`;
    const group = groups.get(key);
    if (group) group.tasks.push(t);
    else groups.set(key, { serviceId: t.serviceId, constraintsKey, constraints, cpu, mem, hostPorts: portsOf(t), tasks: [t] });
  }

  for (const { task, constraints } of pinned) {
    const i = indexOf.get(task.nodeId);
    const r = task.spec?.resources?.reservations;
    const cpu = r?.nanoCpus ?? 0;
    const mem = r?.memoryBytes ?? 0;
    let why: Refusals | undefined;
    if (i === undefined) {
      unassigned.push({ taskId: task.id, message: `no suitable node (node ${task.nodeId} is not in the swarm)` });
      continue;
    }
    if (!available[i]) why = { notAvailable: 1, constraints: 0, resources: 0 };
    else if (!matchConstraints(nodes[i], constraints)) why = { notAvailable: 0, constraints: 1, resources: 0 };
    else if (!fits(i, cpu, mem)) why = { notAvailable: 0, constraints: 0, resources: 1 };
    else if (!portsFree(i, portsOf(task))) why = { notAvailable: 0, constraints: 0, resources: 0, ports: 1, port: portLabelOf(portsOf(task).find((p) => portsUsed[i].has(p))!) };
    if (why) unassigned.push({ taskId: task.id, message: explainRefusals(why, 1) });
    else place(i, task, cpu, mem);
  }

  // Nodes that pass the availability and constraint filters, per distinct set of constraints.
  const eligibleCache = new Map<string, Eligible>();
  const eligibleFor = (group: Group): Eligible => {
    const cached = eligibleCache.get(group.constraintsKey);
    if (cached) return cached;
    const list: number[] = [];
    let notAvailable = 0;
    let failed = 0;
    for (let i = 0; i < n; i++) {
      if (!available[i]) notAvailable++;
      else if (group.constraints.length > 0 && !matchConstraints(nodes[i], group.constraints)) failed++;
      else list.push(i);
    }
    const e = { nodes: Int32Array.from(list), notAvailable, constraints: failed };
    eligibleCache.set(group.constraintsKey, e);
    return e;
  };

  // The spread order, as a binary min-heap of node indexes; `mine` holds the group's service counts.
  const mine = new Int32Array(n);
  const heap = new Int32Array(n);
  let size = 0;
  const less = (a: number, b: number): boolean => mine[a] - mine[b] < 0 || (mine[a] === mine[b] && (total[a] < total[b] || (total[a] === total[b] && a < b)));
  const siftDown = (pos: number): void => {
    const item = heap[pos];
    for (;;) {
      let child = 2 * pos + 1;
      if (child >= size) break;
      if (child + 1 < size && less(heap[child + 1], heap[child])) child++;
      if (!less(heap[child], item)) break;
      heap[pos] = heap[child];
      pos = child;
    }
    heap[pos] = item;
  };

  for (const group of groups.values()) {
    const eligible = eligibleFor(group);
    const counts = serviceCounts(group.serviceId);
    for (const [i, c] of counts) mine[i] = c;
    size = eligible.nodes.length;
    heap.set(eligible.nodes);
    for (let pos = (size >> 1) - 1; pos >= 0; pos--) siftDown(pos);
    let tooFull = 0;
    let portsTaken = 0;
    let port: string | undefined;
    let message: string | undefined;
    for (const t of group.tasks) {
      // Neither frees up during a plan: a node dropped for one is dropped for the rest of the group.
      for (;;) {
        if (size === 0) break;
        if (!fits(heap[0], group.cpu, group.mem)) tooFull++;
        else if (!portsFree(heap[0], group.hostPorts)) {
          portsTaken++;
          port ??= portLabelOf(group.hostPorts.find((p) => portsUsed[heap[0]].has(p))!);
        } else break;
        heap[0] = heap[--size];
        siftDown(0);
      }
      if (size === 0) {
        message ??= explainRefusals({ notAvailable: eligible.notAvailable, constraints: eligible.constraints, resources: tooFull, ports: portsTaken, port }, n);
        unassigned.push({ taskId: t.id, message });
        continue;
      }
      const i = heap[0];
      mine[i]++;
      place(i, t, group.cpu, group.mem);
      siftDown(0);
    }
    for (const i of counts.keys()) mine[i] = 0;
  }
  return { assignments, unassigned };
}
