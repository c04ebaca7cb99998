/**
 * The worker's decisions, as pure functions: given what the dispatcher assigned, what the runtime
 * reports and what was last reported, the next step for each task (a status to report, or a
 * runtime operation). Health checks are planned here too. No I/O: the Worker drives these.
 */
import { invalidArgument } from '../services/common/errors';
import { ContainerStatus, HealthConfig, Task, TaskState, TaskStatus } from '../services/gen/swarmlet/v1/types';
import type { RuntimeTaskState } from './runtime/runtime';

export const DEFAULT_STOP_GRACE_MS = 10000;

export type HealthStatus = 'starting' | 'healthy' | 'unhealthy';

/** What the worker knows of one task. */
export interface TaskView {
  taskId: string;
  /** The task as last assigned (kept after it leaves the assigned set, for its stop grace period). */
  task?: Task;
  /** Whether the task is in the latest assigned set. */
  assigned: boolean;
  /** What the runtime said last ('missing': it has nothing for the task). */
  runtime: RuntimeTaskState;
  /** The last status this worker reported for the task, in this process's life. */
  reported?: TaskStatus;
  /** The task's health, when it has a health check and has run. */
  health?: HealthStatus;
  /** Why the last prepare or start failed. */
  error?: string;
}

export type WorkerAction =
  | { kind: 'report'; taskId: string; status: TaskStatus }
  | { kind: 'prepare'; taskId: string }
  | { kind: 'start'; taskId: string }
  | { kind: 'stop'; taskId: string; graceMs: number }
  /** Stop (with the grace period), then forget the task in the runtime: its work here is over. */
  | { kind: 'remove'; taskId: string; graceMs: number };

export interface PlanContext {
  /** Whether an assignment has arrived since the worker started (before that, nothing is stale). */
  assignedOnce: boolean;
  /** RFC 3339, for status timestamps. */
  now: string;
}

const S = TaskState;

/** Terminal states: a task that reached one never runs again. */
export function isTerminal(state: TaskState): boolean {
  return state >= S.TASK_STATE_COMPLETE;
}

export function stopGraceMs(task: Task | undefined): number {
  return task?.spec?.container?.stopGracePeriodMs || DEFAULT_STOP_GRACE_MS;
}

/** The state the task has reached as far as anyone reported: the manager's record or this worker's, whichever is further. */
export function reachedState(view: TaskView): TaskState {
  return Math.max(view.task?.status?.state ?? S.TASK_STATE_NEW, view.reported?.state ?? S.TASK_STATE_NEW);
}

/** "32 MiB", "1.5 GiB", "1000 bytes". */
export function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1 && value % 1 === 0) {
    value /= 1024;
    unit += 1;
  }
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${units[unit]}`;
}

/** Why a task that exited failed, in the words `service ps` shows. */
export function exitError(view: TaskView): string {
  const rt = view.runtime;
  if (view.health === 'unhealthy') return 'unhealthy container';
  if (rt.oomKilled) {
    const limit = view.task?.spec?.resources?.limits?.memoryBytes;
    return limit ? `OOM killed: memory limit of ${formatBytes(limit)} exceeded` : 'OOM killed';
  }
  if ((rt.exitCode ?? -1) < 0) return 'task: its process was lost (killed outside swarmlet, or the node restarted)';
  return `task: non-zero exit (${rt.exitCode})`;
}

function containerStatus(view: TaskView): ContainerStatus | undefined {
  const rt = view.runtime;
  if (rt.state === 'missing' && !view.health) return undefined;
  return { pid: rt.pid ?? 0, exitCode: rt.exitCode ?? 0, health: view.health ?? '', oomKilled: rt.oomKilled ?? false };
}

/**
 * The next step for one task, or undefined when it is where it should be. One step at a time:
 * the worker applies it and plans again. Reports only ever move a task's state forward (or
 * repeat it, to carry a health change or to confirm a re-adopted task).
 */
export function planTask(view: TaskView, ctx: PlanContext): WorkerAction | undefined {
  const { taskId } = view;
  const rt = view.runtime.state;
  const alive = rt === 'running' || rt === 'created';
  const graceMs = stopGraceMs(view.task);

  if (!view.assigned) {
    // Gone from the assignment (its work is over) or never assigned since a restart (stale). Even
    // when the runtime reports nothing it is asked to forget the task: a prepare cut short by a
    // crash may have left pieces it does not count as a task.
    if (!ctx.assignedOnce) return undefined;
    return { kind: 'remove', taskId, graceMs };
  }
  const task = view.task!;
  const reached = reachedState(view);
  const report = (state: TaskState, message: string, err = ''): WorkerAction | undefined => {
    if (state < reached) return undefined;
    const container = containerStatus(view);
    return { kind: 'report', taskId, status: { state, timestamp: ctx.now, message, err, ...(container ? { container } : {}) } };
  };

  if (isTerminal(reached)) return alive ? { kind: 'stop', taskId, graceMs } : undefined;

  if (task.desiredState > S.TASK_STATE_RUNNING) {
    if (alive) return { kind: 'stop', taskId, graceMs };
    return report(S.TASK_STATE_SHUTDOWN, 'shutdown');
  }

  if (view.error) {
    if (alive) return { kind: 'stop', taskId, graceMs };
    return report(S.TASK_STATE_REJECTED, 'rejected', view.error);
  }

  switch (rt) {
    case 'exited': {
      const code = view.runtime.exitCode ?? -1;
      if (code === 0 && view.health !== 'unhealthy') return report(S.TASK_STATE_COMPLETE, 'finished');
      return report(S.TASK_STATE_FAILED, 'failed', exitError(view));
    }
    case 'running': {
      const reportedHealth = view.reported?.container?.health ?? '';
      if (reached < S.TASK_STATE_RUNNING || !view.reported || (view.health !== undefined && view.health !== reportedHealth)) {
        return report(S.TASK_STATE_RUNNING, 'started');
      }
      if (view.health === 'unhealthy') return { kind: 'stop', taskId, graceMs };
      return undefined;
    }
    case 'created':
      if (reached < S.TASK_STATE_ACCEPTED) return report(S.TASK_STATE_ACCEPTED, 'accepted');
      if (reached < S.TASK_STATE_PREPARING) return report(S.TASK_STATE_PREPARING, 'preparing');
      if (reached < S.TASK_STATE_READY) return report(S.TASK_STATE_READY, 'prepared');
      if (task.desiredState < S.TASK_STATE_RUNNING) return view.reported ? undefined : report(S.TASK_STATE_READY, 'prepared');
      if (reached < S.TASK_STATE_STARTING) return report(S.TASK_STATE_STARTING, 'starting');
      return { kind: 'start', taskId };
    case 'missing':
      if (reached < S.TASK_STATE_ACCEPTED) return report(S.TASK_STATE_ACCEPTED, 'accepted');
      if (reached < S.TASK_STATE_PREPARING) return report(S.TASK_STATE_PREPARING, 'preparing');
      if (reached < S.TASK_STATE_RUNNING) return { kind: 'prepare', taskId };
      return report(S.TASK_STATE_FAILED, 'failed', 'task: the runtime has no record of it on this node');
  }
}

/** Every task's next step; tasks that are busy with an operation are left out by the caller. */
export function planWorker(views: TaskView[], ctx: PlanContext): WorkerAction[] {
  return views.flatMap((v) => {
    const action = planTask(v, ctx);
    return action ? [action] : [];
  });
}

// ---- health checks ---------------------------------------------------------------------------

export interface HealthCheck {
  argv: string[];
  intervalMs: number;
  timeoutMs: number;
  retries: number;
  startPeriodMs: number;
}

/** Docker's defaults. */
export const HEALTH_DEFAULTS = { intervalMs: 30000, timeoutMs: 30000, retries: 3, startPeriodMs: 0 } as const;

/** The check a spec asks for (undefined: none; ["NONE"] or no test); throws InvalidArgument for a malformed test. */
export function planHealthCheck(config: HealthConfig | undefined): HealthCheck | undefined {
  const test = config?.test ?? [];
  if (test.length === 0 || test[0] === 'NONE') return undefined;
  let argv: string[];
  if (test[0] === 'CMD-SHELL' && test.length === 2 && test[1] !== '') argv = ['/bin/sh', '-c', test[1]];
  else if (test[0] === 'CMD' && test.length >= 2 && test[1] !== '') argv = test.slice(1);
  else throw invalidArgument(`health check test ${JSON.stringify(test)} is not valid: use ["CMD-SHELL", "command"], ["CMD", "argv0", ...] or ["NONE"]`);
  return {
    argv,
    intervalMs: config!.intervalMs || HEALTH_DEFAULTS.intervalMs,
    timeoutMs: config!.timeoutMs || HEALTH_DEFAULTS.timeoutMs,
    retries: config!.retries || HEALTH_DEFAULTS.retries,
    startPeriodMs: config!.startPeriodMs || HEALTH_DEFAULTS.startPeriodMs,
  };
}

export interface HealthProgress {
  status: HealthStatus;
  /** Consecutive failures that counted. */
  failures: number;
}

export const HEALTH_START: HealthProgress = { status: 'starting', failures: 0 };

/**
 * Docker's rules after one probe: a success makes the task healthy; a failure in the start period
 * does not count; `retries` consecutive counted failures make it unhealthy, and it stays so.
 */
export function nextHealth(prev: HealthProgress, probe: { ok: boolean; inStartPeriod: boolean }, retries: number): HealthProgress {
  if (prev.status === 'unhealthy') return prev;
  if (probe.ok) return { status: 'healthy', failures: 0 };
  if (probe.inStartPeriod && prev.status === 'starting') return prev;
  const failures = prev.failures + 1;
  return { status: failures >= retries ? 'unhealthy' : prev.status, failures };
}
