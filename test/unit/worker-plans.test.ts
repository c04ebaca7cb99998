import { SwarmletError } from '../../services/common/errors';
import { HealthConfig, Task, TaskState, TaskStatus } from '../../services/gen/swarmlet/v1/types';
import { RuntimeTaskState } from '../../agent/runtime/runtime';
import {
  HEALTH_START,
  HealthProgress,
  TaskView,
  WorkerAction,
  formatBytes,
  nextHealth,
  planHealthCheck,
  planTask,
  planWorker,
} from '../../agent/worker-plans';

const NOW = '2025-01-02T03:04:05.000Z';
const S = TaskState;
const ctx = { assignedOnce: true, now: NOW };
type PlanOptions = Partial<typeof ctx>;

interface TaskOptions {
  desired?: TaskState;
  managerState?: TaskState;
  grace?: number;
  memory?: number;
}

function task(o: TaskOptions = {}): Task {
  return {
    id: 't1',
    serviceId: 's1',
    serviceName: 'web',
    slot: 1,
    nodeId: 'n1',
    specVersion: 1,
    desiredState: o.desired ?? S.TASK_STATE_RUNNING,
    createdAt: '',
    status: { state: o.managerState ?? S.TASK_STATE_ASSIGNED, timestamp: '', message: '', err: '' },
    spec: {
      networkAliases: [],
      container: { image: 'exec:/', command: ['sleep', '100'], args: [], env: [], dir: '', user: '', hostname: '', stopGracePeriodMs: o.grace ?? 0, mounts: [], pull: 0, tty: false, openStdin: false, secrets: [], configs: [] },
      resources: o.memory ? { limits: { memoryBytes: o.memory, nanoCpus: 0, pids: 0 } } : undefined,
      forceUpdate: 0,
      networks: [],
    },
    networks: [],
  };
}

const reported = (state: TaskState, health = ''): TaskStatus => ({
  state,
  timestamp: '',
  message: '',
  err: '',
  container: { pid: 10, exitCode: 0, health, oomKilled: false },
});

const missing: RuntimeTaskState = { state: 'missing' };
const created: RuntimeTaskState = { state: 'created', pid: 10 };
const running: RuntimeTaskState = { state: 'running', pid: 10 };
const exited = (exitCode: number, oomKilled = false): RuntimeTaskState => ({ state: 'exited', pid: 10, exitCode, oomKilled });

function view(v: Partial<TaskView> & { t?: TaskOptions }): TaskView {
  return { taskId: 't1', task: task(v.t), assigned: true, runtime: missing, ...v };
}

/** The action, reduced to what a table can say: "report RUNNING started", "prepare", "stop 10000", ... */
function show(a: WorkerAction | undefined): string {
  if (!a) return 'nothing';
  switch (a.kind) {
    case 'report':
      return `report ${TaskState[a.status.state].replace('TASK_STATE_', '')} ${a.status.message}${a.status.err ? ` (${a.status.err})` : ''}`;
    case 'stop':
    case 'remove':
      return `${a.kind} ${a.graceMs}`;
    default:
      return a.kind;
  }
}

describe('planTask: bringing a task up', () => {
  const cases: [string, Partial<TaskView> & { t?: TaskOptions }, string][] = [
    ['a new assignment is accepted', { runtime: missing }, 'report ACCEPTED accepted'],
    ['accepted: preparing', { runtime: missing, reported: reported(S.TASK_STATE_ACCEPTED) }, 'report PREPARING preparing'],
    ['preparing, no sandbox: prepare', { runtime: missing, reported: reported(S.TASK_STATE_PREPARING) }, 'prepare'],
    ['prepared: ready', { runtime: created, reported: reported(S.TASK_STATE_PREPARING) }, 'report READY prepared'],
    ['ready: starting', { runtime: created, reported: reported(S.TASK_STATE_READY) }, 'report STARTING starting'],
    ['starting: start', { runtime: created, reported: reported(S.TASK_STATE_STARTING) }, 'start'],
    ['started: running', { runtime: running, reported: reported(S.TASK_STATE_STARTING) }, 'report RUNNING started'],
    ['running and reported: nothing', { runtime: running, reported: reported(S.TASK_STATE_RUNNING) }, 'nothing'],
    ['desired READY: prepared and held', { runtime: created, reported: reported(S.TASK_STATE_READY), t: { desired: S.TASK_STATE_READY } }, 'nothing'],
    ['the manager already has it further: follow on from there', { runtime: missing, t: { managerState: S.TASK_STATE_PREPARING } }, 'prepare'],
    ['a sandbox found after a restart, task starting per the manager: start', { runtime: created, t: { managerState: S.TASK_STATE_STARTING } }, 'start'],
  ];
  test.each(cases)('%s', (_name, v, expected) => {
    expect(show(planTask(view(v), ctx))).toBe(expected);
  });

  test('reports carry the time and the container', () => {
    const action = planTask(view({ runtime: running, reported: reported(S.TASK_STATE_STARTING) }), ctx);
    expect(action).toEqual({
      kind: 'report',
      taskId: 't1',
      status: { state: S.TASK_STATE_RUNNING, timestamp: NOW, message: 'started', err: '', container: { pid: 10, exitCode: 0, health: '', oomKilled: false } },
    });
  });
});

describe('planTask: a task that ends', () => {
  const cases: [string, Partial<TaskView> & { t?: TaskOptions }, string][] = [
    ['exit 0: complete', { runtime: exited(0), reported: reported(S.TASK_STATE_RUNNING) }, 'report COMPLETE finished'],
    ['exit 3: failed', { runtime: exited(3), reported: reported(S.TASK_STATE_RUNNING) }, 'report FAILED failed (task: non-zero exit (3))'],
    [
      'OOM: failed, saying so',
      { runtime: exited(137, true), reported: reported(S.TASK_STATE_RUNNING), t: { memory: 32 * 1024 * 1024 } },
      'report FAILED failed (OOM killed: memory limit of 32 MiB exceeded)',
    ],
    ['unhealthy and stopped: failed as unhealthy', { runtime: exited(143), health: 'unhealthy', reported: reported(S.TASK_STATE_RUNNING, 'unhealthy') }, 'report FAILED failed (unhealthy container)'],
    ['exited while the agent was down: its real exit code', { runtime: exited(5), t: { managerState: S.TASK_STATE_RUNNING } }, 'report FAILED failed (task: non-zero exit (5))'],
    ['running per the manager, unknown to the runtime: failed', { runtime: missing, t: { managerState: S.TASK_STATE_RUNNING } }, 'report FAILED failed (task: the runtime has no record of it on this node)'],
    ['a process lost: failed', { runtime: exited(-1), reported: reported(S.TASK_STATE_RUNNING) }, 'report FAILED failed (task: its process was lost (killed outside swarmlet, or the node restarted))'],
    ['already complete: never run again', { runtime: missing, reported: reported(S.TASK_STATE_COMPLETE) }, 'nothing'],
    ['failed per the manager: never run again', { runtime: missing, t: { managerState: S.TASK_STATE_FAILED } }, 'nothing'],
    ['terminal but still alive (orphaned by the manager): stop', { runtime: running, t: { managerState: S.TASK_STATE_ORPHANED, grace: 2000 } }, 'stop 2000'],
  ];
  test.each(cases)('%s', (_name, v, expected) => {
    expect(show(planTask(view(v), ctx))).toBe(expected);
  });
});

describe('planTask: shutdown, rejection, removal', () => {
  const cases: [string, Partial<TaskView> & { t?: TaskOptions }, PlanOptions, string][] = [
    ['desired shutdown, running: stop with the default grace', { runtime: running, reported: reported(S.TASK_STATE_RUNNING), t: { desired: S.TASK_STATE_SHUTDOWN } }, {}, 'stop 10000'],
    ['desired shutdown: the spec\'s grace', { runtime: running, t: { desired: S.TASK_STATE_SHUTDOWN, grace: 3000, managerState: S.TASK_STATE_RUNNING } }, {}, 'stop 3000'],
    ['desired shutdown, stopped: shutdown', { runtime: exited(143), reported: reported(S.TASK_STATE_RUNNING), t: { desired: S.TASK_STATE_SHUTDOWN } }, {}, 'report SHUTDOWN shutdown'],
    ['desired shutdown, never prepared: shutdown', { runtime: missing, t: { desired: S.TASK_STATE_SHUTDOWN } }, {}, 'report SHUTDOWN shutdown'],
    ['desired remove, held: stop', { runtime: created, t: { desired: S.TASK_STATE_REMOVE } }, {}, 'stop 10000'],
    ['desired shutdown after it completed: nothing', { runtime: exited(0), reported: reported(S.TASK_STATE_COMPLETE), t: { desired: S.TASK_STATE_SHUTDOWN } }, {}, 'nothing'],
    ['prepare failed: rejected', { runtime: missing, reported: reported(S.TASK_STATE_PREPARING), error: 'unable to find user bob' }, {}, 'report REJECTED rejected (unable to find user bob)'],
    ['start failed with a sandbox left: stop it first', { runtime: created, reported: reported(S.TASK_STATE_STARTING), error: 'boom' }, {}, 'stop 10000'],
    ['gone from the assignment: stop and remove', { runtime: exited(0), assigned: false, t: { grace: 1000 } }, {}, 'remove 1000'],
    ['stale in the runtime, before any assignment: left alone', { runtime: running, assigned: false, task: undefined }, { assignedOnce: false }, 'nothing'],
    ['stale in the runtime, after the first assignment: removed', { runtime: running, assigned: false, task: undefined }, {}, 'remove 10000'],
    ['gone from the assignment, nothing in the runtime: forgotten all the same', { runtime: missing, assigned: false }, {}, 'remove 10000'],
  ];
  test.each(cases)('%s', (_name, v, opts, expected) => {
    expect(show(planTask(view(v), { ...ctx, ...opts }))).toBe(expected);
  });
});

describe('planTask: health', () => {
  const cases: [string, Partial<TaskView>, string][] = [
    ['starting health goes with RUNNING', { runtime: running, health: 'starting', reported: reported(S.TASK_STATE_STARTING) }, 'report RUNNING started'],
    ['a health change is reported', { runtime: running, health: 'healthy', reported: reported(S.TASK_STATE_RUNNING, 'starting') }, 'report RUNNING started'],
    ['no change: nothing', { runtime: running, health: 'healthy', reported: reported(S.TASK_STATE_RUNNING, 'healthy') }, 'nothing'],
    ['unhealthy: reported first', { runtime: running, health: 'unhealthy', reported: reported(S.TASK_STATE_RUNNING, 'healthy') }, 'report RUNNING started'],
    ['unhealthy and reported: stopped', { runtime: running, health: 'unhealthy', reported: reported(S.TASK_STATE_RUNNING, 'unhealthy') }, 'stop 10000'],
  ];
  test.each(cases)('%s', (_name, v, expected) => {
    expect(show(planTask(view(v), ctx))).toBe(expected);
  });

  test('the health goes in the container status', () => {
    const a = planTask(view({ runtime: running, health: 'healthy', reported: reported(S.TASK_STATE_RUNNING, 'starting') }), ctx);
    expect(a?.kind === 'report' && a.status.container?.health).toBe('healthy');
  });
});

describe('planTask: states only move forward', () => {
  test('never a report below what was reported or what the manager has', () => {
    const states = Object.values(S).filter((s): s is TaskState => typeof s === 'number' && s >= 0);
    const runtimes = [missing, created, running, exited(0), exited(1), exited(137, true)];
    const desired = [S.TASK_STATE_READY, S.TASK_STATE_RUNNING, S.TASK_STATE_SHUTDOWN, S.TASK_STATE_REMOVE];
    for (const last of states) {
      for (const manager of states) {
        for (const rt of runtimes) {
          for (const d of desired) {
            for (const health of [undefined, 'healthy', 'unhealthy'] as const) {
              const v = view({ runtime: rt, reported: reported(last), health, t: { desired: d, managerState: manager } });
              const a = planTask(v, ctx);
              if (a?.kind === 'report') expect(a.status.state).toBeGreaterThanOrEqual(Math.max(last, manager));
              if (Math.max(last, manager) >= S.TASK_STATE_COMPLETE) expect(['prepare', 'start', 'report']).not.toContain(a?.kind);
            }
          }
        }
      }
    }
  });
});

describe('planWorker', () => {
  test('plans every task', () => {
    const a = view({ taskId: 'a', runtime: missing });
    const b = view({ taskId: 'b', runtime: running, reported: reported(S.TASK_STATE_RUNNING) });
    const c = view({ taskId: 'c', runtime: running, assigned: false });
    expect(planWorker([a, b, c], ctx).map((x) => `${x.taskId}: ${show(x)}`)).toEqual(['a: report ACCEPTED accepted', 'c: remove 10000']);
  });
});

describe('planHealthCheck', () => {
  const hc = (test: string[], o: Partial<HealthConfig> = {}): HealthConfig => ({ test, intervalMs: 0, timeoutMs: 0, retries: 0, startPeriodMs: 0, ...o });
  test.each([
    ['none', undefined, undefined],
    ['empty', hc([]), undefined],
    ['NONE', hc(['NONE']), undefined],
    ['CMD-SHELL, docker defaults', hc(['CMD-SHELL', 'curl -f localhost']), { argv: ['/bin/sh', '-c', 'curl -f localhost'], intervalMs: 30000, timeoutMs: 30000, retries: 3, startPeriodMs: 0 }],
    ['CMD with its own timings', hc(['CMD', 'test', '-e', '/ok'], { intervalMs: 100, timeoutMs: 50, retries: 2, startPeriodMs: 1000 }), { argv: ['test', '-e', '/ok'], intervalMs: 100, timeoutMs: 50, retries: 2, startPeriodMs: 1000 }],
  ])('%s', (_name, config, expected) => {
    expect(planHealthCheck(config)).toEqual(expected);
  });

  test.each([[['CMD']], [['CMD-SHELL']], [['CMD-SHELL', 'a', 'b']], [['SHELL', 'x']]])('refuses %j', (test_) => {
    expect(() => planHealthCheck(hc(test_))).toThrow(SwarmletError);
    expect(() => planHealthCheck(hc(test_))).toThrow(/health check test/);
  });
});

describe('nextHealth', () => {
  const p = (status: HealthProgress['status'], failures = 0): HealthProgress => ({ status, failures });
  test.each([
    ['a success makes it healthy', HEALTH_START, true, false, p('healthy')],
    ['a failure in the start period does not count', HEALTH_START, false, true, p('starting')],
    ['a failure after it counts', HEALTH_START, false, false, p('starting', 1)],
    ['retries failures in a row: unhealthy', p('starting', 2), false, false, p('unhealthy', 3)],
    ['healthy, one failure: still healthy', p('healthy'), false, false, p('healthy', 1)],
    ['healthy, failures in the start period count once it was healthy', p('healthy', 2), false, true, p('unhealthy', 3)],
    ['a success resets the count', p('healthy', 2), true, false, p('healthy')],
    ['unhealthy stays unhealthy', p('unhealthy', 3), true, false, p('unhealthy', 3)],
  ])('%s', (_name, prev, ok, inStartPeriod, expected) => {
    expect(nextHealth(prev, { ok, inStartPeriod }, 3)).toEqual(expected);
  });
});

describe('formatBytes', () => {
  test.each([
    [1000, '1000 bytes'],
    [32 * 1024 * 1024, '32 MiB'],
    [1.5 * 1024 ** 3, '1.5 GiB'],
    [6 * 1024 * 1024, '6 MiB'],
  ])('%d', (n, expected) => expect(formatBytes(n)).toBe(expected));
});
