/**
 * Rolling updates, driven through a small simulated cluster: the orchestrator plan, then the
 * allocator (NEW -> PENDING), the scheduler plan, and agents that start tasks (or fail them) and
 * stop them when told. Time only moves when the plan has nothing to do now: to its wakeAt, or by
 * one second after it acted.
 */
import {
  Node,
  NodeState,
  RestartCondition,
  Service,
  ServiceSpec,
  Task,
  TaskState,
  UpdateConfig,
  UpdateFailureAction,
  UpdateOrder,
  UpdateState,
} from '../../services/gen/swarmlet/v1/types';
import { OrchestratorPlan } from '../../manager/orchestrator/types';
import { planForMode } from '../support/orchestrator-plan';
import { planScheduling } from '../../manager/orchestrator/scheduler';

const { TASK_STATE_NEW, TASK_STATE_PENDING, TASK_STATE_ASSIGNED, TASK_STATE_RUNNING, TASK_STATE_SHUTDOWN, TASK_STATE_FAILED } = TaskState;
const T0 = Date.parse('2025-01-01T00:00:00.000Z');
const at = (s: number) => new Date(T0 + s * 1000);
const iso = (s: number) => at(s).toISOString();

interface Options {
  replicas?: number;
  global?: boolean;
  update?: Partial<UpdateConfig>;
  rollback?: Partial<UpdateConfig>;
  restart?: RestartCondition;
}

const defaults: UpdateConfig = {
  parallelism: 1,
  delayMs: 0,
  failureAction: UpdateFailureAction.UPDATE_FAILURE_ACTION_PAUSE,
  monitorMs: 5000,
  maxFailureRatio: 0,
  order: UpdateOrder.UPDATE_ORDER_STOP_FIRST,
};

function specOf(command: string, o: Options): ServiceSpec {
  const spec = ServiceSpec.fromPartial({
    name: 'web',
    task: {
      container: { image: 'exec:/', command: [command] },
      restart: { condition: o.restart ?? RestartCondition.RESTART_CONDITION_ANY, delayMs: 5000 },
    },
    update: { ...defaults, ...o.update },
    rollback: { ...defaults, ...o.rollback },
  });
  spec.mode = o.global ? { $case: 'global', value: {} } : { $case: 'replicated', value: { replicas: o.replicas ?? 6 } };
  return spec;
}

const commandOf = (t: Task) => t.spec?.container?.command[0];

/** A cluster of `nodeCount` nodes whose agents run anything but the command 'false' (which fails at once). */
class Sim {
  service: Service;
  tasks: Task[] = [];
  nodes: Node[];
  now = 0;
  plans: { at: number; plan: OrchestratorPlan; updated: string[] }[] = [];
  /** Running tasks (actual RUNNING, whatever their desired state) after each step. */
  runningCounts: number[] = [];
  private n = 0;
  failWhen: (t: Task) => boolean = (t) => commandOf(t) === 'false';

  constructor(command: string, readonly options: Options, nodeCount = 3) {
    this.nodes = Array.from({ length: nodeCount }, (_, i) =>
      Node.fromPartial({ id: `n${i + 1}`, spec: {}, description: { hostname: `h${i + 1}` }, status: { state: NodeState.NODE_STATE_READY } }),
    );
    this.service = Service.fromPartial({
      id: 'svc',
      spec: specOf(command, options),
      specVersion: 1,
      updateStatus: { state: UpdateState.UPDATE_STATE_COMPLETED, startedAt: iso(0), completedAt: iso(0), message: 'created' },
    });
  }

  /** What the manager's Control API does on `service update`. */
  updateTo(command: string, options: Options = this.options): void {
    this.service = {
      ...this.service,
      previousSpec: this.service.spec,
      spec: specOf(command, options),
      specVersion: this.service.specVersion + 1,
      updateStatus: { state: UpdateState.UPDATE_STATE_UPDATING, startedAt: iso(this.now), completedAt: '', message: 'update in progress', lastBatchAt: '', failures: 0 },
    };
  }

  /** One orchestrator run, applied as the manager's loop applies it. */
  plan(swap = true): OrchestratorPlan {
    const plan = planForMode({ service: this.service, tasks: this.tasks, nodes: this.nodes, now: at(this.now), newId: () => `t${++this.n}` });
    // the slots (or nodes) whose tasks this plan shut down for the update
    const updated = plan.actions.flatMap((a) => {
      const t = a.kind === 'setDesired' && /update|replaced/.test(a.message) ? this.tasks.find((x) => x.id === a.taskId) : undefined;
      return t ? [this.slotKey(t)] : [];
    });
    this.plans.push({ at: this.now, plan, updated });
    for (const a of plan.actions) {
      if (a.kind === 'create') this.tasks.push(a.task);
      else if (a.kind === 'delete') this.tasks = this.tasks.filter((t) => t.id !== a.taskId);
      else this.edit(a.taskId, (t) => ({ ...t, desiredState: Math.max(t.desiredState, a.desired) }));
    }
    if (plan.updateStatus) {
      const rollback = plan.updateStatus.state === UpdateState.UPDATE_STATE_ROLLBACK_STARTED && this.service.updateStatus?.state !== UpdateState.UPDATE_STATE_ROLLBACK_STARTED;
      this.service =
        rollback && swap
          ? { ...this.service, spec: this.service.previousSpec, previousSpec: this.service.spec, specVersion: this.service.specVersion + 1, updateStatus: plan.updateStatus }
          : { ...this.service, updateStatus: plan.updateStatus };
    }
    return plan;
  }

  /** Allocator, scheduler and agents, once each. */
  cluster(): void {
    const status = (t: Task, state: TaskState) => ({ ...t, status: { ...t.status!, state, timestamp: iso(this.now) } });
    this.tasks = this.tasks.map((t) => (t.status?.state === TASK_STATE_NEW && t.desiredState <= TASK_STATE_RUNNING ? status(t, TASK_STATE_PENDING) : t));
    const pending = this.tasks.filter((t) => t.status?.state === TASK_STATE_PENDING && t.desiredState <= TASK_STATE_RUNNING);
    for (const a of planScheduling({ nodes: this.nodes, tasks: this.tasks, pending }).assignments) {
      this.edit(a.taskId, (t) => ({ ...status(t, TASK_STATE_ASSIGNED), nodeId: a.nodeId }));
    }
    this.tasks = this.tasks.map((t) => {
      const s = t.status!.state;
      if (t.desiredState > TASK_STATE_RUNNING && s >= TASK_STATE_ASSIGNED && s <= TASK_STATE_RUNNING) return status(t, TASK_STATE_SHUTDOWN);
      if (t.desiredState === TASK_STATE_RUNNING && s >= TASK_STATE_ASSIGNED && s < TASK_STATE_RUNNING) return status(t, this.failWhen(t) ? TASK_STATE_FAILED : TASK_STATE_RUNNING);
      return t;
    });
    this.runningCounts.push(this.tasks.filter((t) => t.status?.state === TASK_STATE_RUNNING).length);
  }

  /** Runs until the plan has nothing more to do, or `until` seconds. */
  converge(until = 600): this {
    while (this.now <= until) {
      const plan = this.plan();
      this.cluster();
      if (plan.actions.length > 0 || plan.updateStatus) this.now += 1;
      else if (plan.wakeAt) this.now = Math.ceil((plan.wakeAt.getTime() - T0) / 1000);
      else break;
    }
    return this;
  }

  live(): Task[] {
    return this.tasks.filter((t) => t.desiredState === TASK_STATE_RUNNING).sort((a, b) => a.slot - b.slot || a.nodeId.localeCompare(b.nodeId));
  }

  /** For each plan that shut down tasks for the update: the slots (or nodes) it took. */
  batches(): string[][] {
    return this.plans.map((p) => p.updated).filter((b) => b.length > 0);
  }

  /** For each plan that created tasks of the newest spec: the slots (or nodes). */
  creations(): string[][] {
    return this.plans.map(({ plan }) => plan.actions.flatMap((a) => (a.kind === 'create' ? [this.slotKey(a.task)] : []))).filter((b) => b.length > 0);
  }

  states(): UpdateState[] {
    const seen: UpdateState[] = [];
    for (const { plan } of this.plans) if (plan.updateStatus && seen.at(-1) !== plan.updateStatus.state) seen.push(plan.updateStatus.state);
    return seen;
  }

  private slotKey(t: Task): string {
    return t.slot ? String(t.slot) : t.nodeId;
  }

  private edit(id: string, fn: (t: Task) => Task): void {
    this.tasks = this.tasks.map((t) => (t.id === id ? fn(t) : t));
  }
}

function started(command: string, options: Options, nodeCount = 3): Sim {
  const sim = new Sim(command, options, nodeCount).converge();
  expect(sim.live().filter((t) => t.status?.state === TASK_STATE_RUNNING)).toHaveLength(options.global ? nodeCount : options.replicas ?? 6);
  sim.plans = [];
  sim.runningCounts = [];
  return sim;
}

describe('rolling update', () => {
  test('parallelism 2, stop-first, 6 replicas: three batches of two, each after the last ran for the monitor period', () => {
    const sim = started('v1', { update: { parallelism: 2, monitorMs: 5000 } });
    sim.now = 100;
    sim.updateTo('v2');
    sim.converge();
    expect(sim.batches()).toEqual([
      ['1', '2'],
      ['3', '4'],
      ['5', '6'],
    ]);
    expect(sim.creations()).toEqual([
      ['1', '2'],
      ['3', '4'],
      ['5', '6'],
    ]);
    // stop-first: the new tasks are made once the old ones stopped, a step later; the next batch
    // when the new ones have run for 5 s
    const when = (slots: string[]) => sim.plans.find(({ plan }) => plan.actions.some((a) => a.kind === 'create' && slots.includes(String(a.task.slot))))!.at;
    expect([when(['1']), when(['3']), when(['5'])]).toEqual([101, 107, 113]);
    expect(sim.live().map(commandOf)).toEqual(Array(6).fill('v2'));
    expect(sim.service.updateStatus).toMatchObject({ state: UpdateState.UPDATE_STATE_COMPLETED, message: 'update completed', completedAt: iso(118), failures: 0 });
    // stop-first lets the count drop by the parallelism, never more
    expect(Math.min(...sim.runningCounts)).toBe(4);
  });

  test('parallelism 0 replaces every slot at once', () => {
    const sim = started('v1', { update: { parallelism: 0 } });
    sim.updateTo('v2');
    sim.converge();
    expect(sim.batches()).toEqual([['1', '2', '3', '4', '5', '6']]);
    expect(sim.live().map(commandOf)).toEqual(Array(6).fill('v2'));
  });

  test('start-first never drops below the replicas running', () => {
    const sim = started('v1', { update: { parallelism: 2, order: UpdateOrder.UPDATE_ORDER_START_FIRST } });
    sim.updateTo('v2');
    sim.converge();
    expect(sim.live().map(commandOf)).toEqual(Array(6).fill('v2'));
    expect(sim.service.updateStatus?.state).toBe(UpdateState.UPDATE_STATE_COMPLETED);
    expect(Math.min(...sim.runningCounts)).toBe(6);
    expect(Math.max(...sim.runningCounts)).toBe(8);
    expect(sim.batches()).toEqual([
      ['1', '2'],
      ['3', '4'],
      ['5', '6'],
    ]);
  });

  test('the delay between batches is counted from the start of the last batch, via wakeAt', () => {
    const sim = started('v1', { replicas: 3, update: { parallelism: 1, delayMs: 30000, monitorMs: 1000 } });
    sim.now = 50;
    sim.updateTo('v2');
    sim.converge();
    const batchTimes = sim.plans.filter(({ plan }) => plan.actions.some((a) => a.kind === 'setDesired')).map((p) => p.at);
    expect(batchTimes).toEqual([50, 80, 110]);
    // after the first batch settled, the plan asked to be woken when the delay is over
    expect(sim.plans.filter((p) => p.at > 51 && p.at < 80).map((p) => p.plan.wakeAt)).toEqual([at(80)]);
  });

  test('a monitor period that has not passed: wakeAt is its end', () => {
    const sim = started('v1', { replicas: 2, update: { parallelism: 1, monitorMs: 20000 } });
    sim.now = 10;
    sim.updateTo('v2');
    sim.plan();
    sim.cluster();
    sim.now = 11;
    sim.plan(); // creates the new task of slot 1
    sim.cluster(); // which runs from 11
    sim.now = 12;
    const waiting = sim.plan();
    expect(waiting.actions).toEqual([]);
    expect(waiting.wakeAt).toEqual(at(31));
  });

  test('scaling during an update does not restart it; a scale alone starts none', () => {
    const sim = started('v1', { replicas: 3 });
    sim.service = { ...sim.service, spec: { ...sim.service.spec!, mode: { $case: 'replicated', value: { replicas: 5 } } } };
    sim.converge();
    expect(sim.states()).toEqual([]);
    expect(sim.live()).toHaveLength(5);
  });
});

describe('update failures', () => {
  test('failure action pause: PAUSED naming the task, no more batches until the spec changes', () => {
    const sim = started('v1', { update: { parallelism: 2 } });
    sim.updateTo('false');
    sim.converge(200);
    const status = sim.service.updateStatus!;
    expect(status.state).toBe(UpdateState.UPDATE_STATE_PAUSED);
    expect(status.message).toMatch(/^update paused due to failure or early termination of task t\d+$/);
    expect(status.failures).toBe(2);
    // slots 3..6 were never touched
    expect(sim.batches()).toEqual([['1', '2']]);
    expect(sim.live().filter((t) => commandOf(t) === 'v1' && t.status?.state === TASK_STATE_RUNNING)).toHaveLength(4);
    // a new spec (the manager resets the status) carries on
    sim.updateTo('v3');
    sim.converge(400);
    expect(sim.service.updateStatus?.state).toBe(UpdateState.UPDATE_STATE_COMPLETED);
    expect(sim.live().map(commandOf)).toEqual(Array(6).fill('v3'));
  });

  test('failure action continue: every slot is updated, failures counted', () => {
    const options = { restart: RestartCondition.RESTART_CONDITION_NONE, update: { parallelism: 2, failureAction: UpdateFailureAction.UPDATE_FAILURE_ACTION_CONTINUE } };
    const sim = started('v1', options);
    sim.updateTo('false');
    sim.converge();
    expect(sim.batches()).toEqual([
      ['1', '2'],
      ['3', '4'],
      ['5', '6'],
    ]);
    expect(sim.service.updateStatus).toMatchObject({ state: UpdateState.UPDATE_STATE_COMPLETED, failures: 6 });
  });

  test('max failure ratio: failures up to the ratio are tolerated, beyond it the action applies', () => {
    const sim = started('v1', { update: { parallelism: 1, maxFailureRatio: 0.34, monitorMs: 1000 }, restart: RestartCondition.RESTART_CONDITION_NONE });
    sim.failWhen = (t) => commandOf(t) === 'v2' && t.slot <= 3;
    sim.updateTo('v2');
    sim.converge();
    // 2 of 6 fail (0.33): tolerated; the third (0.5) pauses
    expect(sim.service.updateStatus).toMatchObject({ state: UpdateState.UPDATE_STATE_PAUSED, failures: 3 });
    expect(sim.batches()).toEqual([['1'], ['2'], ['3']]);
  });

  test('failure action rollback: ROLLBACK_STARTED, then back to the old spec with the rollback config, ROLLBACK_COMPLETED', () => {
    const sim = started('v1', {
      update: { parallelism: 2, failureAction: UpdateFailureAction.UPDATE_FAILURE_ACTION_ROLLBACK },
      rollback: { parallelism: 0, monitorMs: 2000 },
    });
    const untouched = sim.live().filter((t) => t.slot >= 3).map((t) => t.id);
    sim.updateTo('false');
    sim.converge();
    expect(sim.states()).toEqual([UpdateState.UPDATE_STATE_UPDATING, UpdateState.UPDATE_STATE_ROLLBACK_STARTED, UpdateState.UPDATE_STATE_ROLLBACK_COMPLETED]);
    const rolledBack = sim.plans.find(({ plan }) => plan.updateStatus?.state === UpdateState.UPDATE_STATE_ROLLBACK_STARTED)!.plan.updateStatus!;
    expect(rolledBack.message).toMatch(/^update rolled back due to failure or early termination of task t\d+$/);
    expect(sim.service.updateStatus?.message).toBe('rollback completed');
    expect(sim.live().map(commandOf)).toEqual(Array(6).fill('v1'));
    // only the slots the update changed were rolled back: the others kept their tasks
    expect(sim.live().filter((t) => t.slot >= 3).map((t) => t.id)).toEqual(untouched);
  });

  test('until the manager swapped the specs, a started rollback holds', () => {
    const sim = started('v1', { update: { parallelism: 2, failureAction: UpdateFailureAction.UPDATE_FAILURE_ACTION_ROLLBACK } });
    sim.updateTo('false');
    for (let i = 0; i < 5 && sim.service.updateStatus?.state !== UpdateState.UPDATE_STATE_ROLLBACK_STARTED; i++) {
      sim.plan(false);
      sim.cluster();
      sim.now++;
    }
    expect(sim.service.updateStatus?.state).toBe(UpdateState.UPDATE_STATE_ROLLBACK_STARTED);
    const again = sim.plan(false);
    expect(again.updateStatus).toBeUndefined();
    expect(again.actions.filter((a) => a.kind === 'setDesired' && /update/.test(a.message))).toEqual([]);
  });

  test('a rollback that fails too pauses (a rollback is never rolled back)', () => {
    const sim = started('v1', { update: { parallelism: 1, failureAction: UpdateFailureAction.UPDATE_FAILURE_ACTION_ROLLBACK }, rollback: { failureAction: UpdateFailureAction.UPDATE_FAILURE_ACTION_ROLLBACK } });
    sim.updateTo('v2');
    sim.failWhen = (t) => t.specVersion >= 2; // the new spec fails, and so does the rolled-back one
    sim.converge();
    expect(sim.states()).toEqual([UpdateState.UPDATE_STATE_UPDATING, UpdateState.UPDATE_STATE_ROLLBACK_STARTED, UpdateState.UPDATE_STATE_ROLLBACK_PAUSED]);
    expect(sim.service.updateStatus?.message).toMatch(/^rollback paused due to failure or early termination of task t\d+$/);
  });

  test('a task that fails long after its batch was healthy, once the update moved on, is no update failure', () => {
    const sim = started('v1', { replicas: 2, update: { parallelism: 1, delayMs: 60000, monitorMs: 1000 }, restart: RestartCondition.RESTART_CONDITION_NONE });
    sim.updateTo('v2');
    // run until the second batch started
    while (sim.batches().length < 2) {
      const plan = sim.plan();
      sim.cluster();
      sim.now = plan.actions.length || plan.updateStatus ? sim.now + 1 : Math.ceil((plan.wakeAt!.getTime() - T0) / 1000);
    }
    // slot 1's new task dies now
    const slot1 = sim.live().find((t) => t.slot === 1 && commandOf(t) === 'v2')!;
    sim.tasks = sim.tasks.map((t) => (t.id === slot1.id ? { ...t, status: { ...t.status!, state: TASK_STATE_FAILED, timestamp: iso(sim.now) } } : t));
    sim.converge();
    expect(sim.service.updateStatus).toMatchObject({ state: UpdateState.UPDATE_STATE_COMPLETED, failures: 0 });
  });
});

describe('global service update', () => {
  test('one node at a time, each node keeps its task pinned', () => {
    const sim = started('v1', { global: true, update: { parallelism: 1, monitorMs: 1000 } }, 3);
    sim.updateTo('v2', { global: true, update: { parallelism: 1, monitorMs: 1000 } });
    sim.converge();
    expect(sim.batches()).toEqual([['n1'], ['n2'], ['n3']]);
    expect(sim.live().map((t) => [t.nodeId, commandOf(t)])).toEqual([
      ['n1', 'v2'],
      ['n2', 'v2'],
      ['n3', 'v2'],
    ]);
    expect(sim.service.updateStatus?.state).toBe(UpdateState.UPDATE_STATE_COMPLETED);
  });

  test('start-first on a global service runs two tasks on the node for a moment, never none', () => {
    const sim = started('v1', { global: true, update: { parallelism: 0, order: UpdateOrder.UPDATE_ORDER_START_FIRST } }, 2);
    sim.updateTo('v2', { global: true, update: { parallelism: 0, order: UpdateOrder.UPDATE_ORDER_START_FIRST } });
    sim.converge();
    expect(Math.min(...sim.runningCounts)).toBe(2);
    expect(sim.live().map(commandOf)).toEqual(['v2', 'v2']);
  });
});
