import { Network, Node, NodeAvailability, NodeRole, NodeState, Task, TaskState } from '../../services/gen/swarmlet/v1/types';
import { planNewTasks } from '../../manager/new-task-plans';

const { TASK_STATE_NEW, TASK_STATE_PENDING, TASK_STATE_ASSIGNED } = TaskState;
const now = new Date('2025-01-01T01:00:00.000Z');
const at = now.toISOString();

function node(id: string, cpus: number): Node {
  return Node.fromPartial({
    id,
    role: NodeRole.NODE_ROLE_WORKER,
    spec: { desiredRole: NodeRole.NODE_ROLE_WORKER, availability: NodeAvailability.NODE_AVAILABILITY_ACTIVE, labels: {} },
    description: { hostname: `host-${id}`, os: 'linux', arch: 'x64', engineVersion: '0.1.0', resources: { nanoCpus: cpus * 1e9, memoryBytes: 0 } },
    status: { state: NodeState.NODE_STATE_READY },
  });
}

/** A task of service `svc` asking for one CPU: NEW as the orchestrator makes it, or as given. */
function task(id: string, o: { state?: TaskState; networks?: string[]; created?: number } = {}): Task {
  return Task.fromPartial({
    id,
    serviceId: 'svc',
    serviceName: 'svc',
    slot: 1,
    spec: { resources: { reservations: { nanoCpus: 1e9, memoryBytes: 0 } }, networks: o.networks ?? [] },
    specVersion: 1,
    desiredState: TaskState.TASK_STATE_RUNNING,
    status: { state: o.state ?? TASK_STATE_NEW, timestamp: '', message: 'created', err: '' },
    createdAt: new Date(Date.UTC(2025, 0, 1, 0, 0, o.created ?? 30)).toISOString(),
  });
}

const input = { networks: [] as Network[], services: [], reserved: [], now };

describe('planNewTasks', () => {
  test('new tasks come out allocated and ASSIGNED, spread over the nodes, in the order given', () => {
    const placed = planNewTasks({ ...input, created: [task('a'), task('b')], tasks: [], nodes: [node('n1', 4), node('n2', 4)] });
    expect(placed.map((t) => [t.id, t.nodeId, t.status?.state, t.status?.message, t.status?.timestamp])).toEqual([
      ['a', 'n1', TASK_STATE_ASSIGNED, 'assigned', at],
      ['b', 'n2', TASK_STATE_ASSIGNED, 'assigned', at],
    ]);
  });

  test('a task already waiting for a node goes first: the new one is PENDING with the reason', () => {
    const waiting = task('old', { state: TASK_STATE_PENDING, created: 1 });
    const [placed] = planNewTasks({ ...input, created: [task('new')], tasks: [waiting], nodes: [node('n1', 1)] });
    expect([placed?.nodeId, placed?.status?.state, placed?.status?.message]).toEqual(['', TASK_STATE_PENDING, 'no suitable node (insufficient resources on 1 node)']);
  });

  test('a task that cannot get its addresses stays NEW with the reason, and no node', () => {
    const [placed] = planNewTasks({ ...input, created: [task('t', { networks: ['later'] })], tasks: [], nodes: [node('n1', 4)] });
    expect([placed?.nodeId, placed?.status?.state, placed?.status?.message]).toEqual(['', TASK_STATE_NEW, 'network later not found']);
  });

  test('nothing created, nothing planned', () => {
    expect(planNewTasks({ ...input, created: [], tasks: [task('x', { state: TASK_STATE_PENDING })], nodes: [node('n1', 4)] })).toEqual([]);
  });
});
