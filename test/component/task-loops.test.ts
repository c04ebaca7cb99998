/** The leader's loops as components: real loops and plans over the in-memory store, no etcd. */
import pino from 'pino';
import { SwarmletError } from '../../services/common/errors';
import { Network, Node, NodeAvailability, NodeRole, NodeState, RestartCondition, Service, ServiceSpec, Task, TaskState } from '../../services/gen/swarmlet/v1/types';
import { nodeHealthLoop } from '../../manager/node-health';
import { ReconcileLoop } from '../../services/common/reconcile-loop';
import { MemoryStore } from '../../manager/store/memory-store';
import { allocatorLoop, orchestratorLoop, schedulerLoop } from '../../manager/task-loops';

const log = pino({ level: 'silent' });

function node(id: string): Node {
  return Node.fromPartial({
    id,
    role: NodeRole.NODE_ROLE_WORKER,
    spec: { desiredRole: NodeRole.NODE_ROLE_WORKER, availability: NodeAvailability.NODE_AVAILABILITY_ACTIVE, labels: {} },
    description: { hostname: `host-${id}`, os: 'linux', arch: 'x64', engineVersion: '0.1.0', interfaces: [] },
    status: { state: NodeState.NODE_STATE_READY, message: '', addr: '198.51.100.10', updatedAt: '', apiAddr: '' },
  });
}

function service(id: string, replicas: number): Service {
  const spec = ServiceSpec.fromPartial({ name: id, task: { container: { image: 'exec:/', command: ['serve'] }, restart: { condition: RestartCondition.RESTART_CONDITION_ANY, delayMs: 5000 } } });
  spec.mode = { $case: 'replicated', value: { replicas } };
  return Service.fromPartial({ id, spec, specVersion: 1 });
}

/** Polls `check` until it holds; fails (with what it last saw) after many tries. */
async function eventually<T>(read: () => Promise<T>, check: (t: T) => boolean): Promise<T> {
  let last: T | undefined;
  for (let i = 0; i < 500; i++) {
    last = await read();
    if (check(last)) return last;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`never held; last saw ${JSON.stringify(last)}`);
}

let loops: ReconcileLoop[] = [];
afterEach(async () => {
  await Promise.all(loops.map((l) => l.stop()));
  loops = [];
});

test('orchestrator, allocator and scheduler take a service from nothing to tasks assigned over the ready nodes', async () => {
  const store = new MemoryStore();
  await store.createNode(node('n1'));
  await store.createNode(node('n2'));
  await store.createService(service('web', 4));
  loops = [orchestratorLoop(store, log), allocatorLoop(store, log), schedulerLoop(store, log)];
  for (const l of loops) l.start();

  const tasks = await eventually(() => store.listTasks(), (ts) => ts.length === 4 && ts.every((t) => t.status?.state === TaskState.TASK_STATE_ASSIGNED));
  const perNode = new Map<string, number>();
  for (const t of tasks) perNode.set(t.nodeId, (perNode.get(t.nodeId) ?? 0) + 1);
  expect(Object.fromEntries(perNode)).toEqual({ n1: 2, n2: 2 });
  expect(new Set(tasks.map((t) => t.slot))).toEqual(new Set([1, 2, 3, 4]));

  // A pass with nothing to do writes nothing.
  const before = { ...store.writes };
  for (const l of loops) l.poke();
  await new Promise((r) => setTimeout(r, 200));
  expect(store.writes).toEqual(before);
});

describe('the orchestrator writes a new task once, allocated and placed', () => {
  const puts = (store: MemoryStore) => store.writes.puts;
  const quiet = () => new Promise((r) => setTimeout(r, 200));

  test('its tasks are ASSIGNED in their first write, spread over the ready nodes', async () => {
    const store = new MemoryStore();
    await store.createNode(node('n1'));
    await store.createNode(node('n2'));
    await store.createService(service('web', 4));
    const before = puts(store);
    loops = [orchestratorLoop(store, log)];
    loops[0].start();
    const tasks = await eventually(() => store.listTasks(), (ts) => ts.length === 4);
    await quiet();
    expect(tasks.map((t) => [t.status?.state, t.status?.message])).toEqual(Array(4).fill([TaskState.TASK_STATE_ASSIGNED, 'assigned']));
    expect(tasks.filter((t) => t.nodeId === 'n1')).toHaveLength(2);
    expect(puts(store) - before).toBe(4);
  });

  test('a task no node fits is written PENDING with the reason, and the scheduler places it once a node fits', async () => {
    const store = new MemoryStore();
    await store.createNode(node('n1'));
    const svc = service('web', 2);
    svc.spec!.task!.placement = { constraints: ['node.hostname==host-n2'] };
    await store.createService(svc);
    const before = puts(store);
    loops = [orchestratorLoop(store, log), schedulerLoop(store, log)];
    for (const l of loops) l.start();
    const tasks = await eventually(() => store.listTasks(), (ts) => ts.length === 2);
    await quiet();
    expect(tasks.map((t) => [t.status?.state, t.status?.message])).toEqual(Array(2).fill([TaskState.TASK_STATE_PENDING, 'no suitable node (scheduling constraints not satisfied on 1 node)']));
    expect(puts(store) - before).toBe(2);
    await store.createNode(node('n2'));
    const placed = await eventually(() => store.listTasks(), (ts) => ts.every((t) => t.status?.state === TaskState.TASK_STATE_ASSIGNED));
    expect(placed.map((t) => t.nodeId)).toEqual(['n2', 'n2']);
  });

  test('tasks a full subnet cannot address are written NEW with the reason; the others get distinct addresses', async () => {
    const store = new MemoryStore();
    await store.createNode(node('n1'));
    // A /29: the gateway, the service's VIP and four task addresses.
    await store.createNetwork(Network.fromPartial({ id: 'small1', spec: { name: 'small', driver: 'overlay', labels: {}, options: {} }, vni: 4100, subnet: '10.9.0.0/29', gateway: '10.9.0.1' }));
    const svc = service('web', 6);
    svc.spec!.task!.networks = ['small'];
    await store.createService(svc);
    const before = puts(store);
    loops = [orchestratorLoop(store, log)];
    loops[0].start();
    const tasks = await eventually(() => store.listTasks(), (ts) => ts.length === 6);
    await quiet();
    expect(puts(store) - before).toBe(6);
    const assigned = tasks.filter((t) => t.status?.state === TaskState.TASK_STATE_ASSIGNED);
    const waiting = tasks.filter((t) => t.status?.state === TaskState.TASK_STATE_NEW);
    expect([assigned.length, waiting.length]).toEqual([4, 2]);
    const addresses = assigned.map((t) => t.networks[0]?.address);
    expect(new Set(addresses).size).toBe(4);
    expect(addresses.every((a) => /^10\.9\.0\.[3-6]\/29$/.test(a ?? ''))).toBe(true); // .2 is the VIP's
    for (const t of waiting) expect(t.status?.message).toMatch(/^network small: no free address in 10\.9\.0\.0\/29/);
  });
});

test('node-health marks a heartbeating node ready, and down when its heartbeat stops', async () => {
  const store = new MemoryStore();
  await store.createNode(Node.fromPartial({ ...node('n1'), status: { state: NodeState.NODE_STATE_UNKNOWN, message: '', addr: '198.51.100.10', updatedAt: '', apiAddr: '' } }));
  store.setHeartbeat('n1', true);
  loops = [nodeHealthLoop(store, log)];
  loops[0].start();
  await eventually(() => store.getNode('n1'), (n) => n?.status?.state === NodeState.NODE_STATE_READY);
  store.setHeartbeat('n1', false);
  await eventually(() => store.getNode('n1'), (n) => n?.status?.state === NodeState.NODE_STATE_DOWN);
});

describe('MemoryStore keeps the store rules', () => {
  const task = (id: string) => Task.fromPartial({ id, serviceId: 'svc', slot: 1, desiredState: TaskState.TASK_STATE_RUNNING, status: { state: TaskState.TASK_STATE_NEW, message: '', timestamp: '' } });

  test('creates are create-if-absent; versions are the revision of the last write', async () => {
    const store = new MemoryStore();
    await store.createTasks([task('a'), task('b')]);
    const [a, b] = await store.listTasks();
    expect(a.meta?.version).toBe(b.meta?.version);
    await expect(store.createTasks([task('c'), task('a')])).rejects.toMatchObject({ kind: 'Conflict' });
    expect((await store.listTasks()).map((t) => t.id)).toEqual(['a', 'b']);
  });

  test('a stale update is lost and writes nothing; a task never moves backwards', async () => {
    const store = new MemoryStore();
    await store.createTasks([task('a')]);
    const a = (await store.getTask('a'))!;
    const pending = { ...a, status: { ...a.status!, state: TaskState.TASK_STATE_PENDING } };
    expect(await store.updateTasks([{ before: a, after: pending }])).toEqual([]);
    const lost = await store.updateTasks([{ before: a, after: { ...a, desiredState: TaskState.TASK_STATE_SHUTDOWN } }]);
    expect(lost.map((t) => t.id)).toEqual(['a']);
    expect((await store.getTask('a'))!.desiredState).toBe(TaskState.TASK_STATE_RUNNING);
    const now = (await store.getTask('a'))!;
    const err = await store.updateTasks([{ before: now, after: { ...now, status: { ...now.status!, state: TaskState.TASK_STATE_NEW } } }]).catch((e) => e);
    expect(err).toBeInstanceOf(SwarmletError);
    expect(err.kind).toBe('Conflict');
  });

  test('watch listeners hear of changes under their prefixes only', async () => {
    const store = new MemoryStore();
    let heard = 0;
    const unwatch = await store.watchPrefixes(['/swarmlet/v1/tasks/'], () => heard++);
    await store.createNode(node('n1'));
    await new Promise((r) => setTimeout(r, 0));
    expect(heard).toBe(0);
    await store.createTasks([task('a')]);
    await new Promise((r) => setTimeout(r, 0));
    expect(heard).toBe(1);
    await unwatch();
  });
});

describe('an orchestrator pass plans the services a change concerns', () => {
  /** A debug logger, and the orchestrator's lines of its passes as it writes them. */
  function passLog(): { passes: { planned: number; created: number }[]; log: pino.Logger } {
    const passes: { planned: number; created: number }[] = [];
    const log = pino({ level: 'debug' }, {
      write: (line: string) => {
        const l = JSON.parse(line) as { msg: string; planned: number; created: number };
        if (l.msg === 'orchestrator pass') passes.push(l);
      },
    });
    return { passes, log };
  }

  test('a task that changes replans its own service alone; a node that goes down replans them all and its tasks are replaced', async () => {
    const store = new MemoryStore();
    await store.createNode(node('n1'));
    await store.createNode(node('n2'));
    for (const id of ['a', 'b', 'c']) await store.createService(service(id, 2));
    const { passes, log: debugLog } = passLog();
    loops = [orchestratorLoop(store, debugLog)];
    loops[0].start();
    await eventually(() => store.listTasks(), (ts) => ts.length === 6);
    // The pass after the one that created them: every service planned again (its tasks changed), nothing to do.
    await eventually(async () => passes.at(-1), (p) => p?.planned === 3 && p.created === 0);

    const [a1] = (await store.listTasks()).filter((t) => t.serviceId === 'a');
    const seen = passes.length;
    await store.mutateTask(a1.id, (t) => ({ ...t, status: { ...t.status!, state: TaskState.TASK_STATE_RUNNING, message: 'started' } }));
    const after = await eventually(async () => passes.slice(seen), (ps) => ps.length > 0);
    expect(after[0].planned).toBe(1);

    const onN1 = (await store.listTasks()).filter((t) => t.nodeId === 'n1');
    expect(onN1).toHaveLength(3);
    const beforeDown = passes.length;
    await store.updateNode({ ...(await store.getNode('n1'))!, status: { ...(await store.getNode('n1'))!.status!, state: NodeState.NODE_STATE_DOWN } });
    const replaced = await eventually(() => store.listTasks(), (ts) => ts.filter((t) => t.desiredState === TaskState.TASK_STATE_RUNNING && t.nodeId === 'n2').length === 6);
    expect(replaced.filter((t) => onN1.some((o) => o.id === t.id)).map((t) => t.desiredState)).toEqual(Array(3).fill(TaskState.TASK_STATE_SHUTDOWN));
    expect(passes.slice(beforeDown).some((p) => p.planned === 3)).toBe(true);
  });
});
