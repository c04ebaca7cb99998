/**
 * The Worker with the real exec runtime (processes, namespaces, cgroups) and a recording report
 * function. Run through test/run.sh, as root. Its cgroups live under a parent unique to this run,
 * removed at the end, also when a test fails.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { ContainerSpec, HealthConfig, Task, TaskState, TaskStatus } from '../../services/gen/swarmlet/v1/types';
import { ExecRuntime } from '../../agent/runtime/exec-runtime';
import { removeCgroupParent } from '../../agent/runtime/cgroups';
import { Worker } from '../../agent/worker';
import { uniqueSuffix } from '../support/unique';
import { readTaskOutput } from '../support/task-output';

const log = pino({ level: 'silent' });
const parent = `swarmlet-wtest-${uniqueSuffix(6)}`;
const S = TaskState;
let stateDir: string;
const workers: Worker[] = [];
let seq = 0;

class Recorder {
  readonly updates: { taskId: string; status: TaskStatus }[] = [];
  failuresLeft = 0;
  calls = 0;

  readonly report = async (updates: { taskId: string; status: TaskStatus }[]): Promise<void> => {
    this.calls += 1;
    if (this.failuresLeft > 0) {
      this.failuresLeft -= 1;
      throw new Error('manager unavailable');
    }
    this.updates.push(...updates);
  };

  of(taskId: string): TaskStatus[] {
    return this.updates.filter((u) => u.taskId === taskId).map((u) => u.status);
  }

  last(taskId: string): TaskStatus | undefined {
    return this.of(taskId).at(-1);
  }

  async until(taskId: string, state: TaskState, timeoutMs = 15000): Promise<TaskStatus> {
    return waitFor(`task ${taskId} to reach ${TaskState[state]} (last: ${TaskState[this.last(taskId)?.state ?? 0]})`, async () => {
      const found = this.of(taskId).find((s) => s.state === state);
      return found;
    }, timeoutMs);
  }
}

async function waitFor<T>(what: string | (() => string), fn: () => Promise<T | undefined | false>, timeoutMs = 15000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function task(container: Partial<ContainerSpec>, o: { desired?: TaskState; status?: TaskState; memory?: number } = {}): Task {
  seq += 1;
  return {
    id: `w${process.pid}x${seq}abcdefghij`,
    serviceId: 'svc',
    serviceName: 'web',
    slot: seq,
    nodeId: 'node1',
    specVersion: 1,
    desiredState: o.desired ?? S.TASK_STATE_RUNNING,
    createdAt: '',
    status: { state: o.status ?? S.TASK_STATE_ASSIGNED, timestamp: '', message: '', err: '' },
    spec: {
      networkAliases: [],
      container: { image: 'exec:/', command: [], args: [], env: [], dir: '', user: '', hostname: '', stopGracePeriodMs: 5000, mounts: [], pull: 0, tty: false, openStdin: false, secrets: [], configs: [], ...container },
      resources: o.memory ? { limits: { memoryBytes: o.memory, nanoCpus: 0, pids: 0 } } : undefined,
      forceUpdate: 0,
      networks: [],
    },
    networks: [],
  };
}

const withState = (t: Task, desired: TaskState, status?: TaskStatus): Task => ({ ...t, desiredState: desired, status: status ?? t.status });

function newRuntime(): ExecRuntime {
  return new ExecRuntime({ stateDir, cgroupParent: parent, log });
}

async function newWorker(recorder: Recorder, runtime = newRuntime()): Promise<Worker> {
  const worker = new Worker({ runtime, log, report: recorder.report, monitorMs: 100 });
  workers.push(worker);
  await worker.start();
  return worker;
}

function expectForwardOnly(statuses: TaskStatus[]): void {
  for (let i = 1; i < statuses.length; i += 1) expect(statuses[i].state).toBeGreaterThanOrEqual(statuses[i - 1].state);
}

const hc = (test: string[], o: Partial<HealthConfig> = {}): HealthConfig => ({ test, intervalMs: 100, timeoutMs: 2000, retries: 2, startPeriodMs: 0, ...o });

beforeAll(() => {
  stateDir = mkdtempSync(join(tmpdir(), 'swarmlet-worker-'));
});

afterAll(async () => {
  try {
    await Promise.allSettled(workers.map((w) => w.stop()));
    const runtime = newRuntime();
    for (const id of await runtime.list()) {
      await runtime.stop(id, 0).catch(() => undefined);
      await runtime.remove(id).catch(() => undefined);
    }
  } finally {
    await removeCgroupParent(parent);
    rmSync(stateDir, { recursive: true, force: true });
  }
  for (const dir of ['memory', 'cpu', 'pids', 'systemd', 'unified', '']) expect(existsSync(join('/sys/fs/cgroup', dir, parent))).toBe(false);
});

describe('Worker', () => {
  test('brings an assigned task to RUNNING, shuts it down when told, and removes it once unassigned', async () => {
    const rec = new Recorder();
    const runtime = newRuntime();
    const worker = await newWorker(rec, runtime);
    const t = task({ command: ['sh', '-c', 'echo up; sleep 30'] });
    worker.assign([t]);
    const running = await rec.until(t.id, S.TASK_STATE_RUNNING);
    expect(running).toMatchObject({ message: 'started', err: '' });
    expect(running.container?.pid).toBeGreaterThan(0);
    expectForwardOnly(rec.of(t.id));
    expect(rec.of(t.id)[0].state).toBeLessThanOrEqual(S.TASK_STATE_PREPARING); // batched: the latest status per task wins
    expect((await runtime.inspect(t.id)).state).toBe('running');
    // RUNNING means the command was let run, not that it has printed yet: a SIGTERM before its echo would leave nothing.
    await waitFor('the command\'s output', async () => readTaskOutput(join(stateDir, t.id, 'output.log')) === 'up\n');

    worker.assign([withState(t, S.TASK_STATE_SHUTDOWN, running)]);
    const shutdown = await rec.until(t.id, S.TASK_STATE_SHUTDOWN);
    // 143: SIGTERM went to the command (not the SIGKILL at the end of the grace period, 137).
    expect(shutdown).toMatchObject({ message: 'shutdown', container: { exitCode: 143 } });
    expectForwardOnly(rec.of(t.id));
    expect(readTaskOutput(join(stateDir, t.id, 'output.log'))).toBe('up\n');

    worker.assign([]);
    await waitFor('the task to be removed', async () => (await runtime.inspect(t.id)).state === 'missing');
    expect(existsSync(join(stateDir, t.id))).toBe(false);
    await worker.stop();
  });

  test('a failing command is FAILED with its exit code; a successful one COMPLETE', async () => {
    const rec = new Recorder();
    const worker = await newWorker(rec);
    const bad = task({ command: ['sh', '-c', 'exit 3'] });
    const good = task({ command: ['true'] });
    worker.assign([bad, good]);
    const failed = await rec.until(bad.id, S.TASK_STATE_FAILED);
    expect(failed).toMatchObject({ message: 'failed', err: 'task: non-zero exit (3)', container: { exitCode: 3 } });
    expect(await rec.until(good.id, S.TASK_STATE_COMPLETE)).toMatchObject({ message: 'finished', err: '' });
    // Terminal tasks are never run again, whatever comes later.
    await new Promise((r) => setTimeout(r, 400));
    expect(rec.last(bad.id)?.state).toBe(S.TASK_STATE_FAILED);
    expect(rec.last(good.id)?.state).toBe(S.TASK_STATE_COMPLETE);
    worker.assign([]);
    await worker.stop();
  });

  test('a task past its memory limit is FAILED as OOM-killed', async () => {
    const rec = new Recorder();
    const worker = await newWorker(rec);
    const t = task({ command: ['sh', '-c', 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); sleep 1'] }, { memory: 32 * 1024 * 1024 });
    worker.assign([t]);
    const failed = await rec.until(t.id, S.TASK_STATE_FAILED);
    expect(failed.err).toBe('OOM killed: memory limit of 32 MiB exceeded');
    expect(failed.container?.oomKilled).toBe(true);
    worker.assign([]);
    await worker.stop();
  });

  test('a prepare error rejects the task with its reason', async () => {
    const rec = new Recorder();
    const worker = await newWorker(rec);
    const t = task({ command: ['true'], user: 'nosuchuser' });
    const u = task({ command: ['true'], image: 'exec:/no/such/root' });
    worker.assign([t, u]);
    expect((await rec.until(t.id, S.TASK_STATE_REJECTED)).err).toMatch(/unable to find user nosuchuser/);
    expect((await rec.until(u.id, S.TASK_STATE_REJECTED)).err).toMatch(/\/no\/such\/root does not exist/);
    worker.assign([]);
    await worker.stop();
  });

  test('health checks: healthy is reported with RUNNING; failing checks make the task FAILED as unhealthy', async () => {
    const rec = new Recorder();
    const worker = await newWorker(rec);
    const healthy = task({ command: ['sleep', '30'], hostname: 'probe-me', healthcheck: hc(['CMD-SHELL', '[ "$(hostname)" = probe-me ]']) });
    const sick = task({ command: ['sleep', '30'], healthcheck: hc(['CMD', 'false']) });
    worker.assign([healthy, sick]);
    await waitFor('healthy', async () => rec.last(healthy.id)?.container?.health === 'healthy');
    expect(rec.of(healthy.id).find((s) => s.state === S.TASK_STATE_RUNNING)?.container?.health).toBe('starting');
    expect(rec.last(healthy.id)?.state).toBe(S.TASK_STATE_RUNNING);

    const failed = await rec.until(sick.id, S.TASK_STATE_FAILED);
    expect(failed).toMatchObject({ err: 'unhealthy container', container: { health: 'unhealthy', exitCode: 143 } });
    expect(rec.of(sick.id).map((s) => s.container?.health).filter(Boolean)).toEqual(expect.arrayContaining(['starting', 'unhealthy']));
    expectForwardOnly(rec.of(sick.id));
    worker.assign([]);
    await worker.stop();
  });

  test('reports are retried when the manager fails, the latest status winning', async () => {
    const rec = new Recorder();
    rec.failuresLeft = 3;
    const worker = await newWorker(rec);
    const t = task({ command: ['sleep', '30'] });
    worker.assign([t]);
    await rec.until(t.id, S.TASK_STATE_RUNNING);
    expect(rec.calls).toBeGreaterThan(3);
    expectForwardOnly(rec.of(t.id));
    worker.assign([]);
    await waitFor('removal', async () => !existsSync(join(stateDir, t.id)));
    await worker.stop();
  });

  test('a new worker re-adopts a running task without restarting it, and reports a task that exited meanwhile', async () => {
    const rec1 = new Recorder();
    const first = await newWorker(rec1);
    const keeps = task({ command: ['sh', '-c', 'echo boot; sleep 30'] });
    const ends = task({ command: ['sh', '-c', 'sleep 1; exit 4'] });
    const stale = task({ command: ['sleep', '30'] });
    first.assign([keeps, ends, stale]);
    const running = await rec1.until(keeps.id, S.TASK_STATE_RUNNING);
    const endsRunning = await rec1.until(ends.id, S.TASK_STATE_RUNNING);
    await rec1.until(stale.id, S.TASK_STATE_RUNNING);
    // Each running task's network namespace (what the overlay driver keeps plugged in) is its pid 1's, not the agent's.
    const keepsNetns = `/proc/${running.container?.pid}/ns/net`;
    expect(first.runningNetns().get(keeps.id)).toBe(keepsNetns);
    expect(statSync(keepsNetns).ino).not.toBe(statSync('/proc/self/ns/net').ino);
    await first.stop(); // the agent goes away; its tasks do not

    await new Promise((r) => setTimeout(r, 1500)); // `ends` exits while no worker watches
    const rec2 = new Recorder();
    const runtime = newRuntime();
    const second = await newWorker(rec2, runtime);
    // Before any assignment nothing is touched, not even what the new worker does not know.
    await new Promise((r) => setTimeout(r, 300));
    expect(rec2.updates).toEqual([]);
    expect((await runtime.inspect(stale.id)).state).toBe('running');
    // The running tasks' namespaces are known from the runtime already; the exited one has none.
    expect(second.runningNetns().get(keeps.id)).toBe(keepsNetns);
    expect(second.runningNetns().has(stale.id)).toBe(true);
    expect(second.runningNetns().has(ends.id)).toBe(false);

    second.assign([withState(keeps, S.TASK_STATE_RUNNING, running), withState(ends, S.TASK_STATE_RUNNING, endsRunning)]);
    const again = await rec2.until(keeps.id, S.TASK_STATE_RUNNING);
    expect(again.container?.pid).toBe(running.container?.pid);
    expect(rec2.of(keeps.id).every((s) => s.state === S.TASK_STATE_RUNNING)).toBe(true);
    expect(readTaskOutput(join(stateDir, keeps.id, 'output.log'))).toBe('boot\n');
    expect(await rec2.until(ends.id, S.TASK_STATE_FAILED)).toMatchObject({ err: 'task: non-zero exit (4)', container: { exitCode: 4 } });
    // Not assigned at all after the first assignment: stale, stopped and removed.
    await waitFor('the stale task to be removed', async () => (await runtime.inspect(stale.id)).state === 'missing');
    expect(rec2.of(stale.id)).toEqual([]);

    second.assign([]);
    await waitFor('everything removed', async () => (await runtime.list()).length === 0);
    await waitFor('no running task left', async () => second.runningNetns().size === 0);
    await second.stop();
  });
});

describe('Worker start concurrency', () => {
  test('a burst of assignments is prepared and started a few tasks at a time, and all of them run', async () => {
    let inFlight = 0;
    let most = 0;
    const track = async <T>(fn: () => Promise<T>): Promise<T> => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      try {
        return await fn();
      } finally {
        inFlight -= 1;
      }
    };
    class CountingRuntime extends ExecRuntime {
      override prepare(t: Task): Promise<void> {
        return track(() => super.prepare(t));
      }
      override start(id: string): Promise<void> {
        return track(() => super.start(id));
      }
    }
    const rec = new Recorder();
    const worker = new Worker({ runtime: new CountingRuntime({ stateDir, cgroupParent: parent, log }), log, report: rec.report, monitorMs: 100, startConcurrency: 2 });
    workers.push(worker);
    await worker.start();
    const tasks = Array.from({ length: 6 }, () => task({ command: ['sleep', '30'] }));
    worker.assign(tasks);
    for (const t of tasks) await rec.until(t.id, S.TASK_STATE_RUNNING);
    expect(most).toBeLessThanOrEqual(2);
    worker.assign([]);
    for (const t of tasks) await waitFor(`task ${t.id} to be removed`, async () => !existsSync(join(stateDir, t.id)));
    await worker.stop();
  });
});

describe('Worker start order', () => {
  test('a prepared task is started before the other tasks of a burst are prepared', async () => {
    const ops: string[] = [];
    class OrderRuntime extends ExecRuntime {
      override async prepare(t: Task): Promise<void> {
        ops.push(`prepare ${t.id}`);
        await super.prepare(t);
      }
      override async start(id: string): Promise<void> {
        ops.push(`start ${id}`);
        await super.start(id);
      }
    }
    const rec = new Recorder();
    const worker = new Worker({ runtime: new OrderRuntime({ stateDir, cgroupParent: parent, log }), log, report: rec.report, monitorMs: 100, startConcurrency: 1 });
    workers.push(worker);
    await worker.start();
    const tasks = Array.from({ length: 4 }, () => task({ command: ['sleep', '30'] }));
    worker.assign(tasks);
    for (const t of tasks) await rec.until(t.id, S.TASK_STATE_RUNNING);
    const firstStart = ops.findIndex((o) => o.startsWith('start '));
    const lastPrepare = ops.map((o) => o.startsWith('prepare ')).lastIndexOf(true);
    expect(firstStart).toBeGreaterThanOrEqual(0);
    expect(firstStart).toBeLessThan(lastPrepare);
    worker.assign([]);
    for (const t of tasks) await waitFor(`task ${t.id} to be removed`, async () => !existsSync(join(stateDir, t.id)));
    await worker.stop();
  });
});

describe('Worker exit watch', () => {
  test('a task\'s exit is reported when its shim records it, not at the next monitor inspection', async () => {
    const rec = new Recorder();
    // The monitor would inspect only after a minute: the exit is seen through the runtime's watch.
    const worker = new Worker({ runtime: newRuntime(), log, report: rec.report, monitorMs: 60_000 });
    workers.push(worker);
    await worker.start();
    const t = task({ command: ['sh', '-c', 'sleep 1; exit 3'] });
    worker.assign([t]);
    await rec.until(t.id, S.TASK_STATE_RUNNING);
    const failed = await rec.until(t.id, S.TASK_STATE_FAILED);
    expect(failed.container?.exitCode).toBe(3);
    worker.assign([]);
    await waitFor(`task ${t.id} to be removed`, async () => !existsSync(join(stateDir, t.id)));
    await worker.stop();
  });
});

describe('Worker and the networks: a task leaves its endpoints first', () => {
  /** The networks' side as the worker calls it, recording when stopServing came and whether the task's process still ran then. */
  class RecordingNetworks {
    readonly events: string[] = [];
    constructor(private readonly runtime: ExecRuntime) {}
    async attach(): Promise<void> {}
    async detach(): Promise<void> {}
    readonly stopServing = async (taskId: string): Promise<void> => {
      if (this.events.some((e) => e.startsWith(`stopServing ${taskId}`))) return;
      // In the order of the calls; the task's state as the runtime has it then is filled in after.
      const at = this.events.push(`stopServing ${taskId}`) - 1;
      this.events[at] += ` (${(await this.runtime.inspect(taskId)).state})`;
    };
  }

  /** A worker whose reports and network calls go into one ordered list of events. */
  async function recordingWorker(monitorMs: number) {
    const rec = new Recorder();
    const runtime = newRuntime();
    const networks = new RecordingNetworks(runtime);
    const report = async (updates: { taskId: string; status: TaskStatus }[]) => {
      for (const u of updates) networks.events.push(`report ${u.taskId} ${TaskState[u.status.state]}`);
      await rec.report(updates);
    };
    const worker = new Worker({ runtime, log, report, monitorMs, networks });
    workers.push(worker);
    await worker.start();
    return { rec, worker, events: networks.events };
  }

  test('a task killed by hand (kill -9) leaves its endpoints as soon as its exit is seen, before the managers hear it failed', async () => {
    const { rec, worker, events } = await recordingWorker(60_000);
    const t = task({ command: ['sleep', '30'] });
    worker.assign([t]);
    const running = await rec.until(t.id, S.TASK_STATE_RUNNING);
    expect(events.filter((e) => e.startsWith('stopServing'))).toEqual([]);
    process.kill(running.container!.pid, 'SIGKILL');
    await rec.until(t.id, S.TASK_STATE_FAILED);
    const left = events.findIndex((e) => e.startsWith(`stopServing ${t.id}`));
    expect(left).toBeGreaterThanOrEqual(0);
    expect(left).toBeLessThan(events.indexOf(`report ${t.id} TASK_STATE_FAILED`));
    worker.assign([]);
    await waitFor(`task ${t.id} to be removed`, async () => !existsSync(join(stateDir, t.id)));
    await worker.stop();
  });

  test('a task told to shut down leaves its endpoints while it still runs, and only then gets its SIGTERM', async () => {
    const { rec, worker, events } = await recordingWorker(100);
    const t = task({ command: ['sleep', '30'] });
    worker.assign([t]);
    const running = await rec.until(t.id, S.TASK_STATE_RUNNING);
    worker.assign([withState(t, S.TASK_STATE_SHUTDOWN, running)]);
    const shutdown = await rec.until(t.id, S.TASK_STATE_SHUTDOWN);
    expect(shutdown.container?.exitCode).toBe(143);
    expect(events.filter((e) => e.startsWith(`stopServing ${t.id}`))).toEqual([`stopServing ${t.id} (running)`]);
    expect(events.indexOf(`stopServing ${t.id} (running)`)).toBeLessThan(events.indexOf(`report ${t.id} TASK_STATE_SHUTDOWN`));
    worker.assign([]);
    await waitFor(`task ${t.id} to be removed`, async () => !existsSync(join(stateDir, t.id)));
    await worker.stop();
  });
});

describe('Worker resync', () => {
  test('with exits watched, a running task\'s state is not read again at every monitor interval', async () => {
    let inspects = 0;
    class CountingRuntime extends ExecRuntime {
      override inspect(id: string) {
        inspects += 1;
        return super.inspect(id);
      }
    }
    const rec = new Recorder();
    // monitorMs is for a runtime without an exit watch; this one has one: running tasks are looked at again only at the resync.
    const worker = new Worker({ runtime: new CountingRuntime({ stateDir, cgroupParent: parent, log }), log, report: rec.report, monitorMs: 50, resyncMs: 60_000 });
    workers.push(worker);
    await worker.start();
    const t = task({ command: ['sleep', '30'] });
    worker.assign([t]);
    await rec.until(t.id, S.TASK_STATE_RUNNING);
    await waitFor('the worker to settle', async () => worker.views().every((v) => v.runtime.state === 'running'));
    await new Promise((r) => setTimeout(r, 300));
    const settled = inspects;
    // Twenty monitor intervals.
    await new Promise((r) => setTimeout(r, 1000));
    expect(inspects).toBe(settled);
    worker.assign([]);
    await waitFor(`task ${t.id} to be removed`, async () => !existsSync(join(stateDir, t.id)));
    await worker.stop();
  });
});

describe('Worker and registry credentials', () => {
  test('a task\'s credential from the assignment reaches the runtime\'s prepare; a task without one gets none', async () => {
    const seen = new Map<string, unknown>();
    class RecordingRuntime extends ExecRuntime {
      override async prepare(t: Task, opts?: { registryAuth?: string }): Promise<void> {
        seen.set(t.id, opts);
        return super.prepare(t);
      }
    }
    const rec = new Recorder();
    const worker = await newWorker(rec, new RecordingRuntime({ stateDir, cgroupParent: parent, log }));
    const withAuth = task({ command: ['sleep', '30'] });
    const without = task({ command: ['sleep', '30'] });
    worker.assign([withAuth, without], [{ taskId: withAuth.id, registryAuth: 'alice:pw' }]);
    await rec.until(withAuth.id, S.TASK_STATE_RUNNING);
    await rec.until(without.id, S.TASK_STATE_RUNNING);
    expect(seen.get(withAuth.id)).toEqual({ registryAuth: 'alice:pw' });
    expect(seen.get(without.id)).toBeUndefined();
    worker.assign([]);
    await worker.stop();
  });
});
