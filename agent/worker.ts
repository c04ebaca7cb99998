import { Semaphore } from 'async-mutex';
import { availableParallelism } from 'node:os';
import { sleep } from '../services/common/backoff';
import { TaskStartClock } from '../services/metrics/task-start-clock';
import { ReconcileLoop } from '../services/common/reconcile-loop';
import { asSwarmletError, failedPrecondition, internal } from '../services/common/errors';
import { Logger, componentLogger } from '../services/common/logger';
import { TaskCredential, TaskFileValue } from '../services/gen/swarmlet/v1/dispatcher';
import type { TaskFileMounts } from './runtime/mount-plans';
import { Task, TaskState, TaskStatus } from '../services/gen/swarmlet/v1/types';
import type { Runtime } from './runtime/runtime';
import {
  HEALTH_START,
  HealthCheck,
  HealthProgress,
  TaskView,
  WorkerAction,
  isTerminal,
  nextHealth,
  planHealthCheck,
  planTask,
  reachedState,
} from './worker-plans';

export interface WorkerOptions {
  runtime: Runtime;
  log: Logger;
  /** Sends status updates to the dispatcher; throws if it could not (they are retried). */
  report: (updates: { taskId: string; status: TaskStatus }[]) => Promise<void>;
  now?: () => Date;
  /** How often running tasks are inspected for an exit when the runtime cannot watch for exits (default 250 ms). */
  monitorMs?: number;
  /**
   * How often running tasks are inspected anyway when the runtime watches for exits (default 10 s):
   * a resync for what no exit record says (a shim killed by hand). Exits themselves come as events.
   */
  resyncMs?: number;
  /** Plugs tasks into their networks between prepare and start; without it, tasks have only lo. */
  networks?: TaskNetworks;
  /** where tasks' secrets and configs are written (a tmpfs); without it, a task that uses one is refused. */
  files?: TaskFilesPort;
  /** How many tasks are prepared or started at the same time (default: twice the CPUs, at least 4). */
  startConcurrency?: number;
}

/** tasks' secrets and configs as files on the node (TaskFiles). */
export interface TaskFilesPort {
  ensure(task: Task, values: Map<string, Uint8Array>): Promise<TaskFileMounts | undefined>;
  release(taskId: string): Promise<void>;
  prune(keep: Set<string>): Promise<void>;
}

/** The network namespace of a task's process: the one its networks are plugged into. */
const taskNetns = (pid: number): string => `/proc/${pid}/ns/net`;

/** The network side of a task's life, as the worker sees it. */
export interface TaskNetworks {
  /** The task's sandbox exists (its netns at `netnsPath`); its command has not started yet. */
  attach(task: Task, netnsPath: string): Promise<void>;
  /** The task is gone: what its networks held for it goes too. */
  detach(taskId: string): Promise<void>;
  /**
   * The task serves no more (its process exited, or it is about to be stopped): it leaves its
   * services' records and load-balancing rules on this node now, ahead of the managers' word.
   * Never rejects.
   */
  stopServing?(taskId: string): Promise<void>;
}

interface TaskEntry extends TaskView {
  /** An operation (inspect, prepare, start, stop, remove) is under way; the task is not planned meanwhile. */
  busy: boolean;
  /** The runtime has not been asked about the task yet. */
  unknown: boolean;
  health?: TaskView['health'];
  healthLoop?: AbortController;
  /** Stops watching the task for its exit (set while it is created or running). */
  stopExitWatch?: () => void;
  /** The runtime saw the task's process end: inspect it in the next pass, without waiting for the monitor. */
  exitSeen?: boolean;
}

/**
 * Keeps this node's tasks converged on the latest assignment, through the runtime. A loop plans
 * each task's next step (worker-plans.ts) and applies it: statuses go to a batching reporter, and
 * runtime operations run one at a time per task, concurrently across tasks. A task's exit comes
 * from the runtime's watch (or, for a runtime without one, the inspection of running tasks every
 * `monitorMs`); running tasks are also inspected every `resyncMs`. Health checks run in a loop per task.
 */
export class Worker {
  private readonly log: Logger;
  private readonly runtime: Runtime;
  private readonly now: () => Date;
  private readonly monitorMs: number;
  private readonly networks?: TaskNetworks;
  private readonly tasks = new Map<string, TaskEntry>();
  private readonly startClock = new TaskStartClock();
  /** taskId -> registry credential, from the latest assignment (never logged). */
  private credentials = new Map<string, string>();
  /** secret or config id -> its value, from the latest assignment (never logged). */
  private fileValues = new Map<string, Uint8Array>();
  private readonly files?: TaskFilesPort;
  private readonly ops = new Set<Promise<void>>();
  private readonly reporter: StatusReporter;
  private controller = new AbortController();
  private assignedOnce = false;
  private started = false;
  /** Plans and applies on every assignment, and at least every `monitorMs` (when it also inspects the tasks). */
  private readonly loop: ReconcileLoop;
  private lastMonitor = 0;
  /**
   * Prepares and starts (network attach included) take a slot: a burst of assignments (100 tasks
   * of a new service) starts a few at a time instead of every shim, cgroup and helper at once,
   * which saturated the host (ready timeouts, etcd deadlines missed, the leader lost).
   */
  private readonly starting: Semaphore;

  constructor(opts: WorkerOptions) {
    this.log = componentLogger(opts.log, 'worker');
    this.runtime = opts.runtime;
    this.now = opts.now ?? (() => new Date());
    // With exits as events, rereading every task's state files each 250 ms only costs (33 tasks a host: ~650 file reads a second).
    this.monitorMs = opts.runtime.watchExit ? (opts.resyncMs ?? 10_000) : (opts.monitorMs ?? 250);
    this.networks = opts.networks;
    this.files = opts.files;
    this.starting = new Semaphore(opts.startConcurrency ?? Math.max(4, 2 * availableParallelism()));
    this.reporter = new StatusReporter(opts.report, this.log);
    this.loop = new ReconcileLoop(undefined, { name: 'worker', watch: [], resyncMs: this.monitorMs, reconcile: async () => this.pass() }, this.log);
  }

  /** Re-adopts what the runtime has (keeps it running, watches it), then keeps the tasks converged. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.controller = new AbortController();
    for (const taskId of await this.runtime.list()) {
      const entry = this.entry(taskId);
      entry.runtime = await this.runtime.inspect(taskId);
      entry.unknown = false;
      this.ensureExitWatch(entry);
      this.log.info({ taskId, state: entry.runtime.state, pid: entry.runtime.pid }, 'task found in the runtime');
    }
    // Files of tasks that went while the agent was down go now.
    await this.files?.prune(new Set(this.tasks.keys()));
    this.reporter.start();
    this.loop.start(this.controller.signal);
    this.loop.poke();
  }

  /** Stops the worker's loops and health checks; the tasks keep running. */
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    this.controller.abort();
    await this.loop.stop();
    for (const entry of this.tasks.values()) {
      this.stopHealth(entry);
      entry.stopExitWatch?.();
      entry.stopExitWatch = undefined;
    }
    await Promise.allSettled([...this.ops]);
    await this.reporter.stop();
  }

  /** The latest full set of tasks assigned to this node, with the registry credentials of their images. */
  assign(tasks: Task[], credentials: TaskCredential[] = [], fileValues: TaskFileValue[] = []): void {
    this.assignedOnce = true;
    this.credentials = new Map(credentials.map((c) => [c.taskId, c.registryAuth]));
    this.fileValues = new Map(fileValues.map((v) => [v.id, v.data]));
    const ids = new Set(tasks.map((t) => t.id));
    for (const task of tasks) {
      const entry = this.entry(task.id);
      entry.task = task;
      entry.assigned = true;
    }
    for (const entry of this.tasks.values()) if (!ids.has(entry.taskId)) entry.assigned = false;
    this.poke();
  }

  /**
   * The network namespace of each task running here, by task id: what the networks keep plugged
   * in (a sandbox made again loses its tasks' interfaces). Known from the runtime, so also right
   * after a restart, before any assignment.
   */
  runningNetns(): Map<string, string> {
    const out = new Map<string, string>();
    for (const { taskId, runtime } of this.tasks.values()) if (runtime.state === 'running' && runtime.pid) out.set(taskId, taskNetns(runtime.pid));
    return out;
  }

  /** What the worker knows of each task (for the daemon's diagnostics and for tests). */
  views(): TaskView[] {
    return [...this.tasks.values()].map(({ taskId, task, assigned, runtime, reported, health, error }) => ({ taskId, task, assigned, runtime, reported, health, error }));
  }

  private entry(taskId: string): TaskEntry {
    let entry = this.tasks.get(taskId);
    if (!entry) {
      entry = { taskId, assigned: false, runtime: { state: 'missing' }, busy: false, unknown: true };
      this.tasks.set(taskId, entry);
      this.startClock.assigned(taskId);
    }
    return entry;
  }

  private poke(): void {
    this.loop.poke();
  }

  /** One pass: inspects the tasks when that is due, then plans and applies. */
  private pass(): void {
    if (Date.now() - this.lastMonitor >= this.monitorMs) {
      this.lastMonitor = Date.now();
      this.monitor();
    }
    this.reconcile();
  }

  /** Inspects the tasks whose process may change by itself (or that were never looked at). */
  private monitor(): void {
    for (const entry of this.tasks.values()) {
      if (entry.busy) continue;
      if (entry.unknown || entry.runtime.state === 'running' || entry.runtime.state === 'created') this.operate(entry, 'inspect', async () => undefined);
    }
  }

  private reconcile(): void {
    const ctx = () => ({ assignedOnce: this.assignedOnce, now: this.now().toISOString() });
    for (const entry of [...this.tasks.values()]) {
      if (entry.busy) continue;
      if (entry.unknown || entry.exitSeen) {
        entry.exitSeen = false;
        this.operate(entry, 'inspect', async () => undefined);
        continue;
      }
      this.ensureHealth(entry);
      // Reports apply at once; plan the same task again until it needs an operation or rests.
      for (let steps = 0; steps < 16; steps += 1) {
        const action = planTask(entry, ctx());
        if (!action) break;
        if (action.kind !== 'report') {
          this.apply(entry, action);
          break;
        }
        this.record(entry, action.status);
      }
    }
  }

  private record(entry: TaskEntry, status: TaskStatus): void {
    const previous = entry.reported;
    entry.reported = status;
    this.startClock.reported(entry.taskId, previous?.state, status.state);
    this.reporter.push(entry.taskId, status);
    const log = this.log.child({ taskId: entry.taskId, serviceId: entry.task?.serviceId });
    if (previous?.state !== status.state) {
      log.info({ state: TaskState[status.state], message: status.message, err: status.err || undefined, exitCode: status.container?.exitCode }, 'task state');
    } else {
      log.info({ health: status.container?.health }, 'task health');
    }
  }

  private apply(entry: TaskEntry, action: Exclude<WorkerAction, { kind: 'report' }>): void {
    const { taskId } = entry;
    switch (action.kind) {
      case 'prepare':
        this.operate(entry, 'prepare', () => this.startSlot(entry, async () => {
          planHealthCheck(entry.task!.spec?.container?.healthcheck); // a malformed check rejects the task before anything runs
          const registryAuth = this.credentials.get(taskId);
          const c = entry.task!.spec?.container;
          const files = c?.secrets.length || c?.configs.length ? await this.taskFiles(entry.task!) : undefined;
          const opts = { ...(registryAuth ? { registryAuth } : {}), ...(files ? { files } : {}) };
          await (Object.keys(opts).length ? this.runtime.prepare(entry.task!, opts) : this.runtime.prepare(entry.task!));
        }, 'prepare'), true);
        return;
      case 'start':
        this.operate(entry, 'start', () => this.startSlot(entry, async () => {
          // A task's command starts only once its networks are plugged in. The built-in host and
          // none networks have nothing to plug in: a host task's namespace is the host's own.
          const networks = this.networks;
          if (networks && (entry.task?.networks ?? []).some((a) => a.driver !== 'host' && a.driver !== 'none')) {
            const { pid } = await this.runtime.inspect(taskId);
            if (!pid) throw internal(`task ${taskId} has no sandbox process to plug networks into`);
            await networks.attach(entry.task!, taskNetns(pid));
          }
          await this.runtime.start(taskId);
        }, 'start'), true);
        return;
      case 'stop':
        this.operate(entry, 'stop', async () => {
          // Out of the load balancer first, then stopped: no new connection goes to a stopping task.
          await this.networks?.stopServing?.(taskId);
          await this.runtime.stop(taskId, action.graceMs);
          await this.files?.release(taskId);
        });
        return;
      case 'remove':
        this.operate(entry, 'remove', async () => {
          await this.networks?.stopServing?.(taskId);
          await this.runtime.stop(taskId, action.graceMs);
          await this.runtime.remove(taskId);
          await this.files?.release(taskId);
          await this.networks?.detach(taskId);
        });
        return;
    }
  }

  /**
   * Runs a prepare or start in a slot; one no longer assigned by the time it has a slot is skipped
   * (the next plan stops it). A start goes before the prepares waiting: a prepared task runs next,
   * rather than after every other task of a burst is prepared (100 tasks: the first ran after 18 s).
   */
  private startSlot(entry: TaskEntry, op: () => Promise<void>, priority: 'prepare' | 'start'): Promise<void> {
    return this.starting.runExclusive(async () => {
      if (!entry.assigned || this.controller.signal.aborted) return;
      await op();
    }, 1, priority === 'start' ? 1 : 0);
  }

  /** the task's secrets and configs written on the node's tmpfs, for the runtime to mount. */
  private async taskFiles(task: Task): Promise<TaskFileMounts | undefined> {
    if (!this.files) throw failedPrecondition('this node cannot give tasks secrets or configs: it has no place for them');
    return this.files.ensure(task, this.fileValues);
  }

  /**
   * Runs one runtime operation for a task, then inspects it. A failed prepare or start is kept as
   * the task's error (it is rejected); other failures are retried by the next plan.
   */
  private operate(entry: TaskEntry, name: string, op: () => Promise<void>, rejects = false): void {
    entry.busy = true;
    const log = this.log.child({ taskId: entry.taskId });
    const done = (async () => {
      let failed = false;
      try {
        await op();
      } catch (err) {
        failed = true;
        const e = asSwarmletError(err);
        if (rejects) {
          entry.error = e.message;
          log.warn({ err: e, op: name }, 'task rejected');
        } else {
          log.error({ err: e, op: name }, 'task operation failed; it will be retried');
          await sleep(1000, this.controller.signal);
        }
      }
      try {
        entry.runtime = await this.runtime.inspect(entry.taskId);
        entry.unknown = false;
        // An exit the runtime could not report at once (no watch) is seen here.
        if (entry.runtime.state === 'exited') void this.networks?.stopServing?.(entry.taskId);
        if (this.started) this.ensureExitWatch(entry);
      } catch (err) {
        log.error({ err }, 'inspecting the task failed');
      }
      if (name === 'remove' && !failed && entry.runtime.state === 'missing' && !entry.assigned) {
        // Forgotten by the runtime and no longer assigned: nothing left to do or to remember.
        this.stopHealth(entry);
        entry.stopExitWatch?.();
        this.tasks.delete(entry.taskId);
        this.startClock.forget(entry.taskId);
      }
    })().finally(() => {
      entry.busy = false;
      this.ops.delete(done);
      this.poke();
    });
    this.ops.add(done);
  }

  /** Watches a created or running task for its exit (when the runtime can); stops once it is neither. */
  private ensureExitWatch(entry: TaskEntry): void {
    const live = entry.runtime.state === 'running' || entry.runtime.state === 'created';
    if (live && !entry.stopExitWatch && this.runtime.watchExit) {
      entry.stopExitWatch = this.runtime.watchExit(entry.taskId, () => {
        entry.exitSeen = true;
        void this.networks?.stopServing?.(entry.taskId);
        this.poke();
      });
      // An exit recorded between the last inspection and the watch is seen by one more look, not at the next resync.
      entry.exitSeen = true;
      this.poke();
    } else if (!live && entry.stopExitWatch) {
      entry.stopExitWatch();
      entry.stopExitWatch = undefined;
    }
  }

  // ---- health checks ----

  /** Starts a task's health loop when it runs and has a check; ends it when it no longer runs. */
  private ensureHealth(entry: TaskEntry): void {
    const running = entry.runtime.state === 'running' && entry.assigned && !isTerminal(reachedState(entry));
    if (!running) {
      this.stopHealth(entry);
      return;
    }
    if (entry.healthLoop || entry.health === 'unhealthy') return;
    let check: HealthCheck | undefined;
    try {
      check = planHealthCheck(entry.task?.spec?.container?.healthcheck);
    } catch {
      return;
    }
    if (!check) return;
    const controller = new AbortController();
    entry.healthLoop = controller;
    entry.health ??= 'starting';
    void this.healthLoop(entry, check, controller.signal);
  }

  private stopHealth(entry: TaskEntry): void {
    entry.healthLoop?.abort();
    entry.healthLoop = undefined;
  }

  private async healthLoop(entry: TaskEntry, check: HealthCheck, signal: AbortSignal): Promise<void> {
    const log = this.log.child({ taskId: entry.taskId });
    const startedAt = entry.runtime.startedAt ? Date.parse(entry.runtime.startedAt) : Date.now();
    let progress: HealthProgress = entry.health && entry.health !== 'starting' ? { status: entry.health, failures: 0 } : HEALTH_START;
    while (!signal.aborted && !this.controller.signal.aborted) {
      await sleep(check.intervalMs, signal);
      if (signal.aborted || this.controller.signal.aborted) return;
      let ok: boolean;
      let output: string;
      try {
        const result = await this.runtime.exec(entry.taskId, check.argv, check.timeoutMs);
        ok = result.exitCode === 0;
        output = result.output;
      } catch (err) {
        // Not a verdict on the task's health: it stopped running, or the probe could not be run at all.
        // The monitor notices an exit; a probe that cannot run is retried at the next interval.
        if (!signal.aborted) log.warn({ err: asSwarmletError(err).message }, 'health check could not run');
        continue;
      }
      if (signal.aborted) return;
      const next = nextHealth(progress, { ok, inStartPeriod: Date.now() - startedAt < check.startPeriodMs }, check.retries);
      if (!ok) log.debug({ output: output.slice(0, 200), failures: next.failures }, 'health check failed');
      if (next.status !== progress.status) {
        log.info({ health: next.status, output: ok ? undefined : output.slice(0, 200) }, 'task health changed');
        entry.health = next.status;
        this.poke();
      }
      progress = next;
      if (progress.status === 'unhealthy') return;
    }
  }
}

/**
 * Sends statuses in batches: at most one report in flight; what arrives meanwhile waits for the
 * next batch, the latest status per task winning. A failed report is retried with bounded backoff
 * (the manager may be failing over), unless newer statuses replaced its entries.
 */
class StatusReporter {
  private readonly pending = new Map<string, TaskStatus>();
  private readonly loop: ReconcileLoop;

  constructor(private readonly report: WorkerOptions['report'], private readonly log: Logger) {
    this.loop = new ReconcileLoop(undefined, { name: 'status-reporter', watch: [], reconcile: () => this.send() }, log);
  }

  start(): void {
    this.loop.start();
  }

  push(taskId: string, status: TaskStatus): void {
    this.pending.set(taskId, status);
    this.loop.poke();
  }

  /** Stops the loop after one last try (of at most 2 s) to send what is pending. */
  async stop(): Promise<void> {
    await this.loop.stop();
    if (this.pending.size === 0) return;
    const batch = this.take();
    const timeout = sleep(2000).then(() => 'timeout' as const);
    const sent = await Promise.race([this.report(batch).then(() => 'sent' as const, () => 'failed' as const), timeout]);
    if (sent !== 'sent') this.log.error({ tasks: batch.map((u) => u.taskId) }, 'task statuses could not be sent before the worker stopped');
  }

  private take(): { taskId: string; status: TaskStatus }[] {
    const batch = [...this.pending].map(([taskId, status]) => ({ taskId, status }));
    this.pending.clear();
    return batch;
  }

  /** Sends what is pending; a batch that fails goes back (unless newer statuses replaced its entries) and the loop backs off. */
  private async send(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.take();
    try {
      await this.report(batch);
    } catch (err) {
      for (const u of batch) if (!this.pending.has(u.taskId)) this.pending.set(u.taskId, u.status);
      throw err;
    }
  }
}
