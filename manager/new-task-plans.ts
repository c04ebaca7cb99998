/**
 * What a task the orchestrator makes looks like when it is first written: allocated (its
 * addresses, as the allocator gives them) and placed (its node, as the scheduler picks it), so
 * that a new task costs one write, not three. Pure.
 *
 * The allocator and scheduler loops still take what this leaves behind: a task that cannot get
 * its addresses is written NEW with the reason, one no node fits PENDING with the scheduler's
 * reason, and those loops try them again when something changes.
 */
import { Network, Node, Service, Task, TaskState } from '../services/gen/swarmlet/v1/types';
import { planAllocation } from './network-plans';
import { planScheduling } from './orchestrator/scheduler';

export interface NewTaskInput {
  /** The tasks the orchestrator makes (state NEW). */
  created: Task[];
  /** Every other task, as the pass leaves them (retired ones with their new desired state, deleted ones gone). */
  tasks: Task[];
  networks: Network[];
  services: Service[];
  nodes: Node[];
  /** Addresses held by services' VIPs and nodes' ingress endpoints (planEndpointAllocation's `reserved`). */
  reserved: { networkId: string; address: string }[];
  now: Date;
}

const PENDING = TaskState.TASK_STATE_PENDING;
const waitsForNode = (t: Task) => t.status?.state === PENDING && t.desiredState <= TaskState.TASK_STATE_RUNNING;

/** The created tasks as they are to be written: ASSIGNED to a node, or PENDING / NEW with why not, in the order given. */
export function planNewTasks(input: NewTaskInput): Task[] {
  if (input.created.length === 0) return [];
  const at = input.now.toISOString();
  const ids = new Set(input.created.map((t) => t.id));
  const byId = new Map(input.created.map((t) => [t.id, t]));
  // Every other task is in the allocation too: its addresses are taken, and one still waiting for addresses (older) goes first.
  const allocation = planAllocation([...input.tasks, ...input.created], input.networks, input.now, { services: input.services, reserved: input.reserved });
  for (const c of allocation.changes) if (ids.has(c.after.id)) byId.set(c.after.id, c.after);
  const allocated = [...byId.values()];
  const pending = allocated.filter(waitsForNode);
  if (pending.length) {
    // Tasks already waiting for a node go first, as the scheduler would take them; their own writes stay the scheduler's.
    const waiting = input.tasks.filter(waitsForNode);
    const plan = planScheduling({ nodes: input.nodes, tasks: [...input.tasks, ...allocated], pending: [...waiting, ...pending], services: input.services });
    for (const a of plan.assignments) {
      const t = ids.has(a.taskId) ? byId.get(a.taskId) : undefined;
      if (t) byId.set(t.id, { ...t, nodeId: a.nodeId, status: { ...t.status!, state: TaskState.TASK_STATE_ASSIGNED, message: 'assigned', timestamp: at } });
    }
    for (const u of plan.unassigned) {
      const t = ids.has(u.taskId) ? byId.get(u.taskId) : undefined;
      if (t) byId.set(t.id, { ...t, status: { ...t.status!, message: u.message, timestamp: at } });
    }
  }
  return input.created.map((t) => byId.get(t.id)!);
}
