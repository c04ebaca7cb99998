/**
 * The machinery replicated and global plans share. A slot is one replica of a replicated service
 * (keyed by its number) or one node of a global service (keyed by node id); it holds the current
 * task, old tasks kept as history and, during a start-first update, the task being replaced.
 */
import {
  Node,
  NodeAvailability,
  NodeState,
  Service,
  Task,
  TaskState,
  UpdateOrder,
  UpdateStatus,
} from '../../services/gen/swarmlet/v1/types';
import { SERVICE_DEFAULTS, restartPolicyOf, withRestartDefaults } from './defaults';
import { countedRestarts, planRestart } from './restart';
import { actualState, byAge, endedByItself, isLive, isTerminal, newTask, parseTime, statusTime } from './tasks';
import { OrchestratorAction, OrchestratorInput, OrchestratorPlan } from './types';
import { planUpdate } from './update';

const RUNNING = TaskState.TASK_STATE_RUNNING;
const SHUTDOWN = TaskState.TASK_STATE_SHUTDOWN;

export interface SlotView {
  /** The slot number as text (replicated) or the node id (global). */
  key: string;
  /** The slot number for new tasks; 0 for a global service. */
  slot: number;
  /** The node new tasks are pinned to: '' for a replicated service. */
  nodeId: string;
  /** Every task of the slot, oldest first, as the plan found them. */
  tasks: Task[];
  /** The tasks still desired to run once this plan's shutdowns apply, oldest first. */
  live: Task[];
  /** The newest live task. */
  current?: Task;
  /** No live task, and an old one is still stopping on a reachable node: a new one must wait. */
  waitingForStop: boolean;
}

/** The input's nodes by id: the caller's map, or one made now. */
export const nodesById = (input: OrchestratorInput): ReadonlyMap<string, Node> => input.nodeById ?? new Map(input.nodes.map((n) => [n.id, n]));

/** Collects a plan's actions; makes sure a task is shut down at most once and desired state only rises. */
export class PlanBuilder {
  readonly actions: OrchestratorAction[] = [];
  readonly nowMs: number;
  private wake = Infinity;
  private readonly lowered = new Set<string>();

  constructor(
    readonly service: Service,
    readonly now: Date,
    private readonly newId: () => string,
    readonly nodes: ReadonlyMap<string, Node>,
  ) {
    this.nowMs = now.getTime();
  }

  /** Asks to run again at `ms`; times not in the future are ignored (they were acted on now). */
  wakeAt(ms: number | undefined): void {
    if (ms !== undefined && ms > this.nowMs && ms < this.wake) this.wake = ms;
  }

  shutdown(t: Task, message: string): void {
    if (t.desiredState >= SHUTDOWN || this.lowered.has(t.id)) return;
    this.lowered.add(t.id);
    this.actions.push({ kind: 'setDesired', taskId: t.id, desired: SHUTDOWN, message });
  }

  /** Desired to run once this plan applies. */
  stillLive(t: Task): boolean {
    return isLive(t) && !this.lowered.has(t.id);
  }

  wasShutDownNow(t: Task): boolean {
    return this.lowered.has(t.id);
  }

  newTask(slot: number, nodeId: string): Task {
    return newTask(this.service, this.newId(), slot, nodeId, this.now);
  }

  create(task: Task): void {
    this.actions.push({ kind: 'create', task });
  }

  delete(t: Task): void {
    this.actions.push({ kind: 'delete', taskId: t.id });
  }

  result(updateStatus?: UpdateStatus): OrchestratorPlan {
    const plan: OrchestratorPlan = { actions: this.actions };
    if (this.wake !== Infinity) plan.wakeAt = new Date(this.wake);
    if (updateStatus) plan.updateStatus = updateStatus;
    return plan;
  }
}

/** Why a task placed on `nodeId` must be replaced elsewhere, if it must. */
export function nodeProblem(nodes: ReadonlyMap<string, Node>, nodeId: string): string | undefined {
  if (!nodeId) return undefined;
  const node = nodes.get(nodeId);
  if (!node) return 'node removed';
  if (node.status?.state === NodeState.NODE_STATE_DOWN) return 'node down';
  if (node.spec?.availability === NodeAvailability.NODE_AVAILABILITY_DRAIN) return 'node drained';
  return undefined;
}

/**
 * Reads a slot: shuts down live tasks whose placement went bad (`problem`), and older live tasks
 * once the newest runs (the end of a start-first replacement) or when they are dead anyway.
 */
export function openSlot(
  b: PlanBuilder,
  key: string,
  slot: number,
  nodeId: string,
  tasks: readonly Task[],
  problem?: (t: Task) => string | undefined,
): SlotView {
  const sorted = [...tasks].sort(byAge);
  let live: Task[] = [];
  for (const t of sorted) {
    if (!isLive(t)) continue;
    const why = problem && !isTerminal(t) ? problem(t) : undefined;
    if (why) b.shutdown(t, why);
    else live.push(t);
  }
  const current = live.at(-1);
  if (current && live.length > 1) {
    const currentRuns = actualState(current) === RUNNING;
    const kept: Task[] = [];
    for (const older of live.slice(0, -1)) {
      if (currentRuns || isTerminal(older)) b.shutdown(older, `replaced by task ${current.id}`);
      else kept.push(older);
    }
    live = [...kept, current];
  }
  const view: SlotView = { key, slot, nodeId, tasks: sorted, live, current, waitingForStop: false };
  if (!current) view.waitingForStop = waitForStop(b, sorted);
  return view;
}

/**
 * Whether a task told to stop is still running on a node that can still stop it, so that its
 * replacement must wait (stop-first). A node that is down or drained, or a task that never
 * reached a node, holds nothing up; nor does a task that has not reported for a minute since it
 * was told to stop (swarmkit's old-task timeout).
 */
function waitForStop(b: PlanBuilder, tasks: readonly Task[]): boolean {
  for (const t of tasks) {
    if (b.stillLive(t) || isTerminal(t) || !t.nodeId || actualState(t) < TaskState.TASK_STATE_ASSIGNED) continue;
    const node = b.nodes.get(t.nodeId);
    if (!node || node.status?.state !== NodeState.NODE_STATE_READY) continue;
    if (node.spec?.availability === NodeAvailability.NODE_AVAILABILITY_DRAIN) continue;
    const since = b.wasShutDownNow(t) ? b.nowMs : parseTime(t.meta?.updatedAt);
    if (since === undefined) return true;
    const deadline = since + SERVICE_DEFAULTS.oldTaskTimeoutMs;
    if (b.nowMs < deadline) {
      b.wakeAt(deadline);
      return true;
    }
  }
  return false;
}

/** Fills an empty slot, or applies the restart policy to a dead current task. */
export function fillSlot(b: PlanBuilder, view: SlotView): void {
  const current = view.current;
  if (!current) {
    if (!view.waitingForStop) b.create(b.newTask(view.slot, view.nodeId));
    return;
  }
  if (!isTerminal(current)) return;
  const policy = current.spec?.restart ? withRestartDefaults(current.spec.restart) : restartPolicyOf(b.service.spec);
  const decision = planRestart(current, view.tasks, policy, b.nowMs);
  if (decision.kind === 'wait') b.wakeAt(decision.at);
  else if (decision.kind === 'stay') b.wakeAt(decision.until);
  else {
    const next = b.newTask(view.slot, view.nodeId);
    b.shutdown(current, `restarted as task ${next.id}`);
    b.create(next);
  }
}

/** Replaces an out-of-date slot for a rolling update. */
export function replaceSlot(b: PlanBuilder, view: SlotView, order: UpdateOrder): void {
  const next = b.newTask(view.slot, view.nodeId);
  if (order === UpdateOrder.UPDATE_ORDER_START_FIRST) {
    // Old tasks that do not run serve nobody: stop them now; running ones stop once `next` runs.
    for (const t of view.live) if (actualState(t) !== RUNNING) b.shutdown(t, `replaced by task ${next.id}`);
    b.create(next);
    return;
  }
  for (const t of view.live) b.shutdown(t, 'shut down for update');
  if (!waitForStop(b, view.tasks)) b.create(next);
}

/** Shuts down every task of a slot that is no longer wanted, and forgets its dead ones. */
export function retireSlot(b: PlanBuilder, tasks: readonly Task[], message: string, keepHistory: number): void {
  const sorted = [...tasks].sort(byAge);
  for (const t of sorted) if (isLive(t)) b.shutdown(t, message);
  trimHistory(b, sorted, keepHistory);
}

/**
 * Keeps at most `keep` old tasks (told to stop and stopped, or never placed, or on a node that
 * is gone) and deletes older ones, oldest first. A task still running on its node stays until it
 * reports that it stopped. Tasks that still count against the restart policy's max_attempts are
 * kept too, so that the count survives (swarmkit keeps it in memory; here the tasks are the memory).
 */
export function trimHistory(b: PlanBuilder, sorted: readonly Task[], keep: number = SERVICE_DEFAULTS.taskHistory): void {
  const old = sorted.filter((t) => !isLive(t) && (isTerminal(t) || !t.nodeId || actualState(t) < TaskState.TASK_STATE_ASSIGNED || !b.nodes.has(t.nodeId)));
  let excess = old.length - keep;
  if (excess <= 0) return;
  const protect = keep > 0 ? restartMemory(b, sorted) : new Set<string>();
  for (const t of old) {
    if (excess <= 0) break;
    if (protect.has(t.id)) continue;
    b.delete(t);
    excess--;
  }
}

function restartMemory(b: PlanBuilder, sorted: readonly Task[]): Set<string> {
  const newest = sorted.at(-1);
  if (!newest) return new Set();
  const policy = newest.spec?.restart ? withRestartDefaults(newest.spec.restart) : restartPolicyOf(b.service.spec);
  if (policy.maxAttempts <= 0) return new Set();
  const counted = countedRestarts(newest, sorted, policy, b.nowMs).filter(endedByItself).sort((x, y) => statusTime(y) - statusTime(x));
  return new Set(counted.slice(0, policy.maxAttempts).map((t) => t.id));
}

/** The live slots' last step, for both modes: replace the ones the rolling update picks, fill the others, trim history. */
export function finishSlots(b: PlanBuilder, service: Service, views: SlotView[], now: Date): OrchestratorPlan {
  const update = planUpdate({ service, slots: views, now });
  for (const view of views) {
    if (update.replace.has(view.key)) replaceSlot(b, view, update.order);
    else fillSlot(b, view);
    trimHistory(b, view.tasks);
  }
  b.wakeAt(update.wakeAt?.getTime());
  return b.result(update.updateStatus);
}
