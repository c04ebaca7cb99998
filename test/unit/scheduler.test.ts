import { Node, NodeAvailability, NodeRole, NodeState, Task, TaskState } from '../../services/gen/swarmlet/v1/types';
import { matchConstraints } from '../../manager/orchestrator/constraints';
import { SchedulingPlan, planScheduling } from '../../manager/orchestrator/scheduler';

const GiB = 1024 ** 3;

interface NodeOptions {
  state?: NodeState;
  availability?: NodeAvailability;
  labels?: Record<string, string>;
  role?: NodeRole;
  cpus?: number;
  memory?: number;
}

function node(id: string, o: NodeOptions = {}): Node {
  const described = o.cpus !== undefined || o.memory !== undefined;
  return Node.fromPartial({
    id,
    role: o.role ?? NodeRole.NODE_ROLE_WORKER,
    spec: { desiredRole: o.role ?? NodeRole.NODE_ROLE_WORKER, availability: o.availability ?? NodeAvailability.NODE_AVAILABILITY_ACTIVE, labels: o.labels ?? {} },
    description: {
      hostname: `host-${id}`,
      os: 'linux',
      arch: 'x64',
      engineVersion: '0.1.0',
      resources: described ? { nanoCpus: (o.cpus ?? 0) * 1e9, memoryBytes: o.memory ?? 0 } : undefined,
    },
    status: { state: o.state ?? NodeState.NODE_STATE_READY },
  });
}

interface TaskOptions {
  nodeId?: string;
  state?: TaskState;
  desired?: TaskState;
  constraints?: string[];
  cpus?: number;
  memory?: number;
}

function task(id: string, serviceId: string, o: TaskOptions = {}): Task {
  return Task.fromPartial({
    id,
    serviceId,
    serviceName: serviceId,
    slot: 1,
    nodeId: o.nodeId ?? '',
    spec: {
      container: undefined,
      resources: { limits: undefined, reservations: { nanoCpus: (o.cpus ?? 0) * 1e9, memoryBytes: o.memory ?? 0 } },
      restart: undefined,
      placement: { constraints: o.constraints ?? [] },
      forceUpdate: 0,
    },
    specVersion: 1,
    desiredState: o.desired ?? TaskState.TASK_STATE_RUNNING,
    status: { state: o.state ?? (o.nodeId ? TaskState.TASK_STATE_RUNNING : TaskState.TASK_STATE_PENDING), timestamp: '', message: '', err: '', container: undefined },
    createdAt: '2025-01-01T00:00:00.000Z',
  });
}

const pendingOf = (serviceId: string, count: number, o: TaskOptions = {}, prefix = serviceId) =>
  Array.from({ length: count }, (_, i) => task(`${prefix}-${i + 1}`, serviceId, o));

function schedule(nodes: Node[], pending: Task[], running: Task[] = []): SchedulingPlan {
  return planScheduling({ nodes, tasks: [...running, ...pending], pending });
}

function perNode(plan: SchedulingPlan): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const a of plan.assignments) counts[a.nodeId] = (counts[a.nodeId] ?? 0) + 1;
  return counts;
}

describe('planScheduling: spread', () => {
  test('6 tasks on 3 nodes: 2 each', () => {
    const plan = schedule([node('a'), node('b'), node('c')], pendingOf('web', 6));
    expect(plan.unassigned).toEqual([]);
    expect(perNode(plan)).toEqual({ a: 2, b: 2, c: 2 });
    // one by one, counts updated as it goes: a, b, c, a, b, c
    expect(plan.assignments.map((a) => a.nodeId)).toEqual(['a', 'b', 'c', 'a', 'b', 'c']);
  });

  test('fewest tasks of the service first, then fewest tasks overall', () => {
    const running = [task('w1', 'web', { nodeId: 'a' }), task('o1', 'other', { nodeId: 'b' }), task('o2', 'other', { nodeId: 'b' })];
    const plan = schedule([node('a'), node('b'), node('c')], pendingOf('web', 3), running);
    // c has nothing; b has no web but 2 others; a has one web. Then all have one web: a and c
    // have one task each, b three; a before c by id.
    expect(plan.assignments.map((a) => a.nodeId)).toEqual(['c', 'b', 'a']);
  });

  test('tasks that stopped or were told to stop do not count', () => {
    const running = [
      task('x1', 'web', { nodeId: 'a', state: TaskState.TASK_STATE_FAILED }),
      task('x2', 'web', { nodeId: 'a', desired: TaskState.TASK_STATE_SHUTDOWN }),
      task('x3', 'web', { nodeId: 'b' }),
    ];
    const plan = schedule([node('a'), node('b')], pendingOf('web', 1), running);
    expect(plan.assignments).toEqual([{ taskId: 'web-1', nodeId: 'a' }]);
  });

  test('containers\' network attachments do not count against their node', () => {
    const attachment = (id: string) => ({ ...task(id, '', { nodeId: 'a', state: TaskState.TASK_STATE_ASSIGNED }), spec: { ...task(id, '').spec!, attachment: { containerId: id, containerName: id, aliases: [], ipv4Address: '' } } });
    const plan = schedule([node('a'), node('b')], pendingOf('web', 1), [attachment('c1'), attachment('c2'), task('o1', 'other', { nodeId: 'b' })]);
    expect(plan.assignments).toEqual([{ taskId: 'web-1', nodeId: 'a' }]);
  });

  test('the same input gives the same plan, whatever the order of the nodes', () => {
    const nodes = ['n3', 'n1', 'n5', 'n2', 'n4'].map((id) => node(id));
    const pending = [...pendingOf('a', 7), ...pendingOf('b', 4)];
    const first = schedule(nodes, pending);
    const again = schedule([...nodes].reverse(), pending);
    expect(again).toEqual(first);
    expect(first.assignments.slice(0, 5).map((a) => a.nodeId)).toEqual(['n1', 'n2', 'n3', 'n4', 'n5']);
  });
});

describe('planScheduling: filters', () => {
  test('drain, pause and down nodes take no new tasks', () => {
    const nodes = [
      node('a', { availability: NodeAvailability.NODE_AVAILABILITY_DRAIN }),
      node('b', { availability: NodeAvailability.NODE_AVAILABILITY_PAUSE }),
      node('c', { state: NodeState.NODE_STATE_DOWN }),
      node('d', { state: NodeState.NODE_STATE_UNKNOWN }),
      node('e'),
    ];
    const plan = schedule(nodes, pendingOf('web', 3));
    expect(perNode(plan)).toEqual({ e: 3 });
  });

  test('no available node: the message says so', () => {
    const nodes = [node('a', { availability: NodeAvailability.NODE_AVAILABILITY_DRAIN }), node('b', { state: NodeState.NODE_STATE_DOWN })];
    const plan = schedule(nodes, pendingOf('web', 1));
    expect(plan.unassigned).toEqual([{ taskId: 'web-1', message: 'no suitable node (2 nodes not available for new tasks)' }]);
  });

  test('no nodes at all', () => {
    expect(schedule([], pendingOf('web', 1)).unassigned).toEqual([{ taskId: 'web-1', message: 'no suitable node (no nodes in the swarm)' }]);
  });

  test('constraints restrict placement', () => {
    const nodes = [node('a', { labels: { zone: 'x' } }), node('b', { labels: { zone: 'y' } }), node('c', { labels: { zone: 'x' } }), node('m', { role: NodeRole.NODE_ROLE_MANAGER })];
    expect(perNode(schedule(nodes, pendingOf('web', 4, { constraints: ['node.labels.zone==x'] })))).toEqual({ a: 2, c: 2 });
    expect(perNode(schedule(nodes, pendingOf('web', 2, { constraints: ['node.role==manager'] })))).toEqual({ m: 2 });
    expect(perNode(schedule(nodes, pendingOf('web', 3, { constraints: ['node.labels.zone!=x', 'node.role==worker'] })))).toEqual({ b: 3 });
    expect(perNode(schedule(nodes, pendingOf('web', 1, { constraints: ['node.hostname==host-c'] })))).toEqual({ c: 1 });
  });

  test('unsatisfiable constraints: the message counts the nodes of each reason, most first', () => {
    const nodes = [node('a'), node('b'), node('c'), node('d', { availability: NodeAvailability.NODE_AVAILABILITY_PAUSE })];
    const plan = schedule(nodes, pendingOf('web', 2, { constraints: ['node.labels.gpu==yes'] }));
    expect(plan.assignments).toEqual([]);
    expect(plan.unassigned).toEqual([
      { taskId: 'web-1', message: 'no suitable node (scheduling constraints not satisfied on 3 nodes; 1 node not available for new tasks)' },
      { taskId: 'web-2', message: 'no suitable node (scheduling constraints not satisfied on 3 nodes; 1 node not available for new tasks)' },
    ]);
  });

  test('reservations fill nodes, then the rest waits with a message', () => {
    const nodes = [node('a', { cpus: 2, memory: 4 * GiB }), node('b', { cpus: 2, memory: 4 * GiB })];
    const plan = schedule(nodes, pendingOf('web', 5, { cpus: 1, memory: GiB }));
    expect(perNode(plan)).toEqual({ a: 2, b: 2 });
    expect(plan.unassigned).toEqual([{ taskId: 'web-5', message: 'no suitable node (insufficient resources on 2 nodes)' }]);
  });

  test('reservations of tasks already running count; memory alone can be what is short', () => {
    const nodes = [node('a', { cpus: 8, memory: 2 * GiB }), node('b', { cpus: 8, memory: 2 * GiB }), node('c', { availability: NodeAvailability.NODE_AVAILABILITY_DRAIN })];
    const running = [task('r1', 'db', { nodeId: 'a', memory: 2 * GiB }), task('r2', 'db', { nodeId: 'b', memory: GiB })];
    const plan = schedule(nodes, pendingOf('web', 2, { memory: GiB }), running);
    expect(plan.assignments).toEqual([{ taskId: 'web-1', nodeId: 'b' }]);
    expect(plan.unassigned).toEqual([{ taskId: 'web-2', message: 'no suitable node (insufficient resources on 2 nodes; 1 node not available for new tasks)' }]);
  });

  test('a node that describes no resources is unlimited; a task that reserves nothing fits anywhere', () => {
    const nodes = [node('a'), node('b', { cpus: 1, memory: GiB })];
    expect(perNode(schedule(nodes, pendingOf('big', 4, { cpus: 4, memory: 64 * GiB })))).toEqual({ a: 4 });
    const full = [task('r', 'db', { nodeId: 'b', cpus: 1, memory: GiB })];
    expect(perNode(schedule([node('b', { cpus: 1, memory: GiB })], pendingOf('tiny', 2), full))).toEqual({ b: 2 });
  });
});

describe('planScheduling: pinned (global) tasks', () => {
  test('a task with a node is only checked against that node', () => {
    const nodes = [node('a'), node('b', { availability: NodeAvailability.NODE_AVAILABILITY_PAUSE }), node('c', { cpus: 1, memory: GiB })];
    const pending = [
      task('g-a', 'g', { nodeId: 'a', state: TaskState.TASK_STATE_PENDING }),
      task('g-b', 'g', { nodeId: 'b', state: TaskState.TASK_STATE_PENDING }),
      task('g-c', 'g', { nodeId: 'c', state: TaskState.TASK_STATE_PENDING, cpus: 2 }),
      task('g-z', 'g', { nodeId: 'z', state: TaskState.TASK_STATE_PENDING }),
    ];
    const plan = schedule(nodes, pending);
    expect(plan.assignments).toEqual([{ taskId: 'g-a', nodeId: 'a' }]);
    expect(plan.unassigned).toEqual([
      { taskId: 'g-b', message: 'no suitable node (1 node not available for new tasks)' },
      { taskId: 'g-c', message: 'no suitable node (insufficient resources on 1 node)' },
      { taskId: 'g-z', message: 'no suitable node (node z is not in the swarm)' },
    ]);
  });

  test('a pinned task checks its own constraints; its own reservation is not counted twice', () => {
    const nodes = [node('a', { cpus: 1, labels: { zone: 'x' } })];
    const pending = [task('g-a', 'g', { nodeId: 'a', state: TaskState.TASK_STATE_PENDING, cpus: 1 })];
    expect(schedule(nodes, pending).assignments).toEqual([{ taskId: 'g-a', nodeId: 'a' }]);
    const constrained = [task('h-a', 'h', { nodeId: 'a', state: TaskState.TASK_STATE_PENDING, constraints: ['node.labels.zone==y'] })];
    expect(schedule(nodes, constrained).unassigned).toEqual([{ taskId: 'h-a', message: 'no suitable node (scheduling constraints not satisfied on 1 node)' }]);
  });

  test('pinned tasks go first and their reservations count for the others', () => {
    const nodes = [node('a', { cpus: 2 }), node('b', { cpus: 2 })];
    const pending = [...pendingOf('web', 2, { cpus: 2 }), task('g-a', 'g', { nodeId: 'a', state: TaskState.TASK_STATE_PENDING, cpus: 1 })];
    const plan = schedule(nodes, pending);
    expect(plan.assignments).toEqual([
      { taskId: 'g-a', nodeId: 'a' },
      { taskId: 'web-1', nodeId: 'b' },
    ]);
    expect(plan.unassigned.map((u) => u.taskId)).toEqual(['web-2']);
  });
});

/** The obvious scan of every node for every task: the reference the fast plan must agree with. */
function naive(nodes: Node[], running: Task[], pending: Task[]): { taskId: string; nodeId: string }[] {
  const ok = (n: Node) => n.status?.state === NodeState.NODE_STATE_READY && n.spec?.availability === NodeAvailability.NODE_AVAILABILITY_ACTIVE;
  const used = new Map(nodes.map((n) => [n.id, { cpu: 0, mem: 0, total: 0, per: new Map<string, number>() }]));
  const add = (t: Task, nodeId: string) => {
    const u = used.get(nodeId)!;
    u.cpu += t.spec?.resources?.reservations?.nanoCpus ?? 0;
    u.mem += t.spec?.resources?.reservations?.memoryBytes ?? 0;
    u.total++;
    u.per.set(t.serviceId, (u.per.get(t.serviceId) ?? 0) + 1);
  };
  for (const t of running) if (used.has(t.nodeId)) add(t, t.nodeId);
  const out: { taskId: string; nodeId: string }[] = [];
  for (const t of pending) {
    let best: Node | undefined;
    for (const n of nodes) {
      if (!ok(n) || !matchConstraints(n, t.spec?.placement?.constraints ?? [])) continue;
      const u = used.get(n.id)!;
      const r = t.spec?.resources?.reservations;
      const cap = n.description?.resources;
      if ((r?.nanoCpus ?? 0) > 0 && cap?.nanoCpus && u.cpu + r!.nanoCpus > cap.nanoCpus) continue;
      if ((r?.memoryBytes ?? 0) > 0 && cap?.memoryBytes && u.mem + r!.memoryBytes > cap.memoryBytes) continue;
      if (best) {
        const b = used.get(best.id)!;
        const key = [u.per.get(t.serviceId) ?? 0, u.total];
        const bestKey = [b.per.get(t.serviceId) ?? 0, b.total];
        if (key[0] > bestKey[0] || (key[0] === bestKey[0] && (key[1] > bestKey[1] || (key[1] === bestKey[1] && n.id > best.id)))) continue;
      }
      best = n;
    }
    if (best) {
      add(t, best.id);
      out.push({ taskId: t.id, nodeId: best.id });
    }
  }
  return out;
}

test('planScheduling agrees with a scan of every node for every task (random clusters)', () => {
  let seed = 42;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const pick = <T>(xs: T[]) => xs[Math.floor(random() * xs.length)];
  for (let round = 0; round < 20; round++) {
    const nodes = Array.from({ length: 3 + Math.floor(random() * 30) }, (_, i) =>
      node(`n${String(Math.floor(random() * 1000)).padStart(3, '0')}-${i}`, {
        availability: pick([NodeAvailability.NODE_AVAILABILITY_ACTIVE, NodeAvailability.NODE_AVAILABILITY_ACTIVE, NodeAvailability.NODE_AVAILABILITY_PAUSE]),
        labels: { zone: pick(['x', 'y', 'z']) },
        cpus: pick([undefined, 2, 4, 8]),
        memory: pick([undefined, 4 * GiB, 16 * GiB]),
      }),
    );
    const running = Array.from({ length: Math.floor(random() * 40) }, (_, i) =>
      task(`r${i}`, pick(['s0', 's1', 's2']), { nodeId: pick(nodes).id, cpus: pick([0, 1]), memory: pick([0, GiB]) }),
    );
    // Services come one after the other, as the orchestrator creates them.
    const pending = ['s0', 's1', 's2', 's3'].flatMap((s) =>
      pendingOf(s, Math.floor(random() * 40), { constraints: pick([[], [], ['node.labels.zone!=z'], ['node.labels.zone==x']]), cpus: pick([0, 0.5, 1]), memory: pick([0, GiB]) }),
    );
    const plan = schedule(nodes, pending, running);
    expect(plan.assignments).toEqual(naive([...nodes].sort((a, b) => (a.id < b.id ? -1 : 1)), running, pending));
    expect(plan.assignments.length + plan.unassigned.length).toBe(pending.length);
  }
});
