import {
  Node,
  NodeAvailability,
  NodeState,
  RestartCondition,
  RestartPolicy,
  Service,
  ServiceSpec,
  Task,
  TaskState,
  UpdateState,
} from '../../services/gen/swarmlet/v1/types';
import { SwarmletError } from '../../services/common/errors';
import { OrchestratorPlan, planReplicated } from '../../manager/orchestrator/replicated';
import { planGlobal } from '../../manager/orchestrator/global';
import { byAge } from '../../manager/orchestrator/tasks';

const { TASK_STATE_NEW, TASK_STATE_PENDING, TASK_STATE_ASSIGNED, TASK_STATE_RUNNING, TASK_STATE_COMPLETE, TASK_STATE_SHUTDOWN, TASK_STATE_FAILED, TASK_STATE_REJECTED, TASK_STATE_ORPHANED } =
  TaskState;

const T0 = Date.parse('2025-01-01T00:00:00.000Z');
/** The time `s` seconds after T0. */
const at = (s: number) => new Date(T0 + s * 1000);
const iso = (s: number) => at(s).toISOString();

function node(id: string, o: { state?: NodeState; availability?: NodeAvailability; labels?: Record<string, string> } = {}): Node {
  return Node.fromPartial({
    id,
    spec: { availability: o.availability ?? NodeAvailability.NODE_AVAILABILITY_ACTIVE, labels: o.labels ?? {} },
    description: { hostname: `host-${id}` },
    status: { state: o.state ?? NodeState.NODE_STATE_READY },
  });
}

interface ServiceOptions {
  replicas?: number;
  global?: boolean;
  restart?: Partial<RestartPolicy>;
  constraints?: string[];
  specVersion?: number;
  command?: string;
}

function service(o: ServiceOptions = {}): Service {
  const spec: ServiceSpec = ServiceSpec.fromPartial({
    name: 'web',
    task: {
      container: { image: 'exec:/', command: [o.command ?? 'serve'] },
      restart: { condition: RestartCondition.RESTART_CONDITION_ANY, delayMs: 5000, maxAttempts: 0, windowMs: 0, ...o.restart },
      placement: { constraints: o.constraints ?? [] },
    },
  });
  spec.mode = o.global ? { $case: 'global', value: {} } : { $case: 'replicated', value: { replicas: o.replicas ?? 3 } };
  return Service.fromPartial({
    id: 'svc',
    spec,
    specVersion: o.specVersion ?? 1,
    updateStatus: { state: UpdateState.UPDATE_STATE_COMPLETED, startedAt: iso(-100), completedAt: iso(-100), message: 'created' },
  });
}

interface TaskOptions {
  slot?: number;
  node?: string;
  state?: TaskState;
  desired?: TaskState;
  version?: number;
  created?: number;
  ts?: number;
  updatedAt?: number;
}

/** A task of `svc` (its current spec unless a version is given). */
function task(svc: Service, id: string, o: TaskOptions = {}): Task {
  const created = o.created ?? -60;
  return Task.fromPartial({
    id,
    meta: { version: 1, createdAt: iso(created), updatedAt: iso(o.updatedAt ?? o.ts ?? created) },
    serviceId: svc.id,
    serviceName: 'web',
    slot: o.slot ?? 0,
    nodeId: o.node ?? '',
    spec: svc.spec!.task,
    specVersion: o.version ?? svc.specVersion,
    desiredState: o.desired ?? TASK_STATE_RUNNING,
    status: { state: o.state ?? TASK_STATE_RUNNING, timestamp: iso(o.ts ?? created), message: '' },
    createdAt: iso(created),
  });
}

function ids(prefix = 'new'): () => string {
  let n = 0;
  return () => `${prefix}-${++n}`;
}

const creates = (p: OrchestratorPlan) => p.actions.filter((a) => a.kind === 'create').map((a) => (a.kind === 'create' ? a.task : undefined!));
const shutdowns = (p: OrchestratorPlan) => p.actions.flatMap((a) => (a.kind === 'setDesired' ? [[a.taskId, a.message]] : []));
const deletes = (p: OrchestratorPlan) => p.actions.flatMap((a) => (a.kind === 'delete' ? [a.taskId] : []));

const threeNodes = () => [node('a'), node('b'), node('c')];

/** Three running replicas, one per node. */
function running3(svc: Service): Task[] {
  return [task(svc, 't1', { slot: 1, node: 'a' }), task(svc, 't2', { slot: 2, node: 'b' }), task(svc, 't3', { slot: 3, node: 'c' })];
}

describe('planReplicated: slots', () => {
  test('a new service gets one task per slot, made from the service', () => {
    const svc = service({ replicas: 3, specVersion: 4 });
    const plan = planReplicated({ service: svc, tasks: [], nodes: threeNodes(), now: at(0), newId: ids() });
    expect(plan.actions).toHaveLength(3);
    expect(creates(plan).map((t) => [t.id, t.slot])).toEqual([
      ['new-1', 1],
      ['new-2', 2],
      ['new-3', 3],
    ]);
    expect(creates(plan)[0]).toEqual({
      id: 'new-1',
      meta: undefined,
      serviceId: 'svc',
      serviceName: 'web',
      slot: 1,
      nodeId: '',
      spec: svc.spec!.task,
      specVersion: 4,
      desiredState: TASK_STATE_RUNNING,
      status: { state: TASK_STATE_NEW, timestamp: iso(0), message: 'created', err: '', container: undefined },
      createdAt: iso(0),
      networks: [],
    });
    expect(plan.wakeAt).toBeUndefined();
    expect(plan.updateStatus).toBeUndefined();
  });

  test('a converged service: nothing to do', () => {
    const svc = service();
    const plan = planReplicated({ service: svc, tasks: running3(svc), nodes: threeNodes(), now: at(0), newId: ids() });
    expect(plan).toEqual({ actions: [] });
  });

  test('tasks still on their way (new, pending, assigned) are left alone', () => {
    const svc = service();
    const tasks = [task(svc, 't1', { slot: 1, state: TASK_STATE_NEW }), task(svc, 't2', { slot: 2, state: TASK_STATE_PENDING }), task(svc, 't3', { slot: 3, node: 'c', state: TASK_STATE_ASSIGNED })];
    expect(planReplicated({ service: svc, tasks, nodes: threeNodes(), now: at(0), newId: ids() }).actions).toEqual([]);
  });

  test('scale up creates the missing slots and starts no update', () => {
    const svc = service({ replicas: 5 });
    const plan = planReplicated({ service: svc, tasks: running3(svc), nodes: threeNodes(), now: at(0), newId: ids() });
    expect(creates(plan).map((t) => t.slot)).toEqual([4, 5]);
    expect(shutdowns(plan)).toEqual([]);
    expect(plan.updateStatus).toBeUndefined();
  });

  test('scale down shuts down the highest slots, and forgets them once stopped', () => {
    const svc = service({ replicas: 1 });
    const plan = planReplicated({ service: svc, tasks: running3(svc), nodes: threeNodes(), now: at(0), newId: ids() });
    expect(shutdowns(plan)).toEqual([
      ['t2', 'scaled down'],
      ['t3', 'scaled down'],
    ]);
    expect(creates(plan)).toEqual([]);
    expect(plan.updateStatus).toBeUndefined();

    const stopped = [task(svc, 't1', { slot: 1, node: 'a' }), task(svc, 't2', { slot: 2, node: 'b', desired: TASK_STATE_SHUTDOWN, state: TASK_STATE_SHUTDOWN })];
    const still = task(svc, 't3', { slot: 3, node: 'c', desired: TASK_STATE_SHUTDOWN, state: TASK_STATE_RUNNING });
    const later = planReplicated({ service: svc, tasks: [...stopped, still], nodes: threeNodes(), now: at(1), newId: ids() });
    expect(later.actions).toEqual([{ kind: 'delete', taskId: 't2' }]);
  });

  test('scale to 0', () => {
    const svc = service({ replicas: 0 });
    const plan = planReplicated({ service: svc, tasks: running3(svc), nodes: threeNodes(), now: at(0), newId: ids() });
    expect(shutdowns(plan).map(([id]) => id)).toEqual(['t1', 't2', 't3']);
  });

  test('planReplicated refuses a global service; planGlobal places it on every node', () => {
    const svc = service({ global: true });
    expect(() => planReplicated({ service: svc, tasks: [], nodes: [], now: at(0), newId: ids() })).toThrow(SwarmletError);
    expect(creates(planGlobal({ service: svc, tasks: [], nodes: threeNodes(), now: at(0), newId: ids() })).map((t) => t.nodeId)).toEqual(['a', 'b', 'c']);
  });
});

describe('planReplicated: nodes', () => {
  test.each<[string, Node, string | undefined]>([
    ['down', node('b', { state: NodeState.NODE_STATE_DOWN }), 'node down'],
    ['drained', node('b', { availability: NodeAvailability.NODE_AVAILABILITY_DRAIN }), 'node drained'],
    ['removed', undefined!, 'node removed'],
    ['paused', node('b', { availability: NodeAvailability.NODE_AVAILABILITY_PAUSE }), undefined],
    ['of unknown state', node('b', { state: NodeState.NODE_STATE_UNKNOWN }), undefined],
  ])('a task on a node %s', (_what, b, message) => {
    const svc = service();
    const nodes = [node('a'), ...(b ? [b] : []), node('c')];
    const plan = planReplicated({ service: svc, tasks: running3(svc), nodes, now: at(0), newId: ids() });
    if (!message) {
      expect(plan.actions).toEqual([]);
      return;
    }
    expect(plan.actions).toEqual([
      { kind: 'setDesired', taskId: 't2', desired: TASK_STATE_SHUTDOWN, message },
      { kind: 'create', task: expect.objectContaining({ id: 'new-1', slot: 2, nodeId: '' }) },
    ]);
  });

  test('once replaced, the task on the down node is neither replaced again nor forgotten while it may still run', () => {
    const svc = service();
    const tasks = [
      ...running3(svc).filter((t) => t.id !== 't2'),
      task(svc, 't2', { slot: 2, node: 'b', desired: TASK_STATE_SHUTDOWN }),
      task(svc, 'r2', { slot: 2, node: 'c', created: -1 }),
    ];
    const nodes = [node('a'), node('b', { state: NodeState.NODE_STATE_DOWN }), node('c')];
    expect(planReplicated({ service: svc, tasks, nodes, now: at(0), newId: ids() }).actions).toEqual([]);
  });

  test('a dead task on a down node is restarted per the restart policy', () => {
    const svc = service({ restart: { delayMs: 0 } });
    const tasks = [...running3(svc).filter((t) => t.id !== 't2'), task(svc, 't2', { slot: 2, node: 'b', state: TASK_STATE_FAILED, ts: -1 })];
    const nodes = [node('a'), node('b', { state: NodeState.NODE_STATE_DOWN }), node('c')];
    const plan = planReplicated({ service: svc, tasks, nodes, now: at(0), newId: ids() });
    expect(shutdowns(plan)).toEqual([['t2', 'restarted as task new-1']]);
    expect(creates(plan).map((t) => t.slot)).toEqual([2]);
  });
});

describe('planReplicated: restart policy', () => {
  test.each<[RestartCondition, TaskState, boolean]>([
    [RestartCondition.RESTART_CONDITION_ANY, TASK_STATE_COMPLETE, true],
    [RestartCondition.RESTART_CONDITION_ANY, TASK_STATE_FAILED, true],
    [RestartCondition.RESTART_CONDITION_ANY, TASK_STATE_SHUTDOWN, true],
    [RestartCondition.RESTART_CONDITION_ON_FAILURE, TASK_STATE_COMPLETE, false],
    [RestartCondition.RESTART_CONDITION_ON_FAILURE, TASK_STATE_FAILED, true],
    [RestartCondition.RESTART_CONDITION_ON_FAILURE, TASK_STATE_REJECTED, true],
    [RestartCondition.RESTART_CONDITION_ON_FAILURE, TASK_STATE_ORPHANED, true],
    [RestartCondition.RESTART_CONDITION_NONE, TASK_STATE_FAILED, false],
    [RestartCondition.RESTART_CONDITION_NONE, TASK_STATE_COMPLETE, false],
  ])('condition %s, task ended %s: restarted %s', (condition, state, restarted) => {
    const svc = service({ replicas: 1, restart: { condition, delayMs: 0 } });
    const plan = planReplicated({ service: svc, tasks: [task(svc, 't1', { slot: 1, node: 'a', state, ts: -1 })], nodes: threeNodes(), now: at(0), newId: ids() });
    if (restarted) {
      expect(shutdowns(plan)).toEqual([['t1', 'restarted as task new-1']]);
      expect(creates(plan).map((t) => [t.slot, t.nodeId])).toEqual([[1, '']]);
    } else {
      expect(plan.actions).toEqual([]);
    }
  });

  test('the restart waits for the delay, counted from the end of the task', () => {
    const svc = service({ replicas: 1, restart: { delayMs: 5000 } });
    const tasks = [task(svc, 't1', { slot: 1, node: 'a', state: TASK_STATE_FAILED, ts: 10 })];
    const early = planReplicated({ service: svc, tasks, nodes: threeNodes(), now: at(12), newId: ids() });
    expect(early.actions).toEqual([]);
    expect(early.wakeAt).toEqual(at(15));
    const due = planReplicated({ service: svc, tasks, nodes: threeNodes(), now: at(15), newId: ids() });
    expect(shutdowns(due)).toEqual([['t1', 'restarted as task new-1']]);
    expect(creates(due)).toHaveLength(1);
    expect(due.wakeAt).toBeUndefined();
  });

  /** A slot whose task failed `failures` times at 10 s intervals ending at `lastAt`, each replaced. */
  function crashLoop(svc: Service, failures: number, lastAt: number, version = svc.specVersion): Task[] {
    return Array.from({ length: failures }, (_, i) => {
      const ts = lastAt - (failures - 1 - i) * 10;
      const last = i === failures - 1;
      return task(svc, `f${i + 1}`, { slot: 1, node: 'a', state: TASK_STATE_FAILED, ts, created: ts - 5, desired: last ? TASK_STATE_RUNNING : TASK_STATE_SHUTDOWN, version: last ? svc.specVersion : version });
    });
  }

  test.each<[string, Partial<RestartPolicy>, number, boolean]>([
    ['no limit', { maxAttempts: 0 }, 8, true],
    ['2 attempts, 1 made', { maxAttempts: 2 }, 2, true],
    ['2 attempts, 2 made', { maxAttempts: 2 }, 3, false],
    ['7 attempts (more than the history keeps), 7 made', { maxAttempts: 7 }, 8, false],
    ['2 attempts in 15 s, the older ones out of the window', { maxAttempts: 2, windowMs: 15000 }, 4, true],
    ['2 attempts in 60 s, all in the window', { maxAttempts: 2, windowMs: 60000 }, 4, false],
  ])('max attempts: %s', (_name, restart, failures, restarted) => {
    const svc = service({ replicas: 1, restart: { delayMs: 0, ...restart } });
    const plan = planReplicated({ service: svc, tasks: crashLoop(svc, failures, 100), nodes: threeNodes(), now: at(100), newId: ids() });
    expect(creates(plan)).toHaveLength(restarted ? 1 : 0);
  });

  test('attempts used up within a window: the plan wakes when the oldest leaves it', () => {
    const svc = service({ replicas: 1, restart: { delayMs: 0, maxAttempts: 2, windowMs: 60000 } });
    const plan = planReplicated({ service: svc, tasks: crashLoop(svc, 3, 100), nodes: threeNodes(), now: at(100), newId: ids() });
    expect(creates(plan)).toEqual([]);
    expect(plan.wakeAt).toEqual(at(80 + 60));
    expect(creates(planReplicated({ service: svc, tasks: crashLoop(svc, 3, 100), nodes: threeNodes(), now: at(140), newId: ids() }))).toHaveLength(1);
  });

  test('a new spec version starts the count afresh', () => {
    const svc = service({ replicas: 1, specVersion: 2, restart: { delayMs: 0, maxAttempts: 2 } });
    // two failures of version 1, then one of version 2
    const tasks = crashLoop(svc, 3, 100, 1);
    expect(creates(planReplicated({ service: svc, tasks, nodes: threeNodes(), now: at(100), newId: ids() }))).toHaveLength(1);
  });

  test('restarts of tasks killed by swarmlet do not count', () => {
    const svc = service({ replicas: 1, restart: { delayMs: 0, maxAttempts: 1 } });
    const tasks = [
      task(svc, 'old1', { slot: 1, node: 'a', state: TASK_STATE_SHUTDOWN, desired: TASK_STATE_SHUTDOWN, created: -50, ts: -40 }),
      task(svc, 'old2', { slot: 1, node: 'b', state: TASK_STATE_SHUTDOWN, desired: TASK_STATE_SHUTDOWN, created: -30, ts: -20 }),
      task(svc, 'cur', { slot: 1, node: 'c', state: TASK_STATE_FAILED, created: -10, ts: -1 }),
    ];
    expect(creates(planReplicated({ service: svc, tasks, nodes: threeNodes(), now: at(0), newId: ids() }))).toHaveLength(1);
  });
});

describe('planReplicated: task history', () => {
  function history(svc: Service, count: number): Task[] {
    return Array.from({ length: count }, (_, i) =>
      task(svc, `h${i + 1}`, { slot: 1, node: 'a', state: TASK_STATE_SHUTDOWN, desired: TASK_STATE_SHUTDOWN, created: -100 + i, ts: -100 + i }),
    );
  }

  test.each([
    [3, []],
    [5, []],
    [6, ['h1']],
    [8, ['h1', 'h2', 'h3']],
  ])('%i old tasks in a slot: deleted %j', (count, deleted) => {
    const svc = service({ replicas: 1 });
    const plan = planReplicated({ service: svc, tasks: [...history(svc, count), task(svc, 'cur', { slot: 1, node: 'a' })], nodes: threeNodes(), now: at(0), newId: ids() });
    expect(deletes(plan)).toEqual(deleted);
    expect(creates(plan)).toEqual([]);
  });

  test('a task told to stop but still running is kept until it reports, and does not count', () => {
    const svc = service({ replicas: 1 });
    const stopping = task(svc, 'stopping', { slot: 1, node: 'b', desired: TASK_STATE_SHUTDOWN, state: TASK_STATE_RUNNING, created: -200 });
    const plan = planReplicated({ service: svc, tasks: [stopping, ...history(svc, 6), task(svc, 'cur', { slot: 1, node: 'a' })], nodes: threeNodes(), now: at(0), newId: ids() });
    expect(deletes(plan)).toEqual(['h1']);
  });

  test('old tasks that never reached a node, or whose node is gone, are history', () => {
    const svc = service({ replicas: 1 });
    const tasks = [
      task(svc, 'never', { slot: 1, desired: TASK_STATE_SHUTDOWN, state: TASK_STATE_PENDING, created: -200 }),
      task(svc, 'lost', { slot: 1, node: 'gone', desired: TASK_STATE_SHUTDOWN, state: TASK_STATE_RUNNING, created: -150 }),
      ...history(svc, 5),
      task(svc, 'cur', { slot: 1, node: 'a' }),
    ];
    expect(deletes(planReplicated({ service: svc, tasks, nodes: threeNodes(), now: at(0), newId: ids() }))).toEqual(['never', 'lost']);
  });

  test('failures that count against max attempts are kept beyond the history limit', () => {
    const svc = service({ replicas: 1, restart: { delayMs: 0, maxAttempts: 7 } });
    const failed = Array.from({ length: 8 }, (_, i) =>
      task(svc, `f${i + 1}`, { slot: 1, node: 'a', state: TASK_STATE_FAILED, desired: TASK_STATE_SHUTDOWN, created: -100 + i, ts: -100 + i }),
    );
    const plan = planReplicated({ service: svc, tasks: [...failed, task(svc, 'cur', { slot: 1, node: 'a' })], nodes: threeNodes(), now: at(0), newId: ids() });
    expect(deletes(plan)).toEqual(['f1']);
  });
});

describe('planReplicated: replacing a task', () => {
  test('a replacement waits for the old task to stop on a node that can still stop it', () => {
    const svc = service({ replicas: 1 });
    const old = task(svc, 'old', { slot: 1, node: 'a', desired: TASK_STATE_SHUTDOWN, state: TASK_STATE_RUNNING, updatedAt: 0 });
    const waiting = planReplicated({ service: svc, tasks: [old], nodes: threeNodes(), now: at(10), newId: ids() });
    expect(waiting.actions).toEqual([]);
    expect(waiting.wakeAt).toEqual(at(60));
    // it never reports: after a minute the replacement goes ahead
    expect(creates(planReplicated({ service: svc, tasks: [old], nodes: threeNodes(), now: at(60), newId: ids() }))).toHaveLength(1);
    // on a down node there is nothing to wait for
    const nodes = [node('a', { state: NodeState.NODE_STATE_DOWN })];
    expect(creates(planReplicated({ service: svc, tasks: [old], nodes, now: at(10), newId: ids() }))).toHaveLength(1);
  });

  test('two live tasks in a slot: the older goes once the newer runs', () => {
    const svc = service({ replicas: 1 });
    const old = task(svc, 'old', { slot: 1, node: 'a', created: -100 });
    const starting = task(svc, 'new', { slot: 1, node: 'b', state: TASK_STATE_ASSIGNED, created: -5 });
    expect(planReplicated({ service: svc, tasks: [old, starting], nodes: threeNodes(), now: at(0), newId: ids() }).actions).toEqual([]);
    const runs = task(svc, 'new', { slot: 1, node: 'b', created: -5 });
    expect(planReplicated({ service: svc, tasks: [old, runs], nodes: threeNodes(), now: at(0), newId: ids() }).actions).toEqual([
      { kind: 'setDesired', taskId: 'old', desired: TASK_STATE_SHUTDOWN, message: 'replaced by task new' },
    ]);
  });
});

describe('planGlobal', () => {
  const svcG = (o: ServiceOptions = {}) => service({ global: true, ...o });

  test('one task per ready, active node, pinned to it', () => {
    const svc = svcG();
    const nodes = [node('a'), node('b'), node('c', { state: NodeState.NODE_STATE_DOWN }), node('d', { availability: NodeAvailability.NODE_AVAILABILITY_PAUSE })];
    const plan = planGlobal({ service: svc, tasks: [], nodes, now: at(0), newId: ids() });
    expect(creates(plan).map((t) => [t.nodeId, t.slot, t.desiredState])).toEqual([
      ['a', 0, TASK_STATE_RUNNING],
      ['b', 0, TASK_STATE_RUNNING],
    ]);
  });

  test('a node that joins gets a task', () => {
    const svc = svcG();
    const tasks = [task(svc, 'ga', { node: 'a' }), task(svc, 'gb', { node: 'b' })];
    const plan = planGlobal({ service: svc, tasks, nodes: [node('a'), node('b'), node('new')], now: at(0), newId: ids() });
    expect(plan.actions).toEqual([{ kind: 'create', task: expect.objectContaining({ nodeId: 'new', slot: 0 }) }]);
  });

  test.each<[string, Node | undefined, [string, string][]]>([
    ['drained', node('b', { availability: NodeAvailability.NODE_AVAILABILITY_DRAIN }), [['gb', 'node drained']]],
    ['removed', undefined, [['gb', 'node removed']]],
    ['down', node('b', { state: NodeState.NODE_STATE_DOWN }), []],
    ['paused', node('b', { availability: NodeAvailability.NODE_AVAILABILITY_PAUSE }), []],
    ['relabelled out of the constraints', node('b', { labels: { zone: 'y' } }), [['gb', 'node no longer satisfies the constraints']]],
  ])('node b %s', (_what, b, expected) => {
    const svc = svcG({ constraints: ['node.labels.zone!=y'] });
    const tasks = [task(svc, 'ga', { node: 'a' }), task(svc, 'gb', { node: 'b' })];
    const plan = planGlobal({ service: svc, tasks, nodes: [node('a'), ...(b ? [b] : [])], now: at(0), newId: ids() });
    expect(shutdowns(plan)).toEqual(expected);
    expect(creates(plan)).toEqual([]);
  });

  test('only nodes that satisfy the constraints get a task', () => {
    const svc = svcG({ constraints: ['node.labels.zone==x'] });
    const nodes = [node('a', { labels: { zone: 'x' } }), node('b'), node('c', { labels: { zone: 'x' } })];
    expect(creates(planGlobal({ service: svc, tasks: [], nodes, now: at(0), newId: ids() })).map((t) => t.nodeId)).toEqual(['a', 'c']);
  });

  test('a dead task restarts on its node after the delay; not on a paused node', () => {
    const svc = svcG({ restart: { delayMs: 2000 } });
    const tasks = [task(svc, 'ga', { node: 'a', state: TASK_STATE_FAILED, ts: 0 }), task(svc, 'gb', { node: 'b', state: TASK_STATE_FAILED, ts: 0 })];
    const nodes = [node('a'), node('b', { availability: NodeAvailability.NODE_AVAILABILITY_PAUSE })];
    const early = planGlobal({ service: svc, tasks, nodes, now: at(1), newId: ids() });
    expect(early.actions).toEqual([]);
    expect(early.wakeAt).toEqual(at(2));
    const due = planGlobal({ service: svc, tasks, nodes, now: at(2), newId: ids() });
    expect(shutdowns(due)).toEqual([['ga', 'restarted as task new-1']]);
    expect(creates(due).map((t) => t.nodeId)).toEqual(['a']);
  });

  test('a removed node: its tasks are told to stop, then forgotten', () => {
    const svc = svcG();
    const tasks = [task(svc, 'ga', { node: 'a' }), task(svc, 'gx', { node: 'x', desired: TASK_STATE_SHUTDOWN }), task(svc, 'gy', { node: 'y', desired: TASK_STATE_SHUTDOWN, state: TASK_STATE_SHUTDOWN })];
    expect(deletes(planGlobal({ service: svc, tasks, nodes: [node('a')], now: at(0), newId: ids() }))).toEqual(['gx', 'gy']);
  });

  test('a drained node keeps its history; a node back from drain gets a task again', () => {
    const svc = svcG();
    const old = Array.from({ length: 7 }, (_, i) => task(svc, `h${i + 1}`, { node: 'b', desired: TASK_STATE_SHUTDOWN, state: TASK_STATE_SHUTDOWN, created: -100 + i }));
    const drained = planGlobal({ service: svc, tasks: old, nodes: [node('b', { availability: NodeAvailability.NODE_AVAILABILITY_DRAIN })], now: at(0), newId: ids() });
    expect(drained.actions).toEqual([
      { kind: 'delete', taskId: 'h1' },
      { kind: 'delete', taskId: 'h2' },
    ]);
    const back = planGlobal({ service: svc, tasks: old.slice(2), nodes: [node('b')], now: at(0), newId: ids() });
    expect(creates(back).map((t) => t.nodeId)).toEqual(['b']);
  });
});

describe('byAge', () => {
  test('orders by creation time, canonical UTC text or not, then by id', () => {
    const at = (id: string, createdAt: string) => ({ id, createdAt }) as Task;
    const tasks = [at('d', '2026-12-05T08:00:00.000Z'), at('c', '2026-12-05T09:00:00+02:00'), at('b', '2026-12-05T08:00:00.000Z'), at('a', ''), at('e', '2026-12-05T07:30:00.000Z')];
    expect(tasks.sort(byAge).map((t) => t.id)).toEqual(['a', 'c', 'e', 'b', 'd']);
  });
});
