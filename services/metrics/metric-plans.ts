import { Node, NodeRole, NodeState, Task, TaskState } from '../gen/swarmlet/v1/types';

/** `TASK_STATE_RUNNING` -> `running`: how states and roles appear as label values and in events. */
export const enumLabel = (name: string | undefined): string => (name ?? 'unknown').replace(/^(TASK_STATE|NODE_STATE|NODE_ROLE|NODE_AVAILABILITY)_/, '').toLowerCase();

export const taskStateLabel = (state: TaskState | undefined) => enumLabel(TaskState[state ?? TaskState.TASK_STATE_NEW]);
export const nodeStateLabel = (state: NodeState | undefined) => enumLabel(NodeState[state ?? NodeState.NODE_STATE_UNKNOWN]);
export const nodeRoleLabel = (role: NodeRole | undefined) => enumLabel(NodeRole[role ?? NodeRole.NODE_ROLE_WORKER]);

export interface Count<L extends string> {
  labels: Record<L, string>;
  value: number;
}

export interface ClusterCounts {
  nodes: Count<'state' | 'role'>[];
  tasks: Count<'state'>[];
  serviceTasks: Count<'service' | 'state'>[];
}

/** What the cluster gauges say of a snapshot: nodes by state and role, tasks by state, and by service and state. */
export function planClusterCounts(nodes: readonly Node[], tasks: readonly Task[]): ClusterCounts {
  const count = <L extends string>(items: Record<L, string>[]): Count<L>[] => {
    const by = new Map<string, Count<L>>();
    for (const labels of items) {
      const key = JSON.stringify(labels);
      const c = by.get(key) ?? { labels, value: 0 };
      c.value += 1;
      by.set(key, c);
    }
    return [...by.values()];
  };
  return {
    nodes: count(nodes.map((n) => ({ state: nodeStateLabel(n.status?.state), role: nodeRoleLabel(n.role) }))),
    tasks: count(tasks.map((t) => ({ state: taskStateLabel(t.status?.state) }))),
    serviceTasks: count(tasks.map((t) => ({ service: t.serviceName, state: taskStateLabel(t.status?.state) }))),
  };
}
